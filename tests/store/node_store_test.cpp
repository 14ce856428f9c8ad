// Node operations of the store (SQLite and Redis): appends (chains, branches, duplicates, compare-and-swap,
// idempotency), heads, paths, changes, branch tips, purge and restore, and bulk loads.
#include <gtest/gtest.h>

#include "store_test_util.h"

namespace llmsync::store {
namespace {

using llmsync::testing::TestDir;
using testing::Chain;
using testing::NamedId;
using testing::NewNode;
using testing::NewSession;
using testing::OpenOrDie;

class NodeStoreTest : public testing::StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    ASSERT_TRUE(store_->CreateSession(s_).IsOk());
  }

  // Every node of the session, by seq.
  std::vector<NodeRecord> All() {
    auto c = store_->ChangesSince(s_.tenant, s_.id, 0, 100000);
    EXPECT_TRUE(c.IsOk()) << c.GetStatus().ToString();
    return c.IsOk() ? c->nodes : std::vector<NodeRecord>{};
  }

  SessionRecord s_ = NewSession("acme", "main");
};

TEST_P(NodeStoreTest, AppendAssignsSeqsDepthsAndMovesTheHead) {
  auto out = store_->Append(Chain(s_, Id(), {"sys", "hi", "hello"}), nullptr);
  ASSERT_TRUE(out.IsOk()) << out.GetStatus().ToString();
  EXPECT_EQ(out->seqs, (std::vector<std::uint64_t>{1, 2, 3}));
  EXPECT_EQ(out->created, (std::vector<bool>{true, true, true}));
  EXPECT_EQ(out->head, out->ids[2]);
  EXPECT_EQ(out->head_seq, 3u);
  EXPECT_FALSE(out->replayed);

  auto nodes = All();
  ASSERT_EQ(nodes.size(), 3u);
  EXPECT_TRUE(nodes[0].parent.IsZero());
  EXPECT_EQ(nodes[1].parent, nodes[0].id);
  EXPECT_EQ(nodes[2].depth, 3u);
  EXPECT_EQ(nodes[2].text, "hello");
  EXPECT_EQ(nodes[2].tokens, (TokenIds{5, 7, 42}));
  EXPECT_EQ(nodes[2].token_count, 3u);
  auto session = store_->GetSession(s_.tenant, s_.id);
  EXPECT_EQ(session->head, out->ids[2]);
  EXPECT_EQ(session->last_seq, 3u);
}

TEST_P(NodeStoreTest, AppendingUnderAnInnerNodeBranches) {
  auto first = store_->Append(Chain(s_, Id(), {"sys", "q1", "a1"}), nullptr);
  ASSERT_TRUE(first.IsOk());
  auto branch = store_->Append(Chain(s_, first->ids[0], {"q2"}), nullptr);
  ASSERT_TRUE(branch.IsOk());
  EXPECT_EQ(branch->seqs, (std::vector<std::uint64_t>{4}));
  EXPECT_EQ(branch->head, branch->ids[0]);
  auto tips = store_->ListBranchTips(s_.tenant, s_.id, 10);
  ASSERT_TRUE(tips.IsOk());
  ASSERT_EQ(tips->size(), 2u);
  EXPECT_EQ((*tips)[0].id, first->ids[2]);
  EXPECT_EQ((*tips)[1].id, branch->ids[0]);
  EXPECT_EQ((*tips)[1].depth, 2u);
  auto path = store_->GetPath(s_.tenant, s_.id, branch->ids[0]);
  ASSERT_TRUE(path.IsOk());
  ASSERT_EQ(path->size(), 2u);
  EXPECT_EQ((*path)[0].text, "sys");
  EXPECT_EQ((*path)[1].text, "q2");
}

