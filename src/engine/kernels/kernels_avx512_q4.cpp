// AVX-512 VNNI kernel set, part 3: Q4_0 weights in the kInterleaved16 layout (quant/repack.h),
// decode and prefill through one tile of 16 rows x up to 8 tokens.
//
// Compiled with the AVX-512 flags; see kernels_avx512.h for what may be included here.
//
// One 64-byte load of a group's block holds four code bytes of each of its 16 rows, so
// vpdpbusd(low or high nibbles, four activation codes broadcast to every lane) adds four products of
// each row to that row's lane: eight of them give the 16 rows' exact integer block sums (the -8
// offset starts the accumulator at -8 x the activation block's code sum) with no horizontal
// reduction, and the float step acc = fma(d_w * d_x, float(isum), acc) runs on 16 rows at once.
// That is matmul.h's canonical reduction, so the bits equal the scalar set's on the GGUF layout.
// A token costs the same whether it is decoded alone or is one of a prefill's 8: the group's codes
// are unpacked once per block for all of them, and a tile reads one sequential stream of weights.
//
// Thread safety: pure functions.
#include <cstring>

#include "engine/kernels/kernels_avx512.h"
#include "engine/quant/repack.h"

namespace llmsync::engine::avx512 {
namespace {

constexpr std::int64_t kTileTokens = 8;

LLMSYNC_AVX512_INLINE __m512i Broadcast4(const std::int8_t* p) {
  std::int32_t v;
  std::memcpy(&v, p, sizeof v);
  return _mm512_set1_epi32(v);
}

// Rows of one group (lanes in `store`) against tokens [t0, t0 + N), every block in order. While it
// works through block b it prefetches slice b of the `next` group's bytes (unless null), which keeps
// more of the weight stream in flight than the hardware prefetcher does on its own.
template <int N>
void GroupTile(const std::uint8_t* group, const std::uint8_t* next, const ActivationView& x, std::int64_t t0,
               std::int64_t r0, __mmask16 store, float* y, std::int64_t y_stride) {
  const std::int64_t nb = x.n_cols / 32;
  const std::int64_t group_bytes = InterleavedGroupBytes(x.n_cols);
  const std::int64_t step = (group_bytes / nb + 127) & ~std::int64_t{63};
  const std::uint8_t* scales = group + nb * 256;
  const __m512i low = _mm512_set1_epi8(0x0f);
  const std::int8_t* xq[N];
  const float* xd[N];
  const std::int32_t* xs[N];
  __m512 acc[N];
  for (int t = 0; t < N; ++t) {
    xq[t] = x.q8 + (t0 + t) * x.n_cols;
    xd[t] = x.scales + (t0 + t) * x.scales_per_row;
    xs[t] = x.sums + (t0 + t) * x.sums_per_row;
    acc[t] = _mm512_setzero_ps();
  }
  for (std::int64_t b = 0; b < nb; ++b) {
    if (next != nullptr) {
      const std::int64_t end = (b + 1) * step < group_bytes ? (b + 1) * step : group_bytes;
      for (std::int64_t off = b * step; off < end; off += 64)
        _mm_prefetch(reinterpret_cast<const char*>(next + off), _MM_HINT_T0);
    }
    const std::uint8_t* codes = group + 256 * b;
    __m512i lo[4], hi[4];
    for (int m = 0; m < 4; ++m) {
      const __m512i v = _mm512_loadu_si512(codes + 64 * m);
      lo[m] = _mm512_and_si512(v, low);
      hi[m] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
    }
    const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(scales + 32 * b)));
    for (int t = 0; t < N; ++t) {
      const std::int8_t* xb = xq[t] + 32 * b;
      // Elements 0-15 (low nibbles) on one chain, 16-31 (high nibbles) on another.
      __m512i s0 = _mm512_set1_epi32(-8 * xs[t][b]);
      __m512i s1 = _mm512_setzero_si512();
      for (int m = 0; m < 4; ++m) {
        s0 = _mm512_dpbusd_epi32(s0, lo[m], Broadcast4(xb + 4 * m));
        s1 = _mm512_dpbusd_epi32(s1, hi[m], Broadcast4(xb + 16 + 4 * m));
      }
      const __m512 d = _mm512_mul_ps(dw, _mm512_set1_ps(xd[t][b]));
      acc[t] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1)), acc[t]);
    }
  }
  for (int t = 0; t < N; ++t) _mm512_mask_storeu_ps(y + (t0 + t) * y_stride + r0, store, acc[t]);
}

template <int N>
void GroupTiles(const std::uint8_t* group, const std::uint8_t* next, const ActivationView& x, std::int64_t t0,
                std::int64_t n, std::int64_t r0, __mmask16 store, float* y, std::int64_t y_stride) {
  if constexpr (N > 1) {
    if (n < N) return GroupTiles<N - 1>(group, next, x, t0, n, r0, store, y, y_stride);
  }
  GroupTile<N>(group, next, x, t0, r0, store, y, y_stride);
}

}  // namespace

void MatMulQ4_0Interleaved(  // NOLINT(readability-identifier-naming): ggml's type name
    const std::uint8_t* w, const ActivationView& x, std::int64_t row_begin, std::int64_t row_end, float* y,
    std::int64_t y_stride) {
  const std::int64_t group_bytes = InterleavedGroupBytes(x.n_cols);
  for (std::int64_t r0 = row_begin / kInterleavedRows * kInterleavedRows; r0 < row_end;
       r0 += kInterleavedRows) {
    const std::int64_t first = row_begin > r0 ? row_begin - r0 : 0;
    const std::int64_t last = row_end - r0 < kInterleavedRows ? row_end - r0 : kInterleavedRows;
    const auto store = static_cast<__mmask16>(((1u << last) - 1) & ~((1u << first) - 1));
    const std::uint8_t* group = w + r0 / kInterleavedRows * group_bytes;
    const std::uint8_t* next = r0 + kInterleavedRows < row_end ? group + group_bytes : nullptr;
    for (std::int64_t t0 = 0; t0 < x.n_tokens; t0 += kTileTokens) {
      const std::int64_t n = x.n_tokens - t0 < kTileTokens ? x.n_tokens - t0 : kTileTokens;
      GroupTiles<kTileTokens>(group, t0 == 0 ? next : nullptr, x, t0, n, r0, store, y, y_stride);
    }
  }
}

}  // namespace llmsync::engine::avx512
