// AVX2 kernel set, part 2: Q8_0 and Q4_0 weights against 8-bit activation blocks of 32.
// Compiled with -mavx2 -mfma -mf16c; see kernels_avx2.h for the tiling and what may be used here.
#include "engine/kernels/kernels_avx2.h"

namespace llmsync::engine::avx2 {
// Names here keep ggml's spelling of the types (Q8_0, Q4_0), as GgmlType's enumerators do.
// NOLINTBEGIN(readability-identifier-naming)
namespace {

constexpr std::int64_t kQ8_0Bytes = 34;
constexpr std::int64_t kQ4_0Bytes = 18;

// The 8 int32 partial sums of one weight block (32 codes) with one activation block.
struct Q8_0Block {
  static __m256i Codes(const std::uint8_t* block) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 2));
  }
  // Signed x signed: |w| as unsigned times x with w's sign (maddubs is unsigned x signed).
  static __m256i Dot(__m256i w, __m256i abs_w, __m256i x) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(abs_w, _mm256_sign_epi8(x, w)), _mm256_set1_epi16(1));
  }
  static __m256i Abs(__m256i w) { return _mm256_abs_epi8(w); }
  static constexpr std::int64_t kBytes = kQ8_0Bytes;
  static constexpr bool kOffset = false;
};

struct Q4_0Block {
  // Elements 0-15 are the low nibbles, 16-31 the high nibbles: codes 0..15, offset 8 applied later.
  static __m256i Codes(const std::uint8_t* block) {
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 2));
    const __m256i both = _mm256_set_m128i(_mm_srli_epi16(packed, 4), packed);
    return _mm256_and_si256(both, _mm256_set1_epi8(0x0f));
  }
  static __m256i Dot(__m256i /*w*/, __m256i codes, __m256i x) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(codes, x), _mm256_set1_epi16(1));
  }
  static __m256i Abs(__m256i w) { return w; }
  static constexpr std::int64_t kBytes = kQ4_0Bytes;
  static constexpr bool kOffset = true;  // isum -= 8 * sum(x codes)
};

// 8 rows x 1 token.
template <typename Block>
void RowsTile(const std::uint8_t* w, const ActivationView& x, std::int64_t r0, std::int64_t n_rows,
              std::int64_t row_end, std::int64_t t, float* y, std::int64_t y_stride) {
  const std::int64_t nb = x.n_cols / 32;
  const std::int64_t row_bytes = nb * Block::kBytes;
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
    PrefetchRowsAhead(rows, b * Block::kBytes, 1);  // blocks are under a line: one covers each
    const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 32 * b));
    __m256i p[8];
    for (int i = 0; i < 8; ++i) {
      const __m256i wv = Block::Codes(rows[i] + b * Block::kBytes);
      p[i] = Block::Dot(wv, Block::Abs(wv), xv);
    }
    __m256i isum = SumEachOf8(p);
    if constexpr (Block::kOffset) isum = _mm256_sub_epi32(isum, _mm256_set1_epi32(8 * xs[b]));
    const __m256 dw = GatherF16<false>(base, offsets, b * Block::kBytes);
    acc = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(xd[b])), _mm256_cvtepi32_ps(isum), acc);
  }
  StoreLanes(acc, n_rows, y + t * y_stride + r0, 1);
}

// 1 row x 8 tokens.
template <typename Block>
void TokensTile(const std::uint8_t* w, const ActivationView& x, std::int64_t r, std::int64_t t0,
                std::int64_t n_tokens, float* y, std::int64_t y_stride) {
  const std::int64_t nb = x.n_cols / 32;
  const std::uint8_t* row = w + r * nb * Block::kBytes;
  const std::int8_t* xq[8];
  for (int i = 0; i < 8; ++i) xq[i] = x.q8 + (t0 + (i < n_tokens ? i : n_tokens - 1)) * x.n_cols;
  const __m256i scale_idx = TokenOffsets(x.scales_per_row, n_tokens);
  const __m256i sum_idx = TokenOffsets(x.sums_per_row, n_tokens);
  const float* xd = x.scales + t0 * x.scales_per_row;
  const std::int32_t* xs = x.sums + t0 * x.sums_per_row;
  __m256 acc = _mm256_setzero_ps();
  for (std::int64_t b = 0; b < nb; ++b) {
    const std::uint8_t* block = row + b * Block::kBytes;
    const __m256i wv = Block::Codes(block);
    const __m256i abs_w = Block::Abs(wv);
    __m256i p[8];
    for (int i = 0; i < 8; ++i) {
      p[i] = Block::Dot(wv, abs_w, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq[i] + 32 * b)));
    }
    __m256i isum = SumEachOf8(p);
    if constexpr (Block::kOffset) {
      const __m256i sums = _mm256_i32gather_epi32(reinterpret_cast<const int*>(xs + b), sum_idx, 4);
      isum = _mm256_sub_epi32(isum, _mm256_slli_epi32(sums, 3));
    }
    const __m256 dx = _mm256_i32gather_ps(xd + b, scale_idx, 4);
    acc = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(F16At(block)), dx), _mm256_cvtepi32_ps(isum), acc);
  }
  StoreLanes(acc, n_tokens, y + t0 * y_stride + r, y_stride);
}

template <typename Block>
void MatMulBlock32(const std::uint8_t* w, const ActivationView& x, std::int64_t row_begin,
                   std::int64_t row_end, float* y, std::int64_t y_stride) {
  Schedule(
      row_begin, row_end, x.n_tokens,
      [&](std::int64_t r0, std::int64_t n_rows, std::int64_t t) {
        RowsTile<Block>(w, x, r0, n_rows, row_end, t, y, y_stride);
      },
      [&](std::int64_t r, std::int64_t t0, std::int64_t n) {
        TokensTile<Block>(w, x, r, t0, n, y, y_stride);
      });
}

}  // namespace

void MatMulQ8_0(const std::uint8_t* w, const ActivationView& x, std::int64_t row_begin, std::int64_t row_end,
                float* y, std::int64_t y_stride) {
  MatMulBlock32<Q8_0Block>(w, x, row_begin, row_end, y, y_stride);
}

void MatMulQ4_0(const std::uint8_t* w, const ActivationView& x, std::int64_t row_begin, std::int64_t row_end,
                float* y, std::int64_t y_stride) {
  MatMulBlock32<Q4_0Block>(w, x, row_begin, row_end, y, y_stride);
}

// NOLINTEND(readability-identifier-naming)
}  // namespace llmsync::engine::avx2
