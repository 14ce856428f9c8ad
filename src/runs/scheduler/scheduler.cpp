#include "runs/scheduler/scheduler.h"

#include <algorithm>
#include <cstdint>
#include <future>

#include "base/logging.h"
#include "runs/scheduler/scheduler_internal.h"

namespace llmsync::runs {

RunScheduler::RunScheduler(SchedulerDeps deps, SchedulerOptions options)
    : deps_(std::move(deps)), options_(options), run_metrics_(deps_.metrics) {
  if (deps_.metrics != nullptr) {
    tokens_prefilled_ = deps_.metrics->GetCounter("llmsync_tokens_prefilled_total", "Prompt tokens computed");
    tokens_generated_ = deps_.metrics->GetCounter("llmsync_tokens_generated_total", "Tokens generated");
  }
  // Every engine process publishes its load; only runs on the local engine add to its directory
  // (the KV of remote runs is the upstreams').
  if (MultiProcess() && options_.execute && deps_.kv != nullptr) {
    directory_ = std::make_unique<KvDirectory>(deps_.store, deps_.kv, options_.worker_id, options_.lease_ms,
                                               options_.kv_directory_cap);
  }
}

RunScheduler::~RunScheduler() { Stop(); }

std::size_t RunScheduler::ActiveRuns() const { return active_count_.load(); }

RunScheduler::QueueStats RunScheduler::Queue() const {
  std::lock_guard<std::mutex> lock(mu_);
  QueueStats stats;
  stats.runs = queue_.size();
  for (const auto& run : queue_) stats.prompt_tokens += run->prompt.size();
  return stats;
}

Result<std::unique_ptr<RunScheduler::ActiveRun>> RunScheduler::Prepare(store::RunRecord record,
                                                                       bool resumed) {
  auto run = std::make_unique<ActiveRun>();
  LLMSYNC_ASSIGN_OR_RETURN(run->params, DecodeRunParams(record.params));
  if (!record.from_node.IsZero()) {
    LLMSYNC_ASSIGN_OR_RETURN(run->path,
                             deps_.sessions->Path(record.tenant, record.session, record.from_node));
  }
  for (const session::Node& n : run->path) {
    if (n.purged) {
      return Status::InvalidArgument("node " + n.id.ToHex() +
                                     " is purged; rehydrate it from its sealed blob before running");
    }
  }
  run->prompt = Conversation::PathTokens(run->path);
  run->path_tokens = run->prompt.size();
  if (run->params.add_generation_prompt) {
    LLMSYNC_ASSIGN_OR_RETURN(run->gen_prompt, deps_.conversation->GenerationPrompt(run->path));
    run->prompt.insert(run->prompt.end(), run->gen_prompt.begin(), run->gen_prompt.end());
  }
  if (run->prompt.empty()) return Status::InvalidArgument("the run has an empty prompt");
  if (run->params.prefill_only && deps_.remote != nullptr) {
    return Status::Unimplemented("a prefill-only run needs the local engine (its KV stays here)");
  }
  auto context = static_cast<std::int64_t>(run->prompt.size());
  if (context >= options_.max_context) {
    return Status::InvalidArgument(std::string(kContextExceededPrefix) + std::to_string(context) +
                                   " tokens; the context holds " + std::to_string(options_.max_context) +
                                   " (set a context policy to compact the session)");
  }
  run->max_tokens = static_cast<std::int32_t>(
      std::min<std::int64_t>(run->params.max_tokens, options_.max_context - context));
  LLMSYNC_ASSIGN_OR_RETURN(engine::Sampler sampler, engine::Sampler::Create(run->params.sampling));
  run->sampler.emplace(std::move(sampler));
  if (!run->params.constraint.empty()) {  // structured output
    if (!deps_.constraint_factory) return Status::InvalidArgument("this server has no token constraints");
    LLMSYNC_ASSIGN_OR_RETURN(run->constraint, deps_.constraint_factory(run->params.constraint));
  }
  text::DecodeOptions visible;
  visible.render_special = false;
  run->decoder.emplace(deps_.conversation->GetTokenizer(), visible);
  run->resumed = resumed;
  run->submitted_micros = deps_.env->NowMicros();
  run->record = std::move(record);
  return run;
}

Status RunScheduler::CheckQueueRoomLocked() const {
  if (options_.max_queued_runs == 0 || queue_.size() < options_.max_queued_runs) return Status::Ok();
  return Status::ResourceExhausted("the run queue is full (" + std::to_string(queue_.size()) +
                                   " runs waiting); retry later");
}

Result<store::RunRecord> RunScheduler::Submit(const SubmitRequest& request) {
  LLMSYNC_RETURN_IF_ERROR(ValidateRunParams(request.params, options_.limits));
  {
    // Checked before any work (the prompt is resolved below) and again before the run is recorded.
    std::lock_guard<std::mutex> lock(mu_);
    LLMSYNC_RETURN_IF_ERROR(CheckQueueRoomLocked());
  }
  LLMSYNC_ASSIGN_OR_RETURN(session::SessionInfo info,
                           deps_.sessions->GetSession(request.tenant, request.session));
  if (!request.id.IsZero() && deps_.store->GetRun(request.tenant, request.id).IsOk()) {
    return Status::AlreadyExists("run " + request.id.ToHex() + " exists");
  }
  store::RunRecord record;
  record.id = request.id.IsZero() ? Id::Random() : request.id;
  record.tenant = request.tenant;
  record.session = request.session;
  record.from_node = request.from_node.IsZero() ? info.head : request.from_node;
  record.status = store::RunStatus::kQueued;
  record.params = EncodeRunParams(request.params);
  record.created_at_ms = deps_.env->UnixMillis();
  record.updated_at_ms = record.created_at_ms;
  // Resolve the prompt before recording anything, so a bad request leaves no run behind.
  LLMSYNC_ASSIGN_OR_RETURN(std::unique_ptr<ActiveRun> run, Prepare(record, false));
  run->request_bytes = request.request_bytes;
  run->stateless_bytes = request.stateless_equivalent_bytes;
  run->after_prefill_of = request.after_prefill_of;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return Status::Unavailable("the server is shutting down");
    if (options_.execute) LLMSYNC_RETURN_IF_ERROR(CheckQueueRoomLocked());
  }
  std::optional<store::RunPlacement> placement;
  if (MultiProcess()) placement = Dispatch(record, *run);
  Status created = deps_.store->CreateRun(record);
  if (!created.IsOk()) {
    if (placement) (void)deps_.store->WithdrawDispatch(record.id);
    return created;
  }
  if (!options_.execute) return record;  // an engine process claims it
  RunLease lease{record.tenant};
  if (MultiProcess()) {
    // Offered to another engine: it claims the run (or, past the grace period, anyone does).
    if (placement && !placement->target.empty() && placement->target != options_.worker_id) return record;
    // Claim it before any other engine's scan can; if one was faster, it runs there.
    Result<std::uint64_t> claimed =
        deps_.store->LeaseRun(record.id, options_.worker_id, options_.lease_ms, 0);
    if (!claimed.IsOk() || *claimed == 0) return record;
    lease.epoch = *claimed;
    run->lease_epoch = lease.epoch;
    run->lease_lost = lease.lost;
    lease.placement = placement.value_or(store::RunPlacement{});
    lease.placement.engine = options_.worker_id;
    if (lease.placement.target.empty()) lease.placement.reason = "fallback";
    run->placement = lease.placement;
  }
  deps_.hub->Open(record.id, record.tenant, {});
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (MultiProcess()) owned_[record.id] = lease;
    queue_.push_back(std::move(run));
  }
  cv_.notify_all();
  return record;
}

