// GET /v1/models and POST /v1/chat/completions (stream and non-stream) over the state log.
#include <atomic>

#include "api/compaction.h"
#include "api/openai/openai_internal.h"
#include "api/openai/openai_messages.h"
#include "api/openai/openai_schema.h"
#include "api/sse.h"

namespace llmsync::api {
namespace {

Json ModelJson(ServerContext& ctx) {
  return {{"id", ctx.model_name}, {"object", "model"}, {"created", 0}, {"owned_by", "llmsync"}};
}

std::string SystemFingerprint(const ServerContext& ctx) { return "fp_" + ctx.model_fingerprint.ShortHex(); }

// The text the client gets for a run: the result node's text (exactly what a later request must
// re-send to match the node), else what the token events carried.
std::string ResultText(ServerContext& ctx, const std::string& tenant, const Id& session,
                       const RunOutcome& o) {
  if (o.node.IsZero()) return o.text;
  auto node = ctx.sessions->GetNode(tenant, session, o.node);
  return node.IsOk() ? node->content.text : o.text;
}

Json ChatUsage(const Placement& placement, const std::vector<RunOutcome>& outcomes) {
  std::uint64_t prompt = outcomes.empty() ? 0 : PromptTokens(outcomes[0].cost);
  std::uint64_t cached = outcomes.empty() ? 0 : CachedTokens(outcomes[0].cost);
  std::uint64_t completion = 0;
  for (const RunOutcome& o : outcomes) {
    completion += o.cost.is_object() ? o.cost.value("generated_tokens", o.tokens) : o.tokens;
  }
  return {{"prompt_tokens", prompt},
          {"completion_tokens", completion},
          {"total_tokens", prompt + completion},
          {"prompt_tokens_details", {{"cached_tokens", cached}, {"audio_tokens", 0}}},
          {"completion_tokens_details",
           {{"reasoning_tokens", 0},
            {"audio_tokens", 0},
            {"accepted_prediction_tokens", 0},
            {"rejected_prediction_tokens", 0}}},
          {"reasoning_history", ReasoningHistoryJson(placement)}};
}

struct ChatRequest {
  std::string tenant;
  ToolSupport tools;
  bool parse = false;  // split outputs into content, reasoning_content and tool_calls
  Placement placement;
  std::vector<Id> runs;
  std::string id;
  std::int64_t created = 0;
  bool include_usage = false;
  Json compaction;  // the session.compacted report when the request compacted first (else null)
};

// The response's llmsync extension object.
Json ChatExtension(const ChatRequest& chat, const std::vector<RunOutcome>& outcomes) {
  Json ext = ExtensionJson(chat.placement, outcomes);
  ext["compaction"] = chat.compaction;
  return ext;
}

// The assistant message for a run's text; `finish` becomes "tool_calls" when it holds calls.
Json AssistantMessage(const ChatRequest& chat, const std::string& text, const Id& node, std::string* finish) {
  if (!chat.parse) return {{"role", "assistant"}, {"content", text}, {"refusal", nullptr}};
  ParsedOutput p = ParseModelOutput(chat.tools.family, text);
  bool null_content = !p.calls.empty() && p.content.empty();
  Json m = {{"role", "assistant"},
            {"content", null_content ? Json(nullptr) : Json(p.content)},
            {"refusal", nullptr}};
  if (!p.reasoning.empty()) m["reasoning_content"] = p.reasoning;
  if (!p.calls.empty()) {
    m["tool_calls"] = ToolCallsJson(chat.tools, p.calls, node);
    *finish = "tool_calls";
  }
  return m;
}

Result<HttpResponse> CompletionResponse(ServerContext& ctx, const ChatRequest& chat,
                                        const std::vector<RunOutcome>& outcomes) {
  Json choices = Json::array();
  for (std::size_t i = 0; i < outcomes.size(); ++i) {
    const RunOutcome& o = outcomes[i];
    if (o.status == "failed") return Status::Internal("generation failed: " + o.error);
    std::string finish = o.finish_reason.empty() ? "stop" : o.finish_reason;
    Json message =
        AssistantMessage(chat, ResultText(ctx, chat.tenant, chat.placement.session, o), o.node, &finish);
    choices.push_back(
        {{"index", i}, {"message", std::move(message)}, {"logprobs", nullptr}, {"finish_reason", finish}});
  }
  Json out = {{"id", chat.id},
              {"object", "chat.completion"},
              {"created", chat.created},
              {"model", ctx.model_name},
              {"system_fingerprint", SystemFingerprint(ctx)},
              {"choices", std::move(choices)},
              {"usage", ChatUsage(chat.placement, outcomes)},
              {"llmsync", ChatExtension(chat, outcomes)}};
  HttpResponse r = JsonResponse(200, DumpJson(out));
  SetPlacementHeaders(chat.placement, &r);
  return r;
}

// One chat.completion.chunk.
std::string Chunk(const ServerContext& ctx, const ChatRequest& chat, Json choices,
                  const Json* extra = nullptr) {
  Json j = {{"id", chat.id},
            {"object", "chat.completion.chunk"},
            {"created", chat.created},
            {"model", ctx.model_name},
            {"system_fingerprint", SystemFingerprint(ctx)},
            {"choices", std::move(choices)}};
  if (extra != nullptr) j.update(*extra);
  return "data: " + DumpJson(j) + "\n\n";
}

Json ChoiceDelta(std::size_t index, Json delta, const Json& finish_reason) {
  return Json::array({{{"index", index},
                       {"delta", std::move(delta)},
                       {"logprobs", nullptr},
                       {"finish_reason", finish_reason}}});
}

HttpResponse StreamChat(OpenAiState& st, ChatRequest chat) {
  ServerContext* ctx = st.ctx;
  HttpResponse r = SseResponse([ctx, chat](std::shared_ptr<StreamSink> sink) {
    struct Shared {
      std::mutex mu;
      std::vector<RunOutcome> outcomes;
      std::vector<std::size_t> streamed;  // content bytes sent per choice (parsed outputs)
      std::vector<std::size_t> reasoned;  // reasoning_content bytes sent per choice
      std::size_t remaining = 0;
    };
    auto shared = std::make_shared<Shared>();
    shared->outcomes.resize(chat.runs.size());
    shared->streamed.resize(chat.runs.size());
    shared->reasoned.resize(chat.runs.size());
    shared->remaining = chat.runs.size();
    for (std::size_t i = 0; i < chat.runs.size(); ++i) {
      shared->outcomes[i].run = chat.runs[i];
      sink->Write(Chunk(*ctx, chat, ChoiceDelta(i, {{"role", "assistant"}, {"content", ""}}, nullptr)));
      auto on_event = [ctx, chat, sink, shared, i](const store::RunEvent& e) {
        std::lock_guard<std::mutex> lock(shared->mu);
        RunOutcome& o = shared->outcomes[i];
        std::string text = ApplyRunEvent(e, &o);
        std::size_t& streamed = shared->streamed[i];
        std::size_t& reasoned = shared->reasoned[i];
        if (!text.empty() && !chat.parse)
          return sink->Write(Chunk(*ctx, chat, ChoiceDelta(i, {{"content", text}}, nullptr)));
        if (!text.empty()) {  // reasoning as it is generated, content no later markup can take back
          std::string out;
          std::string reasoning = StreamableReasoning(chat.tools.family, o.text);
          if (reasoning.size() > reasoned) {
            out += Chunk(*ctx, chat,
                         ChoiceDelta(i, {{"reasoning_content", reasoning.substr(reasoned)}}, nullptr));
            reasoned = reasoning.size();
          }
          std::string content = StreamableContent(chat.tools.family, o.text);
          if (content.size() > streamed) {
            out += Chunk(*ctx, chat, ChoiceDelta(i, {{"content", content.substr(streamed)}}, nullptr));
            streamed = content.size();
          }
          return out.empty() || sink->Write(std::move(out));
        }
        if (o.status == "completed" || o.status == "cancelled") {
          std::string reason = o.finish_reason.empty() ? "stop" : o.finish_reason;
          std::string out;
          if (chat.parse) {  // the rest of the parse: the sum of the deltas is the parsed message
            ParsedOutput p = ParseModelOutput(chat.tools.family, o.text);
            if (p.reasoning.size() > reasoned) {
              out += Chunk(*ctx, chat,
                           ChoiceDelta(i, {{"reasoning_content", p.reasoning.substr(reasoned)}}, nullptr));
            }
            if (p.content.size() > streamed)
              out += Chunk(*ctx, chat, ChoiceDelta(i, {{"content", p.content.substr(streamed)}}, nullptr));
            Json calls = ToolCallsJson(chat.tools, p.calls, o.node);
            for (std::size_t k = 0; k < calls.size(); ++k) {
              calls[k]["index"] = k;
              out += Chunk(*ctx, chat, ChoiceDelta(i, {{"tool_calls", Json::array({calls[k]})}}, nullptr));
            }
            if (!p.calls.empty()) reason = "tool_calls";
          }
          out += Chunk(*ctx, chat, ChoiceDelta(i, Json::object(), reason));
          return sink->Write(std::move(out));
        }
        if (o.status == "failed") {
          return sink->Write(
              "data: " + DumpJson({{"error", {{"code", "run_failed"}, {"message", o.error}}}}) + "\n\n");
        }
        return true;
      };
      auto on_end = [ctx, chat, sink, shared] {
        std::lock_guard<std::mutex> lock(shared->mu);
        if (--shared->remaining != 0) return;
        if (chat.include_usage) {
          Json extra = {{"usage", ChatUsage(chat.placement, shared->outcomes)},
                        {"llmsync", ChatExtension(chat, shared->outcomes)}};
          sink->Write(Chunk(*ctx, chat, Json::array(), &extra));
        }
        sink->Write("data: [DONE]\n\n");
        sink->Close();
      };
      auto sub = ctx->hub->Subscribe(chat.tenant, chat.runs[i], 0, on_event, on_end);
      if (!sub.IsOk()) {
        sink->Write("data: " +
                    DumpJson({{"error", {{"code", "not_found"}, {"message", sub.GetStatus().Message()}}}}) +
                    "\n\n");
        sink->Close();
        return;
      }
    }
  });
  SetPlacementHeaders(chat.placement, &r);
  return r;
}

// Submits the request's runs from chat.placement.node and answers (streamed or once they end).
// Nearing the budget, the next compaction starts once the first run ends.
Result<HttpResponse> SubmitChat(OpenAiState& st, ChatRequest chat, const runs::RunParams& params, int n,
                                bool stream, std::size_t body_bytes, const runs::ContextPolicy& policy) {
  ServerContext& ctx = *st.ctx;
  const Id session = chat.placement.session;
  LLMSYNC_ASSIGN_OR_RETURN(chat.runs,
                           SubmitRuns(ctx, chat.tenant, session, chat.placement.node, params, n, body_bytes));
  CompactAheadAfter(ctx, chat.tenant, session, chat.runs[0], policy, params.max_tokens);
  chat.id = "chatcmpl-" + chat.runs[0].ToHex();
  chat.created = UnixSeconds(ctx);
  if (stream) return StreamChat(st, std::move(chat));
  ServerContext* c = st.ctx;
  std::vector<Id> runs = chat.runs;
  return RespondWhenRunsEnd(
      ctx, chat.tenant, std::move(runs),
      [c, chat](const std::vector<RunOutcome>& outcomes) { return CompletionResponse(*c, chat, outcomes); });
}

// What a chat completion request asks, parsed, until it is placed and answered.
struct ChatTurn {
  ChatRequest chat;
  std::vector<MessageDraft> drafts;
  text::jinja::Value template_tools;
  ReasoningHistory reasoning;
  runs::RunParams params;
  int n = 1;
  bool stream = false;
  std::size_t body_bytes = 0;
  runs::ContextPolicy policy;
};

// Places the messages and answers: at once, or past the budget once the session is compacted.
// With `may_wait`, a session being compacted ahead of time is placed again once that ends (the
// walk then lands on the compacted branch) rather than compacted a second time.
Result<HttpResponse> PlaceAndAnswer(OpenAiState& st, const Id& session, ChatTurn turn, bool may_wait) {
  ServerContext& ctx = *st.ctx;
  ChatRequest& chat = turn.chat;
  OpenAiState* sp = &st;
  if (may_wait && turn.policy.mode != runs::ContextMode::kNone && ctx.compactions_ahead != nullptr &&
      ctx.compactions_ahead->Running(session)) {
    // Placed for real only once it ends: messages appended to the original branch now would
    // make it the deeper match, and the request would compact it a second time.
    LLMSYNC_ASSIGN_OR_RETURN(Placement dry, st.index.Place(chat.tenant, session, Id(), turn.drafts,
                                                           turn.template_tools, turn.reasoning, true));
    LLMSYNC_ASSIGN_OR_RETURN(bool past, NeedsCompaction(ctx, dry.path, turn.policy, turn.params.max_tokens));
    if (past) {
      auto shared = std::make_shared<ChatTurn>(turn);
      bool waited = false;
      HttpResponse r = RespondAfterAhead(ctx, session, turn.stream, &waited, [sp, session, shared] {
        Result<HttpResponse> again = PlaceAndAnswer(*sp, session, *shared, false);
        return again.IsOk() ? std::move(again).Value() : OpenAiErrorResponse(again.GetStatus(), "messages");
      });
      if (waited) return r;
    }
  }
  LLMSYNC_ASSIGN_OR_RETURN(chat.placement, st.index.Place(chat.tenant, session, Id(), turn.drafts,
                                                          turn.template_tools, turn.reasoning));
  LLMSYNC_ASSIGN_OR_RETURN(bool compact,
                           NeedsCompaction(ctx, chat.placement.path, turn.policy, turn.params.max_tokens));
  if (!compact) {
    return SubmitChat(st, std::move(chat), turn.params, turn.n, turn.stream, turn.body_bytes, turn.policy);
  }
  // Past the budget: compact onto a branch first (the index finds it again when the client
  // re-sends this history), then run there.
  CompactionJob job{chat.tenant, session, chat.placement.path, turn.policy, false, turn.params.sampling.seed};
  auto shared = std::make_shared<ChatTurn>(std::move(turn));
  return RespondAfterCompaction(
      ctx, std::move(job), shared->stream, [sp, shared](Result<CompactionReport> report) {
        if (!report.IsOk()) return OpenAiErrorResponse(report.GetStatus(), "messages");
        ChatRequest c = shared->chat;
        c.placement.node = report->compacted_tip;
        c.compaction = CompactionJson(*report);
        Result<HttpResponse> r = SubmitChat(*sp, std::move(c), shared->params, shared->n, shared->stream,
                                            shared->body_bytes, shared->policy);
        return r.IsOk() ? std::move(r).Value() : OpenAiErrorResponse(r.GetStatus(), "messages");
      });
}

// llmsync's extension of a chat completion request: {"llmsync": {"context": {...}}}, the native
// context policy (docs/PROTOCOL.md); none when absent.
Result<runs::ContextPolicy> ChatContextPolicy(const ServerContext& ctx, const Json& body) {
  if (!body.contains("llmsync") || body["llmsync"].is_null()) return runs::ContextPolicy{};
  if (!body["llmsync"].is_object()) return Status::InvalidArgument("llmsync must be an object");
  const Json& ext = body["llmsync"];
  if (!ext.contains("context") || ext["context"].is_null()) return runs::ContextPolicy{};
  auto policy = ParseContextPolicy(ext["context"], ctx.max_context);
  if (!policy.IsOk()) return Status::InvalidArgument("llmsync." + policy.GetStatus().Message());
  return policy;
}

HttpResponse ChatCompletions(OpenAiState& st, const HttpRequest& req) {
  ServerContext& ctx = *st.ctx;
  return OpenAiGuarded(ctx, req, "messages", [&](const std::string& tenant) -> Result<HttpResponse> {
    ctx.metrics->GetCounter("llmsync_openai_requests_total", "OpenAI-compatible requests")->Add();
    LLMSYNC_ASSIGN_OR_RETURN(Json body, ParseJsonObject(req.body));
    if (auto model_error = ModelError(ctx, body)) return std::move(*model_error);
    if (!body.contains("messages")) return Status::InvalidArgument("messages is required");
    LLMSYNC_ASSIGN_OR_RETURN(std::vector<MessageDraft> drafts, ChatMessagesToDrafts(body["messages"]));
    LLMSYNC_ASSIGN_OR_RETURN(runs::RunParams params, ParseOpenAiRunParams(body, "max_completion_tokens"));
    LLMSYNC_RETURN_IF_ERROR(runs::ValidateRunParams(params, runs::RunLimits{}));
    if (body.contains("response_format")) {
      LLMSYNC_ASSIGN_OR_RETURN(params.constraint, ConstraintSpecFor(body["response_format"], false));
      LLMSYNC_RETURN_IF_ERROR(CheckConstraintFits(params.constraint, params.max_tokens));
    }
    LLMSYNC_ASSIGN_OR_RETURN(int n, ParseChoiceCount(body));
    LLMSYNC_ASSIGN_OR_RETURN(bool stream, OptionalBool(body, "stream", false));
    LLMSYNC_ASSIGN_OR_RETURN(ReasoningHistory reasoning, ParseReasoningHistory(body));
    LLMSYNC_ASSIGN_OR_RETURN(runs::ContextPolicy policy, ChatContextPolicy(ctx, body));
    std::optional<HttpResponse> tool_error;
    auto plan = PlanTools(st, body, req.body, false, &drafts, &params, &tool_error);
    if (tool_error) return std::move(*tool_error);
    LLMSYNC_RETURN_IF_ERROR(plan.GetStatus());
    ChatRequest chat;
    chat.tenant = tenant;
    chat.tools = st.tools;
    chat.parse = plan->parse;
    if (body.contains("stream_options") && !body["stream_options"].is_null()) {
      if (!body["stream_options"].is_object())
        return Status::InvalidArgument("stream_options must be an object");
      LLMSYNC_ASSIGN_OR_RETURN(chat.include_usage,
                               OptionalBool(body["stream_options"], "include_usage", false));
    }
    LLMSYNC_ASSIGN_OR_RETURN(Id session, st.index.SessionFor(tenant, plan->session_tools));
    st.index.RememberTools(tenant, session, ToolDigests(plan->request));
    ChatTurn turn{std::move(chat),
                  std::move(drafts),
                  plan->template_tools,
                  reasoning,
                  params,
                  n,
                  stream,
                  req.body.size(),
                  policy};
    return PlaceAndAnswer(st, session, std::move(turn), true);
  });
}

}  // namespace

void AddChatRoutes(Router& router, const std::shared_ptr<OpenAiState>& state) {
  ServerContext* c = state->ctx;
  router.Add("GET", "/v1/models", [c](const HttpRequest& r, const PathParams&) {
    return OpenAiGuarded(*c, r, "", [&](const std::string&) -> Result<HttpResponse> {
      Json out = {{"object", "list"}, {"data", Json::array({ModelJson(*c)})}};
      return JsonResponse(200, DumpJson(out));
    });
  });
  router.Add("GET", "/v1/models/{id}", [c](const HttpRequest& r, const PathParams& p) {
    return OpenAiGuarded(*c, r, "", [&](const std::string&) -> Result<HttpResponse> {
      if (p.at("id") != c->model_name) {
        Json error = {{"error",
                       {{"message", "The model '" + p.at("id") + "' does not exist"},
                        {"type", "invalid_request_error"},
                        {"param", "model"},
                        {"code", "model_not_found"}}}};
        return JsonResponse(404, error.dump(-1, ' ', false, Json::error_handler_t::replace));
      }
      return JsonResponse(200, DumpJson(ModelJson(*c)));
    });
  });
  router.Add("POST", "/v1/chat/completions",
             [state](const HttpRequest& r, const PathParams&) { return ChatCompletions(*state, r); });
}

}  // namespace llmsync::api