TEST_P(NodeStoreTest, ReappendingExistingNodesCreatesNothing) {
  auto first = store_->Append(Chain(s_, Id(), {"a", "b"}), nullptr);
  ASSERT_TRUE(first.IsOk());
  ASSERT_TRUE(store_->SetHead(s_.tenant, s_.id, first->ids[0], std::nullopt, nullptr).IsOk());  // seq 3
  auto again = store_->Append(Chain(s_, Id(), {"a", "b", "c"}), nullptr);
  ASSERT_TRUE(again.IsOk());
  EXPECT_EQ(again->created, (std::vector<bool>{false, false, true}));
  EXPECT_EQ(again->seqs, (std::vector<std::uint64_t>{1, 2, 4}));
  EXPECT_EQ(again->head_seq, 4u);
  // Re-appending only existing nodes still moves the head, at a fresh seq.
  auto back = store_->Append(Chain(s_, Id(), {"a"}), nullptr);
  ASSERT_TRUE(back.IsOk());
  EXPECT_EQ(back->created, (std::vector<bool>{false}));
  EXPECT_EQ(back->head, first->ids[0]);
  EXPECT_EQ(back->head_seq, 5u);
  EXPECT_EQ(All().size(), 3u);
}

TEST_P(NodeStoreTest, CompareAndSwapReportsTheCurrentHead) {
  auto first = store_->Append(Chain(s_, Id(), {"a"}), nullptr);
  ASSERT_TRUE(first.IsOk());
  AppendBatch ok = Chain(s_, first->ids[0], {"b"});
  ok.expect_head = first->ids[0];
  auto second = store_->Append(ok, nullptr);
  ASSERT_TRUE(second.IsOk());

  AppendBatch stale = Chain(s_, first->ids[0], {"c"});
  stale.expect_head = first->ids[0];
  Id current;
  auto conflict = store_->Append(stale, &current);
  ASSERT_EQ(conflict.GetStatus().Code(), StatusCode::kConflict);
  EXPECT_EQ(current, second->ids[0]);
  EXPECT_NE(conflict.GetStatus().Message().find(second->ids[0].ToHex()), std::string::npos);
  EXPECT_EQ(All().size(), 2u);

  // An empty session's head is the zero id.
  SessionRecord empty = NewSession("acme", "empty");
  ASSERT_TRUE(store_->CreateSession(empty).IsOk());
  AppendBatch into_empty = Chain(empty, Id(), {"x"});
  into_empty.expect_head = Id();
  EXPECT_TRUE(store_->Append(into_empty, nullptr).IsOk());
}

TEST_P(NodeStoreTest, IdempotencyKeyReplaysTheOriginalOutcome) {
  AppendBatch b = Chain(s_, Id(), {"a", "b"});
  b.idempotency_key = "req-1";
  b.request_digest = NamedId("digest-1");
  b.expect_head = Id();
  auto first = store_->Append(b, nullptr);
  ASSERT_TRUE(first.IsOk());
  ASSERT_TRUE(store_->Append(Chain(s_, first->ids[1], {"c"}), nullptr).IsOk());

  // The retry's expect_head is stale by now, but the key wins: the original result comes back.
  auto retry = store_->Append(b, nullptr);
  ASSERT_TRUE(retry.IsOk()) << retry.GetStatus().ToString();
  EXPECT_TRUE(retry->replayed);
  EXPECT_EQ(retry->ids, first->ids);
  EXPECT_EQ(retry->seqs, first->seqs);
  EXPECT_EQ(retry->created, first->created);
  EXPECT_EQ(retry->head, first->head);
  EXPECT_EQ(All().size(), 3u);

  AppendBatch other = Chain(s_, Id(), {"zzz"});
  other.idempotency_key = "req-1";
  other.request_digest = NamedId("digest-2");
  auto reused = store_->Append(other, nullptr);
  EXPECT_EQ(reused.GetStatus().Code(), StatusCode::kConflict);
  EXPECT_EQ(All().size(), 3u);

  // Keys are per session.
  SessionRecord s2 = NewSession("acme", "second");
  ASSERT_TRUE(store_->CreateSession(s2).IsOk());
  AppendBatch elsewhere = Chain(s2, Id(), {"a"});
  elsewhere.idempotency_key = "req-1";
  EXPECT_FALSE(store_->Append(elsewhere, nullptr)->replayed);

  EXPECT_EQ(*store_->PruneIdempotency(std::numeric_limits<std::int64_t>::max()), 2u);
  // Once pruned, the key is forgotten: the same request is evaluated afresh (and its stale
  // expect_head now conflicts).
  auto after_prune = store_->Append(b, nullptr);
  EXPECT_EQ(after_prune.GetStatus().Code(), StatusCode::kConflict);
}

