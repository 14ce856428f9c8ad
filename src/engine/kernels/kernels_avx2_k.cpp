// AVX2 kernel set, part 3: Q4_K and Q6_K weights against 8-bit activation blocks of 256 (with code
// sums per 16). Compiled with -mavx2 -mfma -mf16c; see kernels_avx2.h for the tiling.
#include <cstring>

#include "engine/kernels/kernels_avx2.h"

namespace llmsync::engine::avx2 {
namespace {

constexpr std::int64_t kQ4KBytes = 144;
constexpr std::int64_t kQ6KBytes = 210;

// shuffle_epi8 masks that broadcast 16-bit element j of a 128-bit lane to all 8 of its elements.
LLMSYNC_AVX2_INLINE __m256i BroadcastWordMask(int j) {
  return _mm256_set1_epi16(static_cast<short>((2 * j) | ((2 * j + 1) << 8)));
}

// The 8 sub-block code sums (sums of 32 codes) of a super-block as int16, from its 16 int32 sums of
// 16 codes. |sum| <= 32 * 127, so the packing does not saturate.
LLMSYNC_AVX2_INLINE __m128i SubBlockSums(const std::int32_t* xs) {
  const __m256i s = _mm256_hadd_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(xs)),
                                      _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xs + 8)));
  // hadd leaves sub-blocks in the order 0 1 4 5 | 2 3 6 7.
  const __m256i ordered = _mm256_permutevar8x32_epi32(s, _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7));
  return _mm_packs_epi32(_mm256_castsi256_si128(ordered), _mm256_extracti128_si256(ordered, 1));
}

// Lane i of the result is the sum of the four int32 lanes of v[i].
LLMSYNC_AVX2_INLINE __m256i SumEachOf8x4(const __m128i* v) {
  const __m256i a01 = _mm256_set_m128i(v[1], v[0]);
  const __m256i a23 = _mm256_set_m128i(v[3], v[2]);
  const __m256i a45 = _mm256_set_m128i(v[5], v[4]);
  const __m256i a67 = _mm256_set_m128i(v[7], v[6]);
  const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(a01, a23), _mm256_hadd_epi32(a45, a67));
  // h holds the sums in the order 0 2 4 6 | 1 3 5 7.
  return _mm256_permutevar8x32_epi32(h, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

// A Q4_K block's 6-bit scales and mins, unpacked to bytes: scales in the low 8 bytes of `scales`,
// mins in the low 8 bytes of `mins`.
struct Q4KScales {
  __m128i scales;
  __m128i mins;
};

LLMSYNC_AVX2_INLINE Q4KScales UnpackQ4KScales(const std::uint8_t* block) {
  std::uint32_t w[3];
  std::memcpy(w, block + 4, sizeof w);
  // Scales: bytes 0-3 low 6 bits (sub-blocks 0-3); bytes 8-11 low nibbles plus the top 2 bits of
  // bytes 0-3 (sub-blocks 4-7). Mins likewise from bytes 4-7 and the high nibbles of 8-11.
  const std::uint32_t sc_lo = w[0] & 0x3f3f3f3fu;
  const std::uint32_t sc_hi = (w[2] & 0x0f0f0f0fu) | (((w[0] >> 6) & 0x03030303u) << 4);
  const std::uint32_t m_lo = w[1] & 0x3f3f3f3fu;
  const std::uint32_t m_hi = ((w[2] >> 4) & 0x0f0f0f0fu) | (((w[1] >> 6) & 0x03030303u) << 4);
  return {_mm_set_epi32(0, 0, static_cast<int>(sc_hi), static_cast<int>(sc_lo)),
          _mm_set_epi32(0, 0, static_cast<int>(m_hi), static_cast<int>(m_lo))};
}

// sum_j m_j * (code sum of sub-block j) as 4 int32 partial sums.
LLMSYNC_AVX2_INLINE __m128i MinsDot(__m128i mins8, __m128i sub_sums) {
  return _mm_madd_epi16(_mm_cvtepu8_epi16(mins8), sub_sums);
}

// Sub-block j's scale in every int16 lane, for j = 0..7.
LLMSYNC_AVX2_INLINE void ScaleBroadcasts(__m128i scales8, __m256i* out) {
  const __m256i sc16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(scales8));
  for (int j = 0; j < 8; ++j) out[j] = _mm256_shuffle_epi8(sc16, BroadcastWordMask(j));
}

