// Shared pieces of the AVX-512 VNNI kernel set (kernels_avx512*.cpp). Include ONLY from translation
// units compiled with the AVX-512 flags (see CMakeLists.txt): everything here is AVX-512 code, kept
// in namespace avx512 so that no other translation unit defines the same inline functions (see
// kernels.h for why that matters).
//
// Thread safety: pure functions.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "engine/kernels/kernels.h"

// Hot helpers must inline into their loops: an out-of-line helper would spill its vectors.
#define LLMSYNC_AVX512_INLINE inline __attribute__((always_inline))

namespace llmsync::engine::avx512 {

inline float F16At(const std::uint8_t* p) {
  std::uint16_t h;
  __builtin_memcpy(&h, p, sizeof h);
  return _cvtsh_ss(h);
}

// Offsets i * stride for i < 8, the last of the first n repeated past it (tiles with fewer than 8
// real rows or tokens repeat the last one and discard those lanes).
inline __m256i RepeatOffsets(std::int64_t stride, std::int64_t n) {
  alignas(32) std::int32_t off[8];
  for (int i = 0; i < 8; ++i) off[i] = static_cast<std::int32_t>((i < n ? i : n - 1) * stride);
  return _mm256_load_si256(reinterpret_cast<const __m256i*>(off));
}

// Eight f16 values at base + offsets[i] + at (bytes), as floats. The gather reads four bytes: when
// the f16 is a block's last field pass HighHalf = true and `at` two bytes earlier, so that nothing
// past the block is read.
template <bool HighHalf>
LLMSYNC_AVX512_INLINE __m256 GatherF16(const std::uint8_t* base, __m256i offsets, std::int64_t at) {
  __m256i v = _mm256_i32gather_epi32(reinterpret_cast<const int*>(base + at), offsets, 1);
  if constexpr (HighHalf) v = _mm256_srli_epi32(v, 16);
  return _mm256_cvtph_ps(_mm256_cvtepi32_epi16(v));
}

// p[i] holds 16 int32 partial sums of output i (i < 8): 32-bit lanes 0-7 for a first block, 8-15
// for a second. Returns the 16 exact block sums as [first block: o0..o7 | second block: o0..o7].
LLMSYNC_AVX512_INLINE __m512i SumBlocksOf8(const __m512i* p) {
  __m512i s[4];
  for (int k = 0; k < 4; ++k) {  // per 128-bit lane: [a0+a2, b0+b2, a1+a3, b1+b3]
    s[k] = _mm512_add_epi32(_mm512_unpacklo_epi32(p[2 * k], p[2 * k + 1]),
                            _mm512_unpackhi_epi32(p[2 * k], p[2 * k + 1]));
  }
  // Per 128-bit lane: the lane sums of four outputs.
  const __m512i u0 = _mm512_add_epi32(_mm512_unpacklo_epi64(s[0], s[1]), _mm512_unpackhi_epi64(s[0], s[1]));
  const __m512i u1 = _mm512_add_epi32(_mm512_unpacklo_epi64(s[2], s[3]), _mm512_unpackhi_epi64(s[2], s[3]));
  // Add the two 128-bit lanes of each block: [b0 o0-3, b1 o0-3, b0 o4-7, b1 o4-7].
  const __m512i sum = _mm512_add_epi32(_mm512_shuffle_i64x2(u0, u1, _MM_SHUFFLE(2, 0, 2, 0)),
                                       _mm512_shuffle_i64x2(u0, u1, _MM_SHUFFLE(3, 1, 3, 1)));
  return _mm512_shuffle_i64x2(sum, sum, _MM_SHUFFLE(3, 1, 2, 0));
}

// Lane i of the result is the sum of all 16 int32 lanes of p[i].
LLMSYNC_AVX512_INLINE __m256i SumEachOf8(const __m512i* p) {
  const __m512i halves = SumBlocksOf8(p);
  return _mm256_add_epi32(_mm512_castsi512_si256(halves), _mm512_extracti64x4_epi64(halves, 1));
}

// Lane i of the result is the sum of the four int32 lanes of v[i].
LLMSYNC_AVX512_INLINE __m256i SumEachOf8x4(const __m128i* v) {
  const __m256i a01 = _mm256_set_m128i(v[1], v[0]);
  const __m256i a23 = _mm256_set_m128i(v[3], v[2]);
  const __m256i a45 = _mm256_set_m128i(v[5], v[4]);
  const __m256i a67 = _mm256_set_m128i(v[7], v[6]);
  const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(a01, a23), _mm256_hadd_epi32(a45, a67));
  // h holds the sums in the order 0 2 4 6 | 1 3 5 7.
  return _mm256_permutevar8x32_epi32(h, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

// Software prefetch for an 8-row decode tile: its 8 rows are contiguous, so while it works through
// block b of nb it prefetches slice b of the next tile's bytes (rows [r0 + 8, r0 + 16)); streaming 8
// rows at once otherwise leaves the hardware prefetcher behind. As avx2::NextTilePrefetcher.
class NextTilePrefetcher {
 public:
  NextTilePrefetcher(const std::uint8_t* tile, std::int64_t row_bytes, std::int64_t rows_after_tile,
                     std::int64_t nb) {
    const std::int64_t rows = rows_after_tile < 8 ? rows_after_tile : 8;
    next_ = tile + 8 * row_bytes;
    bytes_ = rows > 0 ? rows * row_bytes : 0;
    step_ = (bytes_ / (nb > 0 ? nb : 1) + 64) & ~std::int64_t{63};
  }
  LLMSYNC_AVX512_INLINE void Slice(std::int64_t b) const {
    const std::int64_t end = (b + 1) * step_ < bytes_ ? (b + 1) * step_ : bytes_;
    for (std::int64_t off = b * step_; off < end; off += 64)
      _mm_prefetch(reinterpret_cast<const char*>(next_ + off), _MM_HINT_T0);
  }

 private:
  const std::uint8_t* next_;
  std::int64_t bytes_;
  std::int64_t step_;
};

// Stores lane i of v to y[i * stride] for i < n.
inline void StoreLanes(__m256 v, std::int64_t n, float* y, std::int64_t stride) {
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, v);
  for (std::int64_t i = 0; i < n; ++i) y[i * stride] = lanes[i];
}

// Tokens [0, grouped) go to prefill tiles (groups of 8, and a last partial group of at least
// kMinPartialGroup tokens), the rest to decode tiles one token at a time; as avx2::Schedule.
inline constexpr std::int64_t kTokenGroup = 8;
inline constexpr std::int64_t kMinPartialGroup = 6;

inline std::int64_t GroupedTokens(std::int64_t n_tokens) {
  std::int64_t grouped = n_tokens / kTokenGroup * kTokenGroup;
  if (n_tokens - grouped >= kMinPartialGroup) grouped = n_tokens;
  return grouped;
}

// The view of tokens [first, n_tokens) of x.
inline ActivationView TokensFrom(const ActivationView& x, std::int64_t first) {
  ActivationView rest = x;
  rest.n_tokens = x.n_tokens - first;
  rest.f32 = x.f32 != nullptr ? x.f32 + first * x.n_cols : nullptr;
  rest.q8 = x.q8 + first * x.n_cols;
  rest.scales = x.scales + first * x.scales_per_row;
  rest.sums = x.sums + first * x.sums_per_row;
  return rest;
}

// Q4_K and Q6_K: decode tokens through the AVX-512 8-row tiles (kernels_avx512_k.cpp), prefill groups
// through the AVX2 kernels.
void MatMulQ4K(const std::uint8_t* w, const ActivationView& x, std::int64_t row_begin, std::int64_t row_end,
               float* y, std::int64_t y_stride);
void MatMulQ6K(const std::uint8_t* w, const ActivationView& x, std::int64_t row_begin, std::int64_t row_end,
               float* y, std::int64_t y_stride);

// Q4_0 in WeightLayout::kInterleaved16: 16-row x 8-token tiles (kernels_avx512_q4.cpp).
void MatMulQ4_0Interleaved(  // NOLINT(readability-identifier-naming): ggml's type name
    const std::uint8_t* w, const ActivationView& x, std::int64_t row_begin, std::int64_t row_end, float* y,
    std::int64_t y_stride);

}  // namespace llmsync::engine::avx512