TEST_P(NodeStoreTest, BadAppendsChangeNothing) {
  ASSERT_TRUE(store_->Append(Chain(s_, Id(), {"a"}), nullptr).IsOk());
  auto before = All();

  auto unknown_parent = store_->Append(Chain(s_, NamedId("nowhere"), {"x"}), nullptr);
  EXPECT_EQ(unknown_parent.GetStatus().Code(), StatusCode::kNotFound);
  AppendBatch wrong_tenant = Chain(s_, Id(), {"x"});
  wrong_tenant.tenant = "evil";
  EXPECT_EQ(store_->Append(wrong_tenant, nullptr).GetStatus().Code(), StatusCode::kNotFound);
  AppendBatch broken = Chain(s_, Id(), {"x", "y"});
  broken.nodes[1].parent = NamedId("elsewhere");
  EXPECT_EQ(store_->Append(broken, nullptr).GetStatus().Code(), StatusCode::kInvalidArgument);
  AppendBatch empty = Chain(s_, Id(), {});
  EXPECT_EQ(store_->Append(empty, nullptr).GetStatus().Code(), StatusCode::kInvalidArgument);

  auto after = All();
  ASSERT_EQ(after.size(), before.size());
  EXPECT_EQ(store_->GetSession(s_.tenant, s_.id)->last_seq, 1u);
}

TEST_P(NodeStoreTest, SetHeadRewindsWithoutDeleting) {
  auto out = store_->Append(Chain(s_, Id(), {"a", "b"}), nullptr);
  ASSERT_TRUE(out.IsOk());
  auto rewound = store_->SetHead(s_.tenant, s_.id, out->ids[0], out->ids[1], nullptr);
  ASSERT_TRUE(rewound.IsOk());
  EXPECT_EQ(rewound->head, out->ids[0]);
  EXPECT_EQ(rewound->head_seq, 3u);
  EXPECT_EQ(rewound->last_seq, 3u);
  EXPECT_EQ(All().size(), 2u);

  Id current;
  auto stale = store_->SetHead(s_.tenant, s_.id, out->ids[1], out->ids[1], &current);
  EXPECT_EQ(stale.GetStatus().Code(), StatusCode::kConflict);
  EXPECT_EQ(current, out->ids[0]);
  EXPECT_EQ(store_->SetHead(s_.tenant, s_.id, NamedId("nope"), std::nullopt, nullptr).GetStatus().Code(),
            StatusCode::kNotFound);
  auto cleared = store_->SetHead(s_.tenant, s_.id, Id(), std::nullopt, nullptr);
  ASSERT_TRUE(cleared.IsOk());
  EXPECT_TRUE(cleared->head.IsZero());
  // Unchanged head: no new seq.
  EXPECT_EQ(store_->SetHead(s_.tenant, s_.id, Id(), std::nullopt, nullptr)->head_seq, cleared->head_seq);
}

TEST_P(NodeStoreTest, ChangesSinceIsPagedBySeq) {
  auto out = store_->Append(Chain(s_, Id(), {"a", "b", "c", "d"}), nullptr);
  ASSERT_TRUE(out.IsOk());
  auto page = store_->ChangesSince(s_.tenant, s_.id, 1, 2);
  ASSERT_TRUE(page.IsOk());
  ASSERT_EQ(page->nodes.size(), 2u);
  EXPECT_EQ(page->nodes[0].seq, 2u);
  EXPECT_EQ(page->nodes[1].seq, 3u);
  EXPECT_TRUE(page->more);
  EXPECT_EQ(page->session.head, out->ids[3]);
  auto rest = store_->ChangesSince(s_.tenant, s_.id, 3, 2);
  ASSERT_EQ(rest->nodes.size(), 1u);
  EXPECT_FALSE(rest->more);
  EXPECT_TRUE(store_->ChangesSince(s_.tenant, s_.id, 4, 2)->nodes.empty());
  EXPECT_EQ(store_->ChangesSince("evil", s_.id, 0, 10).GetStatus().Code(), StatusCode::kNotFound);
}

TEST_P(NodeStoreTest, PathIsRootFirstAndTenantScoped) {
  auto out = store_->Append(Chain(s_, Id(), {"a", "b", "c"}), nullptr);
  ASSERT_TRUE(out.IsOk());
  auto path = store_->GetPath(s_.tenant, s_.id, out->ids[2]);
  ASSERT_TRUE(path.IsOk());
  ASSERT_EQ(path->size(), 3u);
  EXPECT_EQ((*path)[0].id, out->ids[0]);
  EXPECT_EQ((*path)[2].id, out->ids[2]);
  EXPECT_EQ(store_->GetPath("evil", s_.id, out->ids[2]).GetStatus().Code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->GetPath(s_.tenant, s_.id, NamedId("x")).GetStatus().Code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->GetNode(s_.tenant, s_.id, out->ids[1])->text, "b");
}

