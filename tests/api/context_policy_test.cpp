// runs/context_policy: the pure planning of long sessions (issue 19). Which nodes a compaction
// keeps (the pinned layer, the newest whole turns), folds (older turns and earlier summaries) or
// refuses to touch, the budget and target in force, the high-water mark, and bad policies.
#include <gtest/gtest.h>

#include "runs/context_policy.h"

namespace llmsync::runs {
namespace {

using session::Node;
using session::NodeKind;

Node N(NodeKind kind, std::uint32_t tokens) {
  Node n;
  n.content.kind = kind;
  n.token_count = tokens;
  n.id = Id::Random();
  return n;
}

// system (100), then `turns` turns of user (40) + assistant (10).
std::vector<Node> Conversation(int turns) {
  std::vector<Node> path = {N(NodeKind::kSystem, 100)};
  for (int t = 0; t < turns; ++t) {
    path.push_back(N(NodeKind::kUser, 40));
    path.push_back(N(NodeKind::kAssistant, 10));
  }
  return path;
}

TEST(ContextPolicyTest, KeepsThePinnedLayerAndTheNewestWholeTurnsThatFitTheTarget) {
  std::vector<Node> path = Conversation(10);  // 100 + 10 x 50 = 600 tokens
  path.push_back(N(NodeKind::kUser, 40));     // the message being answered
  auto plan = PlanCompaction(path, 300, 20);
  ASSERT_TRUE(plan.IsOk()) << plan.GetStatus().ToString();
  EXPECT_EQ(plan->pinned, 1u);
  EXPECT_EQ(plan->pinned_tokens, 100u);
  EXPECT_EQ(plan->tokens_before, 640u);
  // Room: 300 - 100 - 20 = 180: the pending message (40) and two whole turns (100); a third
  // would make 190.
  EXPECT_EQ(plan->kept_tokens, 140u);
  EXPECT_EQ(plan->kept_from, path.size() - 5);
  EXPECT_EQ(path[plan->kept_from].content.kind, NodeKind::kUser);  // a turn boundary
  EXPECT_EQ(plan->Folded(), plan->kept_from - 1);
  EXPECT_EQ(plan->folded_tokens, 640u - 100u - 140u);
}

TEST(ContextPolicyTest, LeadingSystemAndTemplateNodesArePinnedAndEarlierSummariesAreFolded) {
  std::vector<Node> path = {N(NodeKind::kSystem, 50), N(NodeKind::kTemplate, 30), N(NodeKind::kSummary, 60)};
  for (int t = 0; t < 4; ++t) {
    path.push_back(N(NodeKind::kUser, 40));
    path.push_back(N(NodeKind::kAssistant, 10));
  }
  auto plan = PlanCompaction(path, 200, 10);
  ASSERT_TRUE(plan.IsOk()) << plan.GetStatus().ToString();
  EXPECT_EQ(plan->pinned, 2u);
  EXPECT_EQ(plan->pinned_tokens, 80u);
  // The old summary is folded into the new one, whatever room is left.
  EXPECT_GT(plan->kept_from, 3u);
  EXPECT_EQ(plan->kept_tokens, 100u);  // 200 - 80 - 10 = 110: two whole turns
  // A system node after a user turn is history, not pinned.
  std::vector<Node> late = Conversation(3);
  late.insert(late.begin() + 3, N(NodeKind::kSystem, 5));
  auto p2 = PlanCompaction(late, 60, 0);
  ASSERT_TRUE(p2.IsOk());
  EXPECT_EQ(p2->pinned, 1u);
}

TEST(ContextPolicyTest, TheNewestTurnIsKeptEvenWhenItAloneIsBiggerThanTheTarget) {
  std::vector<Node> path = Conversation(3);
  path.push_back(N(NodeKind::kUser, 5000));
  auto plan = PlanCompaction(path, 300, 20);
  ASSERT_TRUE(plan.IsOk()) << plan.GetStatus().ToString();
  EXPECT_EQ(plan->kept_from, path.size() - 1);
  EXPECT_EQ(plan->kept_tokens, 5000u);
  EXPECT_EQ(plan->Folded(), 6u);
  // A target smaller than the pinned layer still folds everything but the newest turn.
  auto tiny = PlanCompaction(Conversation(4), 10, 20);
  ASSERT_TRUE(tiny.IsOk());
  EXPECT_EQ(tiny->Folded(), 6u);
}

TEST(ContextPolicyTest, NothingToFoldIsAnError) {
  // Only the pinned layer and one turn: no turn boundary to compact at.
  std::vector<Node> one = {N(NodeKind::kSystem, 100), N(NodeKind::kUser, 4000), N(NodeKind::kAssistant, 10)};
  auto plan = PlanCompaction(one, 300, 20);
  EXPECT_EQ(plan.GetStatus().Code(), StatusCode::kInvalidArgument);
  // No user turn at all.
  EXPECT_FALSE(PlanCompaction({N(NodeKind::kSystem, 100)}, 300, 0).IsOk());
  EXPECT_FALSE(PlanCompaction({}, 300, 0).IsOk());
  // Assistant nodes before the first user node belong to no turn and are folded with it.
  std::vector<Node> odd = {N(NodeKind::kAssistant, 10), N(NodeKind::kUser, 10), N(NodeKind::kUser, 10)};
  auto p = PlanCompaction(odd, 1000, 0);
  ASSERT_TRUE(p.IsOk());
  EXPECT_EQ(p->pinned, 0u);
  EXPECT_EQ(p->kept_from, 1u);
}

TEST(ContextPolicyTest, BudgetAndTargetDefaultsAndHysteresis) {
  ContextPolicy p;
  p.mode = ContextMode::kAuto;
  // The context less the summary run's room: an eighth of it, at most kSummaryRoomTokens.
  EXPECT_EQ(EffectiveBudget(p, 2048), 1792);
  EXPECT_EQ(EffectiveBudget(p, 131072), 131072 - kSummaryRoomTokens);
  EXPECT_EQ(EffectiveTarget(p, 2048), 224);  // an eighth of the budget
  p.budget_tokens = 1000;
  EXPECT_EQ(EffectiveBudget(p, 2048), 1000);
  EXPECT_EQ(EffectiveBudget(p, 512), 512);  // a smaller context since caps it
  p.target_tokens = 600;
  EXPECT_EQ(EffectiveTarget(p, 2048), 600);
  EXPECT_EQ(EffectiveTarget(p, 512), 512);
  // The generation reserve is the run's max_tokens, at most a quarter of the budget, at least 1.
  EXPECT_EQ(GenerationReserve(16, 1000), 16);
  EXPECT_EQ(GenerationReserve(4096, 1000), 250);
  EXPECT_EQ(GenerationReserve(0, 1000), 1);
  EXPECT_TRUE(PassesBudget(990, 16, 1000));
  EXPECT_FALSE(PassesBudget(984, 16, 1000));
  // The high-water mark: two more turns like the last one would pass the budget.
  EXPECT_FALSE(PastHighWater(700, 100, 16, 1000));
  EXPECT_TRUE(PastHighWater(800, 100, 16, 1000));
  EXPECT_FALSE(PastHighWater(999, 0, 0, 1000));  // no turn yet: nothing to extrapolate
  // Ahead of time only when the compacted branch leaves room for six more turns.
  EXPECT_TRUE(AheadLeavesRoom(300, 100, 16, 1000));
  EXPECT_FALSE(AheadLeavesRoom(300, 120, 16, 1000));
}

TEST(ContextPolicyTest, TheSummaryIsBoundedByWhatTheBudgetLeavesBesideThePinnedLayer) {
  EXPECT_EQ(PinnedTokens(Conversation(3)), 100u);
  EXPECT_EQ(PinnedTokens({N(NodeKind::kUser, 40)}), 0u);
  EXPECT_EQ(SummaryTokens(1792, 441), 33);                    // a fortieth of 1351
  EXPECT_EQ(SummaryTokens(800, 300), 16);                     // at least 16
  EXPECT_EQ(SummaryTokens(131072, 2000), kMaxSummaryTokens);  // at most 256
}

TEST(ContextPolicyTest, AheadOfItsNextTurnTheNewestTurnIsKeptOnlyIfItFits) {
  std::vector<Node> path = Conversation(6);  // ends with an answer: nothing is pending
  // Room 150 - 100 - 20 = 30: no whole turn (50) fits.
  auto kept = PlanCompaction(path, 150, 20);
  ASSERT_TRUE(kept.IsOk()) << kept.GetStatus().ToString();
  EXPECT_EQ(kept->kept_from, path.size() - 2);  // the newest turn, whatever it costs
  auto folded = PlanCompaction(path, 150, 20, false);
  ASSERT_TRUE(folded.IsOk()) << folded.GetStatus().ToString();
  EXPECT_EQ(folded->kept_from, path.size());  // everything after the pinned layer is folded
  EXPECT_EQ(folded->kept_tokens, 0u);
  EXPECT_EQ(folded->folded_tokens, 300u);
  // With room for it, the newest turn is kept as before.
  auto roomy = PlanCompaction(path, 300, 20, false);
  ASSERT_TRUE(roomy.IsOk());
  EXPECT_EQ(roomy->kept_from, path.size() - 6);  // 180 of room: three whole turns
}

TEST(ContextPolicyTest, LastTurnTokensCountsFromTheNewestUserNode) {
  std::vector<Node> path = Conversation(3);
  EXPECT_EQ(LastTurnTokens(path), 50u);
  path.push_back(N(NodeKind::kToolCall, 7));
  path.push_back(N(NodeKind::kToolResult, 9));
  EXPECT_EQ(LastTurnTokens(path), 66u);
  EXPECT_EQ(LastTurnTokens({N(NodeKind::kSystem, 100)}), 0u);  // a pinned node is no turn
  EXPECT_EQ(LastTurnTokens({}), 0u);
}

TEST(ContextPolicyTest, BadPoliciesAreRefusedNamingTheField) {
  EXPECT_EQ(ParseContextMode("sometimes").GetStatus().Code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(*ParseContextMode("auto"), ContextMode::kAuto);
  EXPECT_EQ(ContextModeName(ContextMode::kTruncate), "truncate");
  auto message = [](ContextPolicy p) { return ValidateContextPolicy(p, 2048).Message(); };
  ContextPolicy p;
  EXPECT_TRUE(ValidateContextPolicy(p, 2048).IsOk());  // budget 0: the default
  p.budget_tokens = -1;
  EXPECT_NE(message(p).find("budget_tokens"), std::string::npos);
  p.budget_tokens = 4096;
  EXPECT_NE(message(p).find("exceeds the model's context"), std::string::npos);
  p.budget_tokens = 32;
  EXPECT_NE(message(p).find("at least 64"), std::string::npos);
  p.budget_tokens = 1000;
  p.target_tokens = 1000;
  EXPECT_NE(message(p).find("target_tokens"), std::string::npos);
  p.target_tokens = -5;
  EXPECT_NE(message(p).find("target_tokens"), std::string::npos);
  p.target_tokens = 999;
  EXPECT_TRUE(ValidateContextPolicy(p, 2048).IsOk());
}

}  // namespace
}  // namespace llmsync::runs
