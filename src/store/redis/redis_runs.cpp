// RedisStore: runs, run events and the event writer thread.
//
// Event appends from every caller queue up; one writer thread takes everything queued and sends it
// as one append_events script call (one round trip and, with appendfsync always, one fsync for the
// whole batch). The script gives each submission the next ids of its runs, or fails it alone when
// one of its runs is unknown to its tenant.
#include <algorithm>
#include <future>
#include <utility>

#include "store/redis/redis_store_impl.h"

namespace llmsync::store::redis {

namespace {

thread_local const RedisStore* tls_writer_of = nullptr;

std::string Num(std::uint64_t v) { return std::to_string(v); }
std::string Num(std::int64_t v) { return std::to_string(v); }
std::string StatusArg(RunStatus s) { return std::to_string(static_cast<int>(s)); }

Status Corrupt(const std::string& what) { return Status::DataLoss("redis holds a corrupt " + what); }

// A stream entry ["<event_id>-0", ["t", type, "p", payload, "c", created_ms]].
Result<RunEvent> ParseEntry(const Reply& entry, const Id& run) {
  if (entry.elements.size() != 2 || entry.elements[1].elements.size() != 6) return Corrupt("event entry");
  const std::string& sid = entry.elements[0].str;
  RunEvent e;
  e.run = run;
  LLMSYNC_ASSIGN_OR_RETURN(e.event_id, ParseU64(sid.substr(0, sid.find('-'))));
  const std::vector<Reply>& f = entry.elements[1].elements;
  e.type = f[1].str;
  e.payload = f[3].str;
  LLMSYNC_ASSIGN_OR_RETURN(e.created_at_ms, ParseI64(f[5].str));
  return e;
}

Status RunNotFound(const Id& run) { return Status::NotFound("run " + run.ToHex() + " not found"); }

// The 16 run fields (after the id) from a record.
std::vector<std::string> RunFields(const RunRecord& r) {
  return {r.tenant,
          r.session.ToHex(),
          IdArg(r.from_node),
          StatusArg(r.status),
          r.params,
          IdArg(r.result_node),
          Num(r.usage.prompt_tokens),
          Num(r.usage.prompt_tokens_ram),
          Num(r.usage.prompt_tokens_disk),
          Num(r.usage.prompt_tokens_recomputed),
          Num(r.usage.generated_tokens),
          r.error,
          Num(r.created_at_ms),
          Num(r.updated_at_ms),
          "0",
          "0"};
}

}  // namespace

Result<RunRecord> ParseRun(const std::vector<Reply>& e, std::size_t at) {
  if (e.size() < at + 1 + kRunFieldCount) return Corrupt("run row");
  auto f = [&](int i) -> const std::string& { return e[at + 1 + i].str; };
  RunRecord r;
  LLMSYNC_ASSIGN_OR_RETURN(r.id, ParseIdArg(e[at].str));
  r.tenant = f(0);
  LLMSYNC_ASSIGN_OR_RETURN(r.session, ParseIdArg(f(1)));
  LLMSYNC_ASSIGN_OR_RETURN(r.from_node, ParseIdArg(f(2)));
  LLMSYNC_ASSIGN_OR_RETURN(std::uint64_t status, ParseU64(f(3)));
  if (status > static_cast<std::uint64_t>(RunStatus::kCancelled))
    return Status::DataLoss("run " + r.id.ToHex() + " has an unknown status " + f(3));
  r.status = static_cast<RunStatus>(status);
  r.params = f(4);
  LLMSYNC_ASSIGN_OR_RETURN(r.result_node, ParseIdArg(f(5)));
  LLMSYNC_ASSIGN_OR_RETURN(r.usage.prompt_tokens, ParseU64(f(6)));
  LLMSYNC_ASSIGN_OR_RETURN(r.usage.prompt_tokens_ram, ParseU64(f(7)));
  LLMSYNC_ASSIGN_OR_RETURN(r.usage.prompt_tokens_disk, ParseU64(f(8)));
  LLMSYNC_ASSIGN_OR_RETURN(r.usage.prompt_tokens_recomputed, ParseU64(f(9)));
  LLMSYNC_ASSIGN_OR_RETURN(r.usage.generated_tokens, ParseU64(f(10)));
  r.error = f(11);
  LLMSYNC_ASSIGN_OR_RETURN(r.created_at_ms, ParseI64(f(12)));
  LLMSYNC_ASSIGN_OR_RETURN(r.updated_at_ms, ParseI64(f(13)));
  LLMSYNC_ASSIGN_OR_RETURN(r.last_event_id, ParseU64(f(14)));
  return r;
}

RedisStore::RedisStore(RedisStoreOptions options, std::unique_ptr<RedisClient> client)
    : options_(std::move(options)), env_(options_.env), client_(std::move(client)) {
  writer_ = std::thread([this] { WriterLoop(); });
}

RedisStore::~RedisStore() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  work_.notify_all();
  writer_.join();
}

