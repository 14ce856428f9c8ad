// RedisStore: cache-aware dispatch. Engines publish their load and KV directory (publish_engine);
// a submitting process offers each run to one engine (dispatch_run); lease_run leaves an offered
// run to its target for the grace period. Key layout in docs/ARCHITECTURE.md ("Cache-aware
// dispatch").
#include <algorithm>
#include <string>

#include "store/redis/redis_store_impl.h"

namespace llmsync::store::redis {
namespace {

Status CorruptReply(const char* what) {
  return Status::DataLoss(std::string("redis holds a corrupt ") + what + " reply");
}

}  // namespace

Status RedisStore::PublishEngine(const EngineBeat& beat) {
  std::vector<std::string> args = {beat.worker,
                                   std::to_string(std::max<std::int64_t>(1, beat.ttl_ms)),
                                   std::to_string(beat.held_cap),
                                   std::to_string(beat.active_runs),
                                   std::to_string(beat.queued_runs),
                                   std::to_string(beat.queued_prompt_tokens),
                                   std::to_string(beat.held_added.size())};
  args.insert(args.end(), beat.held_added.begin(), beat.held_added.end());
  args.insert(args.end(), beat.held_removed.begin(), beat.held_removed.end());
  // Idempotent: a heartbeat applied twice states the same facts.
  return client_->Eval(Script::kPublishEngine, args, true).GetStatus();
}

Status RedisStore::RetireEngine(const std::string& worker) {
  return client_->Eval(Script::kRetireEngine, {worker}, true).GetStatus();
}

Result<RunPlacement> RedisStore::DispatchRun(const DispatchRequest& request) {
  if (request.path.size() != request.depths.size()) {
    return Status::InvalidArgument("dispatch: one depth per path member");
  }
  std::vector<std::string> args = {request.run.ToHex(),
                                   request.session.ToHex(),
                                   request.mode == DispatchMode::kRoundRobin ? "round_robin" : "cache_aware",
                                   std::to_string(request.queue_bound),
                                   std::to_string(std::max<std::int64_t>(0, request.grace_ms)),
                                   std::to_string(request.path.size())};
  args.insert(args.end(), request.path.begin(), request.path.end());
  for (std::uint64_t d : request.depths) args.push_back(std::to_string(d));
  // Not idempotent: a retried offer after a lost reply would count the run twice in a queue.
  LLMSYNC_ASSIGN_OR_RETURN(Reply r, client_->Eval(Script::kDispatchRun, args, false));
  if (r.elements.size() != 3) return CorruptReply("dispatch_run");
  RunPlacement placement;
  placement.target = r.elements[0].str;
  placement.reason = r.elements[1].str;
  LLMSYNC_ASSIGN_OR_RETURN(placement.matched_tokens, ParseU64(r.elements[2].str));
  return placement;
}

Status RedisStore::WithdrawDispatch(const Id& run) {
  return client_->Eval(Script::kWithdrawDispatch, {run.ToHex()}, true).GetStatus();
}

Result<RunPlacement> RedisStore::GetRunPlacement(const Id& run) {
  LLMSYNC_ASSIGN_OR_RETURN(Reply r, client_->Eval(Script::kRunPlacement, {run.ToHex()}, true));
  if (r.elements.size() != 4) return CorruptReply("run_placement");
  RunPlacement placement;
  placement.engine = r.elements[0].str;
  placement.target = r.elements[1].str;
  placement.reason = r.elements[2].str;
  LLMSYNC_ASSIGN_OR_RETURN(placement.matched_tokens, ParseU64(r.elements[3].str));
  return placement;
}

Status RedisStore::PinSession(const Id& session, const std::string& worker, std::int64_t ttl_ms) {
  return client_
      ->Command({"SET", "llmsync:kvlease:" + session.ToHex(), worker, "PX",
                 std::to_string(std::max<std::int64_t>(1, ttl_ms))},
                true)
      .GetStatus();
}

Status RedisStore::UnpinSession(const Id& session, const std::string& worker) {
  return client_->Eval(Script::kUnpinSession, {session.ToHex(), worker}, true).GetStatus();
}

}  // namespace llmsync::store::redis
