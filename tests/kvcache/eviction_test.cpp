// Eviction under a tiny RAM budget with more sessions than fit: results stay exact, leased paths
// stay resident, spills and restores are counted; the disk budget deletes the oldest snapshots;
// leases expire on the manual clock; an exhausted pool is an error, never a corruption.
#include <gtest/gtest.h>

#include <filesystem>

#include "base/fault_injection_env.h"
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

std::size_t CountFiles(const std::string& dir, const std::string& suffix) {
  std::size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().string().ends_with(suffix)) ++n;
  }
  return n;
}

class EvictionTest : public ::testing::Test {
 protected:
  // Session s: a shared system prompt, then its own turns of 20 tokens.
  Tokens SessionPath(int session, int turns) const {
    Tokens path = system_;
    for (int t = 0; t < turns; ++t) {
      path = Concat(path, RandomTokens(20, n_vocab_, static_cast<std::uint32_t>(1000 + session * 50 + t)));
    }
    return path;
  }

  // Runs one turn of a session: acquire, prefill the rest, check the last logits, release.
  KvAccount RunTurn(KvManager& kv, int session, int turns) {
    Tokens path = SessionPath(session, turns);
    auto acquired = kv.Acquire("tenant", path);
    EXPECT_TRUE(acquired.IsOk()) << acquired.GetStatus().ToString();
    if (!acquired.IsOk()) return {};
    auto r = RecomputeSequence(*m_.engine, kv, acquired->seq.Id());
    EXPECT_TRUE(r.IsOk()) << r.GetStatus().ToString();
    if (r.IsOk()) {
      std::vector<Logits> want = ReferenceLogits(m_, path);
      EXPECT_TRUE(SameBits(r->logits, want.back())) << "session " << session << " turn " << turns;
    }
    return acquired->account;
  }

  testing::TinyModel m_ = MakeTinyModel();
  std::int64_t n_vocab_ = m_.model->Hparams().n_vocab;
  Tokens system_ = RandomTokens(24, n_vocab_, 77);
};

TEST_F(EvictionTest, ManySessionsTinyBudgetStayExactAndSpill) {
  TestDir dir;
  auto kv = OpenKv(TinyKvOptions(m_, dir.Path(), 14, 16));  // about 2 sessions' worth of blocks
  constexpr int kSessions = 8;
  std::uint64_t disk_tokens = 0;
  for (int turn = 1; turn <= 3; ++turn) {
    for (int s = 0; s < kSessions; ++s)
      disk_tokens += static_cast<std::uint64_t>(RunTurn(*kv, s, turn).disk_tokens);
  }
  KvStats st = kv->Stats();
  EXPECT_GT(st.spills, 0u);
  EXPECT_GT(st.ram_evictions, 0u);
  EXPECT_GT(st.restores, 0u);
  EXPECT_GT(disk_tokens, 0u);
  EXPECT_EQ(st.tokens_disk, disk_tokens);
  EXPECT_GT(st.tokens_ram, 0u);  // the shared system prompt, at least
  EXPECT_LE(st.ram_blocks_used, st.ram_blocks_capacity);
  EXPECT_EQ(st.spill_failures, 0u);
  EXPECT_EQ(st.snapshots_rejected, 0u);
  EXPECT_EQ(static_cast<std::size_t>(st.disk_files), CountFiles(dir.Path(), ".kvs"));
}

TEST_F(EvictionTest, WithoutDiskTierEvictedBlocksAreRecomputedExactly) {
  auto kv = OpenKv(TinyKvOptions(m_, "", 10, 16));
  for (int turn = 1; turn <= 2; ++turn) {
    for (int s = 0; s < 6; ++s) EXPECT_EQ(RunTurn(*kv, s, turn).disk_tokens, 0);
  }
  KvStats st = kv->Stats();
  EXPECT_GT(st.ram_evictions, 0u);
  EXPECT_EQ(st.spills, 0u);
  EXPECT_GT(st.tokens_recompute, 0u);
}

TEST_F(EvictionTest, LeasedPathStaysResidentUntilTheTtlExpires) {
  FaultInjectionEnv env(Env::Default());
  env.UseManualClock(1'000'000, 1'700'000'000'000);
  auto options = TinyKvOptions(m_, "", 16, 16);
  options.env = &env;
  auto kv = OpenKv(options);
  Tokens leased = SessionPath(0, 2);  // 64 tokens: 4 blocks
  RunTurn(*kv, 0, 2);
  auto lease = kv->Lease(LeaseRequest{"tenant", leased, 10.0, Id()});
  ASSERT_TRUE(lease.IsOk()) << lease.GetStatus().ToString();
  EXPECT_EQ(lease->blocks, 4);
  EXPECT_EQ(lease->cached_tokens, 64);

  for (int s = 1; s < 8; ++s) RunTurn(*kv, s, 2);  // far more than the budget holds
  EXPECT_GT(kv->Stats().ram_evictions, 0u);
  {
    auto acquired = kv->Acquire("tenant", leased);
    ASSERT_TRUE(acquired.IsOk());
    EXPECT_EQ(acquired->account.ram_tokens, 64) << "a leased path must not be evicted";
  }

  env.AdvanceMicros(11'000'000);  // past the TTL
  for (int s = 1; s < 8; ++s) RunTurn(*kv, s, 2);
  auto acquired = kv->Acquire("tenant", leased);
  ASSERT_TRUE(acquired.IsOk());
  EXPECT_LT(acquired->account.ram_tokens, 64) << "an expired lease pins nothing";
  EXPECT_EQ(kv->Stats().leases, 0);
}

