// Helpers for engine tests: tiny make-test models built in memory, and running token sequences
// through an Engine.
//
// Thread safety: test helpers; not shared between threads.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "engine/gguf/gguf_reader.h"
#include "engine/make_test_model.h"
#include "engine/model.h"

namespace llmsync::engine::testing {

// A model whose GGUF image lives in memory; the image outlives the parsed file and the model.
struct InMemoryModel {
  std::unique_ptr<std::string> image;
  std::unique_ptr<Model> model;
};

inline MakeTestModelOptions TinyOptions(ModelArch arch, GgmlType type) {
  MakeTestModelOptions o;
  o.arch = arch;
  o.type = type;
  o.n_embd = 64;
  o.n_layer = 2;
  o.n_head = 4;
  o.n_head_kv = 2;
  o.n_ff = 128;
  o.weight_std = 0.1f;
  o.seed = 7;
  if (type == GgmlType::kQ4K || type == GgmlType::kQ6K) {  // rows of 256 for pure K-quant tensors
    o.n_embd = 256;
    o.n_ff = 512;
    o.weight_std = 0.05f;
  }
  return o;
}

inline std::span<const std::uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

inline Result<InMemoryModel> BuildModelFromImage(std::string image) {
  InMemoryModel m;
  m.image = std::make_unique<std::string>(std::move(image));
  LLMSYNC_ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> file, GgufFile::Parse(Bytes(*m.image)));
  LLMSYNC_ASSIGN_OR_RETURN(m.model, Model::FromGguf(std::move(file)));
  return m;
}

inline Result<InMemoryModel> BuildModel(const MakeTestModelOptions& options) {
  LLMSYNC_ASSIGN_OR_RETURN(GgufWriter writer, BuildTestModel(Env::Default(), options));
  return BuildModelFromImage(writer.Serialize());
}

inline std::unique_ptr<Engine> MakeEngine(const Model& model, int threads, std::int64_t max_batch = 256) {
  EngineOptions options;
  options.n_threads = threads;
  options.max_batch_tokens = max_batch;
  auto engine = Engine::Create(model, options);
  EXPECT_TRUE(engine.IsOk()) << engine.GetStatus().ToString();
  return engine.IsOk() ? std::move(engine).Value() : nullptr;
}

// Deterministic pseudo-random token ids in [0, n_vocab).
inline std::vector<std::int32_t> TestTokens(std::size_t n, std::int64_t n_vocab, std::uint32_t salt = 0) {
  std::vector<std::int32_t> tokens;
  std::uint32_t x = 2463534242u ^ salt;
  for (std::size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    tokens.push_back(static_cast<std::int32_t>(x % static_cast<std::uint32_t>(n_vocab)));
  }
  return tokens;
}

}  // namespace llmsync::engine::testing
