// The kernel sets behind matmul.h: one table of function pointers per instruction set, each
// implementing the canonical reductions documented in matmul.h bit for bit.
//
// The AVX2 set is compiled with -mavx2 -mfma -mf16c, so its translation units must not emit any
// inline function or template that other translation units also emit (the linker would keep one
// copy, possibly the AVX2 one, and a CPU without AVX2 would fault in baseline code). Hence the
// kernels receive a plain ActivationView instead of PreparedActivations, and this header holds
// declarations only.
//
// Thread safety: the tables are immutable; the kernels are pure functions over caller memory.
#pragma once

#include <cstdint>

namespace llmsync::engine {

// Prepared activation rows as plain pointers (see PreparedActivations). Token t's row starts at
// f32 + t * n_cols, q8 + t * n_cols, scales + t * scales_per_row, sums + t * sums_per_row.
struct ActivationView {
  std::int64_t n_tokens;
  std::int64_t n_cols;
  const float* f32;
  const std::int8_t* q8;
  const float* scales;
  const std::int32_t* sums;
  std::int64_t scales_per_row;
  std::int64_t sums_per_row;
};

// Quantizes n floats (a multiple of `block`) into int8 codes, one scale per block, and the code
// sums of each `sum_group` consecutive codes. Canonical: amax = max |x|; d = amax / 127;
// q = nearbyint(x * (127 / amax)) clamped to +-127; a block of zeros has d = 0 and zero codes; a
// block with a non-finite value has d = amax (inf or NaN) and zero codes, so the non-finite value
// propagates to every output that reads the block.
using QuantizeQ8Fn = void (*)(const float* x, std::int64_t n, int block, int sum_group, std::int8_t* q,
                              float* scales, std::int32_t* sums);
using MatMulFn = void (*)(const std::uint8_t* w, const ActivationView& x, std::int64_t row_begin,
                          std::int64_t row_end, float* y, std::int64_t y_stride);

struct KernelSet {
  QuantizeQ8Fn quantize_q8;
  MatMulFn f32;
  MatMulFn f16;
  MatMulFn bf16;
  MatMulFn q8_0;
  MatMulFn q4_0;
  MatMulFn q4k;
  MatMulFn q6k;
  // Q4_0 weights in WeightLayout::kInterleaved16 (quant/repack.h), which the engine makes at load
  // for the AVX-512 VNNI set only; the other sets run the scalar reference on it.
  MatMulFn q4_0_interleaved;
};

const KernelSet& ScalarKernels();
// Defined only when LLMSYNC_KERNELS_AVX2 is (x86-64 builds); callers check
// IsKernelIsaSupported(KernelIsa::kAvx2) first.
const KernelSet& Avx2Kernels();
// The AVX2 set with AVX-512 VNNI Q8_0/Q4_0 prefill, Q4_K/Q6_K decode and interleaved Q4_0 kernels;
// likewise x86-64 only,
// checked with IsKernelIsaSupported(KernelIsa::kAvx512Vnni).
const KernelSet& Avx512VnniKernels();

// The final reduction of the eight float lanes, shared by both sets' float kernels.
inline float ReduceLanes8(const float* l) {
  return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
}

}  // namespace llmsync::engine
