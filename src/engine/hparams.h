// ModelHparams: the hyperparameters of a Llama-family model, read from a GGUF file's `<arch>.*`
// metadata and validated, and the per-architecture traits the forward pass needs.
//
// Architectures: `llama` (Llama 2/3.x, Mistral, SmolLM, TinyLlama: GQA, optional llama3 rope
// frequency factors), `qwen2` (biases on q/k/v) and `qwen3` (per-head RMSNorm of q and k).
// RoPE style follows llama.cpp's llama_model_rope_type(): `llama` rotates adjacent pairs
// (x[2i], x[2i+1]) — GGUF llama q/k weights are stored permuted for it — while `qwen2`/`qwen3` use
// the NeoX style, rotating (x[i], x[i + n_rot/2]).
//
// Thread safety: values and pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "engine/gguf/gguf_reader.h"
#include "llmsync/status.h"

namespace llmsync::engine {

enum class ModelArch { kLlama, kQwen2, kQwen3 };
enum class RopeStyle { kNorm, kNeox };

std::string_view ModelArchName(ModelArch arch);
// "llama" | "qwen2" | "qwen3"; anything else is kUnimplemented naming the architecture.
Result<ModelArch> ParseModelArch(std::string_view name);

struct ModelHparams {
  ModelArch arch = ModelArch::kLlama;
  std::string name;                 // general.name, or empty
  std::int64_t n_vocab = 0;         // rows of token_embd.weight
  std::int64_t n_ctx_train = 0;     // <arch>.context_length
  std::int64_t n_embd = 0;          // <arch>.embedding_length
  std::int64_t n_layer = 0;         // <arch>.block_count
  std::int64_t n_head = 0;          // <arch>.attention.head_count
  std::int64_t n_head_kv = 0;       // <arch>.attention.head_count_kv (default n_head)
  std::int64_t n_ff = 0;            // <arch>.feed_forward_length
  std::int64_t head_dim = 0;        // <arch>.attention.key_length (default n_embd / n_head)
  std::int64_t n_rot = 0;           // <arch>.rope.dimension_count (default head_dim)
  float rms_eps = 1e-5f;            // <arch>.attention.layer_norm_rms_epsilon
  float rope_freq_base = 10000.0f;  // <arch>.rope.freq_base
  float rope_freq_scale = 1.0f;     // 1 / <arch>.rope.scaling.factor for linear scaling
  RopeStyle rope_style = RopeStyle::kNorm;
  bool qkv_bias = false;  // qwen2
  bool qk_norm = false;   // qwen3

  std::int64_t QDim() const { return n_head * head_dim; }
  std::int64_t KvDim() const { return n_head_kv * head_dim; }
};

// Reads and validates the hyperparameters. kUnimplemented for an architecture or rope scaling
// llmsync does not run; kInvalidArgument naming the key for missing or inconsistent values.
// n_vocab is left 0: the model loader takes it from token_embd.weight.
Result<ModelHparams> ReadHparams(const GgufFile& file);

}  // namespace llmsync::engine
