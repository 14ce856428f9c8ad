// Shared pieces of the AVX2 kernel set (kernels_avx2*.cpp). Include ONLY from translation units
// compiled with -mavx2 -mfma -mf16c: everything here is AVX2 code, kept in namespace avx2 so that no
// baseline translation unit defines the same inline functions (see kernels.h).
//
// Layout of work: the quantized kernels put eight outputs in the eight lanes of one vector. Each
// output's per-block integer dot product is formed exactly (8 int32 partial sums, then a
// horizontal reduction of the eight outputs' vectors at once), and the float step
// acc = fma(d_w * d_x, float(isum), acc) runs on all eight lanes together. Two tile shapes:
//   RowsTile:   8 rows x 1 token  (decode; and the tokens left over from groups of 8)
//   TokensTile: 1 row x 8 tokens  (prefill; each weight block is unpacked once for 8 tokens)
// A tile with fewer than 8 real rows or tokens repeats the last one and discards those lanes.
//
// Thread safety: pure functions.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "engine/kernels/kernels.h"

// Hot helpers must inline into their loops: an out-of-line helper would spill its vectors.
#define LLMSYNC_AVX2_INLINE inline __attribute__((always_inline))

namespace llmsync::engine::avx2 {

// TokensTile takes tokens in groups of this many.
inline constexpr std::int64_t kTokenGroup = 8;

// Lane i of the result is the sum of the eight int32 lanes of p[i]. Integer sums are exact, so the
// association order does not matter.
inline __m256i SumEachOf8(const __m256i* p) {
  const __m256i s01 = _mm256_hadd_epi32(p[0], p[1]);
  const __m256i s23 = _mm256_hadd_epi32(p[2], p[3]);
  const __m256i s45 = _mm256_hadd_epi32(p[4], p[5]);
  const __m256i s67 = _mm256_hadd_epi32(p[6], p[7]);
  const __m256i s0123 = _mm256_hadd_epi32(s01, s23);  // [p0..p3 low halves | p0..p3 high halves]
  const __m256i s4567 = _mm256_hadd_epi32(s45, s67);
  const __m256i lo = _mm256_permute2x128_si256(s0123, s4567, 0x20);
  const __m256i hi = _mm256_permute2x128_si256(s0123, s4567, 0x31);
  return _mm256_add_epi32(lo, hi);
}

// Converts the f16 held in the low (HighHalf = false) or high 16 bits of each int32 lane to float.
template <bool HighHalf>
inline __m256 F16LanesToF32(__m256i v) {
  const __m256i pick = HighHalf ? _mm256_setr_epi8(2, 3, 6, 7, 10, 11, 14, 15, -1, -1, -1, -1, -1, -1, -1, -1,
                                                   2, 3, 6, 7, 10, 11, 14, 15, -1, -1, -1, -1, -1, -1, -1, -1)
                                : _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, -1, -1, -1, -1, -1, -1, -1, -1,
                                                   0, 1, 4, 5, 8, 9, 12, 13, -1, -1, -1, -1, -1, -1, -1, -1);
  v = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(v, pick), 0x08);
  return _mm256_cvtph_ps(_mm256_castsi256_si128(v));
}

// Eight f16 values at base + offsets[i] + at (in bytes), as floats. The gather reads four bytes:
// when the f16 is the last field of a block, pass HighHalf = true and `at` two bytes earlier so that
// nothing past the block is read.
template <bool HighHalf>
inline __m256 GatherF16(const std::uint8_t* base, __m256i offsets, std::int64_t at) {
  const __m256i v = _mm256_i32gather_epi32(reinterpret_cast<const int*>(base + at), offsets, 1);
  return F16LanesToF32<HighHalf>(v);
}

inline float F16At(const std::uint8_t* p) {
  std::uint16_t h;
  __builtin_memcpy(&h, p, sizeof h);
  return _cvtsh_ss(h);
}

// Byte offsets (relative to the tile's first row) of the 8 rows of a RowsTile, the last real row
// repeated for lanes past `n_rows`.
inline __m256i RowOffsets(std::int64_t row_bytes, std::int64_t n_rows) {
  alignas(32) std::int32_t off[8];
  for (int i = 0; i < 8; ++i) off[i] = static_cast<std::int32_t>((i < n_rows ? i : n_rows - 1) * row_bytes);
  return _mm256_load_si256(reinterpret_cast<const __m256i*>(off));
}

// Element offsets of 8 tokens' rows (stride `stride` elements), the last real token repeated.
inline __m256i TokenOffsets(std::int64_t stride, std::int64_t n_tokens) {
  alignas(32) std::int32_t off[8];
  for (int i = 0; i < 8; ++i) off[i] = static_cast<std::int32_t>((i < n_tokens ? i : n_tokens - 1) * stride);
  return _mm256_load_si256(reinterpret_cast<const __m256i*>(off));
}

