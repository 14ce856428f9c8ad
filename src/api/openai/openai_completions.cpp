// POST /v1/completions (OpenAI's legacy text completions, stream and non-stream). The prompt is a
// string or an array of token ids; llmsync answers as an upstream engine for another llmsync
// (`--engine-url`), llama-server-style clients and benchmarks, so token ids go in and come out:
// every choice carries `token_ids` (the generated ids, the end-of-generation token included).
//
// The prompt becomes one template node (frozen exactly as sent, no chat template) at the root of
// the tenant's completions session; content addressing makes a repeated prompt the same node, and
// the KV radix index shares any common token prefix whatever the node. The run continues the
// node's tokens as they are (no generation prompt).
#include <atomic>

#include "api/openai/openai_internal.h"
#include "api/sse.h"
#include "base/sha256.h"
#include "runs/run_events.h"
#include "text/utf8.h"

namespace llmsync::api {
namespace {

struct CompletionRequest {
  std::string tenant;
  Placement placement;
  std::vector<Id> runs;
  std::string id;
  std::int64_t created = 0;
  bool include_usage = false;
};

// The completions session of a tenant: apart from the chat session, keyed by a fixed digest.
Id CompletionsKey() { return Id(Sha256::Hash(std::string_view("llmsync/openai-completions/v1"))); }

std::string ValidUtf8(std::string_view text) {
  std::string out;
  while (!text.empty()) {
    std::optional<std::size_t> bad = text::FindInvalidUtf8(text);
    if (!bad) {
      out.append(text);
      break;
    }
    out.append(text.substr(0, *bad)).append("\xEF\xBF\xBD");
    text.remove_prefix(*bad + 1);
  }
  return out;
}

Result<std::vector<text::TokenId>> PromptTokenIds(const ServerContext& ctx, const Json& body) {
  if (!body.contains("prompt")) return Status::InvalidArgument("prompt is required");
  const Json& prompt = body["prompt"];
  const text::Tokenizer& tok = ctx.conversation->GetTokenizer();
  std::vector<text::TokenId> ids;
  if (prompt.is_string()) {
    text::EncodeOptions eo;
    eo.parse_special = true;  // a raw prompt spells the template's markers, as llama-server reads it
    eo.add_bos = tok.Specials().add_bos && tok.Specials().bos.has_value();
    LLMSYNC_ASSIGN_OR_RETURN(ids, tok.Encode(prompt.get<std::string>(), eo));
  } else if (prompt.is_array() && !prompt.empty() && prompt[0].is_number_integer()) {
    for (std::size_t i = 0; i < prompt.size(); ++i) {
      if (!prompt[i].is_number_integer() || prompt[i].get<std::int64_t>() < 0 ||
          prompt[i].get<std::int64_t>() >= tok.VocabSize()) {
        return Status::InvalidArgument("prompt[" + std::to_string(i) + "] must be a token id in [0, " +
                                       std::to_string(tok.VocabSize()) + ")");
      }
      ids.push_back(prompt[i].get<text::TokenId>());
    }
  } else if (prompt.is_array() && !prompt.empty()) {
    return Status::InvalidArgument("prompt: one prompt per request (a string or an array of token ids)");
  } else {
    return Status::InvalidArgument("prompt must be a non-empty string or array of token ids");
  }
  if (ids.empty()) return Status::InvalidArgument("prompt has no tokens");
  return ids;
}

Json CompletionUsage(const std::vector<RunOutcome>& outcomes) {
  std::uint64_t prompt = outcomes.empty() ? 0 : PromptTokens(outcomes[0].cost);
  std::uint64_t cached = outcomes.empty() ? 0 : CachedTokens(outcomes[0].cost);
  std::uint64_t completion = 0;
  for (const RunOutcome& o : outcomes) {
    completion += o.cost.is_object() ? o.cost.value("generated_tokens", o.tokens) : o.tokens;
  }
  return {{"prompt_tokens", prompt},
          {"completion_tokens", completion},
          {"total_tokens", prompt + completion},
          {"prompt_tokens_details", {{"cached_tokens", cached}}}};
}

Json Envelope(const ServerContext& ctx, const CompletionRequest& c, Json choices) {
  return {{"id", c.id},
          {"object", "text_completion"},
          {"created", c.created},
          {"model", ctx.model_name},
          {"system_fingerprint", "fp_" + ctx.model_fingerprint.ShortHex()},
          {"choices", std::move(choices)}};
}

Json Choice(std::size_t index, std::string text, const std::vector<text::TokenId>& ids, const Json& finish) {
  return {{"index", index},
          {"text", std::move(text)},
          {"token_ids", ids},
          {"logprobs", nullptr},
          {"finish_reason", finish}};
}

HttpResponse StreamCompletion(ServerContext* ctx, CompletionRequest c) {
  HttpResponse r = SseResponse([ctx, c](std::shared_ptr<StreamSink> sink) {
    struct Shared {
      std::mutex mu;
      std::vector<RunOutcome> outcomes;
      std::size_t remaining = 0;
    };
    auto shared = std::make_shared<Shared>();
    shared->outcomes.resize(c.runs.size());
    shared->remaining = c.runs.size();
    auto chunk = [ctx, c](Json choice) {
      return "data: " + DumpJson(Envelope(*ctx, c, Json::array({std::move(choice)}))) + "\n\n";
    };
    for (std::size_t i = 0; i < c.runs.size(); ++i) {
      shared->outcomes[i].run = c.runs[i];
      auto on_event = [sink, shared, i, chunk](const store::RunEvent& e) {
        std::lock_guard<std::mutex> lock(shared->mu);
        RunOutcome& o = shared->outcomes[i];
        std::string text = ApplyRunEvent(e, &o);
        if (e.type == runs::kEventToken) {
          // Every token goes out with its id, end-of-generation included: an llmsync in front
          // records exactly the tokens this engine produced.
          Json j = Json::parse(e.payload, nullptr, false);
          std::vector<text::TokenId> ids;
          if (j.is_object() && j.contains("token_id")) ids.push_back(j["token_id"].get<text::TokenId>());
          return sink->Write(chunk(Choice(i, text, ids, nullptr)));
        }
        if (o.status == "completed" || o.status == "cancelled") {
          return sink->Write(
              chunk(Choice(i, "", {}, o.finish_reason.empty() ? Json("stop") : Json(o.finish_reason))));
        }
        if (o.status == "failed") {
          return sink->Write(
              "data: " + DumpJson({{"error", {{"code", "run_failed"}, {"message", o.error}}}}) + "\n\n");
        }
        return true;
      };
      auto on_end = [ctx, c, sink, shared] {
        std::lock_guard<std::mutex> lock(shared->mu);
        if (--shared->remaining != 0) return;
        if (c.include_usage) {
          Json last = Envelope(*ctx, c, Json::array());
          last["usage"] = CompletionUsage(shared->outcomes);
          last["llmsync"] = ExtensionJson(c.placement, shared->outcomes);
          sink->Write("data: " + DumpJson(last) + "\n\n");
        }
        sink->Write("data: [DONE]\n\n");
        sink->Close();
      };
      auto sub = ctx->hub->Subscribe(c.tenant, c.runs[i], 0, on_event, on_end);
      if (!sub.IsOk()) {
        sink->Write("data: " +
                    DumpJson({{"error", {{"code", "not_found"}, {"message", sub.GetStatus().Message()}}}}) +
                    "\n\n");
        sink->Close();
        return;
      }
    }
  });
  SetPlacementHeaders(c.placement, &r);
  return r;
}

Result<HttpResponse> CompletionBody(ServerContext& ctx, const CompletionRequest& c,
                                    const std::vector<RunOutcome>& outcomes) {
  Json choices = Json::array();
  for (std::size_t i = 0; i < outcomes.size(); ++i) {
    const RunOutcome& o = outcomes[i];
    if (o.status == "failed") return Status::Internal("generation failed: " + o.error);
    std::vector<text::TokenId> ids;
    std::string text = o.text;
    if (!o.node.IsZero()) {
      if (auto node = ctx.sessions->GetNode(c.tenant, c.placement.session, o.node); node.IsOk()) {
        ids = node->content.tokens;  // the run's generated tokens (no generation prompt here)
        text = node->content.text;
      }
    }
    choices.push_back(Choice(i, text, ids, o.finish_reason.empty() ? "stop" : o.finish_reason));
  }
  Json out = Envelope(ctx, c, std::move(choices));
  out["usage"] = CompletionUsage(outcomes);
  out["llmsync"] = ExtensionJson(c.placement, outcomes);
  HttpResponse r = JsonResponse(200, DumpJson(out));
  SetPlacementHeaders(c.placement, &r);
  return r;
}

HttpResponse Completions(OpenAiState& st, const HttpRequest& req) {
  ServerContext& ctx = *st.ctx;
  return OpenAiGuarded(ctx, req, "prompt", [&](const std::string& tenant) -> Result<HttpResponse> {
    ctx.metrics->GetCounter("llmsync_openai_requests_total", "OpenAI-compatible requests")->Add();
    LLMSYNC_ASSIGN_OR_RETURN(Json body, ParseJsonObject(req.body));
    if (auto model_error = ModelError(ctx, body)) return std::move(*model_error);
    LLMSYNC_ASSIGN_OR_RETURN(std::vector<text::TokenId> prompt, PromptTokenIds(ctx, body));
    LLMSYNC_ASSIGN_OR_RETURN(runs::RunParams params, ParseOpenAiRunParams(body, "max_tokens"));
    params.add_generation_prompt = false;  // continue the prompt exactly as sent
    LLMSYNC_RETURN_IF_ERROR(runs::ValidateRunParams(params, runs::RunLimits{}));
    LLMSYNC_ASSIGN_OR_RETURN(int n, ParseChoiceCount(body));
    LLMSYNC_ASSIGN_OR_RETURN(bool stream, OptionalBool(body, "stream", false));
    CompletionRequest c;
    c.tenant = tenant;
    if (body.contains("stream_options") && !body["stream_options"].is_null()) {
      if (!body["stream_options"].is_object())
        return Status::InvalidArgument("stream_options must be an object");
      LLMSYNC_ASSIGN_OR_RETURN(c.include_usage, OptionalBool(body["stream_options"], "include_usage", false));
    }
    LLMSYNC_ASSIGN_OR_RETURN(Id session, st.index.SessionFor(tenant, CompletionsKey()));
    session::NodeDraft draft;
    draft.kind = session::NodeKind::kTemplate;
    LLMSYNC_ASSIGN_OR_RETURN(std::string text, ctx.conversation->GetTokenizer().Decode(prompt));
    draft.text = ValidUtf8(text);
    draft.tokens = std::move(prompt);
    session::AppendRequest append;
    append.tenant = tenant;
    append.session = session;
    append.nodes = {std::move(draft)};
    append.move_head = false;
    LLMSYNC_ASSIGN_OR_RETURN(session::AppendResult appended, ctx.sessions->Append(append, nullptr));
    c.placement.session = session;
    c.placement.node = appended.ids.back();
    c.placement.reused_nodes = appended.created.back() ? 0 : 1;
    c.placement.appended_nodes = appended.created.back() ? 1 : 0;
    LLMSYNC_ASSIGN_OR_RETURN(c.runs,
                             SubmitRuns(ctx, tenant, session, c.placement.node, params, n, req.body.size()));
    c.id = "cmpl-" + c.runs[0].ToHex();
    c.created = UnixSeconds(ctx);
    if (stream) return StreamCompletion(st.ctx, std::move(c));
    ServerContext* cp = st.ctx;
    std::vector<Id> runs = c.runs;
    return RespondWhenRunsEnd(ctx, tenant, std::move(runs), [cp, c](const std::vector<RunOutcome>& outcomes) {
      return CompletionBody(*cp, c, outcomes);
    });
  });
}

}  // namespace

void AddCompletionRoutes(Router& router, const std::shared_ptr<OpenAiState>& state) {
  router.Add("POST", "/v1/completions",
             [state](const HttpRequest& r, const PathParams&) { return Completions(*state, r); });
}

}  // namespace llmsync::api
