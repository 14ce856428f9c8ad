#include "api/compaction.h"

#include <algorithm>
#include <memory>
#include <mutex>
#include <utility>

#include "api/openai/openai_runs.h"
#include "api/session_events.h"
#include "api/sse.h"
#include "base/logging.h"

namespace llmsync::api {
namespace {

Result<std::int64_t> PolicyNumber(const Json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) return std::int64_t{0};
  if (!j[key].is_number_integer())
    return Status::InvalidArgument(std::string("context.") + key + " must be an integer");
  if (j[key].is_number_unsigned() && j[key].get<std::uint64_t>() > (1ULL << 40)) {
    return Status::InvalidArgument(std::string("context.") + key + " is out of range");
  }
  return j[key].get<std::int64_t>();
}

std::int64_t SummaryMaxTokens(const CompactionJob& job, std::int64_t max_context) {
  const std::int64_t budget = runs::EffectiveBudget(job.policy, max_context);
  return runs::SummaryTokens(budget, runs::PinnedTokens(job.path));
}

// The summary's room in a compaction plan: its run's max_tokens and the node's markup.
std::int64_t SummaryReserve(const CompactionJob& job, std::int64_t max_context) {
  return SummaryMaxTokens(job, max_context) + 16;
}

// Writes the compacted branch: pinned nodes (reused), the summary (when `summary` is set) and
// copies of the kept turns, in one append. path[pinned, summarised_to) is what the summary covers.
// The plan gives the summary the room of its run's max_tokens (and its markup), but its text is
// tokenised again as a node and may come out larger (text that does not tokenise back to the
// generated tokens: a byte-level model's invalid UTF-8 becomes U+FFFD, three bytes each; random
// tokens of a BPE vocabulary split further). A summary larger than its reserve is cut at a
// character boundary, so the compacted branch stays small and the next turns do not compact again
// at once.
Result<CompactionReport> WriteBranch(ServerContext& ctx, const CompactionJob& job,
                                     const runs::CompactionPlan& plan,
                                     const std::optional<std::string>& summary, std::size_t summarised_to) {
  const std::vector<session::Node>& path = job.path;
  std::vector<session::Node> pinned(path.begin(), path.begin() + static_cast<std::ptrdiff_t>(plan.pinned));
  std::vector<session::NodeDraft> drafts;
  if (summary) {
    // At most the room the plan gave it: a text that tokenises into more than the model generated
    // is noise, and every token of it would be prefilled again on the compacted branch.
    const std::int64_t allowed = SummaryReserve(job, ctx.max_context);
    std::string text = *summary;
    for (int attempt = 0;; ++attempt) {
      drafts.assign(1, session::NodeDraft{});
      drafts[0].kind = session::NodeKind::kSummary;
      drafts[0].text = text;
      drafts[0].call_id = path[plan.kept_from - 1].id.ToHex();  // the last folded node (the link)
      LLMSYNC_RETURN_IF_ERROR(ctx.conversation->Freeze(pinned, &drafts));
      const auto tokens = static_cast<std::int64_t>(drafts[0].tokens.size());
      if (tokens <= allowed || text.empty() || attempt == 8) break;
      // Shrink in proportion (the markup is a few tokens), then back to a character boundary.
      std::size_t keep =
          static_cast<std::size_t>(static_cast<double>(text.size()) * static_cast<double>(allowed) /
                                   static_cast<double>(tokens) * 0.9);
      while (keep > 0 && (static_cast<unsigned char>(text[keep]) & 0xC0) == 0x80) --keep;
      text.resize(keep);
    }
  }
  for (std::size_t i = plan.kept_from; i < path.size(); ++i) {
    if (path[i].purged) {
      return Status::InvalidArgument("node " + path[i].id.ToHex() +
                                     " is purged; rehydrate it before compacting the session");
    }
    drafts.push_back(path[i].content);  // text and frozen tokens as the model saw them
  }
  LLMSYNC_RETURN_IF_ERROR(ctx.conversation->Freeze(pinned, &drafts));
  session::AppendRequest append;
  append.tenant = job.tenant;
  append.session = job.session;
  append.parent = pinned.empty() ? Id() : pinned.back().id;
  append.nodes = std::move(drafts);
  append.move_head = job.move_head;
  LLMSYNC_ASSIGN_OR_RETURN(session::AppendResult appended, ctx.sessions->Append(append));
  CompactionReport report;
  report.original_tip = path.back().id;
  report.compacted_tip = appended.ids.back();
  report.mode = summary ? runs::ContextMode::kAuto : runs::ContextMode::kTruncate;
  for (std::size_t i = plan.pinned; i < plan.kept_from; ++i) report.folded.push_back(path[i].id);
  report.unsummarised = plan.kept_from - std::min(summarised_to, plan.kept_from);
  report.tokens_before = plan.tokens_before;
  report.tokens_after =
      plan.pinned_tokens + plan.kept_tokens + (summary ? append.nodes.front().tokens.size() : 0);
  if (!appended.seqs.empty()) {
    ctx.session_events->Publish(job.session, appended.seqs.back(), "session.compacted",
                                DumpJson(CompactionJson(report)));
  }
  return report;
}

struct SummaryRun {
  Id run;
  std::size_t summarised_to =
      0;  // path[pinned, summarised_to) is summarised; the rest of the fold is dropped
};

// Starts the summary run: the instruction after the folded turns, on a side branch of the
// original (so its prompt is a cached prefix). The run's prompt plus the summary's room must fit
// the context; when the whole fold does not, only its oldest whole turns that fit are summarised
// (earlier summaries come first in the fold, so they are always carried on) and the newer folded
// turns are dropped as under truncate. kInvalidArgument (context_length_exceeded) when not even
// the first folded node fits.
Result<SummaryRun> SubmitSummaryRun(ServerContext& ctx, const CompactionJob& job,
                                    const runs::CompactionPlan& plan) {
  const std::int64_t max_tokens = SummaryMaxTokens(job, ctx.max_context);
  // Candidate ends of the summarised history, newest first: the fold's end, then each turn start.
  std::vector<std::size_t> ends = {plan.kept_from};
  for (std::size_t i = plan.kept_from; i-- > plan.pinned + 1;) {
    if (job.path[i].content.kind == session::NodeKind::kUser) ends.push_back(i);
  }
  std::int64_t smallest = -1;
  for (std::size_t end : ends) {
    std::vector<session::Node> history(job.path.begin(), job.path.begin() + static_cast<std::ptrdiff_t>(end));
    std::vector<session::NodeDraft> drafts(1);
    drafts[0].kind = session::NodeKind::kUser;
    drafts[0].text = std::string(runs::kSummaryInstruction);
    LLMSYNC_RETURN_IF_ERROR(ctx.conversation->Freeze(history, &drafts));
    session::Node instruction;
    instruction.content = drafts[0];
    history.push_back(std::move(instruction));
    LLMSYNC_ASSIGN_OR_RETURN(std::vector<session::TokenId> gen, ctx.conversation->GenerationPrompt(history));
    const auto prompt =
        static_cast<std::int64_t>(runs::Conversation::PathTokens(history).size() + gen.size());
    smallest = prompt;
    if (prompt + max_tokens > ctx.max_context) continue;
    session::AppendRequest append;
    append.tenant = job.tenant;
    append.session = job.session;
    append.parent = job.path[end - 1].id;
    append.nodes = std::move(drafts);
    append.move_head = false;
    LLMSYNC_ASSIGN_OR_RETURN(session::AppendResult appended, ctx.sessions->Append(append));
    runs::SubmitRequest submit;
    submit.tenant = job.tenant;
    submit.session = job.session;
    submit.from_node = appended.ids.back();
    submit.params.max_tokens = static_cast<std::int32_t>(max_tokens);
    submit.params.sampling.seed = job.seed;
    LLMSYNC_ASSIGN_OR_RETURN(store::RunRecord run, ctx.scheduler->Submit(submit));
    return SummaryRun{run.id, end};
  }
  return Status::InvalidArgument(std::string(runs::kContextExceededPrefix) + std::to_string(smallest) +
                                 " tokens; the context holds " + std::to_string(ctx.max_context) +
                                 " (the smallest summary prompt, with " + std::to_string(max_tokens) +
                                 " tokens for the summary)");
}

}  // namespace

