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
// never touched.
//
// Thread safety: every function is safe for concurrent use. StartCompaction never blocks on the
// model: its continuation runs on the thread that ends the summary run (the inference loop, or the
// calling thread when nothing has to be generated), and does a few store writes there.
#pragma once

#include <functional>
#include <optional>
#include <string>
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
};
Json CompactionJson(const CompactionReport& report);

struct CompactionJob {
  std::string tenant;
  Id session;
  std::vector<session::Node> path;  // the branch to compact, root first
  runs::ContextPolicy policy;       // kAuto or kTruncate
  bool move_head = true;            // false for the OpenAI views' shared session
  std::uint64_t seed = 0;           // of the summary run
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

}  // namespace llmsync::api
