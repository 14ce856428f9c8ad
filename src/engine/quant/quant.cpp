// Scalar conversions (f16, bf16), the float row types, and the type dispatch of quant.h.
#include "engine/quant/quant.h"

#include <cassert>
#include <cstring>

#include "engine/quant/quant_blocks.h"

namespace llmsync::engine {
namespace {

std::uint32_t FloatBits(float f) {
  std::uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  return bits;
}

float BitsFloat(std::uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

std::uint16_t LoadU16(const std::uint8_t* p) {
  std::uint16_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

}  // namespace

float F16ToF32(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1fu;
  std::uint32_t mant = h & 0x3ffu;
  if (exp == 0x1f) return BitsFloat(sign | 0x7f800000u | (mant << 13));  // inf, NaN (payload kept)
  if (exp != 0) return BitsFloat(sign | ((exp + 112) << 23) | (mant << 13));
  if (mant == 0) return BitsFloat(sign);  // +-0
  // Subnormal: mant * 2^-24. Normalize so the leading one becomes the implicit bit.
  std::uint32_t shift = 0;
  while ((mant & 0x400u) == 0) {
    mant <<= 1;
    ++shift;
  }
  return BitsFloat(sign | ((113 - shift) << 23) | ((mant & 0x3ffu) << 13));
}

std::uint16_t F32ToF16(float f) {
  const std::uint32_t bits = FloatBits(f);
  const auto sign = static_cast<std::uint16_t>((bits >> 16) & 0x8000u);
  const std::uint32_t abs = bits & 0x7fffffffu;
  if (abs > 0x7f800000u) return static_cast<std::uint16_t>(sign | 0x7e00u | ((abs >> 13) & 0x3ffu));
  if (abs >= 0x477ff000u) return static_cast<std::uint16_t>(sign | 0x7c00u);  // >= 65520 rounds to inf
  if (abs >= 0x38800000u) {                                                   // normal half
    std::uint32_t h = (abs >> 13) - (112u << 10);
    const std::uint32_t rem = abs & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u) != 0)) ++h;  // a carry may bump the exponent
    return static_cast<std::uint16_t>(sign | h);
  }
  if (abs <= 0x33000000u) return sign;  // <= 2^-25: ties to the even zero
  // Subnormal half: units of 2^-24.
  const std::uint32_t e = abs >> 23;
  const std::uint32_t m = (abs & 0x7fffffu) | 0x800000u;
  const std::uint32_t shift = 126 - e;  // 14..24
  std::uint32_t h = m >> shift;
  const std::uint32_t rem = m & ((1u << shift) - 1);
  const std::uint32_t half = 1u << (shift - 1);
  if (rem > half || (rem == half && (h & 1u) != 0)) ++h;
  return static_cast<std::uint16_t>(sign | h);
}

float Bf16ToF32(std::uint16_t h) { return BitsFloat(static_cast<std::uint32_t>(h) << 16); }

std::uint16_t F32ToBf16(float f) {
  const std::uint32_t bits = FloatBits(f);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((bits >> 16) | 0x40u);
  const std::uint32_t rounded = bits + 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<std::uint16_t>(rounded >> 16);
}

std::uint16_t F32ToF16RoundUp(float v) {
  std::uint16_t h = F32ToF16(v);
  if (F16ToF32(h) < v && h < 0x7c00u) ++h;  // positive values: the next code is the next value
  return h;
}

void DequantizeRow(GgmlType type, const void* src, float* dst, std::int64_t n) {
  const auto* bytes = static_cast<const std::uint8_t*>(src);
  switch (type) {
    case GgmlType::kF32: std::memcpy(dst, src, static_cast<std::size_t>(n) * sizeof(float)); return;
    case GgmlType::kF16:
      for (std::int64_t i = 0; i < n; ++i) dst[i] = F16ToF32(LoadU16(bytes + 2 * i));
      return;
    case GgmlType::kBf16:
      for (std::int64_t i = 0; i < n; ++i) dst[i] = Bf16ToF32(LoadU16(bytes + 2 * i));
      return;
    case GgmlType::kQ8_0: DequantizeQ8_0(bytes, dst, n); return;
    case GgmlType::kQ4_0: DequantizeQ4_0(bytes, dst, n); return;
    case GgmlType::kQ4K: DequantizeQ4K(bytes, dst, n); return;
    case GgmlType::kQ6K: DequantizeQ6K(bytes, dst, n); return;
    default: assert(false && "DequantizeRow: type not compute-supported"); return;
  }
}

void QuantizeRow(GgmlType type, const float* src, void* dst, std::int64_t n) {
  auto* bytes = static_cast<std::uint8_t*>(dst);
  switch (type) {
    case GgmlType::kF32: std::memcpy(dst, src, static_cast<std::size_t>(n) * sizeof(float)); return;
    case GgmlType::kF16:
      for (std::int64_t i = 0; i < n; ++i) {
        const std::uint16_t h = F32ToF16(src[i]);
        std::memcpy(bytes + 2 * i, &h, sizeof h);
      }
      return;
    case GgmlType::kBf16:
      for (std::int64_t i = 0; i < n; ++i) {
        const std::uint16_t h = F32ToBf16(src[i]);
        std::memcpy(bytes + 2 * i, &h, sizeof h);
      }
      return;
    case GgmlType::kQ8_0: QuantizeQ8_0(src, bytes, n); return;
    case GgmlType::kQ4_0: QuantizeQ4_0(src, bytes, n); return;
    case GgmlType::kQ4K: QuantizeQ4K(src, bytes, n); return;
    case GgmlType::kQ6K: QuantizeQ6K(src, bytes, n); return;
    default: assert(false && "QuantizeRow: type not compute-supported"); return;
  }
}

}  // namespace llmsync::engine
