// Tools at the API edge (api/tools/): request validation, per-family parsing of recorded model
// outputs, stream hold-back (streamed content is always a prefix of the final parse), and the
// tool-call constraint (runs/json_schema/tool_call_constraint.h) driven by a seeded random
// "model": every constrained output parses into a call whose arguments validate.
#include <gtest/gtest.h>

#include <random>

#include "api/openai/openai_schema.h"
#include "api/tools/tool_format.h"
#include "api/tools/tool_request.h"
#include "runs/json_schema/tool_call_constraint.h"

namespace llmsync::testing {
namespace {

using api::Json;
using api::ParsedOutput;
using api::ToolFamily;

const char* kWeatherTools = R"({"tools": [
  {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
   "parameters": {"type": "object", "properties": {
      "city": {"type": "string"}, "unit": {"enum": ["c", "f"]}, "days": {"type": "integer"}},
    "required": ["city", "unit"]}}},
  {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object",
   "properties": {"zone": {"type": "string"}}, "required": ["zone"]}}}]})";

std::string ParamOf(const std::string& body_text, bool responses = false) {
  Json body = Json::parse(body_text);
  api::ToolError error;
  auto r = api::ParseToolRequest(body, body_text, responses, &error);
  return r.IsOk() ? "ok" : error.param;
}

TEST(ToolRequestTest, AcceptsChatAndResponsesShapes) {
  Json body = Json::parse(kWeatherTools);
  body["tool_choice"] = {{"type", "function"}, {"function", {{"name", "get_time"}}}};
  api::ToolError error;
  auto r = api::ParseToolRequest(body, kWeatherTools, false, &error);  // the raw text keeps key order
  ASSERT_TRUE(r.IsOk()) << error.param << " " << error.message;
  EXPECT_EQ(r->tools.size(), 2u);
  EXPECT_EQ(r->choice, api::ToolChoiceMode::kNamed);
  ASSERT_EQ(r->Allowed().size(), 1u);
  EXPECT_EQ(r->Allowed()[0]->name, "get_time");
  // The template sees the client's key order (city, unit, days), not nlohmann's sorted order.
  std::string rendered = r->TemplateTools().dump();
  EXPECT_LT(rendered.find("\"city\""), rendered.find("\"unit\""));
  EXPECT_LT(rendered.find("\"unit\""), rendered.find("\"days\""));

  EXPECT_EQ(ParamOf(R"({"tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}],
                        "tool_choice": {"type": "function", "name": "f"}})",
                    true),
            "ok");
  EXPECT_EQ(ParamOf(R"({"tools": [{"type": "function", "name": "f"}], "tool_choice": "required"})", true),
            "ok");
}

TEST(ToolRequestTest, RejectsMalformedRequestsNamingTheField) {
  EXPECT_EQ(ParamOf(R"({"tools": "garbage"})"), "tools");
  EXPECT_EQ(ParamOf(R"({"tools": [{"type": "retrieval"}]})"), "tools[0].type");
  EXPECT_EQ(ParamOf(R"({"tools": [{"type": "function"}]})"), "tools[0].function");
  EXPECT_EQ(ParamOf(R"({"tools": [{"type": "function", "function": {"name": "a b"}}]})"),
            "tools[0].function.name");
  EXPECT_EQ(ParamOf(R"({"tools": [{"type": "function", "function": {"name": "f"}},
                                  {"type": "function", "function": {"name": "f"}}]})"),
            "tools[1].function.name");
  EXPECT_EQ(ParamOf(R"({"tools": [{"type": "function", "function": {"name": "f"}}],
                        "tool_choice": {"type": "function", "function": {"name": "g"}}})"),
            "tool_choice.function.name");
  EXPECT_EQ(
      ParamOf(R"({"tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "always"})"),
      "tool_choice");
  EXPECT_EQ(ParamOf(R"({"tool_choice": "required"})"), "tool_choice");
  EXPECT_EQ(ParamOf(R"({"tools": [{"type": "function", "function": {"name": "f", "parameters":
                        {"type": "object", "properties": {"x": {"type": "string", "format": "date"}}}}}]})"),
            "tools[0].function.parameters");
  EXPECT_EQ(ParamOf(R"({"tools": [{"type": "function", "function": {"name": "f", "parameters": 3}}]})"),
            "tools[0].function.parameters");
  EXPECT_EQ(ParamOf(R"({"tools": [], "parallel_tool_calls": "yes"})"), "parallel_tool_calls");
  EXPECT_EQ(ParamOf(R"({"tools": [{"type": "function", "name": "f"}], "tool_choice": {"type": "function",
                        "name": "nope"}})",
                    true),
            "tool_choice.name");

  api::ToolError e{"tools[0].function.parameters", "unsupported JSON Schema keyword 'format'"};
  api::HttpResponse r = api::ToolErrorResponse(e);
  EXPECT_EQ(r.status, 400);
  Json j = Json::parse(r.body);
  EXPECT_EQ(j["error"]["param"], "tools[0].function.parameters");
  EXPECT_EQ(j["error"]["type"], "invalid_request_error");
}

