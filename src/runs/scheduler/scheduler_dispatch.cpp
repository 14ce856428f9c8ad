// RunScheduler's part in cache-aware dispatch across engine processes (docs/ARCHITECTURE.md,
// "Cache-aware dispatch"): offering a submitted run to an engine, publishing this engine's load and
// KV directory (kv_directory.h), and pinning a leased session here.
#include "base/logging.h"
#include "runs/scheduler/scheduler.h"
#include "runs/scheduler/scheduler_internal.h"

namespace llmsync::runs {
namespace {

// The deepest path nodes a dispatch looks up (the script checks each against every live engine).
constexpr std::size_t kMaxDispatchNodes = 512;

}  // namespace

std::optional<store::RunPlacement> RunScheduler::Dispatch(const store::RunRecord& record,
                                                          const ActiveRun& run) {
  store::DispatchRequest request = DispatchPathOf(record.tenant, run.path, kMaxDispatchNodes);
  request.run = record.id;
  request.session = record.session;
  request.mode = options_.dispatch;
  request.queue_bound = options_.dispatch_queue_bound;
  request.grace_ms = options_.dispatch_grace_ms;
  Result<store::RunPlacement> placed = deps_.store->DispatchRun(request);
  if (!placed.IsOk()) {
    LLMSYNC_LOG(kWarning) << "dispatching run " << record.id.ShortHex() << ": "
                          << placed.GetStatus().ToString() << "; the first engine to come claims it";
    return std::nullopt;
  }
  return *placed;
}

void RunScheduler::Heartbeat() {
  if (!directory_) return;
  QueueStats queued = Queue();
  Status s = directory_->Beat(active_count_.load(), queued.runs, queued.prompt_tokens);
  if (!s.IsOk()) LLMSYNC_LOG(kWarning) << "publishing this engine's load and KV directory: " << s.ToString();
}

void RunScheduler::PublishHeld(ActiveRun& run, const Id& result_node) {
  if (!directory_ || run.remote_attempts > 0) return;
  std::vector<Id> nodes;
  std::vector<std::int64_t> ends;
  std::int64_t end = 0;
  for (const session::Node& n : run.path) {
    end += static_cast<std::int64_t>(n.content.tokens.size());
    nodes.push_back(n.id);
    ends.push_back(end);
  }
  std::vector<TokenId> tokens = run.SequenceTokens();
  if (!result_node.IsZero()) {  // generation prompt + generated tokens, after the path
    nodes.push_back(result_node);
    ends.push_back(static_cast<std::int64_t>(tokens.size()));
  }
  directory_->Record(run.record.tenant, nodes, ends, tokens);
  Heartbeat();
}

Status RunScheduler::PinSession(const Id& session, double ttl_s) {
  if (!MultiProcess() || !options_.execute) return Status::Ok();
  return deps_.store->PinSession(session, options_.worker_id, static_cast<std::int64_t>(ttl_s * 1000.0));
}

Status RunScheduler::UnpinSession(const Id& session) {
  if (!MultiProcess() || !options_.execute) return Status::Ok();
  return deps_.store->UnpinSession(session, options_.worker_id);
}

}  // namespace llmsync::runs
