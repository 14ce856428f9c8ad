// The Jinja engine's lexer, parser and statements: whitespace control as transformers configures
// it, scoping, macros, loops, and errors for malformed or unsupported templates.
#include <gtest/gtest.h>

#include "template_test_render.h"

namespace llmsync::text::jinja {
namespace {

using testing::RenderJinja;

TEST(JinjaEngineTest, RendersTextAndExpressions) {
  auto r = RenderJinja("Hello {{ name }}! {{ 1 + 2 * 3 }}", R"({"name": "world"})");
  ASSERT_TRUE(r.IsOk()) << r.GetStatus().ToString();
  EXPECT_EQ(*r, "Hello world! 7");
}

}  // namespace
}  // namespace llmsync::text::jinja
