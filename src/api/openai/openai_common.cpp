#include "api/compaction.h"
#include "api/openai/openai_api.h"
#include "api/openai/openai_internal.h"
#include "base/logging.h"

namespace llmsync::api {
namespace {

Result<double> OptionalNumber(const Json& body, const char* key, double fallback) {
  if (!body.contains(key) || body[key].is_null()) return fallback;
  if (!body[key].is_number()) return Status::InvalidArgument(std::string(key) + " must be a number");
  return body[key].get<double>();
}

Result<std::int64_t> OptionalInteger(const Json& body, const char* key, std::int64_t fallback) {
  if (!body.contains(key) || body[key].is_null()) return fallback;
  if (!body[key].is_number_integer())
    return Status::InvalidArgument(std::string(key) + " must be an integer");
  if (body[key].is_number_unsigned()) {
    std::uint64_t v = body[key].get<std::uint64_t>();
    if (v > static_cast<std::uint64_t>(INT64_MAX))
      return Status::InvalidArgument(std::string(key) + " is too large");
    return static_cast<std::int64_t>(v);
  }
  return body[key].get<std::int64_t>();
}

}  // namespace

Result<bool> OptionalBool(const Json& body, const char* key, bool fallback) {
  if (!body.contains(key) || body[key].is_null()) return fallback;
  if (!body[key].is_boolean()) return Status::InvalidArgument(std::string(key) + " must be a boolean");
  return body[key].get<bool>();
}

Result<runs::RunParams> ParseOpenAiRunParams(const Json& body, const char* max_tokens_key) {
  runs::RunParams p;
  LLMSYNC_ASSIGN_OR_RETURN(double temperature, OptionalNumber(body, "temperature", 1.0));
  if (temperature < 0 || temperature > 2) return Status::InvalidArgument("temperature must be in [0, 2]");
  p.sampling.temperature = static_cast<float>(temperature);
  LLMSYNC_ASSIGN_OR_RETURN(double top_p, OptionalNumber(body, "top_p", 1.0));
  p.sampling.top_p = static_cast<float>(top_p);
  LLMSYNC_ASSIGN_OR_RETURN(double min_p, OptionalNumber(body, "min_p", 0.0));
  p.sampling.min_p = static_cast<float>(min_p);
  LLMSYNC_ASSIGN_OR_RETURN(double repeat, OptionalNumber(body, "repeat_penalty", 1.0));
  p.sampling.repeat_penalty = static_cast<float>(repeat);
  LLMSYNC_ASSIGN_OR_RETURN(std::int64_t top_k, OptionalInteger(body, "top_k", 0));
  if (top_k < 0 || top_k > INT32_MAX) return Status::InvalidArgument("top_k must be a non-negative integer");
  p.sampling.top_k = static_cast<std::int32_t>(top_k);
  LLMSYNC_ASSIGN_OR_RETURN(std::int64_t seed, OptionalInteger(body, "seed", 0));
  p.sampling.seed = static_cast<std::uint64_t>(seed);
  std::int64_t max_tokens = p.max_tokens;
  LLMSYNC_ASSIGN_OR_RETURN(max_tokens, OptionalInteger(body, "max_tokens", max_tokens));
  LLMSYNC_ASSIGN_OR_RETURN(max_tokens, OptionalInteger(body, max_tokens_key, max_tokens));
  if (max_tokens < 1 || max_tokens > INT32_MAX) {
    bool own_key = body.contains(max_tokens_key) && !body[max_tokens_key].is_null();
    return Status::InvalidArgument(std::string(own_key ? max_tokens_key : "max_tokens") +
                                   " must be at least 1");
  }
  p.max_tokens = static_cast<std::int32_t>(max_tokens);
  for (const char* ignored : {"frequency_penalty", "presence_penalty"}) {
    LLMSYNC_RETURN_IF_ERROR(OptionalNumber(body, ignored, 0.0).GetStatus());
  }
  LLMSYNC_ASSIGN_OR_RETURN(p.stop, ParseStopStrings(body));
  return p;
}

Result<int> ParseChoiceCount(const Json& body) {
  LLMSYNC_ASSIGN_OR_RETURN(std::int64_t n, OptionalInteger(body, "n", 1));
  if (n < 1 || n > 8) return Status::InvalidArgument("n must be between 1 and 8");
  return static_cast<int>(n);
}

Result<std::vector<Id>> SubmitRuns(ServerContext& ctx, const std::string& tenant, const Id& session,
                                   const Id& from, const runs::RunParams& params, int n,
                                   std::uint64_t request_bytes) {
  std::vector<Id> ids;
  for (int i = 0; i < n; ++i) {
    runs::SubmitRequest submit;
    submit.tenant = tenant;
    submit.session = session;
    submit.from_node = from;
    submit.params = params;
    submit.params.sampling.seed = params.sampling.seed + static_cast<std::uint64_t>(i);
    submit.request_bytes = i == 0 ? request_bytes : 0;
    submit.stateless_equivalent_bytes = i == 0 ? request_bytes : 0;  // the request is stateless
    // The first sample prefills alone; the scheduler admits the others once it has, and they
    // find the whole prompt shared in the KV cache.
    if (i > 0) submit.after_prefill_of = ids[0];
    // A branch compacted ahead of time may still be prefilling: its KV is this run's prefix.
    if (i == 0 && ctx.compactions_ahead != nullptr)
      submit.after_prefill_of = ctx.compactions_ahead->PrefillRun(session);
    LLMSYNC_ASSIGN_OR_RETURN(store::RunRecord run, ctx.scheduler->Submit(submit));
    ctx.metrics->GetCounter("llmsync_runs_total", "Runs started")->Add();
    ids.push_back(run.id);
  }
  ctx.metrics->GetCounter("llmsync_turn_request_bytes_total", "Bytes clients sent for their turns")
      ->Add(request_bytes);
  ctx.metrics
      ->GetCounter("llmsync_stateless_equivalent_bytes_total",
                   "Bytes the same turns would have cost as stateless full-history requests")
      ->Add(request_bytes);
  return ids;
}

Json DivergenceJson(const std::optional<MessageDivergence>& d) {
  if (!d) return nullptr;
  return {{"message_index", d->message_index},
          {"char_offset", d->char_offset},
          {"byte_offset", d->byte_offset},
          {"node", d->node.ToHex()}};
}

std::string DivergenceHeader(const MessageDivergence& d) {
  return "message=" + std::to_string(d.message_index) + "; offset=" + std::to_string(d.char_offset) +
         "; byte_offset=" + std::to_string(d.byte_offset) + "; node=" + d.node.ToHex();
}

Json ExtensionJson(const Placement& placement, const std::vector<RunOutcome>& outcomes) {
  Json runs = Json::array();
  for (const RunOutcome& o : outcomes) {
    runs.push_back({{"id", o.run.ToHex()},
                    {"node", o.node.IsZero() ? Json(nullptr) : Json(o.node.ToHex())},
                    {"cost", o.cost}});
  }
  return {{"session", placement.session.ToHex()},
          {"node", placement.node.ToHex()},
          {"reused_nodes", placement.reused_nodes},
          {"appended_nodes", placement.appended_nodes},
          {"reused_tokens", placement.reused_tokens},
          {"divergence", DivergenceJson(placement.divergence)},
          {"reasoning_history", ReasoningHistoryJson(placement)},
          {"tools_divergence", ToolsDivergenceJson(placement.tools_divergence)},
          {"runs", std::move(runs)}};
}

void SetPlacementHeaders(const Placement& placement, HttpResponse* response) {
  response->SetHeader("X-Llmsync-Session", placement.session.ToHex());
  response->SetHeader("X-Llmsync-Node", placement.node.ToHex());
  if (placement.divergence)
    response->SetHeader("X-Llmsync-Divergence", DivergenceHeader(*placement.divergence));
  if (const auto& t = placement.tools_divergence) {
    response->SetHeader("X-Llmsync-Tools-Divergence",
                        "tool=" + t->tool + "; change=" + t->change + "; index=" + std::to_string(t->index));
  }
}

std::int64_t UnixSeconds(ServerContext& ctx) { return ctx.env->UnixMillis() / 1000; }

void AddOpenAiRoutes(Router& router, ServerContext& ctx) {
  auto state = std::make_shared<OpenAiState>(&ctx);
  LLMSYNC_LOG(kInfo) << "tool-call family: " << ToolFamilyName(state->tools.family)
                     << (state->tools.renders_tools ? ""
                                                    : " (the template ignores tools: generic system block)")
                     << (state->tools.thinks ? "; <think> reasoning is split off" : "");
  AddChatRoutes(router, state);
  AddResponseRoutes(router, state);
  AddCompletionRoutes(router, state);
}

}  // namespace llmsync::api