Result<runs::ContextPolicy> ParseContextPolicy(const Json& j, std::int64_t max_context) {
  if (!j.is_object()) return Status::InvalidArgument("context must be an object");
  runs::ContextPolicy p;
  if (j.contains("policy")) {
    if (!j["policy"].is_string()) return Status::InvalidArgument("context.policy must be a string");
    LLMSYNC_ASSIGN_OR_RETURN(p.mode, runs::ParseContextMode(j["policy"].get<std::string>()));
  }
  LLMSYNC_ASSIGN_OR_RETURN(p.budget_tokens, PolicyNumber(j, "budget_tokens"));
  LLMSYNC_ASSIGN_OR_RETURN(p.target_tokens, PolicyNumber(j, "target_tokens"));
  LLMSYNC_RETURN_IF_ERROR(runs::ValidateContextPolicy(p, max_context));
  return p;
}

Json ContextPolicyJson(const runs::ContextPolicy& policy) {
  Json j = {{"policy", std::string(runs::ContextModeName(policy.mode))}};
  if (policy.budget_tokens > 0) j["budget_tokens"] = policy.budget_tokens;
  if (policy.target_tokens > 0) j["target_tokens"] = policy.target_tokens;
  return j;
}

runs::ContextPolicy SessionContextPolicy(const std::string& metadata) {
  if (metadata.empty()) return {};
  Json m = Json::parse(metadata, nullptr, false);
  if (!m.is_object() || !m.contains(kContextMetadataKey)) return {};
  // Validated when it was stored; a context smaller since then caps the budget (EffectiveBudget).
  auto p = ParseContextPolicy(m[kContextMetadataKey], std::int64_t{1} << 40);
  return p.IsOk() ? *p : runs::ContextPolicy{};
}

