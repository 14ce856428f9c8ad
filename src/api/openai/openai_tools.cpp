// Tools in the OpenAI views: validation into a ToolPlan, and tool calls back into OpenAI JSON.
#include "api/openai/openai_internal.h"
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

Result<ToolPlan> PlanTools(const OpenAiState& st, const Json& body, std::string_view raw_body,
                           bool responses_shape, std::vector<MessageDraft>* drafts, runs::RunParams* params,
                           std::optional<HttpResponse>* error) {
  ToolPlan plan;
  ToolError terr;
  auto parsed = ParseToolRequest(body, raw_body, responses_shape, &terr);
  if (!parsed.IsOk()) {
    *error = ToolErrorResponse(terr);
    return parsed.GetStatus();
  }
  plan.request = std::move(parsed).Value();
  plan.parse = st.tools.thinks;
  if (!plan.request.Active()) return plan;
  plan.session_tools = ToolListDigest(plan.request);
  if (st.tools.renders_tools) {
    LLMSYNC_ASSIGN_OR_RETURN(plan.template_tools, TemplateToolsValue(plan.request));
  } else {  // the documented fallback: a system message that lists the tools
    MessageDraft d;
    d.draft.kind = session::NodeKind::kSystem;
    d.draft.text = GenericToolsSystemText(plan.request);
    drafts->insert(drafts->begin(), std::move(d));
  }
  if (plan.request.choice == ToolChoiceMode::kNone) return plan;
  plan.parse = true;
  std::string spec = ToolCallConstraintSpec(st.tools.family, plan.request);
  bool forced = plan.request.choice != ToolChoiceMode::kAuto;
  if (forced || params->constraint.empty()) {
    params->constraint = std::move(spec);
    Status fits = CheckConstraintFits(params->constraint, params->max_tokens);
    if (!fits.IsOk()) {
      *error = ToolErrorResponse({responses_shape ? "max_output_tokens" : "max_tokens", fits.Message()});
      return fits;
    }
  }
  return plan;
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

}  // namespace llmsync::api
