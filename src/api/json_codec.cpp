#include "api/json_codec.h"

#include "base/base64url.h"

namespace llmsync::api {
namespace {

Json IdOrNull(const Id& id) { return id.IsZero() ? Json(nullptr) : Json(id.ToHex()); }

}  // namespace

std::string DumpJson(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

Result<std::vector<std::string>> ParseStopStrings(const Json& body) {
  std::vector<std::string> stop;
  if (!body.contains("stop") || body["stop"].is_null()) return stop;
  const Json& field = body["stop"];
  const Status bad_shape = Status::InvalidArgument("stop must be a string or an array of strings");
  if (field.is_string()) {
    stop.push_back(field.get<std::string>());
  } else if (field.is_array()) {
    for (const Json& s : field) {
      if (!s.is_string()) return bad_shape;
      stop.push_back(s.get<std::string>());
    }
  } else {
    return bad_shape;
  }
  for (const std::string& s : stop) {
    if (s.empty()) return Status::InvalidArgument("stop strings must not be empty");
  }
  return stop;
}

Json NodeJson(const session::Node& node, bool include_tokens) {
  Json j = {{"id", node.id.ToHex()},
            {"parent", IdOrNull(node.parent)},
            {"seq", node.seq},
            {"depth", node.depth},
            {"kind", session::NodeKindName(node.content.kind)},
            {"visibility", session::VisibilityName(node.content.visibility)},
            {"n_tokens", node.token_count},
            {"created_at", node.created_at_ms}};
  if (!node.IsHidden()) j["text"] = node.content.text;
  if (node.purged) j["purged"] = true;
  if (!node.content.tool_name.empty() || !node.content.call_id.empty()) {
    j["metadata"] = {{"tool_name", node.content.tool_name}, {"call_id", node.content.call_id}};
  }
  if (!node.sealed.empty()) j["sealed"] = Base64UrlEncode(node.sealed);
  if (include_tokens && !node.IsHidden()) j["tokens"] = node.content.tokens;
  return j;
}

Json UsageJson(const store::RunUsage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"cached_tokens", {{"ram", u.prompt_tokens_ram}, {"disk", u.prompt_tokens_disk}}},
          {"recomputed_tokens", u.prompt_tokens_recomputed},
          {"generated_tokens", u.generated_tokens}};
}

Json CostJson(const runs::CostReport& c) {
  Json j = UsageJson(c.usage);
  j["request_bytes"] = c.request_bytes;
  j["stateless_equivalent_bytes"] = c.stateless_equivalent_bytes;
  j["ttft_ms"] = c.ttft_ms;
  j["decode_tokens_per_s"] = c.decode_tokens_per_s;
  j["divergence"] = c.divergence
                        ? Json{{"position", c.divergence->position}, {"node", IdOrNull(c.divergence->node)}}
                        : Json(nullptr);
  if (c.upstream) {
    const runs::UpstreamCost& u = *c.upstream;
    j["upstream"] = {{"url", u.upstream},
                     {"kind", u.kind},
                     {"prompt_tokens", u.prompt_tokens ? Json(*u.prompt_tokens) : Json(nullptr)},
                     {"cached_tokens", u.cached_tokens ? Json(*u.cached_tokens) : Json(nullptr)},
                     {"cached_field", u.cached_field.empty() ? Json(nullptr) : Json(u.cached_field)},
                     {"expected_cached_tokens", u.expected_cached_tokens},
                     {"attempts", u.attempts},
                     {"reason", u.reason.empty() ? Json(nullptr) : Json(u.reason)},
                     {"matched_tokens", u.matched_tokens}};
  }
  if (c.dispatch) j["dispatch"] = DispatchJson(*c.dispatch);
  return j;
}

Json DispatchJson(const store::RunPlacement& p) {
  return {{"engine", p.engine.empty() ? Json(nullptr) : Json(p.engine)},
          {"target", p.target.empty() ? Json(nullptr) : Json(p.target)},
          {"reason", p.reason.empty() ? Json(nullptr) : Json(p.reason)},
          {"matched_tokens", p.matched_tokens}};
}

Json RunJson(const store::RunRecord& run, const Json* cost) {
  Json j = {{"id", run.id.ToHex()},
            {"session", run.session.ToHex()},
            {"from", IdOrNull(run.from_node)},
            {"status", store::RunStatusName(run.status)},
            {"node_id", IdOrNull(run.result_node)},
            {"created_at", run.created_at_ms},
            {"updated_at", run.updated_at_ms},
            {"last_event_id", run.last_event_id}};
  j["usage"] = cost != nullptr ? *cost : UsageJson(run.usage);
  if (!run.error.empty()) j["error"] = run.error;
  return j;
}

runs::EventCodec MakeEventCodec() {
  runs::EventCodec codec;
  codec.encode = [](const runs::EventBody& body) -> std::string {
    struct Visitor {
      Json operator()(const runs::StartedEvent& e) const {
        return {{"session", e.session.ToHex()},
                {"from", IdOrNull(e.from_node)},
                {"prompt_tokens", e.prompt_tokens},
                {"resumed", e.resumed}};
      }
      Json operator()(const runs::TokenEvent& e) const {
        return {{"text", e.text}, {"token_id", e.token_id}};
      }
      Json operator()(const runs::UsageEvent& e) const { return CostJson(e.cost); }
      Json operator()(const runs::CompletedEvent& e) const {
        return {{"node_id", IdOrNull(e.node_id)}, {"finish_reason", e.finish_reason}};
      }
      Json operator()(const runs::FailedEvent& e) const { return {{"code", e.code}, {"message", e.message}}; }
      Json operator()(const runs::CancelledEvent&) const { return Json::object(); }
      Json operator()(const runs::UpstreamEvent& e) const {
        return {{"upstream", e.upstream},
                {"kind", e.kind},
                {"attempt", e.attempt},
                {"from_token", e.from_token},
                {"previous_error", e.previous_error.empty() ? Json(nullptr) : Json(e.previous_error)},
                {"continuation", e.exact ? "exact" : "may_differ"},
                {"token_ids", e.token_ids ? "upstream" : "retokenized"},
                {"prompt", e.text_prompt ? "text" : "token_ids"},
                {"reason", e.reason.empty() ? Json(nullptr) : Json(e.reason)},
                {"matched_tokens", e.matched_tokens}};
      }
    };
    return DumpJson(std::visit(Visitor{}, body));
  };
  codec.decode_token = [](std::string_view payload) -> Result<runs::TokenEvent> {
    Json j = Json::parse(payload, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("token_id") || !j["token_id"].is_number_integer()) {
      return Status::DataLoss("a stored token event is malformed");
    }
    runs::TokenEvent e;
    e.token_id = j["token_id"].get<std::int32_t>();
    if (j.contains("text") && j["text"].is_string()) e.text = j["text"].get<std::string>();
    return e;
  };
  return codec;
}

}  // namespace llmsync::api
