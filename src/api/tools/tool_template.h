// Tools into the prompt: the request's tool list as the chat template's `tools` variable, and the
// session a tool-bearing conversation lives in.
//
// Thread safety: pure functions.
#pragma once

#include <string>
#include <vector>

#include "api/tools/tool_request.h"
#include "llmsync/id.h"
#include "text/jinja/jinja_value.h"

namespace llmsync::api {

// JSON to a template value, keys in order (Python's json.loads). kInvalidArgument past depth 64.
Result<text::jinja::Value> JsonToTemplateValue(const OrderedJson& j);

// The `tools` variable for a request: the chat-shaped tool list, or None without tools.
Result<text::jinja::Value> TemplateToolsValue(const ToolRequest& request);

// A digest of the tool list as rendered (names, descriptions, schemas, order): tool-bearing
// conversations live in one OpenAI session per distinct list, so every node of a session is
// frozen with the same tools. Zero for no tools.
Id ToolListDigest(const ToolRequest& request);

// Each tool's name and a digest of its rendered definition, in request order (for reporting which
// tool a changed list changed).
struct ToolDigest {
  std::string name;
  Id digest;
  friend bool operator==(const ToolDigest&, const ToolDigest&) = default;
};
std::vector<ToolDigest> ToolDigests(const ToolRequest& request);

}  // namespace llmsync::api
