// Q8_0 and Q4_0: 32-element blocks with one f16 scale.
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

// Rounds to the nearest integer (ties to even) and clamps into [lo, hi]; NaN becomes 0.
int RoundClamp(float v, int lo, int hi) {
  if (!(v >= static_cast<float>(lo))) return std::isnan(v) ? 0 : lo;
  if (v >= static_cast<float>(hi)) return hi;
  return static_cast<int>(std::nearbyint(v));
}

}  // namespace

void DequantizeQ8_0(const std::uint8_t* src, float* dst, std::int64_t n) {
  for (std::int64_t b = 0; b < n / kBlock32; ++b) {
    const std::uint8_t* block = src + b * static_cast<std::int64_t>(sizeof(BlockQ8_0));
    const float d = F16ToF32(LoadU16(block));
    const auto* qs = reinterpret_cast<const std::int8_t*>(block + 2);
    for (int i = 0; i < kBlock32; ++i) dst[b * kBlock32 + i] = d * static_cast<float>(qs[i]);
  }
}

void DequantizeQ4_0(const std::uint8_t* src, float* dst, std::int64_t n) {
  for (std::int64_t b = 0; b < n / kBlock32; ++b) {
    const std::uint8_t* block = src + b * static_cast<std::int64_t>(sizeof(BlockQ4_0));
    const float d = F16ToF32(LoadU16(block));
    const std::uint8_t* qs = block + 2;
    float* out = dst + b * kBlock32;
    for (int j = 0; j < kBlock32 / 2; ++j) {
      out[j] = d * static_cast<float>((qs[j] & 0x0f) - 8);
      out[j + kBlock32 / 2] = d * static_cast<float>((qs[j] >> 4) - 8);
    }
  }
}

// d = amax / 127 rounded to f16; codes round x / d to nearest, clamped to [-127, 127].
void QuantizeQ8_0(const float* src, std::uint8_t* dst, std::int64_t n) {
  for (std::int64_t b = 0; b < n / kBlock32; ++b) {
    const float* x = src + b * kBlock32;
    std::uint8_t* block = dst + b * static_cast<std::int64_t>(sizeof(BlockQ8_0));
    float amax = 0.0f;
    for (int i = 0; i < kBlock32; ++i) amax = std::max(amax, std::fabs(x[i]));
    const std::uint16_t d16 = F32ToF16(amax / 127.0f);
    const float d = F16ToF32(d16);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    StoreU16(block, d16);
    auto* qs = reinterpret_cast<std::int8_t*>(block + 2);
    for (int i = 0; i < kBlock32; ++i) qs[i] = static_cast<std::int8_t>(RoundClamp(x[i] * id, -127, 127));
  }
}

// As ggml: the value of largest magnitude, m, maps to code 0 (d = m / -8), so it is exact; codes
// are x / d + 8 rounded to nearest and clamped to [0, 15].
void QuantizeQ4_0(const float* src, std::uint8_t* dst, std::int64_t n) {
  for (std::int64_t b = 0; b < n / kBlock32; ++b) {
    const float* x = src + b * kBlock32;
    std::uint8_t* block = dst + b * static_cast<std::int64_t>(sizeof(BlockQ4_0));
    float amax = 0.0f;
    float extreme = 0.0f;
    for (int i = 0; i < kBlock32; ++i) {
      if (std::fabs(x[i]) > amax) {
        amax = std::fabs(x[i]);
        extreme = x[i];
      }
    }
    const std::uint16_t d16 = F32ToF16(extreme / -8.0f);
    const float d = F16ToF32(d16);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    StoreU16(block, d16);
    std::uint8_t* qs = block + 2;
    for (int j = 0; j < kBlock32 / 2; ++j) {
      const int lo = RoundClamp(x[j] * id + 8.0f, 0, 15);
      const int hi = RoundClamp(x[j + kBlock32 / 2] * id + 8.0f, 0, 15);
      qs[j] = static_cast<std::uint8_t>(lo | (hi << 4));
    }
  }
}

}  // namespace llmsync::engine
