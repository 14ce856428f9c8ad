#include "engine/make_test_model.h"

#include <cmath>
#include <cstdio>
#include <numbers>
#include <vector>

#include "engine/gguf/gguf_reader.h"
#include "engine/quant/quant.h"
#include "engine/readable_vocab.h"
#include "engine/rng.h"

namespace llmsync::engine {
namespace {

constexpr std::int64_t kMaxTestDim = 1 << 16;
constexpr std::int32_t kTokenTypeNormal = 1;
constexpr std::int32_t kTokenTypeByte = 6;

// Seeded normal(mean, std) values; `stream` separates the tensors of one file.
class NormalSource {
 public:
  NormalSource(std::uint64_t seed, std::uint64_t stream) : seed_(seed), stream_(stream) {}

  void Fill(float mean, float std, std::vector<float>& out) {
    for (float& v : out) v = mean + std * Next();
  }

 private:
  float Next() {
    if (have_spare_) {
      have_spare_ = false;
      return spare_;
    }
    // u1 in (0, 1], u2 in [0, 1): Box-Muller gives two independent standard normals.
    double u1 = 1.0 - CounterUniform(seed_, counter_++, stream_);
    double u2 = CounterUniform(seed_, counter_++, stream_);
    double r = std::sqrt(-2.0 * std::log(u1));
    double angle = 2.0 * std::numbers::pi * u2;
    spare_ = static_cast<float>(r * std::sin(angle));
    have_spare_ = true;
    return static_cast<float>(r * std::cos(angle));
  }

