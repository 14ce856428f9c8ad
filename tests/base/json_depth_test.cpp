#include "base/json_depth.h"

#include <gtest/gtest.h>

#include <string>

namespace llmsync {
namespace {

std::string Nested(int depth, char open, char close) {
  return std::string(depth, open) + std::string(depth, close);
}

TEST(JsonDepthTest, CountsArraysAndObjectsOutsideStrings) {
  EXPECT_EQ(JsonNestingDepth("1", 64), 0);
  EXPECT_EQ(JsonNestingDepth("[]", 64), 1);
  EXPECT_EQ(JsonNestingDepth(R"({"a":[{"b":[]}],"c":{}})", 64), 4);
  // Brackets inside strings, including after escaped quotes and backslashes, do not count.
  EXPECT_EQ(JsonNestingDepth(R"({"a":"[[[[\"[[[\\"})", 64), 1);
  EXPECT_EQ(JsonNestingDepth(R"(["\\",[[]]])", 64), 3);
}

TEST(JsonDepthTest, AcceptsTheLimitAndRefusesOneMore) {
  EXPECT_TRUE(CheckJsonDepth(Nested(kMaxJsonDepth, '[', ']'), "body").IsOk());
  Status s = CheckJsonDepth(Nested(kMaxJsonDepth + 1, '[', ']'), "request body");
  EXPECT_EQ(s.Code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.Message().find("request body nests JSON deeper than 64 levels (at byte 64)"), std::string::npos)
      << s.Message();
}

TEST(JsonDepthTest, ScansHostileInputIterativelyAndStopsEarly) {
  std::string deep = R"({"x":)" + Nested(1'000'000, '[', ']') + "}";
  EXPECT_FALSE(CheckJsonDepth(deep, "body").IsOk());
  EXPECT_EQ(JsonNestingDepth(deep, 10), 11);
  // Unbalanced closers never drive the depth negative (the parser rejects the text afterwards).
  EXPECT_TRUE(CheckJsonDepth("]]]]" + Nested(64, '{', '}'), "body").IsOk());
}

}  // namespace
}  // namespace llmsync
