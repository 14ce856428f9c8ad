// Context compaction at the API edge: a session's context policy (kept in its metadata), the
// check a run makes before it is submitted, and the compaction that puts a long session on a new,
// shorter branch (runs/context_policy.h plans it; this file carries it out).
//
// A compaction under `auto` is an ordinary durable run: the summarisation instruction
// (runs::kSummaryInstruction) is appended as a user node after the folded turns, on a side branch
// of the original, and the run's answer becomes the text of the summary node. Then one append
// writes the compacted branch (pinned nodes reused, the summary, copies of the kept turns), the
// head moves there when asked, and `session.compacted` goes out on the session event feed.
// Under `truncate` the branch is written at once, without the summary. The original branch is
// never touched. The summary node's metadata `call_id` holds the id of the last node it folds:
// ids name whole paths, so it names exactly the history the summary stands in for, and the
// OpenAI views (openai_index.h) continue a re-sent history that extends it on the compacted branch.
//
// Ahead of time: after a run ends past the high-water mark (runs::PastHighWater), the session is
// compacted in the background (CompactAheadAfter), so that the turn that passes the budget finds
// the compacted branch ready: the native API adopts it (AdoptAhead: the nodes written since are
// copied onto it, frozen tokens as they are), the OpenAI views find it in the tree.
//
// Thread safety: every function is safe for concurrent use. StartCompaction never blocks on the
// model: its continuation runs on the thread that ends the summary run (the inference loop, or the
// calling thread when nothing has to be generated), and does a few store writes there.
#pragma once

#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "api/server_context.h"
#include "runs/context_policy.h"

namespace llmsync::api {

// Where a session's policy lives in its metadata (PATCH /v1/sessions/{id} keeps it).
inline constexpr const char* kContextMetadataKey = "llmsync_context";

// {"policy": "auto"|"truncate"|"none", "budget_tokens": N, "target_tokens": N}; kInvalidArgument
// naming the field.
Result<runs::ContextPolicy> ParseContextPolicy(const Json& j, std::int64_t max_context);
Json ContextPolicyJson(const runs::ContextPolicy& policy);
// The policy stored in a session's metadata text; kNone when there is none.
runs::ContextPolicy SessionContextPolicy(const std::string& metadata);

struct CompactionReport {
  Id original_tip;   // the last node of the path that was compacted
  Id compacted_tip;  // the last node of the new branch
  std::vector<Id> folded;
  runs::ContextMode mode = runs::ContextMode::kNone;
  std::uint64_t tokens_before = 0;
  std::uint64_t tokens_after = 0;
  Id summary_run;     // zero under truncate
  Json summary_cost;  // the summary run's run.usage payload (null under truncate)
  // The newest folded nodes the summary does not cover (they did not fit the context beside it);
  // every folded node under truncate.
  std::uint64_t unsummarised = 0;
  bool ahead = false;  // done in the background after an earlier run (CompactAheadAfter)
  // Ahead only: the prefill-only run computing the compacted branch's KV before its first turn
  // (zero: none was started; that turn then prefills the branch itself).
  Id prefill_run;
};
Json CompactionJson(const CompactionReport& report);

struct CompactionJob {
  std::string tenant;
  Id session;
  std::vector<session::Node> path;  // the branch to compact, root first
  runs::ContextPolicy policy;       // kAuto or kTruncate
  bool move_head = true;            // false for the OpenAI views' shared session
  std::uint64_t seed = 0;           // of the summary run
  // Compacted ahead of the next turn: the path ends with an answer, not with a message to answer.
  bool ahead = false;
};

// True when a run of `max_tokens` from `path` passes the policy's budget.
Result<bool> NeedsCompaction(const ServerContext& ctx, const std::vector<session::Node>& path,
                             const runs::ContextPolicy& policy, std::int64_t max_tokens);

using CompactionDone = std::function<void(Result<CompactionReport>)>;
// Compacts; `done` runs exactly once, with the report or the error.
void StartCompaction(ServerContext& ctx, CompactionJob job, CompactionDone done);

// A response built by `then` once the compaction is done: deferred (holding no thread meanwhile)
// or, with `streaming`, an SSE stream whose events are those of `then`'s stream response.
HttpResponse RespondAfterCompaction(ServerContext& ctx, CompactionJob job, bool streaming,
                                    std::function<HttpResponse(Result<CompactionReport>)> then);

// Compactions started ahead of time, per session: at most one running, and the newest finished
// one until the native API adopts it. In memory only: after a restart (or on another process of a
// shared store) the turn that passes the budget compacts itself, as without ahead compaction.
// Thread safety: all methods are safe for concurrent use.
class CompactionsAhead {
 public:
  // False when one is running for the session, or a finished one not adopted yet folds a prefix
  // of `path` (compacting again would repeat its work).
  bool TryBegin(const Id& session, const std::vector<session::Node>& path);
  // While one runs for the session: records `tip`, the end of a turn written on the original
  // meanwhile (the newest wins), and returns true.
  bool NoteIfRunning(const Id& session, const Id& tip);
  // The newest tip noted while the running one runs (zero: none), forgotten.
  Id TakeNewest(const Id& session);
  // Ends the running one; `ready` (when set) waits for AdoptAhead.
  void End(const Id& session, std::optional<CompactionReport> ready);
  std::optional<CompactionReport> Ready(const Id& session);
  // Replaces the finished one (extended by the turns written since).
  void Keep(const Id& session, CompactionReport ready);
  // The prefill-only run of the finished one (zero: none).
  Id PrefillRun(const Id& session);
  void Forget(const Id& session);
  bool Running(const Id& session);
  // Calls `then` once the running one ends (after End has kept its report, on End's thread);
  // false, without calling it, when none is running for the session.
  bool WhenEnds(const Id& session, std::function<void()> then);

