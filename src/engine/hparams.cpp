#include "engine/hparams.h"

#include <cmath>
#include <string>

namespace llmsync::engine {
namespace {

// Generous bounds: they exist so that a hostile file cannot make the engine size buffers from
// absurd numbers, not to restrict real models.
constexpr std::int64_t kMaxEmbd = 1 << 16;
constexpr std::int64_t kMaxLayers = 1 << 12;
constexpr std::int64_t kMaxHeads = 1 << 12;
constexpr std::int64_t kMaxHeadDim = 1 << 11;
constexpr std::int64_t kMaxFf = 1 << 20;
constexpr std::int64_t kMaxCtx = std::int64_t{1} << 30;

Status Required(const GgufFile& file, const std::string& key, std::int64_t max, std::int64_t* out) {
  auto v = file.GetUint(key);
  if (!v.IsOk()) {
    if (v.GetStatus().Code() == StatusCode::kNotFound) {
      return Status::InvalidArgument("model: required metadata key '" + key + "' is missing");
    }
    return Status::InvalidArgument("model: " + v.GetStatus().Message());
  }
  if (*v == 0 || *v > static_cast<std::uint64_t>(max)) {
    return Status::InvalidArgument("model: '" + key + "' = " + std::to_string(*v) + " is outside [1, " +
                                   std::to_string(max) + "]");
  }
  *out = static_cast<std::int64_t>(*v);
  return Status::Ok();
}

// Like Required, but keeps *out when the key is absent.
Status Optional(const GgufFile& file, const std::string& key, std::int64_t max, std::int64_t* out) {
  if (file.Find(key) == nullptr) return Status::Ok();
  return Required(file, key, max, out);
}

Status OptionalFloat(const GgufFile& file, const std::string& key, float* out) {
  if (file.Find(key) == nullptr) return Status::Ok();
  auto v = file.GetFloat(key);
  if (!v.IsOk()) return Status::InvalidArgument("model: " + v.GetStatus().Message());
  if (!std::isfinite(*v)) return Status::InvalidArgument("model: '" + key + "' is not finite");
  *out = static_cast<float>(*v);
  return Status::Ok();
}

Status ReadRopeScaling(const GgufFile& file, const std::string& arch, ModelHparams* hp) {
  std::string type = "none";
  if (file.Find(arch + ".rope.scaling.type") != nullptr) {
    auto t = file.GetString(arch + ".rope.scaling.type");
    if (!t.IsOk()) return Status::InvalidArgument("model: " + t.GetStatus().Message());
    type = std::string(*t);
  }
  float factor = 0.0f;
  LLMSYNC_RETURN_IF_ERROR(OptionalFloat(file, arch + ".rope.scaling.factor", &factor));
  if (file.Find(arch + ".rope.scale_linear") != nullptr) {  // the older spelling of linear scaling
    LLMSYNC_RETURN_IF_ERROR(OptionalFloat(file, arch + ".rope.scale_linear", &factor));
    if (type == "none") type = "linear";
  }
  if (type == "none") return Status::Ok();
  if (type != "linear") {
    return Status::Unimplemented("model: rope scaling type '" + type + "' is not supported (none, linear)");
  }
  if (factor == 0.0f || factor == 1.0f) return Status::Ok();
  if (!(factor > 0.0f)) return Status::InvalidArgument("model: rope scaling factor must be positive");
  hp->rope_freq_scale = 1.0f / factor;
  return Status::Ok();
}

}  // namespace

std::string_view ModelArchName(ModelArch arch) {
  switch (arch) {
    case ModelArch::kLlama: return "llama";
    case ModelArch::kQwen2: return "qwen2";
    case ModelArch::kQwen3: return "qwen3";
  }
  return "unknown";
}

Result<ModelArch> ParseModelArch(std::string_view name) {
  if (name == "llama") return ModelArch::kLlama;
  if (name == "qwen2") return ModelArch::kQwen2;
  if (name == "qwen3") return ModelArch::kQwen3;
  return Status::Unimplemented("model: architecture '" + std::string(name) +
                               "' is not supported (llama, qwen2, qwen3)");
}

Result<ModelHparams> ReadHparams(const GgufFile& file) {
  ModelHparams hp;
  auto arch_name = file.GetString("general.architecture");
  if (!arch_name.IsOk()) {
    return Status::InvalidArgument("model: general.architecture: " + arch_name.GetStatus().Message());
  }
  LLMSYNC_ASSIGN_OR_RETURN(hp.arch, ParseModelArch(*arch_name));
  const std::string arch(*arch_name);
  if (auto name = file.GetString("general.name"); name.IsOk()) hp.name = std::string(*name);

  LLMSYNC_RETURN_IF_ERROR(Required(file, arch + ".context_length", kMaxCtx, &hp.n_ctx_train));
  LLMSYNC_RETURN_IF_ERROR(Required(file, arch + ".embedding_length", kMaxEmbd, &hp.n_embd));
  LLMSYNC_RETURN_IF_ERROR(Required(file, arch + ".block_count", kMaxLayers, &hp.n_layer));
  LLMSYNC_RETURN_IF_ERROR(Required(file, arch + ".feed_forward_length", kMaxFf, &hp.n_ff));
  LLMSYNC_RETURN_IF_ERROR(Required(file, arch + ".attention.head_count", kMaxHeads, &hp.n_head));
  hp.n_head_kv = hp.n_head;
  LLMSYNC_RETURN_IF_ERROR(Optional(file, arch + ".attention.head_count_kv", kMaxHeads, &hp.n_head_kv));
  if (hp.n_head % hp.n_head_kv != 0) {
    return Status::InvalidArgument("model: attention.head_count " + std::to_string(hp.n_head) +
                                   " is not a multiple of attention.head_count_kv " +
                                   std::to_string(hp.n_head_kv));
  }

  hp.head_dim = hp.n_embd / hp.n_head;
  if (file.Find(arch + ".attention.key_length") == nullptr && hp.n_embd % hp.n_head != 0) {
    return Status::InvalidArgument("model: embedding_length " + std::to_string(hp.n_embd) +
                                   " is not a multiple of attention.head_count " + std::to_string(hp.n_head));
  }
  LLMSYNC_RETURN_IF_ERROR(Optional(file, arch + ".attention.key_length", kMaxHeadDim, &hp.head_dim));
  std::int64_t value_length = hp.head_dim;
  LLMSYNC_RETURN_IF_ERROR(Optional(file, arch + ".attention.value_length", kMaxHeadDim, &value_length));
  if (value_length != hp.head_dim) {
    return Status::Unimplemented("model: attention.key_length " + std::to_string(hp.head_dim) +
                                 " differs from attention.value_length " + std::to_string(value_length));
  }
  if (hp.head_dim == 0 || hp.head_dim > kMaxHeadDim || hp.head_dim % 2 != 0) {
    return Status::InvalidArgument("model: head dimension " + std::to_string(hp.head_dim) +
                                   " must be even and in [2, " + std::to_string(kMaxHeadDim) + "]");
  }
  hp.n_rot = hp.head_dim;
  LLMSYNC_RETURN_IF_ERROR(Optional(file, arch + ".rope.dimension_count", kMaxHeadDim, &hp.n_rot));
  if (hp.n_rot % 2 != 0 || hp.n_rot > hp.head_dim) {
    return Status::InvalidArgument("model: rope.dimension_count " + std::to_string(hp.n_rot) +
                                   " must be even and at most the head dimension " +
                                   std::to_string(hp.head_dim));
  }

  LLMSYNC_RETURN_IF_ERROR(OptionalFloat(file, arch + ".attention.layer_norm_rms_epsilon", &hp.rms_eps));
  if (!(hp.rms_eps > 0.0f)) return Status::InvalidArgument("model: layer_norm_rms_epsilon must be positive");
  LLMSYNC_RETURN_IF_ERROR(OptionalFloat(file, arch + ".rope.freq_base", &hp.rope_freq_base));
  if (!(hp.rope_freq_base > 1.0f)) return Status::InvalidArgument("model: rope.freq_base must be > 1");
  LLMSYNC_RETURN_IF_ERROR(ReadRopeScaling(file, arch, &hp));

  hp.rope_style = hp.arch == ModelArch::kLlama ? RopeStyle::kNorm : RopeStyle::kNeox;
  hp.qkv_bias = hp.arch == ModelArch::kQwen2;
  hp.qk_norm = hp.arch == ModelArch::kQwen3;
  return hp;
}

}  // namespace llmsync::engine