TEST(ToolFormatTest, DetectsTheFamilyFromTheTemplate) {
  EXPECT_EQ(api::DetectToolFamily("{{ '<tool_call>' }} tools"), ToolFamily::kHermes);
  EXPECT_EQ(api::DetectToolFamily("[TOOL_CALLS] tools"), ToolFamily::kMistral);
  EXPECT_EQ(api::DetectToolFamily("<|start_header_id|> \"parameters\" tools <|python_tag|>"),
            ToolFamily::kLlama3);
  EXPECT_EQ(api::DetectToolFamily("'>>>' + name"), ToolFamily::kFunctionary);
  EXPECT_EQ(api::DetectToolFamily(" functools["), ToolFamily::kFirefunction);
  EXPECT_EQ(api::DetectToolFamily("<|START_ACTION|>"), ToolFamily::kCommandR);
  EXPECT_EQ(api::DetectToolFamily("{{ message.content }}"), ToolFamily::kGeneric);
}

struct Recorded {
  ToolFamily family;
  std::string output;
  std::string content;
  std::vector<std::pair<std::string, std::string>> calls;  // name, arguments
  std::string reasoning;
};

// Outputs as the families' models write them (whitespace and all).
std::vector<Recorded> RecordedOutputs() {
  return {
      {ToolFamily::kHermes,
       "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": "
       "\"c\"}}\n</tool_call>",
       "",
       {{"get_weather", R"({"city":"Paris","unit":"c"})"}},
       ""},
      {ToolFamily::kHermes,
       "Let me check.\n<tool_call>\n{\"name\": \"a\", \"arguments\": "
       "{}}\n</tool_call>\n<tool_call>\n{\"name\": "
       "\"b\", \"arguments\": {\"x\": 1}}\n</tool_call>",
       "Let me check.",
       {{"a", "{}"}, {"b", R"({"x":1})"}},
       ""},
      {ToolFamily::kHermes,
       "<think>\nThe user wants weather.\n</think>\n\n<tool_call>\n{\"name\": \"w\", \"arguments\": {\"c\": "
       "\"<tool_call>\"}}\n</tool_call>",
       "",
       {{"w", R"({"c":"<tool_call>"})"}},
       "The user wants weather."},
      {ToolFamily::kHermes, "<think>\nhmm\n</think>\n\nIt is sunny.", "It is sunny.", {}, "hmm"},
      // A call written before the reasoning closed is a call, not reasoning (the field loses these).
      {ToolFamily::kHermes,
       "<think>\nI should look it up. <tool_call>\n{\"name\": \"w\", \"arguments\": {}}\n</tool_call>",
       "",
       {{"w", "{}"}},
       "I should look it up."},
      {ToolFamily::kHermes,
       "<think>\nlook up <tool_call>\n{\"name\": \"w\", \"arguments\": {}}\n</tool_call> then "
       "answer\n</think>\nDone.",
       "Done.",
       {{"w", "{}"}},
       "look up\nthen answer"},
      // Parallel calls: one block each.
      {ToolFamily::kHermes,
       "<tool_call>\n{\"name\":\"a\",\"arguments\":{}}\n</"
       "tool_call>\n<tool_call>\n{\"name\":\"b\",\"arguments\":"
       "{\"x\":1}}\n</tool_call>",
       "",
       {{"a", "{}"}, {"b", R"({"x":1})"}},
       ""},
      {ToolFamily::kMistral,
       R"([TOOL_CALLS][{"name":"a","arguments":{}},{"name":"b","arguments":{"x":1}}])",
       "",
       {{"a", "{}"}, {"b", R"({"x":1})"}},
       ""},
      {ToolFamily::kHermes, "Plain answer, no tools.", "Plain answer, no tools.", {}, ""},
      {ToolFamily::kHermes,
       "<tool_call>\nnot json\n</tool_call>",
       "<tool_call>\nnot json\n</tool_call>",
       {},
       ""},
      {ToolFamily::kLlama3,
       "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Oslo\"}}",
       "",
       {{"get_weather", R"({"city":"Oslo"})"}},
       ""},
      {ToolFamily::kLlama3, "<|python_tag|>{\"name\": \"f\", \"parameters\": {}}", "", {{"f", "{}"}}, ""},
      {ToolFamily::kLlama3, "I think {braces} are fine.", "I think {braces} are fine.", {}, ""},
      {ToolFamily::kMistral,
       "[TOOL_CALLS][{\"name\": \"f\", \"arguments\": {\"a\": true}, \"id\": \"abcdefghi\"}]",
       "",
       {{"f", R"({"a":true})"}},
       ""},
      {ToolFamily::kMistral, "[{\"name\": \"f\", \"arguments\": {}}]", "", {{"f", "{}"}}, ""},
      {ToolFamily::kFunctionary,
       "get_weather\n{\"city\": \"Rome\"}>>>get_time\n{\"zone\": \"CET\"}",
       "",
       {{"get_weather", R"({"city":"Rome"})"}, {"get_time", R"({"zone":"CET"})"}},
       ""},
      {ToolFamily::kFunctionary, "all\nHello there", "Hello there", {}, ""},
      {ToolFamily::kFunctionaryV31, "<function=f>{\"q\": \"x\"}</function>", "", {{"f", R"({"q":"x"})"}}, ""},
      {ToolFamily::kFirefunction,
       " functools[{\"name\": \"f\", \"arguments\": {\"n\": 2}}]",
       "",
       {{"f", R"({"n":2})"}},
       ""},
      {ToolFamily::kCommandR,
       "<|START_THINKING|>plan<|END_THINKING|><|START_ACTION|>[\n{\"tool_call_id\": \"0\", \"tool_name\": "
       "\"f\", "
       "\"parameters\": {\"k\": \"v\"}}\n]<|END_ACTION|>",
       "<|START_THINKING|>plan<|END_THINKING|>",
       {{"f", R"({"k":"v"})"}},
       ""},
      {ToolFamily::kCommandR,
       "Action: ```json\n[{\"tool_name\": \"f\", \"parameters\": {}}]\n```",
       "",
       {{"f", "{}"}},
       ""},
      {ToolFamily::kGeneric,
       "<tool_call>\n{\"name\":\"f\",\"arguments\":{}}\n</tool_call>",
       "",
       {{"f", "{}"}},
       ""},
  };
}

