// MatMulRows: accuracy against a double-precision reference over the dequantized weights, batch
// invariance (bit-identical outputs whatever the batch, neighbours and row split), and bit-exact
// agreement of the scalar and AVX2 kernel sets.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "engine/matmul.h"
#include "engine/quant/quant.h"
#include "engine/quant/repack.h"

namespace llmsync::engine {
namespace {

constexpr GgmlType kAllTypes[] = {GgmlType::kF32,  GgmlType::kF16, GgmlType::kBf16, GgmlType::kQ8_0,
                                  GgmlType::kQ4_0, GgmlType::kQ4K, GgmlType::kQ6K};

std::vector<float> Gaussian(std::size_t n, std::uint32_t seed, float stddev) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, stddev);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

struct Weights {
  GgmlType type;
  std::int64_t rows, cols;
  std::vector<std::uint8_t> bytes;
  std::vector<float> dequantized;  // rows x cols
};

Weights MakeWeights(GgmlType type, std::int64_t rows, std::int64_t cols, std::uint32_t seed) {
  Weights w{type, rows, cols, {}, {}};
  const std::vector<float> source = Gaussian(static_cast<std::size_t>(rows * cols), seed, 0.02f);
  const std::uint64_t row_bytes = *RowBytes(type, static_cast<std::uint64_t>(cols));
  w.bytes.resize(row_bytes * rows);
  w.dequantized.resize(source.size());
  for (std::int64_t r = 0; r < rows; ++r) {
    QuantizeRow(type, source.data() + r * cols, w.bytes.data() + r * row_bytes, cols);
    DequantizeRow(type, w.bytes.data() + r * row_bytes, w.dequantized.data() + r * cols, cols);
  }
  return w;
}

std::vector<float> RunMatMul(KernelIsa isa, const Weights& w, const std::vector<float>& x,
                             std::int64_t n_tokens, std::int64_t row_begin, std::int64_t row_end) {
  PreparedActivations prepared;
  prepared.PrepareWith(isa, w.type, x.data(), n_tokens, w.cols);
  std::vector<float> y(static_cast<std::size_t>(n_tokens * w.rows), -1.0f);
  MatMulRowsWith(isa, w.type, WeightLayout::kRows, w.bytes.data(), prepared, row_begin, row_end, y.data(),
                 w.rows);
  return y;
}

std::vector<KernelIsa> SupportedIsas() {
  std::vector<KernelIsa> isas = {KernelIsa::kScalar};
  for (KernelIsa isa : {KernelIsa::kAvx2, KernelIsa::kAvx512Vnni}) {
    if (IsKernelIsaSupported(isa)) isas.push_back(isa);
  }
  return isas;
}

class MatMulTest : public ::testing::TestWithParam<GgmlType> {};

// Float weights see only f32 accumulation error. Quantized types also quantize each activation
// block to 8 bits with step d_x = amax / 127, an error of at most d_x / 2 per element, so
// |y - ref| <= sum_k |w_k| * d_x(k) / 2 plus the float accumulation slack.
TEST_P(MatMulTest, MatchesDoubleReferenceWithinBound) {
  const GgmlType type = GetParam();
  const std::int64_t rows = 37, cols = 512, n_tokens = 5;
  const Weights w = MakeWeights(type, rows, cols, 1);
  std::vector<float> x = Gaussian(static_cast<std::size_t>(n_tokens * cols), 2, 1.0f);
  x[3] = 40.0f;  // an outlier coarsens its block's activation scale
  const bool quantized_x = type != GgmlType::kF32 && type != GgmlType::kF16 && type != GgmlType::kBf16;
  const std::int64_t x_block = (type == GgmlType::kQ4K || type == GgmlType::kQ6K) ? 256 : 32;
  for (KernelIsa isa : SupportedIsas()) {
    const std::vector<float> y = RunMatMul(isa, w, x, n_tokens, 0, rows);
    for (std::int64_t t = 0; t < n_tokens; ++t) {
      for (std::int64_t r = 0; r < rows; ++r) {
        double ref = 0.0, abs_sum = 0.0, act_bound = 0.0;
        for (std::int64_t b = 0; b < cols; b += x_block) {
          double amax = 0.0;
          for (std::int64_t k = b; k < b + x_block; ++k)
            amax = std::max(amax, std::fabs(static_cast<double>(x[t * cols + k])));
          for (std::int64_t k = b; k < b + x_block; ++k) {
            const double wk = w.dequantized[r * cols + k];
            ref += wk * x[t * cols + k];
            abs_sum += std::fabs(wk * x[t * cols + k]);
            act_bound += std::fabs(wk) * amax / 254.0;
          }
        }
        const double bound = (quantized_x ? act_bound * 1.001 : 0.0) + 1e-5 * abs_sum;
        ASSERT_LE(std::fabs(y[t * rows + r] - ref), bound)
            << GgmlTypeName(type) << " " << KernelIsaName(isa) << " token " << t << " row " << r;
      }
    }
  }
}

// The same token gives bit-identical outputs alone, in a batch of 7 or 64 with different
// neighbours, and under different row splits.
TEST_P(MatMulTest, BatchInvariant) {
  const GgmlType type = GetParam();
  const std::int64_t rows = 45, cols = 768;
  const Weights w = MakeWeights(type, rows, cols, 3);
  const std::vector<float> probe = Gaussian(static_cast<std::size_t>(cols), 4, 1.0f);
  for (KernelIsa isa : SupportedIsas()) {
    const std::vector<float> alone = RunMatMul(isa, w, probe, 1, 0, rows);
    for (std::int64_t n_tokens : {7, 64}) {
      for (std::int64_t slot : {std::int64_t{0}, n_tokens / 2, n_tokens - 1}) {
        std::vector<float> batch = Gaussian(static_cast<std::size_t>(n_tokens * cols),
                                            static_cast<std::uint32_t>(100 + n_tokens + slot), 3.0f);
        std::copy(probe.begin(), probe.end(), batch.begin() + slot * cols);
        // Whole range in one call, then the same batch split into uneven row ranges.
        const std::vector<float> whole = RunMatMul(isa, w, batch, n_tokens, 0, rows);
        PreparedActivations prepared;
        prepared.PrepareWith(isa, type, batch.data(), n_tokens, cols);
        std::vector<float> split(static_cast<std::size_t>(n_tokens * rows), -1.0f);
        const std::int64_t cuts[] = {0, 1, 6, 13, 30, rows};
        for (int i = 0; i + 1 < 6; ++i) {
          MatMulRowsWith(isa, type, WeightLayout::kRows, w.bytes.data(), prepared, cuts[i], cuts[i + 1],
                         split.data(), rows);
        }
        for (std::int64_t r = 0; r < rows; ++r) {
          ASSERT_EQ(std::memcmp(&alone[r], &whole[slot * rows + r], sizeof(float)), 0)
              << GgmlTypeName(type) << " " << KernelIsaName(isa) << " n_tokens " << n_tokens << " slot "
              << slot << " row " << r << ": " << alone[r] << " vs " << whole[slot * rows + r];
        }
        ASSERT_EQ(std::memcmp(whole.data(), split.data(), whole.size() * sizeof(float)), 0);
      }
    }
  }
}

// Every kernel set computes the canonical reduction, so their outputs agree bit for bit (and so do
// their activation quantizations).
TEST_P(MatMulTest, KernelSetsAgreeBitForBit) {
  const std::vector<KernelIsa> isas = SupportedIsas();
  if (isas.size() < 2) GTEST_SKIP() << "skipped: this CPU lacks AVX2/FMA/F16C";
  const GgmlType type = GetParam();
  // 288 columns: an odd number of blocks of 32 (the AVX-512 tile takes two at a time).
  std::vector<std::int64_t> widths = {256, 288, 512, 2048};
  if (GetGgmlTypeInfo(type).block_elems == 1) widths.insert(widths.end(), {37, 100, 7});  // float tails
  for (std::int64_t cols : widths) {
    if (cols % GetGgmlTypeInfo(type).block_elems != 0) continue;
    // Rows 3..70: 8 full row tiles and one of 3. 13 tokens: a group of 8 and 5 left over; 22: two
    // groups and a partial group of 6.
    for (std::int64_t n_tokens : {13, 22}) {
      const std::int64_t rows = 70;
      const Weights w = MakeWeights(type, rows, cols, static_cast<std::uint32_t>(cols));
      std::vector<float> x = Gaussian(static_cast<std::size_t>(n_tokens * cols), 9, 1.0f);
      std::fill(x.begin() + cols, x.begin() + 2 * cols, 0.0f);  // an all-zero token
      x[5 * cols + 7] = 1e30f;                                  // a huge activation
      const std::vector<float> scalar = RunMatMul(KernelIsa::kScalar, w, x, n_tokens, 3, rows);
      for (KernelIsa isa : isas) {
        const std::vector<float> got = RunMatMul(isa, w, x, n_tokens, 3, rows);
        for (std::size_t i = 0; i < scalar.size(); ++i) {
          ASSERT_EQ(std::memcmp(&scalar[i], &got[i], sizeof(float)), 0)
              << GgmlTypeName(type) << " " << KernelIsaName(isa) << " cols " << cols << " tokens " << n_tokens
              << " output " << i << ": " << scalar[i] << " vs " << got[i];
        }
      }
    }
  }
}

// Weight blocks of random bytes reach every code and sub-block scale a quantizer would avoid
// (Q6_K codes of 63 with scales of -128, Q4_K's 6-bit extremes); activations of +-1 quantize to
// +-127. The kernels' int16 intermediate sums must still be exact, so all sets agree bit for bit.
TEST_P(MatMulTest, ExtremeCodesAgreeBitForBit) {
  const std::vector<KernelIsa> isas = SupportedIsas();
  const GgmlType type = GetParam();
  if (isas.size() < 2 || GetGgmlTypeInfo(type).block_elems == 1)
    GTEST_SKIP() << "quantized types, two kernel sets";
  const std::int64_t rows = 19, cols = 512, n_tokens = 3;
  Weights w{type, rows, cols, {}, {}};
  w.bytes.resize(*RowBytes(type, cols) * rows);
  std::mt19937 rng(11);
  for (std::uint8_t& b : w.bytes) b = static_cast<std::uint8_t>(rng());
  // Every f16 scale field becomes 2^-10 (0x1400) so outputs stay finite.
  const std::uint64_t block_bytes = *RowBytes(type, GetGgmlTypeInfo(type).block_elems);
  const std::uint64_t d_at = type == GgmlType::kQ6K ? 208 : 0;
  const int n_f16 = type == GgmlType::kQ4K ? 2 : 1;
  for (std::uint64_t at = 0; at < w.bytes.size(); at += block_bytes) {
    for (int k = 0; k < n_f16; ++k) {
      w.bytes[at + d_at + 2 * k] = 0x00;
      w.bytes[at + d_at + 2 * k + 1] = 0x14;
    }
  }
  std::vector<float> x(static_cast<std::size_t>(n_tokens * cols));
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = (rng() & 1) != 0 ? 1.0f : -1.0f;
  std::fill(x.begin() + cols, x.begin() + 2 * cols, 1.0f);  // every code +127
  std::fill(x.begin() + 2 * cols, x.end(), -1.0f);          // every code -127
  const std::vector<float> scalar = RunMatMul(KernelIsa::kScalar, w, x, n_tokens, 0, rows);
  for (KernelIsa isa : isas) {
    const std::vector<float> got = RunMatMul(isa, w, x, n_tokens, 0, rows);
    for (std::size_t i = 0; i < scalar.size(); ++i) {
      ASSERT_EQ(std::memcmp(&scalar[i], &got[i], sizeof(float)), 0)
          << GgmlTypeName(type) << " " << KernelIsaName(isa) << " output " << i << ": " << scalar[i] << " vs "
          << got[i];
    }
  }
}

// Non-finite activations never crash and propagate to the outputs that read them.
TEST_P(MatMulTest, NonFiniteActivationsPropagate) {
  const GgmlType type = GetParam();
  const std::int64_t rows = 9, cols = 256;
  const Weights w = MakeWeights(type, rows, cols, 5);
  std::vector<float> x = Gaussian(static_cast<std::size_t>(2 * cols), 6, 1.0f);
  x[10] = std::numeric_limits<float>::quiet_NaN();
  for (KernelIsa isa : SupportedIsas()) {
    const std::vector<float> y = RunMatMul(isa, w, x, 2, 0, rows);
    for (std::int64_t r = 0; r < rows; ++r) {
      EXPECT_TRUE(std::isnan(y[r])) << GgmlTypeName(type) << " row " << r;
      EXPECT_TRUE(std::isfinite(y[rows + r])) << GgmlTypeName(type) << " row " << r;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Types, MatMulTest, ::testing::ValuesIn(kAllTypes),
                         [](const auto& info) { return std::string(GgmlTypeName(info.param)); });

// Q4_0 weights repacked into kInterleaved16 (as the engine loads them for AVX-512 VNNI) give every
// output the bits of the scalar kernel on the GGUF rows: in every kernel set, for any number of
// tokens (decode is one, prefill tiles take 8), row range (groups of 16 cut anywhere, a padded last
// group), an odd number of blocks, random block bytes (every code and odd scales) and zero or huge
// activations.
TEST(InterleavedQ4_0Test, MatchesRowsLayoutBitForBit) {
  for (std::int64_t cols : {32, 96, 2048}) {
    for (std::int64_t rows : {1, 16, 37}) {
      Weights w = MakeWeights(GgmlType::kQ4_0, rows, cols, static_cast<std::uint32_t>(rows + cols));
      if (rows == 37) {  // random bytes, scales kept finite (2^-10 .. 2^-9)
        std::mt19937 rng(static_cast<std::uint32_t>(cols));
        for (std::size_t at = 0; at < w.bytes.size(); at += 18) {
          for (std::size_t k = 2; k < 18; ++k) w.bytes[at + k] = static_cast<std::uint8_t>(rng());
          w.bytes[at] = static_cast<std::uint8_t>(rng());
          w.bytes[at + 1] = 0x14;
        }
      }
      std::vector<std::uint8_t> interleaved(static_cast<std::size_t>(InterleavedBytes(rows, cols)), 0xee);
      InterleaveQ4_0Rows(w.bytes.data(), 0, rows, rows, cols, interleaved.data());
      for (std::int64_t n_tokens : {1, 3, 8, 20}) {
        std::vector<float> x = Gaussian(static_cast<std::size_t>(n_tokens * cols), 21, 1.0f);
        if (n_tokens > 2) {
          std::fill(x.begin() + cols, x.begin() + 2 * cols, 0.0f);  // an all-zero token
          x[2 * cols] = 1e30f;                                      // a huge activation
        }
        const std::vector<float> want = RunMatMul(KernelIsa::kScalar, w, x, n_tokens, 0, rows);
        for (KernelIsa isa : SupportedIsas()) {
          PreparedActivations prepared;
          prepared.PrepareWith(isa, GgmlType::kQ4_0, x.data(), n_tokens, cols);
          std::vector<float> got(want.size(), -1.0f);
          const std::int64_t cuts[] = {0, rows / 3, rows / 3 + 1, rows};  // uneven, not on group bounds
          for (int i = 0; i + 1 < 4; ++i) {
            MatMulRowsWith(isa, GgmlType::kQ4_0, WeightLayout::kInterleaved16, interleaved.data(), prepared,
                           cuts[i], cuts[i + 1], got.data(), rows);
          }
          for (std::size_t i = 0; i < want.size(); ++i) {
            ASSERT_EQ(std::memcmp(&want[i], &got[i], sizeof(float)), 0)
                << KernelIsaName(isa) << " cols " << cols << " rows " << rows << " tokens " << n_tokens
                << " output " << i << ": " << want[i] << " vs " << got[i];
          }
        }
      }
    }
  }
}

// Converting a matrix a few groups at a time gives the bytes of converting it whole.
TEST(InterleavedQ4_0Test, ConvertsInChunks) {
  const std::int64_t rows = 50, cols = 64;
  const Weights w = MakeWeights(GgmlType::kQ4_0, rows, cols, 7);
  std::vector<std::uint8_t> whole(static_cast<std::size_t>(InterleavedBytes(rows, cols)), 0xee);
  std::vector<std::uint8_t> chunked(whole.size(), 0x11);
  InterleaveQ4_0Rows(w.bytes.data(), 0, rows, rows, cols, whole.data());
  const std::uint64_t row_bytes = *RowBytes(GgmlType::kQ4_0, cols);
  for (std::int64_t r : {32, 0, 48, 16}) {  // any order
    const std::int64_t end = std::min(rows, r + 16);
    InterleaveQ4_0Rows(w.bytes.data() + r * row_bytes, r, end, rows, cols, chunked.data());
  }
  EXPECT_EQ(whole, chunked);
  EXPECT_EQ(whole.size(), 4u * 576u);  // 4 groups of 16 rows x 2 blocks x 18 bytes
}

TEST(KernelIsaTest, ChoiceHonoursForceScalar) {
  EXPECT_EQ(ChooseKernelIsa(nullptr, true, false), KernelIsa::kAvx2);
  EXPECT_EQ(ChooseKernelIsa("1", true, false), KernelIsa::kScalar);
  EXPECT_EQ(ChooseKernelIsa("0", true, false), KernelIsa::kAvx2);
  EXPECT_EQ(ChooseKernelIsa(nullptr, false, false), KernelIsa::kScalar);
  EXPECT_EQ(ChooseKernelIsa(nullptr, true, true), KernelIsa::kAvx512Vnni);
  EXPECT_EQ(ChooseKernelIsa("avx2", true, true), KernelIsa::kAvx2);
  EXPECT_EQ(ChooseKernelIsa("1", true, true), KernelIsa::kScalar);
  const char* env = std::getenv("LLMSYNC_FORCE_SCALAR");
  if (env != nullptr && std::string(env) == "1") {
    EXPECT_EQ(ActiveKernelIsa(), KernelIsa::kScalar);
  }
}

TEST(PreparedActivationsTest, ReusesItsBuffers) {
  const std::vector<float> x = Gaussian(64 * 512, 8, 1.0f);
  PreparedActivations prepared;
  prepared.Prepare(GgmlType::kQ4K, x.data(), 64, 512);
  const std::int8_t* codes = prepared.Q8Row(0);
  prepared.Prepare(GgmlType::kQ8_0, x.data(), 3, 512);
  prepared.Prepare(GgmlType::kQ6K, x.data(), 64, 512);
  EXPECT_EQ(prepared.Q8Row(0), codes);
  EXPECT_EQ(prepared.Tokens(), 64);
  EXPECT_EQ(prepared.Cols(), 512);
}

TEST(PreparedActivationsTest, QuantizesBlocksCanonically) {
  std::vector<float> x(32, 0.0f);
  x[0] = 1.27f, x[1] = -0.5f, x[2] = 0.005f, x[3] = 0.015f;  // amax 1.27: d = 0.01
  PreparedActivations prepared;
  prepared.PrepareWith(KernelIsa::kScalar, GgmlType::kQ8_0, x.data(), 1, 32);
  EXPECT_EQ(prepared.ScaleRow(0)[0], 1.27f / 127.0f);
  const std::int8_t* q = prepared.Q8Row(0);
  EXPECT_EQ(q[0], 127);
  EXPECT_EQ(q[1], -50);
  EXPECT_EQ(q[2], static_cast<std::int8_t>(std::nearbyint(0.005f * (127.0f / 1.27f))));
  EXPECT_EQ(q[3], 2);  // 1.5 rounds to even
  EXPECT_EQ(prepared.SumRow(0)[0], 127 - 50 + q[2] + 2);
}

}  // namespace
}  // namespace llmsync::engine