Json CompactionJson(const CompactionReport& r) {
  Json folded = Json::array();
  for (const Id& id : r.folded) folded.push_back(id.ToHex());
  return {{"policy", std::string(runs::ContextModeName(r.mode))},
          {"original_tip", r.original_tip.ToHex()},
          {"compacted_tip", r.compacted_tip.ToHex()},
          {"folded", std::move(folded)},
          {"tokens_before", r.tokens_before},
          {"tokens_after", r.tokens_after},
          {"summary_run", r.summary_run.IsZero() ? Json(nullptr) : Json(r.summary_run.ToHex())},
          {"unsummarised", r.unsummarised},
          {"ahead", r.ahead},
          {"prefill_run", r.prefill_run.IsZero() ? Json(nullptr) : Json(r.prefill_run.ToHex())},
          {"cost", r.summary_cost}};
}

Result<bool> NeedsCompaction(const ServerContext& ctx, const std::vector<session::Node>& path,
                             const runs::ContextPolicy& policy, std::int64_t max_tokens) {
  if (policy.mode == runs::ContextMode::kNone || path.empty()) return false;
  LLMSYNC_ASSIGN_OR_RETURN(std::vector<session::TokenId> gen, ctx.conversation->GenerationPrompt(path));
  const auto prompt = static_cast<std::int64_t>(runs::Conversation::PathTokens(path).size() + gen.size());
  const std::int64_t budget = runs::EffectiveBudget(policy, ctx.max_context);
  return runs::PassesBudget(prompt, runs::GenerationReserve(max_tokens, budget), budget);
}

