// Context policy and compaction planning: what a long session does when its prompt outgrows the
// model's context, and which nodes a compaction keeps, folds into a summary, or drops.
//
// A prompt is read in layers of fixed order: the pinned layer (the leading system and template
// nodes: system prompt, tool definitions), the summary layer (summary nodes a compaction wrote),
// then the recent turns. The stable layers come first, so a compacted branch keeps its prefix
// token-identical across the turns that follow it and the KV cache reuses it.
//
// A compaction never rewrites a branch: it plans a new one whose nodes are the pinned nodes
// themselves (same ids: same parent, same content), one summary node (policy auto) or nothing
// (policy truncate), and copies of the most recent whole turns that fit the target. The target is
// well under the budget (hysteresis: an eighth of it unless set), so the turns after a compaction
// run on the compacted prefix for a long while instead of compacting again at every turn.
//
// A session nearing its budget is compacted ahead of time, after a run (PastHighWater), so the
// turn that passes the budget finds the compacted branch ready instead of waiting for a summary.
//
// Thread safety: values and pure functions.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "llmsync/status.h"
#include "session/node.h"

namespace llmsync::runs {

enum class ContextMode : std::uint8_t {
  kNone = 0,      // a prompt past the context is refused (400 context_length_exceeded)
  kTruncate = 1,  // the oldest turns are dropped, without a model call
  kAuto = 2,      // the oldest turns are folded into a summary the model writes
};
std::string_view ContextModeName(ContextMode mode);
// "none" | "truncate" | "auto"; kInvalidArgument otherwise.
Result<ContextMode> ParseContextMode(std::string_view name);

struct ContextPolicy {
  ContextMode mode = ContextMode::kNone;
  // Prompt + generation room. 0: the context less the room a summary run needs beside the history
  // it folds (kSummaryRoomTokens, at most an eighth of the context).
  std::int64_t budget_tokens = 0;
  std::int64_t target_tokens = 0;  // what a compaction aims for; 0: an eighth of the budget
};

// What the default budget leaves free of a large context: the summary run's instruction and its
// summary (at most kMaxSummaryTokens) after the folded history.
inline constexpr std::int64_t kSummaryRoomTokens = 512;
inline constexpr std::int64_t kMaxSummaryTokens = 256;

// The budget and target in force on a server whose context holds `max_context` tokens.
std::int64_t EffectiveBudget(const ContextPolicy& policy, std::int64_t max_context);
std::int64_t EffectiveTarget(const ContextPolicy& policy, std::int64_t max_context);

// kInvalidArgument (naming the field) for negative values, a budget beyond the context, or a
// target not under the budget.
Status ValidateContextPolicy(const ContextPolicy& policy, std::int64_t max_context);

// The generation room a run reserves under a policy: its max_tokens, at most a quarter of the
// budget (a run whose max_tokens is larger still runs; the scheduler caps it at the context).
std::int64_t GenerationReserve(std::int64_t max_tokens, std::int64_t budget);

// True when a run whose prompt has `prompt_tokens` tokens (generation prompt included) and
// reserves `reserve` tokens for its answer passes the budget.
bool PassesBudget(std::int64_t prompt_tokens, std::int64_t reserve, std::int64_t budget);

// The tokens of the newest turn of `path`: from its last user node (after the pinned layer) to
// the end; 0 when it has none.
std::uint64_t LastTurnTokens(const std::vector<session::Node>& path);

// The high-water mark: true when a path of `prompt_tokens` tokens (after a run), grown by two more
// turns of `turn_tokens` each plus the generation `reserve`, would pass the budget. Past it the
// session is compacted ahead of time, in the background, so that the turn that passes the budget
// (the next or the one after) finds the compacted branch ready. A turn of 0 tokens never passes.
bool PastHighWater(std::int64_t prompt_tokens, std::int64_t turn_tokens, std::int64_t reserve,
                   std::int64_t budget);
// Whether compacting ahead pays: a compacted branch of `compacted_tokens` leaves room for six
// more turns of `turn_tokens` (and the generation reserve) under the budget: the two or so
// written before it is adopted (they are carried onto it) and a few after. When it does not
// (turns large against the budget), the carried turns would make it due again within a turn or
// two; compacting at the turn that passes the budget is then the better deal.
bool AheadLeavesRoom(std::int64_t compacted_tokens, std::int64_t turn_tokens, std::int64_t reserve,
                     std::int64_t budget);

// The tokens of the pinned layer of `path` (its leading system and template nodes).
std::uint64_t PinnedTokens(const std::vector<session::Node>& path);

// The most tokens a summary may have under `budget` beside a pinned layer of `pinned` tokens: a
// fortieth of the rest, 16 to kMaxSummaryTokens. Each summary token is paid twice per compaction
// (generated, then prefilled on the compacted branch) and the turns that end while it is generated
// are carried onto the branch (prefilled again), so it is bounded by what the turns between two
// compactions bring, not by the target.
std::int64_t SummaryTokens(std::int64_t budget, std::uint64_t pinned);

struct CompactionPlan {
  std::size_t pinned = 0;           // path[0, pinned) stays: the pinned layer
  std::size_t kept_from = 0;        // path[kept_from, end) is copied after the summary; the rest is folded
  std::uint64_t tokens_before = 0;  // tokens of the whole path
  std::uint64_t pinned_tokens = 0;
  std::uint64_t folded_tokens = 0;
  std::uint64_t kept_tokens = 0;
  std::size_t Folded() const { return kept_from - pinned; }
};

// Plans a compaction of `path` so that pinned + `summary_reserve` + kept turns fit in `target`
// tokens. Turns begin at user nodes; only whole turns are kept, newest first, and with
// `keep_newest` the newest turn is kept whatever it costs (it holds the message being answered);
// without (a path compacted ahead of its next turn, which ends with an answer) it is kept only if
// it fits, so everything after the pinned layer may be folded. Earlier summary nodes are folded
// into the new summary. kInvalidArgument when nothing can be folded (the path is only pinned
// nodes and one kept turn): the prompt cannot be made smaller at a turn boundary.
Result<CompactionPlan> PlanCompaction(const std::vector<session::Node>& path, std::int64_t target,
                                      std::int64_t summary_reserve, bool keep_newest = true);

// The instruction of a summarisation run: appended as a user node after the folded turns (on a
// side branch of the original), it asks the model for the summary that stands in for them.
// It is computed at every compaction (it follows the folded history, so no cache holds it): short.
inline constexpr std::string_view kSummaryInstruction =
    "Summarise the conversation for your later use: goals, facts, decisions, open questions, "
    "promises. Prose only.";

}  // namespace llmsync::runs
