// AVX2 kernel set, part 1: activation quantization, the float-weight kernels and the table.
// Compiled with -mavx2 -mfma -mf16c; see kernels_avx2.h for what may be used here.
#include <cstring>

#include "engine/kernels/kernels_avx2.h"

namespace llmsync::engine {
namespace avx2 {
namespace {

float HorizontalMax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}

std::int32_t HorizontalSum(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

// Quantizes 32 floats with the multiplier `id` into 32 int8 codes at q; returns the four int32
// vectors of codes (elements 0-7, 8-15, 16-23, 24-31) for the sums.
void Quantize32(const float* x, __m256 id, std::int8_t* q, __m256i* codes) {
  const __m256 hi = _mm256_set1_ps(127.0f), lo = _mm256_set1_ps(-127.0f);
  for (int c = 0; c < 4; ++c) {
    __m256 v = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * c), id),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    v = _mm256_max_ps(_mm256_min_ps(v, hi), lo);
    codes[c] = _mm256_cvtps_epi32(v);
  }
  const __m256i p16 = _mm256_packs_epi32(codes[0], codes[1]);  // lane-interleaved
  const __m256i p16b = _mm256_packs_epi32(codes[2], codes[3]);
  const __m256i p8 = _mm256_packs_epi16(p16, p16b);
  const __m256i ordered = _mm256_permutevar8x32_epi32(p8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(q), ordered);
}

}  // namespace

void QuantizeQ8(const float* x, std::int64_t n, int block, int sum_group, std::int8_t* q, float* scales,
                std::int32_t* sums) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256 inf = _mm256_set1_ps(__builtin_inff());
  const int groups = block / sum_group;
  for (std::int64_t b = 0; b < n / block; ++b) {
    const float* xb = x + b * block;
    std::int8_t* qb = q + b * block;
    std::int32_t* sb = sums + b * groups;
    __m256 amax = _mm256_setzero_ps();
    __m256 bad = _mm256_setzero_ps();
    for (int i = 0; i < block; i += 8) {
      const __m256 a = _mm256_and_ps(_mm256_loadu_ps(xb + i), abs_mask);
      amax = _mm256_max_ps(amax, a);
      bad = _mm256_or_ps(bad, _mm256_cmp_ps(a, inf, _CMP_NLT_UQ));  // inf or NaN
    }
    const float m = HorizontalMax(amax);
    if (_mm256_movemask_ps(bad) != 0 || m == 0.0f) {
      scales[b] = _mm256_movemask_ps(bad) != 0 ? __builtin_nanf("") : 0.0f;
      std::memset(qb, 0, static_cast<std::size_t>(block));
      for (int g = 0; g < groups; ++g) sb[g] = 0;
      continue;
    }
    scales[b] = m / 127.0f;
    const __m256 id = _mm256_set1_ps(127.0f / m);
    for (int i = 0; i < block; i += 32) {
      __m256i codes[4];
      Quantize32(xb + i, id, qb + i, codes);
      if (sum_group == 32) {
        sb[i / 32] = HorizontalSum(
            _mm256_add_epi32(_mm256_add_epi32(codes[0], codes[1]), _mm256_add_epi32(codes[2], codes[3])));
      } else {  // 16
        sb[i / 16] = HorizontalSum(_mm256_add_epi32(codes[0], codes[1]));
        sb[i / 16 + 1] = HorizontalSum(_mm256_add_epi32(codes[2], codes[3]));
      }
    }
  }
}

namespace {

// Float weights: 8 lanes per output (element i in lane i % 8), as the scalar set.
struct LoadF32 {
  static __m256 Vec(const std::uint8_t* row, std::int64_t i) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(row) + i);
  }
  static float One(const std::uint8_t* row, std::int64_t i) {
    float v;
    std::memcpy(&v, row + 4 * i, sizeof v);
    return v;
  }
  static constexpr std::int64_t kBytes = 4;
};
struct LoadF16 {
  static __m256 Vec(const std::uint8_t* row, std::int64_t i) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * i)));
  }
  static float One(const std::uint8_t* row, std::int64_t i) { return F16At(row + 2 * i); }
  static constexpr std::int64_t kBytes = 2;
};
struct LoadBf16 {
  static __m256 Vec(const std::uint8_t* row, std::int64_t i) {
    const __m256i h = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * i)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(h, 16));
  }
  static float One(const std::uint8_t* row, std::int64_t i) {
    std::uint16_t h;
    std::memcpy(&h, row + 2 * i, sizeof h);
    const std::uint32_t bits = static_cast<std::uint32_t>(h) << 16;
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
  }
  static constexpr std::int64_t kBytes = 2;
};