TEST(ToolFormatTest, ParsesRecordedOutputsOfEveryFamily) {
  for (const Recorded& r : RecordedOutputs()) {
    SCOPED_TRACE(std::string(api::ToolFamilyName(r.family)) + ": " + r.output);
    ParsedOutput p = api::ParseModelOutput(r.family, r.output);
    EXPECT_EQ(p.content, r.content);
    EXPECT_EQ(p.reasoning, r.reasoning);
    ASSERT_EQ(p.calls.size(), r.calls.size());
    for (std::size_t i = 0; i < p.calls.size(); ++i) {
      EXPECT_EQ(p.calls[i].name, r.calls[i].first);
      EXPECT_EQ(p.calls[i].arguments, r.calls[i].second);
    }
    if (!p.calls.empty()) {  // no markup in content
      EXPECT_EQ(p.content.find("<tool_call>"), std::string::npos);
      EXPECT_EQ(p.content.find("functools"), std::string::npos);
    }
  }
}

// Streaming sends StreamableContentBytes of each prefix; the deltas must add up to the final
// parse's content (the rest is sent when the run ends), for every split of every output.
TEST(ToolFormatTest, StreamedContentIsAlwaysAPrefixOfTheFinalParse) {
  for (const Recorded& r : RecordedOutputs()) {
    SCOPED_TRACE(std::string(api::ToolFamilyName(r.family)) + ": " + r.output);
    std::string final_content = api::ParseModelOutput(r.family, r.output).content;
    std::size_t streamed = 0;
    for (std::size_t cut = 0; cut <= r.output.size(); ++cut) {
      std::size_t n = api::StreamableContentBytes(r.family, std::string_view(r.output).substr(0, cut));
      ASSERT_LE(n, final_content.size());
      ASSERT_EQ(r.output.substr(0, n), final_content.substr(0, n)) << "cut " << cut;
      streamed = std::max(streamed, n);
    }
    EXPECT_EQ(r.output.substr(0, streamed) + final_content.substr(streamed), final_content);
  }
}

