#include "base/sha256.h"

#include <gtest/gtest.h>

#include "base/hex.h"

namespace llmsync {
namespace {

std::string HexOf(const Sha256Digest& d) { return HexEncode(d); }

// Vectors from FIPS 180-4 examples and NIST CAVS.
TEST(Sha256Test, KnownVectors) {
  EXPECT_EQ(HexOf(Sha256::Hash(std::string_view(""))),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(HexOf(Sha256::Hash(std::string_view("abc"))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(HexOf(Sha256::Hash(std::string_view("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256Test, MillionAs) {
  std::string a(1000000, 'a');
  EXPECT_EQ(HexOf(Sha256::Hash(std::string_view(a))),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256Test, IncrementalEqualsOneShot) {
  std::string text = "The quick brown fox jumps over the lazy dog";
  for (std::size_t split = 0; split <= text.size(); split += 7) {
    Sha256 h;
    h.Update(std::string_view(text).substr(0, split));
    h.Update(std::string_view(text).substr(split));
    EXPECT_EQ(h.Finish(), Sha256::Hash(std::string_view(text))) << "split at " << split;
  }
  EXPECT_EQ(HexOf(Sha256::Hash(std::string_view(text))),
            "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592");
}

TEST(Sha256Test, IntegersAreLittleEndian) {
  Sha256 a;
  a.UpdateU32(0x04030201);
  a.UpdateU64(0x0c0b0a0908070605ULL);
  const std::uint8_t bytes[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  EXPECT_EQ(a.Finish(), Sha256::Hash(std::span<const std::uint8_t>(bytes, 12)));
}

TEST(HexTest, RoundTripAndErrors) {
  const std::uint8_t bytes[] = {0x00, 0xab, 0xff, 0x10};
  EXPECT_EQ(HexEncode(bytes), "00abff10");
  auto decoded = HexDecode("00ABff10");
  ASSERT_TRUE(decoded.IsOk());
  EXPECT_EQ(*decoded, std::vector<std::uint8_t>(bytes, bytes + 4));
  EXPECT_EQ(HexDecode("abc").GetStatus().Code(), StatusCode::kInvalidArgument);
  auto bad = HexDecode("00zz");
  ASSERT_FALSE(bad.IsOk());
  EXPECT_NE(bad.GetStatus().Message().find("offset 2"), std::string::npos) << bad.GetStatus().Message();
}

}  // namespace
}  // namespace llmsync
