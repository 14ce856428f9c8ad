// The Engine API: batch validation errors, which logits rows come back, KV storage semantics
// (gaps, capacity, forks, rewinds), the thread pool, and a seeded generation resumed after a
// simulated crash reproducing the uninterrupted one.
#include "engine/engine.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <vector>

#include "engine/sampling.h"
#include "engine/thread_pool.h"
#include "test_models.h"

namespace llmsync::engine {
namespace {

using testing::BuildModel;
using testing::MakeEngine;
using testing::TestTokens;
using testing::TinyOptions;

TEST(ThreadPoolTest, RunsEveryTaskExactlyOnce) {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.Size(), threads);
    for (std::int64_t n : {0, 1, 2, 7, 100, 1000}) {
      std::vector<std::atomic<int>> hits(static_cast<std::size_t>(n));
      std::atomic<bool> bad_thread{false};
      pool.ParallelFor(n, [&](std::int64_t task, int thread) {
        hits[static_cast<std::size_t>(task)].fetch_add(1);
        if (thread < 0 || thread >= threads) bad_thread = true;
      });
      for (auto& h : hits) EXPECT_EQ(h.load(), 1);
      EXPECT_FALSE(bad_thread);
    }
  }
}

TEST(ThreadPoolTest, ManyBackToBackDispatches) {
  ThreadPool pool(3);
  std::int64_t total = 0;
  std::vector<std::int64_t> per_task(4);
  for (int round = 0; round < 20000; ++round) {
    pool.ParallelFor(
        4, [&](std::int64_t task, int) { per_task[static_cast<std::size_t>(task)] = task + round; });
    for (std::int64_t v : per_task) total += v;
  }
  EXPECT_EQ(total, 20000 * 6 + 4 * (19999 * 20000 / 2));
}

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto built = BuildModel(TinyOptions(ModelArch::kLlama, GgmlType::kQ8_0));
    ASSERT_TRUE(built.IsOk()) << built.GetStatus().ToString();
    model_ = std::move(built).Value();
    engine_ = MakeEngine(*model_.model, 2);
    n_vocab_ = static_cast<std::size_t>(model_.model->Hparams().n_vocab);
  }

  std::vector<float> Logits(std::size_t rows) { return std::vector<float>(rows * n_vocab_); }

  ContiguousKvStorage NewKv(std::int64_t capacity = 32) {
    ContiguousKvStorage kv(model_.model->KvGeometryFor(KvDtype::kF16), capacity);
    EXPECT_TRUE(kv.AddSequence(0).IsOk());
    EXPECT_TRUE(kv.AddSequence(1).IsOk());
    return kv;
  }

  testing::InMemoryModel model_;
  std::unique_ptr<Engine> engine_;
  std::size_t n_vocab_ = 0;
};