TEST_P(NodeStoreTest, PurgeDropsSealedHiddenContentAndRestoreBringsItBack) {
  AppendBatch b = Chain(s_, Id(), {"visible"});
  NodeRecord sealed = NewNode(b.nodes[0].id, "secret", /*hidden=*/true);
  sealed.sealed = "blob-bytes";
  sealed.created_at_ms = 100;
  NodeRecord unsealed = NewNode(sealed.id, "kept", /*hidden=*/true);
  unsealed.created_at_ms = 100;
  b.nodes.push_back(sealed);
  b.nodes.push_back(unsealed);
  ASSERT_TRUE(store_->Append(b, nullptr).IsOk());

  EXPECT_EQ(*store_->PurgeHidden(std::nullopt, 100), 0u);  // not older than the cutoff
  EXPECT_EQ(*store_->PurgeHidden(std::string("other-tenant"), 101), 0u);
  EXPECT_EQ(*store_->PurgeHidden(std::string("acme"), 101), 1u);
  auto purged = store_->GetNode(s_.tenant, s_.id, sealed.id);
  ASSERT_TRUE(purged.IsOk());
  EXPECT_TRUE(purged->purged);
  EXPECT_TRUE(purged->text.empty());
  EXPECT_TRUE(purged->tokens.empty());
  EXPECT_TRUE(purged->sealed.empty());
  EXPECT_EQ(purged->token_count, 3u);
  EXPECT_EQ(store_->GetNode(s_.tenant, s_.id, unsealed.id)->text, "kept");  // no blob: never purged

  ASSERT_TRUE(
      store_->RestoreContent(s_.tenant, s_.id, sealed.id, "secret", sealed.tokens, "blob-bytes").IsOk());
  auto back = store_->GetNode(s_.tenant, s_.id, sealed.id);
  EXPECT_FALSE(back->purged);
  EXPECT_EQ(back->text, "secret");
  EXPECT_EQ(back->tokens, sealed.tokens);
  EXPECT_EQ(back->sealed, "blob-bytes");
  EXPECT_EQ(store_->RestoreContent(s_.tenant, s_.id, NamedId("x"), "", {}, "").Code(), StatusCode::kNotFound);
}

TEST_P(NodeStoreTest, LoadSessionIsAllOrNothing) {
  SessionRecord s = NewSession("acme", "imported");
  NodeRecord a = NewNode(Id(), "a");
  a.seq = 1;
  a.depth = 1;
  NodeRecord b = NewNode(a.id, "b");
  b.seq = 2;
  b.depth = 2;
  s.head = b.id;
  s.head_seq = 2;
  s.last_seq = 2;
  // Child before parent: rejected, and no session appears.
  EXPECT_EQ(store_->LoadSession(s, {b, a}).Code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->GetSession("acme", s.id).GetStatus().Code(), StatusCode::kNotFound);
  ASSERT_TRUE(store_->LoadSession(s, {a, b}).IsOk());
  auto loaded = store_->ChangesSince("acme", s.id, 0, 10);
  ASSERT_EQ(loaded->nodes.size(), 2u);
  EXPECT_EQ(loaded->session.head, b.id);
  EXPECT_EQ(store_->LoadSession(s, {a, b}).Code(), StatusCode::kAlreadyExists);
}

TEST_P(NodeStoreTest, NodesSurviveReopen) {
  auto out = store_->Append(Chain(s_, Id(), {"a", "b"}), nullptr);
  ASSERT_TRUE(out.IsOk());
  Reopen();
  auto path = store_->GetPath(s_.tenant, s_.id, out->ids[1]);
  ASSERT_TRUE(path.IsOk());
  EXPECT_EQ((*path)[1].text, "b");
  EXPECT_EQ(store_->GetSession(s_.tenant, s_.id)->head, out->ids[1]);
}

LLMSYNC_STORE_BACKENDS(NodeStoreTest);

}  // namespace
}  // namespace llmsync::store
