// Engine: runs the forward pass of a loaded Model over a Batch of (sequence, position, token)
// entries, reading and writing attention keys and values through a caller-owned KvStorage, and
// returns the logits of the entries that ask for them.
//
// Batch invariance. The logits of an entry are a function of the model, the entry's token and
// position, and the KV rows of positions 0..pos of its sequence — nothing else. They are
// bit-identical whether the token is computed alone, in a prefill of any size, beside other
// sequences, with any thread count or any max_batch_tokens: every matmul output is one canonical
// reduction per (weight row, token) (matmul.h), norms and activations work per token, and attention
// runs over positions in a fixed ascending, chunked order (attention.h). This is what makes replay
// of a conversation log reproduce its KV state and logits exactly.
//
// Memory. Scratch buffers are sized once in Create for max_batch_tokens tokens; a larger batch runs
// in slices of that many entries (which, by invariance, gives the same results). A decode step
// allocates nothing once the buffers have been used once.
//
// Thread safety: one Forward at a time per Engine (it owns scratch buffers and a thread pool).
// Several Engines may share one Model.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "engine/attention.h"
#include "engine/batch.h"
#include "engine/kv_storage.h"
#include "engine/matmul.h"
#include "engine/model.h"
#include "engine/thread_pool.h"
#include "llmsync/status.h"

namespace llmsync::engine {

struct EngineOptions {
  int n_threads = 1;                    // including the calling thread
  std::int64_t max_batch_tokens = 256;  // scratch size, in tokens; larger batches run in slices
};

class Engine {
 public:
  // REQUIRES: `model` outlives the Engine.
  static Result<std::unique_ptr<Engine>> Create(const Model& model, const EngineOptions& options);

  const Model& GetModel() const { return model_; }
  int Threads() const { return pool_.Size(); }
  std::int64_t MaxBatchTokens() const { return max_tokens_; }

  // Runs `batch` against `kv` and writes batch.NumLogits() rows of n_vocab logits to `logits`, in
  // batch order. Errors (nothing is computed): kInvalidArgument for a token outside the
  // vocabulary, a negative position, non-consecutive positions within a sequence, a logits span
  // of the wrong size or a KV geometry that does not match the model; any error of
  // kv.PrepareWrite (see kv_storage.h for the state it leaves).
  Status Forward(const Batch& batch, KvStorage& kv, std::span<float> logits);

 private:
  struct Token {};

 public:
  Engine(Token /*unused*/, const Model& model, const EngineOptions& options);

 private:
  struct MatMulJob {
    const WeightMatrix* w;
    float* y;  // row-major [tokens x w->rows]
  };
  struct SeqRange {
    SeqId seq;
    std::int64_t begin;
    std::int64_t next;
  };

  // Elements in `tokens` rows of `width`: the offset of a row in the scratch buffers.
  static std::size_t Rows(std::int64_t tokens, std::int64_t width) {
    return static_cast<std::size_t>(tokens) * static_cast<std::size_t>(width);
  }
  Status ValidateAndPrepare(const Batch& batch, KvStorage& kv, std::span<float> logits);
  // Runs entries [begin, end) of the batch (at most max_tokens_) through every layer; writes the
  // logits of the entries that ask for them starting at logits row `logits_row`.
  void ForwardSlice(const std::vector<BatchEntry>& entries, std::size_t begin, std::size_t end, KvStorage& kv,
                    float* logits, std::int64_t logits_row);
  void Embed(const BatchEntry* e, std::int64_t n);
  // Norm, q/k/v, RoPE, stores the slice's K/V rows and attends: attn_ for n tokens.
  void Attend(const LayerWeights& l, std::int64_t layer, const BatchEntry* e, std::int64_t n, KvStorage& kv);
  // x += attn Wo^T for the first n rows.
  void AttentionOutput(const LayerWeights& l, std::int64_t n);
  // Moves the rows of x_ and attn_ listed in out_rows_ (ascending) to the front.
  void CompactToOutputRows();
  void FeedForwardBlock(const LayerWeights& l, std::int64_t n);
  // Computes y = x W^T for every job (all with input x of n tokens x cols), preparing the activations
  // once per distinct weight type and splitting all jobs' rows over the pool.
  void MatMuls(const float* x, std::int64_t n, std::int64_t cols, std::span<const MatMulJob> jobs);

  const Model& model_;
  const ModelHparams& hp_;
  std::int64_t max_tokens_;
  ThreadPool pool_;

  // Scratch, max_tokens_ rows each.
  std::vector<float> x_;         // residual stream [n_embd]
  std::vector<float> xn_;        // normed input of a block, then the block's output [n_embd]
  std::vector<float> q_;         // [QDim]
  std::vector<float> k_;         // [KvDim]
  std::vector<float> v_;         // [KvDim]
  std::vector<float> attn_;      // [QDim]
  std::vector<float> gate_;      // [n_ff]
  std::vector<float> up_;        // [n_ff]
  std::vector<float> rope_cos_;  // [n_rot / 2]
  std::vector<float> rope_sin_;
  std::vector<std::int64_t> out_rows_;               // slice indices of entries that want logits
  std::vector<AttentionScratch> attention_scratch_;  // one per thread
  // Query tiles of a slice: first entry of each run of consecutive positions of one sequence (at
  // most kAttentionQueryTile long), and one past the last tile's end. Up to max_tokens_ + 1.
  std::vector<std::int64_t> attention_tiles_;
  std::vector<PreparedActivations> prepared_;  // up to three weight types per matmul group
  std::vector<SeqRange> seq_ranges_;
};

}  // namespace llmsync::engine
