// Helpers for the KV cache tests: a tiny make-test model held in memory, reference logits from a
// continuous decode over a flat KV store, and running a sequence's pending tokens through a
// KvManager while collecting the logits of every position.
//
// Thread safety: test helpers; not shared between threads.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "../base/test_dir.h"
#include "engine/engine.h"
#include "engine/gguf/gguf_reader.h"
#include "engine/make_test_model.h"
#include "engine/model.h"
#include "engine/model_fingerprint.h"
#include "kvcache/kv_manager/kv_manager.h"
#include "kvcache/recompute.h"

namespace llmsync::kvcache::testing {

using Tokens = std::vector<std::int32_t>;
using Logits = std::vector<float>;

struct TinyModel {
  std::unique_ptr<std::string> image;
  std::unique_ptr<engine::Model> model;
  std::unique_ptr<engine::Engine> engine;
  Id fingerprint;
};

inline engine::MakeTestModelOptions TinyModelOptions(std::uint64_t seed = 7) {
  engine::MakeTestModelOptions o;
  o.n_embd = 64;
  o.n_layer = 2;
  o.n_head = 4;
  o.n_head_kv = 2;
  o.n_ff = 128;
  o.weight_std = 0.1f;
  o.seed = seed;
  return o;
}

inline TinyModel MakeTinyModel(const engine::MakeTestModelOptions& options = TinyModelOptions(),
                               int threads = 1) {
  TinyModel m;
  auto writer = engine::BuildTestModel(Env::Default(), options);
  EXPECT_TRUE(writer.IsOk()) << writer.GetStatus().ToString();
  m.image = std::make_unique<std::string>(writer->Serialize());
  auto file = engine::GgufFile::Parse(
      std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(m.image->data()), m.image->size()));
  EXPECT_TRUE(file.IsOk()) << file.GetStatus().ToString();
  auto model = engine::Model::FromGguf(std::move(file).Value());
  EXPECT_TRUE(model.IsOk()) << model.GetStatus().ToString();
  m.model = std::move(model).Value();
  engine::EngineOptions eo;
  eo.n_threads = threads;
  eo.max_batch_tokens = 64;
  auto engine = engine::Engine::Create(*m.model, eo);
  EXPECT_TRUE(engine.IsOk()) << engine.GetStatus().ToString();
  m.engine = std::move(engine).Value();
  m.fingerprint = engine::ModelFingerprint(*m.model);
  return m;
}

// Deterministic pseudo-random token ids in [0, n_vocab).
inline Tokens RandomTokens(std::size_t n, std::int64_t n_vocab, std::uint32_t salt) {
  Tokens tokens;
  std::uint32_t x = 2463534242u ^ (salt * 2654435761u);
  for (std::size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    tokens.push_back(static_cast<std::int32_t>(x % static_cast<std::uint32_t>(n_vocab)));
  }
  return tokens;
}

inline Tokens Concat(const Tokens& a, const Tokens& b) {
  Tokens out = a;
  out.insert(out.end(), b.begin(), b.end());
  return out;
}

// Logits after every position of a continuous, one-token-at-a-time decode over a flat KV store.
inline std::vector<Logits> ReferenceLogits(const TinyModel& m, const Tokens& tokens,
                                           engine::KvDtype dtype = engine::KvDtype::kF16) {
  engine::ContiguousKvStorage kv(m.model->KvGeometryFor(dtype), static_cast<std::int64_t>(tokens.size()) + 1);
  EXPECT_TRUE(kv.AddSequence(0).IsOk());
  const std::size_t n_vocab = static_cast<std::size_t>(m.model->Hparams().n_vocab);
  std::vector<Logits> out;
  for (std::size_t p = 0; p < tokens.size(); ++p) {
    engine::Batch batch;
    batch.Add(0, static_cast<std::int64_t>(p), tokens[p], true);
    Logits logits(n_vocab);
    Status s = m.engine->Forward(batch, kv, logits);
    EXPECT_TRUE(s.IsOk()) << s.ToString();
    out.push_back(std::move(logits));
  }
  return out;
}

inline bool SameBits(const Logits& a, const Logits& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Runs the sequence's pending tokens (from its cached length) as one prefill with logits for every
// position, commits, and returns position -> logits.
inline std::map<std::int64_t, Logits> PrefillAll(const TinyModel& m, KvManager& kv, engine::SeqId seq) {
  std::map<std::int64_t, Logits> out;
  auto start = kv.Length(seq);
  auto tokens = kv.Tokens(seq);
  EXPECT_TRUE(start.IsOk() && tokens.IsOk());
  const std::int64_t n = static_cast<std::int64_t>(tokens->size());
  if (*start >= n) return out;
  engine::Batch batch;
  for (std::int64_t p = *start; p < n; ++p) batch.Add(seq, p, (*tokens)[static_cast<std::size_t>(p)], true);
  const std::size_t n_vocab = static_cast<std::size_t>(m.model->Hparams().n_vocab);
  std::vector<float> logits(batch.NumLogits() * n_vocab);
  Status s = m.engine->Forward(batch, kv, logits);
  EXPECT_TRUE(s.IsOk()) << s.ToString();
  if (!s.IsOk()) return out;
  EXPECT_TRUE(kv.Commit(seq).IsOk());
  for (std::int64_t p = *start; p < n; ++p) {
    auto row = logits.begin() + static_cast<std::ptrdiff_t>(static_cast<std::size_t>(p - *start) * n_vocab);
    out[p] = Logits(row, row + static_cast<std::ptrdiff_t>(n_vocab));
  }
  return out;
}

// Expects every position the prefill computed to match the reference bit for bit.
inline void ExpectMatchesReference(const std::map<std::int64_t, Logits>& got,
                                   const std::vector<Logits>& want) {
  for (const auto& [pos, logits] : got) {
    ASSERT_LT(static_cast<std::size_t>(pos), want.size());
    EXPECT_TRUE(SameBits(logits, want[static_cast<std::size_t>(pos)])) << "logits differ at position " << pos;
  }
}

inline KvOptions TinyKvOptions(const TinyModel& m, const std::string& dir, std::int64_t ram_blocks,
                               std::int64_t block_tokens = 16,
                               engine::KvDtype dtype = engine::KvDtype::kF16) {
  KvOptions o;
  o.model_fingerprint = m.fingerprint;
  o.geometry = m.model->KvGeometryFor(dtype);
  o.block_tokens = block_tokens;
  BlockLayout layout{o.geometry, block_tokens};
  o.ram_bytes = ram_blocks * static_cast<std::int64_t>(layout.BlockBytes());
  o.snapshot_dir = dir;
  o.disk_bytes = dir.empty() ? 0 : std::int64_t{1} << 30;
  return o;
}

inline std::unique_ptr<KvManager> OpenKv(const KvOptions& options) {
  auto kv = KvManager::Open(options);
  EXPECT_TRUE(kv.IsOk()) << kv.GetStatus().ToString();
  return kv.IsOk() ? std::move(kv).Value() : nullptr;
}

}  // namespace llmsync::kvcache::testing
