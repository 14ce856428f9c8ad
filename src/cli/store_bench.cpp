// `llmsync bench store`: what the durable store sustains on this machine, as one JSON object.
//
//   node appends/s   single_sequential  one thread, one node per append (one commit each)
//                    single_concurrent  --threads threads, one node per append, sessions apart:
//                                       the writer's group commit shares fsyncs between them
//                    batched            one thread, --batch nodes per append
//   event appends/s  async_group_commit one producer, one event per asynchronous call, timed
//                                       until the last event is durable
//                    blocking_concurrent  --event-threads threads, one event per blocking call
//   path latency     Path(node) of a node at depth --depth: p50, p90, max over --path-reps
//   fdatasync        p50 and p90 of 4 KiB write + fdatasync in --dir, measured
//                    before the appends: what one durable commit costs on this disk right now
//
// Rates are given per second of wall time and per second of the process's CPU time (the machine
// is shared, so the second says what the work costs when the cores are busy with others). Every
// figure is durable-on-acknowledge (WAL, synchronous=FULL; with --store redis://..., as durable as
// the server's appendfsync setting). Node appends go through the
// session layer, so they include hashing, validation and sealing of nothing (all public).
#include <time.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/env.h"
#include "cli/store_bench.h"
#include "session/session_service.h"
#include "store/open_store.h"
#include "store/sqlite/sqlite_store.h"

namespace llmsync::cli {
namespace {

struct StoreBenchArgs {
  std::string dir;    // empty: a fresh directory under the system temp dir, removed afterwards
  std::string store;  // empty: a scratch SQLite database in dir; else a redis:// URL
  std::int64_t single = 2000;
  std::int64_t concurrent = 20000;
  int threads = 16;
  std::int64_t batched = 100000;
  int batch = 64;
  std::int64_t events = 200000;
  std::int64_t blocking_events = 20000;
  int event_threads = 8;
  int depth = 10000;
  int path_reps = 20;
  bool quick = false;
};

// Operations per second of wall time, and per second of this process's CPU time (all threads).
// The machine is shared: the wall rate is what callers saw, the CPU rate what the work costs.
struct Rate {
  double per_s = 0;
  double per_cpu_s = 0;
};

double ProcessCpuSeconds() {
  timespec t{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

class Stopwatch {
 public:
  explicit Stopwatch(Env* env) : env_(env), wall_us_(env->NowMicros()), cpu_s_(ProcessCpuSeconds()) {}
  Rate RateOf(std::int64_t count) const {
    const double wall = static_cast<double>(env_->NowMicros() - wall_us_) / 1e6;
    const double cpu = ProcessCpuSeconds() - cpu_s_;
    const auto n = static_cast<double>(count);
    return {wall > 0 ? n / wall : 0, cpu > 0 ? n / cpu : 0};
  }

 private:
  Env* env_;
  std::int64_t wall_us_;
  double cpu_s_;
};

class Bench {
 public:
  Bench(store::Store* store, Env* env)
      : store_(store), env_(env), sessions_(store, env, session::SessionOptions{}) {}

  // A ~200-byte node with 50 tokens, different for every i.
  static session::NodeDraft Draft(std::int64_t i) {
    session::NodeDraft d;
    d.kind = i % 2 == 0 ? session::NodeKind::kUser : session::NodeKind::kAssistant;
    d.text = "message " + std::to_string(i) + ": " + std::string(180, static_cast<char>('a' + i % 26));
    for (int t = 0; t < 50; ++t) d.tokens.push_back(static_cast<session::TokenId>((i * 50 + t) % 32000));
    return d;
  }

  Result<session::SessionInfo> NewSession() { return sessions_.CreateSession("bench", Id()); }

  // Appends `count` nodes in appends of `per_call`, chained from the session's head.
  Status AppendChain(const session::SessionInfo& s, std::int64_t count, int per_call, std::int64_t salt) {
    Id head = s.head;
    for (std::int64_t done = 0; done < count;) {
      session::AppendRequest req;
      req.tenant = s.tenant;
      req.session = s.id;
      req.parent = head;
      for (int k = 0; k < per_call && done < count; ++k, ++done) req.nodes.push_back(Draft(salt + done));
      LLMSYNC_ASSIGN_OR_RETURN(session::AppendResult r, sessions_.Append(req));
      head = r.head;
    }
    return Status::Ok();
  }

  Result<Rate> NodesPerSecond(std::int64_t count, int threads, int per_call) {
    std::vector<session::SessionInfo> sessions;
    for (int t = 0; t < threads; ++t) {
      LLMSYNC_ASSIGN_OR_RETURN(session::SessionInfo s, NewSession());
      sessions.push_back(s);
    }
    std::mutex mu;
    Status failure;
    const Stopwatch watch(env_);
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        Status s = AppendChain(sessions[t], count / threads, per_call, t * count);
        std::lock_guard<std::mutex> lock(mu);
        if (!s.IsOk()) failure = s;
      });
    }
    for (auto& w : workers) w.join();
    const Rate rate = watch.RateOf(count / threads * threads);
    if (!failure.IsOk()) return failure;
    return rate;
  }

