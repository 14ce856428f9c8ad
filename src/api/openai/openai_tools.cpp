// Tools in the OpenAI views: validation into a ToolPlan, and tool calls back into OpenAI JSON.
#include "api/openai/openai_internal.h"
#include "api/openai/openai_schema.h"
#include "api/tools/tool_template.h"

namespace llmsync::api {

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
    d.tools_block = true;
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

Result<ReasoningHistory> ParseReasoningHistory(const Json& body) {
  if (!body.contains("reasoning_history") || body["reasoning_history"].is_null())
    return ReasoningHistory::kKeep;
  const Json& v = body["reasoning_history"];
  if (v == "keep") return ReasoningHistory::kKeep;
  if (v == "strip") return ReasoningHistory::kStrip;
  return Status::InvalidArgument("reasoning_history must be \"keep\" or \"strip\"");
}

Json ToolsDivergenceJson(const std::optional<ToolsDivergence>& d) {
  if (!d) return nullptr;
  return {{"tool", d->tool}, {"index", d->index}, {"change", d->change}, {"session", d->session.ToHex()}};
}

Json ReasoningHistoryJson(const Placement& placement) {
  return {{"policy", placement.reasoning_history == ReasoningHistory::kKeep ? "keep" : "strip"},
          {"turns", placement.reasoning_turns},
          {"tokens", placement.reasoning_tokens}};
}

}  // namespace llmsync::api
