// The byte layouts of ggml's quantized blocks, and the internal per-family (de)quantizers behind
// quant.h. The structs mirror ggml's block_q8_0, block_q4_0, block_q4_K and block_q6_K exactly;
// the static_asserts pin their sizes to the GGUF type table. All multi-byte fields are
// little-endian (llmsync targets x86-64 only) and blocks may sit at any alignment, so code reads
// them through memcpy-free byte access or by copying the struct.
//
// Element layouts (q is the stored code, d the f16 scale):
//   Q8_0  32 elements: x[i] = d * qs[i], qs int8.
//   Q4_0  32 elements: qs[j] low nibble = element j, high nibble = element j + 16; x = d * (q - 8).
//   Q4_K  256 elements in 8 sub-blocks of 32, each with a 6-bit scale sc and a 6-bit min m packed in
//         scales[12]: for sub-block j < 4, sc = scales[j] & 63 and m = scales[j + 4] & 63; for
//         j >= 4, sc = (scales[j + 4] & 15) | (scales[j - 4] >> 6) << 4 and
//         m = (scales[j + 4] >> 4) | (scales[j] >> 6) << 4. qs[32 c + l] holds element 64 c + l in
//         its low nibble (sub-block 2c) and element 64 c + 32 + l in its high nibble (sub-block
//         2c + 1). x = d * sc * q - dmin * m.
//   Q6_K  256 elements in 16 sub-blocks of 16 with int8 scales. For half h (0, 1), l in [0, 32):
//         element 128 h + l      low 4 bits  ql[64 h + l] & 15,      high 2 bits qh[32 h + l] & 3
//         element 128 h + l + 32 low 4 bits  ql[64 h + l + 32] & 15, high 2 bits (qh >> 2) & 3
//         element 128 h + l + 64 low 4 bits  ql[64 h + l] >> 4,      high 2 bits (qh >> 4) & 3
//         element 128 h + l + 96 low 4 bits  ql[64 h + l + 32] >> 4, high 2 bits (qh >> 6) & 3
//         x = d * scales[element / 16] * (q - 32).
//
// Reference quantizer error bounds (|x - dequantized x|, per element, finite inputs):
//   Q8_0 <= d / 2 (+ float rounding);  Q4_0 <= |d| (the extreme of one sign is exact; the opposite
//   extreme may be clamped by one step);  Q4_K <= d * sc / 2 of its sub-block;  Q6_K <= d * sc / 2.
//
// Thread safety: pure functions over caller-owned memory.
#pragma once

#include <cstdint>

namespace llmsync::engine {

inline constexpr int kBlock32 = 32;
inline constexpr int kBlockK = 256;

struct BlockQ8_0 {  // NOLINT(readability-identifier-naming): ggml's type name
  std::uint16_t d;
  std::int8_t qs[kBlock32];
};
static_assert(sizeof(BlockQ8_0) == 34);

struct BlockQ4_0 {  // NOLINT(readability-identifier-naming): ggml's type name
  std::uint16_t d;
  std::uint8_t qs[kBlock32 / 2];
};
static_assert(sizeof(BlockQ4_0) == 18);

struct BlockQ4K {
  std::uint16_t d;
  std::uint16_t dmin;
  std::uint8_t scales[12];
  std::uint8_t qs[kBlockK / 2];
};
static_assert(sizeof(BlockQ4K) == 144);

struct BlockQ6K {
  std::uint8_t ql[kBlockK / 2];
  std::uint8_t qh[kBlockK / 4];
  std::int8_t scales[kBlockK / 16];
  std::uint16_t d;
};
static_assert(sizeof(BlockQ6K) == 210);

// Unpacks Q4_K's 12-byte scales field into 8 scales and 8 mins (each 0..63).
void UnpackQ4KScales(const std::uint8_t* packed, std::uint8_t* scales, std::uint8_t* mins);
// The inverse. REQUIRES: every scale and min is < 64.
void PackQ4KScales(const std::uint8_t* scales, const std::uint8_t* mins, std::uint8_t* packed);

// Per-family row (de)quantizers; n is a multiple of the family's block size. Q8_0 and Q4_0 keep
// ggml's spelling, as GgmlType's enumerators do.
// NOLINTBEGIN(readability-identifier-naming)
void DequantizeQ8_0(const std::uint8_t* src, float* dst, std::int64_t n);
void DequantizeQ4_0(const std::uint8_t* src, float* dst, std::int64_t n);
void DequantizeQ4K(const std::uint8_t* src, float* dst, std::int64_t n);
void DequantizeQ6K(const std::uint8_t* src, float* dst, std::int64_t n);
void QuantizeQ8_0(const float* src, std::uint8_t* dst, std::int64_t n);
void QuantizeQ4_0(const float* src, std::uint8_t* dst, std::int64_t n);
// NOLINTEND(readability-identifier-naming)
void QuantizeQ4K(const float* src, std::uint8_t* dst, std::int64_t n);
void QuantizeQ6K(const float* src, std::uint8_t* dst, std::int64_t n);

// The smallest f16 value >= v (v finite, >= 0), as bits. Quantizers round their super-scales up so
// that every sub-scale fits its integer range.
std::uint16_t F32ToF16RoundUp(float v);

}  // namespace llmsync::engine