Status RedisStore::CheckNotWriter() const {
  if (tls_writer_of == this)
    return Status::Internal("a blocking store write was called from the store's writer thread");
  return Status::Ok();
}

// ---- Runs

Status RedisStore::CreateRun(const RunRecord& run) {
  std::vector<std::string> args = RunFields(run);
  args.insert(args.begin(), run.id.ToHex());
  return Write(Script::kCreateRun, args).GetStatus();
}

Result<RunRecord> RedisStore::GetRun(std::string_view tenant, const Id& run) {
  std::vector<std::string> cmd = {"HMGET",
                                  "llmsync:run:" + run.ToHex(),
                                  "tenant",
                                  "session",
                                  "from",
                                  "status",
                                  "params",
                                  "result",
                                  "u0",
                                  "u1",
                                  "u2",
                                  "u3",
                                  "u4",
                                  "error",
                                  "created",
                                  "updated",
                                  "last_event_id",
                                  "deleted"};
  LLMSYNC_ASSIGN_OR_RETURN(Reply r, client_->Command(cmd, true));
  if (r.elements.size() != kRunFieldCount || r.elements[0].str != tenant || r.elements[15].str != "0")
    return RunNotFound(run);
  Reply id;
  id.type = Reply::Type::kString;
  id.str = run.ToHex();
  r.elements.insert(r.elements.begin(), std::move(id));
  return ParseRun(r.elements, 0);
}

Status RedisStore::DeleteRun(std::string_view tenant, const Id& run) {
  return Write(Script::kDeleteRun, {run.ToHex(), std::string(tenant)}).GetStatus();
}

Result<RunRecord> RedisStore::UpdateRun(std::string_view tenant, const Id& run, const RunUpdate& u) {
  std::vector<std::string> args = {run.ToHex(),
                                   std::string(tenant),
                                   u.expect_status ? "1" : "0",
                                   u.expect_status ? StatusArg(*u.expect_status) : "",
                                   u.status ? "1" : "0",
                                   u.status ? StatusArg(*u.status) : "",
                                   u.result_node ? "1" : "0",
                                   u.result_node ? IdArg(*u.result_node) : "",
                                   u.usage ? "1" : "0"};
  RunUsage usage = u.usage.value_or(RunUsage{});
  args.insert(args.end(),
              {Num(usage.prompt_tokens), Num(usage.prompt_tokens_ram), Num(usage.prompt_tokens_disk),
               Num(usage.prompt_tokens_recomputed), Num(usage.generated_tokens), u.error ? "1" : "0",
               u.error.value_or(""), Num(u.now_ms)});
  args.push_back(Num(static_cast<std::uint64_t>(u.events.size())));
  args.push_back(Num(u.lease_epoch));
  for (const RunEventDraft& e : u.events) {
    if (e.run != run || e.tenant != tenant)
      return Status::InvalidArgument("an event of run " + e.run.ShortHex() + " in the update of run " +
                                     run.ShortHex());
    args.insert(args.end(), {e.type, e.payload});
  }
  if (!u.events.empty() && tls_writer_of != this) {
    // The events follow every event queued before this call: wait until the writer has sent them.
    std::promise<void> drained;
    AppendRunEventsAsync({}, [&drained](const Result<std::vector<std::uint64_t>>&) { drained.set_value(); });
    drained.get_future().wait();
  }
  LLMSYNC_ASSIGN_OR_RETURN(Reply r, Write(Script::kUpdateRun, args));
  return ParseRun(r.elements, 0);
}