 private:
  static constexpr std::size_t kMaxReady = 4096;  // sessions; past it every finished one is dropped
  std::mutex mu_;
  std::unordered_set<Id> running_;                                      // GUARDED_BY(mu_)
  std::unordered_map<Id, CompactionReport> ready_;                      // GUARDED_BY(mu_)
  std::unordered_map<Id, Id> newest_;                                   // GUARDED_BY(mu_)
  std::unordered_map<Id, std::vector<std::function<void()>>> waiters_;  // GUARDED_BY(mu_)
};

// A response built by `then` once the session's running ahead compaction ends; *waited false
// (and `then` not called) when none is running. `streaming` as in RespondAfterCompaction.
HttpResponse RespondAfterAhead(ServerContext& ctx, const Id& session, bool streaming, bool* waited,
                               std::function<HttpResponse()> then);

// When `run` ends completed and the path to its answer is past the policy's high-water mark (an
// auto policy only), compacts that path in the background, without moving the head. Returns at
// once; the report goes to ctx.compactions_ahead. `max_tokens`: the generation the session's
// runs reserve. Once the summary is written, the turns that ended on the original branch
// meanwhile (and later, at each run's end, until the branch is adopted) are copied onto the
// compacted branch, and a prefill-only run computes its KV: the turn that adopts it prefills
// only its own message.
void CompactAheadAfter(ServerContext& ctx, const std::string& tenant, const Id& session, const Id& run,
                       const runs::ContextPolicy& policy, std::int64_t max_tokens);

// The native API's side of ahead compaction, for a run from `job.path` (auto policy): when a
// finished ahead compaction folded a prefix of the path, the nodes after its original tip are
// copied onto the compacted branch (the head moves there when job.move_head) and the report
// names the new tip, with tokens_before the path's. nullopt when there is none to adopt, or the
// adopted path would still pass the budget (the caller then compacts at once if it must).
Result<std::optional<CompactionReport>> AdoptAhead(ServerContext& ctx, const CompactionJob& job,
                                                   std::int64_t max_tokens);

}  // namespace llmsync::api
