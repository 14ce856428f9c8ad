// Shared pieces of the OpenAI-compatible handlers (openai_*.cpp): request parsing into run
// parameters, submitting runs where a placement ended, and the `llmsync` extension object.
//
// Thread safety: OpenAiState is safe for concurrent use (the index locks itself; `deleted` has its
// own mutex); the functions are otherwise pure or use thread-safe components.
#pragma once

#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "api/openai/openai_index.h"
#include "api/openai/openai_runs.h"
#include "api/router.h"
#include "api/tools/tool_format.h"
#include "api/tools/tool_request.h"
#include "api/tools/tool_support.h"
#include "runs/run_params.h"

namespace llmsync::api {

struct OpenAiState {
  explicit OpenAiState(ServerContext* c) : ctx(c), tools(ToolSupportFor(*c)), index(c, tools.family) {}
  ServerContext* ctx;
  ToolSupport tools;
  ConversationIndex index;
};

// The tool fields of a request, validated: a 400 response (OpenAI shape, naming `param`) in
// `error` when they are not. On success, `drafts` gains the generic tools system message when the
// template does not render tools, `params.constraint` the tool-call grammar, and `template_tools`
// / `session_tools` what the placement needs.
struct ToolPlan {
  ToolRequest request;
  text::jinja::Value template_tools = text::jinja::Value::None();
  Id session_tools;
  bool parse = false;  // outputs are parsed into content / reasoning / tool calls
};
Result<ToolPlan> PlanTools(const OpenAiState& st, const Json& body, std::string_view raw_body,
                           bool responses_shape, std::vector<MessageDraft>* drafts, runs::RunParams* params,
                           std::optional<HttpResponse>* error);

// `reasoning_history` ("keep", the default, or "strip"): a 400 naming the field otherwise.
Result<ReasoningHistory> ParseReasoningHistory(const Json& body);
// {"policy", "turns", "tokens"}: the earlier turns whose reasoning the placement kept in the prompt
// (keep) or left out (strip), and its tokens.
Json ReasoningHistoryJson(const Placement& placement);
// {"tool", "index", "change", "session"} or null.
Json ToolsDivergenceJson(const std::optional<ToolsDivergence>& d);

// What the OpenAI request fields ask of each run (temperature, top_p, max_tokens or
// max_completion_tokens / max_output_tokens, stop, seed, plus llmsync's top_k, min_p,
// repeat_penalty). OpenAI's defaults: temperature 1, top_p 1.
Result<runs::RunParams> ParseOpenAiRunParams(const Json& body, const char* max_tokens_key);
// `n` (1 when absent); kInvalidArgument outside [1, 8].
Result<int> ParseChoiceCount(const Json& body);
// An optional boolean field.
Result<bool> OptionalBool(const Json& body, const char* key, bool fallback);

// Submits `n` runs from `from` in `session` (seeds seed, seed+1, ...). With n > 1 the first run is
// submitted alone and the others once it has produced its first token: by then the prompt's KV
// rows are published in the radix index, so the samples share one prefill.
Result<std::vector<Id>> SubmitRuns(ServerContext& ctx, const std::string& tenant, const Id& session,
                                   const Id& from, const runs::RunParams& params, int n,
                                   std::uint64_t request_bytes);

Json DivergenceJson(const std::optional<MessageDivergence>& d);
// "message=2; offset=17; byte_offset=17; node=<hex>", for X-Llmsync-Divergence.
std::string DivergenceHeader(const MessageDivergence& d);
// The `llmsync` extension object: session, node, runs, reuse and divergence, cost per run.
Json ExtensionJson(const Placement& placement, const std::vector<RunOutcome>& outcomes);
// Sets the X-Llmsync-* headers of a placement on a response.
void SetPlacementHeaders(const Placement& placement, HttpResponse* response);

// Errors in OpenAI's shape: {"error": {"message", "type", "param", "code"}}. `type` follows the
// HTTP status (invalid_request_error for 4xx, authentication_error for 401, requests for 429,
// server_error for 5xx); `param` is the request field a 400 names (its message starts with the
// field path, "messages[2].content is required"), else null; `code` is llmsync's status code name
// except for OpenAI's own codes: a prompt longer than the context is 400
// `context_length_exceeded` with param `input_param` ("messages" or "input").
HttpResponse OpenAiErrorResponse(const Status& status, std::string_view input_param);
// `response` with OpenAI's `type` and `param` added to an error body built elsewhere (the auth
// check, a deferred response's failure); other responses unchanged.
HttpResponse OpenAiShaped(HttpResponse response);

// Guarded (server_context.h) for the OpenAI views: every error leaves in OpenAI's shape.
template <typename Fn>
HttpResponse OpenAiGuarded(const ServerContext& ctx, const HttpRequest& req, std::string_view input_param,
                           Fn&& fn) {
  auto tenant = RequireTenant(ctx, req);
  if (!tenant.IsOk()) return OpenAiShaped(AuthError(tenant.GetStatus()));
  Result<HttpResponse> r = fn(*tenant);
  if (!r.IsOk()) return OpenAiErrorResponse(r.GetStatus(), input_param);
  return OpenAiShaped(std::move(r).Value());
}

// The 404 `model_not_found` for a `model` this server does not answer to, when
// `strict_model_names` is on: the served model's name, its file's name with or without `.gguf`,
// and its fingerprint are accepted. Off (the default), any name is served by the one model.
// A `model` that is not a string is a 400 either way.
std::optional<HttpResponse> ModelError(const ServerContext& ctx, const Json& body);

std::int64_t UnixSeconds(ServerContext& ctx);
// Registers the chat and model routes (openai_chat.cpp) and the Responses routes.
void AddChatRoutes(Router& router, const std::shared_ptr<OpenAiState>& state);
void AddResponseRoutes(Router& router, const std::shared_ptr<OpenAiState>& state);
// POST /v1/completions (openai_completions.cpp): string or token-id prompts, token ids out.
void AddCompletionRoutes(Router& router, const std::shared_ptr<OpenAiState>& state);

}  // namespace llmsync::api
