#include <gtest/gtest.h>

#include <cstring>

#include "../base/test_dir.h"
#include "engine/gguf/gguf_reader.h"
#include "engine/gguf/gguf_writer.h"
#include "shared_dir.h"

namespace llmsync::engine {
namespace {

std::span<const std::uint8_t> AsBytes(const std::string& s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

GgufWriter SampleWriter() {
  GgufWriter w;
  w.SetString("general.architecture", "llama");
  w.SetUint32("llama.block_count", 2);
  w.SetInt32("test.negative", -7);
  w.SetUint64("test.big", 1ULL << 40);
  w.SetFloat32("llama.rope.freq_base", 10000.0f);
  w.SetBool("tokenizer.ggml.add_bos_token", true);
  w.SetStringArray("tokenizer.ggml.tokens", {"a", "b", "\xe4\xbd\xa0"});
  w.SetFloat32Array("tokenizer.ggml.scores", {0.5f, -1.0f, 2.0f});
  w.SetInt32Array("tokenizer.ggml.token_type", {1, 1, 3});
  std::vector<std::uint8_t> f32(4 * 8);
  for (std::size_t i = 0; i < f32.size(); ++i) f32[i] = static_cast<std::uint8_t>(i);
  EXPECT_TRUE(w.AddTensor("a.weight", GgmlType::kF32, {4, 2}, f32).IsOk());
  std::vector<std::uint8_t> q8(34 * 3, 0x11);
  EXPECT_TRUE(w.AddTensor("b.weight", GgmlType::kQ8_0, {32, 3}, q8).IsOk());
  return w;
}

TEST(GgufTest, RoundTripMetadataAndTensors) {
  std::string image = SampleWriter().Serialize();
  auto file = GgufFile::Parse(AsBytes(image));
  ASSERT_TRUE(file.IsOk()) << file.GetStatus().ToString();
  const GgufFile& f = **file;
  EXPECT_EQ(f.Version(), 3u);
  EXPECT_EQ(f.Metadata().size(), 9u);
  EXPECT_EQ(*f.GetString("general.architecture"), "llama");
  EXPECT_EQ(*f.GetUint("llama.block_count"), 2u);
  EXPECT_EQ(*f.GetInt("test.negative"), -7);
  EXPECT_EQ(*f.GetUint("test.big"), 1ULL << 40);
  EXPECT_EQ(*f.GetFloat("llama.rope.freq_base"), 10000.0);
  EXPECT_TRUE(*f.GetBool("tokenizer.ggml.add_bos_token"));
  auto tokens = f.GetStringArray("tokenizer.ggml.tokens");
  ASSERT_TRUE(tokens.IsOk());
  EXPECT_EQ(*tokens, (std::vector<std::string_view>{"a", "b", "\xe4\xbd\xa0"}));
  EXPECT_EQ(*f.GetFloatArray("tokenizer.ggml.scores"), (std::vector<float>{0.5f, -1.0f, 2.0f}));
  EXPECT_EQ(*f.GetIntArray("tokenizer.ggml.token_type"), (std::vector<std::int64_t>{1, 1, 3}));

  ASSERT_EQ(f.Tensors().size(), 2u);
  const GgufTensorInfo* a = f.FindTensor("a.weight");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->type, GgmlType::kF32);
  EXPECT_EQ(a->dims, (std::vector<std::int64_t>{4, 2}));
  EXPECT_EQ(a->n_bytes, 32u);
  EXPECT_EQ(a->data[5], 5);
  EXPECT_EQ(a->ShapeString(), "[4, 2]");
  const GgufTensorInfo* b = f.FindTensor("b.weight");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->n_bytes, 102u);
  EXPECT_EQ(b->Rows(), 3);
  EXPECT_EQ(b->offset % 32, 0u);
  EXPECT_EQ(f.DataOffset() % 32, 0u);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(b->data.data()) - reinterpret_cast<std::uintptr_t>(image.data()),
            f.DataOffset() + b->offset);
}