Result<std::vector<RunRecord>> RedisStore::ListRuns(const RunFilter& filter) {
  if (filter.session && !filter.tenant)
    return Status::InvalidArgument("a run filter by session needs a tenant");
  std::vector<RunRecord> runs;
  if (filter.limit == 0) return runs;
  // The narrowest index that holds every run the filter can match.
  std::string index = "llmsync:runs";
  bool only_live = !filter.statuses.empty() &&
                   std::all_of(filter.statuses.begin(), filter.statuses.end(), [](RunStatus s) {
                     return s == RunStatus::kQueued || s == RunStatus::kRunning;
                   });
  if (filter.session) {
    index = "llmsync:session:" + filter.session->ToHex() + ":runs";
  } else if (only_live) {
    index = "llmsync:runs:live";
  } else if (filter.tenant) {
    index = "llmsync:runs-of:" + *filter.tenant;
  }
  std::vector<std::string> args = {
      index, filter.tenant.value_or(""), filter.session ? filter.session->ToHex() : "",
      Num(static_cast<std::uint64_t>(std::min<std::size_t>(filter.limit, 1u << 30)))};
  for (RunStatus s : filter.statuses) args.push_back(StatusArg(s));
  LLMSYNC_ASSIGN_OR_RETURN(Reply r, Read(Script::kListRuns, args));
  for (std::size_t at = 0; at + kRunFieldCount < r.elements.size(); at += kRunFieldCount + 1) {
    LLMSYNC_ASSIGN_OR_RETURN(RunRecord run, ParseRun(r.elements, at));
    runs.push_back(std::move(run));
  }
  return runs;
}

// ---- Events

Result<std::vector<RunEvent>> RedisStore::ReadRunEvents(std::string_view tenant, const Id& run,
                                                        std::uint64_t after_event_id, std::size_t limit) {
  std::size_t count = std::max<std::size_t>(1, std::min<std::size_t>(limit, 1u << 30));
  LLMSYNC_ASSIGN_OR_RETURN(
      Reply r, Read(Script::kReadEvents,
                    {run.ToHex(), std::string(tenant), Num(after_event_id), Num(std::uint64_t{count})}));
  std::vector<RunEvent> events;
  if (limit == 0) return events;
  for (const Reply& entry : r.elements) {
    LLMSYNC_ASSIGN_OR_RETURN(RunEvent e, ParseEntry(entry, run));
    events.push_back(std::move(e));
  }
  return events;
}

// One XREAD BLOCK over every followed stream: events another process appends arrive as soon as
// they are durable.
Result<std::vector<RunEvent>> RedisStore::WaitRunEvents(const std::vector<RunCursor>& cursors,
                                                        int timeout_ms) {
  std::vector<RunEvent> events;
  if (cursors.empty()) return events;
  std::vector<std::string> cmd = {"XREAD",  "COUNT", "1000", "BLOCK", std::to_string(std::max(1, timeout_ms)),
                                  "STREAMS"};
  for (const RunCursor& c : cursors) cmd.push_back("llmsync:events:" + c.run.ToHex());
  for (const RunCursor& c : cursors) cmd.push_back(std::to_string(c.after_event_id) + "-0");
  LLMSYNC_ASSIGN_OR_RETURN(Reply r, client_->Command(cmd, true));
  for (const Reply& stream : r.elements) {
    if (stream.elements.size() != 2) return Corrupt("XREAD reply");
    constexpr std::string_view kPrefix = "llmsync:events:";
    LLMSYNC_ASSIGN_OR_RETURN(Id run, ParseIdArg(stream.elements[0].str.substr(kPrefix.size())));
    for (const Reply& entry : stream.elements[1].elements) {
      LLMSYNC_ASSIGN_OR_RETURN(RunEvent e, ParseEntry(entry, run));
      events.push_back(std::move(e));
    }
  }
  return events;
}

Result<std::uint64_t> RedisStore::LeaseRun(const Id& run, const std::string& worker, std::int64_t ttl_ms,
                                           std::uint64_t epoch) {
  // Retried by the pool after a lost reply: a claim that was applied then reads as refused, and the
  // run is claimed again once that lease lapses (a delay, never two holders).
  LLMSYNC_ASSIGN_OR_RETURN(
      Reply r,
      client_->Eval(Script::kLeaseRun,
                    {run.ToHex(), worker, Num(std::max<std::int64_t>(1, ttl_ms)), Num(epoch)}, true));
  if (r.type != Reply::Type::kInteger || r.integer < 0) return Corrupt("lease_run reply");
  return static_cast<std::uint64_t>(r.integer);
}

