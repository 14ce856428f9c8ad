// Model loading: hyperparameters and tensors of make-test models for each architecture, and a clear
// Status (never a crash) for every kind of malformed model.
#include "engine/model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include "../base/test_dir.h"
#include "engine/gguf/gguf_writer.h"
#include "engine/quant/quant.h"
#include "gguf_rewrite.h"
#include "test_models.h"

namespace llmsync::engine {
namespace {

using testing::BuildModel;
using testing::BuildModelFromImage;
using testing::GgufEdits;
using testing::RewriteGguf;
using testing::TensorEdit;
using testing::TinyOptions;

std::string TinyImage(ModelArch arch = ModelArch::kLlama, GgmlType type = GgmlType::kF32) {
  auto w = BuildTestModel(Env::Default(), TinyOptions(arch, type));
  EXPECT_TRUE(w.IsOk()) << w.GetStatus().ToString();
  return w->Serialize();
}

// Loads the rewritten image and returns the loader's status.
Status LoadEdited(const GgufEdits& edits, ModelArch arch = ModelArch::kLlama) {
  auto image = RewriteGguf(TinyImage(arch), edits);
  if (!image.IsOk()) return image.GetStatus();
  return BuildModelFromImage(*image).GetStatus();
}

void ExpectError(const Status& s, StatusCode code, const std::string& needle) {
  EXPECT_EQ(s.Code(), code) << s.ToString();
  EXPECT_NE(s.Message().find(needle), std::string::npos) << "'" << needle << "' not in: " << s.Message();
}

// Replaces one metadata key's value.
GgufEdits SetKey(const std::string& key, std::function<void(GgufWriter&)> set) {
  GgufEdits e;
  e.metadata = [key, set](const GgufKeyValue& kv, GgufWriter& w) {
    if (kv.key != key) return true;
    set(w);
    return false;
  };
  return e;
}

TEST(ModelTest, LoadsEachArchitectureWithItsTraits) {
  for (ModelArch arch : {ModelArch::kLlama, ModelArch::kQwen2, ModelArch::kQwen3}) {
    SCOPED_TRACE(std::string(ModelArchName(arch)));
    auto m = BuildModel(TinyOptions(arch, GgmlType::kQ8_0));
    ASSERT_TRUE(m.IsOk()) << m.GetStatus().ToString();
    const Model& model = *m->model;
    const ModelHparams& hp = model.Hparams();
    EXPECT_EQ(hp.arch, arch);
    EXPECT_EQ(hp.n_vocab, 256);
    EXPECT_EQ(hp.n_embd, 64);
    EXPECT_EQ(hp.n_layer, 2);
    EXPECT_EQ(hp.n_head, 4);
    EXPECT_EQ(hp.n_head_kv, 2);
    EXPECT_EQ(hp.head_dim, 16);
    EXPECT_EQ(hp.n_rot, 16);
    EXPECT_EQ(hp.n_ff, 128);
    EXPECT_EQ(hp.rope_style, arch == ModelArch::kLlama ? RopeStyle::kNorm : RopeStyle::kNeox);
    EXPECT_EQ(hp.qkv_bias, arch == ModelArch::kQwen2);
    EXPECT_EQ(hp.qk_norm, arch == ModelArch::kQwen3);
    EXPECT_EQ(model.Layer(1).bq.size(), arch == ModelArch::kQwen2 ? 64u : 0u);
    EXPECT_EQ(model.Layer(1).k_norm.size(), arch == ModelArch::kQwen3 ? 16u : 0u);
    EXPECT_EQ(model.Layer(0).wk.rows, 32);
    EXPECT_EQ(model.Layer(0).wk.cols, 64);
    EXPECT_EQ(model.Layer(0).wk.type, GgmlType::kQ8_0);
    EXPECT_EQ(model.Layer(0).wk.row_bytes, 68u);
    EXPECT_FALSE(model.TiedOutput());
    EXPECT_EQ(model.OutputNorm().size(), 64u);
    EXPECT_EQ(model.KvGeometryFor(KvDtype::kF16), (KvGeometry{2, 2, 16, KvDtype::kF16}));
  }
}

TEST(ModelTest, TiedOutputRopeFactorsAndExplicitHeadDim) {
  MakeTestModelOptions o = TinyOptions(ModelArch::kLlama, GgmlType::kF16);
  o.tie_embeddings = true;
  o.llama3_rope = true;
  auto m = BuildModel(o);
  ASSERT_TRUE(m.IsOk()) << m.GetStatus().ToString();
  EXPECT_TRUE(m->model->TiedOutput());
  EXPECT_EQ(m->model->Output().data, m->model->TokenEmbedding().data);
  ASSERT_EQ(m->model->RopeFreqFactors().size(), 8u);
  EXPECT_EQ(m->model->RopeFreqFactors()[0], 1.0f) << "high frequencies are not scaled";
  EXPECT_EQ(m->model->RopeFreqFactors()[7], 8.0f) << "the lowest frequency is scaled by the full factor";

  o = TinyOptions(ModelArch::kQwen3, GgmlType::kF32);
  o.head_dim = 32;  // qwen3-style: n_head * head_dim != n_embd
  m = BuildModel(o);
  ASSERT_TRUE(m.IsOk()) << m.GetStatus().ToString();
  EXPECT_EQ(m->model->Hparams().head_dim, 32);
  EXPECT_EQ(m->model->Hparams().QDim(), 128);
  EXPECT_EQ(m->model->Layer(0).wo.cols, 128);
}

TEST(ModelTest, MissingTensorIsNamed) {
  GgufEdits e;
  e.tensor = [](TensorEdit& t) { return t.name != "blk.1.ffn_down.weight"; };
  ExpectError(LoadEdited(e), StatusCode::kInvalidArgument, "'blk.1.ffn_down.weight' is missing");
  e.tensor = [](TensorEdit& t) { return t.name != "attn_q.bias" && t.name != "blk.0.attn_q.bias"; };
  ExpectError(LoadEdited(e, ModelArch::kQwen2), StatusCode::kInvalidArgument, "blk.0.attn_q.bias");
  e.tensor = [](TensorEdit& t) { return t.name != "blk.0.attn_k_norm.weight"; };
  ExpectError(LoadEdited(e, ModelArch::kQwen3), StatusCode::kInvalidArgument, "blk.0.attn_k_norm.weight");
}

TEST(ModelTest, WrongShapeIsNamedWithTheExpectedShape) {
  GgufEdits e;
  e.tensor = [](TensorEdit& t) {
    if (t.name == "blk.0.attn_k.weight") {
      t.dims = {64, 64};
      t.data.resize(64 * 64 * 4);
    }
    return true;
  };
  Status s = LoadEdited(e);
  ExpectError(s, StatusCode::kInvalidArgument, "'blk.0.attn_k.weight' has shape [64, 64], expected [64, 32]");
  e.tensor = [](TensorEdit& t) {
    if (t.name == "output_norm.weight") {
      t.dims = {32, 2};
    }
    return true;
  };
  ExpectError(LoadEdited(e), StatusCode::kInvalidArgument, "output_norm.weight");
}

TEST(ModelTest, UnsupportedTensorTypeIsNamed) {
  GgufEdits e;
  e.tensor = [](TensorEdit& t) {
    if (t.name == "blk.1.ffn_up.weight") {  // [64, 128] as q4_1: 2 blocks of 20 bytes per row
      t.type = GgmlType::kQ4_1;
      t.data.assign(128 * 2 * 20, 0);
    }
    return true;
  };
  ExpectError(LoadEdited(e), StatusCode::kUnimplemented, "'blk.1.ffn_up.weight' has type q4_1");
}

TEST(ModelTest, BadHyperparametersAreNamed) {
  ExpectError(LoadEdited(SetKey("general.architecture",
                                [](GgufWriter& w) { w.SetString("general.architecture", "gpt2"); })),
              StatusCode::kUnimplemented, "architecture 'gpt2'");
  GgufEdits drop;
  drop.metadata = [](const GgufKeyValue& kv, GgufWriter&) { return kv.key != "llama.block_count"; };
  ExpectError(LoadEdited(drop), StatusCode::kInvalidArgument, "'llama.block_count' is missing");
  ExpectError(LoadEdited(SetKey("llama.attention.head_count_kv",
                                [](GgufWriter& w) { w.SetUint32("llama.attention.head_count_kv", 3); })),
              StatusCode::kInvalidArgument, "head_count_kv");
  ExpectError(LoadEdited(SetKey("llama.embedding_length",
                                [](GgufWriter& w) { w.SetString("llama.embedding_length", "64"); })),
              StatusCode::kInvalidArgument, "llama.embedding_length");
  ExpectError(LoadEdited(SetKey("llama.embedding_length",
                                [](GgufWriter& w) { w.SetUint64("llama.embedding_length", 1ULL << 40); })),
              StatusCode::kInvalidArgument, "outside");
  ExpectError(
      LoadEdited(SetKey("llama.block_count", [](GgufWriter& w) { w.SetUint32("llama.block_count", 3); })),
      StatusCode::kInvalidArgument, "'blk.2.attn_norm.weight' is missing");
  ExpectError(
      LoadEdited(SetKey("llama.vocab_size", [](GgufWriter& w) { w.SetUint32("llama.vocab_size", 300); })),
      StatusCode::kInvalidArgument, "vocab_size");
  ExpectError(LoadEdited(SetKey("llama.rope.dimension_count",
                                [](GgufWriter& w) { w.SetUint32("llama.rope.dimension_count", 17); })),
              StatusCode::kInvalidArgument, "rope.dimension_count");
  GgufEdits yarn;
  yarn.extra = [](GgufWriter& w) { w.SetString("llama.rope.scaling.type", "yarn"); };
  ExpectError(LoadEdited(yarn), StatusCode::kUnimplemented, "yarn");
  GgufEdits eps;
  eps.metadata = [](const GgufKeyValue& kv, GgufWriter& w) {
    if (kv.key != "llama.attention.layer_norm_rms_epsilon") return true;
    w.SetFloat32("llama.attention.layer_norm_rms_epsilon", -1.0f);
    return false;
  };
  ExpectError(LoadEdited(eps), StatusCode::kInvalidArgument, "layer_norm_rms_epsilon");
}

TEST(ModelTest, LinearRopeScalingIsRead) {
  GgufEdits e;
  e.extra = [](GgufWriter& w) {
    w.SetString("llama.rope.scaling.type", "linear");
    w.SetFloat32("llama.rope.scaling.factor", 4.0f);
  };
  auto image = RewriteGguf(TinyImage(), e);
  ASSERT_TRUE(image.IsOk());
  auto m = BuildModelFromImage(*image);
  ASSERT_TRUE(m.IsOk()) << m.GetStatus().ToString();
  EXPECT_EQ(m->model->Hparams().rope_freq_scale, 0.25f);
}

TEST(ModelTest, BadRopeFactorsAreRejected) {
  MakeTestModelOptions o = TinyOptions(ModelArch::kLlama, GgmlType::kF32);
  o.llama3_rope = true;
  auto w = BuildTestModel(Env::Default(), o);
  ASSERT_TRUE(w.IsOk());
  GgufEdits e;
  e.tensor = [](TensorEdit& t) {
    if (t.name == "rope_freqs.weight") std::fill(t.data.begin(), t.data.end(), 0);
    return true;
  };
  auto image = RewriteGguf(w->Serialize(), e);
  ASSERT_TRUE(image.IsOk());
  ExpectError(BuildModelFromImage(*image).GetStatus(), StatusCode::kInvalidArgument, "rope_freqs.weight");
}

// Open(kHugePageCopy) copies the streamed matrices into huge-page memory (ResidentWeights): the
// same bytes as the file's, 64-byte aligned, outside the mapping; the token embedding stays mapped
// unless tied to the output. The default, and LLMSYNC_WEIGHTS=map, keep everything mapped.
TEST(ModelTest, OpenCopiesStreamedMatricesWhenAsked) {
  llmsync::testing::TestDir dir;
  for (bool tied : {false, true}) {
    MakeTestModelOptions o = TinyOptions(ModelArch::kLlama, GgmlType::kQ4K);
    o.tie_embeddings = tied;
    auto w = BuildTestModel(Env::Default(), o);
    ASSERT_TRUE(w.IsOk()) << w.GetStatus().ToString();
    const std::string path = dir.File(tied ? "tied.gguf" : "untied.gguf");
    ASSERT_TRUE(w->WriteTo(Env::Default(), path).IsOk());
    auto mapped = Model::Open(Env::Default(), path);
    ASSERT_EQ(::setenv("LLMSYNC_WEIGHTS", "map", 1), 0);
    auto forced = Model::Open(Env::Default(), path, Model::Placement::kHugePageCopy);
    ASSERT_EQ(::unsetenv("LLMSYNC_WEIGHTS"), 0);
    auto copied = Model::Open(Env::Default(), path, Model::Placement::kHugePageCopy);
    ASSERT_TRUE(mapped.IsOk() && forced.IsOk() && copied.IsOk());
    auto in_file = [](const Model& m, const WeightMatrix& x) {
      const std::span<const std::uint8_t> file = m.File().FileBytes();
      return x.data >= file.data() && x.data < file.data() + file.size();
    };
    const auto same_bytes = [](const WeightMatrix& a, const WeightMatrix& b) {
      return std::memcmp(a.data, b.data, a.row_bytes * static_cast<std::uint64_t>(a.rows)) == 0;
    };
    const LayerWeights& lm = (*mapped)->Layer(1);
    const LayerWeights& lc = (*copied)->Layer(1);
    for (auto [m, c] : {std::pair{&lm.wq, &lc.wq}, {&lm.wv, &lc.wv}, {&lm.w_down, &lc.w_down}}) {
      EXPECT_TRUE(in_file(**mapped, *m));
      EXPECT_TRUE(in_file(**forced, (*forced)->Layer(1).wq));
      EXPECT_FALSE(in_file(**copied, *c));
      EXPECT_EQ(reinterpret_cast<std::uintptr_t>(c->data) % 64, 0u);
      EXPECT_TRUE(same_bytes(*m, *c));
    }
    EXPECT_TRUE(same_bytes((*mapped)->Output(), (*copied)->Output()));
    EXPECT_NE(in_file(**copied, (*copied)->TokenEmbedding()), tied) << "tied " << tied;
    EXPECT_EQ((*copied)->Output().data == (*copied)->TokenEmbedding().data, tied);
  }
}

TEST(ModelTest, OpenReportsThePath) {
  auto m = Model::Open(Env::Default(), "/nonexistent/model.gguf");
  ASSERT_FALSE(m.IsOk());
  EXPECT_NE(m.GetStatus().Message().find("/nonexistent/model.gguf"), std::string::npos)
      << m.GetStatus().ToString();
}

TEST(MakeTestModelTest, IsDeterministicAndFallsBackPerTensor) {
  MakeTestModelOptions o = TinyOptions(ModelArch::kLlama, GgmlType::kQ4K);
  o.n_embd = 64;  // rows of 64 cannot be q4_K
  o.n_ff = 256;   // but ffn_down rows (n_ff) can
  auto a = BuildTestModel(Env::Default(), o);
  auto b = BuildTestModel(Env::Default(), o);
  ASSERT_TRUE(a.IsOk() && b.IsOk());
  EXPECT_EQ(a->Serialize(), b->Serialize());
  auto m = BuildModelFromImage(a->Serialize());
  ASSERT_TRUE(m.IsOk()) << m.GetStatus().ToString();
  EXPECT_EQ(m->model->Layer(0).wq.type, GgmlType::kQ4_0);
  EXPECT_EQ(m->model->Layer(0).w_down.type, GgmlType::kQ4K);
  EXPECT_EQ(TestModelTensorType(GgmlType::kQ6K, 96), GgmlType::kQ8_0);
  EXPECT_EQ(TestModelTensorType(GgmlType::kQ8_0, 48), GgmlType::kF16);
  o.seed = 8;
  auto c = BuildTestModel(Env::Default(), o);
  ASSERT_TRUE(c.IsOk());
  EXPECT_NE(a->Serialize(), c->Serialize());
}

TEST(MakeTestModelTest, WeightsHaveTheRequestedDistribution) {
  MakeTestModelOptions o = TinyOptions(ModelArch::kLlama, GgmlType::kF32);
  o.weight_std = 0.02f;
  auto m = BuildModel(o);
  ASSERT_TRUE(m.IsOk());
  const WeightMatrix& w = m->model->Layer(0).w_up;
  std::vector<float> row(static_cast<std::size_t>(w.cols));
  double sum = 0, sum_sq = 0;
  for (std::int64_t r = 0; r < w.rows; ++r) {
    DequantizeRow(w.type, w.Row(r), row.data(), w.cols);
    for (float v : row) {
      sum += v;
      sum_sq += static_cast<double>(v) * v;
    }
  }
  double n = static_cast<double>(w.rows * w.cols);
  EXPECT_NEAR(sum / n, 0.0, 0.001);
  EXPECT_NEAR(std::sqrt(sum_sq / n), 0.02, 0.001);
  double norm_sum = 0;
  for (float v : m->model->Layer(0).attn_norm) norm_sum += v;
  EXPECT_NEAR(norm_sum / 64, 1.0, 0.05);
}

TEST(MakeTestModelTest, RejectsBadOptions) {
  auto bad = [](auto mutate) {
    MakeTestModelOptions o = TinyOptions(ModelArch::kLlama, GgmlType::kF32);
    mutate(o);
    return BuildTestModel(Env::Default(), o).GetStatus().Code();
  };
  EXPECT_EQ(bad([](MakeTestModelOptions& o) { o.n_head_kv = 3; }), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad([](MakeTestModelOptions& o) { o.n_embd = 0; }), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad([](MakeTestModelOptions& o) { o.n_embd = 66; }), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad([](MakeTestModelOptions& o) { o.type = GgmlType::kQ5K; }), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad([](MakeTestModelOptions& o) { o.vocab_size = 100; }), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad([](MakeTestModelOptions& o) { o.vocab_path = "/nonexistent.gguf"; }), StatusCode::kNotFound);
  EXPECT_EQ(bad([](MakeTestModelOptions& o) {
              o.arch = ModelArch::kQwen2;
              o.llama3_rope = true;
            }),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(bad([](MakeTestModelOptions& o) { o.q4_k_m = true; }), StatusCode::kInvalidArgument);  // f32
}

// The Q4_K_M mix, as llama-quantize lays it out for 16 layers: Q6_K for the output and for attn_v
// and ffn_down in layers 0, 1, 4, 7, 10, 13, 14, 15; Q4_K everywhere else.
TEST(MakeTestModelTest, Q4KMMixesQ6KWhereLlamaCppDoes) {
  MakeTestModelOptions o = TinyOptions(ModelArch::kLlama, GgmlType::kQ4K);
  o.n_embd = 256;
  o.n_ff = 256;
  o.n_head = 2;
  o.n_head_kv = 1;
  o.n_layer = 16;
  o.q4_k_m = true;
  auto w = BuildTestModel(Env::Default(), o);
  ASSERT_TRUE(w.IsOk()) << w.GetStatus().ToString();
  auto m = BuildModelFromImage(w->Serialize());
  ASSERT_TRUE(m.IsOk()) << m.GetStatus().ToString();
  EXPECT_EQ(m->model->Output().type, GgmlType::kQ6K);
  EXPECT_EQ(m->model->TokenEmbedding().type, GgmlType::kQ4K);
  std::vector<std::int64_t> more_bits;
  for (std::int64_t i = 0; i < o.n_layer; ++i) {
    const LayerWeights& l = m->model->Layer(i);
    EXPECT_EQ(l.wq.type, GgmlType::kQ4K);
    EXPECT_EQ(l.w_up.type, GgmlType::kQ4K);
    EXPECT_EQ(l.wv.type, l.w_down.type);
    if (l.wv.type == GgmlType::kQ6K) more_bits.push_back(i);
  }
  EXPECT_EQ(more_bits, (std::vector<std::int64_t>{0, 1, 4, 7, 10, 13, 14, 15}));
  auto type = m->model->File().GetUint("general.file_type");
  ASSERT_TRUE(type.IsOk());
  EXPECT_EQ(*type, 15u);  // LLAMA_FTYPE_MOSTLY_Q4_K_M
}

}  // namespace
}  // namespace llmsync::engine