// sum_j sc_j * sum_{e in j} q_e x_e as 8 int32 partial sums, reading the codes straight from the
// block; xq is the super-block's 256 activation codes.
LLMSYNC_AVX2_INLINE __m256i DotQ4K(const std::uint8_t* block, const __m256i* scales, const std::int8_t* xq) {
  const __m256i low = _mm256_set1_epi8(0x0f);
  __m256i sum = _mm256_setzero_si256();
  for (int c = 0; c < 4; ++c) {
    const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 16 + 32 * c));
    const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 64 * c));
    const __m256i x1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 64 * c + 32));
    const __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_and_si256(q, low), x0), scales[2 * c]);
    const __m256i p1 = _mm256_madd_epi16(
        _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(q, 4), low), x1), scales[2 * c + 1]);
    sum = _mm256_add_epi32(sum, _mm256_add_epi32(p0, p1));
  }
  return sum;
}

// A Q4_K block's codes, sub-block j in codes[j] (0..15 per byte).
LLMSYNC_AVX2_INLINE void UnpackQ4KCodes(const std::uint8_t* block, __m256i* codes) {
  const __m256i low = _mm256_set1_epi8(0x0f);
  for (int c = 0; c < 4; ++c) {
    const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 16 + 32 * c));
    codes[2 * c] = _mm256_and_si256(q, low);
    codes[2 * c + 1] = _mm256_and_si256(_mm256_srli_epi16(q, 4), low);
  }
}

// DotQ4K over codes unpacked once (for the tokens tile, which reuses them for 8 tokens).
LLMSYNC_AVX2_INLINE __m256i DotQ4KUnpacked(const __m256i* codes, const __m256i* scales,
                                           const std::int8_t* xq) {
  __m256i sum = _mm256_setzero_si256();
  for (int j = 0; j < 8; ++j) {
    const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 32 * j));
    sum = _mm256_add_epi32(sum, _mm256_madd_epi16(_mm256_maddubs_epi16(codes[j], xv), scales[j]));
  }
  return sum;
}

// acc = fma(d * dx, sumi, acc); acc = fma(-(dmin * dx), summ, acc), lane-wise.
LLMSYNC_AVX2_INLINE __m256 AccumulateQ4K(__m256 acc, __m256 d, __m256 dmin, __m256 dx, __m256i sumi,
                                         __m256i summ) {
  acc = _mm256_fmadd_ps(_mm256_mul_ps(d, dx), _mm256_cvtepi32_ps(sumi), acc);
  const __m256 neg = _mm256_xor_ps(_mm256_mul_ps(dmin, dx), _mm256_set1_ps(-0.0f));
  return _mm256_fmadd_ps(neg, _mm256_cvtepi32_ps(summ), acc);
}

