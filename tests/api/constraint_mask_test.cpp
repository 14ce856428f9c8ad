// Structured-output masks (runs/json_schema/token_index.h) against their per-token definition:
// random JSON Schemas and random tool lists (every tool-call family), random walks through the
// allowed tokens with tight and loose budgets, and at every step the mask Mask computes by walking
// the token trie must equal the straightforward one — each token judged on its own: a copy of the
// automaton fed its bytes (JSON Schema, an automaton kept here), or the constraint's own
// per-token Allows (tool calls). On a synthetic vocabulary (bytes, multi-byte JSON and markup
// pieces, UTF-8 fragments, control tokens) and, when ../shared is present, on Llama 3's.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <iterator>
#include <limits>
#include <random>

#include "../engine/shared_dir.h"
#include "api/openai/openai_schema.h"
#include "api/tools/tool_format.h"
#include "api/tools/tool_request.h"
#include "base/env.h"
#include "runs/json_schema/json_schema_constraint.h"

namespace llmsync::testing {
namespace {

using api::Json;
using Rng = std::mt19937_64;

std::size_t Pick(Rng& rng, std::size_t n) { return static_cast<std::size_t>(rng() % n); }

const std::vector<std::string> kNames = {"a", "ab", "abc", "city", "unit", "days", "b\\\"q", "x"};

// A random schema of the supported subset; objects at the root.
Json RandomSchema(Rng& rng, int depth, bool object) {
  int kind = object ? 0 : static_cast<int>(Pick(rng, depth > 2 ? 8 : 10));
  switch (kind) {
    case 0: {
      Json props = Json::object();
      Json required = Json::array();
      std::size_t n = 1 + Pick(rng, 3);
      for (std::size_t i = 0; i < n; ++i) {
        std::string name = kNames[Pick(rng, kNames.size())];
        if (name.find('\\') != std::string::npos) name = "b\"q";
        props[name] = RandomSchema(rng, depth + 1, false);
        if (Pick(rng, 2) == 0) required.push_back(name);
      }
      Json s = {{"type", "object"}, {"properties", props}};
      if (!required.empty()) s["required"] = required;
      return s;
    }
    case 1: {
      Json s = {{"type", "string"}};
      if (Pick(rng, 3) == 0) s["maxLength"] = Pick(rng, 6);
      if (Pick(rng, 4) == 0) s["minLength"] = Pick(rng, 3);
      return s;
    }
    case 2: {
      Json s = {{"type", "integer"}};
      if (Pick(rng, 2) == 0) {
        s["minimum"] = -5 + static_cast<int>(Pick(rng, 20));
        s["maximum"] = s["minimum"].get<int>() + static_cast<int>(Pick(rng, 300));
      }
      return s;
    }
    case 3: return {{"type", "number"}};
    case 4: return {{"type", Pick(rng, 2) == 0 ? "boolean" : "null"}};
    case 5: return {{"enum", Json::array({"red", "re", 12, true, nullptr})}};
    case 6: return Json::object();  // any value
    case 7: return {{"type", "string"}};
    case 8: {
      Json s = {{"type", "array"}, {"items", RandomSchema(rng, depth + 1, false)}};
      if (Pick(rng, 2) == 0) s["maxItems"] = 1 + Pick(rng, 3);
      return s;
    }
    default:
      return {
          {"anyOf", Json::array({RandomSchema(rng, depth + 1, false), RandomSchema(rng, depth + 1, true)})}};
  }
}

// Bytes, then multi-byte pieces of JSON, markup and UTF-8 (fragments included), then controls.
api::ConstraintTables SyntheticTables(Rng& rng) {
  auto bytes = std::make_shared<runs::TokenBytes>();
  for (int b = 0; b < 256; ++b) bytes->push_back(std::string(1, static_cast<char>(b)));
  const std::vector<std::string> pieces = {"{\"",
                                           "\":",
                                           "\":\"",
                                           "\",\"",
                                           "\"}",
                                           "}}",
                                           "},",
                                           "[\"",
                                           "\"]",
                                           "true",
                                           "false",
                                           "null",
                                           "12",
                                           "-0",
                                           "0.5",
                                           "city",
                                           "unit",
                                           "days",
                                           "ab",
                                           "abc",
                                           "red",
                                           "\\\"",
                                           "\\n",
                                           "\\u00e9",
                                           "é",
                                           "東京",
                                           "\xe6\x9d",
                                           "\xac",
                                           " hello",
                                           "<tool_call>",
                                           "</tool_call>",
                                           "\n",
                                           ">>>",
                                           "[{\"name\":",
                                           "\"arguments\":",
                                           "\n{\"",
                                           "<function=",
                                           "</function>",
                                           "{\"name\":\"",
                                           "functools[",
                                           "<|python_tag|>",
                                           "\"}\n",
                                           "a\"b",
                                           "\x01x"};
  for (const std::string& p : pieces) bytes->push_back(p);
  const std::string alphabet = "{}[]\":,0123456789.-abcdeilnrstuy \\\xc3\xa9<>/_\n";
  for (int i = 0; i < 300; ++i) {
    std::string t;
    std::size_t n = 2 + Pick(rng, 6);
    for (std::size_t k = 0; k < n; ++k) t.push_back(alphabet[Pick(rng, alphabet.size())]);
    bytes->push_back(t);
  }
  bytes->push_back((*bytes)[300]);  // a duplicate
  api::ConstraintTables t;
  for (const char* control : {"<|im_end|>", "[TOOL_CALLS]", "<|eot_id|>"}) {
    t.controls.emplace_back(control, static_cast<session::TokenId>(bytes->size()));
    bytes->push_back(std::string());
  }
  t.end_of_turn = {t.controls[0].second};
  t.bytes = bytes;
  t.index = runs::MakeTokenIndex(bytes);
  return t;
}

// Masks with `c` at each step of a random walk; `oracle(id, remaining)` is the per-token answer.
template <class Oracle, class OnAccept>
void WalkAndCompare(runs::TokenConstraint& c, std::size_t vocab, Rng& rng, std::int64_t budget, int max_steps,
                    Oracle&& oracle, OnAccept&& on_accept) {
  const float inf = std::numeric_limits<float>::infinity();
  for (int step = 0; step < max_steps && step < budget && !c.Done(); ++step) {
    std::int64_t remaining = budget - step;
    std::vector<float> logits(vocab + 2, 0.0f);  // the model's rows may outnumber the tokenizer's
    for (int k = 0; k < 3; ++k) logits[Pick(rng, logits.size())] = -inf;
    std::vector<float> before = logits;
    c.Mask(logits, remaining);
    std::vector<session::TokenId> allowed;
    for (std::size_t id = 0; id < logits.size(); ++id) {
      bool expect = !(before[id] == -inf) && oracle(static_cast<session::TokenId>(id), remaining);
      ASSERT_EQ(logits[id] == 0.0f, expect)
          << "step " << step << " token " << id << " remaining " << remaining;
      if (expect && id < vocab) allowed.push_back(static_cast<session::TokenId>(id));
    }
    if (allowed.empty()) return;
    session::TokenId t = allowed[Pick(rng, allowed.size())];
    c.Accept(t);
    on_accept(t);
  }
}

int Steps(int release) {
  return std::getenv("LLMSYNC_SANITIZED") != nullptr ? std::max(4, release / 4) : release;
}

void CheckSchemas(const api::ConstraintTables& t, std::uint64_t seed, int schemas, int steps) {
  Rng rng(seed);
  for (int n = 0; n < schemas; ++n) {
    Json schema_json = RandomSchema(rng, 0, true);
    SCOPED_TRACE(schema_json.dump());
    auto parsed = api::ParseJsonSchema(schema_json);
    ASSERT_TRUE(parsed.IsOk()) << parsed.GetStatus().ToString();
    runs::JsonSchema schema = *parsed;
    runs::JsonAutomaton reference(&schema);
    std::string spec = Json{{"type", "json_schema"}, {"schema", schema_json}}.dump();
    auto c = api::MakeConstraint(spec, t);
    ASSERT_TRUE(c.IsOk()) << c.GetStatus().ToString();
    std::int64_t budget = runs::JsonAutomaton::MinLength(schema) + static_cast<std::int64_t>(Pick(rng, 24));
    const runs::TokenBytes& bytes = *t.bytes;
    WalkAndCompare(
        **c, bytes.size(), rng, budget, steps,
        [&](session::TokenId id, std::int64_t remaining) {
          if (static_cast<std::size_t>(id) >= bytes.size()) return false;
          const std::string& b = bytes[static_cast<std::size_t>(id)];
          runs::JsonAutomaton next = reference;
          return !b.empty() && next.Feed(b) && next.MinRemaining() <= remaining - 1;
        },
        [&](session::TokenId id) { reference.Feed(bytes[static_cast<std::size_t>(id)]); });
    if (::testing::Test::HasFatalFailure()) return;
  }
}

void CheckToolCalls(const api::ConstraintTables& t, std::uint64_t seed, int lists, int steps) {
  Rng rng(seed);
  const api::ToolFamily families[] = {api::ToolFamily::kHermes,         api::ToolFamily::kLlama3,
                                      api::ToolFamily::kMistral,        api::ToolFamily::kFunctionary,
                                      api::ToolFamily::kFunctionaryV31, api::ToolFamily::kFirefunction};
  for (int n = 0; n < lists; ++n) {
    Json tools = Json::array();
    std::size_t count = 1 + Pick(rng, 3);
    for (std::size_t i = 0; i < count; ++i) {
      tools.push_back({{"type", "function"},
                       {"function",
                        {{"name", "f" + std::to_string(i) + (i % 2 == 0 ? "_get" : "")},
                         {"parameters", RandomSchema(rng, 1, true)}}}});
    }
    Json body = {{"tools", tools},
                 {"tool_choice", Pick(rng, 4) == 0 ? "auto" : "required"},
                 {"parallel_tool_calls", Pick(rng, 2) == 0}};
    std::string raw = body.dump();
    SCOPED_TRACE(raw);
    api::ToolError error;
    auto request = api::ParseToolRequest(body, raw, false, &error);
    ASSERT_TRUE(request.IsOk()) << error.message;
    std::string spec = api::ToolCallConstraintSpec(families[Pick(rng, std::size(families))], *request);
    auto c = api::MakeConstraint(spec, t);
    ASSERT_TRUE(c.IsOk()) << c.GetStatus().ToString();
    std::int64_t budget = 40 + static_cast<std::int64_t>(Pick(rng, 80));
    runs::TokenConstraint* constraint = c->get();
    WalkAndCompare(
        **c, t.bytes->size(), rng, budget, steps,
        [&](session::TokenId id, std::int64_t remaining) { return constraint->Allows(id, remaining); },
        [](session::TokenId) {});
    if (::testing::Test::HasFatalFailure()) return;
  }
}

TEST(ConstraintMaskTest, TrieMaskEqualsPerTokenMaskOnASyntheticVocabulary) {
  Rng rng(7);
  api::ConstraintTables t = SyntheticTables(rng);
  CheckSchemas(t, 11, Steps(120), 60);
  CheckToolCalls(t, 13, Steps(120), 80);
}

TEST(ConstraintMaskTest, TrieMaskEqualsPerTokenMaskOnLlama3Vocabulary) {
  LLMSYNC_REQUIRE_SHARED("vectors/tokenizer/ggml-vocab-llama-bpe.gguf");
  auto tok = text::LoadTokenizerFromFile(Env::Default(),
                                         SharedDir() + "/vectors/tokenizer/ggml-vocab-llama-bpe.gguf");
  ASSERT_TRUE(tok.IsOk()) << tok.GetStatus().ToString();
  api::ConstraintTables t = api::BuildConstraintTables(**tok);
  CheckSchemas(t, 17, 2, Steps(12));
  CheckToolCalls(t, 19, 2, Steps(12));
}

}  // namespace
}  // namespace llmsync::testing
