// The JSON Schema automaton behind structured output (runs/json_schema.h), driven directly:
// which documents it accepts, and that MinRemaining is the exact shortest completion.
#include <gtest/gtest.h>

#include <random>

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

// What zod (zod-to-json-schema) and pydantic emit: $defs / definitions with $ref, const,
// oneOf, nullable type lists, string and array bounds, additionalProperties. (nlohmann::json keeps
// keys sorted, so the schema order of the properties, and of the documents, is alphabetical.)
const Json kZodLike = {
    {"type", "object"},
    {"$defs",
     {{"Tag", {{"type", "string"}, {"minLength", 2}, {"maxLength", 4}}},
      {"Point",
       {{"type", "object"},
        {"properties", {{"x", {{"type", "integer"}}}, {"y", {{"type", "integer"}}}}},
        {"required", {"x", "y"}},
        {"additionalProperties", false}}}}},
    {"definitions", {{"Kind", {{"const", "shape"}}}}},
    {"properties",
     {{"age", {{"type", {"integer", "null"}}, {"minimum", 18}, {"maximum", 99}}},
      {"count", {{"type", "integer"}, {"minimum", -5}, {"exclusiveMaximum", 120}}},
      {"kind", {{"$ref", "#/definitions/Kind"}}},
      {"tags", {{"type", "array"}, {"items", {{"$ref", "#/$defs/Tag"}}}, {"minItems", 1}, {"maxItems", 3}}},
      {"at", {{"oneOf", {{{"$ref", "#/$defs/Point"}}, {{"type", "null"}}}}}},
      {"note", {{"type", {"string", "null"}}, {"maxLength", 3}}},
      {"pair", {{"type", "array"}, {"items", {{"type", "boolean"}}}, {"minItems", 2}, {"maxItems", 2}}}}},
    {"required", {"kind", "tags", "at", "pair"}},
    {"additionalProperties", false}};

// An independent validator for the schema subset above (not the automaton): the test's oracle.
bool Valid(const Json& v, const Json& schema, const Json& root) {
  if (schema.is_boolean()) return schema.get<bool>();
  if (schema.contains("$ref")) {
    std::string ref = schema["$ref"];
    std::string holder = ref.rfind("#/$defs/", 0) == 0 ? "$defs" : "definitions";
    return Valid(v, root[holder][ref.substr(holder.size() + 3)], root);
  }
  if (schema.contains("const") && v != schema["const"]) return false;
  if (schema.contains("enum") &&
      std::find(schema["enum"].begin(), schema["enum"].end(), v) == schema["enum"].end())
    return false;
  for (const char* key : {"anyOf", "oneOf"}) {
    if (!schema.contains(key)) continue;
    bool any = false;
    for (const Json& alt : schema[key]) any = any || Valid(v, alt, root);
    if (!any) return false;
  }
  if (schema.contains("type")) {
    Json types = schema["type"].is_array() ? schema["type"] : Json::array({schema["type"]});
    bool ok = false;
    for (const Json& t : types) {
      ok = ok || (t == "object" && v.is_object()) || (t == "array" && v.is_array()) ||
           (t == "string" && v.is_string()) || (t == "integer" && v.is_number_integer()) ||
           (t == "number" && v.is_number()) || (t == "boolean" && v.is_boolean()) ||
           (t == "null" && v.is_null());
    }
    if (!ok) return false;
  }
  if (v.is_number_integer()) {
    auto n = v.get<std::int64_t>();
    if (schema.contains("minimum") && n < schema["minimum"].get<std::int64_t>()) return false;
    if (schema.contains("maximum") && n > schema["maximum"].get<std::int64_t>()) return false;
    if (schema.contains("exclusiveMaximum") && n >= schema["exclusiveMaximum"].get<std::int64_t>())
      return false;
  }
  if (v.is_string()) {
    std::int64_t chars = 0;
    for (unsigned char c : v.get<std::string>()) chars += (c & 0xC0) != 0x80 ? 1 : 0;
    if (chars < schema.value("minLength", std::int64_t{0})) return false;
    if (schema.contains("maxLength") && chars > schema["maxLength"].get<std::int64_t>()) return false;
  }
  if (v.is_array()) {
    auto n = static_cast<std::int64_t>(v.size());
    if (n < schema.value("minItems", std::int64_t{0})) return false;
    if (schema.contains("maxItems") && n > schema["maxItems"].get<std::int64_t>()) return false;
    if (schema.contains("items")) {
      for (const Json& item : v) {
        if (!Valid(item, schema["items"], root)) return false;
      }
    }
  }
  if (v.is_object()) {
    Json props = schema.value("properties", Json::object());
    for (const Json& name : schema.value("required", Json::array())) {
      if (!v.contains(name.get<std::string>())) return false;
    }
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (props.contains(it.key())) {
        if (!Valid(it.value(), props[it.key()], root)) return false;
      } else if (schema.value("additionalProperties", Json(true)) == false) {
        return false;
      }
    }
  }
  return true;
}

