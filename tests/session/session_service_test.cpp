// The session operations end to end over the SQLite store: appends and ids, branches, heads,
// compare-and-swap, idempotency, paths, diffs.
#include "session/session_service.h"

#include <gtest/gtest.h>

#include "session_test_util.h"

namespace llmsync::session {
namespace {

using testing::Assistant;
using testing::Draft;
using testing::SessionFixture;
using testing::User;

class SessionServiceTest : public SessionFixture {};

TEST_F(SessionServiceTest, AppendComputesChainedIdsAndMovesTheHead) {
  SessionInfo s = NewSession();
  EXPECT_EQ(s.model, testing::TestModel());
  EXPECT_EQ(s.created_at_ms, 1'700'000'000'000);
  AppendResult r = AppendOrDie(s, Id(), {Draft(NodeKind::kSystem, "be brief"), User("hi")});
  ASSERT_EQ(r.ids.size(), 2u);
  Id first = NodeIdFor("acme", Id(), Draft(NodeKind::kSystem, "be brief"));
  EXPECT_EQ(r.ids[0], first);
  EXPECT_EQ(r.ids[1], NodeIdFor("acme", first, User("hi")));
  EXPECT_EQ(r.head, r.ids[1]);
  EXPECT_EQ(r.seqs, (std::vector<std::uint64_t>{1, 2}));

  auto node = service_->GetNode("acme", s.id, r.ids[1]);
  ASSERT_TRUE(node.IsOk());
  EXPECT_EQ(node->content, User("hi"));
  EXPECT_EQ(node->parent, first);
  EXPECT_EQ(node->depth, 2u);
  EXPECT_EQ(node->token_count, 2u);
  EXPECT_EQ(node->created_at_ms, 1'700'000'000'000);
}

TEST_F(SessionServiceTest, EqualConversationsInDifferentTenantsGetDifferentIds) {
  SessionInfo a = NewSession("acme");
  SessionInfo b = NewSession("globex");
  AppendResult ra = AppendOrDie(a, Id(), {User("same")});
  AppendResult rb = AppendOrDie(b, Id(), {User("same")});
  EXPECT_NE(ra.ids[0], rb.ids[0]);
  // Within a tenant the same path is the same id, even across sessions.
  SessionInfo a2 = NewSession("acme");
  EXPECT_EQ(AppendOrDie(a2, Id(), {User("same")}).ids[0], ra.ids[0]);
}

TEST_F(SessionServiceTest, RegenerateBranchesAndSetHeadSwitchesBetweenBranches) {
  SessionInfo s = NewSession();
  AppendResult q = AppendOrDie(s, Id(), {User("question")});
  AppendResult a1 = AppendOrDie(s, q.ids[0], {Assistant("answer one")});
  AppendResult a2 = AppendOrDie(s, q.ids[0], {Assistant("answer two")});
  EXPECT_EQ(a2.head, a2.ids[0]);
  auto branches = service_->ListBranches("acme", s.id, 10);
  ASSERT_TRUE(branches.IsOk());
  EXPECT_EQ(branches->head, a2.ids[0]);
  ASSERT_EQ(branches->tips.size(), 2u);
  EXPECT_EQ(branches->tips[0].id, a1.ids[0]);
  EXPECT_EQ(branches->tips[1].id, a2.ids[0]);

  auto back = service_->SetHead("acme", s.id, a1.ids[0]);
  ASSERT_TRUE(back.IsOk());
  EXPECT_EQ(back->head, a1.ids[0]);
  auto path = service_->Path("acme", s.id, back->head);
  ASSERT_TRUE(path.IsOk());
  ASSERT_EQ(path->size(), 2u);
  EXPECT_EQ((*path)[1].content.text, "answer one");
  // Rewinding deleted nothing.
  EXPECT_EQ(service_->DiffSince("acme", s.id, 0, 100)->nodes.size(), 3u);

  // Appending without moving the head adds a side branch.
  AppendRequest side = Request(s, q.ids[0], {Assistant("answer three")});
  side.move_head = false;
  auto r = service_->Append(side);
  ASSERT_TRUE(r.IsOk());
  EXPECT_EQ(r->head, a1.ids[0]);
}

TEST_F(SessionServiceTest, CompareAndSwapConflictCarriesTheWinningHead) {
  SessionInfo s = NewSession();
  AppendResult first = AppendOrDie(s, Id(), {User("a")});
  AppendRequest mine = Request(s, first.ids[0], {Assistant("mine")});
  mine.expect_head = first.head;
  AppendRequest theirs = Request(s, first.ids[0], {Assistant("theirs")});
  theirs.expect_head = first.head;
  auto won = service_->Append(theirs);
  ASSERT_TRUE(won.IsOk());
  Id current;
  auto lost = service_->Append(mine, &current);
  ASSERT_EQ(lost.GetStatus().Code(), StatusCode::kConflict);
  EXPECT_EQ(current, won->head);
  // Retrying against the reported head succeeds.
  mine.parent = current;
  mine.expect_head = current;
  EXPECT_TRUE(service_->Append(mine).IsOk());
}

TEST_F(SessionServiceTest, IdempotentRetryReturnsTheOriginalResultAndNeverDuplicates) {
  SessionInfo s = NewSession();
  AppendRequest req = Request(s, Id(), {User("pay me once")});
  req.idempotency_key = "k-1";
  auto first = service_->Append(req);
  ASSERT_TRUE(first.IsOk());
  env_.AdvanceMicros(5'000'000);
  auto retry = service_->Append(req);
  ASSERT_TRUE(retry.IsOk());
  EXPECT_TRUE(retry->replayed);
  EXPECT_EQ(retry->ids, first->ids);
  EXPECT_EQ(retry->seqs, first->seqs);
  EXPECT_EQ(service_->DiffSince("acme", s.id, 0, 100)->nodes.size(), 1u);
  EXPECT_EQ(service_->GetSession("acme", s.id)->last_seq, 1u);

  AppendRequest changed = req;
  changed.nodes = {User("pay me twice")};
  EXPECT_EQ(service_->Append(changed).GetStatus().Code(), StatusCode::kConflict);
}

TEST_F(SessionServiceTest, DiffSinceReturnsExactlyWhatAClientIsMissing) {
  SessionInfo s = NewSession();
  AppendResult r1 = AppendOrDie(s, Id(), {User("1"), Assistant("2")});
  auto seen = service_->DiffSince("acme", s.id, 0, 100);
  ASSERT_TRUE(seen.IsOk());
  std::uint64_t cursor = seen->session.last_seq;
  EXPECT_EQ(cursor, 2u);

  AppendResult r2 = AppendOrDie(s, r1.ids[1], {User("3")});
  auto diff = service_->DiffSince("acme", s.id, cursor, 100);
  ASSERT_TRUE(diff.IsOk());
  ASSERT_EQ(diff->nodes.size(), 1u);
  EXPECT_EQ(diff->nodes[0].id, r2.ids[0]);
  EXPECT_EQ(diff->session.head, r2.ids[0]);
  EXPECT_GT(diff->session.head_seq, cursor);
  cursor = diff->session.last_seq;

  // A head move alone shows up as a newer head_seq with no nodes.
  ASSERT_TRUE(service_->SetHead("acme", s.id, r1.ids[0]).IsOk());
  diff = service_->DiffSince("acme", s.id, cursor, 100);
  EXPECT_TRUE(diff->nodes.empty());
  EXPECT_EQ(diff->session.head, r1.ids[0]);
  EXPECT_GT(diff->session.head_seq, cursor);
}

TEST_F(SessionServiceTest, ListSessionsIsPerTenant) {
  NewSession("acme");
  NewSession("acme");
  NewSession("globex");
  EXPECT_EQ(service_->ListSessions("acme", 10)->size(), 2u);
  EXPECT_EQ(service_->ListSessions("globex", 10)->size(), 1u);
}

TEST_F(SessionServiceTest, EverythingSurvivesReopen) {
  SessionInfo s = NewSession();
  AppendResult r = AppendOrDie(s, Id(), {User("durable"), Assistant("yes")});
  Reopen();
  auto path = service_->Path("acme", s.id, r.head);
  ASSERT_TRUE(path.IsOk());
  ASSERT_EQ(path->size(), 2u);
  EXPECT_EQ((*path)[0].content, User("durable"));
  EXPECT_EQ(service_->GetSession("acme", s.id)->head, r.head);
}

}  // namespace
}  // namespace llmsync::session