// Reasoning streams as it is generated: StreamableReasoning and StreamableContent of every prefix
// are prefixes of the final parse, and a long <think> block is sent before it closes.
TEST(ToolFormatTest, StreamedReasoningAndContentArePrefixesOfTheFinalParse) {
  std::vector<Recorded> outputs = RecordedOutputs();
  outputs.push_back({ToolFamily::kHermes,
                     "<think>\nStep one.\nStep two.  \n</think>\n\nThe answer is 4.",
                     "The answer is 4.",
                     {},
                     "Step one.\nStep two."});
  for (const Recorded& r : outputs) {
    SCOPED_TRACE(std::string(api::ToolFamilyName(r.family)) + ": " + r.output);
    ParsedOutput final_parse = api::ParseModelOutput(r.family, r.output);
    std::size_t most_reasoning = 0;
    for (std::size_t cut = 0; cut <= r.output.size(); ++cut) {
      std::string_view prefix = std::string_view(r.output).substr(0, cut);
      std::string reasoning = api::StreamableReasoning(r.family, prefix);
      std::string content = api::StreamableContent(r.family, prefix);
      ASSERT_TRUE(final_parse.reasoning.starts_with(reasoning)) << "cut " << cut << ": " << reasoning;
      ASSERT_TRUE(final_parse.content.starts_with(content)) << "cut " << cut << ": " << content;
      if (prefix.find("</think>") == std::string_view::npos)
        most_reasoning = std::max(most_reasoning, reasoning.size());
    }
    if (r.output.starts_with("<think>") && final_parse.reasoning.size() > 4) {
      EXPECT_GT(most_reasoning, 0u) << "reasoning was held back until </think>";
    }
  }
}

// A byte vocabulary plus multi-byte tokens (including ones that straddle markup and JSON), and two
// control tokens: an end of turn and [TOOL_CALLS].
struct TestVocab {
  runs::TokenBytes bytes;
  session::TokenId end = 0;
  session::TokenId tool_calls = 0;
};

TestVocab MakeVocab() {
  TestVocab v;
  for (int b = 0; b < 256; ++b) v.bytes.push_back(std::string(1, static_cast<char>(b)));
  for (const char* t :
       {"<tool_call>", "\n{\"", "name", "\":\"", "\",\"",        "arguments", "\":{",    "city",
        "unit",        "Paris", "}}",   "}\n",   "</tool_call>", "get_",      "weather", "\"c\"",
        "true",        "12",    "{\"",  "\":",   ">>>",          "zone"}) {
    v.bytes.push_back(t);
  }
  v.end = static_cast<session::TokenId>(v.bytes.size());
  v.bytes.push_back("");
  v.tool_calls = static_cast<session::TokenId>(v.bytes.size());
  v.bytes.push_back("");
  return v;
}