Status RunScheduler::Resume(store::RunRecord record, const RunLease& lease) {
  LLMSYNC_ASSIGN_OR_RETURN(std::vector<store::RunEvent> events,
                           deps_.store->ReadRunEvents(record.tenant, record.id, 0, 1u << 20));
  if (!events.empty() && TerminalStatusOf(events.back().type)) {
    // The stream ended but the status did not follow (a store from before terminal events and
    // status were written together): the stream is what subscribers saw, so the status follows it.
    store::RunUpdate update;
    update.status = *TerminalStatusOf(events.back().type);
    update.now_ms = deps_.env->UnixMillis();
    LLMSYNC_RETURN_IF_ERROR(deps_.store->UpdateRun(record.tenant, record.id, update).GetStatus());
    LLMSYNC_LOG(kWarning) << "run " << record.id.ShortHex() << " repaired: status set to "
                          << store::RunStatusName(*update.status) << " from its last event";
    return Status::Ok();
  }
  Id run_id = record.id;
  std::string tenant = record.tenant;
  // A queued run never started: it starts now (status running, run.started), wherever it was made.
  auto prepared = Prepare(record, record.status != store::RunStatus::kQueued);
  deps_.hub->Open(run_id, tenant, events);
  if (!prepared.IsOk()) {
    LLMSYNC_LOG(kWarning) << "run " << run_id.ShortHex()
                          << " cannot resume: " << prepared.GetStatus().ToString();
    auto run = std::make_unique<ActiveRun>();
    run->record = record;
    run->lease_epoch = lease.epoch;
    run->lease_lost = lease.lost;
    Finish(*run, store::RunStatus::kFailed, "", prepared.GetStatus());
    return Status::Ok();
  }
  std::unique_ptr<ActiveRun> run = std::move(prepared).Value();
  run->lease_epoch = lease.epoch;
  run->lease_lost = lease.lost;
  run->placement = lease.placement;
  for (const store::RunEvent& e : events) {
    if (e.type != kEventToken) continue;
    LLMSYNC_ASSIGN_OR_RETURN(TokenEvent token, deps_.codec.decode_token(e.payload));
    run->generated.push_back(token.token_id);
    if (run->constraint) run->constraint->Accept(token.token_id);
    AdvanceText(*run, token.token_id);  // rebuilds the text state the events were made from
  }
  LLMSYNC_LOG(kInfo) << "resuming run " << run_id.ShortHex() << " after " << run->generated.size()
                     << " durable tokens";
  std::lock_guard<std::mutex> lock(mu_);
  queue_.push_back(std::move(run));
  cv_.notify_all();
  return Status::Ok();
}