  Result<Id> NewRun() {
    LLMSYNC_ASSIGN_OR_RETURN(session::SessionInfo s, NewSession());
    store::RunRecord run;
    run.id = Id::Random();
    run.tenant = s.tenant;
    run.session = s.id;
    LLMSYNC_RETURN_IF_ERROR(store_->CreateRun(run));
    return run.id;
  }

  static store::RunEventDraft Event(const Id& run, std::int64_t i) {
    return {"bench", run, "token", "{\"token\":" + std::to_string(i % 32000) + ",\"text\":\" word\"}"};
  }

  Result<Rate> AsyncEventsPerSecond(std::int64_t count) {
    LLMSYNC_ASSIGN_OR_RETURN(Id run, NewRun());
    std::mutex mu;
    std::condition_variable cv;
    std::int64_t acked = 0;
    Status failure;
    const Stopwatch watch(env_);
    for (std::int64_t i = 0; i < count; ++i) {
      store_->AppendRunEventsAsync({Event(run, i)}, [&](Result<std::vector<std::uint64_t>> ids) {
        std::lock_guard<std::mutex> lock(mu);
        if (!ids.IsOk()) failure = ids.GetStatus();
        if (++acked == count) cv.notify_all();
      });
    }
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return acked == count; });
    const Rate rate = watch.RateOf(count);
    if (!failure.IsOk()) return failure;
    return rate;
  }

  Result<Rate> BlockingEventsPerSecond(std::int64_t count, int threads) {
    LLMSYNC_ASSIGN_OR_RETURN(Id run, NewRun());
    std::mutex mu;
    Status failure;
    const std::int64_t per_thread = count / threads;
    const Stopwatch watch(env_);
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        for (std::int64_t i = 0; i < per_thread; ++i) {
          auto ids = store_->AppendRunEvents({Event(run, t * per_thread + i)});
          if (!ids.IsOk()) {
            std::lock_guard<std::mutex> lock(mu);
            failure = ids.GetStatus();
            return;
          }
        }
      });
    }
    for (auto& w : workers) w.join();
    const Rate rate = watch.RateOf(per_thread * threads);
    if (!failure.IsOk()) return failure;
    return rate;
  }

  // Milliseconds of Path(deepest node) at `depth`: p50, p90, max.
  Result<std::vector<double>> PathLatencyMs(int depth, int reps) {
    LLMSYNC_ASSIGN_OR_RETURN(session::SessionInfo s, NewSession());
    LLMSYNC_RETURN_IF_ERROR(AppendChain(s, depth, 1000, 0));
    LLMSYNC_ASSIGN_OR_RETURN(session::SessionInfo info, sessions_.GetSession(s.tenant, s.id));
    std::vector<double> ms;
    for (int i = 0; i < reps; ++i) {
      const std::int64_t start = env_->NowMicros();
      LLMSYNC_ASSIGN_OR_RETURN(std::vector<session::Node> path, sessions_.Path(s.tenant, s.id, info.head));
      ms.push_back(static_cast<double>(env_->NowMicros() - start) / 1e3);
      if (path.size() != static_cast<std::size_t>(depth))
        return Status::Internal("path has the wrong length");
    }
    std::sort(ms.begin(), ms.end());
    return std::vector<double>{ms[ms.size() / 2], ms[ms.size() * 9 / 10], ms.back()};
  }

 private:
  store::Store* store_;
  Env* env_;
  session::SessionService sessions_;
};

