// The Responses API over runs and nodes. A response is a run: its id is "resp_" + the run id, its
// output is the run's result node, previous_response_id names the node to continue from (the
// previous run's result), and its stream is the run's durable event log mapped to Responses
// events. What the request asked beyond generation (store, background, instructions, tools,
// tool_choice) rides in the run's parameters as opaque view state, so GET reports it.
//
// Every stream replays the run's log from its first event and numbers the Responses events it
// maps to 0, 1, 2, ... with no gaps; the mapping is a pure function of the log, so a resumed
// stream (starting_after=N) is exact:
//   run.started             -> response.created, response.in_progress,
//                              response.output_item.added, response.content_part.added
//   token                   -> response.output_text.delta (none when its text is empty)
//   run.usage               -> nothing
//   run.completed           -> output_text.done, content_part.done, output_item.done,
//                              response.completed | incomplete
//   run.cancelled / failed  -> response.cancelled | response.failed
// A parsed output (tools, or a thinking model) opens its items as they appear instead: run.started
// maps to created + in_progress only; tokens open a reasoning item (reasoning_text deltas as the
// <think> block is generated) and the message (text no later markup can take back); run.completed
// finishes both and adds, per call, output_item.added (function_call), function_call_arguments
// .delta and .done, output_item.done. Output indexes follow the opening order, which is the order
// of the final output.
#include <algorithm>
#include <functional>

#include "api/compaction.h"
#include "api/openai/openai_internal.h"
#include "api/openai/openai_messages.h"
#include "api/openai/openai_schema.h"
#include "api/sse.h"
#include "runs/run_events.h"

