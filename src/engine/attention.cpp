#include "engine/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "engine/kernels/kernels.h"
#include "engine/matmul.h"
#include "engine/quant/quant.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace llmsync::engine {
namespace {

struct AttentionKernels {
  float (*dot)(const float* a, const float* b, std::int64_t n);
  // out[j] = dot(q, keys + j * n, n) for j < n_keys, with exactly dot's bits.
  void (*dots)(const float* q, const float* keys, std::int64_t n_keys, std::int64_t n, float* out);
  void (*axpy)(float a, const float* x, float* y, std::int64_t n);  // y[i] = fma(a, x[i], y[i])
  void (*f16_to_f32)(const std::uint8_t* src, float* dst, std::int64_t n);
};

float DotScalar(const float* a, const float* b, std::int64_t n) {
  float lanes[8] = {};
  for (std::int64_t i = 0; i < n; ++i) lanes[i % 8] = std::fma(a[i], b[i], lanes[i % 8]);
  return ReduceLanes8(lanes);
}

void DotsScalar(const float* q, const float* keys, std::int64_t n_keys, std::int64_t n, float* out) {
  for (std::int64_t j = 0; j < n_keys; ++j) out[j] = DotScalar(q, keys + j * n, n);
}

void AxpyScalar(float a, const float* x, float* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) y[i] = std::fma(a, x[i], y[i]);
}

void F16ToF32Scalar(const std::uint8_t* src, float* dst, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) {
    std::uint16_t h = 0;
    std::memcpy(&h, src + 2 * i, 2);
    dst[i] = F16ToF32(h);
  }
}

constexpr AttentionKernels kScalarKernels{DotScalar, DotsScalar, AxpyScalar, F16ToF32Scalar};

#if defined(__x86_64__)
__attribute__((target("avx2,fma,f16c"))) float DotAvx2(const float* a, const float* b, std::int64_t n) {
  __m256 acc = _mm256_setzero_ps();
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, acc);
  for (; i < n; ++i) lanes[i % 8] = std::fma(a[i], b[i], lanes[i % 8]);
  return ReduceLanes8(lanes);
}

// Four keys at a time: four independent fma chains hide the fma latency that bounds a single dot
// of a short head. Each key's lanes see the same fmas in the same order as DotAvx2.
__attribute__((target("avx2,fma,f16c"))) void DotsAvx2(const float* q, const float* keys, std::int64_t n_keys,
                                                       std::int64_t n, float* out) {
  std::int64_t j = 0;
  const std::int64_t vec_end = n / 8 * 8;
  for (; j + 4 <= n_keys; j += 4) {
    const float* k0 = keys + j * n;
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (std::int64_t i = 0; i < vec_end; i += 8) {
      const __m256 qv = _mm256_loadu_ps(q + i);
      for (int u = 0; u < 4; ++u) acc[u] = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k0 + u * n + i), acc[u]);
    }
    for (int u = 0; u < 4; ++u) {
      alignas(32) float lanes[8];
      _mm256_store_ps(lanes, acc[u]);
      for (std::int64_t i = vec_end; i < n; ++i) lanes[i % 8] = std::fma(q[i], k0[u * n + i], lanes[i % 8]);
      out[j + u] = ReduceLanes8(lanes);
    }
  }
  for (; j < n_keys; ++j) out[j] = DotAvx2(q, keys + j * n, n);
}

__attribute__((target("avx2,fma,f16c"))) void AxpyAvx2(float a, const float* x, float* y, std::int64_t n) {
  const __m256 va = _mm256_set1_ps(a);
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  }
  for (; i < n; ++i) y[i] = std::fma(a, x[i], y[i]);
}

__attribute__((target("avx2,fma,f16c"))) void F16ToF32Avx2(const std::uint8_t* src, float* dst,
                                                           std::int64_t n) {
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * i));
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
  }
  F16ToF32Scalar(src + 2 * i, dst + i, n - i);
}

constexpr AttentionKernels kAvx2Kernels{DotAvx2, DotsAvx2, AxpyAvx2, F16ToF32Avx2};
#endif

const AttentionKernels& Kernels() {
#if defined(__x86_64__)
  static const AttentionKernels& kernels =
      ActiveKernelIsa() != KernelIsa::kScalar ? kAvx2Kernels : kScalarKernels;
#else
  static const AttentionKernels& kernels = kScalarKernels;
#endif
  return kernels;
}

// Converts one row of the head's slice of a KV row to f32.
inline void LoadRow(const AttentionKernels& k, KvDtype dtype, const std::uint8_t* src, std::int64_t n,
                    float* dst) {
  if (dtype == KvDtype::kF16) {
    k.f16_to_f32(src, dst, n);
  } else {
    std::memcpy(dst, src, static_cast<std::size_t>(n) * sizeof(float));
  }
}

// Walks the runs of one plane (keys or values) of a sequence in ascending position order.
class RunCursor {
 public:
  RunCursor(KvStorage& kv, SeqId seq, std::int64_t layer, bool values, std::int64_t head_offset_bytes)
      : kv_(kv), seq_(seq), layer_(layer), values_(values), head_offset_(head_offset_bytes) {}

  const std::uint8_t* Row(std::int64_t pos) {
    if (pos < base_ || pos >= base_ + run_.count) {
      run_ = values_ ? kv_.Values(seq_, layer_, pos) : kv_.Keys(seq_, layer_, pos);
      base_ = pos;
    }
    return run_.data + (pos - base_) * run_.stride_bytes + head_offset_;
  }

 private:
  KvStorage& kv_;
  SeqId seq_;
  std::int64_t layer_;
  bool values_;
  std::int64_t head_offset_;
  KvRun run_;
  std::int64_t base_ = 0;
};

}  // namespace

