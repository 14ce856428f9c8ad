// Batch invariance: the logits of a token are bit-identical whether it is computed alone, in a
// prefill of any size, beside other sequences, with any thread count, any max_batch_tokens, and
// with a contiguous or a paged KV store. Compared with memcmp, never with a tolerance.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "../base/test_dir.h"
#include "engine/kv_storage.h"
#include "engine/matmul.h"
#include "paged_test_kv.h"
#include "test_models.h"

namespace llmsync::engine {
namespace {

using testing::BuildModel;
using testing::MakeEngine;
using testing::PagedTestKv;
using testing::TestTokens;
using testing::TinyOptions;

using Key = std::pair<SeqId, std::int64_t>;  // (sequence, position)
using LogitsMap = std::map<Key, std::vector<float>>;
using Schedule = std::vector<std::vector<BatchEntry>>;  // batches of entries, all asking logits

constexpr std::size_t kLongSeq = 40;  // crosses the attention chunk boundary (32)

// Runs every batch of the schedule and collects the logits of each (sequence, position).
LogitsMap RunSchedule(Engine& engine, KvStorage& kv, const Schedule& schedule) {
  LogitsMap out;
  const std::int64_t n_vocab = engine.GetModel().Hparams().n_vocab;
  for (const std::vector<BatchEntry>& entries : schedule) {
    Batch batch;
    for (const BatchEntry& e : entries) batch.Add(e.seq, e.pos, e.token, e.logits);
    std::vector<float> logits(batch.NumLogits() * static_cast<std::size_t>(n_vocab));
    Status s = engine.Forward(batch, kv, logits);
    EXPECT_TRUE(s.IsOk()) << s.ToString();
    if (!s.IsOk()) return out;
    std::size_t row_index = 0;
    for (const BatchEntry& e : entries) {
      if (!e.logits) continue;
      auto row =
          logits.begin() + static_cast<std::ptrdiff_t>(row_index++ * static_cast<std::size_t>(n_vocab));
      out[{e.seq, e.pos}] = std::vector<float>(row, row + n_vocab);
    }
  }
  return out;
}

// Sequence s of `lengths` holds TestTokens(lengths[s], n_vocab, s).
std::vector<std::vector<std::int32_t>> MakeSequences(const std::vector<std::size_t>& lengths,
                                                     std::int64_t n_vocab) {
  std::vector<std::vector<std::int32_t>> seqs;
  for (std::size_t s = 0; s < lengths.size(); ++s)
    seqs.push_back(TestTokens(lengths[s], n_vocab, static_cast<std::uint32_t>(s)));
  return seqs;
}

// One token per batch, one sequence at a time: the reference every other schedule must match.
Schedule AloneSchedule(const std::vector<std::vector<std::int32_t>>& seqs) {
  Schedule schedule;
  for (std::size_t s = 0; s < seqs.size(); ++s) {
    for (std::size_t p = 0; p < seqs[s].size(); ++p) {
      schedule.push_back({BatchEntry{s, static_cast<std::int64_t>(p), seqs[s][p], true}});
    }
  }
  return schedule;
}

// Each sequence in chunks of `chunk` tokens, sequences one after another.
Schedule ChunkedSchedule(const std::vector<std::vector<std::int32_t>>& seqs, std::size_t chunk) {
  Schedule schedule;
  for (std::size_t s = 0; s < seqs.size(); ++s) {
    for (std::size_t p = 0; p < seqs[s].size(); p += chunk) {
      std::vector<BatchEntry> batch;
      for (std::size_t i = p; i < std::min(seqs[s].size(), p + chunk); ++i) {
        batch.push_back(BatchEntry{s, static_cast<std::int64_t>(i), seqs[s][i], true});
      }
      schedule.push_back(batch);
    }
  }
  return schedule;
}

// All sequences advance together; at each step sequence s contributes a chunk of 1..4 tokens (a
// varying mix of prefill chunks and single-token decodes), in a rotating sequence order.
Schedule MixedSchedule(const std::vector<std::vector<std::int32_t>>& seqs) {
  Schedule schedule;
  std::vector<std::size_t> done(seqs.size(), 0);
  for (std::size_t step = 0;; ++step) {
    std::vector<BatchEntry> batch;
    for (std::size_t k = 0; k < seqs.size(); ++k) {
      std::size_t s = (k + step) % seqs.size();
      std::size_t chunk = (step * 3 + s) % 4 + 1;
      for (std::size_t i = 0; i < chunk && done[s] < seqs[s].size(); ++i, ++done[s]) {
        batch.push_back(BatchEntry{s, static_cast<std::int64_t>(done[s]), seqs[s][done[s]], true});
      }
    }
    if (batch.empty()) return schedule;
    schedule.push_back(batch);
  }
}

void ExpectBitIdentical(const LogitsMap& expected, const LogitsMap& actual, const std::string& what) {
  ASSERT_EQ(expected.size(), actual.size()) << what;
  for (const auto& [key, want] : expected) {
    auto it = actual.find(key);
    ASSERT_NE(it, actual.end()) << what;
    const std::vector<float>& got = it->second;
    ASSERT_EQ(got.size(), want.size());
    if (std::memcmp(got.data(), want.data(), want.size() * sizeof(float)) != 0) {
      std::size_t i = 0;
      while (got[i] == want[i]) ++i;
      FAIL() << what << ": sequence " << key.first << " position " << key.second << " differs at logit " << i
             << ": " << got[i] << " vs " << want[i];
    }
  }
}

class BatchInvarianceTest : public ::testing::TestWithParam<std::tuple<ModelArch, GgmlType>> {
 protected:
  void SetUp() override {
    auto [arch, type] = GetParam();
    auto built = BuildModel(TinyOptions(arch, type));
    ASSERT_TRUE(built.IsOk()) << built.GetStatus().ToString();
    model_ = std::move(built).Value();
    n_vocab_ = model_.model->Hparams().n_vocab;
  }

