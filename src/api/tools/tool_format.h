// Tool-call formats per model family: which markup a model writes its calls in, the constrained
// grammar that makes it write a valid call, and the parser that turns generated text back into
// OpenAI tool calls, reasoning and content.
//
// Families (detected from the chat template's source; docs/PROTOCOL.md "Tools"):
//   kHermes       <tool_call>\n{"name": N, "arguments": {...}}\n</tool_call>  (Qwen2.5, Qwen3, Hermes)
//   kLlama3       {"name": N, "parameters": {...}}, optionally after <|python_tag|>  (Llama 3.1-3.3)
//   kMistral      [TOOL_CALLS][{"name": N, "arguments": {...}, "id": ...}]  (Mistral Nemo)
//   kFunctionary  >>>N\n{...}  (functionary v3.2);  <function=N>{...}</function> (v3.1)
//   kFirefunction  functools[{"name": N, "arguments": {...}}]
//   kCommandR     <|START_ACTION|>[{"tool_call_id", "tool_name": N, "parameters": {...}}]<|END_ACTION|>
//   kGeneric      the Hermes markup, taught by a system block (templates that ignore `tools`)
// Reasoning: a leading <think>...</think> (Qwen3, DeepSeek-R1) is split off as reasoning in every
// family; it ends at </think> or at the first call markup (a call is never swallowed by it).
//
// Parsing rules: markup blocks become calls; the text outside them is the content, with the
// whitespace next to each block removed. Text without markup is returned as is. A block whose JSON
// does not parse stays in the content (never a silently dropped call). Special tokens are not in a
// run's visible text, so the parsers also accept the bare JSON that follows them ([{...}] for
// Mistral and Command R).
//
// Thread safety: pure functions.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "api/json_codec.h"
#include "api/tools/tool_request.h"

namespace llmsync::api {

enum class ToolFamily {
  kHermes,
  kLlama3,
  kMistral,
  kFunctionary,
  kFunctionaryV31,
  kFirefunction,
  kCommandR,
  kGeneric
};

std::string_view ToolFamilyName(ToolFamily family);
// The family a chat template's source writes tool calls in.
ToolFamily DetectToolFamily(std::string_view template_source);
// Whether the template renders `tools` itself (else the generic system block is prepended).
bool TemplateRendersTools(std::string_view template_source);
// Whether the template knows <think> reasoning.
bool TemplateThinks(std::string_view template_source);

struct ParsedCall {
  std::string name;
  std::string arguments;  // a JSON text (compact when the model wrote JSON)
};

struct ParsedOutput {
  std::string content;
  std::string reasoning;
  std::vector<ParsedCall> calls;
};

ParsedOutput ParseModelOutput(ToolFamily family, std::string_view text);

// The reasoning a stream may already send for the text generated so far: always a prefix of any
// continuation's ParseModelOutput(...).reasoning (the <think> block's text so far, without a
// partial closing marker or trailing whitespace). Empty when the output does not open with <think>.
std::string StreamableReasoning(ToolFamily family, std::string_view text_so_far);

// How many bytes of `content` a stream may already send for the text generated so far: never
// more than any continuation's ParseModelOutput(...).content starts with (text before any markup,
// without trailing whitespace or a partial marker).
std::size_t StreamableContentBytes(ToolFamily family, std::string_view text_so_far);
// The content a stream may already send: a prefix of any continuation's parsed content. Unlike
// StreamableContentBytes, it also covers the content after a closed <think> block.
std::string StreamableContent(ToolFamily family, std::string_view text_so_far);

// The most calls one assistant turn may hold under parallel_tool_calls.
inline constexpr int kMaxParallelCalls = 8;

// The constraint spec (RunParams::constraint) that makes a run write valid calls to
// `request.Allowed()` in `family`'s markup: one call, or with `parallel_tool_calls` (families
// whose markup holds several: all but llama3 and command-r) up to kMaxParallelCalls, each
// validated against its own tool's schema. `required` (required or named) constrains from the
// first token, otherwise (auto) once the family's opening marker appears. Empty for tool_choice
// none.
std::string ToolCallConstraintSpec(ToolFamily family, const ToolRequest& request);

// The call id a view reports for call `index` of the run result node `node_hex` (deterministic, so
// a client re-sending the history matches the node). Mistral's template needs 9 alphanumerics.
std::string CallIdFor(ToolFamily family, std::string_view node_hex, std::size_t index);

// The generic fallback: the system text that lists the tools and the calling convention, for
// templates that do not render `tools`.
std::string GenericToolsSystemText(const ToolRequest& request);

}  // namespace llmsync::api