void StartCompaction(ServerContext& ctx, CompactionJob job, CompactionDone done) {
  const std::int64_t target = runs::EffectiveTarget(job.policy, ctx.max_context);
  const bool summarise = job.policy.mode == runs::ContextMode::kAuto;
  const std::int64_t reserve = summarise ? SummaryReserve(job, ctx.max_context) : 0;
  // Ahead of its next turn the path ends with an answer: its newest turn is folded too unless it
  // fits the target (the turns written while the summary is generated are carried after it).
  Result<runs::CompactionPlan> plan = runs::PlanCompaction(job.path, target, reserve, !job.ahead);
  if (!plan.IsOk()) return done(plan.GetStatus());
  if (!summarise) return done(WriteBranch(ctx, job, *plan, std::nullopt, plan->pinned));
  Result<SummaryRun> run = SubmitSummaryRun(ctx, job, *plan);
  if (!run.IsOk() && runs::IsContextLengthExceeded(run.GetStatus())) {
    // Not even the pinned layer and the first folded node fit beside a summary: drop the fold.
    LLMSYNC_LOG(kWarning) << "compaction of session " << job.session.ShortHex()
                          << ": the summary run does not fit the context (" << run.GetStatus().ToString()
                          << "); truncating";
    return done(WriteBranch(ctx, job, *plan, std::nullopt, plan->pinned));
  }
  if (!run.IsOk()) return done(run.GetStatus());
  ServerContext* c = &ctx;
  auto shared_job = std::make_shared<CompactionJob>(std::move(job));
  auto shared_plan = std::make_shared<runs::CompactionPlan>(*plan);
  const Id run_id = run->run;
  const std::size_t summarised_to = run->summarised_to;
  if (summarised_to < plan->kept_from) {
    LLMSYNC_LOG(kInfo) << "compaction of session " << shared_job->session.ShortHex() << ": summarising "
                       << summarised_to - plan->pinned << " of " << plan->Folded()
                       << " folded nodes, the rest does not fit the context beside the summary";
  }
  auto on_end = [c, shared_job, shared_plan, run_id, summarised_to, done] {
    auto finished = [&]() -> Result<CompactionReport> {
      LLMSYNC_ASSIGN_OR_RETURN(RunOutcome outcome, ReadRunOutcome(*c, shared_job->tenant, run_id));
      if (outcome.status != "completed") {
        return Status::Unavailable(
            "the summary run " + run_id.ToHex() + " ended " +
            (outcome.status.empty() ? std::string("without an outcome") : outcome.status) +
            (outcome.error.empty() ? "" : ": " + outcome.error));
      }
      LLMSYNC_ASSIGN_OR_RETURN(CompactionReport report,
                               WriteBranch(*c, *shared_job, *shared_plan, outcome.text, summarised_to));
      report.summary_run = run_id;
      report.summary_cost = outcome.cost;
      return report;
    };
    Result<CompactionReport> r = Status::Internal("compaction did not finish");
    try {
      r = finished();
    } catch (const std::exception& e) {
      r = Status::Internal(std::string("compaction: ") + e.what());
    }
    done(std::move(r));
  };
  auto sub = ctx.hub->Subscribe(
      shared_job->tenant, run_id, 0, [](const store::RunEvent&) { return true; }, on_end);
  if (!sub.IsOk()) done(sub.GetStatus());
}

HttpResponse RespondAfterCompaction(ServerContext& ctx, CompactionJob job, bool streaming,
                                    std::function<HttpResponse(Result<CompactionReport>)> then) {
  ServerContext* c = &ctx;
  auto shared_job = std::make_shared<CompactionJob>(std::move(job));
  if (streaming) {
    return SseResponse([c, shared_job, then](std::shared_ptr<StreamSink> sink) {
      StartCompaction(*c, std::move(*shared_job), [sink, then](Result<CompactionReport> report) {
        HttpResponse r = then(std::move(report));
        if (r.stream) {
          r.stream(sink);
          return;
        }
        Json err = Json::parse(r.body, nullptr, false);
        sink->Write(FormatSseEvent(0, "error", err.is_discarded() ? r.body : DumpJson(err)));
        sink->Close();
      });
    });
  }
  HttpResponse response;
  response.deferred = [c, shared_job, then](std::function<void(HttpResponse)> finish) {
    StartCompaction(*c, std::move(*shared_job), [finish, then](Result<CompactionReport> report) {
      HttpResponse r = then(std::move(report));
      if (r.deferred) {
        r.deferred(finish);
        return;
      }
      finish(std::move(r));
    });
  };
  return response;
}

bool CompactionsAhead::TryBegin(const Id& session, const std::vector<session::Node>& path) {
  std::lock_guard<std::mutex> lock(mu_);
  if (running_.contains(session)) return false;
  if (auto it = ready_.find(session); it != ready_.end()) {
    const Id& tip = it->second.original_tip;
    if (std::any_of(path.begin(), path.end(), [&](const session::Node& n) { return n.id == tip; }))
      return false;
  }
  running_.insert(session);
  return true;
}

bool CompactionsAhead::NoteIfRunning(const Id& session, const Id& tip) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!running_.contains(session)) return false;
  newest_[session] = tip;
  return true;
}

Id CompactionsAhead::TakeNewest(const Id& session) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = newest_.find(session);
  if (it == newest_.end()) return Id();
  Id tip = it->second;
  newest_.erase(it);
  return tip;
}

