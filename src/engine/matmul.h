// Matrix-vector and matrix-matrix products of raw GGUF weight rows with activation rows: the
// engine's hot loop.
//
// PreparedActivations converts activation rows once per matmul into what the weight type's dot
// kernel consumes: f32 for F32/F16/BF16 weights, 8-bit blocks of 32 (one f32 scale and one code sum
// per block) for Q8_0/Q4_0 weights, 8-bit blocks of 256 (one f32 scale and sums per 16 codes) for
// Q4_K/Q6_K weights. Quantized dot products then run on integers block by block; weights are never
// dequantized as a whole.
//
// Batch invariance and reproducibility. Every output y[t][r] is computed by one canonical
// reduction that depends only on W row r and activation row t:
//   - quantized weights: per weight block, the exact integer dot product of the codes (with the
//     format's offsets and sub-block scales applied in integers), then
//     acc = fma(d_w * d_x, float(isum), acc) over blocks in order (Q4_K adds a second
//     fma(-(dmin_w * d_x), float(Σ m * bsum), acc) per block);
//   - float weights: eight lanes, element i accumulated into lane i % 8 by fma in order of i, then
//     ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)).
// Neither the batch size, the other tokens in the batch, the row range nor the kernel set (scalar
// or AVX2) changes the bits of any output; the activation quantization is identical in both kernel
// sets too. So logits recomputed on a machine without AVX2 match those computed with it.
//
// Kernel sets are chosen once per process: AVX-512 VNNI (the AVX2 set with faster Q8_0/Q4_0
// prefill, Q4_K/Q6_K decode and the interleaved Q4_0 tiles) when the CPU has AVX-512 F/BW/VL/VNNI besides
// AVX2+FMA+F16C, else AVX2 when it has those, else scalar. LLMSYNC_FORCE_SCALAR=1 forces scalar and =avx2
// forces AVX2 (debugging).
//
// Weight layouts (quant/repack.h): kernels read GGUF's rows as they are (WeightLayout::kRows), or
// Q4_0 rows interleaved in groups of 16 (kInterleaved16), which a loader makes when
// PreferredLayout says so: the AVX-512 VNNI set's tiles then run decode and prefill on 16 rows per
// instruction. Every set computes every layout with the same bits (the other sets run a scalar
// reference on kInterleaved16, so a loader should not pick it for them).
//
// Thread safety: MatMulRows is a pure function of its inputs and may run concurrently over
// disjoint row ranges of the same output. A PreparedActivations object is written by Prepare and
// then read concurrently by any number of MatMulRows calls.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "engine/ggml_type.h"
#include "engine/quant/repack.h"

namespace llmsync::engine {

enum class KernelIsa { kScalar, kAvx2, kAvx512Vnni };

// The kernel set MatMulRows and Prepare use: decided on first use, then fixed for the process.
KernelIsa ActiveKernelIsa();
// True when this CPU can run the given kernel set (scalar always can).
bool IsKernelIsaSupported(KernelIsa isa);
std::string_view KernelIsaName(KernelIsa isa);  // "scalar", "avx2", "avx512vnni"
// The choice ActiveKernelIsa makes, given $LLMSYNC_FORCE_SCALAR (may be null) and the CPU's
// support: scalar when forced with "1" or without AVX2+FMA+F16C; AVX2 when forced with "avx2" or
// without AVX-512 VNNI; else AVX-512 VNNI.
KernelIsa ChooseKernelIsa(const char* force_scalar_env, bool cpu_has_avx2, bool cpu_has_avx512_vnni);

// The layout a loader should store matrices of `type` in for the active kernel set: kInterleaved16
// for Q4_0 under AVX-512 VNNI, else kRows.
WeightLayout PreferredLayout(GgmlType type);

// What PreparedActivations holds for a weight type.
enum class ActivationFormat { kF32, kQ8Block32, kQ8Block256 };
ActivationFormat ActivationFormatFor(GgmlType weight_type);

class PreparedActivations {
 public:
  // Prepares n_tokens rows of n_cols floats (row-major, contiguous) for weights of weight_type.
  // Reuses its buffers: no allocation once they have grown to the largest size used.
  // REQUIRES: IsComputeSupported(weight_type); n_cols is a multiple of the weight block size and
  // below 2^27 (kernels address 8 rows with 32-bit offsets).
  void Prepare(GgmlType weight_type, const float* x, std::int64_t n_tokens, std::int64_t n_cols);
  // The same with an explicit kernel set (tests compare the sets). REQUIRES: IsKernelIsaSupported.
  void PrepareWith(KernelIsa isa, GgmlType weight_type, const float* x, std::int64_t n_tokens,
                   std::int64_t n_cols);

  std::int64_t Tokens() const { return n_tokens_; }
  std::int64_t Cols() const { return n_cols_; }
  GgmlType WeightType() const { return weight_type_; }
  ActivationFormat Format() const { return format_; }

  // Row views of token t (kernels only). F32Row for kF32; the others for the 8-bit formats:
  // Q8Row has Cols() codes, ScaleRow one scale per block (32 or 256 codes), SumRow the code sums
  // per 32 codes (kQ8Block32) or per 16 codes (kQ8Block256).
  const float* F32Row(std::int64_t t) const { return f32_.data() + t * n_cols_; }
  const std::int8_t* Q8Row(std::int64_t t) const { return q8_.data() + t * n_cols_; }
  const float* ScaleRow(std::int64_t t) const { return scales_.data() + t * scales_per_row_; }
  const std::int32_t* SumRow(std::int64_t t) const { return sums_.data() + t * sums_per_row_; }
  std::int64_t ScalesPerRow() const { return scales_per_row_; }
  std::int64_t SumsPerRow() const { return sums_per_row_; }

 private:
  GgmlType weight_type_ = GgmlType::kF32;
  ActivationFormat format_ = ActivationFormat::kF32;
  std::int64_t n_tokens_ = 0;
  std::int64_t n_cols_ = 0;
  std::int64_t scales_per_row_ = 0;
  std::int64_t sums_per_row_ = 0;
  std::vector<float> f32_;
  std::vector<std::int8_t> q8_;
  std::vector<float> scales_;
  std::vector<std::int32_t> sums_;
};

// y[t * y_stride + r] = dot(row r of W, x row t), for r in [row_begin, row_end) and every token t.
// W is the tensor data in `layout` (kRows: rows of x.Cols() elements of weight_type, as stored in
// GGUF; kInterleaved16: Q4_0 only, as repack.h describes; any alignment). See the file comment for
// the exact reduction.
// REQUIRES: x was prepared for weight_type, or for a type with the same ActivationFormat (Q4_K and
// Q6_K share one, as do Q8_0 and Q4_0, and the float types); 0 <= row_begin <= row_end <= rows of W;
// y_stride >= row_end.
void MatMulRows(GgmlType weight_type, WeightLayout layout, const std::uint8_t* w,
                const PreparedActivations& x, std::int64_t row_begin, std::int64_t row_end, float* y,
                std::int64_t y_stride);
// The same with an explicit kernel set. REQUIRES: IsKernelIsaSupported(isa).
void MatMulRowsWith(KernelIsa isa, GgmlType weight_type, WeightLayout layout, const std::uint8_t* w,
                    const PreparedActivations& x, std::int64_t row_begin, std::int64_t row_end, float* y,
                    std::int64_t y_stride);

}  // namespace llmsync::engine