TEST(GgufTest, TypedGettersReportMissingAndMismatched) {
  std::string image = SampleWriter().Serialize();
  auto file = GgufFile::Parse(AsBytes(image));
  ASSERT_TRUE(file.IsOk());
  const GgufFile& f = **file;
  EXPECT_EQ(f.GetString("nope").GetStatus().Code(), StatusCode::kNotFound);
  auto mismatch = f.GetString("llama.block_count");
  ASSERT_FALSE(mismatch.IsOk());
  EXPECT_EQ(mismatch.GetStatus().Code(), StatusCode::kInvalidArgument);
  EXPECT_NE(mismatch.GetStatus().Message().find("uint32"), std::string::npos);
  EXPECT_EQ(f.GetUint("test.negative").GetStatus().Code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(f.GetStringArray("tokenizer.ggml.scores").GetStatus().Code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(f.FindTensor("missing"), nullptr);
}

TEST(GgufTest, CopyValueReproducesArraysVerbatim) {
  std::string image = SampleWriter().Serialize();
  auto src = GgufFile::Parse(AsBytes(image));
  ASSERT_TRUE(src.IsOk());
  GgufWriter w;
  for (const GgufKeyValue& kv : (*src)->Metadata()) w.CopyValue(kv.key, kv.value);
  w.SetUint32("llama.block_count", 5);  // replaces in place
  std::string copy = w.Serialize();
  auto dst = GgufFile::Parse(AsBytes(copy));
  ASSERT_TRUE(dst.IsOk()) << dst.GetStatus().ToString();
  EXPECT_EQ(*(*dst)->GetUint("llama.block_count"), 5u);
  EXPECT_EQ(*(*dst)->GetStringArray("tokenizer.ggml.tokens"),
            *(*src)->GetStringArray("tokenizer.ggml.tokens"));
  EXPECT_EQ((*dst)->Metadata()[1].key, "llama.block_count") << "replacement keeps insertion order";
}

TEST(GgufTest, EveryTruncationIsACleanError) {
  std::string image = SampleWriter().Serialize();
  for (std::size_t len = 0; len < image.size(); ++len) {
    std::string prefix = image.substr(0, len);
    auto file = GgufFile::Parse(AsBytes(prefix));
    // The last tensor's padding is not data, so the shortest valid file ends at its last byte.
    if (file.IsOk()) {
      EXPECT_GE(len, image.size() - 31) << "accepted a file truncated to " << len << " bytes";
      continue;
    }
    EXPECT_TRUE(file.GetStatus().Code() == StatusCode::kDataLoss ||
                file.GetStatus().Code() == StatusCode::kInvalidArgument)
        << len << ": " << file.GetStatus().ToString();
  }
}

TEST(GgufTest, RejectsBadHeaders) {
  std::string image = SampleWriter().Serialize();
  std::string bad = image;
  bad[0] = 'X';
  EXPECT_NE(GgufFile::Parse(AsBytes(bad)).GetStatus().Message().find("bad magic"), std::string::npos);
  for (std::uint32_t version : {1u, 4u, 0x03000000u}) {
    bad = image;
    std::memcpy(bad.data() + 4, &version, 4);
    auto r = GgufFile::Parse(AsBytes(bad));
    ASSERT_FALSE(r.IsOk());
    EXPECT_NE(r.GetStatus().Message().find("version"), std::string::npos) << r.GetStatus().Message();
  }
  bad = image;
  std::uint32_t v2 = 2;
  std::memcpy(bad.data() + 4, &v2, 4);
  EXPECT_TRUE(GgufFile::Parse(AsBytes(bad)).IsOk()) << "version 2 shares the layout of version 3";
}

// Builds a file by hand so that single fields can be made hostile.
struct RawGguf {
  std::string bytes;
  template <typename T>
  RawGguf& Put(T v) {
    bytes.append(reinterpret_cast<const char*>(&v), sizeof(T));
    return *this;
  }
  RawGguf& Str(std::string_view s) {
    Put<std::uint64_t>(s.size());
    bytes.append(s);
    return *this;
  }
  RawGguf& Header(std::uint64_t n_tensors, std::uint64_t n_kv) {
    return Put<std::uint32_t>(0x46554747).Put<std::uint32_t>(3).Put(n_tensors).Put(n_kv);
  }
};

Status ParseRaw(const RawGguf& raw) { return GgufFile::Parse(AsBytes(raw.bytes)).GetStatus(); }

TEST(GgufTest, RejectsHostileMetadata) {
  // A key whose length runs past the end.
  RawGguf long_key;
  long_key.Header(0, 1).Put<std::uint64_t>(1ULL << 62);
  EXPECT_EQ(ParseRaw(long_key).Code(), StatusCode::kDataLoss);
  // A metadata count that cannot fit.
  RawGguf many;
  many.Header(0, 1ULL << 60);
  EXPECT_NE(ParseRaw(many).Message().find("metadata count"), std::string::npos);
  // An array claiming 2^40 elements.
  RawGguf arr;
  arr.Header(0, 1).Str("k").Put<std::uint32_t>(9).Put<std::uint32_t>(4).Put<std::uint64_t>(1ULL << 40);
  Status s = ParseRaw(arr);
  EXPECT_EQ(s.Code(), StatusCode::kDataLoss);
  EXPECT_NE(s.Message().find("array claims"), std::string::npos) << s.Message();
  // Unknown value type, naming the key.
  RawGguf unknown;
  unknown.Header(0, 1).Str("weird").Put<std::uint32_t>(99);
  s = ParseRaw(unknown);
  EXPECT_NE(s.Message().find("weird"), std::string::npos) << s.Message();
  EXPECT_NE(s.Message().find("offset 37"), std::string::npos) << s.Message();
  // A bool that is neither 0 nor 1.
  RawGguf boolean;
  boolean.Header(0, 1).Str("b").Put<std::uint32_t>(7).Put<std::uint8_t>(2);
  EXPECT_EQ(ParseRaw(boolean).Code(), StatusCode::kDataLoss);
  // Duplicate keys.
  RawGguf dup;
  dup.Header(0, 2)
      .Str("k")
      .Put<std::uint32_t>(4)
      .Put<std::uint32_t>(1)
      .Str("k")
      .Put<std::uint32_t>(4)
      .Put<std::uint32_t>(2);
  EXPECT_NE(ParseRaw(dup).Message().find("duplicate key"), std::string::npos);
  // Arrays nested deeper than the limit.
  RawGguf nested;
  nested.Header(0, 1).Str("n").Put<std::uint32_t>(9);
  for (int i = 0; i < 6; ++i) nested.Put<std::uint32_t>(9).Put<std::uint64_t>(1);
  EXPECT_NE(ParseRaw(nested).Message().find("nested"), std::string::npos);
  // An alignment that is not a power of two.
  RawGguf align;
  align.Header(0, 1).Str("general.alignment").Put<std::uint32_t>(4).Put<std::uint32_t>(24);
  EXPECT_NE(ParseRaw(align).Message().find("alignment"), std::string::npos);
}

TEST(GgufTest, RejectsHostileTensorInfos) {
  auto tensor = [](std::uint32_t n_dims, std::vector<std::uint64_t> dims, std::uint32_t type,
                   std::uint64_t offset, std::size_t data_bytes) {
    RawGguf r;
    r.Header(1, 0).Str("t").Put(n_dims);
    for (std::uint64_t d : dims) r.Put(d);
    r.Put(type).Put(offset);
    r.bytes.resize((r.bytes.size() + 31) / 32 * 32 + data_bytes, '\0');
    return r;
  };
  EXPECT_TRUE(ParseRaw(tensor(1, {4}, 0, 0, 16)).IsOk());
  EXPECT_NE(ParseRaw(tensor(5, {1, 1, 1, 1, 1}, 0, 0, 4)).Message().find("dimensions"), std::string::npos);
  EXPECT_NE(ParseRaw(tensor(1, {0}, 0, 0, 0)).Message().find("invalid dimension"), std::string::npos);
  EXPECT_NE(ParseRaw(tensor(2, {1ULL << 40, 1ULL << 40}, 0, 0, 0)).Message().find("invalid dimension"),
            std::string::npos);
  EXPECT_NE(ParseRaw(tensor(1, {4}, 77, 0, 16)).Message().find("unknown tensor type 77"), std::string::npos);
  EXPECT_NE(ParseRaw(tensor(1, {33}, 8, 0, 64)).Message().find("block size"), std::string::npos);
  EXPECT_NE(ParseRaw(tensor(1, {4}, 0, 8, 64)).Message().find("not aligned"), std::string::npos);
  Status past = ParseRaw(tensor(1, {64}, 0, 0, 16));
  EXPECT_EQ(past.Code(), StatusCode::kDataLoss);
  EXPECT_NE(past.Message().find("runs past the end"), std::string::npos) << past.Message();
  EXPECT_NE(ParseRaw(tensor(1, {4}, 0, ~0ULL - 31, 16)).Message().find("runs past the end"),
            std::string::npos);
}

TEST(GgufTest, WriteToAndOpenThroughEnv) {
  testing::TestDir dir;
  std::string path = dir.File("m.gguf");
  ASSERT_TRUE(SampleWriter().WriteTo(Env::Default(), path).IsOk());
  auto file = GgufFile::Open(Env::Default(), path);
  ASSERT_TRUE(file.IsOk()) << file.GetStatus().ToString();
  EXPECT_EQ((*file)->Tensors().size(), 2u);
  EXPECT_EQ(*Env::Default()->ReadFile(path), SampleWriter().Serialize());
  auto missing = GgufFile::Open(Env::Default(), dir.File("none.gguf"));
  EXPECT_EQ(missing.GetStatus().Code(), StatusCode::kNotFound);
}

TEST(GgufTest, WriterRejectsInconsistentTensors) {
  GgufWriter w;
  EXPECT_FALSE(w.AddTensor("x", GgmlType::kF32, {4}, std::vector<std::uint8_t>(15)).IsOk());
  EXPECT_FALSE(w.AddTensor("x", GgmlType::kQ4K, {128}, std::vector<std::uint8_t>(72)).IsOk());
  EXPECT_FALSE(w.AddTensor("x", GgmlType::kF32, {}, {}).IsOk());
  EXPECT_FALSE(w.AddTensor("x", GgmlType::kF32, {0}, {}).IsOk());
}

TEST(GgufTest, FuzzSeedIsAValidFile) {
  auto file = GgufFile::Open(Env::Default(),
                             std::string(LLMSYNC_SOURCE_DIR) + "/tests/fuzz/corpus/gguf/q8_tensor.bin");
  ASSERT_TRUE(file.IsOk()) << file.GetStatus().ToString();
  EXPECT_EQ((*file)->Tensors().size(), 1u);
  EXPECT_EQ((*file)->GetStringArray("tokenizer.ggml.tokens")->size(), 3u);
}

TEST(GgufTest, ReadsRealVocabularies) {
  LLMSYNC_REQUIRE_SHARED("vectors/tokenizer/ggml-vocab-gpt-2.gguf");
  std::string dir = testing::SharedDir() + "/vectors/tokenizer/";
  auto gpt2 = GgufFile::Open(Env::Default(), dir + "ggml-vocab-gpt-2.gguf");
  ASSERT_TRUE(gpt2.IsOk()) << gpt2.GetStatus().ToString();
  EXPECT_EQ(*(*gpt2)->GetString("tokenizer.ggml.model"), "gpt2");
  auto tokens = (*gpt2)->GetStringArray("tokenizer.ggml.tokens");
  ASSERT_TRUE(tokens.IsOk());
  EXPECT_EQ(tokens->size(), 50257u);
  EXPECT_EQ((*tokens)[0], "!");
  auto merges = (*gpt2)->GetStringArray("tokenizer.ggml.merges");
  ASSERT_TRUE(merges.IsOk());
  EXPECT_EQ(merges->size(), 50000u);

  auto spm = GgufFile::Open(Env::Default(), dir + "ggml-vocab-llama-spm.gguf");
  ASSERT_TRUE(spm.IsOk()) << spm.GetStatus().ToString();
  EXPECT_EQ(*(*spm)->GetString("tokenizer.ggml.model"), "llama");
  EXPECT_EQ((*spm)->GetFloatArray("tokenizer.ggml.scores")->size(), 32000u);
}

}  // namespace
}  // namespace llmsync::engine