void CompactionsAhead::Keep(const Id& session, CompactionReport ready) {
  std::lock_guard<std::mutex> lock(mu_);
  if (ready_.size() >= kMaxReady) ready_.clear();
  ready_[session] = std::move(ready);
}

Id CompactionsAhead::PrefillRun(const Id& session) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = ready_.find(session);
  return it == ready_.end() ? Id() : it->second.prefill_run;
}

void CompactionsAhead::End(const Id& session, std::optional<CompactionReport> ready) {
  std::vector<std::function<void()>> waiters;
  {
    std::lock_guard<std::mutex> lock(mu_);
    running_.erase(session);
    newest_.erase(session);
    if (ready) {
      if (ready_.size() >= kMaxReady) ready_.clear();
      ready_[session] = std::move(*ready);
    }
    if (auto it = waiters_.find(session); it != waiters_.end()) {
      waiters = std::move(it->second);
      waiters_.erase(it);
    }
  }
  for (auto& w : waiters) w();
}

bool CompactionsAhead::Running(const Id& session) {
  std::lock_guard<std::mutex> lock(mu_);
  return running_.contains(session);
}

bool CompactionsAhead::WhenEnds(const Id& session, std::function<void()> then) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!running_.contains(session)) return false;
  waiters_[session].push_back(std::move(then));
  return true;
}

std::optional<CompactionReport> CompactionsAhead::Ready(const Id& session) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = ready_.find(session);
  if (it == ready_.end()) return std::nullopt;
  return it->second;
}

void CompactionsAhead::Forget(const Id& session) {
  std::lock_guard<std::mutex> lock(mu_);
  ready_.erase(session);
}

HttpResponse RespondAfterAhead(ServerContext& ctx, const Id& session, bool streaming, bool* waited,
                               std::function<HttpResponse()> then) {
  *waited = false;
  if (ctx.compactions_ahead == nullptr) return HttpResponse();
  // Registered now (so the caller knows whether to wait); the response picks the end up later.
  struct Gate {
    std::mutex mu;
    bool ended = false;
    std::function<void()> resume;  // set once the response waits
  };
  auto gate = std::make_shared<Gate>();
  *waited = ctx.compactions_ahead->WhenEnds(session, [gate] {
    std::function<void()> resume;
    {
      std::lock_guard<std::mutex> lock(gate->mu);
      gate->ended = true;
      resume = std::move(gate->resume);
    }
    if (resume) resume();
  });
  if (!*waited) return HttpResponse();
  auto when_ended = [gate](std::function<void()> resume) {
    {
      std::lock_guard<std::mutex> lock(gate->mu);
      if (!gate->ended) {
        gate->resume = std::move(resume);
        return;
      }
    }
    resume();
  };
  if (streaming) {
    return SseResponse([when_ended, then](std::shared_ptr<StreamSink> sink) {
      when_ended([sink, then] {
        HttpResponse r = then();
        if (r.stream) return r.stream(sink);
        Json err = Json::parse(r.body, nullptr, false);
        sink->Write(FormatSseEvent(0, "error", err.is_discarded() ? r.body : DumpJson(err)));
        sink->Close();
      });
    });
  }
  HttpResponse response;
  response.deferred = [when_ended, then](std::function<void(HttpResponse)> finish) {
    when_ended([finish, then] {
      HttpResponse r = then();
      if (r.deferred) return r.deferred(finish);
      finish(std::move(r));
    });
  };
  return response;
}

