// Q4_K and Q6_K: 256-element super-blocks with 6-bit (Q4_K) or 8-bit (Q6_K) sub-block scales.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/quant/quant.h"
#include "engine/quant/quant_blocks.h"

namespace llmsync::engine {
namespace {

std::uint16_t LoadU16(const std::uint8_t* p) {
  std::uint16_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

void StoreU16(std::uint8_t* p, std::uint16_t v) { std::memcpy(p, &v, sizeof v); }

int RoundClamp(float v, int lo, int hi) {
  if (!(v >= static_cast<float>(lo))) return std::isnan(v) ? 0 : lo;
  if (v >= static_cast<float>(hi)) return hi;
  return static_cast<int>(std::nearbyint(v));
}

// ceil(v / unit) clamped to [0, hi]; 0 when unit is 0.
int CeilUnits(float v, float unit, int hi) {
  if (!(unit > 0.0f) || !(v > 0.0f)) return 0;
  return std::min(hi, static_cast<int>(std::ceil(std::min(v / unit, static_cast<float>(hi)))));
}

constexpr int kQ4KSubBlocks = 8;
constexpr int kQ4KSubSize = 32;
constexpr int kQ6KSubBlocks = 16;
constexpr int kQ6KSubSize = 16;

// Byte offsets inside a block (the structs of quant_blocks.h).
constexpr std::size_t kQ4KD = 0, kQ4KDmin = 2, kQ4KScales = 4, kQ4KQs = 16;
constexpr std::size_t kQ6KQl = 0, kQ6KQh = 128, kQ6KScales = 192, kQ6KD = 208;

// Q4_K element e lives in qs[32 * (e / 64) + e % 32], low nibble when (e / 32) is even.
int Q4KCode(const std::uint8_t* qs, int e) {
  const std::uint8_t byte = qs[32 * (e / 64) + e % 32];
  return ((e / 32) % 2 == 0) ? (byte & 0x0f) : (byte >> 4);
}

// Q6_K element e: see the table in quant_blocks.h.
int Q6KCode(const std::uint8_t* ql, const std::uint8_t* qh, int e) {
  const int h = e / 128, g = (e % 128) / 32, l = e % 32;
  const std::uint8_t low_byte = ql[64 * h + l + 32 * (g % 2)];
  const int low = (g < 2) ? (low_byte & 0x0f) : (low_byte >> 4);
  const int high = (qh[32 * h + l] >> (2 * g)) & 3;
  return low | (high << 4);
}

void SetQ6KCode(std::uint8_t* ql, std::uint8_t* qh, int e, int code) {
  const int h = e / 128, g = (e % 128) / 32, l = e % 32;
  std::uint8_t& low_byte = ql[64 * h + l + 32 * (g % 2)];
  low_byte = static_cast<std::uint8_t>((g < 2) ? ((low_byte & 0xf0) | (code & 0x0f))
                                               : ((low_byte & 0x0f) | ((code & 0x0f) << 4)));
  std::uint8_t& high_byte = qh[32 * h + l];
  high_byte = static_cast<std::uint8_t>((high_byte & ~(3 << (2 * g))) | (((code >> 4) & 3) << (2 * g)));
}

}  // namespace

void UnpackQ4KScales(const std::uint8_t* packed, std::uint8_t* scales, std::uint8_t* mins) {
  for (int j = 0; j < 4; ++j) {
    scales[j] = packed[j] & 63;
    mins[j] = packed[j + 4] & 63;
  }
  for (int j = 4; j < 8; ++j) {
    scales[j] = static_cast<std::uint8_t>((packed[j + 4] & 0x0f) | ((packed[j - 4] >> 6) << 4));
    mins[j] = static_cast<std::uint8_t>((packed[j + 4] >> 4) | ((packed[j] >> 6) << 4));
  }
}

void PackQ4KScales(const std::uint8_t* scales, const std::uint8_t* mins, std::uint8_t* packed) {
  for (int j = 0; j < 4; ++j) {
    packed[j] = static_cast<std::uint8_t>((scales[j] & 63) | ((scales[j + 4] >> 4) << 6));
    packed[j + 4] = static_cast<std::uint8_t>((mins[j] & 63) | ((mins[j + 4] >> 4) << 6));
    packed[j + 8] = static_cast<std::uint8_t>((scales[j + 4] & 0x0f) | ((mins[j + 4] & 0x0f) << 4));
  }
}

// As ggml: x = (d * sc) * q - (dmin * m), each product rounded to float, then the difference.
void DequantizeQ4K(const std::uint8_t* src, float* dst, std::int64_t n) {
  for (std::int64_t b = 0; b < n / kBlockK; ++b) {
    const std::uint8_t* block = src + b * static_cast<std::int64_t>(sizeof(BlockQ4K));
    const float d = F16ToF32(LoadU16(block + kQ4KD));
    const float dmin = F16ToF32(LoadU16(block + kQ4KDmin));
    std::uint8_t sc[kQ4KSubBlocks], m[kQ4KSubBlocks];
    UnpackQ4KScales(block + kQ4KScales, sc, m);
    float* out = dst + b * kBlockK;
    for (int e = 0; e < kBlockK; ++e) {
      const int j = e / kQ4KSubSize;
      const float d1 = d * static_cast<float>(sc[j]);
      const float m1 = dmin * static_cast<float>(m[j]);
      out[e] = d1 * static_cast<float>(Q4KCode(block + kQ4KQs, e)) - m1;
    }
  }
}

// As ggml: x = (d * scale) * (q - 32), left to right in float.
void DequantizeQ6K(const std::uint8_t* src, float* dst, std::int64_t n) {
  for (std::int64_t b = 0; b < n / kBlockK; ++b) {
    const std::uint8_t* block = src + b * static_cast<std::int64_t>(sizeof(BlockQ6K));
    const float d = F16ToF32(LoadU16(block + kQ6KD));
    const auto* scales = reinterpret_cast<const std::int8_t*>(block + kQ6KScales);
    float* out = dst + b * kBlockK;
    for (int e = 0; e < kBlockK; ++e) {
      const int q = Q6KCode(block + kQ6KQl, block + kQ6KQh, e) - 32;
      out[e] = d * static_cast<float>(scales[e / kQ6KSubSize]) * static_cast<float>(q);
    }
  }
}

// Each sub-block's range [lo, hi] (lo clamped to <= 0, as the format's offset only subtracts) is
// covered exactly: the min code rounds the offset up, the scale code rounds the step up, and both
// super-scales are rounded up to f16 so every code fits 6 bits. Codes then round to nearest, so
// |error| <= step / 2 per element.
void QuantizeQ4K(const float* src, std::uint8_t* dst, std::int64_t n) {
  for (std::int64_t b = 0; b < n / kBlockK; ++b) {
    const float* x = src + b * kBlockK;
    std::uint8_t* block = dst + b * static_cast<std::int64_t>(sizeof(BlockQ4K));
    std::memset(block, 0, sizeof(BlockQ4K));
    float lo[kQ4KSubBlocks], hi[kQ4KSubBlocks];
    float max_neg = 0.0f;
    for (int j = 0; j < kQ4KSubBlocks; ++j) {
      lo[j] = 0.0f;
      hi[j] = 0.0f;
      for (int i = 0; i < kQ4KSubSize; ++i) {
        lo[j] = std::min(lo[j], x[j * kQ4KSubSize + i]);
        hi[j] = std::max(hi[j], x[j * kQ4KSubSize + i]);
      }
      max_neg = std::max(max_neg, -lo[j]);
    }
    const std::uint16_t dmin16 = F32ToF16RoundUp(max_neg / 63.0f);
    const float dmin = F16ToF32(dmin16);
    std::uint8_t sc[kQ4KSubBlocks], m[kQ4KSubBlocks];
    float offset[kQ4KSubBlocks], need[kQ4KSubBlocks];
    float max_need = 0.0f;
    for (int j = 0; j < kQ4KSubBlocks; ++j) {
      m[j] = static_cast<std::uint8_t>(CeilUnits(-lo[j], dmin, 63));
      offset[j] = dmin * static_cast<float>(m[j]);
      need[j] = (hi[j] + offset[j]) / 15.0f;
      max_need = std::max(max_need, need[j]);
    }
    const std::uint16_t d16 = F32ToF16RoundUp(max_need / 63.0f);
    const float d = F16ToF32(d16);
    for (int j = 0; j < kQ4KSubBlocks; ++j) sc[j] = static_cast<std::uint8_t>(CeilUnits(need[j], d, 63));
    StoreU16(block + kQ4KD, d16);
    StoreU16(block + kQ4KDmin, dmin16);
    PackQ4KScales(sc, m, block + kQ4KScales);
    std::uint8_t* qs = block + kQ4KQs;
    for (int e = 0; e < kBlockK; ++e) {
      const int j = e / kQ4KSubSize;
      const float step = d * static_cast<float>(sc[j]);
      const int q = step > 0.0f ? RoundClamp((x[e] + offset[j]) / step, 0, 15) : 0;
      const int at = 32 * (e / 64) + e % 32;
      qs[at] = static_cast<std::uint8_t>(((e / 32) % 2 == 0) ? ((qs[at] & 0xf0) | q)
                                                             : ((qs[at] & 0x0f) | (q << 4)));
    }
  }
}

// Symmetric: each sub-block's step covers its largest magnitude with code 31 (the format's -32 is
// not used), the scale code rounds up and d rounds up to f16, so |error| <= step / 2.
void QuantizeQ6K(const float* src, std::uint8_t* dst, std::int64_t n) {
  for (std::int64_t b = 0; b < n / kBlockK; ++b) {
    const float* x = src + b * kBlockK;
    std::uint8_t* block = dst + b * static_cast<std::int64_t>(sizeof(BlockQ6K));
    std::memset(block, 0, sizeof(BlockQ6K));
    float need[kQ6KSubBlocks];
    float max_need = 0.0f;
    for (int j = 0; j < kQ6KSubBlocks; ++j) {
      float amax = 0.0f;
      for (int i = 0; i < kQ6KSubSize; ++i) amax = std::max(amax, std::fabs(x[j * kQ6KSubSize + i]));
      need[j] = amax / 31.0f;
      max_need = std::max(max_need, need[j]);
    }
    const std::uint16_t d16 = F32ToF16RoundUp(max_need / 127.0f);
    const float d = F16ToF32(d16);
    auto* scales = reinterpret_cast<std::int8_t*>(block + kQ6KScales);
    for (int j = 0; j < kQ6KSubBlocks; ++j) scales[j] = static_cast<std::int8_t>(CeilUnits(need[j], d, 127));
    StoreU16(block + kQ6KD, d16);
    for (int e = 0; e < kBlockK; ++e) {
      const float step = d * static_cast<float>(scales[e / kQ6KSubSize]);
      const int q = step > 0.0f ? RoundClamp(x[e] / step, -32, 31) : 0;
      SetQ6KCode(block + kQ6KQl, block + kQ6KQh, e, q + 32);
    }
  }
}

}  // namespace llmsync::engine