TEST(JsonAutomatonTest, ZodAndPydanticKeywords) {
  JsonSchema s = Parse(kZodLike);
  EXPECT_TRUE(Accepts(s, R"({"at":null,"kind":"shape","pair":[true,false],"tags":["ab"]})"));
  EXPECT_TRUE(Accepts(s, R"({"at":{"x":1,"y":-2},"kind":"shape","note":"abc","pair":[false,false],)"
                         R"("tags":["ab","abcd","\né"]})"));
  EXPECT_TRUE(Accepts(s, R"({"at":null,"kind":"shape","note":null,"pair":[true,true],"tags":["ab"]})"));
  EXPECT_TRUE(
      Accepts(s, R"({"age":18,"at":null,"count":-5,"kind":"shape","pair":[true,false],"tags":["ab"]})"));
  EXPECT_TRUE(
      Accepts(s, R"({"age":99,"at":null,"count":119,"kind":"shape","pair":[true,false],"tags":["ab"]})"));
  EXPECT_TRUE(
      Accepts(s, R"({"age":null,"at":null,"count":0,"kind":"shape","pair":[true,false],"tags":["ab"]})"));
  for (const char* bad_number :
       {R"("age":17,)", R"("age":100,)", R"("age":-1,)", R"("age":1,)", R"("count":-6,)", R"("count":120,)",
        R"("count":1200,)", R"("count":-0.5,)"}) {
    EXPECT_FALSE(Accepts(
        s, std::string("{") + bad_number + R"("at":null,"kind":"shape","pair":[true,false],"tags":["ab"]})"))
        << bad_number;
  }
  EXPECT_FALSE(Accepts(s, R"({"at":null,"kind":"other","pair":[true,false],"tags":["ab"]})"));  // const
  EXPECT_FALSE(Accepts(s, R"({"at":null,"kind":"shape","pair":[true,false],"tags":[]})"));      // minItems
  EXPECT_FALSE(Accepts(s, R"({"at":null,"kind":"shape","pair":[true,false],"tags":["ab","ab","ab","ab"]})"));
  EXPECT_FALSE(Accepts(s, R"({"at":null,"kind":"shape","pair":[true,false],"tags":["a"]})"));  // minLength
  EXPECT_FALSE(
      Accepts(s, R"({"at":null,"kind":"shape","pair":[true,false],"tags":["abcde"]})"));  // maxLength
  EXPECT_FALSE(
      Accepts(s, R"({"at":{"x":1},"kind":"shape","pair":[true,false],"tags":["ab"]})"));  // $ref required
  EXPECT_FALSE(Accepts(s, R"({"at":null,"kind":"shape","note":"abcd","pair":[true,false],"tags":["ab"]})"));
  EXPECT_FALSE(Accepts(s, R"({"at":null,"kind":"shape","pair":[true],"tags":["ab"]})"));
  EXPECT_FALSE(Accepts(s, R"({"at":null,"kind":"shape","pair":[true,false,true],"tags":["ab"]})"));

  // Unsupported or malformed: a 400 naming the keyword.
  for (const Json& bad :
       {Json{{"type", "object"}, {"properties", {{"a", {{"$ref", "#/$defs/Nope"}}}}}},
        Json{{"type", "object"}, {"properties", {{"a", {{"$ref", "http://x/y"}}}}}},
        Json{{"type", "object"}, {"properties", {{"a", {{"type", "string"}, {"minLength", -1}}}}}},
        Json{{"type", "object"},
             {"properties", {{"a", {{"type", "string"}, {"minLength", 3}, {"maxLength", 2}}}}}},
        Json{{"type", "object"}, {"properties", {{"a", {{"type", "number"}, {"minimum", 0}}}}}},
        Json{{"type", "object"},
             {"properties", {{"a", {{"type", "integer"}, {"minimum", 5}, {"maximum", 4}}}}}},
        Json{{"type", "object"}, {"properties", {{"a", {{"type", "string"}, {"pattern", "^a"}}}}}}}) {
    EXPECT_FALSE(api::ParseJsonSchema(bad).IsOk()) << bad.dump();
  }
  // A recursive $ref is refused (bounded expansion), not expanded forever.
  Json tree = {{"type", "object"},
               {"$defs",
                {{"Node",
                  {{"type", "object"},
                   {"properties", {{"kids", {{"type", "array"}, {"items", {{"$ref", "#/$defs/Node"}}}}}}}}}}},
               {"properties", {{"root", {{"$ref", "#/$defs/Node"}}}}}};
  auto recursive = api::ParseJsonSchema(tree);
  ASSERT_FALSE(recursive.IsOk());
  EXPECT_NE(recursive.GetStatus().Message().find("$ref"), std::string::npos)
      << recursive.GetStatus().ToString();
}

