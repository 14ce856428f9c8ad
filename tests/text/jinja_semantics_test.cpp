// Python semantics of values, operators, filters, tests and methods.
#include <gtest/gtest.h>

#include "template_test_render.h"

namespace llmsync::text::jinja {
namespace {

using testing::RenderJinja;

TEST(JinjaSemanticsTest, TojsonMatchesPythonJsonDumps) {
  auto r = RenderJinja(R"({{ x | tojson }}|{{ x | tojson(indent=2) }})",
                       R"({"x": {"a": [1, 2.5, "é\n"], "b": null}})");
  ASSERT_TRUE(r.IsOk()) << r.GetStatus().ToString();
  EXPECT_EQ(*r,
            "{\"a\": [1, 2.5, \"é\\n\"], \"b\": null}|{\n  \"a\": [\n    1,\n    2.5,\n    \"é\\n\"\n  ],\n"
            "  \"b\": null\n}");
}

}  // namespace
}  // namespace llmsync::text::jinja
