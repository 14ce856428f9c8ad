#include "api/tools/tool_support.h"

#include "api/openai/openai_schema.h"
#include "api/tools/tool_template.h"

namespace llmsync::api {

ToolSupport ToolSupportFor(const ServerContext& ctx) {
  ToolSupport t;
  if (ctx.conversation == nullptr) return t;
  const text::ChatTemplate& tmpl = ctx.conversation->GetTemplate();
  t.family = tmpl.IsChatMl() ? ToolFamily::kGeneric : DetectToolFamily(tmpl.Source());
  t.renders_tools = !tmpl.IsChatMl() && TemplateRendersTools(tmpl.Source());
  t.thinks = !tmpl.IsChatMl() && TemplateThinks(tmpl.Source());
  if (!t.renders_tools) t.family = ToolFamily::kGeneric;
  return t;
}

Json ToolCallsJson(const ToolSupport& tools, const std::vector<ParsedCall>& calls, const Id& node) {
  Json out = Json::array();
  std::string hex = node.ToHex();
  for (std::size_t i = 0; i < calls.size(); ++i) {
    out.push_back({{"id", CallIdFor(tools.family, hex, i)},
                   {"type", "function"},
                   {"function", {{"name", calls[i].name}, {"arguments", calls[i].arguments}}}});
  }
  return out;
}

std::optional<Json> AssistantPartsJson(const ToolSupport& tools, const session::Node& node) {
  if (node.content.kind != session::NodeKind::kAssistant || node.IsHidden() || node.purged)
    return std::nullopt;
  ParsedOutput p = ParseModelOutput(tools.family, node.content.text);
  if (p.calls.empty() && p.reasoning.empty()) return std::nullopt;
  Json calls = Json::array();
  std::string hex = node.id.ToHex();
  for (std::size_t i = 0; i < p.calls.size(); ++i) {
    calls.push_back({{"call_id", CallIdFor(tools.family, hex, i)},
                     {"tool_name", p.calls[i].name},
                     {"arguments", p.calls[i].arguments}});
  }
  return Json{{"reasoning", p.reasoning}, {"content", p.content}, {"tool_calls", std::move(calls)}};
}

std::optional<ToolRequest> NativeToolRequest(const Json& body, std::string_view raw_body,
                                             std::optional<HttpResponse>* error) {
  if (!body.contains("tools") && !body.contains("tool_choice")) return std::nullopt;
  ToolError terr;
  auto parsed = ParseToolRequest(body, raw_body, false, &terr);
  if (!parsed.IsOk()) {
    *error = ToolErrorResponse(terr);
    return std::nullopt;
  }
  if (!parsed->Active()) return std::nullopt;
  return std::move(parsed).Value();
}

Result<text::jinja::Value> NativeAppendTools(const ToolSupport& tools, const ToolRequest& request,
                                             bool at_root, std::vector<session::NodeDraft>* drafts) {
  if (tools.renders_tools) return TemplateToolsValue(request);
  if (at_root) {
    session::NodeDraft d;
    d.kind = session::NodeKind::kSystem;
    d.text = GenericToolsSystemText(request);
    drafts->insert(drafts->begin(), std::move(d));
  }
  return text::jinja::Value::None();
}

Status NativeRunTools(const ToolSupport& tools, const ToolRequest& request, runs::RunParams* params,
                      std::optional<HttpResponse>* error) {
  if (request.choice == ToolChoiceMode::kNone) return Status::Ok();
  if (!params->constraint.empty() && request.choice == ToolChoiceMode::kAuto) return Status::Ok();
  params->constraint = ToolCallConstraintSpec(tools.family, request);
  Status fits = CheckConstraintFits(params->constraint, params->max_tokens);
  if (!fits.IsOk()) *error = ToolErrorResponse({"max_tokens", fits.Message()});
  return fits;
}

}  // namespace llmsync::api