// Microseconds of a 4 KiB append + fdatasync through the Env: p50, p90 over `reps`.
Result<std::vector<double>> FdatasyncMicros(Env* env, const std::string& dir, int reps) {
  const std::string path = JoinPath(dir, "fsync-probe");
  LLMSYNC_ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> file,
                           env->NewWritableFile(path, OpenMode::kTruncate));
  const std::string block(4096, 'x');
  std::vector<double> us;
  for (int i = 0; i < reps; ++i) {
    const std::int64_t start = env->NowMicros();
    LLMSYNC_RETURN_IF_ERROR(file->Append(block));
    LLMSYNC_RETURN_IF_ERROR(file->Sync());
    us.push_back(static_cast<double>(env->NowMicros() - start));
  }
  LLMSYNC_RETURN_IF_ERROR(file->Close());
  LLMSYNC_RETURN_IF_ERROR(env->RemoveFile(path));
  std::sort(us.begin(), us.end());
  return std::vector<double>{us[us.size() / 2], us[us.size() * 9 / 10]};
}

Result<std::string> RunStoreBench(StoreBenchArgs args) {
  if (args.quick) {
    args.single = 50;
    args.concurrent = 400;
    args.batched = 2000;
    args.events = 2000;
    args.blocking_events = 400;
    args.depth = 500;
    args.path_reps = 3;
  }
  if (args.threads < 1 || args.event_threads < 1 || args.batch < 1 || args.batch > 1024 || args.depth < 1 ||
      args.path_reps < 1) {
    return Status::InvalidArgument("threads, batch (1..1024), depth and path-reps must be positive");
  }
  Env* env = Env::Default();
  std::string dir = args.dir;
  bool remove_dir = false;
  if (dir.empty()) {
    std::string pattern = (std::filesystem::temp_directory_path() / "llmsync_bench_store_XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) return Status::Internal("cannot create a temporary directory");
    dir = pattern;
    remove_dir = true;
  }
  LLMSYNC_RETURN_IF_ERROR(env->CreateDirs(dir));
  const std::string path = JoinPath(dir, "bench-" + Id::Random().ShortHex() + ".db");
  Result<std::string> json = [&]() -> Result<std::string> {
    store::StoreLocation where{store::StoreKind::kSqlite, path};
    if (!args.store.empty()) {
      LLMSYNC_ASSIGN_OR_RETURN(where, store::ParseStoreLocation(args.store));
      if (where.kind == store::StoreKind::kSqlite)
        return Status::InvalidArgument("bench store --store takes a redis:// URL; SQLite uses --dir");
    }
    const bool redis = where.kind == store::StoreKind::kRedis;
    LLMSYNC_ASSIGN_OR_RETURN(std::unique_ptr<store::Store> db, store::OpenStore(where, env));
    Bench bench(db.get(), env);
    LLMSYNC_ASSIGN_OR_RETURN(std::vector<double> fsync_us, FdatasyncMicros(env, dir, args.quick ? 5 : 100));
    LLMSYNC_ASSIGN_OR_RETURN(Rate single, bench.NodesPerSecond(args.single, 1, 1));
    LLMSYNC_ASSIGN_OR_RETURN(Rate concurrent, bench.NodesPerSecond(args.concurrent, args.threads, 1));
    LLMSYNC_ASSIGN_OR_RETURN(Rate batched, bench.NodesPerSecond(args.batched, 1, args.batch));
    LLMSYNC_ASSIGN_OR_RETURN(Rate async_events, bench.AsyncEventsPerSecond(args.events));
    LLMSYNC_ASSIGN_OR_RETURN(Rate blocking_events,
                             bench.BlockingEventsPerSecond(args.blocking_events, args.event_threads));
    LLMSYNC_ASSIGN_OR_RETURN(std::vector<double> path_ms, bench.PathLatencyMs(args.depth, args.path_reps));
    char buf[2048];
    std::snprintf(
        buf, sizeof buf,
        "{\"benchmark\": \"store\", \"store\": \"%s\", \"durability\": \"%s\", "
        "\"node_bytes\": 200, \"node_tokens\": 50, \"concurrent_threads\": %d, \"batch\": %d, "
        "\"event_threads\": %d, "
        "\"node_appends_per_s\": {\"single_sequential\": %.0f, \"single_concurrent\": %.0f, \"batched\": "
        "%.0f}, "
        "\"node_appends_per_cpu_s\": {\"single_sequential\": %.0f, \"single_concurrent\": %.0f, \"batched\": "
        "%.0f}, "
        "\"event_appends_per_s\": {\"async_group_commit\": %.0f, \"blocking_concurrent\": %.0f}, "
        "\"event_appends_per_cpu_s\": {\"async_group_commit\": %.0f, \"blocking_concurrent\": %.0f}, "
        "\"path_latency_ms\": {\"depth\": %d, \"p50\": %.2f, \"p90\": %.2f, \"max\": %.2f}, "
        "\"fdatasync_us\": {\"p50\": %.0f, \"p90\": %.0f}}\n",
        redis ? store::DescribeStore(where).c_str() : ("sqlite " + store::SqliteLibraryVersion()).c_str(),
        redis ? "as the redis server is configured (appendfsync)" : "WAL, synchronous=FULL", args.threads,
        args.batch, args.event_threads, single.per_s, concurrent.per_s, batched.per_s, single.per_cpu_s,
        concurrent.per_cpu_s, batched.per_cpu_s, async_events.per_s, blocking_events.per_s,
        async_events.per_cpu_s, blocking_events.per_cpu_s, args.depth, path_ms[0], path_ms[1], path_ms[2],
        fsync_us[0], fsync_us[1]);
    return std::string(buf);
  }();
  std::error_code ec;
  if (remove_dir) {
    std::filesystem::remove_all(dir, ec);
  } else {
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix, ec);
  }
  return json;
}

}  // namespace

