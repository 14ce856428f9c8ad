// RunScheduler: executes generation runs durably, detached from any connection.
//
// One inference thread owns the engine. Each step it builds one batch across active runs
// (continuous batching): a slice of prompt for runs still prefilling, one token for each decoding
// run. KV comes from the KV manager: Acquire reuses the longest cached prefix (RAM or disk) and the
// account of where every prompt token came from is the run's cost report. Every token becomes a
// durable event (group commit); the event hub delivers events to subscribers only once durable.
// A finished run appends its assistant node (generation prompt + generated tokens, so the next
// turn starts where the KV ends) with an idempotency key derived from the run id. A prefill-only
// run (RunParams::prefill_only) ends once its prompt's KV is computed, with no token and no node:
// the KV stays cached for the runs that extend the prompt.
//
// Crash and restart: Start() finds runs left queued or running, reads their durable token events
// and continues from the last one. Sampling is keyed by (seed, position) and the engine is
// batch-invariant, so the continuation equals what the uninterrupted run would have produced.
//
// Cancel is authoritative: once Cancel returns, the run is cancelled in the store and produces no
// more tokens. Stop() checkpoints: runs in flight stay "running" with their durable events and
// resume on the next Start; the KV cache is flushed to disk so the restart restores, not recomputes.
//
// Many processes on one store (worker_id set): a run belongs to the engine process holding its
// lease (Store::LeaseRun), renewed every scan_ms for lease_ms. A coordinator thread renews the
// leases of this process's runs, notices runs cancelled by another process, and claims queued runs
// and runs whose owner stopped renewing (SIGKILL), resuming them exactly like a restart does. So a
// dead engine's runs continue elsewhere within about lease_ms + scan_ms. With execute = false (the
// api role) Submit only records the run; an engine claims it. Every claim has an epoch (a fencing
// token, Store::LeaseRun) that the run's writes carry: an engine paused past its lease finds its
// writes refused once another engine took the run over, and drops the run without writing more.
// Cache-aware dispatch (scheduler_dispatch.cpp): Submit offers each run to the engine holding the
// deepest node of its path (Store::DispatchRun), which other engines leave it to for a grace period;
// an engine publishes its load and the nodes whose KV it holds (kv_directory.h) every scan and at
// the end of every run.
//
// Thread safety: Submit, Cancel and the accessors may be called from any thread; Start and Stop
// from one controlling thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/env.h"
#include "base/metrics.h"
#include "engine/engine.h"
#include "kvcache/kv_manager/kv_manager.h"
#include "runs/conversation.h"
#include "runs/event_hub.h"
#include "runs/run_events.h"
#include "runs/run_params.h"
#include "runs/scheduler/kv_directory.h"
#include "runs/scheduler/remote_engine.h"
#include "runs/scheduler/run_metrics.h"
#include "runs/token_constraint.h"
#include "session/session_service.h"
#include "store/store.h"

