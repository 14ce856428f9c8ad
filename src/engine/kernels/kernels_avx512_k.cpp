// AVX-512 VNNI kernel set, part 2: Q4_K and Q6_K decode tiles (8 weight rows x 1 token).
//
// Compiled with the AVX-512 flags; see kernels_avx512.h for what may be included here.
//
// Per super-block of 256 codes and row, vpdpbusd forms 4-code partial sums of 64 codes per
// instruction (weights as the unsigned operand, activation codes signed). Those partial sums fit
// in int16 (|4 x 15 x 127| for Q4_K, |4 x 63 x 127| = 32004 for Q6_K), so two vectors of them are
// packed to int16 and multiplied by the sub-block scales with one vpdpwssd. The result is the exact
// integer isum of matmul.h, and the float step is the canonical one, so the bits equal the scalar
// and AVX2 sets'. Prefill tokens (groups of 8) still run the AVX2 1-row x 8-token tiles.
//
// Thread safety: pure functions.
#include <cstring>

#include "engine/kernels/kernels_avx512.h"

namespace llmsync::engine::avx512 {
namespace {

constexpr std::int64_t kQ4KBytes = 144;
constexpr std::int64_t kQ6KBytes = 210;

// vpermw indices taking int16 element a into words 0-3 and b into words 4-7 of a 128-bit lane,
// for the four lanes (a0,b0) .. (a3,b3).
__m512i PairIndex(int a0, int b0, int a1, int b1, int a2, int b2, int a3, int b3) {
  const int pairs[4][2] = {{a0, b0}, {a1, b1}, {a2, b2}, {a3, b3}};
  alignas(64) std::int16_t idx[32];
  for (int k = 0; k < 4; ++k) {
    for (int e = 0; e < 8; ++e) idx[8 * k + e] = static_cast<std::int16_t>(pairs[k][e / 4]);
  }
  return _mm512_load_si512(idx);
}

// The 8 sub-block code sums (sums of 32 codes) of a super-block as int16, from its 16 int32 sums
// of 16 codes. |sum| <= 32 * 127, so the packing does not saturate.
LLMSYNC_AVX512_INLINE __m128i SubBlockSums(const std::int32_t* xs) {
  const __m512i s = _mm512_loadu_si512(xs);
  // Adjacent pairs: even lanes + odd lanes.
  const __m512i pairs = _mm512_add_epi32(s, _mm512_srli_epi64(s, 32));
  return _mm512_cvtepi64_epi16(pairs);
}

// Q4_K: qs[32 c + l] holds sub-block 2c (low nibble) and 2c + 1 (high nibble). Broadcasting the
// 32 bytes of chunk c to both halves of a vector and shifting the upper half by 4 gives the codes
// of elements 64 c .. 64 c + 63 in order, so activations are read as they are stored.
struct Q4KTile {
  __m512i shift;   // 16-bit shift counts: 0 for the low half, 4 for the high half
  __m512i idx_lo;  // vpermw indices for chunks 0-1: lanes [sc0 sc2, sc0 sc2, sc1 sc3, sc1 sc3]
  __m512i idx_hi;  // the same for chunks 2-3 (sub-blocks 4-7)
  __m512i low;     // 0x0f bytes

  Q4KTile()
      : shift(_mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(4), 1)),
        idx_lo(PairIndex(0, 2, 0, 2, 1, 3, 1, 3)),
        idx_hi(PairIndex(4, 6, 4, 6, 5, 7, 5, 7)),
        low(_mm512_set1_epi8(0x0f)) {}

  // isum partial sums (16 lanes) of one block and one token; mins8 receives the block's mins
  // (low 8 bytes).
  LLMSYNC_AVX512_INLINE __m512i Dot(const std::uint8_t* block, const std::int8_t* xq, __m128i* mins8) const {
    std::uint32_t w[3];
    std::memcpy(w, block + 4, sizeof w);
    const std::uint32_t sc_lo = w[0] & 0x3f3f3f3fu;
    const std::uint32_t sc_hi = (w[2] & 0x0f0f0f0fu) | (((w[0] >> 6) & 0x03030303u) << 4);
    const std::uint32_t m_lo = w[1] & 0x3f3f3f3fu;
    const std::uint32_t m_hi = ((w[2] >> 4) & 0x0f0f0f0fu) | (((w[1] >> 6) & 0x03030303u) << 4);
    *mins8 = _mm_cvtsi64_si128(static_cast<long long>((std::uint64_t{m_hi} << 32) | m_lo));
    const __m512i sc16 = _mm512_castsi128_si512(
        _mm_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<long long>((std::uint64_t{sc_hi} << 32) | sc_lo))));
    const __m512i zero = _mm512_setzero_si512();
    __m512i d[4];
    for (int c = 0; c < 4; ++c) {
      const __m512i q =
          _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 16 + 32 * c)));
      const __m512i codes = _mm512_and_si512(_mm512_srlv_epi16(q, shift), low);
      d[c] = _mm512_dpbusd_epi32(zero, codes, _mm512_loadu_si512(xq + 64 * c));
    }
    // Lanes of pack(d0, d1): [sub0 x4 | sub2 x4] twice, then [sub1 x4 | sub3 x4] twice.
    __m512i sum =
        _mm512_dpwssd_epi32(zero, _mm512_packs_epi32(d[0], d[1]), _mm512_permutexvar_epi16(idx_lo, sc16));
    return _mm512_dpwssd_epi32(sum, _mm512_packs_epi32(d[2], d[3]), _mm512_permutexvar_epi16(idx_hi, sc16));
  }
};