TEST_F(EvictionTest, LeaseGrantedBeforeThePrefillPinsTheBlocksItProduces) {
  auto kv = OpenKv(TinyKvOptions(m_, "", 16, 16));
  Tokens leased = SessionPath(3, 2);
  ASSERT_TRUE(kv->Lease(LeaseRequest{"tenant", leased, 60.0, Id()}).IsOk());
  RunTurn(*kv, 3, 2);
  for (int s = 4; s < 10; ++s) RunTurn(*kv, s, 2);
  auto acquired = kv->Acquire("tenant", leased);
  ASSERT_TRUE(acquired.IsOk());
  EXPECT_EQ(acquired->account.ram_tokens, static_cast<std::int64_t>(leased.size()));
}

TEST_F(EvictionTest, DiskBudgetDeletesTheOldestSnapshots) {
  TestDir dir;
  auto options = TinyKvOptions(m_, dir.Path(), 8, 16);
  const std::size_t file_bytes = SnapshotBytes(BlockLayout{options.geometry, 16}, 16);
  options.disk_bytes = static_cast<std::int64_t>(6 * file_bytes);
  auto kv = OpenKv(options);
  for (int s = 0; s < 8; ++s) RunTurn(*kv, s, 2);
  KvStats st = kv->Stats();
  EXPECT_GT(st.disk_evictions, 0u);
  EXPECT_LE(st.disk_bytes, options.disk_bytes);
  EXPECT_EQ(static_cast<std::size_t>(st.disk_files), CountFiles(dir.Path(), ".kvs"));
  // The oldest snapshots went first: a recent session is still fully cached (RAM or disk), the
  // first one lost spans and recomputes them, still exactly.
  KvAccount recent = RunTurn(*kv, 6, 2);
  EXPECT_EQ(recent.recompute_tokens, 0);
  KvAccount first = RunTurn(*kv, 0, 2);
  EXPECT_GT(first.recompute_tokens, 0);
}

TEST_F(EvictionTest, ExhaustedPoolIsAnErrorAndTheSequenceIsUnchanged) {
  auto kv = OpenKv(TinyKvOptions(m_, "", 3, 16));
  Tokens path = RandomTokens(40, n_vocab_, 3);  // 3 blocks: fits
  auto a = kv->Acquire("t", path);
  ASSERT_TRUE(a.IsOk());
  ASSERT_TRUE(RecomputeSequence(*m_.engine, *kv, a->seq.Id()).IsOk());
  auto b = kv->Acquire("t", RandomTokens(20, n_vocab_, 4));
  ASSERT_TRUE(b.IsOk());
  auto r = RecomputeSequence(*m_.engine, *kv, b->seq.Id());
  ASSERT_FALSE(r.IsOk());
  EXPECT_EQ(r.GetStatus().Code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(*kv->Length(b->seq.Id()), 0);
  // The first sequence is intact: continuing it inside its private last block is still exact.
  Tokens longer = Concat(path, RandomTokens(10, n_vocab_, 5));
  std::vector<Logits> want = ReferenceLogits(m_, longer);
  b->seq.Release();
  ASSERT_TRUE(kv->Append(a->seq.Id(), std::span<const std::int32_t>(longer).subspan(40, 2)).IsOk());
  auto fits = RecomputeSequence(*m_.engine, *kv, a->seq.Id());
  ASSERT_TRUE(fits.IsOk()) << fits.GetStatus().ToString();
  EXPECT_TRUE(SameBits(fits->logits, want[41]));
  // Position 48 needs a fourth block: refused, and the sequence keeps its 42 rows.
  ASSERT_TRUE(kv->Append(a->seq.Id(), std::span<const std::int32_t>(longer).subspan(42)).IsOk());
  auto more = RecomputeSequence(*m_.engine, *kv, a->seq.Id());
  ASSERT_FALSE(more.IsOk());
  EXPECT_EQ(more.GetStatus().Code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(*kv->Length(a->seq.Id()), 42);
}

}  // namespace
}  // namespace llmsync::kvcache