namespace llmsync::api {
namespace {

constexpr std::string_view kResponsePrefix = "resp_";

std::string ResponseId(const Id& run) { return std::string(kResponsePrefix) + run.ToHex(); }
std::string MessageId(const Id& run) { return "msg_" + run.ToHex(); }

Result<Id> ParseResponseId(const std::string& text) {
  if (text.rfind(kResponsePrefix, 0) != 0) return Status::NotFound("response '" + text + "' not found");
  auto id = Id::FromHex(std::string_view(text).substr(kResponsePrefix.size()));
  if (!id.IsOk()) return Status::NotFound("response '" + text + "' not found");
  return *id;
}

// What a response shows beyond its run, as the request asked: kept in RunParams::view_state.
struct ResponseExtras {
  Json previous_response_id = nullptr;
  Json instructions = nullptr;
  bool background = false;
  bool store = true;
  Json tools = Json::array();
  Json tool_choice = "auto";
  bool parallel_tool_calls = true;
  Id input_after;  // the node this request's input follows (previous response's output); zero: root
  std::string truncation = "disabled";  // "auto": compact onto a branch past the context
};

std::string EncodeExtras(const ResponseExtras& x) {
  return DumpJson({{"previous_response_id", x.previous_response_id},
                   {"instructions", x.instructions},
                   {"background", x.background},
                   {"store", x.store},
                   {"tools", x.tools},
                   {"tool_choice", x.tool_choice},
                   {"parallel_tool_calls", x.parallel_tool_calls},
                   {"input_after", x.input_after.IsZero() ? std::string() : x.input_after.ToHex()},
                   {"truncation", x.truncation}});
}

// The extras a run was created with (defaults for a run the Responses view did not start).
ResponseExtras ExtrasOf(const store::RunRecord& run) {
  ResponseExtras x;
  auto params = runs::DecodeRunParams(run.params);
  if (!params.IsOk() || params->view_state.empty()) return x;
  Json j = Json::parse(params->view_state, nullptr, false);
  if (!j.is_object()) return x;
  x.previous_response_id = j.value("previous_response_id", Json(nullptr));
  x.instructions = j.value("instructions", Json(nullptr));
  x.background = j.value("background", false);
  x.store = j.value("store", true);
  x.tools = j.value("tools", Json::array());
  x.tool_choice = j.value("tool_choice", Json("auto"));
  x.parallel_tool_calls = j.value("parallel_tool_calls", true);
  if (auto after = Id::FromHex(j.value("input_after", std::string())); after.IsOk()) x.input_after = *after;
  x.truncation = j.value("truncation", std::string("disabled"));
  return x;
}

// An output item's status in a response of status `status`: in_progress while it runs, completed
// when the response completed, incomplete otherwise (cut by max_output_tokens, cancelled, failed).
std::string ItemStatus(const std::string& status) {
  if (status == "queued" || status == "in_progress") return "in_progress";
  return status == "completed" ? "completed" : "incomplete";
}

std::string StatusOf(const store::RunRecord& run, const RunOutcome& o) {
  switch (run.status) {
    case store::RunStatus::kQueued: return "queued";
    case store::RunStatus::kRunning: return "in_progress";
    case store::RunStatus::kSucceeded: return o.finish_reason == "length" ? "incomplete" : "completed";
    case store::RunStatus::kCancelled: return "cancelled";
    default: return "failed";
  }
}

Json ContentPart(const std::string& text) {
  return {
      {"type", "output_text"}, {"text", text}, {"annotations", Json::array()}, {"logprobs", Json::array()}};
}

Json MessageItem(const Id& run, const std::string& text, const std::string& status, bool with_content) {
  return {{"id", MessageId(run)},
          {"type", "message"},
          {"status", status},
          {"role", "assistant"},
          {"content", with_content ? Json::array({ContentPart(text)}) : Json::array()}};
}

Json ReasoningItem(const Id& run, const std::string& text, const std::string& status) {
  return {{"id", "rs_" + run.ToHex()},
          {"type", "reasoning"},
          {"status", status},
          {"summary", Json::array()},
          {"content", Json::array({{{"type", "reasoning_text"}, {"text", text}}})}};
}

Json FunctionCallItem(const Id& run, std::size_t k, const Json& call, const std::string& arguments,
                      const std::string& status) {
  return {{"id", "fc_" + run.ToHex() + "_" + std::to_string(k)},
          {"type", "function_call"},
          {"status", status},
          {"call_id", call["id"]},
          {"name", call["function"]["name"]},
          {"arguments", arguments}};
}

// Whether a run's output is split into reasoning, message and function calls: it was asked for
// tools, or the model thinks.
bool ParsesOutput(const ToolSupport& tools, const store::RunRecord& run) {
  if (tools.thinks) return true;
  auto params = runs::DecodeRunParams(run.params);
  return params.IsOk() && params->constraint.find("\"type\":\"tool_call\"") != std::string::npos;
}

// The output items of a finished, parsed response: reasoning, message (when it has text or no
// calls), function calls.
void AddParsedItems(const ToolSupport& tools, const store::RunRecord& run, const std::string& text,
                    const std::string& item_status, Json* output) {
  ParsedOutput p = ParseModelOutput(tools.family, text);
  if (!p.reasoning.empty()) {
    output->push_back(ReasoningItem(run.id, p.reasoning, item_status));
  }
  if (!p.content.empty() || p.calls.empty())
    output->push_back(MessageItem(run.id, p.content, item_status, true));
  Json calls = ToolCallsJson(tools, p.calls, run.result_node);
  for (std::size_t k = 0; k < calls.size(); ++k) {
    output->push_back(FunctionCallItem(run.id, k, calls[k],
                                       calls[k]["function"]["arguments"].get<std::string>(), item_status));
  }
}

Json ResponseJson(ServerContext& ctx, const store::RunRecord& run, const RunOutcome& o,
                  const Placement* placement, const std::string& text) {
  std::string status = StatusOf(run, o);
  ResponseExtras x = ExtrasOf(run);
  auto params = runs::DecodeRunParams(run.params);
  Json output = Json::array();
  if (o.tokens > 0 || run.status == store::RunStatus::kSucceeded) {
    bool done = store::IsTerminal(run.status);
    ToolSupport tools = ToolSupportFor(ctx);
    if (done && ParsesOutput(tools, run)) {
      AddParsedItems(tools, run, text, ItemStatus(status), &output);
    } else {
      output.push_back(MessageItem(run.id, text, ItemStatus(status), true));
    }
  }
  Json usage = nullptr;
  if (o.cost.is_object()) {
    std::uint64_t in = PromptTokens(o.cost);
    std::uint64_t out = o.cost.value("generated_tokens", o.tokens);
    usage = {{"input_tokens", in},
             {"input_tokens_details", {{"cached_tokens", CachedTokens(o.cost)}}},
             {"output_tokens", out},
             {"output_tokens_details", {{"reasoning_tokens", 0}}},
             {"total_tokens", in + out}};
  }
  Json j = {
      {"id", ResponseId(run.id)},
      {"object", "response"},
      {"created_at", run.created_at_ms / 1000},
      {"status", status},
      {"background", x.background},
      {"error", status == "failed"
                    ? Json{{"code", "server_error"}, {"message", o.error.empty() ? run.error : o.error}}
                    : Json(nullptr)},
      {"incomplete_details", status == "incomplete" ? Json{{"reason", "max_output_tokens"}} : Json(nullptr)},
      {"instructions", x.instructions},
      {"max_output_tokens", params.IsOk() ? Json(params->max_tokens) : Json(nullptr)},
      {"model", ctx.model_name},
      {"output", std::move(output)},
      {"parallel_tool_calls", x.parallel_tool_calls},
      {"previous_response_id", x.previous_response_id},
      {"store", x.store},
      {"temperature", params.IsOk() ? Json(params->sampling.temperature) : Json(nullptr)},
      {"top_p", params.IsOk() ? Json(params->sampling.top_p) : Json(nullptr)},
      {"text", {{"format", {{"type", "text"}}}}},
      {"tool_choice", x.tool_choice},
      {"tools", x.tools},
      {"truncation", x.truncation},
      {"usage", std::move(usage)},
      {"metadata", Json::object()}};
  Json ext = {{"run", run.id.ToHex()},
              {"session", run.session.ToHex()},
              {"from", run.from_node.ToHex()},
              {"node", run.result_node.IsZero() ? Json(nullptr) : Json(run.result_node.ToHex())},
              {"cost", o.cost}};
  if (placement != nullptr) {
    ext["reused_nodes"] = placement->reused_nodes;
    ext["appended_nodes"] = placement->appended_nodes;
    ext["divergence"] = DivergenceJson(placement->divergence);
    ext["reasoning_history"] = ReasoningHistoryJson(*placement);
    ext["tools_divergence"] = ToolsDivergenceJson(placement->tools_divergence);
  }
  j["llmsync"] = std::move(ext);
  return j;
}

// The text of a finished response: its result node (what the tree holds), else the token texts.
std::string FinalText(ServerContext& ctx, const store::RunRecord& run, const RunOutcome& o) {
  if (run.result_node.IsZero()) return o.text;
  auto node = ctx.sessions->GetNode(run.tenant, run.session, run.result_node);
  return node.IsOk() ? node->content.text : o.text;
}

Result<Json> Snapshot(ServerContext& ctx, const std::string& tenant, const Id& run_id,
                      const Placement* placement) {
  LLMSYNC_ASSIGN_OR_RETURN(store::RunRecord run, ctx.store->GetRun(tenant, run_id));
  LLMSYNC_ASSIGN_OR_RETURN(RunOutcome o, ReadRunOutcome(ctx, tenant, run_id));
  return ResponseJson(ctx, run, o, placement, FinalText(ctx, run, o));
}

std::string Event(std::int64_t seq, std::string_view type, Json body) {
  body["type"] = type;
  body["sequence_number"] = seq;
  return FormatSseEvent(static_cast<std::uint64_t>(seq), type, DumpJson(body));
}

// The items of a parsed output as a stream opens them: reasoning (streamed as generated), the
// message (once content is final enough to send), then, when the run ends, one function_call item
// per call. Output indexes are assigned in opening order, which is the order of the final output.
struct ParsedStreamState {
  std::size_t reasoned = 0;  // reasoning bytes sent
  std::size_t streamed = 0;  // content bytes sent
  int next_index = 0;
  int reasoning_index = -1;
  bool reasoning_done = false;
  int message_index = -1;
};

using Emit = std::function<void(std::string_view, Json)>;

void OpenReasoning(const Id& run, ParsedStreamState& ps, const Emit& emit) {
  if (ps.reasoning_index >= 0) return;
  ps.reasoning_index = ps.next_index++;
  Json item = ReasoningItem(run, "", "in_progress");
  item["content"] = Json::array();
  emit("response.output_item.added", {{"output_index", ps.reasoning_index}, {"item", item}});
  emit("response.content_part.added", {{"item_id", "rs_" + run.ToHex()},
                                       {"output_index", ps.reasoning_index},
                                       {"content_index", 0},
                                       {"part", {{"type", "reasoning_text"}, {"text", ""}}}});
}

void ReasoningDelta(const Id& run, ParsedStreamState& ps, const std::string& reasoning, const Emit& emit) {
  if (reasoning.size() <= ps.reasoned || ps.reasoning_done) return;
  OpenReasoning(run, ps, emit);
  emit("response.reasoning_text.delta", {{"item_id", "rs_" + run.ToHex()},
                                         {"output_index", ps.reasoning_index},
                                         {"content_index", 0},
                                         {"delta", reasoning.substr(ps.reasoned)}});
  ps.reasoned = reasoning.size();
}

void CloseReasoning(const Id& run, ParsedStreamState& ps, const std::string& reasoning,
                    const std::string& status, const Emit& emit) {
  if (ps.reasoning_index < 0 || ps.reasoning_done) return;
  ps.reasoning_done = true;
  std::string id = "rs_" + run.ToHex();
  emit("response.reasoning_text.done",
       {{"item_id", id}, {"output_index", ps.reasoning_index}, {"content_index", 0}, {"text", reasoning}});
  emit("response.content_part.done", {{"item_id", id},
                                      {"output_index", ps.reasoning_index},
                                      {"content_index", 0},
                                      {"part", {{"type", "reasoning_text"}, {"text", reasoning}}}});
  emit("response.output_item.done",
       {{"output_index", ps.reasoning_index}, {"item", ReasoningItem(run, reasoning, status)}});
}

void OpenMessage(const Id& run, ParsedStreamState& ps, const std::string& reasoning, const Emit& emit) {
  if (ps.message_index >= 0) return;
  CloseReasoning(run, ps, reasoning, "completed", emit);  // content follows a closed reasoning block
  ps.message_index = ps.next_index++;
  emit("response.output_item.added",
       {{"output_index", ps.message_index}, {"item", MessageItem(run, "", "in_progress", false)}});
  emit("response.content_part.added", {{"item_id", MessageId(run)},
                                       {"output_index", ps.message_index},
                                       {"content_index", 0},
                                       {"part", ContentPart("")}});
}

void ContentDelta(const Id& run, ParsedStreamState& ps, const std::string& content,
                  const std::string& reasoning, const Emit& emit) {
  if (content.size() <= ps.streamed) return;
  OpenMessage(run, ps, reasoning, emit);
  emit("response.output_text.delta", {{"item_id", MessageId(run)},
                                      {"output_index", ps.message_index},
                                      {"content_index", 0},
                                      {"delta", content.substr(ps.streamed)},
                                      {"logprobs", Json::array()}});
  ps.streamed = content.size();
}

// The events a parsed output's tokens map to.
void ParsedTokenEvents(ToolFamily family, const Id& run, const std::string& text, ParsedStreamState& ps,
                       const Emit& emit) {
  std::string reasoning = StreamableReasoning(family, text);
  ReasoningDelta(run, ps, reasoning, emit);
  ContentDelta(run, ps, StreamableContent(family, text), reasoning, emit);
}

// The events that finish a parsed output: the rest of the reasoning and content, then the calls.
void ParsedFinalEvents(const ToolSupport& tools, const store::RunRecord& run, const std::string& raw,
                       const std::string& item_status, ParsedStreamState& ps, const Emit& emit) {
  ParsedOutput p = ParseModelOutput(tools.family, raw);
  if (ps.message_index < 0) ReasoningDelta(run.id, ps, p.reasoning, emit);
  CloseReasoning(run.id, ps, p.reasoning, item_status, emit);
  if (!p.content.empty() || p.calls.empty() || ps.message_index >= 0) {
    OpenMessage(run.id, ps, p.reasoning, emit);
    ContentDelta(run.id, ps, p.content, p.reasoning, emit);
    emit("response.output_text.done", {{"item_id", MessageId(run.id)},
                                       {"output_index", ps.message_index},
                                       {"content_index", 0},
                                       {"text", p.content},
                                       {"logprobs", Json::array()}});
    emit("response.content_part.done", {{"item_id", MessageId(run.id)},
                                        {"output_index", ps.message_index},
                                        {"content_index", 0},
                                        {"part", ContentPart(p.content)}});
    emit("response.output_item.done",
         {{"output_index", ps.message_index}, {"item", MessageItem(run.id, p.content, item_status, true)}});
  }
  Json calls = ToolCallsJson(tools, p.calls, run.result_node);
  for (std::size_t k = 0; k < calls.size(); ++k) {
    int index = ps.next_index++;
    std::string id = "fc_" + run.id.ToHex() + "_" + std::to_string(k);
    std::string args = calls[k]["function"]["arguments"].get<std::string>();
    emit("response.output_item.added",
         {{"output_index", index}, {"item", FunctionCallItem(run.id, k, calls[k], "", "in_progress")}});
    emit("response.function_call_arguments.delta",
         {{"item_id", id}, {"output_index", index}, {"delta", args}});
    emit("response.function_call_arguments.done", {{"item_id", id},
                                                   {"output_index", index},
                                                   {"name", calls[k]["function"]["name"]},
                                                   {"arguments", args}});
    emit("response.output_item.done",
         {{"output_index", index}, {"item", FunctionCallItem(run.id, k, calls[k], args, item_status)}});
  }
}

// Streams a response's events with sequence_number > after.
HttpResponse StreamResponse(ServerContext* ctx, const std::string& tenant, const Id& run_id,
                            std::int64_t after) {
  return SseResponse([ctx, tenant, run_id, after](std::shared_ptr<StreamSink> sink) {
    auto outcome = std::make_shared<RunOutcome>();
    outcome->run = run_id;
    ToolSupport tools = ToolSupportFor(*ctx);
    bool parse = false;
    if (auto stored = ctx->store->GetRun(tenant, run_id); stored.IsOk()) parse = ParsesOutput(tools, *stored);
    auto ps = std::make_shared<ParsedStreamState>();
    auto next_seq = std::make_shared<std::int64_t>(0);  // events come one at a time, in order
    auto on_event = [ctx, tenant, run_id, after, sink, outcome, tools, parse, ps,
                     next_seq](const store::RunEvent& e) {
      std::string delta = ApplyRunEvent(e, outcome.get());
      std::string out;
      Emit emit = [&](std::string_view type, Json body) {
        std::int64_t s = (*next_seq)++;
        if (s > after) out += Event(s, type, std::move(body));
      };
      // The run as it was at this event: only immutable fields come from the store, so a replay
      // produces byte-identical events.
      auto record = [&](store::RunStatus status) {
        store::RunRecord r;
        if (auto stored = ctx->store->GetRun(tenant, run_id); stored.IsOk()) r = *stored;
        r.id = run_id;
        r.tenant = tenant;
        r.status = status;
        r.result_node = Id();
        r.error.clear();
        r.updated_at_ms = r.created_at_ms;
        return r;
      };
      Id msg = run_id;
      if (e.type == runs::kEventStarted) {
        Json snap = ResponseJson(*ctx, record(store::RunStatus::kRunning), *outcome, nullptr, "");
        emit("response.created", {{"response", snap}});
        emit("response.in_progress", {{"response", snap}});
        if (!parse) {  // parsed outputs open their items as they appear
          emit("response.output_item.added",
               {{"output_index", 0}, {"item", MessageItem(msg, "", "in_progress", false)}});
          emit("response.content_part.added", {{"item_id", MessageId(msg)},
                                               {"output_index", 0},
                                               {"content_index", 0},
                                               {"part", ContentPart("")}});
        }
      } else if (e.type == runs::kEventToken && parse) {
        if (!delta.empty()) ParsedTokenEvents(tools.family, msg, outcome->text, *ps, emit);
      } else if (e.type == runs::kEventToken && !delta.empty()) {
        emit("response.output_text.delta", {{"item_id", MessageId(msg)},
                                            {"output_index", 0},
                                            {"content_index", 0},
                                            {"delta", delta},
                                            {"logprobs", Json::array()}});
      } else if (e.type == runs::kEventCompleted) {
        store::RunRecord r = record(store::RunStatus::kSucceeded);
        r.result_node = outcome->node;
        std::string raw = FinalText(*ctx, r, *outcome);
        Json snap = ResponseJson(*ctx, r, *outcome, nullptr, raw);
        std::string status = snap["status"].get<std::string>();
        if (parse) {
          ParsedFinalEvents(tools, r, raw, ItemStatus(status), *ps, emit);
        } else {
          emit("response.output_text.done", {{"item_id", MessageId(msg)},
                                             {"output_index", 0},
                                             {"content_index", 0},
                                             {"text", raw},
                                             {"logprobs", Json::array()}});
          emit("response.content_part.done", {{"item_id", MessageId(msg)},
                                              {"output_index", 0},
                                              {"content_index", 0},
                                              {"part", ContentPart(raw)}});
          emit("response.output_item.done",
               {{"output_index", 0}, {"item", MessageItem(msg, raw, ItemStatus(status), true)}});
        }
        emit("response." + status, {{"response", std::move(snap)}});
      } else if (e.type == runs::kEventCancelled || e.type == runs::kEventFailed) {
        bool cancelled = e.type == runs::kEventCancelled;
        store::RunRecord r = record(cancelled ? store::RunStatus::kCancelled : store::RunStatus::kFailed);
        Json snap = ResponseJson(*ctx, r, *outcome, nullptr, outcome->text);
        emit(cancelled ? "response.cancelled" : "response.failed", {{"response", std::move(snap)}});
      }
      return out.empty() || sink->Write(std::move(out));
    };
    auto sub = ctx->hub->Subscribe(tenant, run_id, 0, on_event, [sink] { sink->Close(); });
    if (!sub.IsOk()) {
      sink->Write(Event(after + 1, "error", {{"code", "not_found"}, {"message", sub.GetStatus().Message()}}));
      sink->Close();
    }
  });
}

struct CreateRequest {
  std::vector<MessageDraft> drafts;
  runs::RunParams params;
  Id session;
  Id parent;
  ResponseExtras extras;
  ToolPlan tools;
  ReasoningHistory reasoning = ReasoningHistory::kKeep;
  bool stream = false;
};

Result<CreateRequest> ParseCreate(OpenAiState& st, const std::string& tenant, const Json& body,
                                  std::string_view raw_body, std::optional<HttpResponse>* error) {
  CreateRequest c;
  if (!body.contains("input")) return Status::InvalidArgument("input is required");
  const Json* instructions = body.contains("instructions") ? &body["instructions"] : nullptr;
  LLMSYNC_ASSIGN_OR_RETURN(c.drafts, ResponseInputToDrafts(body["input"], instructions));
  if (instructions != nullptr) c.extras.instructions = *instructions;
  LLMSYNC_ASSIGN_OR_RETURN(c.params, ParseOpenAiRunParams(body, "max_output_tokens"));
  LLMSYNC_RETURN_IF_ERROR(runs::ValidateRunParams(c.params, runs::RunLimits{}));
  if (body.contains("text") && !body["text"].is_null()) {
    if (!body["text"].is_object()) return Status::InvalidArgument("text must be an object");
    if (body["text"].contains("format")) {
      LLMSYNC_ASSIGN_OR_RETURN(c.params.constraint, ConstraintSpecFor(body["text"]["format"], true));
      LLMSYNC_RETURN_IF_ERROR(CheckConstraintFits(c.params.constraint, c.params.max_tokens));
    }
  }
  LLMSYNC_ASSIGN_OR_RETURN(c.tools, PlanTools(st, body, raw_body, true, &c.drafts, &c.params, error));
  LLMSYNC_ASSIGN_OR_RETURN(c.stream, OptionalBool(body, "stream", false));
  if (body.contains("truncation") && !body["truncation"].is_null()) {
    const Json& t = body["truncation"];
    if (!t.is_string() || (t != "auto" && t != "disabled"))
      return Status::InvalidArgument("truncation must be \"auto\" or \"disabled\"");
    c.extras.truncation = t.get<std::string>();
  }
  LLMSYNC_ASSIGN_OR_RETURN(c.reasoning, ParseReasoningHistory(body));
  LLMSYNC_ASSIGN_OR_RETURN(c.extras.background, OptionalBool(body, "background", false));
  LLMSYNC_ASSIGN_OR_RETURN(c.extras.store, OptionalBool(body, "store", true));
  if (c.extras.background && !c.extras.store)
    return Status::InvalidArgument("store must be true for a background response (it is retrieved later)");
  if (body.contains("tools") && body["tools"].is_array()) c.extras.tools = body["tools"];
  if (body.contains("tool_choice") && !body["tool_choice"].is_null())
    c.extras.tool_choice = body["tool_choice"];
  c.extras.parallel_tool_calls = c.tools.request.parallel_tool_calls;
  if (body.contains("previous_response_id") && !body["previous_response_id"].is_null()) {
    if (!body["previous_response_id"].is_string()) {
      return Status::InvalidArgument("previous_response_id must be a string");
    }
    std::string prev = body["previous_response_id"].get<std::string>();
    LLMSYNC_ASSIGN_OR_RETURN(Id prev_run, ParseResponseId(prev));
    LLMSYNC_ASSIGN_OR_RETURN(store::RunRecord run, st.ctx->store->GetRun(tenant, prev_run));
    if (!ExtrasOf(run).store)
      return Status::NotFound("response '" + prev + "' not found (it was not stored)");
    if (run.result_node.IsZero()) {
      return Status::InvalidArgument("previous_response_id '" + prev +
                                     "' has no output to continue from (status " +
                                     std::string(store::RunStatusName(run.status)) + ")");
    }
    c.session = run.session;
    c.parent = run.result_node;
    c.extras.previous_response_id = prev;
    c.extras.input_after = run.result_node;
  } else {
    LLMSYNC_ASSIGN_OR_RETURN(c.session, st.index.SessionFor(tenant, c.tools.session_tools));
    st.index.RememberTools(tenant, c.session, ToolDigests(c.tools.request));
  }
  c.params.view_state = EncodeExtras(c.extras);
  return c;
}

// Submits the response's run from `from` (the placement, or the tip of its compacted branch) and
// answers: a stream, a deferred JSON body, or at once for a background response.
Result<HttpResponse> SubmitResponse(OpenAiState& st, const std::string& tenant, const CreateRequest& c,
                                    const Placement& placement, const Id& from, std::size_t body_bytes) {
  ServerContext& ctx = *st.ctx;
  LLMSYNC_ASSIGN_OR_RETURN(std::vector<Id> runs,
                           SubmitRuns(ctx, tenant, c.session, from, c.params, 1, body_bytes));
  if (c.extras.truncation == "auto") {  // nearing the budget: compact once the run ends
    runs::ContextPolicy policy;
    policy.mode = runs::ContextMode::kAuto;
    CompactAheadAfter(ctx, tenant, c.session, runs[0], policy, c.params.max_tokens);
  }
  HttpResponse r;
  if (c.stream) {
    r = StreamResponse(&ctx, tenant, runs[0], -1);
  } else if (!c.extras.background) {
    // Answered once the run ends, without holding a server thread; the closure keeps its own
    // copy of the placement the extension object reports.
    ServerContext* cp = &ctx;
    auto kept = std::make_shared<Placement>(placement);
    Id run = runs[0];
    r = RespondWhenRunsEnd(ctx, tenant, runs,
                           [cp, tenant, run, kept](const std::vector<RunOutcome>&) -> Result<HttpResponse> {
                             LLMSYNC_ASSIGN_OR_RETURN(Json snap, Snapshot(*cp, tenant, run, kept.get()));
                             HttpResponse done = JsonResponse(200, DumpJson(snap));
                             SetPlacementHeaders(*kept, &done);
                             return done;
                           });
  } else {
    LLMSYNC_ASSIGN_OR_RETURN(Json snap, Snapshot(ctx, tenant, runs[0], &placement));
    r = JsonResponse(200, DumpJson(snap));
  }
  SetPlacementHeaders(placement, &r);
  return r;
}

HttpResponse Create(OpenAiState& st, const HttpRequest& req) {
  ServerContext& ctx = *st.ctx;
  return OpenAiGuarded(ctx, req, "input", [&](const std::string& tenant) -> Result<HttpResponse> {
    ctx.metrics->GetCounter("llmsync_openai_requests_total", "OpenAI-compatible requests")->Add();
    LLMSYNC_ASSIGN_OR_RETURN(Json body, ParseJsonObject(req.body));
    if (auto model_error = ModelError(ctx, body)) return std::move(*model_error);
    std::optional<HttpResponse> tool_error;
    auto parsed = ParseCreate(st, tenant, body, req.body, &tool_error);
    if (tool_error) return std::move(*tool_error);
    if (!parsed.IsOk()) return parsed.GetStatus();
    CreateRequest c = std::move(parsed).Value();
    LLMSYNC_ASSIGN_OR_RETURN(Placement placement,
                             st.index.Place(tenant, c.session, c.parent, std::move(c.drafts),
                                            c.tools.template_tools, c.reasoning));
    if (c.extras.truncation == "auto") {
      // OpenAI drops items from the conversation; llmsync compacts it onto a branch instead
      // (api/compaction.h), so the prefix stays cached and the original stays readable.
      LLMSYNC_ASSIGN_OR_RETURN(std::vector<session::Node> path,
                               ctx.sessions->Path(tenant, c.session, placement.node));
      runs::ContextPolicy policy;
      policy.mode = runs::ContextMode::kAuto;
      LLMSYNC_ASSIGN_OR_RETURN(bool compact, NeedsCompaction(ctx, path, policy, c.params.max_tokens));
      if (compact) {
        CompactionJob job{tenant, c.session, std::move(path), policy, false, c.params.sampling.seed};
        OpenAiState* sp = &st;
        const bool stream = c.stream;
        const std::size_t body_bytes = req.body.size();
        return RespondAfterCompaction(
            ctx, std::move(job), stream,
            [sp, tenant, c, placement, body_bytes](Result<CompactionReport> report) {
              if (!report.IsOk()) return OpenAiErrorResponse(report.GetStatus(), "input");
              Result<HttpResponse> r =
                  SubmitResponse(*sp, tenant, c, placement, report->compacted_tip, body_bytes);
              return r.IsOk() ? std::move(r).Value() : OpenAiErrorResponse(r.GetStatus(), "input");
            });
      }
    }
    return SubmitResponse(st, tenant, c, placement, placement.node, req.body.size());
  });
}

// The run behind a response id that exists for this tenant: a deleted one does not, nor one
// created with store: false (its run and nodes exist, but the Responses view never shows it again).
Result<Id> LiveResponse(OpenAiState& st, const std::string& tenant, const PathParams& p) {
  LLMSYNC_ASSIGN_OR_RETURN(Id run, ParseResponseId(p.at("id")));
  auto record = st.ctx->store->GetRun(tenant, run);
  if (!record.IsOk() || !ExtrasOf(*record).store)
    return Status::NotFound("response '" + p.at("id") + "' not found");
  return run;
}

// An input item for a node of a response's input.
Json InputItemJson(const session::Node& node) {
  const session::NodeContent& c = node.content;
  std::string hex = node.id.ToHex();
  switch (c.kind) {
    case session::NodeKind::kToolCall:
      return {{"id", "fc_" + hex},    {"type", "function_call"}, {"status", "completed"},
              {"call_id", c.call_id}, {"name", c.tool_name},     {"arguments", c.text}};
    case session::NodeKind::kToolResult:
      return {{"id", "fco_" + hex},
              {"type", "function_call_output"},
              {"status", "completed"},
              {"call_id", c.call_id},
              {"output", c.text}};
    default: break;
  }
  std::string role = c.kind == session::NodeKind::kUser        ? "user"
                     : c.kind == session::NodeKind::kAssistant ? "assistant"
                                                               : "system";
  Json part = {{"type", role == "assistant" ? "output_text" : "input_text"}, {"text", c.text}};
  return {{"id", "msg_" + hex},
          {"type", "message"},
          {"role", role},
          {"status", "completed"},
          {"content", Json::array({part})}};
}

Result<std::int64_t> QueryInteger(const HttpRequest& req, const char* name, std::int64_t fallback) {
  auto q = req.Query(name);
  if (!q || q->empty()) return fallback;
  std::size_t used = 0;
  std::int64_t v = 0;
  try {
    v = std::stoll(*q, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != q->size()) return Status::InvalidArgument(std::string(name) + " must be an integer");
  return v;
}

// GET /v1/responses/{id}/input_items: the messages and tool items the response read after the
// previous response's output (all of its context when it had none), as a list page.
HttpResponse InputItems(OpenAiState& st, const HttpRequest& req, const PathParams& p) {
  ServerContext& ctx = *st.ctx;
  return OpenAiGuarded(ctx, req, "input", [&](const std::string& tenant) -> Result<HttpResponse> {
    LLMSYNC_ASSIGN_OR_RETURN(Id run_id, LiveResponse(st, tenant, p));
    LLMSYNC_ASSIGN_OR_RETURN(std::int64_t limit, QueryInteger(req, "limit", 20));
    if (limit < 1 || limit > 100) return Status::InvalidArgument("limit must be between 1 and 100");
    std::string order = req.Query("order").value_or("desc");
    if (order != "asc" && order != "desc") return Status::InvalidArgument("order must be asc or desc");
    std::string after = req.Query("after").value_or("");
    LLMSYNC_ASSIGN_OR_RETURN(store::RunRecord run, ctx.store->GetRun(tenant, run_id));
    ResponseExtras x = ExtrasOf(run);
    std::vector<session::Node> path;
    if (!run.from_node.IsZero()) {
      LLMSYNC_ASSIGN_OR_RETURN(path, ctx.sessions->Path(tenant, run.session, run.from_node));
    }
    Json items = Json::array();
    bool started = x.input_after.IsZero();
    for (const session::Node& n : path) {
      if (!started) {
        started = n.id == x.input_after;
        continue;
      }
      session::NodeKind k = n.content.kind;
      bool hidden = n.content.visibility == session::Visibility::kHidden;
      if (hidden || k == session::NodeKind::kTemplate || k == session::NodeKind::kReasoning) continue;
      items.push_back(InputItemJson(n));
    }
    if (order == "desc") std::reverse(items.begin(), items.end());
    std::size_t begin = 0;
    if (!after.empty()) {
      while (begin < items.size() && items[begin]["id"] != after) ++begin;
      if (begin == items.size()) return Status::InvalidArgument("after: no input item '" + after + "'");
      ++begin;
    }
    std::size_t end = std::min(items.size(), begin + static_cast<std::size_t>(limit));
    Json data = Json::array();
    for (std::size_t i = begin; i < end; ++i) data.push_back(items[i]);
    Json out = {{"object", "list"},
                {"data", data},
                {"first_id", data.empty() ? Json(nullptr) : data.front()["id"]},
                {"last_id", data.empty() ? Json(nullptr) : data.back()["id"]},
                {"has_more", end < items.size()}};
    return JsonResponse(200, DumpJson(out));
  });
}

HttpResponse Get(OpenAiState& st, const HttpRequest& req, const PathParams& p) {
  ServerContext& ctx = *st.ctx;
  return OpenAiGuarded(ctx, req, "input", [&](const std::string& tenant) -> Result<HttpResponse> {
    LLMSYNC_ASSIGN_OR_RETURN(Id run, LiveResponse(st, tenant, p));
    if (req.Query("stream").value_or("") == "true") {
      std::int64_t after = -1;
      if (auto q = req.Query("starting_after"); q && !q->empty()) {
        std::size_t used = 0;
        try {
          after = std::stoll(*q, &used);
        } catch (const std::exception&) {
          used = 0;
        }
        if (used != q->size()) return Status::InvalidArgument("starting_after must be an integer");
      }
      return StreamResponse(&ctx, tenant, run, after);
    }
    LLMSYNC_ASSIGN_OR_RETURN(Json snap, Snapshot(ctx, tenant, run, nullptr));
    return JsonResponse(200, DumpJson(snap));
  });
}

HttpResponse Cancel(OpenAiState& st, const HttpRequest& req, const PathParams& p) {
  ServerContext& ctx = *st.ctx;
  return OpenAiGuarded(ctx, req, "input", [&](const std::string& tenant) -> Result<HttpResponse> {
    LLMSYNC_ASSIGN_OR_RETURN(Id run, LiveResponse(st, tenant, p));
    LLMSYNC_RETURN_IF_ERROR(ctx.scheduler->Cancel(tenant, run).GetStatus());
    LLMSYNC_ASSIGN_OR_RETURN(Json snap, Snapshot(ctx, tenant, run, nullptr));
    return JsonResponse(200, DumpJson(snap));
  });
}

HttpResponse Delete(OpenAiState& st, const HttpRequest& req, const PathParams& p) {
  ServerContext& ctx = *st.ctx;
  return OpenAiGuarded(ctx, req, "input", [&](const std::string& tenant) -> Result<HttpResponse> {
    LLMSYNC_ASSIGN_OR_RETURN(Id run, LiveResponse(st, tenant, p));
    LLMSYNC_RETURN_IF_ERROR(ctx.scheduler->Cancel(tenant, run).GetStatus());  // also checks the tenant
    // Durable: the run and its events are gone for every reader, across restarts. The nodes stay
    // (the tree is append-only).
    LLMSYNC_RETURN_IF_ERROR(ctx.store->DeleteRun(tenant, run));
    return JsonResponse(200,
                        DumpJson({{"id", p.at("id")}, {"object", "response.deleted"}, {"deleted", true}}));
  });
}

}  // namespace

void AddResponseRoutes(Router& router, const std::shared_ptr<OpenAiState>& state) {
  router.Add("POST", "/v1/responses",
             [state](const HttpRequest& r, const PathParams&) { return Create(*state, r); });
  router.Add("GET", "/v1/responses/{id}",
             [state](const HttpRequest& r, const PathParams& p) { return Get(*state, r, p); });
  router.Add("GET", "/v1/responses/{id}/input_items",
             [state](const HttpRequest& r, const PathParams& p) { return InputItems(*state, r, p); });
  router.Add("DELETE", "/v1/responses/{id}",
             [state](const HttpRequest& r, const PathParams& p) { return Delete(*state, r, p); });
  router.Add("POST", "/v1/responses/{id}/cancel",
             [state](const HttpRequest& r, const PathParams& p) { return Cancel(*state, r, p); });
}

}  // namespace llmsync::api