// Software prefetch for RowsTile: a tile's 8 rows are contiguous, so while it works through block
// b of nb it prefetches slice b of the next tile's bytes (the rows [r0 + 8, r0 + 16)). Streaming
// 8 rows at once otherwise leaves the hardware prefetcher behind.
class NextTilePrefetcher {
 public:
  NextTilePrefetcher(const std::uint8_t* tile, std::int64_t row_bytes, std::int64_t rows_after_tile,
                     std::int64_t nb) {
    const std::int64_t rows = rows_after_tile < 8 ? rows_after_tile : 8;
    next_ = tile + 8 * row_bytes;
    bytes_ = rows > 0 ? rows * row_bytes : 0;
    step_ = (bytes_ / (nb > 0 ? nb : 1) + 64) & ~std::int64_t{63};
  }
  LLMSYNC_AVX2_INLINE void Slice(std::int64_t b) const {
    const std::int64_t end = (b + 1) * step_ < bytes_ ? (b + 1) * step_ : bytes_;
    for (std::int64_t off = b * step_; off < end; off += 64)
      _mm_prefetch(reinterpret_cast<const char*>(next_ + off), _MM_HINT_T0);
  }

 private:
  const std::uint8_t* next_;
  std::int64_t bytes_;
  std::int64_t step_;
};

// Software prefetch within a RowsTile's 8 row streams: at a block starting `offset` bytes into
// each row, requests the `lines` cache lines kRowAhead bytes further on. Eight short streams
// stride through memory at once, which the hardware prefetcher ramps up to too slowly; with
// this, one core reads Q8_0 weights from DRAM as fast as a plain sequential scan does. The K-quant
// tiles are compute-bound and measured slower with it, so only the block-32 tiles use it.
inline constexpr std::int64_t kRowAhead = 512;

LLMSYNC_AVX2_INLINE void PrefetchRowsAhead(const std::uint8_t* const* rows, std::int64_t offset, int lines) {
  for (int i = 0; i < 8; ++i) {
    for (int l = 0; l < lines; ++l)
      _mm_prefetch(reinterpret_cast<const char*>(rows[i] + offset + kRowAhead + 64 * l), _MM_HINT_T0);
  }
}

// Stores lane i of v to y[i * stride] for i < n.
inline void StoreLanes(__m256 v, std::int64_t n, float* y, std::int64_t stride) {
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, v);
  for (std::int64_t i = 0; i < n; ++i) y[i * stride] = lanes[i];
}

void QuantizeQ8(const float* x, std::int64_t n, int block, int sum_group, std::int8_t* q, float* scales,
                std::int32_t* sums);
void MatMulF32(const std::uint8_t* w, const ActivationView& x, std::int64_t row_begin, std::int64_t row_end,
               float* y, std::int64_t y_stride);
void MatMulF16(const std::uint8_t* w, const ActivationView& x, std::int64_t row_begin, std::int64_t row_end,
               float* y, std::int64_t y_stride);
void MatMulBf16(const std::uint8_t* w, const ActivationView& x, std::int64_t row_begin, std::int64_t row_end,
                float* y, std::int64_t y_stride);
// NOLINTBEGIN(readability-identifier-naming): Q8_0 and Q4_0 keep ggml's spelling.
void MatMulQ8_0(const std::uint8_t* w, const ActivationView& x, std::int64_t row_begin, std::int64_t row_end,
                float* y, std::int64_t y_stride);
void MatMulQ4_0(const std::uint8_t* w, const ActivationView& x, std::int64_t row_begin, std::int64_t row_end,
                float* y, std::int64_t y_stride);
// NOLINTEND(readability-identifier-naming)
void MatMulQ4K(const std::uint8_t* w, const ActivationView& x, std::int64_t row_begin, std::int64_t row_end,
               float* y, std::int64_t y_stride);
void MatMulQ6K(const std::uint8_t* w, const ActivationView& x, std::int64_t row_begin, std::int64_t row_end,
               float* y, std::int64_t y_stride);

// Runs TokensTile over the groups of 8 tokens (and over a last partial group of at least
// kMinPartialGroup tokens, where the wasted lanes cost less than RowsTile would), and RowsTile over
// the remaining tokens one at a time, 8 rows per tile. Rows go in blocks of kRowBlock so that a
// block's weights stay in L1/L2 across token groups while each group's activations stay in L1.
// `rows_tile(r0, n_rows, t)` and `tokens_tile(r, t0, n_tokens_in_tile)` compute and store.
inline constexpr std::int64_t kMinPartialGroup = 6;
inline constexpr std::int64_t kRowBlock = 16;

template <typename RowsTile, typename TokensTile>
inline void Schedule(std::int64_t row_begin, std::int64_t row_end, std::int64_t n_tokens, RowsTile rows_tile,
                     TokensTile tokens_tile) {
  std::int64_t grouped = n_tokens / kTokenGroup * kTokenGroup;
  if (n_tokens - grouped >= kMinPartialGroup) grouped = n_tokens;
  for (std::int64_t b0 = row_begin; b0 < row_end; b0 += kRowBlock) {
    const std::int64_t b1 = b0 + kRowBlock < row_end ? b0 + kRowBlock : row_end;
    for (std::int64_t t0 = 0; t0 < grouped; t0 += kTokenGroup) {
      const std::int64_t n = grouped - t0 < kTokenGroup ? grouped - t0 : kTokenGroup;
      for (std::int64_t r = b0; r < b1; ++r) tokens_tile(r, t0, n);
    }
    for (std::int64_t r0 = b0; r0 < b1; r0 += 8) {
      const std::int64_t n_rows = b1 - r0 < 8 ? b1 - r0 : 8;
      for (std::int64_t t = grouped; t < n_tokens; ++t) rows_tile(r0, n_rows, t);
    }
  }
}

}  // namespace llmsync::engine::avx2
