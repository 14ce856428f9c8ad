// `llmsync bench kvcache`: what the KV cache's disk tier buys, as one JSON object.
//
// 1. One long context (--context tokens): the time to recompute its KV by a prefill through the
//    engine, versus the time for a restarted KvManager to restore it from snapshots — with the
//    files in the page cache ("warm") and after asking the kernel to drop them ("cold",
//    posix_fadvise DONTNEED; best effort, no root needed). The last token's logits after the
//    restore are compared bit for bit with the recompute's.
// 2. A multi-session chat trace where sessions outnumber the RAM budget: every turn acquires the
//    session's path (shared system prompt + earlier turns + the new user message), prefills what is
//    missing, then appends a simulated reply. Reported: where the prompt tokens came from (RAM,
//    disk, recompute), spills, restores and evictions.
// Wall times are printed beside process CPU times: the machine may be shared.
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "base/env.h"
#include "cli/commands.h"
#include "engine/engine.h"
#include "engine/model.h"
#include "engine/model_fingerprint.h"
#include "engine/rng.h"
#include "kvcache/kv_manager/kv_manager.h"
#include "kvcache/recompute.h"

namespace llmsync::cli {
namespace {

using kvcache::KvManager;
using kvcache::KvOptions;

struct BenchKvArgs {
  std::string model;
  std::int64_t context = 4096;
  int threads = 2;
  std::int64_t block_tokens = 32;
  std::string dir;  // snapshot directory; empty: a fresh one under the system temp dir
  bool skip_context = false;
  bool skip_trace = false;
  int sessions = 8;
  int turns = 3;
  std::int64_t system_tokens = 128;
  std::int64_t user_tokens = 32;
  std::int64_t reply_tokens = 32;
  double ram_fraction = 0.35;  // trace RAM budget as a share of its final working set
  bool no_disk = false;        // trace without the disk tier: evicted spans are recomputed
};

double ProcessCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

class Stopwatch {
 public:
  explicit Stopwatch(Env* env) : env_(env), wall0_(env->NowMicros()), cpu0_(ProcessCpuSeconds()) {}
  double Wall() const { return static_cast<double>(env_->NowMicros() - wall0_) * 1e-6; }
  double Cpu() const { return ProcessCpuSeconds() - cpu0_; }

