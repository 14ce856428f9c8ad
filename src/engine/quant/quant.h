// Tensor element conversions: IEEE half and bfloat16 scalars, and whole-row dequantization and
// reference quantization for the types the engine computes with (F32, F16, BF16, Q8_0, Q4_0, Q4_K,
// Q6_K). Block layouts are ggml's, byte for byte (see quant_blocks.h), so rows read from any GGUF
// file decode here exactly as llama.cpp decodes them.
//
// DequantizeRow is exact up to the float arithmetic ggml itself performs (one f16->f32 conversion
// of each scale, then the products of the documented formula), so it is bit-identical to an
// independent implementation that follows the same formula (tests/engine/oracle/gguf_numpy.py).
// QuantizeRow is llmsync's own reference quantizer, used to write test models; it need not match
// llama.cpp's quantizer bit for bit, only the layout.
//
// Thread safety: pure functions over caller-owned memory.
#pragma once

#include <cstdint>

#include "engine/ggml_type.h"

namespace llmsync::engine {

// IEEE 754 binary16 <-> binary32. F32ToF16 rounds to nearest, ties to even; it overflows to
// infinity, keeps subnormals, and maps NaN to a quiet NaN of the same sign.
float F16ToF32(std::uint16_t h);
std::uint16_t F32ToF16(float f);

// bfloat16 (the upper half of a binary32) <-> binary32. F32ToBf16 rounds to nearest, ties to even,
// and maps NaN to a quiet NaN.
float Bf16ToF32(std::uint16_t h);
std::uint16_t F32ToBf16(float f);

// Dequantizes n elements of `type` at `src` into dst[0..n).
// REQUIRES: IsComputeSupported(type); n is a multiple of the type's block size; src holds the
// corresponding RowBytes(type, n) bytes (any alignment).
void DequantizeRow(GgmlType type, const void* src, float* dst, std::int64_t n);

// Quantizes n floats into RowBytes(type, n) bytes at dst. Finite inputs only; the per-element error
// bounds are documented per type in quant_blocks.h.
// REQUIRES: as DequantizeRow.
void QuantizeRow(GgmlType type, const float* src, void* dst, std::int64_t n);

}  // namespace llmsync::engine