namespace llmsync::api {
namespace {

std::string_view ErrorType(int http_status) {
  if (http_status == 401) return "authentication_error";
  if (http_status == 403) return "permission_error";
  if (http_status == 429) return "requests";
  if (http_status >= 500) return "server_error";
  return "invalid_request_error";
}

// The request field a validation message starts with ("max_tokens must be ...",
// "messages[1].content is required"), or null.
Json ParamOf(const std::string& message) {
  static const std::set<std::string, std::less<>> kFields = {"messages",
                                                             "input",
                                                             "model",
                                                             "temperature",
                                                             "top_p",
                                                             "min_p",
                                                             "repeat_penalty",
                                                             "top_k",
                                                             "seed",
                                                             "max_tokens",
                                                             "max_completion_tokens",
                                                             "max_output_tokens",
                                                             "n",
                                                             "stream",
                                                             "stream_options",
                                                             "stop",
                                                             "response_format",
                                                             "text",
                                                             "tools",
                                                             "tool_choice",
                                                             "parallel_tool_calls",
                                                             "reasoning_history",
                                                             "previous_response_id",
                                                             "instructions",
                                                             "background",
                                                             "store",
                                                             "frequency_penalty",
                                                             "presence_penalty",
                                                             "include",
                                                             "metadata"};
  std::string token = message.substr(0, message.find(' '));
  std::size_t root = token.find_first_of(".[");
  if (kFields.count(std::string_view(token).substr(0, root)) == 0) return nullptr;
  return token;
}

}  // namespace

HttpResponse OpenAiErrorResponse(const Status& status, std::string_view input_param) {
  int http = HttpStatusFor(status.Code());
  std::string code(StatusCodeName(status.Code()));
  Json param = nullptr;
  if (runs::IsContextLengthExceeded(status)) {
    http = 400;
    code = "context_length_exceeded";
    param = std::string(input_param);
  } else if (status.Code() == StatusCode::kInvalidArgument) {
    param = ParamOf(status.Message());
  }
  Json body = {{"error",
                {{"message", status.Message()},
                 {"type", std::string(ErrorType(http))},
                 {"param", std::move(param)},
                 {"code", std::move(code)}}}};
  HttpResponse r = JsonResponse(http, body.dump(-1, ' ', false, Json::error_handler_t::replace));
  if (http == 503 || http == 429) r.SetHeader("Retry-After", "1");
  return r;
}

HttpResponse OpenAiShaped(HttpResponse response) {
  if (response.deferred) {
    auto inner = std::move(response.deferred);
    response.deferred = [inner](std::function<void(HttpResponse)> finish) {
      inner([finish](HttpResponse done) { finish(OpenAiShaped(std::move(done))); });
    };
    return response;
  }
  if (response.status < 400) return response;
  Json body = Json::parse(response.body, nullptr, false);
  if (!body.is_object() || !body.contains("error") || !body["error"].is_object()) return response;
  Json& error = body["error"];
  if (error.contains("type") && error.contains("param")) return response;
  if (!error.contains("type")) error["type"] = std::string(ErrorType(response.status));
  if (!error.contains("param")) error["param"] = nullptr;
  response.body = body.dump(-1, ' ', false, Json::error_handler_t::replace);
  return response;
}

std::optional<HttpResponse> ModelError(const ServerContext& ctx, const Json& body) {
  if (!body.contains("model") || body["model"].is_null()) return std::nullopt;
  if (!body["model"].is_string())
    return OpenAiErrorResponse(Status::InvalidArgument("model must be a string"), "");
  if (ctx.config == nullptr || !ctx.config->strict_model_names) return std::nullopt;
  std::string name = body["model"].get<std::string>();
  std::string file = ctx.config->model_path.substr(ctx.config->model_path.find_last_of('/') + 1);
  std::string stem = file.size() > 5 && file.ends_with(".gguf") ? file.substr(0, file.size() - 5) : file;
  if (name == ctx.model_name || name == ctx.model_fingerprint.ToHex() || (!file.empty() && name == file) ||
      (!stem.empty() && name == stem)) {
    return std::nullopt;
  }
  Json error = {{"error",
                 {{"message", "The model '" + name + "' does not exist; this server serves '" +
                                  ctx.model_name + "' (GET /v1/models)"},
                  {"type", "invalid_request_error"},
                  {"param", "model"},
                  {"code", "model_not_found"}}}};
  return JsonResponse(404, error.dump(-1, ' ', false, Json::error_handler_t::replace));
}

}  // namespace llmsync::api
