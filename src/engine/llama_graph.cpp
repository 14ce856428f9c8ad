// The Llama-family forward pass (llama, qwen2, qwen3), one slice of a batch at a time:
//
//   x = token_embd[token]
//   per layer:  h = rmsnorm(x) * attn_norm
//               q, k, v = h Wq^T (+ bq), h Wk^T (+ bk), h Wv^T (+ bv)        qwen2: biases
//               q, k = rmsnorm_per_head(q) * q_norm, ... * k_norm             qwen3
//               q, k = rope(q, pos), rope(k, pos)     llama: adjacent pairs; qwen: NeoX halves
//               store k, v at (seq, layer, pos); a = causal attention over positions 0..pos
//               x += a Wo^T
//               h = rmsnorm(x) * ffn_norm;  x += (silu(h Wgate^T) * (h Wup^T)) Wdown^T
//   logits = (rmsnorm(x) * output_norm) Wout^T   for the entries that ask
//
// In the last layer, everything after attention runs only for the entries that ask for logits.
//
// Every step is per token (or per token and head) except the matmuls, whose outputs are
// per (row, token); see engine.h for why that makes the pass batch-invariant.
#include <algorithm>
#include <cmath>

#include "engine/engine.h"
#include "engine/ops.h"
#include "engine/quant/quant.h"

namespace llmsync::engine {

void Engine::Embed(const BatchEntry* e, std::int64_t n) {
  const WeightMatrix& embd = model_.TokenEmbedding();
  const std::int64_t half_rot = hp_.n_rot / 2;
  const float* factors = model_.RopeFreqFactors().empty() ? nullptr : model_.RopeFreqFactors().data();
  pool_.ParallelFor(n, [&](std::int64_t t, int /*thread*/) {
    DequantizeRow(embd.type, embd.Row(e[t].token), &x_[Rows(t, hp_.n_embd)], hp_.n_embd);
    RopeAngles(e[t].pos, hp_.n_rot, hp_.rope_freq_base, hp_.rope_freq_scale, factors,
               &rope_cos_[Rows(t, half_rot)], &rope_sin_[Rows(t, half_rot)]);
  });
}

void Engine::Attend(const LayerWeights& l, std::int64_t layer, const BatchEntry* e, std::int64_t n,
                    KvStorage& kv) {
  const std::int64_t n_embd = hp_.n_embd;
  const std::int64_t q_dim = hp_.QDim();
  const std::int64_t kv_dim = hp_.KvDim();
  const std::int64_t head_dim = hp_.head_dim;
  const std::int64_t half_rot = hp_.n_rot / 2;
  pool_.ParallelFor(n, [&](std::int64_t t, int /*thread*/) {
    RmsNormRow(&x_[Rows(t, n_embd)], l.attn_norm.data(), hp_.rms_eps, n_embd, &xn_[Rows(t, n_embd)]);
  });
  const MatMulJob qkv[] = {{&l.wq, q_.data()}, {&l.wk, k_.data()}, {&l.wv, v_.data()}};
  MatMuls(xn_.data(), n, n_embd, qkv);

  const KvDtype dtype = kv.Geometry().dtype;
  pool_.ParallelFor(n, [&](std::int64_t t, int /*thread*/) {
    float* q = &q_[Rows(t, q_dim)];
    float* k = &k_[Rows(t, kv_dim)];
    float* v = &v_[Rows(t, kv_dim)];
    if (hp_.qkv_bias) {
      AddRow(q, l.bq.data(), q_dim);
      AddRow(k, l.bk.data(), kv_dim);
      AddRow(v, l.bv.data(), kv_dim);
    }
    const float* cos_v = &rope_cos_[Rows(t, half_rot)];
    const float* sin_v = &rope_sin_[Rows(t, half_rot)];
    for (std::int64_t h = 0; h < hp_.n_head; ++h) {
      float* head = q + h * head_dim;
      if (hp_.qk_norm) RmsNormRow(head, l.q_norm.data(), hp_.rms_eps, head_dim, head);
      ApplyRope(hp_.rope_style, hp_.n_rot, cos_v, sin_v, head);
    }
    for (std::int64_t h = 0; h < hp_.n_head_kv; ++h) {
      float* head = k + h * head_dim;
      if (hp_.qk_norm) RmsNormRow(head, l.k_norm.data(), hp_.rms_eps, head_dim, head);
      ApplyRope(hp_.rope_style, hp_.n_rot, cos_v, sin_v, head);
    }
    StoreKvRow(dtype, k, kv_dim, kv.Keys(e[t].seq, layer, e[t].pos).data);
    StoreKvRow(dtype, v, kv_dim, kv.Values(e[t].seq, layer, e[t].pos).data);
  });

  // Every row of this slice is stored before any token attends: a token may read rows written
  // by earlier entries of its sequence in the same slice.
  const std::int64_t group = hp_.n_head / hp_.n_head_kv;
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(head_dim)));
  // Tokens of one sequence at consecutive positions (a prompt slice) attend as one tile, which
  // converts each KV row once for all of them instead of once per token.
  attention_tiles_.clear();
  for (std::int64_t t = 0; t < n; ++t) {
    const bool extends = t > 0 && t - attention_tiles_.back() < kAttentionQueryTile &&
                         e[t].seq == e[t - 1].seq && e[t].pos == e[t - 1].pos + 1;
    if (!extends) attention_tiles_.push_back(t);
  }
  const auto n_tiles = static_cast<std::int64_t>(attention_tiles_.size());
  attention_tiles_.push_back(n);
  pool_.ParallelFor(n_tiles * hp_.n_head_kv, [&](std::int64_t task, int thread) {
    const std::int64_t tile = task / hp_.n_head_kv;
    const std::int64_t h = task % hp_.n_head_kv;
    const std::int64_t t = attention_tiles_[static_cast<std::size_t>(tile)];
    const std::int64_t count = attention_tiles_[static_cast<std::size_t>(tile) + 1] - t;
    const std::int64_t offset = Rows(t, q_dim) + h * group * head_dim;
    AttendKvHeads(kv, e[t].seq, layer, e[t].pos, count, h, group, head_dim, scale, &q_[offset],
                  &attn_[offset], q_dim, attention_scratch_[static_cast<std::size_t>(thread)]);
  });
}