  ContiguousKvStorage NewKv(KvDtype dtype = KvDtype::kF16) {
    ContiguousKvStorage kv(model_.model->KvGeometryFor(dtype), 64);
    for (SeqId s = 0; s < 4; ++s) EXPECT_TRUE(kv.AddSequence(s).IsOk());
    return kv;
  }

  LogitsMap Run(const Schedule& schedule, int threads, std::int64_t max_batch = 256,
                KvDtype dtype = KvDtype::kF16) {
    auto engine = MakeEngine(*model_.model, threads, max_batch);
    ContiguousKvStorage kv = NewKv(dtype);
    return RunSchedule(*engine, kv, schedule);
  }

  testing::InMemoryModel model_;
  std::int64_t n_vocab_ = 0;
};

TEST_P(BatchInvarianceTest, PrefillOfAnySizeMatchesTokenByToken) {
  auto seqs = MakeSequences({kLongSeq}, n_vocab_);
  LogitsMap alone = Run(AloneSchedule(seqs), 1);
  for (std::size_t chunk : {2, 3, 5, 7, 16, 31, 32, 33, 40}) {
    ExpectBitIdentical(alone, Run(ChunkedSchedule(seqs, chunk), 1), "prefill chunk " + std::to_string(chunk));
  }
}

TEST_P(BatchInvarianceTest, ThreadCountsAndSlicingDoNotChangeBits) {
  auto seqs = MakeSequences({kLongSeq}, n_vocab_);
  LogitsMap alone = Run(AloneSchedule(seqs), 1);
  for (int threads : {2, 3, 4}) {
    ExpectBitIdentical(alone, Run(ChunkedSchedule(seqs, kLongSeq), threads),
                       "threads " + std::to_string(threads));
    ExpectBitIdentical(alone, Run(AloneSchedule(seqs), threads),
                       "decode, threads " + std::to_string(threads));
  }
  for (std::int64_t max_batch : {1, 6, 32}) {
    ExpectBitIdentical(alone, Run(ChunkedSchedule(seqs, kLongSeq), 2, max_batch),
                       "max_batch_tokens " + std::to_string(max_batch));
  }
}

TEST_P(BatchInvarianceTest, MixedBatchesOfSeveralSequencesMatchEachAlone) {
  auto seqs = MakeSequences({kLongSeq, 25, 33, 9}, n_vocab_);
  LogitsMap alone = Run(AloneSchedule(seqs), 1);
  ExpectBitIdentical(alone, Run(MixedSchedule(seqs), 1), "mixed, 1 thread");
  ExpectBitIdentical(alone, Run(MixedSchedule(seqs), 3, 5), "mixed, 3 threads, slices of 5");
}

TEST_P(BatchInvarianceTest, AskingForFewerLogitsChangesNoBits) {
  // The last layer runs past attention only for the entries that ask; the others must not matter.
  auto seqs = MakeSequences({kLongSeq, 25, 33, 9}, n_vocab_);
  LogitsMap alone = Run(AloneSchedule(seqs), 1);
  Schedule sparse = MixedSchedule(seqs);
  for (std::vector<BatchEntry>& batch : sparse) {
    for (BatchEntry& e : batch) e.logits = (e.seq + static_cast<SeqId>(e.pos)) % 3 == 0;
  }
  LogitsMap got = Run(sparse, 2, 6);
  for (auto it = alone.begin(); it != alone.end();) {
    it = (it->first.first + static_cast<SeqId>(it->first.second)) % 3 == 0 ? std::next(it) : alone.erase(it);
  }
  ExpectBitIdentical(alone, got, "sparse logits");
}

TEST_P(BatchInvarianceTest, PagedStoreGivesTheSameBitsAsContiguous) {
  auto seqs = MakeSequences({kLongSeq, 25, 33, 9}, n_vocab_);
  LogitsMap alone = Run(AloneSchedule(seqs), 1);
  for (std::int64_t block : {1, 16, 32}) {
    auto engine = MakeEngine(*model_.model, 2, 7);
    PagedTestKv paged(model_.model->KvGeometryFor(KvDtype::kF16), block, 160 / block + 3);
    ExpectBitIdentical(alone, RunSchedule(*engine, paged, MixedSchedule(seqs)),
                       "paged block " + std::to_string(block));
  }
}

TEST_P(BatchInvarianceTest, F32KvIsInvariantToo) {
  auto seqs = MakeSequences({kLongSeq, 9}, n_vocab_);
  LogitsMap alone = Run(AloneSchedule(seqs), 1, 256, KvDtype::kF32);
  ExpectBitIdentical(alone, Run(MixedSchedule(seqs), 2, 256, KvDtype::kF32), "f32 kv, mixed");
  LogitsMap f16 = Run(AloneSchedule(seqs), 1, 256, KvDtype::kF16);
  const Key last{0, kLongSeq - 1};
  EXPECT_NE(std::memcmp(alone[last].data(), f16[last].data(), alone[last].size() * sizeof(float)), 0)
      << "f16 and f32 KV storage are expected to round differently";
}

TEST_P(BatchInvarianceTest, RewritingAPositionReplacesItsFuture) {
  // Decode 10 tokens, rewind to position 5 with different tokens, and compare with a fresh run of
  // the edited sequence: regenerate-from-here must not see the superseded rows.
  auto seqs = MakeSequences({10}, n_vocab_);
  std::vector<std::vector<std::int32_t>> edited = seqs;
  for (std::size_t p = 5; p < 10; ++p)
    edited[0][p] = (edited[0][p] + 1) % static_cast<std::int32_t>(n_vocab_);
  auto engine = MakeEngine(*model_.model, 2);
  ContiguousKvStorage kv = NewKv();
  RunSchedule(*engine, kv, ChunkedSchedule(seqs, 10));
  Schedule rewrite = {{}};
  for (std::size_t p = 5; p < 10; ++p)
    rewrite[0].push_back(BatchEntry{0, static_cast<std::int64_t>(p), edited[0][p], true});
  LogitsMap after = RunSchedule(*engine, kv, rewrite);
  LogitsMap fresh = Run(AloneSchedule(edited), 1);
  for (std::int64_t p = 0; p < 5; ++p) fresh.erase({0, p});
  ExpectBitIdentical(fresh, after, "rewritten suffix");
}

std::string ParamName(const ::testing::TestParamInfo<std::tuple<ModelArch, GgmlType>>& info) {
  return std::string(ModelArchName(std::get<0>(info.param))) + "_" +
         std::string(GgmlTypeName(std::get<1>(info.param)));
}

// Q4_0 weights copied into huge pages at load are repacked for the AVX-512 VNNI tiles
// (kInterleaved16, when that is the active set): the logits keep the bits of the mapped GGUF rows,
// token by token, in prefills of any size and with two threads.
TEST(InterleavedWeightsTest, HugePageCopyGivesTheMappedBits) {
  llmsync::testing::TestDir dir;
  const std::string path = dir.File("q4_0.gguf");
  auto w = BuildTestModel(Env::Default(), TinyOptions(ModelArch::kLlama, GgmlType::kQ4_0));
  ASSERT_TRUE(w.IsOk()) << w.GetStatus().ToString();
  ASSERT_TRUE(w->WriteTo(Env::Default(), path).IsOk());
  auto mapped = Model::Open(Env::Default(), path);
  auto copied = Model::Open(Env::Default(), path, Model::Placement::kHugePageCopy);
  ASSERT_TRUE(mapped.IsOk() && copied.IsOk());
  EXPECT_EQ((*copied)->Layer(0).w_down.layout, PreferredLayout(GgmlType::kQ4_0));
  EXPECT_EQ((*copied)->Output().layout, PreferredLayout(GgmlType::kQ4_0));
  EXPECT_EQ((*mapped)->Layer(0).w_down.layout, WeightLayout::kRows);
  const std::int64_t n_vocab = (*mapped)->Hparams().n_vocab;
  auto seqs = MakeSequences({kLongSeq, 9}, n_vocab);
  auto run = [&](const Model& model, const Schedule& schedule, int threads) {
    auto engine = MakeEngine(model, threads);
    ContiguousKvStorage kv(model.KvGeometryFor(KvDtype::kF16), 64);
    for (SeqId s = 0; s < 2; ++s) EXPECT_TRUE(kv.AddSequence(s).IsOk());
    return RunSchedule(*engine, kv, schedule);
  };
  const LogitsMap want = run(**mapped, AloneSchedule(seqs), 1);
  ExpectBitIdentical(want, run(**copied, AloneSchedule(seqs), 1), "copied, token by token");
  for (std::size_t chunk : {5, 8, 40}) {
    ExpectBitIdentical(want, run(**copied, ChunkedSchedule(seqs, chunk), 1),
                       "copied, chunk " + std::to_string(chunk));
  }
  ExpectBitIdentical(want, run(**copied, MixedSchedule(seqs), 2), "copied, mixed, 2 threads");
}

INSTANTIATE_TEST_SUITE_P(ArchAndType, BatchInvarianceTest,
                         ::testing::Values(std::tuple{ModelArch::kLlama, GgmlType::kF32},
                                           std::tuple{ModelArch::kQwen2, GgmlType::kF32},
                                           std::tuple{ModelArch::kQwen3, GgmlType::kF32},
                                           std::tuple{ModelArch::kLlama, GgmlType::kF16},
                                           std::tuple{ModelArch::kLlama, GgmlType::kBf16},
                                           std::tuple{ModelArch::kLlama, GgmlType::kQ8_0},
                                           std::tuple{ModelArch::kQwen2, GgmlType::kQ4_0},
                                           std::tuple{ModelArch::kQwen3, GgmlType::kQ4K},
                                           std::tuple{ModelArch::kLlama, GgmlType::kQ6K}),
                         ParamName);

}  // namespace
}  // namespace llmsync::engine
