// DequantizeRow against the independent numpy dequantizer (oracle/gguf_numpy.py): tensors of every
// compute type are written with GgufWriter, decoded by Python from the file, and compared bit for
// bit. Tensors come from QuantizeRow (realistic blocks) and from random bytes (every bit pattern,
// including f16 scales that are subnormal, infinite or NaN). Skips when /usr/bin/python3 or numpy
// is missing.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "../base/test_dir.h"
#include "engine/gguf/gguf_writer.h"
#include "engine/quant/quant.h"

namespace llmsync::engine {
namespace {

constexpr const char* kPython = "/usr/bin/python3";

bool HavePythonNumpy() {
  return std::system((std::string(kPython) + " -c 'import numpy' >/dev/null 2>&1").c_str()) == 0;
}

struct Written {
  std::string name;
  std::vector<float> want;  // DequantizeRow of the stored bytes
};

void AddTensor(GgufWriter& writer, std::vector<Written>& written, const std::string& name, GgmlType type,
               std::vector<std::int64_t> dims, std::vector<std::uint8_t> bytes) {
  std::int64_t n = 1;
  for (std::int64_t d : dims) n *= d;
  Written w{name, std::vector<float>(static_cast<std::size_t>(n))};
  DequantizeRow(type, bytes.data(), w.want.data(), n);
  ASSERT_TRUE(writer.AddTensor(name, type, dims, std::move(bytes)).IsOk()) << name;
  written.push_back(std::move(w));
}

TEST(QuantOracleTest, NumpyDequantizerAgreesBitForBit) {
  if (!HavePythonNumpy()) GTEST_SKIP() << "skipped: " << kPython << " with numpy is not available";
  testing::TestDir dir;
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 0.05f);
  std::uniform_int_distribution<int> byte(0, 255);
  GgufWriter writer;
  writer.SetString("general.architecture", "llama");
  std::vector<Written> written;
  const GgmlType types[] = {GgmlType::kF32,  GgmlType::kF16, GgmlType::kBf16, GgmlType::kQ8_0,
                            GgmlType::kQ4_0, GgmlType::kQ4K, GgmlType::kQ6K};
  for (GgmlType type : types) {
    const std::int64_t cols = 512, rows = 6;
    const std::uint64_t row_bytes = *RowBytes(type, cols);
    std::vector<float> source(static_cast<std::size_t>(cols * rows));
    for (float& v : source) v = normal(rng);
    std::vector<std::uint8_t> quantized(row_bytes * rows);
    for (std::int64_t r = 0; r < rows; ++r) {
      QuantizeRow(type, source.data() + r * cols, quantized.data() + r * row_bytes, cols);
    }
    const std::string type_name(GgmlTypeName(type));
    AddTensor(writer, written, "quantized." + type_name, type, {cols, 3, 2}, std::move(quantized));
    std::vector<std::uint8_t> noise(row_bytes * rows);
    for (std::uint8_t& b : noise) b = static_cast<std::uint8_t>(byte(rng));
    AddTensor(writer, written, "noise." + type_name, type, {cols, rows}, std::move(noise));
  }
  const std::string gguf = dir.File("oracle.gguf");
  const std::string dump = dir.File("oracle.bin");
  ASSERT_TRUE(writer.WriteTo(Env::Default(), gguf).IsOk());
  const std::string command = std::string(kPython) + " " + LLMSYNC_SOURCE_DIR +
                              "/tests/engine/oracle/gguf_numpy.py dump " + gguf + " " + dump;
  ASSERT_EQ(std::system(command.c_str()), 0) << command;

  std::ifstream in(dump, std::ios::binary);
  const std::vector<char> raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::size_t at = 0;
  for (const Written& w : written) {
    ASSERT_LE(at + w.want.size() * sizeof(float), raw.size()) << w.name;
    for (std::size_t i = 0; i < w.want.size(); ++i, at += sizeof(float)) {
      float got;
      std::memcpy(&got, raw.data() + at, sizeof got);
      if (std::isnan(w.want[i])) {
        ASSERT_TRUE(std::isnan(got)) << w.name << " element " << i;
        continue;
      }
      ASSERT_EQ(std::memcmp(&got, &w.want[i], sizeof got), 0)
          << w.name << " element " << i << ": numpy " << got << " vs C++ " << w.want[i];
    }
  }
  EXPECT_EQ(at, raw.size());
}

}  // namespace
}  // namespace llmsync::engine