void RowsTileQ4K(const Q4KTile& k, const std::uint8_t* w, const ActivationView& x, std::int64_t r0,
                 std::int64_t n_rows, std::int64_t row_end, std::int64_t t, float* y, std::int64_t y_stride) {
  const std::int64_t nb = x.n_cols / 256;
  const std::int64_t row_bytes = nb * kQ4KBytes;
  const std::uint8_t* base = w + r0 * row_bytes;
  const std::uint8_t* rows[8];
  for (int i = 0; i < 8; ++i) rows[i] = base + (i < n_rows ? i : n_rows - 1) * row_bytes;
  const __m256i offsets = RepeatOffsets(row_bytes, n_rows);
  const std::int8_t* xq = x.q8 + t * x.n_cols;
  const float* xd = x.scales + t * x.scales_per_row;
  const std::int32_t* xs = x.sums + t * x.sums_per_row;
  const NextTilePrefetcher prefetch(base, row_bytes, row_end - r0 - 8, nb);
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 acc = _mm256_setzero_ps();
  for (std::int64_t b = 0; b < nb; ++b) {
    prefetch.Slice(b);
    const __m128i sub_sums = SubBlockSums(xs + 16 * b);
    __m512i p[8];
    __m128i m[8];
    for (int i = 0; i < 8; ++i) {
      __m128i mins8;
      p[i] = k.Dot(rows[i] + b * kQ4KBytes, xq + 256 * b, &mins8);
      m[i] = _mm_madd_epi16(_mm_cvtepu8_epi16(mins8), sub_sums);
    }
    const __m256 dx = _mm256_set1_ps(xd[b]);
    const __m256 d = GatherF16<false>(base, offsets, b * kQ4KBytes);
    const __m256 dmin = GatherF16<false>(base, offsets, b * kQ4KBytes + 2);
    // The canonical step: acc = fma(d * dx, isum, acc); acc = fma(-(dmin * dx), summ, acc).
    acc = _mm256_fmadd_ps(_mm256_mul_ps(d, dx), _mm256_cvtepi32_ps(SumEachOf8(p)), acc);
    acc = _mm256_fmadd_ps(_mm256_xor_ps(_mm256_mul_ps(dmin, dx), sign), _mm256_cvtepi32_ps(SumEachOf8x4(m)),
                          acc);
  }
  StoreLanes(acc, n_rows, y + t * y_stride + r0, 1);
}

// Q6_K: half h of a block has ql[64 h .. 64 h + 63] (low 4 bits) and qh[32 h .. 32 h + 31] (high 2
// bits, four elements per byte). The low nibbles of ql are elements 128 h + 0..63 in order and the
// high nibbles 128 h + 64..127; the qh bits for each are at shifts 0/2 (low) and 4/6 (high) for
// the first/second 32 of them.
struct Q6KTile {
  __m512i shl_lo;  // 16-bit counts moving qh bits 0-1 / 2-3 to bits 4-5: 4 | 2
  __m512i shr_hi;  // moving qh bits 4-5 / 6-7 to bits 4-5: 0 | 2
  __m512i idx[2];  // vpermw indices: lane k of half h is [sc(8h + k) x4 | sc(8h + 4 + k) x4]
  __m512i low;     // 0x0f bytes
  __m512i high;    // 0x30 bytes

  Q6KTile()
      : shl_lo(_mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1)),
        shr_hi(_mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1)),
        idx{PairIndex(0, 4, 1, 5, 2, 6, 3, 7), PairIndex(8, 12, 9, 13, 10, 14, 11, 15)},
        low(_mm512_set1_epi8(0x0f)),
        high(_mm512_set1_epi8(0x30)) {}

  // isum partial sums (16 lanes) of one block, one token; sums16 are the token's 16 sums of 16
  // codes as int16 (in the low 256 bits).
  LLMSYNC_AVX512_INLINE __m512i Dot(const std::uint8_t* block, const std::int8_t* xq, __m256i sums16) const {
    const __m512i zero = _mm512_setzero_si512();
    const __m256i sc = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 192)));
    const __m512i sc16 = _mm512_castsi256_si512(sc);
    __m512i sum = zero;
    for (int h = 0; h < 2; ++h) {
      const __m512i ql = _mm512_loadu_si512(block + 64 * h);
      const __m512i qh =
          _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 128 + 32 * h)));
      const __m512i lo =
          _mm512_or_si512(_mm512_and_si512(ql, low), _mm512_and_si512(_mm512_sllv_epi16(qh, shl_lo), high));
      const __m512i hi = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), low),
                                         _mm512_and_si512(_mm512_srlv_epi16(qh, shr_hi), high));
      const __m512i d_lo = _mm512_dpbusd_epi32(zero, lo, _mm512_loadu_si512(xq + 128 * h));
      const __m512i d_hi = _mm512_dpbusd_epi32(zero, hi, _mm512_loadu_si512(xq + 128 * h + 64));
      sum = _mm512_dpwssd_epi32(sum, _mm512_packs_epi32(d_lo, d_hi), _mm512_permutexvar_epi16(idx[h], sc16));
    }
    // Minus 32 x sum_j sc_j * (code sum of sub-block j).
    const __m256i offset = _mm256_madd_epi16(sc, sums16);
    return _mm512_sub_epi32(sum, _mm512_zextsi256_si512(_mm256_slli_epi32(offset, 5)));
  }
};

