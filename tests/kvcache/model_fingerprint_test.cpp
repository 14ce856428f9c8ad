// The model fingerprint changes with anything that changes what the model computes (one weight
// byte, one vocabulary token, a hyperparameter) and with nothing cosmetic (the model's name).
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "../base/test_dir.h"
#include "base/env.h"
#include "engine/gguf/gguf_reader.h"
#include "engine/gguf/gguf_writer.h"
#include "engine/make_test_model.h"
#include "engine/model_fingerprint.h"

namespace llmsync::engine {
namespace {

MakeTestModelOptions Options() {
  MakeTestModelOptions o;
  o.n_embd = 64;
  o.n_layer = 2;
  o.n_head = 4;
  o.n_head_kv = 2;
  o.n_ff = 128;
  return o;
}

std::string Image(const GgufWriter& w) { return w.Serialize(); }

Id Fingerprint(const std::string& image, int threads = 2) {
  auto file = GgufFile::Parse(
      std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(image.data()), image.size()));
  EXPECT_TRUE(file.IsOk()) << file.GetStatus().ToString();
  return file.IsOk() ? ModelFingerprint(**file, threads) : Id();
}

GgufWriter Build(const MakeTestModelOptions& o) {
  auto w = BuildTestModel(Env::Default(), o);
  EXPECT_TRUE(w.IsOk()) << w.GetStatus().ToString();
  return std::move(w).Value();
}

TEST(ModelFingerprint, DeterministicAndIndependentOfThreads) {
  std::string image = Image(Build(Options()));
  Id a = Fingerprint(image, 1);
  EXPECT_FALSE(a.IsZero());
  EXPECT_EQ(a, Fingerprint(image, 4));
  EXPECT_EQ(a, Fingerprint(Image(Build(Options()))));
}

// The api role's way (issue 13): each chunk's pages dropped once hashed, same fingerprint, and
// the mapping still reads the file afterwards.
TEST(ModelFingerprint, ReleasingPagesGivesTheSameFingerprint) {
  llmsync::testing::TestDir dir;
  std::string image = Image(Build(Options()));
  const std::string path = dir.File("m.gguf");
  ASSERT_TRUE(WriteFileAtomically(Env::Default(), path, image).IsOk());
  auto file = GgufFile::Open(Env::Default(), path);
  ASSERT_TRUE(file.IsOk()) << file.GetStatus().ToString();
  const Id released = ModelFingerprint(**file, 2, /*release_pages=*/true);
  EXPECT_EQ(released, Fingerprint(image));
  EXPECT_EQ(ModelFingerprint(**file, 2), released);
}

TEST(ModelFingerprint, OneWeightByteChangesIt) {
  std::string image = Image(Build(Options()));
  auto file = GgufFile::Parse(
      std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(image.data()), image.size()));
  ASSERT_TRUE(file.IsOk());
  const Id before = ModelFingerprint(**file);
  // The last byte of every tensor in turn, so no tensor escapes the data checksum.
  std::vector<std::size_t> offsets;
  for (const GgufTensorInfo& t : (*file)->Tensors()) {
    offsets.push_back(static_cast<std::size_t>(t.data.data() - (*file)->FileBytes().data()) + t.data.size() -
                      1);
  }
  for (std::size_t at : offsets) {
    std::string changed = image;
    changed[at] = static_cast<char>(changed[at] ^ 0x01);
    EXPECT_NE(Fingerprint(changed), before) << "byte at " << at;
  }
}

TEST(ModelFingerprint, OneVocabularyTokenChangesIt) {
  GgufWriter w = Build(Options());
  const Id before = Fingerprint(Image(w));
  std::vector<std::string> tokens;
  for (int i = 0; i < 256; ++i) {
    char buf[16];
    std::snprintf(buf, sizeof(buf), "<0x%02X>", i);
    tokens.push_back(buf);
  }
  w.SetStringArray("tokenizer.ggml.tokens", tokens);
  EXPECT_EQ(Fingerprint(Image(w)), before) << "rewriting the same tokens changes nothing";
  tokens[200] = "hello";
  w.SetStringArray("tokenizer.ggml.tokens", tokens);
  EXPECT_NE(Fingerprint(Image(w)), before);
}

TEST(ModelFingerprint, HyperparametersCountButNamesDoNot) {
  GgufWriter w = Build(Options());
  const Id before = Fingerprint(Image(w));
  w.SetString("general.name", "renamed");
  w.SetString("tokenizer.chat_template", "{{ messages }}");
  EXPECT_EQ(Fingerprint(Image(w)), before);
  w.SetFloat32("llama.rope.freq_base", 500000.0f);
  EXPECT_NE(Fingerprint(Image(w)), before);
  MakeTestModelOptions o = Options();
  o.seed = 2;
  EXPECT_NE(Fingerprint(Image(Build(o))), before);
}

}  // namespace
}  // namespace llmsync::engine
