#include "runs/context_policy.h"

#include <algorithm>
#include <string>

namespace llmsync::runs {

std::string_view ContextModeName(ContextMode mode) {
  switch (mode) {
    case ContextMode::kTruncate: return "truncate";
    case ContextMode::kAuto: return "auto";
    case ContextMode::kNone: break;
  }
  return "none";
}

Result<ContextMode> ParseContextMode(std::string_view name) {
  if (name == "none") return ContextMode::kNone;
  if (name == "truncate") return ContextMode::kTruncate;
  if (name == "auto") return ContextMode::kAuto;
  return Status::InvalidArgument("context.policy must be \"auto\", \"truncate\" or \"none\", not \"" +
                                 std::string(name.substr(0, 64)) + "\"");
}

std::int64_t EffectiveBudget(const ContextPolicy& policy, std::int64_t max_context) {
  return policy.budget_tokens > 0 ? std::min(policy.budget_tokens, max_context)
                                  : max_context - std::min(kSummaryRoomTokens, max_context / 8);
}

std::int64_t EffectiveTarget(const ContextPolicy& policy, std::int64_t max_context) {
  const std::int64_t budget = EffectiveBudget(policy, max_context);
  return policy.target_tokens > 0 ? std::min(policy.target_tokens, budget) : budget / 8;
}

Status ValidateContextPolicy(const ContextPolicy& policy, std::int64_t max_context) {
  if (policy.budget_tokens < 0) return Status::InvalidArgument("context.budget_tokens must not be negative");
  if (policy.target_tokens < 0) return Status::InvalidArgument("context.target_tokens must not be negative");
  if (policy.budget_tokens > max_context) {
    return Status::InvalidArgument("context.budget_tokens " + std::to_string(policy.budget_tokens) +
                                   " exceeds the model's context of " + std::to_string(max_context) +
                                   " tokens");
  }
  if (policy.budget_tokens > 0 && policy.budget_tokens < 64) {
    return Status::InvalidArgument("context.budget_tokens must be at least 64");
  }
  const std::int64_t budget = EffectiveBudget(policy, max_context);
  if (policy.target_tokens >= budget) {
    return Status::InvalidArgument("context.target_tokens " + std::to_string(policy.target_tokens) +
                                   " must be under the budget of " + std::to_string(budget) + " tokens");
  }
  return Status::Ok();
}

std::int64_t GenerationReserve(std::int64_t max_tokens, std::int64_t budget) {
  return std::clamp<std::int64_t>(max_tokens, 1, std::max<std::int64_t>(1, budget / 4));
}

bool PassesBudget(std::int64_t prompt_tokens, std::int64_t reserve, std::int64_t budget) {
  return prompt_tokens + reserve > budget;
}

bool PastHighWater(std::int64_t prompt_tokens, std::int64_t turn_tokens, std::int64_t reserve,
                   std::int64_t budget) {
  return turn_tokens > 0 && prompt_tokens + 2 * turn_tokens + reserve > budget;
}

bool AheadLeavesRoom(std::int64_t compacted_tokens, std::int64_t turn_tokens, std::int64_t reserve,
                     std::int64_t budget) {
  return compacted_tokens + 6 * turn_tokens + reserve <= budget;
}

namespace {

bool IsPinnedKind(session::NodeKind kind) {
  return kind == session::NodeKind::kSystem || kind == session::NodeKind::kTemplate;
}

std::uint64_t TokensOf(const session::Node& n) {
  return n.content.tokens.empty() ? n.token_count : n.content.tokens.size();
}

std::size_t PinnedCount(const std::vector<session::Node>& path) {
  std::size_t n = 0;
  while (n < path.size() && IsPinnedKind(path[n].content.kind)) ++n;
  return n;
}

}  // namespace

std::uint64_t PinnedTokens(const std::vector<session::Node>& path) {
  std::uint64_t tokens = 0;
  for (std::size_t i = 0, n = PinnedCount(path); i < n; ++i) tokens += TokensOf(path[i]);
  return tokens;
}

std::int64_t SummaryTokens(std::int64_t budget, std::uint64_t pinned) {
  return std::clamp<std::int64_t>((budget - static_cast<std::int64_t>(pinned)) / 40, 16, kMaxSummaryTokens);
}

std::uint64_t LastTurnTokens(const std::vector<session::Node>& path) {
  const std::size_t pinned = PinnedCount(path);
  std::uint64_t tokens = 0;
  for (std::size_t i = path.size(); i-- > pinned;) {
    tokens += TokensOf(path[i]);
    if (path[i].content.kind == session::NodeKind::kUser) return tokens;
  }
  return 0;
}

Result<CompactionPlan> PlanCompaction(const std::vector<session::Node>& path, std::int64_t target,
                                      std::int64_t summary_reserve, bool keep_newest) {
  CompactionPlan plan;
  plan.pinned = PinnedCount(path);
  for (std::size_t i = 0; i < plan.pinned; ++i) plan.pinned_tokens += TokensOf(path[i]);
  for (const session::Node& n : path) plan.tokens_before += TokensOf(n);
  // Turn starts after the pinned layer, oldest first; summary nodes belong to no turn (folded).
  std::vector<std::size_t> starts;
  for (std::size_t i = plan.pinned; i < path.size(); ++i) {
    if (path[i].content.kind == session::NodeKind::kUser) starts.push_back(i);
  }
  if (starts.empty()) return Status::InvalidArgument("the path has no user turn to keep");
  const std::int64_t room = target - static_cast<std::int64_t>(plan.pinned_tokens) - summary_reserve;
  // Suffix sums, newest turn first: kept while they fit (the newest whatever it costs, with
  // keep_newest).
  starts.push_back(path.size());
  std::size_t kept_from = path.size();
  std::uint64_t kept = 0;
  for (std::size_t t = starts.size() - 1; t-- > 0;) {
    std::uint64_t turn = 0;
    for (std::size_t i = starts[t]; i < starts[t + 1]; ++i) turn += TokensOf(path[i]);
    const bool newest = t + 2 == starts.size();
    if (!(newest && keep_newest) && static_cast<std::int64_t>(kept + turn) > room) break;
    kept += turn;
    kept_from = starts[t];
  }
  if (kept_from == plan.pinned) {
    return Status::InvalidArgument("nothing to fold: the session holds a single turn after its pinned layer");
  }
  plan.kept_from = kept_from;
  plan.kept_tokens = kept;
  plan.folded_tokens = plan.tokens_before - plan.pinned_tokens - kept;
  return plan;
}

}  // namespace llmsync::runs