// Checks `args` against the weather/time schemas without the automaton: an independent check.
bool ArgumentsValid(const std::string& name, const std::string& args) {
  Json j = Json::parse(args, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return false;
  if (name == "get_time") {
    for (auto it = j.begin(); it != j.end(); ++it)
      if (it.key() != "zone") return false;
    return j.contains("zone") && j["zone"].is_string();
  }
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() != "city" && it.key() != "unit" && it.key() != "days") return false;
  }
  if (!j.contains("city") || !j["city"].is_string()) return false;
  if (!j.contains("unit") || (j["unit"] != "c" && j["unit"] != "f")) return false;
  return !j.contains("days") || j["days"].is_number_integer();
}

// Samples uniformly among the tokens the constraint allows until it is done.
std::string SampleConstrained(const runs::ToolCallGrammar& grammar, const TestVocab& v, std::uint64_t seed,
                              std::int64_t budget, bool* done) {
  auto bytes = std::make_shared<runs::TokenBytes>(v.bytes);
  runs::ToolCallConstraint c(std::make_shared<runs::ToolCallGrammar>(grammar), runs::MakeTokenIndex(bytes));
  std::mt19937_64 rng(seed);
  std::string text;
  for (std::int64_t step = 0; step < budget && !c.Done(); ++step) {
    std::vector<float> logits(v.bytes.size(), 0.0f);
    c.Mask(logits, budget - step);
    std::vector<session::TokenId> allowed;
    for (std::size_t i = 0; i < logits.size(); ++i) {
      if (logits[i] == 0.0f) allowed.push_back(static_cast<session::TokenId>(i));
    }
    if (allowed.empty()) break;
    session::TokenId t = allowed[rng() % allowed.size()];
    c.Accept(t);
    if (t == v.tool_calls) {
      text += "[TOOL_CALLS]";
    } else {
      text += v.bytes[static_cast<std::size_t>(t)];
    }
  }
  *done = c.Done();
  return text;
}

runs::ToolCallGrammar GrammarFor(ToolFamily family, const std::string& choice, const TestVocab& v,
                                 const char* tools = kWeatherTools, bool parallel = false) {
  Json body = Json::parse(tools);
  body["tool_choice"] = choice;
  body["parallel_tool_calls"] = parallel;
  api::ToolError error;
  auto request = api::ParseToolRequest(body, body.dump(), false, &error);
  EXPECT_TRUE(request.IsOk());
  Json spec = Json::parse(api::ToolCallConstraintSpec(family, *request));
  runs::ToolCallGrammar g;
  for (const Json& f : spec["forms"]) {
    auto schema = api::ParseJsonSchema(f["schema"]);
    EXPECT_TRUE(schema.IsOk());
    g.forms.push_back({f["prefix"].get<std::string>(), f["next_prefix"].get<std::string>(),
                       std::make_shared<runs::JsonSchema>(*schema)});
  }
  g.suffix = spec["suffix"].get<std::string>();
  g.close = spec["close"].get<std::string>();
  g.max_calls = spec["max_calls"].get<int>();
  g.marker = spec["marker"].get<std::string>();
  g.free_until_marker = spec["auto"].get<bool>();
  g.end_tokens = {v.end};
  g.specials = {{"[TOOL_CALLS]", v.tool_calls}};
  return g;
}

TEST(ToolCallConstraintTest, RequiredAlwaysYieldsAValidCallInEveryFamily) {
  TestVocab v = MakeVocab();
  for (ToolFamily family :
       {ToolFamily::kHermes, ToolFamily::kLlama3, ToolFamily::kMistral, ToolFamily::kFunctionary,
        ToolFamily::kFunctionaryV31, ToolFamily::kFirefunction, ToolFamily::kGeneric}) {
    runs::ToolCallGrammar g = GrammarFor(family, "required", v);
    for (std::uint64_t seed = 1; seed <= 25; ++seed) {
      SCOPED_TRACE(std::string(api::ToolFamilyName(family)) + " seed " + std::to_string(seed));
      bool done = false;
      std::string text = SampleConstrained(g, v, seed, 400, &done);
      ASSERT_TRUE(done) << text;
      ParsedOutput p = api::ParseModelOutput(family, text);
      ASSERT_EQ(p.calls.size(), 1u) << text;
      EXPECT_TRUE(ArgumentsValid(p.calls[0].name, p.calls[0].arguments)) << text;
      EXPECT_EQ(p.content, "") << text;
    }
  }
}

