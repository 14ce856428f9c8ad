// Model: a Llama-family model loaded from a GGUF file — validated hyperparameters plus views of
// every weight tensor by its GGUF name (token_embd.weight, blk.N.attn_q.weight, ...).
//
// Large matrices are read in their stored type by the matmul kernels, from the file's memory map or
// (Placement::kHugePageCopy) from huge-page copies of the ones the forward pass streams; small
// vectors (norm weights,
// biases, llama3 rope frequency factors) are converted to f32 at load time. Loading checks every tensor's
// presence, shape and type against the hyperparameters, so a user's file never crashes the engine: a missing
// tensor, a wrong shape or a type the engine cannot compute with yields a Status naming the tensor.
//
// Thread safety: immutable after loading; any number of Engines and threads may share one Model.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/env.h"
#include "engine/ggml_type.h"
#include "engine/gguf/gguf_reader.h"
#include "engine/hparams.h"
#include "engine/kv_storage.h"
#include "engine/quant/repack.h"
#include "engine/resident_weights.h"

namespace llmsync::engine {

// A 2-D weight: `rows` rows of `cols` elements of `type`. In WeightLayout::kRows (as stored), row r is
// at data + r * row_bytes; a huge-page copy may instead be repacked for the kernels (kInterleaved16,
// quant/repack.h), which only MatMulRows reads.
struct WeightMatrix {
  GgmlType type = GgmlType::kF32;
  const std::uint8_t* data = nullptr;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::uint64_t row_bytes = 0;
  WeightLayout layout = WeightLayout::kRows;

  // REQUIRES: layout == kRows.
  const std::uint8_t* Row(std::int64_t r) const { return data + static_cast<std::uint64_t>(r) * row_bytes; }
};

struct LayerWeights {
  std::vector<float> attn_norm;   // [n_embd]
  WeightMatrix wq;                // [QDim rows x n_embd]
  WeightMatrix wk;                // [KvDim rows x n_embd]
  WeightMatrix wv;                // [KvDim rows x n_embd]
  WeightMatrix wo;                // [n_embd rows x QDim]
  std::vector<float> bq, bk, bv;  // qwen2 biases, else empty
  std::vector<float> q_norm;      // qwen3 per-head RMSNorm weights [head_dim], else empty
  std::vector<float> k_norm;
  std::vector<float> ffn_norm;  // [n_embd]
  WeightMatrix w_gate;          // [n_ff rows x n_embd]
  WeightMatrix w_up;            // [n_ff rows x n_embd]
  WeightMatrix w_down;          // [n_embd rows x n_ff]
};

class Model {
 public:
  // Where Open keeps the matrices the forward pass streams: in the file's memory map, or copied
  // into huge-page memory (ResidentWeights: faster decode, for processes that compute; a process
  // that only reads metadata keeps them mapped). LLMSYNC_WEIGHTS=map turns a copy into kMapped.
  enum class Placement { kMapped, kHugePageCopy };

  // Maps and loads the file at `path`.
  static Result<std::unique_ptr<Model>> Open(Env* env, const std::string& path,
                                             Placement placement = Placement::kMapped);
  // Loads from an opened file, taking ownership of it.
  static Result<std::unique_ptr<Model>> FromGguf(std::unique_ptr<GgufFile> file);

  const ModelHparams& Hparams() const { return hparams_; }
  const GgufFile& File() const { return *file_; }

  const WeightMatrix& TokenEmbedding() const { return token_embd_; }  // [n_vocab rows x n_embd]
  const WeightMatrix& Output() const { return output_; }  // [n_vocab rows x n_embd]; may alias token_embd
  bool TiedOutput() const { return tied_output_; }
  const std::vector<float>& OutputNorm() const { return output_norm_; }
  const LayerWeights& Layer(std::int64_t i) const { return layers_[static_cast<std::size_t>(i)]; }
  // llama3 rope frequency factors [n_rot / 2] from rope_freqs.weight, or empty.
  const std::vector<float>& RopeFreqFactors() const { return rope_freq_factors_; }

  // The KV rows this model writes, in the given dtype.
  KvGeometry KvGeometryFor(KvDtype dtype) const {
    return KvGeometry{hparams_.n_layer, hparams_.n_head_kv, hparams_.head_dim, dtype};
  }

 private:
  struct Token {};

 public:
  explicit Model(Token /*unused*/) {}

 private:
  Status Load();
  // Points every streamed matrix at a ResidentWeights copy read from `path`, in the kernels'
  // PreferredLayout (Q4_0 interleaved under AVX-512 VNNI; the token embedding, which is read by row,
  // always as stored); on any failure the remaining matrices stay mapped.
  void CopyMatrices(const std::string& path);

  std::unique_ptr<GgufFile> file_;
  ModelHparams hparams_;
  WeightMatrix token_embd_;
  WeightMatrix output_;
  bool tied_output_ = false;
  std::vector<float> output_norm_;
  std::vector<LayerWeights> layers_;
  std::vector<float> rope_freq_factors_;
  ResidentWeights resident_;
};

}  // namespace llmsync::engine