namespace {

// Copies the nodes of `path` after the report's original tip onto its compacted branch (frozen
// tokens as they are; the head stays) and moves both tips on. False when `path` does not go
// through the original tip, or holds a purged node after it (the adopting turn says why).
Result<bool> CarryOnto(ServerContext& ctx, const std::string& tenant, const Id& session,
                       const std::vector<session::Node>& path, CompactionReport* report) {
  auto at = std::find_if(path.begin(), path.end(),
                         [&](const session::Node& n) { return n.id == report->original_tip; });
  if (at == path.end()) return false;
  session::AppendRequest append;
  append.tenant = tenant;
  append.session = session;
  append.parent = report->compacted_tip;
  append.move_head = false;
  std::uint64_t tokens = 0;
  for (auto it = at + 1; it != path.end(); ++it) {
    if (it->purged) return false;
    append.nodes.push_back(it->content);
    tokens += it->content.tokens.size();
  }
  if (append.nodes.empty()) return true;
  LLMSYNC_ASSIGN_OR_RETURN(session::AppendResult appended, ctx.sessions->Append(append));
  report->original_tip = path.back().id;
  report->compacted_tip = appended.ids.back();
  report->tokens_after += tokens;
  return true;
}

// Starts a prefill-only run of the compacted branch, so that its KV is cached before the turn
// that adopts it. A refusal (a full queue, remote engines) only leaves that turn to prefill it.
void PrefillAhead(ServerContext& ctx, const std::string& tenant, const Id& session,
                  CompactionReport* report) {
  runs::SubmitRequest submit;
  submit.tenant = tenant;
  submit.session = session;
  submit.from_node = report->compacted_tip;
  submit.params.max_tokens = 1;
  submit.params.add_generation_prompt = false;
  submit.params.prefill_only = true;
  Result<store::RunRecord> run = ctx.scheduler->Submit(submit);
  if (!run.IsOk()) {
    LLMSYNC_LOG(kInfo) << "session " << session.ShortHex()
                       << ": the compacted branch is not prefilled ahead: " << run.GetStatus().ToString();
    return;
  }
  report->prefill_run = run->id;
}

// A finished ahead compaction not adopted yet, whose original tip `path` goes through: the nodes
// after it go onto the compacted branch now, and its KV is computed. False when there is none.
Result<bool> ExtendAhead(ServerContext& ctx, const std::string& tenant, const Id& session,
                         const std::vector<session::Node>& path) {
  std::optional<CompactionReport> ready = ctx.compactions_ahead->Ready(session);
  if (!ready) return false;
  const Id tip = ready->compacted_tip;
  LLMSYNC_ASSIGN_OR_RETURN(bool carried, CarryOnto(ctx, tenant, session, path, &*ready));
  if (!carried) return false;
  if (ready->compacted_tip != tip) {
    PrefillAhead(ctx, tenant, session, &*ready);
    ctx.compactions_ahead->Keep(session, std::move(*ready));
  }
  return true;
}

}  // namespace

void CompactAheadAfter(ServerContext& ctx, const std::string& tenant, const Id& session, const Id& run,
                       const runs::ContextPolicy& policy, std::int64_t max_tokens) {
  if (policy.mode != runs::ContextMode::kAuto || ctx.compactions_ahead == nullptr) return;
  ServerContext* c = &ctx;
  auto on_end = [c, tenant, session, run, policy, max_tokens] {
    auto check = [&]() -> Result<bool> {
      LLMSYNC_ASSIGN_OR_RETURN(RunOutcome outcome, ReadRunOutcome(*c, tenant, run));
      if (outcome.status != "completed" || outcome.node.IsZero()) return false;
      LLMSYNC_ASSIGN_OR_RETURN(std::vector<session::Node> path,
                               c->sessions->Path(tenant, session, outcome.node));
      // A compacted branch is waiting for its turn: this one goes onto it too.
      LLMSYNC_ASSIGN_OR_RETURN(bool extended, ExtendAhead(*c, tenant, session, path));
      if (extended) return true;
      // One is being written: this turn goes onto it once it is done.
      if (c->compactions_ahead->NoteIfRunning(session, outcome.node)) return false;
      const auto prompt = static_cast<std::int64_t>(runs::Conversation::PathTokens(path).size());
      const std::int64_t budget = runs::EffectiveBudget(policy, c->max_context);
      const auto turn = static_cast<std::int64_t>(runs::LastTurnTokens(path));
      const std::int64_t reserve = runs::GenerationReserve(max_tokens, budget);
      if (!runs::PastHighWater(prompt, turn, reserve, budget)) return false;
      CompactionJob job{tenant, session, std::move(path), policy, false, 0, true};
      // Only when the compacted branch leaves room for a few turns: else it would compact again
      // at once, and compacting at the turn that passes the budget keeps more turns.
      const std::int64_t summary = SummaryReserve(job, c->max_context);
      auto plan =
          runs::PlanCompaction(job.path, runs::EffectiveTarget(policy, c->max_context), summary, false);
      if (!plan.IsOk()) return false;
      const auto compacted = static_cast<std::int64_t>(plan->pinned_tokens + plan->kept_tokens) + summary;
      if (!runs::AheadLeavesRoom(compacted, turn, reserve, budget)) return false;
      if (!c->compactions_ahead->TryBegin(session, job.path)) return false;
      StartCompaction(*c, std::move(job), [c, tenant, session](Result<CompactionReport> report) {
        if (!report.IsOk()) {
          LLMSYNC_LOG(kWarning) << "ahead compaction of session " << session.ShortHex() << ": "
                                << report.GetStatus().ToString();
          return c->compactions_ahead->End(session, std::nullopt);
        }
        report->ahead = true;
        // The turns that ended meanwhile go onto the branch, then its KV is computed.
        if (Id newest = c->compactions_ahead->TakeNewest(session); !newest.IsZero()) {
          Result<std::vector<session::Node>> path = c->sessions->Path(tenant, session, newest);
          Result<bool> carried =
              path.IsOk() ? CarryOnto(*c, tenant, session, *path, &*report) : Result<bool>(path.GetStatus());
          if (!carried.IsOk()) {
            LLMSYNC_LOG(kWarning) << "ahead compaction of session " << session.ShortHex()
                                  << ": carrying the newer turns: " << carried.GetStatus().ToString();
          }
        }
        PrefillAhead(*c, tenant, session, &*report);
        c->compactions_ahead->End(session, std::move(report).Value());
      });
      return true;
    };
    try {
      Result<bool> started = check();
      if (!started.IsOk()) {
        LLMSYNC_LOG(kWarning) << "ahead compaction of session " << session.ShortHex() << ": "
                              << started.GetStatus().ToString();
      }
    } catch (const std::exception& e) {
      LLMSYNC_LOG(kWarning) << "ahead compaction of session " << session.ShortHex() << ": " << e.what();
    }
  };
  auto sub = ctx.hub->Subscribe(
      tenant, run, 0, [](const store::RunEvent&) { return true; }, on_end);
  if (!sub.IsOk()) LLMSYNC_LOG(kWarning) << "ahead compaction: " << sub.GetStatus().ToString();
}