// parallel_tool_calls: several calls in one turn, each to an allowed tool with valid arguments,
// in the family's own markup for several calls (one Hermes block each, one Mistral / firefunction
// array), and never more than kMaxParallelCalls. Families without a multi-call form keep one.
TEST(ToolCallConstraintTest, ParallelCallsAreEachValidAndParseBack) {
  TestVocab v = MakeVocab();
  for (ToolFamily family :
       {ToolFamily::kHermes, ToolFamily::kMistral, ToolFamily::kFunctionary, ToolFamily::kFunctionaryV31,
        ToolFamily::kFirefunction, ToolFamily::kGeneric, ToolFamily::kLlama3}) {
    runs::ToolCallGrammar g = GrammarFor(family, "required", v, kWeatherTools, true);
    bool multi_family = family != ToolFamily::kLlama3;
    EXPECT_EQ(g.max_calls, multi_family ? api::kMaxParallelCalls : 1);
    std::size_t most = 0;
    for (std::uint64_t seed = 1; seed <= 25; ++seed) {
      SCOPED_TRACE(std::string(api::ToolFamilyName(family)) + " seed " + std::to_string(seed));
      bool done = false;
      std::string text = SampleConstrained(g, v, seed, 1200, &done);
      ASSERT_TRUE(done) << text;
      ParsedOutput p = api::ParseModelOutput(family, text);
      ASSERT_GE(p.calls.size(), 1u) << text;
      ASSERT_LE(p.calls.size(), static_cast<std::size_t>(api::kMaxParallelCalls)) << text;
      for (const api::ParsedCall& call : p.calls) {
        EXPECT_TRUE(ArgumentsValid(call.name, call.arguments)) << text;
      }
      EXPECT_EQ(p.content, "") << text;
      most = std::max(most, p.calls.size());
    }
    EXPECT_EQ(most > 1, multi_family);  // a uniform sampler takes the second call sometimes
  }
  // The budget closes the turn: with room for exactly one call, the sampler must stop after it.
  runs::ToolCallGrammar g = GrammarFor(ToolFamily::kHermes, "required", v, kWeatherTools, true);
  g.forms.erase(g.forms.begin());
  std::int64_t one =
      static_cast<std::int64_t>(
          std::string("<tool_call>\n{\"name\":\"get_time\",\"arguments\":{\"zone\":\"\"}}\n</tool_call>")
              .size()) +
      1;
  for (std::uint64_t seed = 1; seed <= 10; ++seed) {
    bool done = false;
    std::string text = SampleConstrained(g, v, seed, one, &done);
    ASSERT_TRUE(done) << text;
    EXPECT_EQ(api::ParseModelOutput(ToolFamily::kHermes, text).calls.size(), 1u) << text;
  }
}

TEST(ToolCallConstraintTest, ParallelHermesTakesASecondCallOrTheEndToken) {
  TestVocab v = MakeVocab();
  runs::ToolCallGrammar g = GrammarFor(ToolFamily::kHermes, "required", v, kWeatherTools, true);
  auto bytes = std::make_shared<runs::TokenBytes>(v.bytes);
  runs::ToolCallConstraint c(std::make_shared<runs::ToolCallGrammar>(g), runs::MakeTokenIndex(bytes));
  ASSERT_TRUE(
      c.FeedForTest("<tool_call>\n{\"name\":\"get_time\",\"arguments\":{\"zone\":\"UTC\"}}\n</tool_call>"));
  EXPECT_EQ(c.CallsForTest(), 1);
  EXPECT_FALSE(c.Done());
  std::vector<float> logits(v.bytes.size(), 0.0f);
  c.Mask(logits, 100);
  EXPECT_EQ(logits[static_cast<std::size_t>(v.end)], 0.0f);  // end the turn
  EXPECT_EQ(logits['\n'], 0.0f);                             // or write another call
  EXPECT_LT(logits['x'], 0.0f);
  ASSERT_TRUE(c.FeedForTest("\n<tool_call>\n{\"name\":\"get_weather\",\"arguments\":"));
  EXPECT_FALSE(c.FeedForTest("{\"zone\":\"UTC\"}"));  // the second call's own schema holds
}