namespace llmsync::runs {

// How Submit's kInvalidArgument for a prompt that does not fit the context begins, so the API
// can answer it as 400 context_length_exceeded (never 429: retrying cannot help).
inline constexpr std::string_view kContextExceededPrefix = "the prompt has ";
inline bool IsContextLengthExceeded(const Status& s) {
  return s.Code() == StatusCode::kInvalidArgument && s.Message().rfind(kContextExceededPrefix, 0) == 0;
}

struct SchedulerOptions {
  int max_active_runs = 8;  // runs decoding side by side
  // Runs waiting for a decoding slot; Submit beyond it is kResourceExhausted (HTTP 429 with
  // Retry-After). 0: unbounded.
  std::size_t max_queued_runs = 256;
  std::int64_t prefill_chunk = 128;  // prompt tokens per run per step
  std::int64_t max_context = 4096;   // prompt + generation, in tokens
  RunLimits limits;
  // Empty: the single-process mode (every unfinished run is this process's, resumed at Start).
  std::string worker_id;
  bool execute = true;           // false: record runs, never execute them (the api role)
  std::int64_t lease_ms = 3000;  // a run's lease; a dead owner's runs move after it lapses
  std::int64_t scan_ms = 500;    // lease renewal and claim scan period
  // Many processes: how Submit picks the engine for a run (docs/ARCHITECTURE.md, "Cache-aware
  // dispatch"): the engine holding the deepest node of the run's path, unless its queue (runs
  // waiting there plus runs offered to it) exceeds dispatch_queue_bound; round robin for comparison.
  store::DispatchMode dispatch = store::DispatchMode::kCacheAware;
  std::uint64_t dispatch_queue_bound = 4;
  // Other engines leave a run offered to a live engine alone this long (then anyone may claim it).
  std::int64_t dispatch_grace_ms = 2000;
  std::size_t kv_directory_cap = 16384;  // nodes an engine publishes as held, at most
};

struct SchedulerDeps {
  engine::Engine* engine = nullptr;
  kvcache::KvManager* kv = nullptr;
  const Conversation* conversation = nullptr;
  session::SessionService* sessions = nullptr;
  store::Store* store = nullptr;
  EventHub* hub = nullptr;
  EventCodec codec;
  Env* env = nullptr;
  MetricsRegistry* metrics = nullptr;
  // Builds the token constraint of a run with a RunParams::constraint spec (structured output);
  // when null, such runs are refused.
  ConstraintFactory constraint_factory;
  // Non-null: runs are computed by remote engines (scheduler_remote.cpp) instead of `engine`.
  RemoteEngine* remote = nullptr;
  // Called on the inference thread once a run's final status is durable (the session event feed's
  // run.finished). May be null.
  std::function<void(const store::RunRecord&)> on_run_end;
};

struct SubmitRequest {
  // Zero: a fresh random id. A caller-derived id (from an idempotency key) makes Submit
  // idempotent: kAlreadyExists when a run with that id exists, and nothing is queued.
  Id id;
  std::string tenant;
  Id session;
  Id from_node;  // the path the run reads; zero: the session head
  RunParams params;
  std::uint64_t request_bytes = 0;               // what the client sent for this turn
  std::uint64_t stateless_equivalent_bytes = 0;  // a full-history resend of the same turn
  // Zero: none. Otherwise this run is admitted only once that run has prefilled its prompt (or
  // has left the scheduler), so it finds the prompt's KV shared instead of computing it again:
  // the other samples of an n > 1 request. Not persisted: a restart admits in queue order.
  Id after_prefill_of;
};

class RunScheduler {
 public:
  // REQUIRES: every dependency outlives the scheduler.
  RunScheduler(SchedulerDeps deps, SchedulerOptions options);
  ~RunScheduler();
  RunScheduler(const RunScheduler&) = delete;
  RunScheduler& operator=(const RunScheduler&) = delete;

  // Resumes interrupted runs, then starts the inference thread.
  Status Start();
  // Stops the thread; runs in flight keep their durable state and resume on the next Start.
  void Stop();

  // Validates, records the run as queued, opens it in the event hub and queues it.
  // kResourceExhausted, before any work, when max_queued_runs runs already wait.
  Result<store::RunRecord> Submit(const SubmitRequest& request);
  // Cancels a queued or running run (idempotent; a finished run is returned as it is).
  Result<store::RunRecord> Cancel(const std::string& tenant, const Id& run);

  // A KV lease on the session is held here for ttl_s: with many processes, the session's runs are
  // offered to this engine (reason lease). Unpin forgets it. No-ops in one process.
  Status PinSession(const Id& session, double ttl_s);
  Status UnpinSession(const Id& session);

  std::size_t ActiveRuns() const;
  // Runs waiting for a slot, and their prompt tokens.
  struct QueueStats {
    std::size_t runs = 0;
    std::uint64_t prompt_tokens = 0;
  };
  QueueStats Queue() const;

  struct ActiveRun;  // defined in scheduler_internal.h