Result<std::string> RedisStore::RunWorker(const Id& run) {
  LLMSYNC_ASSIGN_OR_RETURN(Reply r, client_->Command({"HGET", "llmsync:run:" + run.ToHex(), "worker"}, true));
  return r.str;
}

Result<std::uint64_t> RedisStore::PruneRunEvents(std::int64_t finished_before_ms) {
  return Count(Script::kPruneEvents, {Num(finished_before_ms)});
}

void RedisStore::AppendRunEventsAsync(std::vector<RunEventDraft> events, EventsDone done) {
  std::unique_lock<std::mutex> lock(mu_);
  if (tls_writer_of != this) {
    room_.wait(lock, [this] { return pending_events_ < options_.max_pending_events || stopping_; });
  }
  pending_events_ += events.size() + 1;
  pending_.push_back(Submission{std::move(events), std::move(done)});
  work_.notify_one();
}

Result<std::vector<std::uint64_t>> RedisStore::AppendRunEvents(const std::vector<RunEventDraft>& events) {
  LLMSYNC_RETURN_IF_ERROR(CheckNotWriter());
  if (events.empty()) return std::vector<std::uint64_t>{};
  std::promise<Result<std::vector<std::uint64_t>>> promise;
  auto future = promise.get_future();
  AppendRunEventsAsync(events,
                       [&promise](Result<std::vector<std::uint64_t>> r) { promise.set_value(std::move(r)); });
  return future.get();
}

void RedisStore::WriterLoop() {
  tls_writer_of = this;
  while (true) {
    std::vector<Submission> batch;
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_.wait(lock, [this] { return stopping_ || !pending_.empty(); });
      if (pending_.empty()) return;  // stopping, and everything queued was written
      std::size_t events = 0;
      while (!pending_.empty() &&
             (batch.empty() || events + pending_.front().events.size() <= options_.max_group_events)) {
        events += pending_.front().events.size();
        pending_events_ -= pending_.front().events.size() + 1;
        batch.push_back(std::move(pending_.front()));
        pending_.pop_front();
      }
    }
    room_.notify_all();
    Flush(batch);
  }
}

void RedisStore::Flush(std::vector<Submission>& batch) {
  std::vector<std::string> args = {Num(env_->UnixMillis()), Num(static_cast<std::uint64_t>(batch.size()))};
  for (const Submission& sub : batch) {
    args.push_back(Num(static_cast<std::uint64_t>(sub.events.size())));
    for (const RunEventDraft& e : sub.events)
      args.insert(args.end(), {e.run.ToHex(), e.tenant, e.type, e.payload, Num(e.lease_epoch)});
  }
  Result<Reply> r = client_->Eval(Script::kAppendEvents, args, /*idempotent=*/false);
  if (r.IsOk() && r->elements.size() != batch.size()) r = Corrupt("append_events reply");
  for (std::size_t i = 0; i < batch.size(); ++i) {
    Submission& sub = batch[i];
    if (!sub.done) continue;
    if (!r.IsOk()) {
      sub.done(r.GetStatus());
      continue;
    }
    const std::string& out = r->elements[i].str;
    if (out.rfind("fenced:", 0) == 0) {
      sub.done(Status::Conflict(std::string(kLeaseLostPrefix) + "run " + out.substr(7, 64) +
                                " was claimed by another worker or finished elsewhere (lease epoch " +
                                out.substr(72) + ")"));
      continue;
    }
    if (out.rfind("nf:", 0) == 0) {
      Result<Id> run = ParseIdArg(out.substr(3));
      sub.done(run.IsOk() ? RunNotFound(*run) : run.GetStatus());
      continue;
    }
    std::vector<std::uint64_t> ids;
    Status parsed = Status::Ok();
    std::size_t at = 3;
    while (parsed.IsOk() && at < out.size()) {
      std::size_t end = out.find(',', at);
      if (end == std::string::npos) end = out.size();
      Result<std::uint64_t> id = ParseU64(out.substr(at, end - at));
      if (id.IsOk()) {
        ids.push_back(*id);
      } else {
        parsed = id.GetStatus();
      }
      at = end + 1;
    }
    if (parsed.IsOk()) {
      sub.done(std::move(ids));
    } else {
      sub.done(parsed);
    }
  }
}

}  // namespace llmsync::store::redis