// A tool as zod / pydantic declare it: $defs and $ref, const, oneOf, nullable, string, array and
// integer bounds, additionalProperties: false.
const char* kBookingTools = R"({"tools": [{"type": "function", "function": {"name": "book", "parameters": {
  "type": "object", "additionalProperties": false,
  "$defs": {"Guest": {"type": "object", "properties": {"name": {"type": "string", "minLength": 1,
     "maxLength": 8}}, "required": ["name"], "additionalProperties": false}},
  "properties": {
    "guests": {"type": "array", "items": {"$ref": "#/$defs/Guest"}, "minItems": 1, "maxItems": 3},
    "kind": {"const": "hotel"},
    "nights": {"type": "integer", "minimum": 1, "maximum": 14},
    "note": {"type": ["string", "null"], "maxLength": 5},
    "room": {"oneOf": [{"enum": ["single", "double"]}, {"type": "null"}]}},
  "required": ["guests", "kind", "nights"]}}}]})";

// An independent check of kBookingTools' arguments (not the automaton).
bool BookingValid(const std::string& args) {
  Json j = Json::parse(args, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return false;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() != "guests" && it.key() != "kind" && it.key() != "nights" && it.key() != "note" &&
        it.key() != "room")
      return false;
  }
  auto chars = [](const std::string& text) {
    std::size_t n = 0;
    for (unsigned char c : text) n += (c & 0xC0) != 0x80 ? 1 : 0;
    return n;
  };
  if (!j.contains("guests") || !j["guests"].is_array()) return false;
  if (j["guests"].empty() || j["guests"].size() > 3) return false;
  for (const Json& g : j["guests"]) {
    if (!g.is_object() || g.size() != 1 || !g.contains("name") || !g["name"].is_string()) return false;
    std::size_t n = chars(g["name"].get<std::string>());
    if (n < 1 || n > 8) return false;
  }
  if (j.value("kind", Json()) != "hotel") return false;
  if (!j.contains("nights") || !j["nights"].is_number_integer()) return false;
  if (j["nights"].get<std::int64_t>() < 1 || j["nights"].get<std::int64_t>() > 14) return false;
  if (j.contains("note") && !j["note"].is_null() &&
      (!j["note"].is_string() || chars(j["note"].get<std::string>()) > 5))
    return false;
  if (j.contains("room") && !j["room"].is_null() && j["room"] != "single" && j["room"] != "double")
    return false;
  return true;
}

TEST(ToolCallConstraintTest, ZodAndPydanticSchemasYieldValidCalls) {
  TestVocab v = MakeVocab();
  for (ToolFamily family :
       {ToolFamily::kHermes, ToolFamily::kLlama3, ToolFamily::kMistral, ToolFamily::kGeneric}) {
    runs::ToolCallGrammar g = GrammarFor(family, "required", v, kBookingTools);
    for (std::uint64_t seed = 1; seed <= 40; ++seed) {
      SCOPED_TRACE(std::string(api::ToolFamilyName(family)) + " seed " + std::to_string(seed));
      bool done = false;
      std::string text = SampleConstrained(g, v, seed, 400, &done);
      ASSERT_TRUE(done) << text;
      ParsedOutput p = api::ParseModelOutput(family, text);
      ASSERT_EQ(p.calls.size(), 1u) << text;
      EXPECT_EQ(p.calls[0].name, "book");
      EXPECT_TRUE(BookingValid(p.calls[0].arguments)) << p.calls[0].arguments;
    }
  }
}

