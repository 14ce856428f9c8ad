// f16 and bf16 scalar conversions: hand-picked encodings (zeros, subnormals, infinities, NaN, the
// largest finite values, rounding ties) and an exhaustive round trip of every 16-bit code.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "engine/quant/quant.h"

namespace llmsync::engine {
namespace {

float FromBits(std::uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

std::uint32_t ToBits(float f) {
  std::uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  return bits;
}

TEST(F16Test, DecodesHandPickedCodes) {
  EXPECT_EQ(ToBits(F16ToF32(0x0000)), 0x00000000u);  // +0
  EXPECT_EQ(ToBits(F16ToF32(0x8000)), 0x80000000u);  // -0 keeps its sign
  EXPECT_EQ(F16ToF32(0x3c00), 1.0f);
  EXPECT_EQ(F16ToF32(0xc000), -2.0f);
  EXPECT_EQ(F16ToF32(0x3555), 0.333251953125f);          // 0x155 / 1024 * 2^-2 + 2^-2
  EXPECT_EQ(F16ToF32(0x7bff), 65504.0f);                 // largest finite
  EXPECT_EQ(F16ToF32(0x0400), 6.103515625e-05f);         // smallest normal, 2^-14
  EXPECT_EQ(F16ToF32(0x0001), 5.9604644775390625e-08f);  // smallest subnormal, 2^-24
  EXPECT_EQ(F16ToF32(0x03ff), 6.097555160522461e-05f);   // largest subnormal, 1023 * 2^-24
  EXPECT_EQ(F16ToF32(0x8200), -3.0517578125e-05f);       // -512 * 2^-24
  EXPECT_EQ(F16ToF32(0x7c00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(F16ToF32(0xfc00), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(F16ToF32(0x7e00)));
  EXPECT_TRUE(std::isnan(F16ToF32(0x7c01)));  // signalling payload is still NaN
  EXPECT_TRUE(std::signbit(F16ToF32(0xfe00)));
}

TEST(F16Test, EncodesWithRoundToNearestEven) {
  EXPECT_EQ(F32ToF16(1.0f), 0x3c00);
  EXPECT_EQ(F32ToF16(-0.0f), 0x8000);
  EXPECT_EQ(F32ToF16(65504.0f), 0x7bff);
  // Ties: 1 + 2^-11 lies halfway between 0x3c00 and 0x3c01 and goes to the even 0x3c00;
  // 1 + 3 * 2^-11 lies halfway between 0x3c01 and 0x3c02 and goes to 0x3c02.
  EXPECT_EQ(F32ToF16(1.0f + 0x1p-11f), 0x3c00);
  EXPECT_EQ(F32ToF16(1.0f + 3 * 0x1p-11f), 0x3c02);
  EXPECT_EQ(F32ToF16(1.0f + 0x1p-11f + 0x1p-20f), 0x3c01);  // just above the tie
  // 65519 rounds down to the largest finite; 65520 is the tie with 2^16 and rounds to infinity.
  EXPECT_EQ(F32ToF16(65519.0f), 0x7bff);
  EXPECT_EQ(F32ToF16(65520.0f), 0x7c00);
  EXPECT_EQ(F32ToF16(-1e10f), 0xfc00);
  EXPECT_EQ(F32ToF16(std::numeric_limits<float>::infinity()), 0x7c00);
  // Subnormals: 2^-25 is the tie between 0 and 2^-24 (goes to 0); 3 * 2^-25 is the tie between 1
  // and 2 units (goes to 2); anything above 2^-25 rounds to 1 unit.
  EXPECT_EQ(F32ToF16(0x1p-25f), 0x0000);
  EXPECT_EQ(F32ToF16(-0x1p-25f), 0x8000);
  EXPECT_EQ(F32ToF16(0x1.000002p-25f), 0x0001);
  EXPECT_EQ(F32ToF16(3 * 0x1p-25f), 0x0002);
  EXPECT_EQ(F32ToF16(5 * 0x1p-25f), 0x0002);
  EXPECT_EQ(F32ToF16(1e-9f), 0x0000);
  EXPECT_EQ(F32ToF16(6.097555160522461e-05f), 0x03ff);
  // Just below the smallest normal rounds up into it.
  EXPECT_EQ(F32ToF16(0x1.ffffp-15f), 0x0400);
  const std::uint16_t nan = F32ToF16(std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(nan & 0x7c00, 0x7c00);
  EXPECT_NE(nan & 0x03ff, 0);
  EXPECT_NE(F32ToF16(FromBits(0x7f800001u)) & 0x03ff, 0);  // a payload lost to the shift stays NaN
}

TEST(F16Test, EveryCodeRoundTrips) {
  for (std::uint32_t h = 0; h <= 0xffff; ++h) {
    const float f = F16ToF32(static_cast<std::uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(F16ToF32(F32ToF16(f)))) << h;
      continue;
    }
    EXPECT_EQ(F32ToF16(f), h) << "code " << h;
  }
}

// Rounding of arbitrary floats: the encoded value is a nearest representable value, and on a tie
// the even code.
TEST(F16Test, RandomFloatsRoundToANearestCode) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<std::uint32_t> bits(0x30000000u, 0x47800000u);  // 2^-31 .. 2^16
  for (int i = 0; i < 200000; ++i) {
    const float f = FromBits(bits(rng));
    const std::uint16_t h = F32ToF16(f);
    const double got = F16ToF32(h);
    const double err = std::fabs(got - f);
    if (h < 0x7c00) {
      const double below = h == 0 ? 0.0 : F16ToF32(static_cast<std::uint16_t>(h - 1));
      const double above = F16ToF32(static_cast<std::uint16_t>(h + 1));
      ASSERT_LE(err, std::fabs(below - f)) << f;
      ASSERT_LE(err, std::fabs(above - f)) << f;
      if (err == std::fabs(above - f) || (h > 0 && err == std::fabs(below - f))) {
        ASSERT_EQ(h & 1, 0) << "tie not to even for " << f;
      }
    } else {
      ASSERT_GE(f, 65520.0f);
    }
  }
}

TEST(Bf16Test, HandPickedCodes) {
  EXPECT_EQ(Bf16ToF32(0x3f80), 1.0f);
  EXPECT_EQ(Bf16ToF32(0xc0a0), -5.0f);
  EXPECT_EQ(ToBits(Bf16ToF32(0x8000)), 0x80000000u);
  EXPECT_EQ(Bf16ToF32(0x0001), FromBits(0x00010000u));  // subnormal
  EXPECT_EQ(Bf16ToF32(0x7f80), std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(Bf16ToF32(0x7fc0)));

  EXPECT_EQ(F32ToBf16(1.0f), 0x3f80);
  EXPECT_EQ(F32ToBf16(FromBits(0x3f808000u)), 0x3f80);  // tie -> even
  EXPECT_EQ(F32ToBf16(FromBits(0x3f818000u)), 0x3f82);  // tie -> even (up)
  EXPECT_EQ(F32ToBf16(FromBits(0x3f808001u)), 0x3f81);  // above the tie
  EXPECT_EQ(F32ToBf16(FromBits(0x3f807fffu)), 0x3f80);  // below the tie
  EXPECT_EQ(F32ToBf16(FromBits(0x00018000u)), 0x0002);  // subnormal tie -> even
  EXPECT_EQ(F32ToBf16(FromBits(0x7f7fffffu)), 0x7f80);  // largest float rounds to infinity
  EXPECT_EQ(F32ToBf16(-std::numeric_limits<float>::infinity()), 0xff80);
  EXPECT_EQ(F32ToBf16(-0.0f), 0x8000);
  // NaN stays NaN even when the payload sits only in the dropped half.
  EXPECT_TRUE(std::isnan(Bf16ToF32(F32ToBf16(FromBits(0x7f800001u)))));
  EXPECT_TRUE(std::isnan(Bf16ToF32(F32ToBf16(std::numeric_limits<float>::quiet_NaN()))));
  for (std::uint32_t h = 0; h <= 0xffff; ++h) {
    const float f = Bf16ToF32(static_cast<std::uint16_t>(h));
    if (!std::isnan(f)) {
      EXPECT_EQ(F32ToBf16(f), h);
    }
  }
}

}  // namespace
}  // namespace llmsync::engine