 private:
  void Loop();
  bool Admit();
  Status Step();
  Status StartRun(ActiveRun& run);
  void HandleCancels();
  void Finish(ActiveRun& run, store::RunStatus status, const std::string& finish_reason, const Status& error);
  // Updates text state for a sampled token; returns the text now releasable to subscribers and
  // whether the run is done (end of generation, a stop string, or max_tokens).
  std::pair<std::string, bool> AdvanceText(ActiveRun& run, TokenId token);
  void CancelUnstarted(std::unique_ptr<ActiveRun> run);
  // kResourceExhausted when max_queued_runs runs already wait. REQUIRES: mu_ held.
  Status CheckQueueRoomLocked() const;
  void Emit(ActiveRun& run, EventBody body);
  // Records the run's final status with its terminal events (one store transaction), publishes
  // the events and closes the run in the hub. Crash points "<status>.before_commit" and
  // "<status>.after_commit" (crash_point.h) bracket the commit.
  void CommitFinal(ActiveRun& run, store::RunUpdate update, const std::vector<EventBody>& bodies);
  // Startup repair: a finished run whose stream lacks its terminal event gets one, and an
  // unfinished run whose stream ends with a terminal event takes that event's status.
  Status RepairFinishedRuns();
  Result<std::unique_ptr<ActiveRun>> Prepare(store::RunRecord record, bool resumed);
  // A lease this process holds on a run (many processes). `lost` is shared with the ActiveRun.
  struct RunLease {
    std::string tenant;
    std::uint64_t epoch = 0;
    store::RunPlacement placement;  // where the run is and why
    std::shared_ptr<std::atomic<bool>> lost = std::make_shared<std::atomic<bool>>(false);
  };
  // Reads the run's durable events, rebuilds its state and queues it (a restart or a takeover
  // under `lease`).
  Status Resume(store::RunRecord record, const RunLease& lease);
  // Many processes: whether another worker took the run over (its writes were refused, or the
  // lease cannot be renewed at its epoch). Waits for the run's queued events first.
  bool LeaseLost(ActiveRun& run);
  // Runs whose lease was lost stop here without writing anything more.
  void DropLostLeases();
  void DropQuietly(ActiveRun& run);
  bool MultiProcess() const { return !options_.worker_id.empty(); }
  void CoordinatorLoop();
  // The step with a remote engine (scheduler_remote.cpp): starts, feeds and fails over the runs'
  // upstream streams, then waits for one of them to have news.
  Status StepRemote();
  // Starts the run on an upstream (emitting run.upstream); false when the run ended instead.
  bool StartRemote(ActiveRun& run, const std::string& previous_error);
  void AnnounceUpstream(ActiveRun& run);  // emits run.upstream for the run's current stream
  // Ends a run whose upstream finished it without a token that ends it locally.
  void FinishFromUpstream(ActiveRun& run, const std::string& upstream_reason);
  void RenewAndClaim();
  // Many processes: offers a run about to be created to an engine (kv_directory.h); nullopt when
  // the store could not (any engine claims the run then).
  std::optional<store::RunPlacement> Dispatch(const store::RunRecord& record, const ActiveRun& run);
  // Publishes the load and the KV directory (an engine process); logs a failure.
  void Heartbeat();
  // The KV of the run's path and result node is cached here now: the directory says so at once,
  // before the run's ending is visible, so the session's next turn finds it.
  void PublishHeld(ActiveRun& run, const Id& result_node);

  SchedulerDeps deps_;
  SchedulerOptions options_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<ActiveRun>> queue_;    // GUARDED_BY(mu_)
  std::map<Id, std::string> cancel_requests_;       // GUARDED_BY(mu_): run -> tenant
  std::vector<std::unique_ptr<ActiveRun>> active_;  // owned by the loop thread
  std::set<Id> active_ids_;                         // GUARDED_BY(mu_)
  std::map<Id, RunLease> owned_;                    // GUARDED_BY(mu_): leased runs
  std::atomic<std::size_t> active_count_{0};
  std::uint64_t step_generation_ = 0;  // GUARDED_BY(mu_): steps completed
  bool stopping_ = false;              // GUARDED_BY(mu_)
  std::uint64_t remote_wakeups_ = 0;   // GUARDED_BY(mu_): news from remote generations
  std::thread thread_;
  std::thread coordinator_;
  std::condition_variable coordinator_cv_;
  std::unique_ptr<KvDirectory> directory_;  // an engine process on a shared store; else null

  std::vector<float> logits_;  // loop thread scratch
  engine::Batch batch_;        // loop thread scratch

  Counter* tokens_prefilled_ = nullptr;
  Counter* tokens_generated_ = nullptr;
  RunMetrics run_metrics_;
};

}  // namespace llmsync::runs
