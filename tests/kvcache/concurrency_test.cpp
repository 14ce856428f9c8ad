// The thread-safety contract of KvManager: two inference loops (each with its own Engine) run
// Forwards over different sequences of one manager while a third thread leases, renews, releases
// and reads statistics, under a RAM budget small enough to evict and spill constantly. Every result
// stays bit-exact.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "kv_test_util.h"

namespace llmsync::kvcache {
namespace {

using ::llmsync::testing::TestDir;
using testing::Logits;
using testing::MakeTinyModel;
using testing::OpenKv;
using testing::RandomTokens;
using testing::ReferenceLogits;
using testing::SameBits;
using testing::TinyKvOptions;
using testing::Tokens;

TEST(Concurrency, TwoInferenceLoopsAndALeaseClientShareOneManager) {
  testing::TinyModel m = MakeTinyModel(testing::TinyModelOptions(), 2);
  testing::TinyModel m2 = MakeTinyModel(testing::TinyModelOptions(), 1);  // same weights, own engine
  ASSERT_EQ(m.fingerprint, m2.fingerprint);
  const std::int64_t n_vocab = m.model->Hparams().n_vocab;
  constexpr int kPaths = 6;
  std::vector<Tokens> paths;
  std::vector<Logits> want;
  for (int i = 0; i < kPaths; ++i) {
    paths.push_back(
        RandomTokens(30 + 7 * static_cast<std::size_t>(i), n_vocab, 900 + static_cast<std::uint32_t>(i)));
    want.push_back(ReferenceLogits(m, paths.back()).back());
  }
  TestDir dir;
  auto kv = OpenKv(TinyKvOptions(m, dir.Path(), 12, 16));
  std::atomic<bool> done{false};
  std::atomic<int> mismatches{0};
  std::atomic<int> errors{0};

  auto loop = [&](testing::TinyModel& model, int offset) {
    for (int round = 0; round < 8; ++round) {
      const int i = (round + offset) % kPaths;
      auto acquired = kv->Acquire("t", paths[static_cast<std::size_t>(i)]);
      if (!acquired.IsOk()) {
        ++errors;
        continue;
      }
      auto r = RecomputeSequence(*model.engine, *kv, acquired->seq.Id());
      if (!r.IsOk()) {
        // Two loops may together hold more blocks than the budget: a clean refusal is allowed.
        if (r.GetStatus().Code() != StatusCode::kResourceExhausted) ++errors;
        continue;
      }
      if (!SameBits(r->logits, want[static_cast<std::size_t>(i)])) ++mismatches;
    }
  };
  std::thread lease_client([&] {
    int n = 0;
    while (!done.load()) {
      auto lease = kv->Lease(LeaseRequest{"t", paths[static_cast<std::size_t>(n % kPaths)], 30, Id()});
      if (lease.IsOk()) {
        (void)kv->RenewLease("t", lease->id, 60);
        (void)kv->Stats();
        (void)kv->ReleaseLease("t", lease->id);
      }
      ++n;
    }
  });
  std::thread second([&] { loop(m2, 3); });
  loop(m, 0);
  second.join();
  done = true;
  lease_client.join();
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_EQ(errors.load(), 0);
  KvStats st = kv->Stats();
  EXPECT_EQ(st.sequences, 0);
  EXPECT_EQ(st.leases, 0);
  EXPECT_GT(st.ram_evictions, 0u);
}

}  // namespace
}  // namespace llmsync::kvcache
