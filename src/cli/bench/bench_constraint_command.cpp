// `llmsync bench constraint`: the cost of structured-output masking per generated token, for a
// tool-call constraint (Hermes markup, two tools) and a JSON Schema constraint, on a byte
// vocabulary and the Llama 3 BPE and Qwen3 vocabularies of ../shared (skipped when absent).
//
// Each case drives the constraint through a realistic document (properties in the order the
// constraint takes them: the API's JSON objects sort keys): before every step Mask runs on
// zero logits, and the longest allowed token whose bytes continue the document is accepted (the
// end token once it is written). Side by side in the same run, the per-token definition
// (TokenConstraint::Allows for every id, what masking cost before the token index) is timed on
// the same states, and the two masks are compared. Prints JSON; times are this thread's CPU time
// (the machine is shared).
#include <time.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <limits>
#include <nlohmann/json.hpp>

#include "api/openai/openai_schema.h"
#include "api/tools/tool_format.h"
#include "api/tools/tool_request.h"
#include "base/env.h"
#include "cli/commands.h"
#include "runs/json_schema/json_schema_constraint.h"

namespace llmsync::cli {
namespace {

using Json = nlohmann::json;

struct ConstraintFlags {
  std::string vocab_dir;  // default: $LLMSYNC_SHARED_DIR or ../shared, + /vectors/tokenizer
  bool reference = true;
};

constexpr const char* kTools = R"({"tool_choice": "required", "tools": [
  {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object",
   "properties": {"city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]},
                  "days": {"type": "integer", "minimum": 1, "maximum": 14}},
   "required": ["city", "unit"]}}},
  {"type": "function", "function": {"name": "search_web", "parameters": {"type": "object",
   "properties": {"query": {"type": "string"}, "max_results": {"type": "integer"},
                  "safe": {"type": "boolean"}},
   "required": ["query"]}}}]})";
constexpr const char* kToolArguments =
    R"j({"max_results":5,"query":"latest release notes for grammar-constrained sampling in llama.cpp, vLLM and SGLang (2025)","safe":true})j";

constexpr const char* kSchema = R"({"type": "object", "properties": {
  "title": {"type": "string"}, "year": {"type": "integer"},
  "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 5},
  "rating": {"type": "number"}, "summary": {"type": "string", "maxLength": 300}},
  "required": ["title", "year", "tags", "summary"]})";
constexpr const char* kDocument =
    R"({"rating":4.5,"summary":"An envoy of the Ekumen visits Gethen, a frozen world whose people have no fixed sex, and learns to trust a banished prime minister — on the Gobrin ice, «nusuth».","tags":["science fiction","anthropology","winter"],"title":"The Left Hand of Darkness","year":1969})";

std::int64_t ThreadCpuNanos() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// The byte vocabulary: 256 one-byte tokens and an <|im_end|> control token.
api::ConstraintTables ByteTables() {
  auto bytes = std::make_shared<runs::TokenBytes>();
  for (int b = 0; b < 256; ++b) bytes->push_back(std::string(1, static_cast<char>(b)));
  bytes->push_back(std::string());
  api::ConstraintTables t;
  t.bytes = bytes;
  t.index = runs::MakeTokenIndex(bytes);
  t.controls = {{"<|im_end|>", 256}};
  t.end_of_turn = {256};
  return t;
}

// Runs one constraint through `document`: per-step mask times, reference times, mismatches.
Result<Json> Drive(const std::string& spec, const std::string& document, const api::ConstraintTables& t,
                   bool reference) {
  LLMSYNC_ASSIGN_OR_RETURN(std::unique_ptr<runs::TokenConstraint> c, api::MakeConstraint(spec, t));
  const runs::TokenBytes& bytes = *t.bytes;
  const std::int64_t budget = 4096;
  std::vector<double> mask_us;
  double reference_us = 0;
  int mismatched_steps = 0;
  std::size_t pos = 0;
  std::vector<float> logits(bytes.size());
  for (std::int64_t step = 0; step < budget && !c->Done(); ++step) {
    std::fill(logits.begin(), logits.end(), 0.0f);
    std::int64_t start = ThreadCpuNanos();
    c->Mask(logits, budget - step);
    mask_us.push_back(static_cast<double>(ThreadCpuNanos() - start) / 1000.0);
    if (reference) {
      start = ThreadCpuNanos();
      std::vector<char> allowed(bytes.size());
      for (std::size_t id = 0; id < bytes.size(); ++id)
        allowed[id] = c->Allows(static_cast<session::TokenId>(id), budget - step) ? 1 : 0;
      reference_us += static_cast<double>(ThreadCpuNanos() - start) / 1000.0;
      bool same = true;
      for (std::size_t id = 0; id < bytes.size(); ++id)
        same = same && ((logits[id] == 0.0f) == (allowed[id] != 0));
      if (!same) ++mismatched_steps;
    }
    // The longest allowed token continuing the document (a control token by its text).
    std::string_view rest = std::string_view(document).substr(pos);
    session::TokenId best = -1;
    std::size_t best_length = 0;
    for (std::size_t id = 0; id < bytes.size(); ++id) {
      if (logits[id] != 0.0f) continue;
      std::string_view text = bytes[id];
      for (const auto& [control, control_id] : t.controls) {
        if (control_id == static_cast<session::TokenId>(id)) text = control;
      }
      if (best < 0 && rest.empty()) best = static_cast<session::TokenId>(id);  // the end token
      if (!text.empty() && rest.starts_with(text) && text.size() > best_length) {
        best = static_cast<session::TokenId>(id);
        best_length = text.size();
      }
    }
    if (best < 0)
      return Status::Internal("no allowed token continues the document at byte " + std::to_string(pos));
    c->Accept(best);
    pos += best_length;
  }
  if (!c->Done() || pos != document.size()) return Status::Internal("the document did not complete");
  std::vector<double> sorted = mask_us;
  std::sort(sorted.begin(), sorted.end());
  double total = 0;
  for (double us : mask_us) total += us;
  auto steps = static_cast<double>(mask_us.size());
  Json r = {{"steps", mask_us.size()},
            {"mask_us_mean", total / steps},
            {"mask_us_median", sorted[sorted.size() / 2]},
            {"mask_us_max", sorted.back()},
            {"mask_ms_total", total / 1000.0}};
  if (reference) {
    r["per_token_us_mean"] = reference_us / steps;
    r["speedup"] = reference_us / std::max(total, 1e-3);
    r["mismatched_steps"] = mismatched_steps;
  }
  return r;
}

