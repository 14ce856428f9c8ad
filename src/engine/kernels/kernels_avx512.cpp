// AVX-512 VNNI kernel set, part 1: the AVX2 set with faster Q8_0 and Q4_0 prefill (part 2,
// kernels_avx512_k.cpp, adds the Q4_K and Q6_K decode tiles; part 3, kernels_avx512_q4.cpp, the
// tiles of Q4_0 weights repacked at load, which is how the engine runs Q4_0 on this set).
//
// Compiled with -mavx512f -mavx512bw -mavx512vl -mavx512vnni -mavx2 -mfma -mf16c. Like the AVX2
// files it must not emit inline functions other translation units also emit, so it includes only
// kernels_avx512.h (namespace avx512, included by AVX-512 translation units alone) besides
// kernels.h's declarations, and keeps its own helpers in an anonymous namespace.
//
// What changes: for groups of 8 tokens, one weight row takes two blocks of 32 codes per 512-bit
// step, and vpdpbusd forms each token's four-code partial sums in one instruction (AVX2 needs
// maddubs + madd per 256 bits). Every output is still the canonical reduction of matmul.h — the
// exact integer dot product of each block, then acc = fma(d_w * d_x, float(isum), acc) block by
// block — so the bits equal the scalar and AVX2 sets'. Tokens outside groups of 8 (decode, and a
// batch's last few tokens) go to the AVX2 kernels, whose 8-row tiles already stream memory as fast
// as it comes.
//
// Thread safety: pure functions.
#include <immintrin.h>

#include <cstdint>

#include "engine/kernels/kernels_avx512.h"

namespace llmsync::engine {
namespace {

using avx512::F16At;
using avx512::SumBlocksOf8;

// Names here keep ggml's spelling of the types (Q8_0, Q4_0), as GgmlType's enumerators do.
// NOLINTBEGIN(readability-identifier-naming)
constexpr std::int64_t kRowBlock = 16;  // rows whose weights stay cached across token groups

struct Q8_0Block {
  static constexpr std::int64_t kBytes = 34;
  static constexpr bool kOffset = false;
  static __m256i Codes(const std::uint8_t* block) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 2));
  }
};

struct Q4_0Block {
  static constexpr std::int64_t kBytes = 18;
  static constexpr bool kOffset = true;  // isum -= 8 * (code sum of the activation block)
  // Elements 0-15 are the low nibbles, 16-31 the high nibbles: codes 0..15.
  static __m256i Codes(const std::uint8_t* block) {
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 2));
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(packed, 4), packed), _mm256_set1_epi8(0x0f));
  }
};

// Weight codes of one or two blocks as vpdpbusd's unsigned operand, and the mask of the negative
// ones (signed Q8_0 codes are split into |w| and the sign, which moves onto the activations).
template <typename Block>
struct WeightPair {
  __m512i unsigned_codes;
  __mmask64 negative;
};

template <typename Block>
WeightPair<Block> LoadWeights(const std::uint8_t* block, bool two) {
  const __m256i lo = Block::Codes(block);
  const __m256i hi = two ? Block::Codes(block + Block::kBytes) : _mm256_setzero_si256();
  const __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
  if constexpr (Block::kOffset) {
    return {w, 0};
  } else {
    return {_mm512_abs_epi8(w), _mm512_movepi8_mask(w)};
  }
}

// A token group's activation scales and code sums laid out block-major (8 lanes per block, the
// last real token repeated), filled once per (row block, token group): the tile then loads them
// where it would gather them for every row. Rows of more than kMaxBlocks blocks gather instead.
struct GroupScales {
  static constexpr std::int64_t kMaxBlocks = 1024;
  bool usable = false;
  alignas(64) float xd[kMaxBlocks * 8];
  alignas(64) std::int32_t xs[kMaxBlocks * 8];

  void Fill(const ActivationView& x, std::int64_t t0, std::int64_t n_tokens, bool with_sums) {
    const std::int64_t nb = x.n_cols / 32;
    usable = nb <= kMaxBlocks;
    if (!usable) return;
    for (int i = 0; i < 8; ++i) {
      const std::int64_t t = t0 + (i < n_tokens ? i : n_tokens - 1);
      const float* d = x.scales + t * x.scales_per_row;
      const std::int32_t* sums = x.sums + t * x.sums_per_row;
      for (std::int64_t b = 0; b < nb; ++b) {
        xd[b * 8 + i] = d[b];
        if (with_sums) xs[b * 8 + i] = sums[b];
      }
    }
  }
};

