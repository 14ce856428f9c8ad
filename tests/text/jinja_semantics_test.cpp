// Python semantics of values, operators, filters, tests and methods.
#include <gtest/gtest.h>

#include "template_test_render.h"
#include "template_test_util.h"

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

namespace llmsync::text::jinja {
namespace {

// Every snippet of data/jinja_snippets.json renders exactly as python3-jinja2 renders it (same
// environment as transformers), or fails where it fails.
TEST(JinjaSemanticsTest, SnippetsMatchJinja2) {
  std::string path = testing::TextTestsDir() + "/data/jinja_snippets.json";
  testing::OracleRun oracle = testing::RunOracle("--snippets " + path);
  if (oracle.exit_code != 0) {
    GTEST_SKIP() << testing::kSystemPython << " with jinja2 is not available (oracle exit code "
                 << oracle.exit_code << ")";
  }
  auto expected = nlohmann::ordered_json::parse(oracle.out)["results"];
  auto snippets = nlohmann::ordered_json::parse(testing::ReadTextFile(path));
  ASSERT_EQ(expected.size(), snippets.size());
  int matches = 0;
  for (std::size_t i = 0; i < snippets.size(); ++i) {
    const auto& snippet = snippets[i];
    const auto& want = expected[i];
    auto actual = RenderJinja(snippet["template"].get<std::string>(), snippet["vars"].dump());
    std::string name = snippet["name"].get<std::string>();
    if (want["ok"].get<bool>()) {
      if (!actual.IsOk()) {
        ADD_FAILURE() << name << ": C++ failed where Python rendered: " << actual.GetStatus().ToString();
        continue;
      }
      if (*actual != want["text"].get<std::string>()) {
        ADD_FAILURE() << name << ": "
                      << testing::DescribeDifference(want["text"].get<std::string>(), *actual);
        continue;
      }
    } else if (actual.IsOk()) {
      ADD_FAILURE() << name << ": Python raised " << want["error_type"].get<std::string>() << " ("
                    << want["error"].get<std::string>() << ") but C++ rendered " << *actual;
      continue;
    }
    ++matches;
  }
  std::printf("jinja snippets: %d of %zu match python3-jinja2\n", matches, snippets.size());
}

}  // namespace
}  // namespace llmsync::text::jinja
