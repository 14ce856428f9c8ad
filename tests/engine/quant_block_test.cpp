// Dequantization block by block against hand-computed values. Each block is built byte by byte in
// ggml's layout and the expected floats are worked out by hand from the format's formula, so a
// wrong offset, nibble order, scale packing or sign shows up as a wrong element.
#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <vector>

#include "engine/quant/quant.h"
#include "engine/quant/quant_blocks.h"

namespace llmsync::engine {
namespace {

std::vector<float> Dequantize(GgmlType type, const std::vector<std::uint8_t>& bytes, std::int64_t n) {
  std::vector<float> out(static_cast<std::size_t>(n), -999.0f);
  DequantizeRow(type, bytes.data(), out.data(), n);
  return out;
}

void ExpectElements(const std::vector<float>& got, const std::vector<float>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], want[i]) << "element " << i;
}

TEST(QuantBlockTest, Q8_0TwoBlocks) {
  std::vector<std::uint8_t> b(2 * 34, 0);
  b[0] = 0x00, b[1] = 0x38;  // d = 0.5 (f16 0x3800, little-endian)
  const std::int8_t codes[] = {0, 1, -1, 127, -128, 2};
  std::memcpy(&b[2], codes, sizeof codes);
  b[34] = 0x01, b[35] = 0x00;  // d = 2^-24, the smallest f16 subnormal
  b[36] = 3;                   // element 32
  b[67] = 0x9c;                // element 63: int8 -100
  std::vector<float> want(64, 0.0f);
  want[1] = 0.5f, want[2] = -0.5f, want[3] = 63.5f, want[4] = -64.0f, want[5] = 1.0f;
  want[32] = 3 * 0x1p-24f;
  want[63] = -100 * 0x1p-24f;
  ExpectElements(Dequantize(GgmlType::kQ8_0, b, 64), want);
}

TEST(QuantBlockTest, Q4_0NibbleOrderAndOffset) {
  std::vector<std::uint8_t> b(2 * 18, 0x88);  // code 8 everywhere: value 0
  b[0] = 0x00, b[1] = 0x40;                   // d = 2
  b[2] = 0x8f;                                // element 0: code 15 -> 14; element 16: code 8 -> 0
  b[3] = 0x07;                                // element 1: code 7 -> -2; element 17: code 0 -> -16
  b[17] = 0x3c;                               // element 15: code 12 -> 8; element 31: code 3 -> -10
  b[18] = 0x00, b[19] = 0xb8;                 // second block d = -0.5 (f16 0xb800)
  b[20] = 0xf0;                               // element 32: code 0 -> 4; element 48: code 15 -> -3.5
  std::vector<float> want(64, 0.0f);
  want[0] = 14, want[16] = 0, want[1] = -2, want[17] = -16, want[15] = 8, want[31] = -10;
  want[32] = 4, want[48] = -3.5f;
  std::vector<float> got = Dequantize(GgmlType::kQ4_0, b, 64);
  ExpectElements(got, want);
}

// Scales sc = {1, 2, 3, 63, 17, 33, 48, 5} and mins m = {0, 4, 63, 1, 16, 40, 3, 62}, packed by
// hand: bytes 0-3 hold sc0-3 in their low 6 bits and the top 2 bits of sc4-7; bytes 4-7 hold m0-3
// and the top 2 bits of m4-7; bytes 8-11 hold the low 4 bits of sc4-7 (low nibble) and m4-7 (high).
constexpr std::uint8_t kQ4KScales[12] = {0x41, 0x82, 0xc3, 0x3f, 0x40, 0x84,
                                         0x3f, 0xc1, 0x01, 0x81, 0x30, 0xe5};

TEST(QuantBlockTest, Q4KScalePacking) {
  std::uint8_t sc[8], m[8];
  UnpackQ4KScales(kQ4KScales, sc, m);
  const std::uint8_t want_sc[8] = {1, 2, 3, 63, 17, 33, 48, 5};
  const std::uint8_t want_m[8] = {0, 4, 63, 1, 16, 40, 3, 62};
  for (int j = 0; j < 8; ++j) {
    EXPECT_EQ(sc[j], want_sc[j]) << j;
    EXPECT_EQ(m[j], want_m[j]) << j;
  }
  std::uint8_t packed[12];
  PackQ4KScales(want_sc, want_m, packed);
  EXPECT_EQ(std::memcmp(packed, kQ4KScales, 12), 0);
}

