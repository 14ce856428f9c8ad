// The reference quantizer: quantize -> dequantize error bounds per type, checked element by element
// against the bound the format allows given the scales the quantizer chose (quant_blocks.h), plus
// a relative RMS error ceiling on Gaussian data so a quantizer that wastes its codes fails.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "engine/quant/quant.h"
#include "engine/quant/quant_blocks.h"

namespace llmsync::engine {
namespace {

std::uint16_t U16At(const std::uint8_t* p) {
  std::uint16_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Rows exercising the corners: Gaussian at two scales, all zeros, a lone spike, constant positive
// and negative blocks, and a mix of magnitudes across blocks.
std::vector<std::vector<float>> TestRows(std::int64_t n) {
  std::mt19937 rng(42);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<std::vector<float>> rows;
  for (float scale : {1.0f, 0.02f}) {
    std::vector<float> r(static_cast<std::size_t>(n));
    for (float& v : r) v = scale * normal(rng);
    rows.push_back(r);
  }
  rows.emplace_back(static_cast<std::size_t>(n), 0.0f);
  std::vector<float> spike(static_cast<std::size_t>(n), 0.0f);
  spike[37] = -3.0f;
  rows.push_back(spike);
  rows.emplace_back(static_cast<std::size_t>(n), 0.75f);
  rows.emplace_back(static_cast<std::size_t>(n), -1.25f);
  std::vector<float> mixed(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i)
    mixed[i] = normal(rng) * std::pow(10.0f, static_cast<float>(i / 32 % 5) - 3);
  rows.push_back(mixed);
  return rows;
}

// The per-element bound for element e, read from the quantized bytes.
using BoundFn = double (*)(const std::uint8_t* q, std::int64_t e);

double BoundQ8_0(const std::uint8_t* q, std::int64_t e) { return 0.5 * F16ToF32(U16At(q + (e / 32) * 34)); }
double BoundQ4_0(const std::uint8_t* q, std::int64_t e) {
  return std::fabs(F16ToF32(U16At(q + (e / 32) * 18))) * (1.0 + 0x1p-10);
}
double BoundQ4K(const std::uint8_t* q, std::int64_t e) {
  const std::uint8_t* block = q + (e / 256) * 144;
  std::uint8_t sc[8], m[8];
  UnpackQ4KScales(block + 4, sc, m);
  return 0.5 * F16ToF32(U16At(block)) * sc[(e % 256) / 32];
}
double BoundQ6K(const std::uint8_t* q, std::int64_t e) {
  const std::uint8_t* block = q + (e / 256) * 210;
  const auto scale = static_cast<std::int8_t>(block[192 + (e % 256) / 16]);
  return 0.5 * F16ToF32(U16At(block + 208)) * std::abs(scale);
}

struct Case {
  GgmlType type;
  BoundFn bound;
  double max_rel_rms;  // on the unit Gaussian row
};

class QuantRoundTripTest : public ::testing::TestWithParam<Case> {};

TEST_P(QuantRoundTripTest, ErrorWithinFormatBound) {
  const Case c = GetParam();
  constexpr std::int64_t kN = 1024;
  std::vector<std::uint8_t> q(*RowBytes(c.type, kN));
  std::vector<float> back(kN);
  int row_index = 0;
  for (const std::vector<float>& row : TestRows(kN)) {
    QuantizeRow(c.type, row.data(), q.data(), kN);
    DequantizeRow(c.type, q.data(), back.data(), kN);
    float amax = 0.0f;
    for (float v : row) amax = std::max(amax, std::fabs(v));
    double err2 = 0.0, ref2 = 0.0;
    for (std::int64_t e = 0; e < kN; ++e) {
      const double err = std::fabs(static_cast<double>(back[e]) - row[e]);
      // Float rounding of the scale products and of the quantizer's own divisions: a few ulps of
      // the row's magnitude.
      const double slack = 1e-6 * amax;
      ASSERT_LE(err, c.bound(q.data(), e) + slack) << GgmlTypeName(c.type) << " row " << row_index
                                                   << " element " << e << ": " << row[e] << " -> " << back[e];
      err2 += err * err;
      ref2 += static_cast<double>(row[e]) * row[e];
    }
    if (row_index == 0) {
      const double rel_rms = std::sqrt(err2 / ref2);
      EXPECT_LE(rel_rms, c.max_rel_rms) << GgmlTypeName(c.type);
      std::printf("%s relative RMS error on N(0,1): %.4f\n", std::string(GgmlTypeName(c.type)).c_str(),
                  rel_rms);
    }
    if (row_index == 2) {
      for (float v : back) ASSERT_EQ(v, 0.0f) << "zeros must stay zeros";
    }
    ++row_index;
  }
}

INSTANTIATE_TEST_SUITE_P(Types, QuantRoundTripTest,
                         ::testing::Values(Case{GgmlType::kQ8_0, BoundQ8_0, 0.006},
                                           Case{GgmlType::kQ4_0, BoundQ4_0, 0.12},
                                           Case{GgmlType::kQ4K, BoundQ4K, 0.12},
                                           Case{GgmlType::kQ6K, BoundQ6K, 0.03}),
                         [](const auto& info) { return std::string(GgmlTypeName(info.param.type)); });

TEST(QuantRoundTripTest, FloatTypesRoundToNearest) {
  const std::vector<float> row = TestRows(256)[0];
  std::vector<std::uint8_t> q(256 * 4);
  std::vector<float> back(256);
  QuantizeRow(GgmlType::kF32, row.data(), q.data(), 256);
  DequantizeRow(GgmlType::kF32, q.data(), back.data(), 256);
  EXPECT_EQ(back, row);
  QuantizeRow(GgmlType::kF16, row.data(), q.data(), 256);
  DequantizeRow(GgmlType::kF16, q.data(), back.data(), 256);
  for (int i = 0; i < 256; ++i) EXPECT_EQ(back[i], F16ToF32(F32ToF16(row[i])));
  for (int i = 0; i < 256; ++i)
    EXPECT_LE(std::fabs(back[i] - row[i]), std::fabs(row[i]) * 0x1p-11f + 0x1p-25f);
  QuantizeRow(GgmlType::kBf16, row.data(), q.data(), 256);
  DequantizeRow(GgmlType::kBf16, q.data(), back.data(), 256);
  for (int i = 0; i < 256; ++i) EXPECT_LE(std::fabs(back[i] - row[i]), std::fabs(row[i]) * 0x1p-8f);
}

}  // namespace
}  // namespace llmsync::engine