void Engine::AttentionOutput(const LayerWeights& l, std::int64_t n) {
  const std::int64_t n_embd = hp_.n_embd;
  const MatMulJob out[] = {{&l.wo, xn_.data()}};
  MatMuls(attn_.data(), n, hp_.QDim(), out);
  pool_.ParallelFor(n, [&](std::int64_t t, int /*thread*/) {
    AddRow(&x_[Rows(t, n_embd)], &xn_[Rows(t, n_embd)], n_embd);
  });
}

void Engine::CompactToOutputRows() {
  const std::int64_t n_embd = hp_.n_embd;
  const std::int64_t q_dim = hp_.QDim();
  for (std::size_t i = 0; i < out_rows_.size(); ++i) {
    const auto from = out_rows_[i];
    const auto to = static_cast<std::int64_t>(i);
    if (from == to) continue;  // from > to otherwise: copying forward never overwrites a pending row
    std::copy_n(&x_[Rows(from, n_embd)], n_embd, &x_[Rows(to, n_embd)]);
    std::copy_n(&attn_[Rows(from, q_dim)], q_dim, &attn_[Rows(to, q_dim)]);
  }
}

void Engine::FeedForwardBlock(const LayerWeights& l, std::int64_t n) {
  const std::int64_t n_embd = hp_.n_embd;
  const std::int64_t n_ff = hp_.n_ff;
  pool_.ParallelFor(n, [&](std::int64_t t, int /*thread*/) {
    RmsNormRow(&x_[Rows(t, n_embd)], l.ffn_norm.data(), hp_.rms_eps, n_embd, &xn_[Rows(t, n_embd)]);
  });
  const MatMulJob gate_up[] = {{&l.w_gate, gate_.data()}, {&l.w_up, up_.data()}};
  MatMuls(xn_.data(), n, n_embd, gate_up);
  pool_.ParallelFor(n, [&](std::int64_t t, int /*thread*/) {
    SwiGluRow(&gate_[Rows(t, n_ff)], &up_[Rows(t, n_ff)], n_ff);
  });
  const MatMulJob down[] = {{&l.w_down, xn_.data()}};
  MatMuls(gate_.data(), n, n_ff, down);
  pool_.ParallelFor(n, [&](std::int64_t t, int /*thread*/) {
    AddRow(&x_[Rows(t, n_embd)], &xn_[Rows(t, n_embd)], n_embd);
  });
}

void Engine::ForwardSlice(const std::vector<BatchEntry>& entries, std::size_t begin, std::size_t end,
                          KvStorage& kv, float* logits, std::int64_t logits_row) {
  const BatchEntry* e = entries.data() + begin;
  const auto n = static_cast<std::int64_t>(end - begin);
  out_rows_.clear();
  for (std::int64_t t = 0; t < n; ++t) {
    if (e[t].logits) out_rows_.push_back(t);
  }
  const auto n_out = static_cast<std::int64_t>(out_rows_.size());

  Embed(e, n);
  for (std::int64_t layer = 0; layer < hp_.n_layer; ++layer) {
    const LayerWeights& l = model_.Layer(layer);
    Attend(l, layer, e, n, kv);  // every token's K/V rows are stored, including the last layer's
    if (layer + 1 < hp_.n_layer) {
      AttentionOutput(l, n);
      FeedForwardBlock(l, n);
      continue;
    }
    // Past the last attention only the tokens that return logits matter. Each row's computation
    // is per token, so dropping the others changes no bits of the ones kept.
    CompactToOutputRows();
    AttentionOutput(l, n_out);
    FeedForwardBlock(l, n_out);
  }
  if (n_out == 0) return;

  const std::int64_t n_embd = hp_.n_embd;
  pool_.ParallelFor(n_out, [&](std::int64_t i, int /*thread*/) {
    RmsNormRow(&x_[Rows(i, n_embd)], model_.OutputNorm().data(), hp_.rms_eps, n_embd, &xn_[Rows(i, n_embd)]);
  });
  const MatMulJob out[] = {{&model_.Output(), logits + Rows(logits_row, hp_.n_vocab)}};
  MatMuls(xn_.data(), n_out, n_embd, out);
}

}  // namespace llmsync::engine
