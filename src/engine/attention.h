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
// Thread safety: AttendKvHeads may run concurrently for different outputs, each with its own
// AttentionScratch; it only reads the KvStorage.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/kv_storage.h"

namespace llmsync::engine {

inline constexpr std::int64_t kAttentionChunk = 32;
// Queries attended together by AttendKvHeads: they share each converted key and value row.
inline constexpr std::int64_t kAttentionQueryTile = 16;

// Per-thread buffers, sized once for a model.
class AttentionScratch {
 public:
  void Resize(std::int64_t group, std::int64_t head_dim);

 private:
  friend void AttendKvHeads(KvStorage& kv, SeqId seq, std::int64_t layer, std::int64_t first_pos,
                            std::int64_t n_queries, std::int64_t kv_head, std::int64_t group,
                            std::int64_t head_dim, float scale, const float* q, float* out,
                            std::int64_t row_stride, AttentionScratch& scratch);
  std::vector<float> k_chunk_;  // kAttentionChunk rows of head_dim, converted to f32
  std::vector<float> v_row_;    // one row of head_dim, converted to f32
  std::vector<float> scores_;   // kAttentionQueryTile x group x kAttentionChunk
  std::vector<float> max_;      // kAttentionQueryTile x group
  std::vector<float> sum_;      // kAttentionQueryTile x group
  // Per row (query i, head g): where its query and output are, its position, and how many
  // positions of the current chunk it sees.
  std::vector<float> acc_;  // kAttentionQueryTile x group rows of head_dim: running outputs
  std::vector<float*> acc_rows_;
  std::vector<const float*> q_rows_;
  std::vector<float*> out_rows_;
  std::vector<std::int64_t> last_pos_;
  std::vector<std::int64_t> seen_;
};

// Attention output of the `group` query heads that share KV head `kv_head`, for the `n_queries`
// tokens at positions first_pos, first_pos + 1, ... of `seq` in `layer`. Query i's heads are
// group rows of head_dim at q + i * row_stride; its output goes to out + i * row_stride likewise.
// Each query's arithmetic is exactly the single-token scheme above, so the tile changes no bits;
// the queries only share the conversion of each key chunk and value row.
// REQUIRES: positions 0..first_pos + n_queries - 1 of seq hold rows in kv;
// 1 <= n_queries <= kAttentionQueryTile; scratch.Resize(group, head_dim) was called.
void AttendKvHeads(KvStorage& kv, SeqId seq, std::int64_t layer, std::int64_t first_pos,
                   std::int64_t n_queries, std::int64_t kv_head, std::int64_t group, std::int64_t head_dim,
                   float scale, const float* q, float* out, std::int64_t row_stride,
                   AttentionScratch& scratch);

// The same for one token at `pos` (q and out: group rows of head_dim, consecutive).
inline void AttendKvHead(KvStorage& kv, SeqId seq, std::int64_t layer, std::int64_t pos, std::int64_t kv_head,
                         std::int64_t group, std::int64_t head_dim, float scale, const float* q, float* out,
                         AttentionScratch& scratch) {
  AttendKvHeads(kv, seq, layer, pos, 1, kv_head, group, head_dim, scale, q, out, 0, scratch);
}

// Writes one f32 row into KV storage as dtype (F16 rounds to nearest even).
void StoreKvRow(KvDtype dtype, const float* src, std::int64_t n, std::uint8_t* dst);

}  // namespace llmsync::engine
