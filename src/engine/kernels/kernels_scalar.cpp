// The portable kernel set: plain C++ that spells out the canonical reductions of matmul.h. The
// AVX2 set must reproduce these bits exactly; std::fma keeps the single rounding of a fused
// multiply-add on every target.
#include <cmath>
#include <cstring>
#include <limits>

#include "engine/kernels/kernels.h"
#include "engine/quant/quant.h"
#include "engine/quant/quant_blocks.h"
#include "engine/quant/repack.h"

namespace llmsync::engine {
namespace {

std::uint16_t LoadU16(const std::uint8_t* p) {
  std::uint16_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// The final reduction of the eight float lanes of the float kernels.
float ReduceLanes8(const float* l) {
  return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
}

void QuantizeQ8Scalar(const float* x, std::int64_t n, int block, int sum_group, std::int8_t* q, float* scales,
                      std::int32_t* sums) {
  for (std::int64_t b = 0; b < n / block; ++b) {
    const float* xb = x + b * block;
    std::int8_t* qb = q + b * block;
    float amax = 0.0f;
    bool finite = true;
    for (int i = 0; i < block; ++i) {
      const float a = std::fabs(xb[i]);
      finite = finite && a <= std::numeric_limits<float>::max();
      amax = a > amax ? a : amax;
    }
    if (!finite || amax == 0.0f) {
      scales[b] = finite ? 0.0f : std::numeric_limits<float>::quiet_NaN();
      std::memset(qb, 0, static_cast<std::size_t>(block));
    } else {
      scales[b] = amax / 127.0f;
      const float id = 127.0f / amax;
      for (int i = 0; i < block; ++i) {
        float v = std::nearbyint(xb[i] * id);
        v = v > 127.0f ? 127.0f : (v < -127.0f ? -127.0f : v);
        qb[i] = static_cast<std::int8_t>(v);
      }
    }
    for (int g = 0; g < block / sum_group; ++g) {
      int sum = 0;
      for (int i = 0; i < sum_group; ++i) sum += qb[g * sum_group + i];
      sums[b * (block / sum_group) + g] = sum;
    }
  }
}

// Applies dot(row, token) to every (row, token) pair of the range.
template <typename Dot>
void ForEachOutput(const std::uint8_t* w, std::int64_t row_bytes, const ActivationView& x,
                   std::int64_t row_begin, std::int64_t row_end, float* y, std::int64_t y_stride, Dot dot) {
  for (std::int64_t r = row_begin; r < row_end; ++r) {
    for (std::int64_t t = 0; t < x.n_tokens; ++t) y[t * y_stride + r] = dot(w + r * row_bytes, t);
  }
}

struct LoadF32 {
  float operator()(const std::uint8_t* row, std::int64_t i) const {
    float v;
    std::memcpy(&v, row + 4 * i, sizeof v);
    return v;
  }
};
struct LoadF16 {
  float operator()(const std::uint8_t* row, std::int64_t i) const { return F16ToF32(LoadU16(row + 2 * i)); }
};
struct LoadBf16 {
  float operator()(const std::uint8_t* row, std::int64_t i) const { return Bf16ToF32(LoadU16(row + 2 * i)); }
};

template <typename Load, int ElemBytes>
void MatMulFloat(const std::uint8_t* w, const ActivationView& x, std::int64_t row_begin, std::int64_t row_end,
                 float* y, std::int64_t y_stride) {
  const std::int64_t n = x.n_cols;
  ForEachOutput(w, n * ElemBytes, x, row_begin, row_end, y, y_stride,
                [&](const std::uint8_t* row, std::int64_t t) {
                  const float* xt = x.f32 + t * x.n_cols;
                  float lanes[8] = {};
                  for (std::int64_t i = 0; i < n; ++i)
                    lanes[i % 8] = std::fma(Load()(row, i), xt[i], lanes[i % 8]);
                  return ReduceLanes8(lanes);
                });
}

void MatMulQ8_0(  // NOLINT(readability-identifier-naming): ggml's type name
    const std::uint8_t* w, const ActivationView& x, std::int64_t row_begin, std::int64_t row_end, float* y,
    std::int64_t y_stride) {
  const std::int64_t nb = x.n_cols / kBlock32;
  ForEachOutput(w, nb * 34, x, row_begin, row_end, y, y_stride, [&](const std::uint8_t* row, std::int64_t t) {
    const std::int8_t* xq = x.q8 + t * x.n_cols;
    const float* xd = x.scales + t * x.scales_per_row;
    float acc = 0.0f;
    for (std::int64_t b = 0; b < nb; ++b) {
      const std::uint8_t* block = row + b * 34;
      const auto* qs = reinterpret_cast<const std::int8_t*>(block + 2);
      std::int32_t isum = 0;
      for (int i = 0; i < kBlock32; ++i) isum += qs[i] * xq[b * kBlock32 + i];
      acc = std::fma(F16ToF32(LoadU16(block)) * xd[b], static_cast<float>(isum), acc);
    }
    return acc;
  });
}

void MatMulQ4_0(  // NOLINT(readability-identifier-naming): ggml's type name
    const std::uint8_t* w, const ActivationView& x, std::int64_t row_begin, std::int64_t row_end, float* y,
    std::int64_t y_stride) {
  const std::int64_t nb = x.n_cols / kBlock32;
  ForEachOutput(w, nb * 18, x, row_begin, row_end, y, y_stride, [&](const std::uint8_t* row, std::int64_t t) {
    const std::int8_t* xq = x.q8 + t * x.n_cols;
    const float* xd = x.scales + t * x.scales_per_row;
    const std::int32_t* xs = x.sums + t * x.sums_per_row;
    float acc = 0.0f;
    for (std::int64_t b = 0; b < nb; ++b) {
      const std::uint8_t* block = row + b * 18;
      const std::int8_t* xb = xq + b * kBlock32;
      std::int32_t isum = 0;
      for (int j = 0; j < kBlock32 / 2; ++j) {
        isum += (block[2 + j] & 0x0f) * xb[j] + (block[2 + j] >> 4) * xb[j + kBlock32 / 2];
      }
      isum -= 8 * xs[b];  // the codes' offset: sum((q - 8) x) = sum(q x) - 8 sum(x)
      acc = std::fma(F16ToF32(LoadU16(block)) * xd[b], static_cast<float>(isum), acc);
    }
    return acc;
  });
}

// The same reduction as MatMulQ4_0, reading row r's block b from the kInterleaved16 layout.
void MatMulQ4_0Interleaved(  // NOLINT(readability-identifier-naming): ggml's type name
    const std::uint8_t* w, const ActivationView& x, std::int64_t row_begin, std::int64_t row_end, float* y,
    std::int64_t y_stride) {
  const std::int64_t nb = x.n_cols / kBlock32;
  const std::int64_t group_bytes = InterleavedGroupBytes(x.n_cols);
  for (std::int64_t r = row_begin; r < row_end; ++r) {
    const std::uint8_t* group = w + r / kInterleavedRows * group_bytes;
    const std::int64_t j = r % kInterleavedRows;
    for (std::int64_t t = 0; t < x.n_tokens; ++t) {
      const std::int8_t* xq = x.q8 + t * x.n_cols;
      const float* xd = x.scales + t * x.scales_per_row;
      const std::int32_t* xs = x.sums + t * x.sums_per_row;
      float acc = 0.0f;
      for (std::int64_t b = 0; b < nb; ++b) {
        const std::int8_t* xb = xq + b * kBlock32;
        std::int32_t isum = 0;
        for (int i = 0; i < kBlock32 / 2; ++i) {
          const std::uint8_t q = group[b * 256 + 64 * (i / 4) + 4 * j + i % 4];
          isum += (q & 0x0f) * xb[i] + (q >> 4) * xb[i + kBlock32 / 2];
        }
        isum -= 8 * xs[b];
        const float d = F16ToF32(LoadU16(group + nb * 256 + b * 32 + 2 * j));
        acc = std::fma(d * xd[b], static_cast<float>(isum), acc);
      }
      y[t * y_stride + r] = acc;
    }
  }
}

void MatMulQ4K(const std::uint8_t* w, const ActivationView& x, std::int64_t row_begin, std::int64_t row_end,
               float* y, std::int64_t y_stride) {
  const std::int64_t nb = x.n_cols / kBlockK;
  ForEachOutput(w, nb * 144, x, row_begin, row_end, y, y_stride,
                [&](const std::uint8_t* row, std::int64_t t) {
                  const std::int8_t* xq = x.q8 + t * x.n_cols;
                  const float* xd = x.scales + t * x.scales_per_row;
                  const std::int32_t* xs = x.sums + t * x.sums_per_row;
                  float acc = 0.0f;
                  for (std::int64_t b = 0; b < nb; ++b) {
                    const std::uint8_t* block = row + b * 144;
                    const std::int8_t* xb = xq + b * kBlockK;
                    std::uint8_t sc[8], m[8];
                    UnpackQ4KScales(block + 4, sc, m);
                    std::int32_t sub[8] = {};
                    for (int c = 0; c < 4; ++c) {
                      for (int l = 0; l < 32; ++l) {
                        const std::uint8_t byte = block[16 + 32 * c + l];
                        sub[2 * c] += (byte & 0x0f) * xb[64 * c + l];
                        sub[2 * c + 1] += (byte >> 4) * xb[64 * c + 32 + l];
                      }
                    }
                    std::int32_t sumi = 0, summ = 0;
                    for (int j = 0; j < 8; ++j) {
                      sumi += sc[j] * sub[j];
                      summ += m[j] * (xs[b * 16 + 2 * j] + xs[b * 16 + 2 * j + 1]);
                    }
                    const float d = F16ToF32(LoadU16(block));
                    const float dmin = F16ToF32(LoadU16(block + 2));
                    acc = std::fma(d * xd[b], static_cast<float>(sumi), acc);
                    acc = std::fma(-(dmin * xd[b]), static_cast<float>(summ), acc);
                  }
                  return acc;
                });
}

void MatMulQ6K(const std::uint8_t* w, const ActivationView& x, std::int64_t row_begin, std::int64_t row_end,
               float* y, std::int64_t y_stride) {
  const std::int64_t nb = x.n_cols / kBlockK;
  ForEachOutput(
      w, nb * 210, x, row_begin, row_end, y, y_stride, [&](const std::uint8_t* row, std::int64_t t) {
        const std::int8_t* xq = x.q8 + t * x.n_cols;
        const float* xd = x.scales + t * x.scales_per_row;
        const std::int32_t* xs = x.sums + t * x.sums_per_row;
        float acc = 0.0f;
        for (std::int64_t b = 0; b < nb; ++b) {
          const std::uint8_t* block = row + b * 210;
          const std::uint8_t* ql = block;
          const std::uint8_t* qh = block + 128;
          const auto* scales = reinterpret_cast<const std::int8_t*>(block + 192);
          const std::int8_t* xb = xq + b * kBlockK;
          std::int32_t sub[16] = {};
          for (int h = 0; h < 2; ++h) {
            for (int l = 0; l < 32; ++l) {
              const int e = 128 * h + l;
              const std::uint8_t lo0 = ql[64 * h + l], lo1 = ql[64 * h + l + 32], hi = qh[32 * h + l];
              sub[e / 16] += ((lo0 & 0x0f) | ((hi & 3) << 4)) * xb[e];
              sub[(e + 32) / 16] += ((lo1 & 0x0f) | (((hi >> 2) & 3) << 4)) * xb[e + 32];
              sub[(e + 64) / 16] += ((lo0 >> 4) | (((hi >> 4) & 3) << 4)) * xb[e + 64];
              sub[(e + 96) / 16] += ((lo1 >> 4) | (((hi >> 6) & 3) << 4)) * xb[e + 96];
            }
          }
          std::int32_t sumi = 0;
          for (int j = 0; j < 16; ++j) sumi += scales[j] * (sub[j] - 32 * xs[b * 16 + j]);
          acc = std::fma(F16ToF32(LoadU16(block + 208)) * xd[b], static_cast<float>(sumi), acc);
        }
        return acc;
      });
}

}  // namespace

const KernelSet& ScalarKernels() {
  static const KernelSet kSet = {
      QuantizeQ8Scalar,
      MatMulFloat<LoadF32, 4>,
      MatMulFloat<LoadF16, 2>,
      MatMulFloat<LoadBf16, 2>,
      MatMulQ8_0,
      MatMulQ4_0,
      MatMulQ4K,
      MatMulQ6K,
      MatMulQ4_0Interleaved,
  };
  return kSet;
}

}  // namespace llmsync::engine