Status RunScheduler::Start() {
  LLMSYNC_RETURN_IF_ERROR(RepairFinishedRuns());
  if (!MultiProcess()) {
    store::RunFilter filter;
    filter.statuses = {store::RunStatus::kQueued, store::RunStatus::kRunning};
    LLMSYNC_ASSIGN_OR_RETURN(std::vector<store::RunRecord> unfinished, deps_.store->ListRuns(filter));
    for (store::RunRecord& record : unfinished) {
      RunLease lease{record.tenant};  // epoch 0: one process, nothing to fence
      LLMSYNC_RETURN_IF_ERROR(Resume(std::move(record), lease));
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = false;
  }
  if (!options_.execute) return Status::Ok();
  Heartbeat();  // dispatchers see this engine before its first scan
  thread_ = std::thread([this] { Loop(); });
  if (MultiProcess()) coordinator_ = std::thread([this] { CoordinatorLoop(); });
  return Status::Ok();
}

void RunScheduler::CoordinatorLoop() {
  while (true) {
    RenewAndClaim();
    std::unique_lock<std::mutex> lock(mu_);
    coordinator_cv_.wait_for(lock, std::chrono::milliseconds(options_.scan_ms), [&] { return stopping_; });
    if (stopping_) return;
  }
}

void RunScheduler::RenewAndClaim() {
  Heartbeat();
  std::map<Id, RunLease> owned;
  std::size_t load = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    owned = owned_;
    load = queue_.size() + active_.size();
  }
  // Renew this process's leases at their epochs; a run cancelled through another process is
  // cancelled here too.
  for (const auto& [id, lease] : owned) {
    Result<std::uint64_t> held =
        deps_.store->LeaseRun(id, options_.worker_id, options_.lease_ms, lease.epoch);
    if (held.IsOk() && *held == 0) {
      // Another worker claimed it while this process did not renew (paused past the lease): the
      // store refuses this process's writes from now on, and the loop drops the run.
      LLMSYNC_LOG(kWarning) << "lost the lease of run " << id.ShortHex() << " (epoch " << lease.epoch << ")";
      lease.lost->store(true);
      std::lock_guard<std::mutex> lock(mu_);
      owned_.erase(id);
      cv_.notify_all();
      continue;
    }
    Result<store::RunRecord> record = deps_.store->GetRun(lease.tenant, id);
    if (record.IsOk() && store::IsTerminal(record->status)) {
      std::lock_guard<std::mutex> lock(mu_);
      if (active_ids_.count(id) != 0) cancel_requests_[id] = lease.tenant;
      cv_.notify_all();
    }
  }
  // Claim queued runs and runs whose owner stopped renewing.
  if (static_cast<int>(load) >= options_.max_active_runs) return;
  store::RunFilter filter;
  filter.statuses = {store::RunStatus::kQueued, store::RunStatus::kRunning};
  filter.limit = 256;
  Result<std::vector<store::RunRecord>> live = deps_.store->ListRuns(filter);
  if (!live.IsOk()) {
    LLMSYNC_LOG(kWarning) << "scanning for runs to claim: " << live.GetStatus().ToString();
    return;
  }
  for (store::RunRecord& record : *live) {
    if (static_cast<int>(load) >= options_.max_active_runs) break;
    if (owned.count(record.id) != 0) continue;
    Result<std::uint64_t> claimed =
        deps_.store->LeaseRun(record.id, options_.worker_id, options_.lease_ms, 0);
    if (!claimed.IsOk() || *claimed == 0) continue;
    Id id = record.id;
    RunLease lease{record.tenant, *claimed};
    Result<store::RunPlacement> placed = deps_.store->GetRunPlacement(id);
    lease.placement = placed.IsOk() ? *placed : store::RunPlacement{options_.worker_id, "", "fallback", 0};
    lease.placement.engine = options_.worker_id;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      owned_[id] = lease;
    }
    owned[id] = lease;
    LLMSYNC_LOG(kInfo) << "worker " << options_.worker_id << " claimed run " << id.ShortHex() << " ("
                       << store::RunStatusName(record.status) << ", lease epoch " << lease.epoch << ", "
                       << lease.placement.reason << ")";
    Status resumed = Resume(std::move(record), lease);
    if (!resumed.IsOk())
      LLMSYNC_LOG(kWarning) << "resuming run " << id.ShortHex() << ": " << resumed.ToString();
    ++load;
  }
}