TEST_F(EngineTest, RejectsBadOptions) {
  EXPECT_EQ(Engine::Create(*model_.model, EngineOptions{0, 16}).GetStatus().Code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(Engine::Create(*model_.model, EngineOptions{1, 0}).GetStatus().Code(),
            StatusCode::kInvalidArgument);
}

TEST_F(EngineTest, RejectsBadBatchesWithoutComputing) {
  ContiguousKvStorage kv = NewKv();
  auto expect_error = [&](const Batch& b, std::size_t rows, StatusCode code, const std::string& needle) {
    std::vector<float> logits = Logits(rows);
    Status s = engine_->Forward(b, kv, logits);
    EXPECT_EQ(s.Code(), code) << s.ToString();
    EXPECT_NE(s.Message().find(needle), std::string::npos) << s.Message();
  };
  Batch b;
  b.Add(0, 0, 5, true);
  expect_error(b, 2, StatusCode::kInvalidArgument, "logits buffer");
  b.Clear();
  b.Add(0, 0, 256, true);
  expect_error(b, 1, StatusCode::kInvalidArgument, "outside the vocabulary");
  b.Clear();
  b.Add(0, 0, -1, true);
  expect_error(b, 1, StatusCode::kInvalidArgument, "outside the vocabulary");
  b.Clear();
  b.Add(0, -3, 1, true);
  expect_error(b, 1, StatusCode::kInvalidArgument, "position");
  b.Clear();
  b.Add(0, 0, 1, false);
  b.Add(0, 2, 1, true);
  expect_error(b, 1, StatusCode::kInvalidArgument, "consecutive");
  b.Clear();
  b.Add(0, 0, 1, false);
  b.Add(0, 0, 1, true);
  expect_error(b, 1, StatusCode::kInvalidArgument, "consecutive");
  b.Clear();
  b.Add(0, 5, 1, true);
  expect_error(b, 1, StatusCode::kInvalidArgument, "without gaps");
  b.Clear();
  b.Add(9, 0, 1, true);
  expect_error(b, 1, StatusCode::kNotFound, "sequence 9");
  b.Clear();
  b.AddSequence(0, 0, std::vector<std::int32_t>(33, 1));
  expect_error(b, 1, StatusCode::kResourceExhausted, "capacity");

  ContiguousKvStorage wrong(KvGeometry{2, 4, 16, KvDtype::kF16}, 8);
  ASSERT_TRUE(wrong.AddSequence(0).IsOk());
  b.Clear();
  b.Add(0, 0, 1, true);
  std::vector<float> logits = Logits(1);
  Status s = engine_->Forward(b, wrong, logits);
  EXPECT_NE(s.Message().find("geometry"), std::string::npos) << s.ToString();

  // The engine still works after errors, and an empty batch is a no-op.
  EXPECT_TRUE(engine_->Forward(Batch(), kv, {}).IsOk());
  EXPECT_TRUE(engine_->Forward(b, kv, logits).IsOk());
}

TEST_F(EngineTest, ReturnsLogitsOnlyForTheEntriesThatAsk) {
  std::vector<std::int32_t> tokens = TestTokens(6, 256);
  ContiguousKvStorage kv_all = NewKv();
  Batch all;
  all.AddSequence(0, 0, tokens, true);
  std::vector<float> every = Logits(6);
  ASSERT_TRUE(engine_->Forward(all, kv_all, every).IsOk());

  ContiguousKvStorage kv_some = NewKv();
  Batch some;
  for (std::size_t i = 0; i < tokens.size(); ++i)
    some.Add(0, static_cast<std::int64_t>(i), tokens[i], i == 1 || i == 4);
  EXPECT_EQ(some.NumLogits(), 2u);
  std::vector<float> two = Logits(2);
  ASSERT_TRUE(engine_->Forward(some, kv_some, two).IsOk());
  EXPECT_EQ(std::memcmp(two.data(), every.data() + 1 * n_vocab_, n_vocab_ * sizeof(float)), 0);
  EXPECT_EQ(std::memcmp(two.data() + n_vocab_, every.data() + 4 * n_vocab_, n_vocab_ * sizeof(float)), 0);
}

TEST_F(EngineTest, KvStorageSemantics) {
  ContiguousKvStorage kv = NewKv(8);
  EXPECT_EQ(kv.AddSequence(0).Code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(*kv.Length(0), 0);
  EXPECT_TRUE(kv.PrepareWrite(0, 0, 5).IsOk());
  EXPECT_EQ(*kv.Length(0), 5);
  EXPECT_EQ(kv.PrepareWrite(0, 6, 1).Code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(kv.PrepareWrite(0, 5, 4).Code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(kv.PrepareWrite(0, 2, 1).IsOk()) << "rewinding supersedes positions 3 and 4";
  EXPECT_EQ(*kv.Length(0), 3);
  EXPECT_EQ(kv.Keys(0, 1, 1).count, 2);
  EXPECT_EQ(kv.Keys(0, 1, 1).stride_bytes, 2 * 16 * 2);
  EXPECT_EQ(kv.Keys(0, 1, 1).data - kv.Keys(0, 1, 0).data, 64);
  EXPECT_EQ(kv.CopySequence(0, 1, 4).Code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(kv.RemoveSequence(1).IsOk());
  EXPECT_EQ(kv.RemoveSequence(1).Code(), StatusCode::kNotFound);
  EXPECT_EQ(kv.Length(1).GetStatus().Code(), StatusCode::kNotFound);
  EXPECT_EQ(kv.PrepareWrite(1, 0, 1).Code(), StatusCode::kNotFound);
}

TEST_F(EngineTest, ForkedSequenceContinuesExactlyLikeTheOriginal) {
  std::vector<std::int32_t> tokens = TestTokens(12, 256);
  ContiguousKvStorage kv = NewKv();
  Batch prefix;
  prefix.AddSequence(0, 0, std::vector<std::int32_t>(tokens.begin(), tokens.begin() + 8));
  std::vector<float> logits = Logits(1);
  ASSERT_TRUE(engine_->Forward(prefix, kv, logits).IsOk());
  ASSERT_TRUE(kv.CopySequence(0, 7, 8).IsOk());
  std::vector<std::int32_t> tail(tokens.begin() + 8, tokens.end());
  Batch original, fork;
  original.AddSequence(0, 8, tail);
  fork.AddSequence(7, 8, tail);
  std::vector<float> a = Logits(1), b = Logits(1);
  ASSERT_TRUE(engine_->Forward(original, kv, a).IsOk());
  ASSERT_TRUE(engine_->Forward(fork, kv, b).IsOk());
  EXPECT_EQ(std::memcmp(a.data(), b.data(), n_vocab_ * sizeof(float)), 0);
}

// Generates with the engine and sampler; `crash_after` > 0 throws the KV away after that many
// tokens and rebuilds it by replaying prompt + generated tokens in one batch, as a restarted
// server would.
std::vector<std::int32_t> Generate(Engine& engine, const std::vector<std::int32_t>& prompt, int n,
                                   int crash_after) {
  const Model& model = engine.GetModel();
  const auto n_vocab = static_cast<std::size_t>(model.Hparams().n_vocab);
  SamplingParams params;
  params.temperature = 0.9f;
  params.top_k = 40;
  params.top_p = 0.95f;
  params.repeat_penalty = 1.1f;
  params.seed = 77;
  Sampler sampler = *Sampler::Create(params);
  auto kv = std::make_unique<ContiguousKvStorage>(model.KvGeometryFor(KvDtype::kF16), 64);
  EXPECT_TRUE(kv->AddSequence(0).IsOk());
  std::vector<std::int32_t> history = prompt;
  std::vector<float> logits(n_vocab);
  Batch batch;
  batch.AddSequence(0, 0, prompt);
  for (int i = 0; i < n; ++i) {
    if (i == crash_after) {
      kv = std::make_unique<ContiguousKvStorage>(model.KvGeometryFor(KvDtype::kF16), 64);
      EXPECT_TRUE(kv->AddSequence(0).IsOk());
      batch.Clear();
      batch.AddSequence(0, 0, history);
    }
    EXPECT_TRUE(engine.Forward(batch, *kv, logits).IsOk());
    const auto pos = static_cast<std::int64_t>(history.size());
    history.push_back(sampler.Sample(logits, history, pos));
    batch.Clear();
    batch.Add(0, pos, history.back(), true);
  }
  return std::vector<std::int32_t>(history.begin() + static_cast<std::ptrdiff_t>(prompt.size()),
                                   history.end());
}

TEST_F(EngineTest, ResumedSeededGenerationReproducesTheUninterruptedRun) {
  std::vector<std::int32_t> prompt = TestTokens(5, 256);
  std::vector<std::int32_t> full = Generate(*engine_, prompt, 24, -1);
  auto single = MakeEngine(*model_.model, 1);
  for (int crash_after : {1, 7, 20}) {
    EXPECT_EQ(Generate(*single, prompt, 24, crash_after), full) << "crash after " << crash_after;
  }
}

}  // namespace
}  // namespace llmsync::engine