  std::uint64_t seed_;
  std::uint64_t stream_;
  std::uint64_t counter_ = 0;
  bool have_spare_ = false;
  float spare_ = 0.0f;
};

// llama.cpp's ftype number for a file whose matrices are mostly `type` (general.file_type).
std::uint32_t FileTypeOf(GgmlType type, bool q4_k_m) {
  if (q4_k_m) return 15;  // LLAMA_FTYPE_MOSTLY_Q4_K_M
  switch (type) {
    case GgmlType::kF32: return 0;
    case GgmlType::kF16: return 1;
    case GgmlType::kQ4_0: return 2;
    case GgmlType::kQ8_0: return 7;
    case GgmlType::kQ4K: return 14;  // Q4_K_S: every matrix q4_K
    case GgmlType::kQ6K: return 18;
    case GgmlType::kBf16: return 32;
    default: return 0;
  }
}

// Meta's llama3 rope scaling (factor 8, low/high frequency factors 1 and 4, original context
// 8192), as the factors GGUF files carry in rope_freqs.weight: theta_i is divided by factor_i.
std::vector<float> Llama3RopeFactors(std::int64_t n_rot, float freq_base) {
  const double factor = 8.0;
  const double low_freq_factor = 1.0;
  const double high_freq_factor = 4.0;
  const double old_ctx = 8192.0;
  const double low_freq_wavelen = old_ctx / low_freq_factor;
  const double high_freq_wavelen = old_ctx / high_freq_factor;
  std::vector<float> factors;
  for (std::int64_t i = 0; i < n_rot / 2; ++i) {
    double freq = 1.0 / std::pow(static_cast<double>(freq_base),
                                 2.0 * static_cast<double>(i) / static_cast<double>(n_rot));
    double wavelen = 2.0 * std::numbers::pi / freq;
    double f = 1.0;
    if (wavelen > low_freq_wavelen) {
      f = factor;
    } else if (wavelen >= high_freq_wavelen) {
      double smooth = (old_ctx / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
      f = 1.0 / ((1.0 - smooth) / factor + smooth);
    }
    factors.push_back(static_cast<float>(f));
  }
  return factors;
}

class TensorMaker {
 public:
  TensorMaker(GgufWriter& writer, std::uint64_t seed) : writer_(writer), seed_(seed) {}

  // A matrix of `rows` rows of `cols` elements (GGUF dims [cols, rows]).
  // `row_scale`, when not empty, multiplies row r's standard deviation by row_scale[r].
  Status Matrix(const std::string& name, std::int64_t rows, std::int64_t cols, GgmlType requested, float std,
                const std::vector<float>& row_scale = {}) {
    GgmlType type = TestModelTensorType(requested, cols);
    LLMSYNC_ASSIGN_OR_RETURN(std::uint64_t row_bytes, RowBytes(type, static_cast<std::uint64_t>(cols)));
    std::vector<std::uint8_t> data(row_bytes * static_cast<std::uint64_t>(rows));
    NormalSource source(seed_, ++stream_);
    std::vector<float> row(static_cast<std::size_t>(cols));
    for (std::int64_t r = 0; r < rows; ++r) {
      source.Fill(0.0f, std, row);
      if (!row_scale.empty()) {
        for (float& x : row) x *= row_scale[static_cast<std::size_t>(r)];
      }
      QuantizeRow(type, row.data(), data.data() + static_cast<std::uint64_t>(r) * row_bytes, cols);
    }
    return writer_.AddTensor(name, type, {cols, rows}, std::move(data));
  }

  Status Vector(const std::string& name, std::int64_t n, float mean, float std) {
    std::vector<float> v(static_cast<std::size_t>(n));
    NormalSource(seed_, ++stream_).Fill(mean, std, v);
    return Floats(name, v);
  }

  Status Floats(const std::string& name, const std::vector<float>& v) {
    std::vector<std::uint8_t> data(v.size() * sizeof(float));
    QuantizeRow(GgmlType::kF32, v.data(), data.data(), static_cast<std::int64_t>(v.size()));
    return writer_.AddTensor(name, GgmlType::kF32, {static_cast<std::int64_t>(v.size())}, std::move(data));
  }

 private:
  GgufWriter& writer_;
  std::uint64_t seed_;
  std::uint64_t stream_ = 0;
};

// Writes the readable vocabulary; `row_scale` receives its output.weight row scales.
std::int64_t WriteReadableVocabulary(GgufWriter& w, std::vector<float>* row_scale) {
  ReadableVocab v = BuildReadableVocab();
  w.SetString("tokenizer.ggml.model", "llama");
  w.SetStringArray("tokenizer.ggml.tokens", v.tokens);
  w.SetFloat32Array("tokenizer.ggml.scores", v.scores);
  w.SetInt32Array("tokenizer.ggml.token_type", v.types);
  w.SetUint32("tokenizer.ggml.unknown_token_id", static_cast<std::uint32_t>(v.unk_id));
  w.SetUint32("tokenizer.ggml.bos_token_id", static_cast<std::uint32_t>(v.bos_id));
  w.SetUint32("tokenizer.ggml.eos_token_id", static_cast<std::uint32_t>(v.eos_id));
  w.SetString("llmsync.test_vocab", kReadableVocabTag);
  *row_scale = std::move(v.output_row_scale);
  return static_cast<std::int64_t>(v.tokens.size());
}

Result<std::int64_t> WriteVocabulary(Env* env, const MakeTestModelOptions& o, GgufWriter& w,
                                     std::vector<float>* row_scale) {
  if (o.readable_vocab) return WriteReadableVocabulary(w, row_scale);
  if (o.vocab_path.empty()) {
    std::int64_t n = o.vocab_size == 0 ? 256 : o.vocab_size;
    std::vector<std::string> tokens;
    std::vector<std::int32_t> types;
    for (int b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof(name), "<0x%02X>", b);
      tokens.emplace_back(name);
      types.push_back(kTokenTypeByte);
    }
    for (std::int64_t i = 256; i < n; ++i) {
      tokens.push_back("<extra_" + std::to_string(i) + ">");
      types.push_back(kTokenTypeNormal);
    }
    w.SetString("tokenizer.ggml.model", "llama");
    w.SetStringArray("tokenizer.ggml.tokens", tokens);
    w.SetFloat32Array("tokenizer.ggml.scores", std::vector<float>(tokens.size(), 0.0f));
    w.SetInt32Array("tokenizer.ggml.token_type", types);
    return n;
  }
  auto vocab = GgufFile::Open(env, o.vocab_path);
  if (!vocab.IsOk()) return vocab.GetStatus().WithContext("vocab " + o.vocab_path);
  auto tokens = (*vocab)->GetArray("tokenizer.ggml.tokens");
  if (!tokens.IsOk()) {
    return Status::InvalidArgument("vocab " + o.vocab_path + " has no tokenizer.ggml.tokens array");
  }
  std::int64_t n = static_cast<std::int64_t>((*tokens)->items.size());
  if (n < 1 || n > (std::int64_t{1} << 31) - 1) {
    return Status::InvalidArgument("vocab " + o.vocab_path + " has " + std::to_string(n) + " tokens");
  }
  for (const GgufKeyValue& kv : (*vocab)->Metadata()) {
    if (kv.key.substr(0, 10) == "tokenizer.") w.CopyValue(kv.key, kv.value);
  }
  return n;
}

}  // namespace

bool Q4KMUsesMoreBits(std::int64_t layer, std::int64_t n_layer) {
  return layer < n_layer / 8 || layer >= 7 * n_layer / 8 || (layer - n_layer / 8) % 3 == 2;
}

GgmlType TestModelTensorType(GgmlType requested, std::int64_t cols) {
  if (cols % GetGgmlTypeInfo(requested).block_elems == 0) return requested;
  if (cols % 32 == 0 && requested == GgmlType::kQ4K) return GgmlType::kQ4_0;
  if (cols % 32 == 0 && requested == GgmlType::kQ6K) return GgmlType::kQ8_0;
  return GgmlType::kF16;
}

Status ValidateMakeTestModelOptions(const MakeTestModelOptions& o) {
  auto in_range = [](std::int64_t v, std::int64_t lo, const char* what) -> Status {
    if (v < lo || v > kMaxTestDim) {
      return Status::InvalidArgument(std::string(what) + " must be in [" + std::to_string(lo) + ", " +
                                     std::to_string(kMaxTestDim) + "], got " + std::to_string(v));
    }
    return Status::Ok();
  };
  LLMSYNC_RETURN_IF_ERROR(in_range(o.n_embd, 2, "n_embd"));
  LLMSYNC_RETURN_IF_ERROR(in_range(o.n_layer, 1, "n_layer"));
  LLMSYNC_RETURN_IF_ERROR(in_range(o.n_head, 1, "n_head"));
  LLMSYNC_RETURN_IF_ERROR(in_range(o.n_head_kv, 1, "n_head_kv"));
  LLMSYNC_RETURN_IF_ERROR(in_range(o.n_ff, 1, "n_ff"));
  LLMSYNC_RETURN_IF_ERROR(in_range(o.context_length, 1, "context_length"));
  if (o.head_dim != 0) LLMSYNC_RETURN_IF_ERROR(in_range(o.head_dim, 2, "head_dim"));
  if (o.n_head % o.n_head_kv != 0) return Status::InvalidArgument("n_head must be a multiple of n_head_kv");
  if (o.head_dim == 0 && o.n_embd % o.n_head != 0) {
    return Status::InvalidArgument("n_embd must be a multiple of n_head (or pass head_dim)");
  }
  std::int64_t head_dim = o.head_dim != 0 ? o.head_dim : o.n_embd / o.n_head;
  if (head_dim % 2 != 0) return Status::InvalidArgument("the head dimension must be even");
  if (!IsComputeSupported(o.type)) {
    return Status::InvalidArgument("type " + std::string(GgmlTypeName(o.type)) +
                                   " is not one llmsync computes with");
  }
  if (o.readable_vocab && (!o.vocab_path.empty() || o.vocab_size != 0)) {
    return Status::InvalidArgument("the readable vocabulary excludes a vocab file and vocab_size");
  }
  if (o.vocab_size != 0 && (!o.vocab_path.empty() || o.vocab_size < 256 || o.vocab_size > (1 << 20))) {
    return Status::InvalidArgument(
        "vocab_size applies to the built-in byte vocabulary and must be in [256, 2^20]");
  }
  if (!(o.weight_std > 0.0f && std::isfinite(o.weight_std))) {
    return Status::InvalidArgument("weight_std must be positive");
  }
  if (o.q4_k_m && o.type != GgmlType::kQ4K) return Status::InvalidArgument("the q4_k_m mix needs type q4_K");
  if (o.llama3_rope && o.arch != ModelArch::kLlama) {
    return Status::InvalidArgument("llama3 rope factors apply to the llama architecture only");
  }
  return Status::Ok();
}

Result<GgufWriter> BuildTestModel(Env* env, const MakeTestModelOptions& o) {
  LLMSYNC_RETURN_IF_ERROR(ValidateMakeTestModelOptions(o));
  const std::string arch(ModelArchName(o.arch));
  const bool qwen = o.arch != ModelArch::kLlama;
  const std::int64_t head_dim = o.head_dim != 0 ? o.head_dim : o.n_embd / o.n_head;
  const std::int64_t q_dim = o.n_head * head_dim;
  const std::int64_t kv_dim = o.n_head_kv * head_dim;
  const float freq_base = qwen ? 1000000.0f : (o.llama3_rope ? 500000.0f : 10000.0f);

  GgufWriter w;
  w.SetString("general.architecture", arch);
  w.SetString("general.name",
              "llmsync-test-" + arch + "-" + (o.q4_k_m ? "q4_K_M" : std::string(GgmlTypeName(o.type))));
  w.SetUint32("general.file_type", FileTypeOf(o.type, o.q4_k_m));
  if (GetGgmlTypeInfo(o.type).block_elems > 1) w.SetUint32("general.quantization_version", 2);
  w.SetUint32(arch + ".context_length", static_cast<std::uint32_t>(o.context_length));
  w.SetUint32(arch + ".embedding_length", static_cast<std::uint32_t>(o.n_embd));
  w.SetUint32(arch + ".block_count", static_cast<std::uint32_t>(o.n_layer));
  w.SetUint32(arch + ".feed_forward_length", static_cast<std::uint32_t>(o.n_ff));
  w.SetUint32(arch + ".attention.head_count", static_cast<std::uint32_t>(o.n_head));
  w.SetUint32(arch + ".attention.head_count_kv", static_cast<std::uint32_t>(o.n_head_kv));
  w.SetFloat32(arch + ".attention.layer_norm_rms_epsilon", qwen ? 1e-6f : 1e-5f);
  if (o.arch == ModelArch::kQwen3 || head_dim * o.n_head != o.n_embd) {
    w.SetUint32(arch + ".attention.key_length", static_cast<std::uint32_t>(head_dim));
    w.SetUint32(arch + ".attention.value_length", static_cast<std::uint32_t>(head_dim));
  }
  w.SetFloat32(arch + ".rope.freq_base", freq_base);
  if (o.arch == ModelArch::kLlama)
    w.SetUint32(arch + ".rope.dimension_count", static_cast<std::uint32_t>(head_dim));
  std::vector<float> row_scale;  // output.weight rows; empty: all 1
  LLMSYNC_ASSIGN_OR_RETURN(std::int64_t n_vocab, WriteVocabulary(env, o, w, &row_scale));
  w.SetUint32(arch + ".vocab_size", static_cast<std::uint32_t>(n_vocab));

  TensorMaker make(w, o.seed);
  const float s = o.weight_std;
  // The Q4_K_M mix: more bits for the output matrix and for some layers' attn_v and ffn_down.
  const GgmlType more_bits = o.q4_k_m ? GgmlType::kQ6K : o.type;
  auto layer_type = [&](std::int64_t layer) {
    return Q4KMUsesMoreBits(layer, o.n_layer) ? more_bits : o.type;
  };
  LLMSYNC_RETURN_IF_ERROR(
      make.Matrix("token_embd.weight", n_vocab, o.n_embd, o.tie_embeddings ? more_bits : o.type, s));
  if (o.llama3_rope)
    LLMSYNC_RETURN_IF_ERROR(make.Floats("rope_freqs.weight", Llama3RopeFactors(head_dim, freq_base)));
  LLMSYNC_RETURN_IF_ERROR(make.Vector("output_norm.weight", o.n_embd, 1.0f, 0.1f));
  if (!o.tie_embeddings)
    LLMSYNC_RETURN_IF_ERROR(make.Matrix("output.weight", n_vocab, o.n_embd, more_bits, s, row_scale));
  for (std::int64_t i = 0; i < o.n_layer; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    LLMSYNC_RETURN_IF_ERROR(make.Vector(p + "attn_norm.weight", o.n_embd, 1.0f, 0.1f));
    LLMSYNC_RETURN_IF_ERROR(make.Matrix(p + "attn_q.weight", q_dim, o.n_embd, o.type, s));
    LLMSYNC_RETURN_IF_ERROR(make.Matrix(p + "attn_k.weight", kv_dim, o.n_embd, o.type, s));
    LLMSYNC_RETURN_IF_ERROR(make.Matrix(p + "attn_v.weight", kv_dim, o.n_embd, layer_type(i), s));
    if (o.arch == ModelArch::kQwen2) {
      LLMSYNC_RETURN_IF_ERROR(make.Vector(p + "attn_q.bias", q_dim, 0.0f, 0.1f));
      LLMSYNC_RETURN_IF_ERROR(make.Vector(p + "attn_k.bias", kv_dim, 0.0f, 0.1f));
      LLMSYNC_RETURN_IF_ERROR(make.Vector(p + "attn_v.bias", kv_dim, 0.0f, 0.1f));
    }
    if (o.arch == ModelArch::kQwen3) {
      LLMSYNC_RETURN_IF_ERROR(make.Vector(p + "attn_q_norm.weight", head_dim, 1.0f, 0.1f));
      LLMSYNC_RETURN_IF_ERROR(make.Vector(p + "attn_k_norm.weight", head_dim, 1.0f, 0.1f));
    }
    LLMSYNC_RETURN_IF_ERROR(make.Matrix(p + "attn_output.weight", o.n_embd, q_dim, o.type, s));
    LLMSYNC_RETURN_IF_ERROR(make.Vector(p + "ffn_norm.weight", o.n_embd, 1.0f, 0.1f));
    LLMSYNC_RETURN_IF_ERROR(make.Matrix(p + "ffn_gate.weight", o.n_ff, o.n_embd, o.type, s));
    LLMSYNC_RETURN_IF_ERROR(make.Matrix(p + "ffn_up.weight", o.n_ff, o.n_embd, o.type, s));
    LLMSYNC_RETURN_IF_ERROR(make.Matrix(p + "ffn_down.weight", o.n_embd, o.n_ff, layer_type(i), s));
  }
  return w;
}

Status MakeTestModel(Env* env, const MakeTestModelOptions& options, const std::string& out_path) {
  LLMSYNC_ASSIGN_OR_RETURN(GgufWriter writer, BuildTestModel(env, options));
  return writer.WriteTo(env, out_path);
}

}  // namespace llmsync::engine