Status RunScheduler::RepairFinishedRuns() {
  store::RunFilter filter;
  filter.statuses = {store::RunStatus::kSucceeded, store::RunStatus::kFailed, store::RunStatus::kCancelled};
  filter.limit = SIZE_MAX;
  LLMSYNC_ASSIGN_OR_RETURN(std::vector<store::RunRecord> finished, deps_.store->ListRuns(filter));
  std::size_t repaired = 0;
  for (const store::RunRecord& record : finished) {
    if (record.last_event_id == 0) continue;
    LLMSYNC_ASSIGN_OR_RETURN(
        std::vector<store::RunEvent> last,
        deps_.store->ReadRunEvents(record.tenant, record.id, record.last_event_id - 1, 1));
    // No event left: retention deleted the stream, and the hub says so to a subscriber.
    if (last.empty() || TerminalStatusOf(last.back().type)) continue;
    EventBody body = CancelledEvent{};
    if (record.status == store::RunStatus::kSucceeded) {
      auto params = DecodeRunParams(record.params);
      bool length =
          params.IsOk() && record.usage.generated_tokens >= static_cast<std::uint64_t>(params->max_tokens);
      body = CompletedEvent{record.result_node, length ? "length" : "stop"};
    } else if (record.status == store::RunStatus::kFailed) {
      body = FailedEvent{"internal", record.error.empty() ? "the run failed" : record.error};
    }
    std::vector<store::RunEventDraft> draft = {
        {record.tenant, record.id, std::string(EventType(body)), deps_.codec.encode(body)}};
    LLMSYNC_RETURN_IF_ERROR(deps_.store->AppendRunEvents(draft).GetStatus());
    ++repaired;
  }
  if (repaired > 0)
    LLMSYNC_LOG(kWarning) << "repaired " << repaired << " finished runs without a terminal event";
  return Status::Ok();
}

