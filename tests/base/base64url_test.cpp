#include "base/base64url.h"

#include <gtest/gtest.h>

namespace llmsync {
namespace {

// RFC 4648 section 10 vectors, without padding, plus the two URL-safe characters.
TEST(Base64UrlTest, MatchesTheRfcVectorsWithoutPadding) {
  const std::pair<std::string, std::string> cases[] = {
      {"", ""},           {"f", "Zg"},          {"fo", "Zm8"},          {"foo", "Zm9v"},
      {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"}, {"\xfb\xff", "-_8"}};
  for (const auto& [plain, encoded] : cases) {
    EXPECT_EQ(Base64UrlEncode(plain), encoded);
    auto back = Base64UrlDecode(encoded);
    ASSERT_TRUE(back.IsOk()) << encoded;
    EXPECT_EQ(*back, plain);
  }
}

TEST(Base64UrlTest, EveryByteValueRoundTrips) {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  for (std::size_t n = 0; n < all.size(); n += 37) {
    std::string part = all.substr(n);
    EXPECT_EQ(*Base64UrlDecode(Base64UrlEncode(part)), part);
  }
}

TEST(Base64UrlTest, RefusesPaddingOtherAlphabetsAndNonCanonicalText) {
  for (const char* bad : {"Zg==", "Zm9v+", "Zm9v/", "Zm 9v", "Z", "Zh", "Zm9", "\xc3\xa9"}) {
    auto r = Base64UrlDecode(bad);
    EXPECT_FALSE(r.IsOk()) << bad;
    if (!r.IsOk()) {
      EXPECT_EQ(r.GetStatus().Code(), StatusCode::kInvalidArgument);
    }
  }
}

}  // namespace
}  // namespace llmsync
