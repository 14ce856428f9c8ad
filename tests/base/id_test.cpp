#include "llmsync/id.h"

#include <gtest/gtest.h>

#include <unordered_set>

namespace llmsync {
namespace {

const char kHex[] = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

TEST(IdTest, ParsesAndPrintsCanonicalHex) {
  auto id = Id::FromHex(kHex);
  ASSERT_TRUE(id.IsOk()) << id.GetStatus().ToString();
  EXPECT_EQ(id->ToHex(), kHex);
  EXPECT_EQ(id->ShortHex(), "ba7816bf8f01");
  EXPECT_EQ(id->RawBytes()[0], 0xba);
  EXPECT_EQ(id->RawBytes()[31], 0xad);
  EXPECT_FALSE(id->IsZero());
}

TEST(IdTest, UppercaseIsAcceptedAndPrintedLowercase) {
  std::string upper = kHex;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  auto id = Id::FromHex(upper);
  ASSERT_TRUE(id.IsOk());
  EXPECT_EQ(id->ToHex(), kHex);
}

TEST(IdTest, RejectsWrongLength) {
  for (std::string_view bad :
       {std::string_view(""), std::string_view(kHex).substr(0, 63), std::string_view("ba7816bf")}) {
    auto id = Id::FromHex(bad);
    ASSERT_FALSE(id.IsOk()) << bad;
    EXPECT_EQ(id.GetStatus().Code(), StatusCode::kInvalidArgument);
    EXPECT_NE(id.GetStatus().Message().find("64 hex characters"), std::string::npos);
  }
  EXPECT_FALSE(Id::FromHex(std::string(kHex) + "0").IsOk());
}

TEST(IdTest, RejectsNonHexNamingOffset) {
  std::string bad = kHex;
  bad[10] = 'g';
  auto id = Id::FromHex(bad);
  ASSERT_FALSE(id.IsOk());
  EXPECT_EQ(id.GetStatus().Code(), StatusCode::kInvalidArgument);
  EXPECT_NE(id.GetStatus().Message().find("offset 10"), std::string::npos) << id.GetStatus().Message();
  bad = kHex;
  bad[63] = ' ';
  EXPECT_FALSE(Id::FromHex(bad).IsOk());
}

TEST(IdTest, DefaultIsZeroAndRandomIsNot) {
  EXPECT_TRUE(Id().IsZero());
  EXPECT_EQ(Id().ToHex(), std::string(64, '0'));
  std::unordered_set<Id> seen;
  for (int i = 0; i < 100; ++i) seen.insert(Id::Random());
  EXPECT_EQ(seen.size(), 100u);
  EXPECT_EQ(seen.count(Id()), 0u);
}

TEST(IdTest, OrderingIsBytewise) {
  auto a = Id::FromHex(std::string(63, '0') + "1");
  auto b = Id::FromHex("1" + std::string(63, '0'));
  ASSERT_TRUE(a.IsOk() && b.IsOk());
  EXPECT_LT(*a, *b);
  EXPECT_NE(*a, *b);
}

}  // namespace
}  // namespace llmsync
