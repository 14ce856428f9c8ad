// Causal self-attention of one token against the KV rows of its sequence, in a fixed order.
//
// For a token at position `pos`, the query heads that share one KV head attend over positions
// 0..pos in ascending order, in chunks of kAttentionChunk positions, with an online softmax:
// per chunk, scores s_j = dot(q, k_j) * scale, m' = max(m, max_j s_j), the running sum and output
// are rescaled by exp(m - m'), then l += exp(s_j - m') and out += exp(s_j - m') * v_j in position
// order; finally out /= l. The chunking is by position, not by the storage's runs or blocks, so the
// result depends only on the query and the rows of positions 0..pos: the same whatever the batch,
// the thread, or the KV store's block size.
//
// Dot products and the accumulations use the lane scheme of matmul.h (element i in lane i % 8,
// fma in order, the same final reduction), with AVX2 or scalar kernels chosen by ActiveKernelIsa();
// both give identical bits.
//
// Thread safety: AttendKvHead may run concurrently for different outputs, each with its own
// AttentionScratch; it only reads the KvStorage.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/kv_storage.h"

namespace llmsync::engine {

inline constexpr std::int64_t kAttentionChunk = 32;

// Per-thread buffers, sized once for a model.
class AttentionScratch {
 public:
  void Resize(std::int64_t group, std::int64_t head_dim);

 private:
  friend void AttendKvHead(KvStorage& kv, SeqId seq, std::int64_t layer, std::int64_t pos,
                           std::int64_t kv_head, std::int64_t group, std::int64_t head_dim, float scale,
                           const float* q, float* out, AttentionScratch& scratch);
  std::vector<float> k_chunk_;  // kAttentionChunk rows of head_dim, converted to f32
  std::vector<float> v_row_;    // one row of head_dim, converted to f32
  std::vector<float> scores_;   // group x kAttentionChunk
  std::vector<float> max_;      // group
  std::vector<float> sum_;      // group
};

// Attention output of the `group` query heads (q: group rows of head_dim, consecutive) that share
// KV head `kv_head`, for the token at position `pos` of `seq` in `layer`. Writes group rows of
// head_dim to out.
// REQUIRES: positions 0..pos of seq hold rows in kv; scratch.Resize(group, head_dim) was called.
void AttendKvHead(KvStorage& kv, SeqId seq, std::int64_t layer, std::int64_t pos, std::int64_t kv_head,
                  std::int64_t group, std::int64_t head_dim, float scale, const float* q, float* out,
                  AttentionScratch& scratch);

// Writes one f32 row into KV storage as dtype (F16 rounds to nearest even).
void StoreKvRow(KvDtype dtype, const float* src, std::int64_t n, std::uint8_t* dst);

}  // namespace llmsync::engine