void AttentionScratch::Resize(std::int64_t group, std::int64_t head_dim) {
  k_chunk_.assign(static_cast<std::size_t>(kAttentionChunk * head_dim), 0.0f);
  v_row_.assign(static_cast<std::size_t>(head_dim), 0.0f);
  scores_.assign(static_cast<std::size_t>(kAttentionQueryTile * group * kAttentionChunk), 0.0f);
  max_.assign(static_cast<std::size_t>(kAttentionQueryTile * group), 0.0f);
  sum_.assign(static_cast<std::size_t>(kAttentionQueryTile * group), 0.0f);
  acc_.assign(static_cast<std::size_t>(kAttentionQueryTile * group * head_dim), 0.0f);
  acc_rows_.assign(static_cast<std::size_t>(kAttentionQueryTile * group), nullptr);
  q_rows_.assign(static_cast<std::size_t>(kAttentionQueryTile * group), nullptr);
  out_rows_.assign(static_cast<std::size_t>(kAttentionQueryTile * group), nullptr);
  last_pos_.assign(static_cast<std::size_t>(kAttentionQueryTile * group), 0);
  seen_.assign(static_cast<std::size_t>(kAttentionQueryTile * group), 0);
}

void AttendKvHeads(KvStorage& kv, SeqId seq, std::int64_t layer, std::int64_t first_pos,
                   std::int64_t n_queries, std::int64_t kv_head, std::int64_t group, std::int64_t head_dim,
                   float scale, const float* q, float* out, std::int64_t row_stride, AttentionScratch& s) {
  const AttentionKernels& k = Kernels();
  const KvDtype dtype = kv.Geometry().dtype;
  const std::int64_t head_offset = kv_head * head_dim * static_cast<std::int64_t>(KvDtypeBytes(dtype));
  RunCursor keys(kv, seq, layer, false, head_offset);
  RunCursor values(kv, seq, layer, true, head_offset);
  const float neg_inf = -std::numeric_limits<float>::infinity();
  // Row r = i * group + g is head g of query i; it sees positions [0, first_pos + i].
  const std::int64_t rows = n_queries * group;
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int64_t at = (r / group) * row_stride + (r % group) * head_dim;
    s.q_rows_[r] = q + at;
    s.out_rows_[r] = out + at;
    s.acc_rows_[r] = &s.acc_[r * head_dim];
    s.last_pos_[r] = first_pos + r / group;
  }
  // Outputs accumulate in contiguous scratch rows (acc_rows_): the tile's real output rows are a
  // multiple of 1 KiB apart, where stores to one and loads from another falsely alias (4 KiB
  // aliasing). They are copied out, normalized, at the end.
  std::fill(s.acc_.begin(), s.acc_.begin() + rows * head_dim, 0.0f);
  std::fill(s.max_.begin(), s.max_.begin() + rows, neg_inf);
  std::fill(s.sum_.begin(), s.sum_.begin() + rows, 0.0f);
  const std::int64_t n_pos = first_pos + n_queries;
  for (std::int64_t c = 0; c < n_pos; c += kAttentionChunk) {
    const std::int64_t n = std::min(kAttentionChunk, n_pos - c);
    for (std::int64_t j = 0; j < n; ++j)
      LoadRow(k, dtype, keys.Row(c + j), head_dim, &s.k_chunk_[j * head_dim]);
    for (std::int64_t r = 0; r < rows; ++r) {
      const std::int64_t seen = std::min(kAttentionChunk, s.last_pos_[r] + 1 - c);
      s.seen_[r] = seen;
      if (seen <= 0) continue;  // the chunk is entirely after this query
      float* scores = &s.scores_[r * kAttentionChunk];
      float chunk_max = neg_inf;
      k.dots(s.q_rows_[r], s.k_chunk_.data(), seen, head_dim, scores);
      for (std::int64_t j = 0; j < seen; ++j) {
        scores[j] *= scale;
        chunk_max = std::max(chunk_max, scores[j]);
      }
      const float new_max = std::max(s.max_[r], chunk_max);
      if (new_max == neg_inf) {  // every score so far is -inf: nothing to weigh yet
        std::fill(scores, scores + seen, 0.0f);
        continue;
      }
      const float alpha = std::exp(s.max_[r] - new_max);
      s.sum_[r] *= alpha;
      float* acc = s.acc_rows_[r];
      for (std::int64_t i = 0; i < head_dim; ++i) acc[i] *= alpha;
      s.max_[r] = new_max;
      for (std::int64_t j = 0; j < seen; ++j) {
        scores[j] = std::exp(scores[j] - new_max);
        s.sum_[r] += scores[j];
      }
    }
    for (std::int64_t j = 0; j < n; ++j) {
      LoadRow(k, dtype, values.Row(c + j), head_dim, s.v_row_.data());
      for (std::int64_t r = 0; r < rows; ++r) {
        if (j >= s.seen_[r]) continue;
        k.axpy(s.scores_[r * kAttentionChunk + j], s.v_row_.data(), s.acc_rows_[r], head_dim);
      }
    }
  }
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* acc = s.acc_rows_[r];
    float* dst = s.out_rows_[r];
    for (std::int64_t i = 0; i < head_dim; ++i) dst[i] = acc[i] / s.sum_[r];
  }
}

void StoreKvRow(KvDtype dtype, const float* src, std::int64_t n, std::uint8_t* dst) {
  if (dtype == KvDtype::kF32) {
    std::memcpy(dst, src, static_cast<std::size_t>(n) * sizeof(float));
    return;
  }
  for (std::int64_t i = 0; i < n; ++i) {
    std::uint16_t h = F32ToF16(src[i]);
    std::memcpy(dst + 2 * i, &h, 2);
  }
}

}  // namespace llmsync::engine
