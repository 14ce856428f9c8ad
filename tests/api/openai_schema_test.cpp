// The JSON Schema automaton behind structured output (runs/json_schema.h), driven directly:
// which documents it accepts, and that MinRemaining is the exact shortest completion.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "api/openai/openai_schema.h"
#include "runs/json_schema/json_schema.h"

namespace llmsync::testing {
namespace {

using Json = nlohmann::json;
using runs::JsonAutomaton;
using runs::JsonSchema;

JsonSchema Parse(const Json& j) {
  auto s = api::ParseJsonSchema(j);
  EXPECT_TRUE(s.IsOk()) << s.GetStatus().ToString();
  return s.IsOk() ? *s : JsonSchema{};
}

bool Accepts(const JsonSchema& s, const std::string& text) {
  JsonAutomaton a(&s);
  return a.Feed(text) && a.Done();
}

const Json kPerson = {
    {"type", "object"},
    {"properties",
     {{"a", {{"type", "integer"}}},
      {"b", {{"enum", {"x", "xy", 10, 1, true}}}},
      {"c", {{"type", "array"}, {"items", {{"anyOf", {{{"type", "null"}}, {{"type", "string"}}}}}}}},
      {"d", {{"type", "number"}}}}},
    {"required", {"a", "c"}}};

TEST(JsonAutomatonTest, AcceptsExactlyTheValidCompactDocuments) {
  JsonSchema s = Parse(kPerson);
  EXPECT_TRUE(Accepts(s, R"({"a":0,"c":[]})"));
  EXPECT_TRUE(Accepts(s, R"({"a":-12,"b":"xy","c":[null,"h\n\"\\",null],"d":3.25})"));
  EXPECT_TRUE(Accepts(s, R"({"a":1,"b":10,"c":["é"]})"));
  EXPECT_TRUE(Accepts(s, R"({"a":1,"b":1,"c":[]})"));
  EXPECT_FALSE(Accepts(s, R"({"c":[],"a":0})"));    // schema order
  EXPECT_FALSE(Accepts(s, R"({"a":0})"));           // c is required
  EXPECT_FALSE(Accepts(s, R"({"a":0.5,"c":[]})"));  // a is an integer
  EXPECT_FALSE(Accepts(s, R"({"a":01,"c":[]})"));   // no leading zeros
  EXPECT_FALSE(Accepts(s, R"({"a":0,"b":"y","c":[]})"));
  EXPECT_FALSE(Accepts(s, R"({"a":0,"c":[1]})"));
  EXPECT_FALSE(Accepts(s, R"({"a":0,"c":[],"e":1})"));
  EXPECT_FALSE(Accepts(s, "{\"a\":0,\"c\":[\"\x01\"]}"));  // control character
  EXPECT_FALSE(Accepts(s, "{\"a\":0,\"c\":[\"\xC3\"]}"));  // truncated UTF-8
  EXPECT_FALSE(Accepts(s, R"({"a":0,"c":["\u00e9"]})"));   // \u escapes are outside the subset
  EXPECT_FALSE(Accepts(s, R"({"a":0,"c":[]} )"));          // nothing after the document
  JsonAutomaton partial(&s);
  EXPECT_TRUE(partial.Feed(R"({"a":7,"c":[nu)"));
  EXPECT_FALSE(partial.Done());
}

TEST(JsonAutomatonTest, AnyObjectTakesAnyJson) {
  JsonSchema any;
  any.type = JsonSchema::Type::kObject;
  EXPECT_TRUE(Accepts(any, R"({})"));
  EXPECT_TRUE(Accepts(any, R"({"k":[1,{"x":null},"s",true,-0.5],"":{}})"));
  EXPECT_FALSE(Accepts(any, R"([])"));
  EXPECT_FALSE(Accepts(any, R"({"k"})"));
  EXPECT_FALSE(Accepts(any, R"({"k":tru})"));
}

// Follows the cheapest byte at every step (by MinRemaining) and checks that the document closes
// in exactly MinRemaining bytes from any prefix: what the constraint relies on to end in time.
TEST(JsonAutomatonTest, MinRemainingIsTheShortestCompletion) {
  JsonSchema s = Parse(kPerson);
  for (const std::string& prefix :
       {std::string(""), std::string(R"({"a":12)"), std::string(R"({"a":0,"b":"x)"),
        std::string(R"({"a":0,"c":[null,"ab)"), std::string(R"({"a":0,"c":[)")}) {
    JsonAutomaton a(&s);
    ASSERT_TRUE(a.Feed(prefix)) << prefix;
    std::int64_t promised = a.MinRemaining();
    std::string out = prefix;
    std::int64_t used = 0;
    while (!a.Done() && used < 200) {
      std::int64_t best = INT64_MAX;
      char pick = 0;
      for (int c = 1; c < 128; ++c) {
        JsonAutomaton next = a;
        std::string byte(1, static_cast<char>(c));
        if (!next.Feed(byte)) continue;
        std::int64_t r = next.Done() ? 0 : next.MinRemaining();
        if (r < best) {
          best = r;
          pick = static_cast<char>(c);
        }
      }
      ASSERT_NE(pick, 0) << out;
      ASSERT_EQ(best, a.MinRemaining() - 1) << out;
      a.Feed(std::string(1, pick));
      out += pick;
      ++used;
    }
    EXPECT_EQ(used, promised) << out;
    EXPECT_TRUE(Json::parse(out, nullptr, false).is_object()) << out;
  }
}

}  // namespace
}  // namespace llmsync::testing
