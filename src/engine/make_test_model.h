// MakeTestModel: writes a small (or benchmark-sized) Llama-family GGUF with seeded random weights,
// for tests, oracles and benchmarks (`llmsync model make-test`).
//
// Weights: 2-D matrices are normal(0, weight_std) (0.02 by default); norm weights (attn_norm,
// ffn_norm, output_norm, qwen3 attn_q_norm/attn_k_norm) are 1 + normal(0, 0.1) and qwen2 biases
// normal(0, 0.1), so that a forward pass that skipped or misapplied them would show. Values come
// from the counter-based generator in rng.h (Box-Muller), so a (seed, shape) always gives the same
// file on every platform.
//
// Types: matrices are stored in the requested type; norms, biases and rope_freqs stay F32 as
// llama.cpp keeps them. `q4_k_m` (with type q4_K) mixes types as llama.cpp's Q4_K_M recipe does
// for a dense model: Q6_K for output.weight (token_embd.weight when the output is tied), and for
// attn_v and ffn_down in the layers llama-quantize gives more bits (the first and last eighth and
// every third layer between), Q4_K elsewhere. When a matrix's row length is not a multiple of the type's
// block size the tensor falls back (and the file still loads everywhere): q4_K -> q4_0 and q6_K -> q8_0 when
// the row is a multiple of 32, else f16. Use row lengths that are multiples of 256 (n_embd, n_ff, n_head *
// head_dim) to get pure K-quant files.
//
// Metadata follows the GGUF spec and llama.cpp's names exactly: general.architecture, general.name,
// general.file_type, general.quantization_version, <arch>.context_length, .embedding_length,
// .block_count, .feed_forward_length, .attention.head_count, .attention.head_count_kv,
// .attention.layer_norm_rms_epsilon, .attention.key_length/.value_length, .rope.freq_base,
// .rope.dimension_count, .vocab_size. Tokenizer metadata: every `tokenizer.*` key of the vocab file,
// copied verbatim; without one, a 256-token byte vocabulary (tokenizer.ggml.model "llama", tokens
// "<0x00>".."<0xFF>" of type BYTE), padded with "<extra_N>" tokens up to vocab_size. With
// readable_vocab: the demo vocabulary of readable_vocab.h (printable ASCII, common words, EOS), whose
// output.weight rows are scaled so that a random model samples mostly whole words.
//
// Thread safety: pure functions (file writes go through the Env).
#pragma once

#include <cstdint>
#include <string>

#include "base/env.h"
#include "engine/ggml_type.h"
#include "engine/gguf/gguf_writer.h"
#include "engine/hparams.h"

namespace llmsync::engine {

struct MakeTestModelOptions {
  ModelArch arch = ModelArch::kLlama;
  std::string vocab_path;       // a GGUF whose tokenizer.* keys are copied; empty: byte vocabulary
  std::int64_t vocab_size = 0;  // byte vocabulary only: total tokens (>= 256); 0: 256
  bool readable_vocab = false;  // the demo model's readable vocabulary (readable_vocab.h) instead
  std::int64_t n_embd = 64;
  std::int64_t n_layer = 2;
  std::int64_t n_head = 4;
  std::int64_t n_head_kv = 2;
  std::int64_t n_ff = 128;
  std::int64_t head_dim = 0;  // 0: n_embd / n_head
  std::int64_t context_length = 2048;
  GgmlType type = GgmlType::kF32;
  std::uint64_t seed = 1;
  float weight_std = 0.02f;
  bool tie_embeddings = false;  // omit output.weight (the output reuses token_embd.weight)
  bool llama3_rope = false;     // llama only: write rope_freqs.weight with llama3 factors
  bool q4_k_m = false;          // type q4_K only: the Q4_K_M mix of Q4_K and Q6_K (above)
};

// Checks the options (positive sizes, head counts that divide, a supported type...).
Status ValidateMakeTestModelOptions(const MakeTestModelOptions& options);

// Builds the complete file in memory. Reads the vocab file through `env` when one is named.
Result<GgufWriter> BuildTestModel(Env* env, const MakeTestModelOptions& options);

// Builds and writes atomically to `out_path`.
Status MakeTestModel(Env* env, const MakeTestModelOptions& options, const std::string& out_path);

// The storage type a matrix with rows of `cols` elements gets when `requested` is asked for.
GgmlType TestModelTensorType(GgmlType requested, std::int64_t cols);

// Whether llama.cpp's K-quant mixes give layer `layer` of `n_layer` more bits (Q6_K in Q4_K_M).
bool Q4KMUsesMoreBits(std::int64_t layer, std::int64_t n_layer);

}  // namespace llmsync::engine