void RunScheduler::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  coordinator_cv_.notify_all();
  thread_.join();
  if (coordinator_.joinable()) coordinator_.join();
  if (directory_) {  // dispatchers stop offering runs here at once
    Status retired = directory_->Retire();
    if (!retired.IsOk()) LLMSYNC_LOG(kWarning) << "leaving the engine directory: " << retired.ToString();
  }
  // Events emitted without waiting (Emit) may still sit in the store's queue, and their completions
  // publish to the hub from the store's writer thread. An empty append queues behind them: once it
  // returns, no completion of this scheduler is left to run after the hub is gone (issue 17).
  Status drained = deps_.store->AppendRunEvents({}).GetStatus();
  if (!drained.IsOk()) LLMSYNC_LOG(kWarning) << "draining run events at shutdown: " << drained.ToString();
  // Runs in flight keep status "running" and their durable events; the next Start resumes them.
  active_.clear();
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.clear();
    active_ids_.clear();
    owned_.clear();  // the leases lapse: other engines take these runs over
  }
  active_count_ = 0;
  Status flushed = deps_.kv->FlushToDisk();
  if (!flushed.IsOk()) LLMSYNC_LOG(kWarning) << "KV flush at shutdown failed: " << flushed.ToString();
}

void RunScheduler::CancelUnstarted(std::unique_ptr<ActiveRun> run) {
  Finish(*run, store::RunStatus::kCancelled, "", Status::Ok());
}

Result<store::RunRecord> RunScheduler::Cancel(const std::string& tenant, const Id& run_id) {
  LLMSYNC_ASSIGN_OR_RETURN(store::RunRecord record, deps_.store->GetRun(tenant, run_id));
  if (store::IsTerminal(record.status)) return record;
  std::unique_ptr<ActiveRun> queued;
  {
    std::unique_lock<std::mutex> lock(mu_);
    auto it =
        std::find_if(queue_.begin(), queue_.end(), [&](const auto& r) { return r->record.id == run_id; });
    if (it != queue_.end()) {
      queued = std::move(*it);
      queue_.erase(it);
    } else if (active_ids_.count(run_id) != 0 && thread_.joinable()) {
      cancel_requests_[run_id] = tenant;
      cv_.notify_all();
      // The loop consumes the request between steps; once it has, the run is cancelled for good.
      cv_.wait(lock, [&] { return cancel_requests_.count(run_id) == 0 || stopping_; });
    }
  }
  if (queued) CancelUnstarted(std::move(queued));
  LLMSYNC_ASSIGN_OR_RETURN(record, deps_.store->GetRun(tenant, run_id));
  if (!store::IsTerminal(record.status)) {
    // Known to the store but not to this scheduler (it is stopping): cancel the record directly,
    // with its terminal event in the same transaction.
    store::RunUpdate update;
    update.expect_status = record.status;
    update.status = store::RunStatus::kCancelled;
    update.now_ms = deps_.env->UnixMillis();
    EventBody cancelled = CancelledEvent{};
    update.events.push_back(
        {tenant, run_id, std::string(EventType(cancelled)), deps_.codec.encode(cancelled)});
    auto updated = deps_.store->UpdateRun(tenant, run_id, update);
    if (!updated.IsOk() && updated.GetStatus().Code() == StatusCode::kConflict) {
      return deps_.store->GetRun(tenant, run_id);  // it finished meanwhile
    }
    LLMSYNC_ASSIGN_OR_RETURN(record, std::move(updated));
    if (deps_.hub->IsOpen(run_id)) {
      PublishFinal(*deps_.hub, record, update.events, update.now_ms);
      deps_.hub->Close(run_id);
    }
  }
  return record;
}