Result<std::optional<CompactionReport>> AdoptAhead(ServerContext& ctx, const CompactionJob& job,
                                                   std::int64_t max_tokens) {
  if (ctx.compactions_ahead == nullptr || job.policy.mode != runs::ContextMode::kAuto) {
    return std::optional<CompactionReport>();
  }
  std::optional<CompactionReport> ready = ctx.compactions_ahead->Ready(job.session);
  if (!ready) return ready;
  const std::vector<session::Node>& path = job.path;
  auto at = std::find_if(path.begin(), path.end(),
                         [&](const session::Node& n) { return n.id == ready->original_tip; });
  if (at == path.end()) return std::optional<CompactionReport>();
  // The nodes written since the compaction started, copied as they are onto the compacted branch
  // (checked in memory first: a path that would still pass the budget is compacted at once).
  LLMSYNC_ASSIGN_OR_RETURN(std::vector<session::Node> adopted,
                           ctx.sessions->Path(job.tenant, job.session, ready->compacted_tip));
  std::vector<session::NodeDraft> drafts;
  for (auto it = at + 1; it != path.end(); ++it) {
    if (it->purged) return std::optional<CompactionReport>();  // compacting at once says why
    drafts.push_back(it->content);
    session::Node copy;
    copy.content = it->content;
    adopted.push_back(std::move(copy));
  }
  ctx.compactions_ahead->Forget(job.session);
  LLMSYNC_ASSIGN_OR_RETURN(bool still, NeedsCompaction(ctx, adopted, job.policy, max_tokens));
  if (still) return std::optional<CompactionReport>();
  Id tip = ready->compacted_tip;
  if (!drafts.empty()) {
    session::AppendRequest append;
    append.tenant = job.tenant;
    append.session = job.session;
    append.parent = tip;
    append.nodes = std::move(drafts);
    append.move_head = job.move_head;
    LLMSYNC_ASSIGN_OR_RETURN(session::AppendResult appended, ctx.sessions->Append(append));
    tip = appended.ids.back();
  } else if (job.move_head) {
    LLMSYNC_RETURN_IF_ERROR(ctx.sessions->SetHead(job.tenant, job.session, tip).GetStatus());
  }
  ready->compacted_tip = tip;
  ready->tokens_before = runs::Conversation::PathTokens(path).size();
  ready->tokens_after = runs::Conversation::PathTokens(adopted).size();
  return ready;
}

}  // namespace llmsync::api