void RowsTileQ4K(const std::uint8_t* w, const ActivationView& x, std::int64_t r0, std::int64_t n_rows,
                 std::int64_t row_end, std::int64_t t, float* y, std::int64_t y_stride) {
  const std::int64_t nb = x.n_cols / 256;
  const std::int64_t row_bytes = nb * kQ4KBytes;
  const std::uint8_t* base = w + r0 * row_bytes;
  const std::uint8_t* rows[8];
  for (int i = 0; i < 8; ++i) rows[i] = base + (i < n_rows ? i : n_rows - 1) * row_bytes;
  const __m256i offsets = RowOffsets(row_bytes, n_rows);
  const std::int8_t* xq = x.q8 + t * x.n_cols;
  const float* xd = x.scales + t * x.scales_per_row;
  const std::int32_t* xs = x.sums + t * x.sums_per_row;
  const NextTilePrefetcher prefetch(base, row_bytes, row_end - r0 - 8, nb);
  __m256 acc = _mm256_setzero_ps();
  for (std::int64_t b = 0; b < nb; ++b) {
    prefetch.Slice(b);
    const __m128i sub_sums = SubBlockSums(xs + 16 * b);
    __m256i p[8];
    __m128i m[8];
    for (int i = 0; i < 8; ++i) {
      const std::uint8_t* block = rows[i] + b * kQ4KBytes;
      const Q4KScales sm = UnpackQ4KScales(block);
      __m256i scales[8];
      ScaleBroadcasts(sm.scales, scales);
      p[i] = DotQ4K(block, scales, xq + 256 * b);
      m[i] = MinsDot(sm.mins, sub_sums);
    }
    const __m256 d = GatherF16<false>(base, offsets, b * kQ4KBytes);
    const __m256 dmin = GatherF16<false>(base, offsets, b * kQ4KBytes + 2);
    acc = AccumulateQ4K(acc, d, dmin, _mm256_set1_ps(xd[b]), SumEachOf8(p), SumEachOf8x4(m));
  }
  StoreLanes(acc, n_rows, y + t * y_stride + r0, 1);
}

void TokensTileQ4K(const std::uint8_t* w, const ActivationView& x, std::int64_t r, std::int64_t t0,
                   std::int64_t n_tokens, float* y, std::int64_t y_stride) {
  const std::int64_t nb = x.n_cols / 256;
  const std::uint8_t* row = w + r * nb * kQ4KBytes;
  std::int64_t tok[8];
  for (int i = 0; i < 8; ++i) tok[i] = t0 + (i < n_tokens ? i : n_tokens - 1);
  const __m256i scale_idx = TokenOffsets(x.scales_per_row, n_tokens);
  const float* xd = x.scales + t0 * x.scales_per_row;
  __m256 acc = _mm256_setzero_ps();
  for (std::int64_t b = 0; b < nb; ++b) {
    const std::uint8_t* block = row + b * kQ4KBytes;
    const Q4KScales sm = UnpackQ4KScales(block);
    __m256i scales[8];
    ScaleBroadcasts(sm.scales, scales);
    __m256i codes[8];
    UnpackQ4KCodes(block, codes);
    __m256i p[8];
    __m128i m[8];
    for (int i = 0; i < 8; ++i) {
      p[i] = DotQ4KUnpacked(codes, scales, x.q8 + tok[i] * x.n_cols + 256 * b);
      m[i] = MinsDot(sm.mins, SubBlockSums(x.sums + tok[i] * x.sums_per_row + 16 * b));
    }
    const __m256 dx = _mm256_i32gather_ps(xd + b, scale_idx, 4);
    acc = AccumulateQ4K(acc, _mm256_set1_ps(F16At(block)), _mm256_set1_ps(F16At(block + 2)), dx,
                        SumEachOf8(p), SumEachOf8x4(m));
  }
  StoreLanes(acc, n_tokens, y + t0 * y_stride + r, y_stride);
}

// A Q6_K super-block unpacked: 8 groups of 32 codes (0..63), each covering two sub-blocks of 16.
struct Q6KUnpacked {
  __m256i codes[8];
  __m256i scales[8];  // int16: group g's first sub-block scale in lanes 0-7, second in 8-15
  __m256i scales16;   // the 16 scales as int16, for the offset term
};

