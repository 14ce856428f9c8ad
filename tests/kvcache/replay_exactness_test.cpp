// Replay exactness (issue 6): for random token paths, the logits after (a) a continuous decode,
// (b) a restore from a disk snapshot, (c) a recompute from the log and (d) reuse through another
// branch's shared prefix are bit-identical. Compared with memcmp, never with a tolerance.
#include <gtest/gtest.h>

#include "kv_test_util.h"

namespace llmsync::kvcache {
namespace {

using ::llmsync::testing::TestDir;
using testing::Concat;
using testing::ExpectMatchesReference;
using testing::Logits;
using testing::MakeTinyModel;
using testing::OpenKv;
using testing::PrefillAll;
using testing::RandomTokens;
using testing::ReferenceLogits;
using testing::SameBits;
using testing::TinyKvOptions;
using testing::Tokens;

class ReplayExactnessTest : public ::testing::TestWithParam<engine::KvDtype> {
 protected:
  testing::TinyModel m_ = MakeTinyModel();
  std::int64_t n_vocab_ = m_.model->Hparams().n_vocab;
};

// (a) decoding one token at a time through the manager equals the flat-store reference.
TEST_P(ReplayExactnessTest, ContinuousDecodeMatchesReference) {
  auto kv = OpenKv(TinyKvOptions(m_, "", 64, 16, GetParam()));
  Tokens path = RandomTokens(53, n_vocab_, 1);
  std::vector<Logits> want = ReferenceLogits(m_, path, GetParam());
  auto acquired = kv->Acquire("t", {});
  ASSERT_TRUE(acquired.IsOk());
  engine::SeqId seq = acquired->seq.Id();
  for (std::size_t p = 0; p < path.size(); ++p) {
    ASSERT_TRUE(kv->Append(seq, std::span<const std::int32_t>(&path[p], 1)).IsOk());
    auto r = RecomputeSequence(*m_.engine, *kv, seq);
    ASSERT_TRUE(r.IsOk()) << r.GetStatus().ToString();
    EXPECT_EQ(r->computed_tokens, 1);
    EXPECT_TRUE(SameBits(r->logits, want[p])) << "position " << p;
  }
}

// (b), (c), (d) over random paths, branch points and block sizes.
TEST_P(ReplayExactnessTest, RestoreRecomputeAndBranchReuseAreBitIdentical) {
  for (std::uint32_t trial = 0; trial < 6; ++trial) {
    SCOPED_TRACE("trial " + std::to_string(trial));
    TestDir dir;
    const std::int64_t block = trial % 2 == 0 ? 16 : 32;
    const std::size_t prefix_len = 5 + (trial * 13) % 60;  // often not on a block boundary
    Tokens prefix = RandomTokens(prefix_len, n_vocab_, 100 + trial);
    Tokens a = Concat(prefix, RandomTokens(7 + trial * 5, n_vocab_, 200 + trial));
    Tokens b = Concat(prefix, RandomTokens(9 + trial * 3, n_vocab_, 300 + trial));
    std::vector<Logits> want_a = ReferenceLogits(m_, a, GetParam());
    std::vector<Logits> want_b = ReferenceLogits(m_, b, GetParam());

    auto kv = OpenKv(TinyKvOptions(m_, dir.Path(), 64, block, GetParam()));
    // (c) recompute from the log: nothing cached.
    {
      auto acquired = kv->Acquire("tenant", a);
      ASSERT_TRUE(acquired.IsOk());
      EXPECT_EQ(acquired->account.recompute_tokens, static_cast<std::int64_t>(a.size()));
      EXPECT_EQ(acquired->account.reason, DivergeReason::kNotCached);
      ExpectMatchesReference(PrefillAll(m_, *kv, acquired->seq.Id()), want_a);
    }
    // (d) a branch sharing the prefix: the prefix comes from RAM, the rest matches the reference.
    {
      auto acquired = kv->Acquire("tenant", b);
      ASSERT_TRUE(acquired.IsOk());
      EXPECT_GE(acquired->account.ram_tokens, static_cast<std::int64_t>(prefix_len));
      EXPECT_EQ(acquired->account.diverged_at, acquired->account.ram_tokens);
      EXPECT_EQ(acquired->account.reason, DivergeReason::kTokenMismatch);
      ExpectMatchesReference(PrefillAll(m_, *kv, acquired->seq.Id()), want_b);
      auto again = RecomputeSequence(*m_.engine, *kv, acquired->seq.Id());
      ASSERT_TRUE(again.IsOk());
      EXPECT_TRUE(SameBits(again->logits, want_b.back()));
    }
    // A RAM hit of the whole path still yields the right last logits (the last token is rerun).
    {
      auto acquired = kv->Acquire("tenant", a);
      ASSERT_TRUE(acquired.IsOk());
      EXPECT_EQ(acquired->account.ram_tokens, static_cast<std::int64_t>(a.size()));
      EXPECT_EQ(acquired->account.reason, DivergeReason::kNone);
      auto r = RecomputeSequence(*m_.engine, *kv, acquired->seq.Id());
      ASSERT_TRUE(r.IsOk());
      EXPECT_EQ(r->computed_tokens, 1);
      EXPECT_TRUE(SameBits(r->logits, want_a.back()));
    }
    ASSERT_TRUE(kv->FlushToDisk().IsOk());
    kv.reset();

    // (b) a restarted manager restores from disk, then continues the path exactly.
    auto restarted = OpenKv(TinyKvOptions(m_, dir.Path(), 64, block, GetParam()));
    Tokens longer = Concat(a, RandomTokens(11, n_vocab_, 400 + trial));
    std::vector<Logits> want_longer = ReferenceLogits(m_, longer, GetParam());
    auto acquired = restarted->Acquire("tenant", longer);
    ASSERT_TRUE(acquired.IsOk());
    EXPECT_EQ(acquired->account.disk_tokens, static_cast<std::int64_t>(a.size()));
    EXPECT_EQ(acquired->account.ram_tokens, 0);
    EXPECT_EQ(acquired->account.diverged_at, static_cast<std::int64_t>(a.size()));
    ExpectMatchesReference(PrefillAll(m_, *restarted, acquired->seq.Id()), want_longer);
    EXPECT_GT(restarted->Stats().restores, 0u);
    EXPECT_EQ(restarted->Stats().snapshots_rejected, 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, ReplayExactnessTest,
                         ::testing::Values(engine::KvDtype::kF16, engine::KvDtype::kF32),
                         [](const auto& info) { return std::string(engine::KvDtypeName(info.param)); });

// Two engine threads read the paged store concurrently; results do not change.
TEST(ReplayExactness, MultiThreadedEngineOverPagedBlocks) {
  testing::TinyModel m1 = MakeTinyModel();
  testing::TinyModel m2 = MakeTinyModel(testing::TinyModelOptions(), 2);
  Tokens path = RandomTokens(90, m1.model->Hparams().n_vocab, 9);
  std::vector<Logits> want = ReferenceLogits(m1, path);
  auto kv = OpenKv(TinyKvOptions(m2, "", 16, 16));
  auto acquired = kv->Acquire("t", path);
  ASSERT_TRUE(acquired.IsOk());
  ExpectMatchesReference(PrefillAll(m2, *kv, acquired->seq.Id()), want);
}

// The account lists spans in order and says why the prefix ended.
TEST(ReplayExactness, AccountSpansAndTenantIsolation) {
  testing::TinyModel m = MakeTinyModel();
  TestDir dir;
  auto kv = OpenKv(TinyKvOptions(m, dir.Path(), 64, 16));
  Tokens path = RandomTokens(40, m.model->Hparams().n_vocab, 5);
  {
    auto acquired = kv->Acquire("alice", path);
    ASSERT_TRUE(acquired.IsOk());
    PrefillAll(m, *kv, acquired->seq.Id());
  }
  auto same_tenant = kv->Acquire("alice", Concat(path, {1, 2, 3}));
  ASSERT_TRUE(same_tenant.IsOk());
  const KvAccount& acc = same_tenant->account;
  EXPECT_EQ(acc.prompt_tokens, 43);
  EXPECT_EQ(acc.ram_tokens, 40);
  EXPECT_EQ(acc.recompute_tokens, 3);
  EXPECT_EQ(acc.diverged_at, 40);
  ASSERT_EQ(acc.spans.size(), 2u);
  EXPECT_EQ(acc.spans[0].source, TokenSource::kRam);
  EXPECT_EQ(acc.spans[0].end, 40);
  EXPECT_EQ(acc.spans[1].source, TokenSource::kRecompute);
  EXPECT_EQ(acc.spans[1].begin, 40);
  EXPECT_EQ(acc.spans[1].end, 43);

  // Another tenant never sees alice's cache, even for identical tokens.
  auto other = kv->Acquire("bob", path);
  ASSERT_TRUE(other.IsOk());
  EXPECT_EQ(other->account.ram_tokens, 0);
  EXPECT_EQ(other->account.reason, DivergeReason::kNotCached);
}

}  // namespace
}  // namespace llmsync::kvcache