// Outputs for Rows rows x Tokens tokens, each the canonical 8-lane reduction.
template <typename Load, int Rows, int Tokens>
void FloatTile(const std::uint8_t* w, std::int64_t row_bytes, const float* x, std::int64_t n, float* y,
               std::int64_t y_stride) {
  __m256 acc[Rows][Tokens];
  for (int r = 0; r < Rows; ++r) {
    for (int t = 0; t < Tokens; ++t) acc[r][t] = _mm256_setzero_ps();
  }
  const std::int64_t full = n / 8 * 8;
  for (std::int64_t i = 0; i < full; i += 8) {
    __m256 xv[Tokens];
    for (int t = 0; t < Tokens; ++t) xv[t] = _mm256_loadu_ps(x + t * n + i);
    for (int r = 0; r < Rows; ++r) {
      const __m256 wv = Load::Vec(w + r * row_bytes, i);
      for (int t = 0; t < Tokens; ++t) acc[r][t] = _mm256_fmadd_ps(wv, xv[t], acc[r][t]);
    }
  }
  for (int r = 0; r < Rows; ++r) {
    for (int t = 0; t < Tokens; ++t) {
      alignas(32) float l[8];
      _mm256_store_ps(l, acc[r][t]);
      for (std::int64_t i = full; i < n; ++i) {
        l[i % 8] = __builtin_fmaf(Load::One(w + r * row_bytes, i), x[t * n + i], l[i % 8]);
      }
      y[t * y_stride + r] = ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
    }
  }
}

template <typename Load, int Rows, int Tokens>
void FloatRows(const std::uint8_t* w, const ActivationView& x, std::int64_t r0, std::int64_t r1,
               std::int64_t t, float* y, std::int64_t y_stride) {
  const std::int64_t row_bytes = x.n_cols * Load::kBytes;
  std::int64_t r = r0;
  for (; r + Rows <= r1; r += Rows) {
    FloatTile<Load, Rows, Tokens>(w + r * row_bytes, row_bytes, x.f32 + t * x.n_cols, x.n_cols,
                                  y + t * y_stride + r, y_stride);
  }
  for (; r < r1; ++r) {
    FloatTile<Load, 1, Tokens>(w + r * row_bytes, row_bytes, x.f32 + t * x.n_cols, x.n_cols,
                               y + t * y_stride + r, y_stride);
  }
}

template <typename Load>
void MatMulFloat(const std::uint8_t* w, const ActivationView& x, std::int64_t row_begin, std::int64_t row_end,
                 float* y, std::int64_t y_stride) {
  // Tokens in groups of 4 with 2 rows per tile (each weight vector feeds 4 tokens); the rest one
  // token at a time with 4 rows per tile. Row blocks of 16 keep their weights in L1 across tokens.
  constexpr std::int64_t kRowBlock = 16;
  const std::int64_t grouped = x.n_tokens / 4 * 4;
  for (std::int64_t r0 = row_begin; r0 < row_end; r0 += kRowBlock) {
    const std::int64_t r1 = r0 + kRowBlock < row_end ? r0 + kRowBlock : row_end;
    for (std::int64_t t = 0; t < grouped; t += 4) FloatRows<Load, 2, 4>(w, x, r0, r1, t, y, y_stride);
    for (std::int64_t t = grouped; t < x.n_tokens; ++t) FloatRows<Load, 4, 1>(w, x, r0, r1, t, y, y_stride);
  }
}

}  // namespace

void MatMulF32(const std::uint8_t* w, const ActivationView& x, std::int64_t row_begin, std::int64_t row_end,
               float* y, std::int64_t y_stride) {
  MatMulFloat<LoadF32>(w, x, row_begin, row_end, y, y_stride);
}
void MatMulF16(const std::uint8_t* w, const ActivationView& x, std::int64_t row_begin, std::int64_t row_end,
               float* y, std::int64_t y_stride) {
  MatMulFloat<LoadF16>(w, x, row_begin, row_end, y, y_stride);
}
void MatMulBf16(const std::uint8_t* w, const ActivationView& x, std::int64_t row_begin, std::int64_t row_end,
                float* y, std::int64_t y_stride) {
  MatMulFloat<LoadBf16>(w, x, row_begin, row_end, y, y_stride);
}

}  // namespace avx2

const KernelSet& Avx2Kernels() {
  static const KernelSet kSet = {
      avx2::QuantizeQ8,
      avx2::MatMulF32,
      avx2::MatMulF16,
      avx2::MatMulBf16,
      avx2::MatMulQ8_0,
      avx2::MatMulQ4_0,
      avx2::MatMulQ4K,
      avx2::MatMulQ6K,
      ScalarKernels().q4_0_interleaved,  // never chosen for this set's loads (matmul.h)
  };
  return kSet;
}

}  // namespace llmsync::engine
