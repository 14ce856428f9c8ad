// The KvStorage protocol and the sequence API of KvManager: errors for bad requests, copy on write
// of shared blocks, what gets published (only rows known to be written), options validation.
#include <gtest/gtest.h>

#include "kv_test_util.h"

namespace llmsync::kvcache {
namespace {

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

class SequenceTest : public ::testing::Test {
 protected:
  testing::TinyModel m_ = MakeTinyModel();
  std::int64_t n_vocab_ = m_.model->Hparams().n_vocab;
  std::unique_ptr<KvManager> kv_ = OpenKv(TinyKvOptions(m_, "", 32, 16));
};

TEST_F(SequenceTest, BadRequestsAreErrors) {
  EXPECT_EQ(kv_->Acquire("t", Tokens{1, -2}).GetStatus().Code(), StatusCode::kInvalidArgument);
  auto a = kv_->Acquire("t", Tokens{1, 2, 3});
  ASSERT_TRUE(a.IsOk());
  const engine::SeqId seq = a->seq.Id();
  EXPECT_EQ(kv_->PrepareWrite(seq + 1, 0, 1).Code(), StatusCode::kNotFound);
  EXPECT_EQ(kv_->PrepareWrite(seq, 1, 1).Code(), StatusCode::kInvalidArgument) << "a gap";
  EXPECT_EQ(kv_->PrepareWrite(seq, 0, 4).Code(), StatusCode::kInvalidArgument) << "undeclared tokens";
  EXPECT_EQ(kv_->PrepareWrite(seq, -1, 1).Code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(kv_->Append(seq, Tokens{-1}).Code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(kv_->Truncate(seq, 4).Code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(kv_->Lease(LeaseRequest{"t", {}, 10, Id()}).GetStatus().Code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(kv_->Lease(LeaseRequest{"t", {1}, 0, Id()}).GetStatus().Code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(kv_->Lease(LeaseRequest{"t", {1}, 1e9, Id()}).GetStatus().Code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(kv_->ReleaseLease("t", 12345).Code(), StatusCode::kNotFound);
  a->seq.Release();
  EXPECT_EQ(kv_->Commit(seq).Code(), StatusCode::kNotFound) << "a released id is dead";
  EXPECT_EQ(kv_->Length(seq).GetStatus().Code(), StatusCode::kNotFound);
}

TEST_F(SequenceTest, EngineRejectsAForwardThatWouldWriteUndeclaredTokens) {
  auto a = kv_->Acquire("t", Tokens{1, 2});
  ASSERT_TRUE(a.IsOk());
  engine::Batch batch;
  batch.AddSequence(a->seq.Id(), 0, Tokens{1, 2, 3});
  std::vector<float> logits(static_cast<std::size_t>(n_vocab_));
  EXPECT_EQ(m_.engine->Forward(batch, *kv_, logits).Code(), StatusCode::kInvalidArgument);
}

TEST_F(SequenceTest, OptionsAreValidated) {
  KvOptions o = TinyKvOptions(m_, "", 32, 16);
  o.model_fingerprint = Id();
  EXPECT_FALSE(KvManager::Open(o).IsOk());
  o = TinyKvOptions(m_, "", 32, 16);
  o.ram_bytes = 10;
  EXPECT_FALSE(KvManager::Open(o).IsOk());
  o = TinyKvOptions(m_, "", 32, 0);
  EXPECT_FALSE(KvManager::Open(o).IsOk());
  o = TinyKvOptions(m_, "", 32, 16);
  o.lease_ram_fraction = 2;
  EXPECT_FALSE(KvManager::Open(o).IsOk());
  o = TinyKvOptions(m_, "", 32, 16);
  o.max_sequences = 1;
  auto kv = OpenKv(o);
  auto first = kv->Acquire("t", {});
  ASSERT_TRUE(first.IsOk());
  EXPECT_EQ(kv->Acquire("t", {}).GetStatus().Code(), StatusCode::kResourceExhausted);
  first->seq.Release();
  EXPECT_TRUE(kv->Acquire("t", {}).IsOk());
}

// Rows of a Forward that was never committed (it may have failed) are not shared, except those a
// later PrepareWrite vouches for.
TEST_F(SequenceTest, OnlyConfirmedRowsArePublished) {
  Tokens path = RandomTokens(40, n_vocab_, 1);
  {
    auto a = kv_->Acquire("t", path);
    ASSERT_TRUE(a.IsOk());
    engine::Batch batch;
    batch.AddSequence(a->seq.Id(), 0, path);
    std::vector<float> logits(static_cast<std::size_t>(n_vocab_));
    ASSERT_TRUE(m_.engine->Forward(batch, *kv_, logits).IsOk());
    // No Commit: released with nothing confirmed.
  }
  EXPECT_EQ(kv_->Acquire("t", path)->account.ram_tokens, 0);
  {
    auto a = kv_->Acquire("t", path);
    ASSERT_TRUE(a.IsOk());
    engine::Batch batch;
    batch.AddSequence(a->seq.Id(), 0, Tokens(path.begin(), path.begin() + 35));
    std::vector<float> logits(static_cast<std::size_t>(n_vocab_));
    ASSERT_TRUE(m_.engine->Forward(batch, *kv_, logits).IsOk());
    batch.Clear();
    batch.AddSequence(a->seq.Id(), 35, Tokens(path.begin() + 35, path.end()));
    ASSERT_TRUE(m_.engine->Forward(batch, *kv_, logits).IsOk());  // vouches for rows [0, 35)
  }
  auto again = kv_->Acquire("t", path);
  EXPECT_EQ(again->account.ram_tokens, 35);
}

// A branch that diverges inside a shared block copies it; the original branch is untouched.
TEST_F(SequenceTest, CopyOnWriteKeepsBothBranchesExact) {
  Tokens prefix = RandomTokens(21, n_vocab_, 2);  // diverge inside the second block
  Tokens a = Concat(prefix, RandomTokens(15, n_vocab_, 3));
  Tokens b = Concat(prefix, RandomTokens(15, n_vocab_, 4));
  std::vector<Logits> want_a = ReferenceLogits(m_, a);
  std::vector<Logits> want_b = ReferenceLogits(m_, b);
  auto sa = kv_->Acquire("t", a);
  ASSERT_TRUE(sa.IsOk());
  PrefillAll(m_, *kv_, sa->seq.Id());
  sa->seq.Release();

  // Both live at once: b shares a's first block and part of its second.
  auto sb = kv_->Acquire("t", b);
  auto sa2 = kv_->Acquire("t", a);
  ASSERT_TRUE(sb.IsOk() && sa2.IsOk());
  EXPECT_EQ(sb->account.ram_tokens, 21);
  EXPECT_EQ(sa2->account.ram_tokens, 36);
  const std::uint64_t cow_before = kv_->Stats().cow_copies;
  ExpectMatchesReference(PrefillAll(m_, *kv_, sb->seq.Id()), want_b);
  EXPECT_EQ(kv_->Stats().cow_copies, cow_before + 1);
  auto ra = RecomputeSequence(*m_.engine, *kv_, sa2->seq.Id());
  ASSERT_TRUE(ra.IsOk());
  EXPECT_TRUE(SameBits(ra->logits, want_a.back()));
  // Rewinding a into its shared first block and regrowing it along b's tokens is exact too.
  ASSERT_TRUE(kv_->Truncate(sa2->seq.Id(), 10).IsOk());
  ASSERT_TRUE(kv_->Append(sa2->seq.Id(), std::span<const std::int32_t>(b).subspan(10)).IsOk());
  ExpectMatchesReference(PrefillAll(m_, *kv_, sa2->seq.Id()), want_b);
}

// Share publishes a live sequence's partial last block: a sample started while the first one
// decodes reuses the whole prompt, and the first one's next write copies that block first.
TEST_F(SequenceTest, ShareServesThePartialPromptBlockWhileTheSequenceGoesOn) {
  Tokens prompt = RandomTokens(21, n_vocab_, 5);  // one full block of 16 and 5 rows of the next
  Tokens a = Concat(prompt, RandomTokens(6, n_vocab_, 6));
  Tokens b = Concat(prompt, RandomTokens(6, n_vocab_, 7));
  std::vector<Logits> want_a = ReferenceLogits(m_, a);
  std::vector<Logits> want_b = ReferenceLogits(m_, b);

  auto sa = kv_->Acquire("t", prompt);
  ASSERT_TRUE(sa.IsOk());
  ExpectMatchesReference(PrefillAll(m_, *kv_, sa->seq.Id()), want_a);
  EXPECT_EQ(kv_->Acquire("t", prompt)->account.ram_tokens, 16);  // before Share: full blocks only
  ASSERT_TRUE(kv_->Share(sa->seq.Id()).IsOk());
  auto sb = kv_->Acquire("t", b);
  ASSERT_TRUE(sb.IsOk());
  EXPECT_EQ(sb->account.ram_tokens, 21);

  // a goes on decoding into the shared block (a copy), b continues from the shared rows.
  const std::uint64_t cow_before = kv_->Stats().cow_copies;
  ASSERT_TRUE(kv_->Append(sa->seq.Id(), std::span<const std::int32_t>(a).subspan(21)).IsOk());
  ExpectMatchesReference(PrefillAll(m_, *kv_, sa->seq.Id()), want_a);
  EXPECT_EQ(kv_->Stats().cow_copies, cow_before + 1);
  ExpectMatchesReference(PrefillAll(m_, *kv_, sb->seq.Id()), want_b);
  EXPECT_EQ(kv_->Share(engine::SeqId{12345}).Code(), StatusCode::kNotFound);
}

TEST_F(SequenceTest, TenantQuotaRefusesWithAClearError) {
  kv_->SetTenantLeaseQuota("small", 2);
  auto ok = kv_->Lease(LeaseRequest{"small", RandomTokens(32, n_vocab_, 1), 60, Id()});
  ASSERT_TRUE(ok.IsOk());
  auto refused = kv_->Lease(LeaseRequest{"small", RandomTokens(1, n_vocab_, 2), 60, Id()});
  ASSERT_FALSE(refused.IsOk());
  EXPECT_EQ(refused.GetStatus().Code(), StatusCode::kResourceExhausted);
  EXPECT_NE(refused.GetStatus().Message().find("small"), std::string::npos);
  EXPECT_EQ(kv_->Stats().leases_refused, 1u);
  // Leases may pin at most half the RAM blocks (16 of 32) in total, whatever the tenant quotas.
  kv_->SetTenantLeaseQuota("big", 1000);
  EXPECT_EQ(kv_->Lease(LeaseRequest{"big", RandomTokens(16 * 15, n_vocab_, 3), 60, Id()}).GetStatus().Code(),
            StatusCode::kResourceExhausted);
  EXPECT_TRUE(kv_->Lease(LeaseRequest{"big", RandomTokens(16 * 14, n_vocab_, 3), 60, Id()}).IsOk());
  ASSERT_TRUE(kv_->ReleaseLease("small", ok->id).IsOk());
  EXPECT_EQ(kv_->Stats().leased_blocks, 14);
}

}  // namespace
}  // namespace llmsync::kvcache