// shuffle_epi8 mask taking int16 element k (of each 128-bit lane) into every element of the low
// lane and element k + 1 into every element of the high lane.
LLMSYNC_AVX2_INLINE __m256i PairMask(int k) {
  const char a0 = static_cast<char>(2 * k), a1 = static_cast<char>(2 * k + 1);
  const char b0 = static_cast<char>(2 * k + 2), b1 = static_cast<char>(2 * k + 3);
  return _mm256_setr_epi8(a0, a1, a0, a1, a0, a1, a0, a1, a0, a1, a0, a1, a0, a1, a0, a1, b0, b1, b0, b1, b0,
                          b1, b0, b1, b0, b1, b0, b1, b0, b1, b0, b1);
}

// The 16 sums of 16 activation codes of a super-block as int16 (|sum| <= 16 * 127).
LLMSYNC_AVX2_INLINE __m256i SumsOf16(const std::int32_t* xs) {
  const __m256i packed = _mm256_packs_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(xs)),
                                            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xs + 8)));
  return _mm256_permute4x64_epi64(packed, 0xd8);  // undo packs' lane interleaving
}

LLMSYNC_AVX2_INLINE void UnpackQ6K(const std::uint8_t* block, Q6KUnpacked* u) {
  const __m256i low = _mm256_set1_epi8(0x0f);
  const __m256i high = _mm256_set1_epi8(0x30);
  for (int h = 0; h < 2; ++h) {
    const __m256i q0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 64 * h));
    const __m256i q1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 64 * h + 32));
    const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 128 + 32 * h));
    u->codes[4 * h + 0] =
        _mm256_or_si256(_mm256_and_si256(q0, low), _mm256_and_si256(_mm256_slli_epi16(qh, 4), high));
    u->codes[4 * h + 1] =
        _mm256_or_si256(_mm256_and_si256(q1, low), _mm256_and_si256(_mm256_slli_epi16(qh, 2), high));
    u->codes[4 * h + 2] =
        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q0, 4), low), _mm256_and_si256(qh, high));
    u->codes[4 * h + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q1, 4), low),
                                          _mm256_and_si256(_mm256_srli_epi16(qh, 2), high));
  }
  u->scales16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 192)));
  const __m256i first = _mm256_permute4x64_epi64(u->scales16, 0x44);   // scales 0-7 in both lanes
  const __m256i second = _mm256_permute4x64_epi64(u->scales16, 0xee);  // scales 8-15 in both lanes
  for (int g = 0; g < 8; ++g)
    u->scales[g] = _mm256_shuffle_epi8(g < 4 ? first : second, PairMask((2 * g) % 8));
}

// sum_j sc_j * sum_{e in j} (q_e - 32) x_e as 8 int32 partial sums; sums16 from SumsOf16.
LLMSYNC_AVX2_INLINE __m256i DotQ6K(const Q6KUnpacked& u, const std::int8_t* xq, __m256i sums16) {
  __m256i sum = _mm256_setzero_si256();
  for (int g = 0; g < 8; ++g) {
    const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 32 * g));
    sum = _mm256_add_epi32(sum, _mm256_madd_epi16(_mm256_maddubs_epi16(u.codes[g], xv), u.scales[g]));
  }
  const __m256i offset = _mm256_madd_epi16(u.scales16, sums16);  // sum_j sc_j * (code sum of j)
  return _mm256_sub_epi32(sum, _mm256_slli_epi32(offset, 5));
}