void AddStoreBenchCommand(CLI::App& bench, CliState& state) {
  CLI::App* cmd =
      bench.add_subcommand("store", "Node and event appends/s and path latency of the SQLite or Redis store");
  auto args = std::make_shared<StoreBenchArgs>();
  cmd->add_option("--dir", args->dir, "Directory for the scratch database (default: a fresh temp dir)");
  cmd->add_option(
      "--store", args->store,
      "redis://HOST[:PORT][/DB] to measure the Redis store (use a scratch db: it writes sessions)");
  cmd->add_option("--single", args->single, "Sequential single-node appends (default 2000)");
  cmd->add_option("--concurrent", args->concurrent,
                  "Single-node appends spread over --threads (default 20000)");
  cmd->add_option("--threads", args->threads, "Threads for concurrent node appends (default 16)");
  cmd->add_option("--batched", args->batched, "Nodes appended in batches (default 100000)");
  cmd->add_option("--batch", args->batch, "Nodes per batched append, 1..1024 (default 64)");
  cmd->add_option("--events", args->events, "Asynchronous event appends (default 200000)");
  cmd->add_option("--blocking-events", args->blocking_events, "Blocking event appends (default 20000)");
  cmd->add_option("--event-threads", args->event_threads, "Threads for blocking event appends (default 8)");
  cmd->add_option("--depth", args->depth, "Depth of the node whose path is timed (default 10000)");
  cmd->add_option("--path-reps", args->path_reps, "Timed Path calls (default 20)");
  cmd->add_flag("--quick", args->quick, "Tiny counts, for smoke tests (figures are meaningless)");
  cmd->callback([&state, args] {
    Result<std::string> json = RunStoreBench(*args);
    if (!json.IsOk()) {
      std::cerr << "error: " << json.GetStatus().ToString() << "\n";
      state.exit_code = 1;
      return;
    }
    std::cout << *json;
    state.exit_code = 0;
  });
}

}  // namespace llmsync::cli