 private:
  Env* env_;
  std::int64_t wall0_;
  double cpu0_;
};

std::vector<std::int32_t> BenchTokens(std::int64_t n, std::int64_t n_vocab, std::uint64_t seed) {
  std::vector<std::int32_t> tokens;
  for (std::int64_t i = 0; i < n; ++i) {
    tokens.push_back(static_cast<std::int32_t>(engine::CounterRandom64(seed, static_cast<std::uint64_t>(i)) %
                                               static_cast<std::uint64_t>(n_vocab)));
  }
  return tokens;
}

// Asks the kernel to drop a file's cached pages (benchmark only; a no-op where unsupported).
void DropPageCache(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
}

std::string Num(double v, int digits = 3) {
  std::ostringstream out;
  out.setf(std::ios::fixed);
  out.precision(digits);
  out << v;
  return out.str();
}

struct Fixture {
  std::unique_ptr<engine::Model> model;
  std::unique_ptr<engine::Engine> engine;
  Id fingerprint;
  double fingerprint_s = 0;
};

KvOptions BaseOptions(const Fixture& f, const BenchKvArgs& args, const std::string& dir,
                      std::int64_t ram_blocks) {
  KvOptions o;
  o.model_fingerprint = f.fingerprint;
  o.geometry = f.model->KvGeometryFor(engine::KvDtype::kF16);
  o.block_tokens = args.block_tokens;
  const kvcache::BlockLayout layout{o.geometry, args.block_tokens};
  o.ram_bytes = std::max<std::int64_t>(ram_blocks, 1) * static_cast<std::int64_t>(layout.BlockBytes());
  o.snapshot_dir = dir;
  o.disk_bytes = std::int64_t{64} << 30;
  return o;
}

// Part 1: one long context, recomputed and then restored by a restarted manager.
Result<std::string> BenchContext(Fixture& f, const BenchKvArgs& args, const std::string& dir) {
  Env* env = Env::Default();
  const std::int64_t n_vocab = f.model->Hparams().n_vocab;
  const std::vector<std::int32_t> tokens = BenchTokens(args.context, n_vocab, 7);
  const std::int64_t blocks = (args.context + args.block_tokens - 1) / args.block_tokens + 4;
  KvOptions options = BaseOptions(f, args, dir, blocks);

  std::vector<float> want;
  double recompute_wall = 0;
  double recompute_cpu = 0;
  double spill_wall = 0;
  {
    LLMSYNC_ASSIGN_OR_RETURN(std::unique_ptr<KvManager> kv, KvManager::Open(options));
    LLMSYNC_ASSIGN_OR_RETURN(kvcache::Acquired acquired, kv->Acquire("bench", tokens));
    Stopwatch sw(env);
    LLMSYNC_ASSIGN_OR_RETURN(kvcache::RecomputeResult r,
                             kvcache::RecomputeSequence(*f.engine, *kv, acquired.seq.Id()));
    recompute_wall = sw.Wall();
    recompute_cpu = sw.Cpu();
    want = std::move(r.logits);
    acquired.seq.Release();
    Stopwatch spill(env);
    LLMSYNC_RETURN_IF_ERROR(kv->FlushToDisk());
    spill_wall = spill.Wall();
  }

  struct Restore {
    double open_s = 0, acquire_wall = 0, acquire_cpu = 0, logits_wall = 0;
    std::int64_t disk_tokens = 0;
    bool exact = false;
  };
  auto restore = [&](bool cold) -> Result<Restore> {
    if (cold) {
      LLMSYNC_ASSIGN_OR_RETURN(std::vector<std::string> names, env->ListDir(dir));
      for (const std::string& name : names) DropPageCache(JoinPath(dir, name));
    }
    Restore out;
    Stopwatch open(env);
    LLMSYNC_ASSIGN_OR_RETURN(std::unique_ptr<KvManager> kv, KvManager::Open(options));
    out.open_s = open.Wall();
    Stopwatch sw(env);
    LLMSYNC_ASSIGN_OR_RETURN(kvcache::Acquired acquired, kv->Acquire("bench", tokens));
    out.acquire_wall = sw.Wall();
    out.acquire_cpu = sw.Cpu();
    out.disk_tokens = acquired.account.disk_tokens;
    Stopwatch logits(env);
    LLMSYNC_ASSIGN_OR_RETURN(kvcache::RecomputeResult r,
                             kvcache::RecomputeSequence(*f.engine, *kv, acquired.seq.Id()));
    out.logits_wall = logits.Wall();
    out.exact = r.logits.size() == want.size() &&
                std::memcmp(r.logits.data(), want.data(), want.size() * sizeof(float)) == 0;
    return out;
  };
  LLMSYNC_ASSIGN_OR_RETURN(Restore warm, restore(false));
  LLMSYNC_ASSIGN_OR_RETURN(Restore cold, restore(true));

  std::uint64_t snapshot_bytes = 0;
  LLMSYNC_ASSIGN_OR_RETURN(std::vector<std::string> names, env->ListDir(dir));
  for (const std::string& name : names) {
    Result<std::uint64_t> size = env->FileSize(JoinPath(dir, name));
    if (size.IsOk()) snapshot_bytes += *size;
  }
  auto part = [&](const char* name, const Restore& r) {
    const double to_logits = r.acquire_wall + r.logits_wall;
    return std::string("\"") + name + "\": {\"open_s\": " + Num(r.open_s) +
           ", \"restore_s\": " + Num(r.acquire_wall) + ", \"restore_cpu_s\": " + Num(r.acquire_cpu) +
           ", \"last_token_logits_s\": " + Num(r.logits_wall) +
           ", \"restore_to_logits_s\": " + Num(to_logits) + ", \"restore_gb_s\": " +
           Num(static_cast<double>(snapshot_bytes) / 1e9 / std::max(r.acquire_wall, 1e-9)) +
           ", \"disk_tokens\": " + std::to_string(r.disk_tokens) +
           ", \"bit_exact\": " + (r.exact ? "true" : "false") +
           ", \"speedup_vs_recompute\": " + Num(recompute_wall / std::max(to_logits, 1e-9), 1) + "}";
  };
  return std::string("{\"context_tokens\": ") + std::to_string(args.context) +
         ", \"recompute_s\": " + Num(recompute_wall) + ", \"recompute_cpu_s\": " + Num(recompute_cpu) +
         ", \"recompute_tok_s\": " +
         Num(static_cast<double>(args.context) / std::max(recompute_wall, 1e-9), 1) +
         ", \"spill_s\": " + Num(spill_wall) + ", \"snapshot_files\": " + std::to_string(names.size()) +
         ", \"snapshot_bytes\": " + std::to_string(snapshot_bytes) + ", " + part("warm", warm) + ", " +
         part("cold", cold) + "}";
}

// Part 2: a multi-session chat trace under a RAM budget smaller than the sessions' working set.
Result<std::string> BenchTrace(Fixture& f, const BenchKvArgs& args, const std::string& dir) {
  Env* env = Env::Default();
  const std::int64_t n_vocab = f.model->Hparams().n_vocab;
  const std::int64_t final_len = args.system_tokens + args.turns * (args.user_tokens + args.reply_tokens);
  const std::int64_t blocks_per_session = (final_len + args.block_tokens - 1) / args.block_tokens;
  const std::int64_t working_set = args.sessions * blocks_per_session;
  const std::int64_t ram_blocks = std::max<std::int64_t>(
      blocks_per_session + 2,
      static_cast<std::int64_t>(std::ceil(args.ram_fraction * static_cast<double>(working_set))));
  KvOptions options = BaseOptions(f, args, args.no_disk ? "" : dir, ram_blocks);
  LLMSYNC_ASSIGN_OR_RETURN(std::unique_ptr<KvManager> kv, KvManager::Open(options));

  const std::vector<std::int32_t> system = BenchTokens(args.system_tokens, n_vocab, 11);
  std::vector<std::vector<std::int32_t>> paths(static_cast<std::size_t>(args.sessions), system);
  std::int64_t prompt_tokens = 0;
  std::int64_t computed = 0;
  Stopwatch sw(env);
  for (int turn = 0; turn < args.turns; ++turn) {
    for (int s = 0; s < args.sessions; ++s) {
      std::vector<std::int32_t>& path = paths[static_cast<std::size_t>(s)];
      const std::uint64_t salt =
          1000 + static_cast<std::uint64_t>(s) * 100 + static_cast<std::uint64_t>(turn);
      std::vector<std::int32_t> user = BenchTokens(args.user_tokens, n_vocab, salt);
      path.insert(path.end(), user.begin(), user.end());
      LLMSYNC_ASSIGN_OR_RETURN(kvcache::Acquired acquired, kv->Acquire("bench", path));
      prompt_tokens += static_cast<std::int64_t>(path.size());
      LLMSYNC_ASSIGN_OR_RETURN(kvcache::RecomputeResult r,
                               kvcache::RecomputeSequence(*f.engine, *kv, acquired.seq.Id()));
      computed += r.computed_tokens;
      std::vector<std::int32_t> reply = BenchTokens(args.reply_tokens, n_vocab, salt + 50);
      LLMSYNC_RETURN_IF_ERROR(kv->Append(acquired.seq.Id(), reply));
      LLMSYNC_ASSIGN_OR_RETURN(kvcache::RecomputeResult g,
                               kvcache::RecomputeSequence(*f.engine, *kv, acquired.seq.Id(), false));
      computed += g.computed_tokens;
      path.insert(path.end(), reply.begin(), reply.end());
    }
  }
  const double wall = sw.Wall();
  kvcache::KvStats st = kv->Stats();
  auto rate = [&](std::uint64_t n) {
    return Num(static_cast<double>(n) / static_cast<double>(prompt_tokens), 4);
  };
  return std::string("{\"disk_tier\": ") + (args.no_disk ? "false" : "true") +
         ", \"sessions\": " + std::to_string(args.sessions) + ", \"turns\": " + std::to_string(args.turns) +
         ", \"system_tokens\": " + std::to_string(args.system_tokens) +
         ", \"user_tokens\": " + std::to_string(args.user_tokens) +
         ", \"reply_tokens\": " + std::to_string(args.reply_tokens) +
         ", \"ram_blocks\": " + std::to_string(st.ram_blocks_capacity) +
         ", \"working_set_blocks\": " + std::to_string(working_set) +
         ", \"ram_mb\": " + Num(static_cast<double>(options.ram_bytes) / (1 << 20), 1) +
         ", \"prompt_tokens\": " + std::to_string(prompt_tokens) +
         ", \"ram_tokens\": " + std::to_string(st.tokens_ram) +
         ", \"disk_tokens\": " + std::to_string(st.tokens_disk) +
         ", \"recompute_tokens\": " + std::to_string(st.tokens_recompute) +
         ", \"ram_hit_rate\": " + rate(st.tokens_ram) + ", \"disk_hit_rate\": " + rate(st.tokens_disk) +
         ", \"recompute_rate\": " + rate(st.tokens_recompute) +
         ", \"engine_tokens\": " + std::to_string(computed) + ", \"spills\": " + std::to_string(st.spills) +
         ", \"restores\": " + std::to_string(st.restores) +
         ", \"ram_evictions\": " + std::to_string(st.ram_evictions) + ", \"wall_s\": " + Num(wall) + "}";
}

int RunBenchKvcache(const BenchKvArgs& args) {
  auto fail = [](const Status& s) {
    std::cerr << "error: " << s.Message() << "\n";
    return 1;
  };
  if (args.context < 1 || args.context > (1 << 20) || args.sessions < 1 || args.turns < 1 ||
      args.system_tokens < 0 || args.user_tokens < 1 || args.reply_tokens < 1 || !(args.ram_fraction > 0)) {
    return fail(Status::InvalidArgument("bench kvcache: sizes must be positive"));
  }
  Env* env = Env::Default();
  Fixture f;
  auto model = engine::Model::Open(env, args.model, engine::Model::Placement::kHugePageCopy);
  if (!model.IsOk()) return fail(model.GetStatus());
  f.model = std::move(model).Value();
  engine::EngineOptions eo;
  eo.n_threads = args.threads;
  eo.max_batch_tokens = 256;
  auto engine = engine::Engine::Create(*f.model, eo);
  if (!engine.IsOk()) return fail(engine.GetStatus());
  f.engine = std::move(engine).Value();
  Stopwatch fp(env);
  f.fingerprint = engine::ModelFingerprint(*f.model, args.threads);
  f.fingerprint_s = fp.Wall();

  std::string root = args.dir;
  if (root.empty()) {
    root = (std::filesystem::temp_directory_path() /
            ("llmsync-bench-kvcache-" + std::to_string(::getpid()) + "-" + std::to_string(env->UnixMillis())))
               .string();
  }
  const std::string context_dir = JoinPath(root, "context");
  const std::string trace_dir = JoinPath(root, "trace");
  std::string context_json = "null";
  std::string trace_json = "null";
  Status status;
  if (!args.skip_context) {
    auto r = BenchContext(f, args, context_dir);
    if (r.IsOk()) context_json = *r;
    status = r.GetStatus();
  }
  if (status.IsOk() && !args.skip_trace) {
    auto r = BenchTrace(f, args, trace_dir);
    if (r.IsOk()) trace_json = *r;
    status = r.GetStatus();
  }
  if (args.dir.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(root, ec);
  }
  if (!status.IsOk()) return fail(status);
  const engine::ModelHparams& hp = f.model->Hparams();
  const kvcache::BlockLayout layout{f.model->KvGeometryFor(engine::KvDtype::kF16), args.block_tokens};
  std::cout << "{\"benchmark\": \"kvcache\", \"model\": \"" << args.model << "\", \"n_embd\": " << hp.n_embd
            << ", \"n_layer\": " << hp.n_layer << ", \"n_head_kv\": " << hp.n_head_kv
            << ", \"threads\": " << args.threads << ", \"block_tokens\": " << args.block_tokens
            << ", \"kv_dtype\": \"f16\", \"block_bytes\": " << layout.BlockBytes()
            << ", \"fingerprint_s\": " << Num(f.fingerprint_s) << ", \"context\": " << context_json
            << ", \"trace\": " << trace_json << "}\n";
  return 0;
}

}  // namespace

void AddBenchKvcacheCommands(CLI::App& app, CliState& state) {
  CLI::App* bench = GetOrAddSubcommand(app, "bench", "Benchmarks that print JSON");
  CLI::App* cmd =
      bench->add_subcommand("kvcache", "KV cache: disk restore vs recompute, multi-session hit rates");
  auto args = std::make_shared<BenchKvArgs>();
  cmd->add_option("--model", args->model, "GGUF model")->required();
  cmd->add_option("--context", args->context, "Tokens of the long context (default 4096)");
  cmd->add_option("--threads", args->threads, "Engine threads (default 2)");
  cmd->add_option("--block-tokens", args->block_tokens, "Positions per KV block (default 32)");
  cmd->add_option("--dir", args->dir, "Snapshot directory to use and keep (default: a temporary one)");
  cmd->add_flag("--skip-context", args->skip_context, "Skip the restore-vs-recompute part");
  cmd->add_flag("--skip-trace", args->skip_trace, "Skip the multi-session trace");
  cmd->add_option("--sessions", args->sessions, "Trace: sessions (default 8)");
  cmd->add_option("--turns", args->turns, "Trace: turns per session (default 3)");
  cmd->add_option("--system-tokens", args->system_tokens, "Trace: shared system prompt tokens (default 128)");
  cmd->add_option("--user-tokens", args->user_tokens, "Trace: tokens per user message (default 32)");
  cmd->add_option("--reply-tokens", args->reply_tokens, "Trace: tokens per reply (default 32)");
  cmd->add_option("--ram-fraction", args->ram_fraction,
                  "Trace: RAM budget as a share of the sessions' final working set (default 0.35)");
  cmd->add_flag("--no-disk", args->no_disk, "Trace: no disk tier (evicted spans are recomputed)");
  cmd->callback([args, &state] { state.exit_code = RunBenchKvcache(*args); });
}

}  // namespace llmsync::cli