void RunScheduler::HandleCancels() {
  std::map<Id, std::string> requests;
  {
    std::lock_guard<std::mutex> lock(mu_);
    requests.swap(cancel_requests_);
  }
  if (requests.empty()) return;
  for (auto& run : active_) {
    if (run && requests.count(run->record.id) != 0) {
      Finish(*run, store::RunStatus::kCancelled, "", Status::Ok());
      run.reset();
    }
  }
  active_.erase(std::remove(active_.begin(), active_.end(), nullptr), active_.end());
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, tenant] : requests) active_ids_.erase(id);
  }
  active_count_ = active_.size();
  cv_.notify_all();
}

bool RunScheduler::LeaseLost(ActiveRun& run) {
  if (!MultiProcess()) return false;
  // Every event emitted so far is answered first: a refusal sets the flag.
  std::promise<void> drained;
  deps_.store->AppendRunEventsAsync(
      {}, [&drained](const Result<std::vector<std::uint64_t>>&) { drained.set_value(); });
  drained.get_future().wait();
  if (run.lease_lost->load()) return true;
  Result<std::uint64_t> held =
      deps_.store->LeaseRun(run.record.id, options_.worker_id, options_.lease_ms, run.lease_epoch);
  // On a store error the fenced final update still refuses a stale writer.
  if (held.IsOk() && *held == 0) run.lease_lost->store(true);
  return run.lease_lost->load();
}

void RunScheduler::DropQuietly(ActiveRun& run) {
  LLMSYNC_LOG(kWarning) << "run " << run.record.id.ShortHex()
                        << ": another worker took it over or another process finished it (lease epoch "
                        << run.lease_epoch << "); stopped here without writing more";
  run.seq.Release();
  deps_.hub->Close(run.record.id);  // subscribers here reconnect and follow the new owner
  std::lock_guard<std::mutex> lock(mu_);
  owned_.erase(run.record.id);
}

void RunScheduler::DropLostLeases() {
  bool dropped = false;
  for (auto& run : active_) {
    if (run && run->lease_lost->load()) {
      DropQuietly(*run);
      {
        std::lock_guard<std::mutex> lock(mu_);
        active_ids_.erase(run->record.id);
      }
      run.reset();
      dropped = true;
    }
  }
  if (!dropped) return;
  active_.erase(std::remove(active_.begin(), active_.end(), nullptr), active_.end());
  active_count_ = active_.size();
  cv_.notify_all();
}

bool RunScheduler::Admit() {
  std::lock_guard<std::mutex> lock(mu_);
  // A run waiting for another's prefill stays queued while that one is queued or prefilling.
  auto still_prefilling = [&](const Id& other) {
    for (const auto& q : queue_) {
      if (q->record.id == other) return true;
    }
    for (const auto& a : active_) {
      if (a->record.id == other) return a->fed < static_cast<std::int64_t>(a->prompt.size());
    }
    return false;
  };
  bool admitted = false;
  for (auto it = queue_.begin();
       it != queue_.end() && static_cast<int>(active_.size()) < options_.max_active_runs;) {
    if (!(*it)->after_prefill_of.IsZero() && still_prefilling((*it)->after_prefill_of)) {
      ++it;
      continue;
    }
    active_ids_.insert((*it)->record.id);
    active_.push_back(std::move(*it));
    it = queue_.erase(it);
    admitted = true;
  }
  active_count_ = active_.size();
  return admitted;
}

void RunScheduler::Loop() {
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock,
               [&] { return stopping_ || !queue_.empty() || !active_.empty() || !cancel_requests_.empty(); });
      if (stopping_) break;
    }
    HandleCancels();
    DropLostLeases();
    Admit();
    if (active_.empty()) continue;
    Status s = deps_.remote != nullptr ? StepRemote() : Step();
    if (!s.IsOk()) {
      LLMSYNC_LOG(kError) << "inference step failed: " << s.ToString();
      for (auto& run : active_) Finish(*run, store::RunStatus::kFailed, "", s);
      std::lock_guard<std::mutex> lock(mu_);
      active_.clear();
      active_ids_.clear();
      active_count_ = 0;
    }
  }
}

}  // namespace llmsync::runs