// The 16 sums of 16 activation codes of a super-block as int16 (|sum| <= 16 * 127).
LLMSYNC_AVX512_INLINE __m256i SumsOf16(const std::int32_t* xs) {
  return _mm512_cvtepi32_epi16(_mm512_loadu_si512(xs));
}

void RowsTileQ6K(const Q6KTile& k, const std::uint8_t* w, const ActivationView& x, std::int64_t r0,
                 std::int64_t n_rows, std::int64_t row_end, std::int64_t t, float* y, std::int64_t y_stride) {
  const std::int64_t nb = x.n_cols / 256;
  const std::int64_t row_bytes = nb * kQ6KBytes;
  const std::uint8_t* base = w + r0 * row_bytes;
  const std::uint8_t* rows[8];
  for (int i = 0; i < 8; ++i) rows[i] = base + (i < n_rows ? i : n_rows - 1) * row_bytes;
  const __m256i offsets = RepeatOffsets(row_bytes, n_rows);
  const std::int8_t* xq = x.q8 + t * x.n_cols;
  const float* xd = x.scales + t * x.scales_per_row;
  const std::int32_t* xs = x.sums + t * x.sums_per_row;
  const NextTilePrefetcher prefetch(base, row_bytes, row_end - r0 - 8, nb);
  __m256 acc = _mm256_setzero_ps();
  for (std::int64_t b = 0; b < nb; ++b) {
    prefetch.Slice(b);
    const __m256i sums16 = SumsOf16(xs + 16 * b);
    __m512i p[8];
    for (int i = 0; i < 8; ++i) p[i] = k.Dot(rows[i] + b * kQ6KBytes, xq + 256 * b, sums16);
    // d is the block's last field: gather 4 bytes ending at it and take the high half.
    const __m256 d = GatherF16<true>(base, offsets, b * kQ6KBytes + 206);
    acc = _mm256_fmadd_ps(_mm256_mul_ps(d, _mm256_set1_ps(xd[b])), _mm256_cvtepi32_ps(SumEachOf8(p)), acc);
  }
  StoreLanes(acc, n_rows, y + t * y_stride + r0, 1);
}

// Prefill groups through the AVX2 kernel, the other tokens through `rows_tile` in 8-row tiles.
template <typename RowsTile>
void MatMulK(MatMulFn avx2, const std::uint8_t* w, const ActivationView& x, std::int64_t row_begin,
             std::int64_t row_end, float* y, std::int64_t y_stride, RowsTile rows_tile) {
  const std::int64_t grouped = GroupedTokens(x.n_tokens);
  if (grouped > 0) {
    ActivationView groups = x;
    groups.n_tokens = grouped;
    avx2(w, groups, row_begin, row_end, y, y_stride);
  }
  for (std::int64_t r0 = row_begin; r0 < row_end; r0 += 8) {
    const std::int64_t n_rows = row_end - r0 < 8 ? row_end - r0 : 8;
    for (std::int64_t t = grouped; t < x.n_tokens; ++t) rows_tile(r0, n_rows, t);
  }
}

}  // namespace

void MatMulQ4K(const std::uint8_t* w, const ActivationView& x, std::int64_t row_begin, std::int64_t row_end,
               float* y, std::int64_t y_stride) {
  const Q4KTile k;
  MatMulK(Avx2Kernels().q4k, w, x, row_begin, row_end, y, y_stride,
          [&](std::int64_t r0, std::int64_t n_rows, std::int64_t t) {
            RowsTileQ4K(k, w, x, r0, n_rows, row_end, t, y, y_stride);
          });
}

void MatMulQ6K(const std::uint8_t* w, const ActivationView& x, std::int64_t row_begin, std::int64_t row_end,
               float* y, std::int64_t y_stride) {
  const Q6KTile k;
  MatMulK(Avx2Kernels().q6k, w, x, row_begin, row_end, y, y_stride,
          [&](std::int64_t r0, std::int64_t n_rows, std::int64_t t) {
            RowsTileQ6K(k, w, x, r0, n_rows, row_end, t, y, y_stride);
          });
}

}  // namespace llmsync::engine::avx512
