// The decode loop allocates nothing once warmed up: this file replaces the global operator new of
// the test binary with one that counts calls while a flag is set, and runs decode steps of several
// sequences (Engine::Forward and Sampler::Sample) with the flag on.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <new>
#include <vector>

#include "engine/sampling.h"
#include "test_models.h"

namespace {

std::atomic<bool> counting{false};
std::atomic<long> allocations{0};

void* CountedAlloc(std::size_t n) {
  if (counting.load(std::memory_order_relaxed)) allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}

}  // namespace

void* operator new(std::size_t n) { return CountedAlloc(n); }
void* operator new[](std::size_t n) { return CountedAlloc(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t /*n*/) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t /*n*/) noexcept { std::free(p); }

namespace llmsync::engine {
namespace {

TEST(NoAllocationTest, DecodeStepsAllocateNothingOnceWarm) {
  auto built = testing::BuildModel(testing::TinyOptions(ModelArch::kQwen2, GgmlType::kQ8_0));
  ASSERT_TRUE(built.IsOk());
  const Model& model = *built->model;
  auto engine = testing::MakeEngine(model, 3, 16);
  ContiguousKvStorage kv(model.KvGeometryFor(KvDtype::kF16), 64);
  const auto n_vocab = static_cast<std::size_t>(model.Hparams().n_vocab);
  constexpr int kSeqs = 3;
  std::vector<std::vector<std::int32_t>> history(kSeqs);
  for (SeqId s = 0; s < kSeqs; ++s) {
    ASSERT_TRUE(kv.AddSequence(s).IsOk());
    history[s] =
        testing::TestTokens(5 + s, static_cast<std::int64_t>(n_vocab), static_cast<std::uint32_t>(s));
    history[s].reserve(64);
  }
  SamplingParams params;
  params.temperature = 0.8f;
  params.top_k = 20;
  params.top_p = 0.9f;
  params.repeat_penalty = 1.1f;
  Sampler sampler = *Sampler::Create(params);
  std::vector<float> logits(kSeqs * n_vocab);
  Batch batch;
  batch.Reserve(64);
  for (SeqId s = 0; s < kSeqs; ++s) batch.AddSequence(s, 0, history[s]);
  ASSERT_TRUE(engine->Forward(batch, kv, logits).IsOk());

  auto step = [&] {
    for (SeqId s = 0; s < kSeqs; ++s) {
      std::span<const float> row(logits.data() + s * n_vocab, n_vocab);
      const auto pos = static_cast<std::int64_t>(history[s].size());
      history[s].push_back(sampler.Sample(row, history[s], pos));
    }
    batch.Clear();
    for (SeqId s = 0; s < kSeqs; ++s) {
      batch.Add(s, static_cast<std::int64_t>(history[s].size()) - 1, history[s].back(), true);
    }
    return engine->Forward(batch, kv, logits);
  };
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(step().IsOk());  // warm-up: buffers reach their size

  counting = true;  // positive control: the counter does see allocations
  auto probe = std::make_unique<std::vector<int>>(100);
  counting = false;
  ASSERT_GE(allocations.exchange(0), 2) << "the operator new replacement is not in effect";
  probe.reset();

  counting = true;
  Status s;
  for (int i = 0; i < 10 && s.IsOk(); ++i) s = step();
  counting = false;
  ASSERT_TRUE(s.IsOk()) << s.ToString();
  EXPECT_EQ(allocations.load(), 0) << "operator new calls during 10 warm decode steps";
}

}  // namespace
}  // namespace llmsync::engine
