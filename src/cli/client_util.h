// Helpers shared by the client-side commands (chat, demo, bench trace, bench sse): an embedded
// llmsync server on a free loopback port, one chat turn through the client library, and the
// human-readable cost line.
//
// Thread safety: free functions; an EmbeddedServer is owned and stopped by one thread.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "api/llmsync_server.h"
#include "llmsync/client.h"

namespace llmsync::cli {

struct CliState;
// The client-side commands besides chat; AddChatCommands (commands.h) registers them all.
void AddDemoCommand(CLI::App& app, CliState& state);         // demo_command.cpp
void AddBenchTraceCommand(CLI::App& app, CliState& state);   // bench_trace_command.cpp
void AddBenchSseCommand(CLI::App& app, CliState& state);     // bench_sse_command.cpp
void AddBenchAppendCommand(CLI::App& app, CliState& state);  // bench_append_command.cpp

struct EmbeddedOptions {
  std::string data_dir;    // empty: ~/.llmsync (or a temp directory when HOME is unset)
  std::string model_path;  // empty: the demo model under data_dir
  std::int64_t kv_ram_mb = 0;
  int engine_threads = 0;
  int max_active_runs = 0;
  std::int64_t max_context = 0;
  int http_threads = 0;
};

// A running in-process server; stops when destroyed.
class EmbeddedServer {
 public:
  static Result<std::unique_ptr<EmbeddedServer>> Start(const EmbeddedOptions& options);
  EmbeddedServer(std::unique_ptr<api::LlmsyncServer> server, std::string data_dir)
      : server_(std::move(server)), data_dir_(std::move(data_dir)) {}
  ~EmbeddedServer();
  std::uint16_t Port() const { return server_->Port(); }
  const std::string& DataDir() const { return data_dir_; }
  std::string Url() const { return "http://127.0.0.1:" + std::to_string(Port()); }

 private:
  std::unique_ptr<api::LlmsyncServer> server_;
  std::string data_dir_;
};

// ~/.llmsync, or a fresh directory under $TMPDIR when there is no HOME.
std::string DefaultDataDir();
// A fresh directory under $TMPDIR named llmsync-<what>-XXXXXX.
Result<std::string> MakeTempDir(const std::string& what);

// One turn: append `nodes` under `parent` (empty: the current head), start a run from the new head,
// stream it through `on_token`, then sync the replica.
struct TurnResult {
  client::RunResult run;
  std::uint64_t bytes_sent = 0;  // append + run request bodies of this turn
  std::string user_node;         // the last node appended
  double client_ttft_ms = 0;     // from the append request to the first token received
};
Result<TurnResult> RunTurn(client::Client& c, const std::string& parent,
                           const std::vector<client::NewNode>& nodes, const client::RunOptions& options,
                           const std::function<void(std::string_view)>& on_token);
// Starts a run from `from` (a node already on the server), streams it and syncs.
Result<TurnResult> RunFrom(client::Client& c, const std::string& from, const client::RunOptions& options,
                           const std::function<void(std::string_view)>& on_token);

std::string FormatBytes(std::uint64_t bytes);
// "prompt 312 tok: 12 computed, 300 cached | 20 generated | sent 180 B vs 2.4 KB stateless | ttft 9 ms"
std::string CostLine(const client::Cost& cost, std::uint64_t bytes_sent);

}  // namespace llmsync::cli