TEST(QuantBlockTest, Q4KSuperBlock) {
  std::vector<std::uint8_t> b(144, 0);
  b[0] = 0x00, b[1] = 0x3c;  // d = 1
  b[2] = 0x00, b[3] = 0x38;  // dmin = 0.5
  std::memcpy(&b[4], kQ4KScales, 12);
  std::uint8_t* qs = &b[16];
  qs[0] = 0xa3;    // element 0 (sub 0): q 3; element 32 (sub 1): q 10
  qs[31] = 0xf0;   // element 31 (sub 0): q 0; element 63 (sub 1): q 15
  qs[32] = 0x5c;   // element 64 (sub 2): q 12; element 96 (sub 3): q 5
  qs[64] = 0x21;   // element 128 (sub 4): q 1; element 160 (sub 5): q 2
  qs[127] = 0x7f;  // element 223 (sub 6): q 15; element 255 (sub 7): q 7
  // Code 0 gives -dmin * m: sub-blocks 0..7 -> 0, -2, -31.5, -0.5, -8, -20, -1.5, -31.
  const float at_zero[8] = {0, -2, -31.5f, -0.5f, -8, -20, -1.5f, -31};
  std::vector<float> want(256);
  for (int e = 0; e < 256; ++e) want[e] = at_zero[e / 32];
  want[0] = 1 * 3 - 0.0f;      // d*sc0*q - dmin*m0
  want[32] = 2 * 10 - 2.0f;    // 18
  want[63] = 2 * 15 - 2.0f;    // 28
  want[64] = 3 * 12 - 31.5f;   // 4.5
  want[96] = 63 * 5 - 0.5f;    // 314.5
  want[128] = 17 * 1 - 8.0f;   // 9
  want[160] = 33 * 2 - 20.0f;  // 46
  want[223] = 48 * 15 - 1.5f;  // 718.5
  want[255] = 5 * 7 - 31.0f;   // 4
  ExpectElements(Dequantize(GgmlType::kQ4K, b, 256), want);
}

TEST(QuantBlockTest, Q6KSuperBlock) {
  std::vector<std::uint8_t> b(210, 0);
  std::uint8_t* ql = &b[0];
  std::uint8_t* qh = &b[128];
  const std::int8_t scales[16] = {1, -1, 2, -2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, -128, 127};
  std::memcpy(&b[192], scales, 16);
  b[208] = 0x00, b[209] = 0x38;  // d = 0.5
  // qh[0] = 0b00'10'01'11: element 0 high bits 3, element 32 high bits 1, element 64 high bits 2,
  // element 96 high bits 0.
  qh[0] = 0x27;
  ql[0] = 0x2f;    // element 0 low 15 -> code 63 -> q 31; element 64 low 2 -> code 34 -> q 2
  ql[32] = 0x90;   // element 32 low 0 -> code 16 -> q -16; element 96 low 9 -> code 9 -> q -23
  ql[17] = 0x01;   // element 17 low 1
  qh[17] = 0x02;   // element 17 high 2 -> code 33 -> q 1
  ql[127] = 0xf0;  // element 255 low 15 (high nibble of ql[64 + 32 + 31]); element 191 low 0
  qh[63] = 0xc0;   // element 255 high 3 -> code 63 -> q 31
  // Every other element has code 0, q = -32: value 0.5 * scale * -32 = -16 * scale.
  std::vector<float> want(256);
  for (int e = 0; e < 256; ++e) want[e] = -16.0f * scales[e / 16];
  want[0] = 0.5f * 1 * 31;        // 15.5
  want[64] = 0.5f * 3 * 2;        // 3
  want[32] = 0.5f * 2 * -16;      // -16
  want[96] = 0.5f * 5 * -23;      // -57.5
  want[17] = 0.5f * -1 * 1;       // -0.5
  want[255] = 0.5f * 127 * 31;    // 1968.5
  EXPECT_EQ(want[224], 2048.0f);  // scale -128 times q -32
  ExpectElements(Dequantize(GgmlType::kQ6K, b, 256), want);
}

TEST(QuantBlockTest, FloatRows) {
  const std::uint8_t f16[] = {0x00, 0x3c, 0x01, 0x00, 0x00, 0xfc, 0xff, 0x7b};
  std::vector<float> got(4);
  DequantizeRow(GgmlType::kF16, f16, got.data(), 4);
  EXPECT_EQ(got[0], 1.0f);
  EXPECT_EQ(got[1], 0x1p-24f);
  EXPECT_EQ(got[2], -std::numeric_limits<float>::infinity());
  EXPECT_EQ(got[3], 65504.0f);
  const std::uint8_t bf16[] = {0x80, 0x3f, 0x49, 0xc0};  // 1.0, -3.140625
  DequantizeRow(GgmlType::kBf16, bf16, got.data(), 2);
  EXPECT_EQ(got[0], 1.0f);
  EXPECT_EQ(got[1], -3.140625f);
}

}  // namespace
}  // namespace llmsync::engine