void RowsTileQ6K(const std::uint8_t* w, const ActivationView& x, std::int64_t r0, std::int64_t n_rows,
                 std::int64_t row_end, std::int64_t t, float* y, std::int64_t y_stride) {
  const std::int64_t nb = x.n_cols / 256;
  const std::int64_t row_bytes = nb * kQ6KBytes;
  const std::uint8_t* base = w + r0 * row_bytes;
  const std::uint8_t* rows[8];
  for (int i = 0; i < 8; ++i) rows[i] = base + (i < n_rows ? i : n_rows - 1) * row_bytes;
  const __m256i offsets = RowOffsets(row_bytes, n_rows);
  const std::int8_t* xq = x.q8 + t * x.n_cols;
  const float* xd = x.scales + t * x.scales_per_row;
  const std::int32_t* xs = x.sums + t * x.sums_per_row;
  const NextTilePrefetcher prefetch(base, row_bytes, row_end - r0 - 8, nb);
  __m256 acc = _mm256_setzero_ps();
  for (std::int64_t b = 0; b < nb; ++b) {
    prefetch.Slice(b);
    const __m256i sums16 = SumsOf16(xs + 16 * b);
    __m256i p[8];
    for (int i = 0; i < 8; ++i) {
      Q6KUnpacked u;
      UnpackQ6K(rows[i] + b * kQ6KBytes, &u);
      p[i] = DotQ6K(u, xq + 256 * b, sums16);
    }
    // d is the block's last field: gather 4 bytes ending at it and take the high half.
    const __m256 d = GatherF16<true>(base, offsets, b * kQ6KBytes + 206);
    acc = _mm256_fmadd_ps(_mm256_mul_ps(d, _mm256_set1_ps(xd[b])), _mm256_cvtepi32_ps(SumEachOf8(p)), acc);
  }
  StoreLanes(acc, n_rows, y + t * y_stride + r0, 1);
}

void TokensTileQ6K(const std::uint8_t* w, const ActivationView& x, std::int64_t r, std::int64_t t0,
                   std::int64_t n_tokens, float* y, std::int64_t y_stride) {
  const std::int64_t nb = x.n_cols / 256;
  const std::uint8_t* row = w + r * nb * kQ6KBytes;
  std::int64_t tok[8];
  for (int i = 0; i < 8; ++i) tok[i] = t0 + (i < n_tokens ? i : n_tokens - 1);
  const __m256i scale_idx = TokenOffsets(x.scales_per_row, n_tokens);
  const float* xd = x.scales + t0 * x.scales_per_row;
  __m256 acc = _mm256_setzero_ps();
  for (std::int64_t b = 0; b < nb; ++b) {
    const std::uint8_t* block = row + b * kQ6KBytes;
    Q6KUnpacked u;
    UnpackQ6K(block, &u);
    __m256i p[8];
    for (int i = 0; i < 8; ++i) {
      p[i] =
          DotQ6K(u, x.q8 + tok[i] * x.n_cols + 256 * b, SumsOf16(x.sums + tok[i] * x.sums_per_row + 16 * b));
    }
    const __m256 dx = _mm256_i32gather_ps(xd + b, scale_idx, 4);
    acc = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(F16At(block + 208)), dx),
                          _mm256_cvtepi32_ps(SumEachOf8(p)), acc);
  }
  StoreLanes(acc, n_tokens, y + t0 * y_stride + r, y_stride);
}

}  // namespace

void MatMulQ4K(const std::uint8_t* w, const ActivationView& x, std::int64_t row_begin, std::int64_t row_end,
               float* y, std::int64_t y_stride) {
  Schedule(
      row_begin, row_end, x.n_tokens,
      [&](std::int64_t r0, std::int64_t n_rows, std::int64_t t) {
        RowsTileQ4K(w, x, r0, n_rows, row_end, t, y, y_stride);
      },
      [&](std::int64_t r, std::int64_t t0, std::int64_t n) { TokensTileQ4K(w, x, r, t0, n, y, y_stride); });
}

void MatMulQ6K(const std::uint8_t* w, const ActivationView& x, std::int64_t row_begin, std::int64_t row_end,
               float* y, std::int64_t y_stride) {
  Schedule(
      row_begin, row_end, x.n_tokens,
      [&](std::int64_t r0, std::int64_t n_rows, std::int64_t t) {
        RowsTileQ6K(w, x, r0, n_rows, row_end, t, y, y_stride);
      },
      [&](std::int64_t r, std::int64_t t0, std::int64_t n) { TokensTileQ6K(w, x, r, t0, n, y, y_stride); });
}

}  // namespace llmsync::engine::avx2