// One weight row against 8 tokens (the last real one repeated to fill the group). Loaded: the
// scales come from `group`, else they are gathered.
template <typename Block, bool Loaded>
void TokensTile(const std::uint8_t* w, const ActivationView& x, std::int64_t r, std::int64_t t0,
                std::int64_t n_tokens, float* y, std::int64_t y_stride, const GroupScales& group) {
  const std::int64_t nb = x.n_cols / 32;
  const std::uint8_t* row = w + r * nb * Block::kBytes;
  const std::int8_t* xq[8];
  for (int i = 0; i < 8; ++i) xq[i] = x.q8 + (t0 + (i < n_tokens ? i : n_tokens - 1)) * x.n_cols;
  const __m256i scale_idx = avx512::RepeatOffsets(x.scales_per_row, n_tokens);
  const __m256i sum_idx = avx512::RepeatOffsets(x.sums_per_row, n_tokens);
  const float* xd = x.scales + t0 * x.scales_per_row;
  const std::int32_t* xs = x.sums + t0 * x.sums_per_row;
  const __m512i zero = _mm512_setzero_si512();
  __m256 acc = _mm256_setzero_ps();
  // Applies block b's integer sums (8 tokens) to the accumulator: the canonical float step.
  auto apply = [&](std::int64_t b, __m256i isum) {
    if constexpr (Block::kOffset) {
      const __m256i sums = Loaded ? _mm256_load_si256(reinterpret_cast<const __m256i*>(group.xs + 8 * b))
                                  : _mm256_i32gather_epi32(reinterpret_cast<const int*>(xs + b), sum_idx, 4);
      isum = _mm256_sub_epi32(isum, _mm256_slli_epi32(sums, 3));
    }
    const __m256 dx = Loaded ? _mm256_load_ps(group.xd + 8 * b) : _mm256_i32gather_ps(xd + b, scale_idx, 4);
    const __m256 dw = _mm256_set1_ps(F16At(row + b * Block::kBytes));
    acc = _mm256_fmadd_ps(_mm256_mul_ps(dw, dx), _mm256_cvtepi32_ps(isum), acc);
  };
  for (std::int64_t b = 0; b < nb; b += 2) {
    const bool two = b + 1 < nb;
    const WeightPair<Block> wp = LoadWeights<Block>(row + b * Block::kBytes, two);
    const __mmask64 present = two ? ~__mmask64{0} : __mmask64{0xffffffffu};  // never read past a row
    __m512i p[8];
    for (int i = 0; i < 8; ++i) {
      __m512i xv = _mm512_maskz_loadu_epi8(present, xq[i] + 32 * b);
      if constexpr (!Block::kOffset) xv = _mm512_mask_sub_epi8(xv, wp.negative, zero, xv);
      p[i] = _mm512_dpbusd_epi32(zero, wp.unsigned_codes, xv);
    }
    const __m512i sums = SumBlocksOf8(p);
    apply(b, _mm512_castsi512_si256(sums));
    if (two) apply(b + 1, _mm512_extracti64x4_epi64(sums, 1));
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, acc);
  for (std::int64_t i = 0; i < n_tokens; ++i) y[(t0 + i) * y_stride + r] = lanes[i];
}

template <typename Block>
void MatMulBlock32(MatMulFn avx2, const std::uint8_t* w, const ActivationView& x, std::int64_t row_begin,
                   std::int64_t row_end, float* y, std::int64_t y_stride) {
  const std::int64_t grouped = avx512::GroupedTokens(x.n_tokens);
  GroupScales group;
  for (std::int64_t b0 = row_begin; grouped > 0 && b0 < row_end; b0 += kRowBlock) {
    const std::int64_t b1 = b0 + kRowBlock < row_end ? b0 + kRowBlock : row_end;
    for (std::int64_t t0 = 0; t0 < grouped; t0 += avx512::kTokenGroup) {
      const std::int64_t n = grouped - t0 < avx512::kTokenGroup ? grouped - t0 : avx512::kTokenGroup;
      group.Fill(x, t0, n, Block::kOffset);
      for (std::int64_t r = b0; r < b1; ++r) {
        if (group.usable) {
          TokensTile<Block, true>(w, x, r, t0, n, y, y_stride, group);
        } else {
          TokensTile<Block, false>(w, x, r, t0, n, y, y_stride, group);
        }
      }
    }
  }
  if (grouped == x.n_tokens) return;
  // The remaining tokens, as their own activation view.
  avx2(w, avx512::TokensFrom(x, grouped), row_begin, row_end, y + grouped * y_stride, y_stride);
}

void MatMulQ8_0(const std::uint8_t* w, const ActivationView& x, std::int64_t row_begin, std::int64_t row_end,
                float* y, std::int64_t y_stride) {
  MatMulBlock32<Q8_0Block>(Avx2Kernels().q8_0, w, x, row_begin, row_end, y, y_stride);
}

void MatMulQ4_0(const std::uint8_t* w, const ActivationView& x, std::int64_t row_begin, std::int64_t row_end,
                float* y, std::int64_t y_stride) {
  MatMulBlock32<Q4_0Block>(Avx2Kernels().q4_0, w, x, row_begin, row_end, y, y_stride);
}

// NOLINTEND(readability-identifier-naming)
}  // namespace

const KernelSet& Avx512VnniKernels() {
  static const KernelSet kSet = [] {
    KernelSet set = Avx2Kernels();
    set.q8_0 = MatMulQ8_0;
    set.q4_0 = MatMulQ4_0;
    set.q4k = avx512::MatMulQ4K;
    set.q6k = avx512::MatMulQ6K;
    set.q4_0_interleaved = avx512::MatMulQ4_0Interleaved;
    return set;
  }();
  return kSet;
}

}  // namespace llmsync::engine
