// Tool requests at the API edge: the `tools`, `tool_choice` and `parallel_tool_calls` fields of a
// chat completion or a response, validated into native structs.
//
// Chat shape:      {"type": "function", "function": {"name", "description", "parameters", "strict"}}
// Responses shape: {"type": "function", "name", "description", "parameters", "strict"}
// tool_choice:     "auto" | "none" | "required" | {"type": "function", "function": {"name"}} (chat)
//                  or {"type": "function", "name"} (Responses).
// A malformed list, a duplicate or invalid name, a tool_choice naming an unknown function, or a
// parameters schema with a keyword the constrained decoder cannot enforce is a ToolError naming
// the request field (`param`, e.g. "tools[1].function.parameters"), answered as a 400.
//
// Thread safety: pure functions over values.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "api/http/http_message.h"
#include "api/json_codec.h"
#include "llmsync/status.h"

namespace llmsync::api {

using OrderedJson = nlohmann::ordered_json;

enum class ToolChoiceMode { kAuto, kNone, kRequired, kNamed };

struct ToolDefinition {
  std::string name;
  std::string description;
  Json parameters;                  // a JSON Schema whose root is an object ({"type": "object"} when absent)
  OrderedJson template_parameters;  // the same schema in the client's key order (for templates)
  bool strict = false;
};

struct ToolRequest {
  std::vector<ToolDefinition> tools;
  ToolChoiceMode choice = ToolChoiceMode::kAuto;
  std::string named;  // kNamed: the function
  bool parallel_tool_calls = true;
  // True when the request carried a non-empty tool list.
  bool Active() const { return !tools.empty(); }
  // The tools as the chat templates expect them ({"type": "function", "function": {...}}), in
  // request order.
  // Keys keep the client's order, as Python's json (and so the templates' tojson) would.
  OrderedJson TemplateTools() const;
  // The tools the constrained decoder must allow: all of them, or the named one.
  std::vector<const ToolDefinition*> Allowed() const;
};

// A validation failure: the request field and what is wrong with it.
struct ToolError {
  std::string param;
  std::string message;
};

// `responses_shape`: the Responses API's flat tool objects and tool_choice. `raw_body` is the
// request text, re-read for the tools' key order.
Result<ToolRequest> ParseToolRequest(const Json& body, std::string_view raw_body, bool responses_shape,
                                     ToolError* error);

// The OpenAI error body for a ToolError: 400 {"error": {"message", "type":
// "invalid_request_error", "param", "code": "invalid_argument"}}.
HttpResponse ToolErrorResponse(const ToolError& error);

}  // namespace llmsync::api