TEST(ToolCallConstraintTest, NamedChoiceAndTightBudgets) {
  TestVocab v = MakeVocab();
  Json body = Json::parse(kWeatherTools);
  body["tool_choice"] = {{"type", "function"}, {"function", {{"name", "get_time"}}}};
  api::ToolError error;
  auto request = api::ParseToolRequest(body, body.dump(), false, &error);
  ASSERT_TRUE(request.IsOk());
  std::string spec = api::ToolCallConstraintSpec(ToolFamily::kHermes, *request);
  // The smallest call: prefix + {"zone":""} + suffix + the end token.
  std::int64_t smallest = static_cast<std::int64_t>(
                              std::string("<tool_call>\n{\"name\":\"get_time\",\"arguments\":").size() +
                              std::string("{\"zone\":\"\"}").size() + std::string("}\n</tool_call>").size()) +
                          1;
  EXPECT_TRUE(api::CheckConstraintFits(spec, smallest).IsOk());
  EXPECT_FALSE(api::CheckConstraintFits(spec, smallest - 1).IsOk());
  runs::ToolCallGrammar g = GrammarFor(ToolFamily::kHermes, "required", v);
  g.forms.erase(g.forms.begin());  // only get_time, as the named choice leaves
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    bool done = false;
    std::string text = SampleConstrained(g, v, seed, smallest, &done);
    ASSERT_TRUE(done) << text;
    ParsedOutput p = api::ParseModelOutput(ToolFamily::kHermes, text);
    ASSERT_EQ(p.calls.size(), 1u);
    EXPECT_EQ(p.calls[0].name, "get_time");
    EXPECT_TRUE(ArgumentsValid("get_time", p.calls[0].arguments));
  }
}

TEST(ToolCallConstraintTest, AutoIsFreeUntilTheMarkerThenConstrained) {
  TestVocab v = MakeVocab();
  runs::ToolCallGrammar g = GrammarFor(ToolFamily::kHermes, "auto", v);
  auto bytes = std::make_shared<runs::TokenBytes>(v.bytes);
  runs::ToolCallConstraint c(std::make_shared<runs::ToolCallGrammar>(g), runs::MakeTokenIndex(bytes));
  std::vector<float> logits(v.bytes.size(), 0.0f);
  c.Mask(logits, 100);
  for (float l : logits) EXPECT_EQ(l, 0.0f);  // free text: nothing masked
  EXPECT_TRUE(c.FeedForTest("Sure. <tool_call>"));
  EXPECT_FALSE(c.Done());
  c.Mask(logits, 100);
  EXPECT_EQ(logits['\n'], 0.0f);  // the call goes on: "\n{\"name\":..."
  EXPECT_LT(logits['x'], 0.0f);
  EXPECT_TRUE(c.FeedForTest("\n{\"name\":\"get_time\",\"arguments\":{\"zone\":\"UTC\"}}\n</tool_call>"));
  EXPECT_FALSE(c.FeedForTest("x"));  // only the end token may follow
}

TEST(ToolCallConstraintTest, PlainStringTokensAreExactlyTheOnesTheAutomatonTakesUnchanged) {
  for (const char* plain : {"abc", "Paris", " 12", "\xc3\xa9t\xc3\xa9", "\xe4\xb8\xad", "\xf0\x9f\x98\x80"}) {
    EXPECT_TRUE(runs::PlainStringBytes(plain)) << plain;
  }
  for (const char* not_plain :
       {"a\"", "\\n", "\x01", "\xc3", "\xe0\x80\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xff"}) {
    EXPECT_FALSE(runs::PlainStringBytes(not_plain)) << not_plain;
  }
  // The same judgement as the automaton's, for every plain token of the test vocabulary.
  Json schema = {{"type", "object"}, {"properties", {{"s", {{"type", "string"}}}}}};
  runs::JsonSchema s = *api::ParseJsonSchema(schema);
  TestVocab v = MakeVocab();
  for (const std::string& bytes : v.bytes) {
    if (bytes.empty()) continue;
    runs::JsonAutomaton a(&s);
    ASSERT_TRUE(a.Feed("{\"s\":\""));
    ASSERT_TRUE(a.InPlainString().in);
    std::int64_t before = a.MinRemaining();
    bool fed = a.Feed(bytes);
    if (runs::PlainStringBytes(bytes)) {
      EXPECT_TRUE(fed && a.InPlainString().in && a.MinRemaining() == before) << bytes;
    }
  }
}

}  // namespace
}  // namespace llmsync::testing