Result<Json> MeasureVocab(const std::string& name, const api::ConstraintTables& t, const ConstraintFlags& f) {
  Json body = Json::parse(kTools);
  api::ToolError error;
  auto request = api::ParseToolRequest(body, kTools, false, &error);
  if (!request.IsOk()) return Status::Internal("tools: " + error.message);
  std::string tool_spec = api::ToolCallConstraintSpec(api::ToolFamily::kHermes, *request);
  Json forms = Json::parse(tool_spec)["forms"];
  std::string end_text;  // the end-of-turn token's text
  for (const auto& [text, id] : t.controls) {
    if (!t.end_of_turn.empty() && id == t.end_of_turn[0]) end_text = text;
  }
  std::string call = forms[1]["prefix"].get<std::string>() + kToolArguments +
                     Json::parse(tool_spec)["suffix"].get<std::string>() + end_text;
  std::string schema_spec = Json{{"type", "json_schema"}, {"schema", Json::parse(kSchema)}}.dump();
  Json out = {{"vocab", name}, {"vocab_size", t.bytes->size()}};
  LLMSYNC_ASSIGN_OR_RETURN(out["tool_call"], Drive(tool_spec, call, t, f.reference));
  LLMSYNC_ASSIGN_OR_RETURN(out["json_schema"], Drive(schema_spec, kDocument, t, f.reference));
  return out;
}

int RunConstraint(const ConstraintFlags& f) {
  std::string dir = f.vocab_dir;
  if (dir.empty()) {
    const char* shared = std::getenv("LLMSYNC_SHARED_DIR");
    dir = std::string(shared != nullptr ? shared : "../shared") + "/vectors/tokenizer";
  }
  Json results = Json::array();
  auto report = [&](const std::string& name, const api::ConstraintTables& t, double build_ms) {
    auto r = MeasureVocab(name, t, f);
    if (!r.IsOk()) {
      std::cerr << "llmsync bench constraint: " << name << ": " << r.GetStatus().ToString() << "\n";
      return false;
    }
    (*r)["tables_build_ms"] = build_ms;
    results.push_back(*r);
    return true;
  };
  if (!report("byte", ByteTables(), 0)) return 1;
  for (const char* name : {"llama-bpe", "qwen3"}) {
    std::string path = dir + "/ggml-vocab-" + name + ".gguf";
    if (!std::filesystem::exists(path)) {
      std::cerr << "llmsync bench constraint: skipping " << name << ": " << path << " is absent\n";
      continue;
    }
    auto tok = text::LoadTokenizerFromFile(Env::Default(), path);
    if (!tok.IsOk()) {
      std::cerr << "llmsync bench constraint: " << path << ": " << tok.GetStatus().ToString() << "\n";
      return 1;
    }
    std::int64_t start = ThreadCpuNanos();
    api::ConstraintTables t = api::BuildConstraintTables(**tok);
    double build_ms = static_cast<double>(ThreadCpuNanos() - start) / 1e6;
    if (!report(name, t, build_ms)) return 1;
  }
  std::cout << Json{{"results", results}}.dump(2) << std::endl;
  return 0;
}

}  // namespace

void AddBenchConstraintCommands(CLI::App& app, CliState& state) {
  CLI::App* bench = GetOrAddSubcommand(app, "bench", "Benchmarks");
  auto f = std::make_shared<ConstraintFlags>();
  CLI::App* cmd = bench->add_subcommand("constraint", "Structured-output / tool-call masking cost per token");
  cmd->add_option(
      "--vocab-dir", f->vocab_dir,
      "Directory of ggml-vocab-*.gguf (default: $LLMSYNC_SHARED_DIR or ../shared, /vectors/tokenizer)");
  cmd->add_flag("!--no-reference", f->reference, "Skip the per-token reference (and the mask comparison)");
  cmd->callback([f, &state] { state.exit_code = RunConstraint(*f); });
}

}  // namespace llmsync::cli
