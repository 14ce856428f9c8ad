// Tools and reasoning as seen by every view of the tree: how the served model's template handles
// them (ToolSupport), the typed parts of an assistant node (reasoning, content, tool calls), and the
// tool fields of the native API (appends render the tools into the prompt, runs constrain calls).
//
// An assistant node written by a run keeps the tokens the model generated, call markup and
// end-of-turn token included (that is what keeps the next turn a cache hit). Its parts are derived
// from its text by the family's parser, deterministically, so the native view, the OpenAI views
// and an export of the same node always agree (call ids come from the node id).
//
// Thread safety: pure functions; ToolSupport is a value.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include "api/server_context.h"
#include "api/tools/tool_format.h"
#include "api/tools/tool_request.h"
#include "runs/run_params.h"
#include "session/node.h"

namespace llmsync::api {

// How the served model's template handles tools and reasoning (api/tools/tool_format.h).
struct ToolSupport {
  ToolFamily family = ToolFamily::kGeneric;
  bool renders_tools = false;  // false: the generic system block lists the tools
  bool thinks = false;         // <think> reasoning is split off every output
};
ToolSupport ToolSupportFor(const ServerContext& ctx);

// The OpenAI tool_calls array for parsed calls of the result node `node`.
Json ToolCallsJson(const ToolSupport& tools, const std::vector<ParsedCall>& calls, const Id& node);

// The typed parts of an assistant node, {"reasoning", "content", "tool_calls": [{"call_id",
// "tool_name", "arguments"}]}, when its text holds call markup or reasoning; nullopt otherwise (and
// for other kinds and hidden nodes).
std::optional<Json> AssistantPartsJson(const ToolSupport& tools, const session::Node& node);

// The native API's `tools` / `tool_choice` / `parallel_tool_calls` (chat shape). nullopt when the
// body has no tools; a 400 (naming the field) in `error` when they are malformed.
std::optional<ToolRequest> NativeToolRequest(const Json& body, std::string_view raw_body,
                                             std::optional<HttpResponse>* error);

// A native append with tools: the drafts are frozen with the tool list rendered by the template
// (`template_tools`), or, for a template that does not render tools, a generic tools system node
// is put first when the append starts a conversation (`at_root`).
Result<text::jinja::Value> NativeAppendTools(const ToolSupport& tools, const ToolRequest& request,
                                             bool at_root, std::vector<session::NodeDraft>* drafts);

// A native run with tools: the tool-call constraint in `params` (none for tool_choice none), or a
// 400 naming max_tokens in `error` when the smallest call does not fit.
Status NativeRunTools(const ToolSupport& tools, const ToolRequest& request, runs::RunParams* params,
                      std::optional<HttpResponse>* error);

}  // namespace llmsync::api
