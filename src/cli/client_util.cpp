#include "cli/client_util.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "base/env.h"

namespace llmsync::cli {

std::string DefaultDataDir() {
  const char* home = std::getenv("HOME");
  if (home != nullptr && *home != '\0') return std::string(home) + "/.llmsync";
  auto dir = MakeTempDir("data");
  return dir.IsOk() ? *dir : std::string("llmsync-data");
}

Result<std::string> MakeTempDir(const std::string& what) {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern =
      std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/llmsync-" + what + "-XXXXXX";
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) return Status::Internal("cannot create a directory like " + pattern);
  return std::string(buf.data());
}

Result<std::unique_ptr<EmbeddedServer>> EmbeddedServer::Start(const EmbeddedOptions& options) {
  api::ServerConfig config;
  config.listen = "127.0.0.1:0";
  config.data_dir = options.data_dir.empty() ? DefaultDataDir() : options.data_dir;
  config.model_path = options.model_path;
  if (options.kv_ram_mb > 0) config.kv_ram_mb = options.kv_ram_mb;
  if (options.engine_threads > 0) config.engine_threads = options.engine_threads;
  if (options.max_active_runs > 0) config.max_active_runs = options.max_active_runs;
  if (options.max_context > 0) config.max_context = options.max_context;
  if (options.http_threads > 0) config.http_threads = options.http_threads;
  LLMSYNC_RETURN_IF_ERROR(Env::Default()->CreateDirs(config.data_dir));
  std::string data_dir = config.data_dir;
  LLMSYNC_ASSIGN_OR_RETURN(std::unique_ptr<api::LlmsyncServer> server,
                           api::LlmsyncServer::Open(std::move(config), Env::Default()));
  LLMSYNC_RETURN_IF_ERROR(server->Start());
  return std::make_unique<EmbeddedServer>(std::move(server), std::move(data_dir));
}

EmbeddedServer::~EmbeddedServer() { server_->Stop(); }

namespace {

Result<TurnResult> Follow(client::Client& c, const std::string& run_id, std::uint64_t bytes_before,
                          std::chrono::steady_clock::time_point start,
                          const std::function<void(std::string_view)>& on_token, TurnResult out) {
  client::FollowCallbacks cb;
  bool first = true;
  cb.on_token = [&](std::string_view text) {
    if (first) {
      out.client_ttft_ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
      first = false;
    }
    if (on_token) on_token(text);
  };
  LLMSYNC_ASSIGN_OR_RETURN(out.run, c.FollowRun(run_id, cb));
  out.bytes_sent = c.BytesSent() - bytes_before;
  LLMSYNC_RETURN_IF_ERROR(c.Sync());
  return out;
}

}  // namespace

Result<TurnResult> RunTurn(client::Client& c, const std::string& parent,
                           const std::vector<client::NewNode>& nodes, const client::RunOptions& options,
                           const std::function<void(std::string_view)>& on_token) {
  auto start = std::chrono::steady_clock::now();
  std::uint64_t before = c.BytesSent();
  LLMSYNC_ASSIGN_OR_RETURN(client::AppendResult appended,
                           c.Append(parent.empty() ? c.Head() : parent, nodes));
  client::RunOptions ro = options;
  ro.from = appended.head;
  LLMSYNC_ASSIGN_OR_RETURN(std::string run_id, c.StartRun(ro));
  TurnResult out;
  out.user_node = appended.head;
  return Follow(c, run_id, before, start, on_token, std::move(out));
}

Result<TurnResult> RunFrom(client::Client& c, const std::string& from, const client::RunOptions& options,
                           const std::function<void(std::string_view)>& on_token) {
  auto start = std::chrono::steady_clock::now();
  std::uint64_t before = c.BytesSent();
  client::RunOptions ro = options;
  ro.from = from;
  LLMSYNC_ASSIGN_OR_RETURN(std::string run_id, c.StartRun(ro));
  TurnResult out;
  out.user_node = from;
  return Follow(c, run_id, before, start, on_token, std::move(out));
}

std::string FormatBytes(std::uint64_t bytes) {
  char buf[32];
  if (bytes < 1024) {
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  } else if (bytes < 1024 * 1024) {
    std::snprintf(buf, sizeof buf, "%.1f KB", static_cast<double>(bytes) / 1024.0);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f MB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  }
  return buf;
}

std::string CostLine(const client::Cost& cost, std::uint64_t bytes_sent) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "prompt %lld tok: %lld computed, %lld cached | %lld generated | ",
                static_cast<long long>(cost.prompt_tokens), static_cast<long long>(cost.recomputed),
                static_cast<long long>(cost.Cached()), static_cast<long long>(cost.generated));
  std::string line = buf;
  line += "sent " + FormatBytes(bytes_sent) + " vs " + FormatBytes(cost.stateless_equivalent_bytes) +
          " stateless";
  std::snprintf(buf, sizeof buf, " | ttft %.0f ms", cost.ttft_ms);
  return line + buf;
}

}  // namespace llmsync::cli