// Random documents drawn byte by byte from the automaton (any byte it accepts, within a budget it
// promises to finish in) always validate under the independent validator, across many seeds; and
// MinRemaining stays the exact shortest completion with the new bounds.
TEST(JsonAutomatonTest, RandomDocumentsValidateAgainstTheSchema) {
  JsonSchema s = Parse(kZodLike);
  std::string alphabet = "{}[]\":,-.0123456789abcdefghijklmnopqrstuvwxyz\\";
  alphabet += "\xC3\xA9";
  for (std::uint32_t seed = 0; seed < 300; ++seed) {
    std::mt19937 rng(seed);
    JsonAutomaton a(&s);
    std::string out;
    const std::int64_t budget = 160;
    while (!a.Done()) {
      auto left = budget - static_cast<std::int64_t>(out.size());
      ASSERT_GE(left, a.MinRemaining()) << out;
      std::vector<std::string> ok;
      for (std::size_t i = 0; i < alphabet.size(); ++i) {
        std::string piece(1, alphabet[i]);
        if (static_cast<unsigned char>(alphabet[i]) == 0xC3) piece = alphabet.substr(i, 2);
        if (static_cast<unsigned char>(alphabet[i]) == 0xA9) continue;
        JsonAutomaton next = a;
        if (!next.Feed(piece)) continue;
        std::int64_t rest = next.Done() ? 0 : next.MinRemaining();
        if (rest <= left - static_cast<std::int64_t>(piece.size())) ok.push_back(piece);
      }
      ASSERT_FALSE(ok.empty()) << "stuck at " << out;
      const std::string& pick = ok[rng() % ok.size()];
      ASSERT_TRUE(a.Feed(pick));
      out += pick;
    }
    Json doc = Json::parse(out, nullptr, false);
    ASSERT_FALSE(doc.is_discarded()) << out;
    EXPECT_TRUE(Valid(doc, kZodLike, kZodLike)) << "seed " << seed << ": " << out;
  }
  for (const std::string& prefix :
       {std::string(""), std::string(R"({"age":1)"), std::string(R"({"age":null,"at":null,"count":-)"),
        std::string(R"({"at":null,"count":1)"),
        std::string(R"({"at":null,"kind":"shape","pair":[true,true],"tags":[)"),
        std::string(R"({"at":null,"kind":"shape","pair":[true,true],"tags":["a)"),
        std::string(R"({"at":null,"kind":"shape","pair":[true,true],"tags":["ab",)"),
        std::string(R"({"at":null,"kind":"shape","pair":[)")}) {
    JsonAutomaton a(&s);
    ASSERT_TRUE(a.Feed(prefix)) << prefix;
    std::int64_t promised = a.MinRemaining();
    std::int64_t used = 0;
    std::string out = prefix;
    while (!a.Done() && used < 300) {
      std::int64_t best = INT64_MAX;
      char pick = 0;
      for (int c = 1; c < 128; ++c) {
        JsonAutomaton next = a;
        if (!next.Feed(std::string(1, static_cast<char>(c)))) continue;
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
    EXPECT_TRUE(Valid(Json::parse(out), kZodLike, kZodLike)) << out;
  }
}

}  // namespace
}  // namespace llmsync::testing
