// The agent-trace text and the two ways of playing it: native append + run, and stateless OpenAI
// chat completions (the full history every turn).
#include <algorithm>
#include <chrono>
#include <iterator>
#include <nlohmann/json.hpp>
#include <random>
#include <string_view>

#include "cli/bench/bench_trace.h"
#include "client/http_client.h"
#include "remote/upstream_report.h"

namespace llmsync::cli {
namespace {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

double MsSince(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

// new = what the previous turn's state (its prompt plus its reply) did not already contain.
void FillNewTokens(const std::vector<TurnSample>& history, TurnSample* s) {
  if (history.empty()) {
    s->new_tokens = s->prompt_tokens;
    return;
  }
  const TurnSample& prev = history.back();
  s->new_tokens = std::max<std::int64_t>(0, s->prompt_tokens - prev.prompt_tokens - prev.generated_tokens);
  // A compacted (or client-side truncated) prompt does not extend the last one: the trace's turns
  // are all alike, so the turn's new tokens are taken to be the previous turn's.
  if (s->compacted || s->prompt_tokens < prev.prompt_tokens) s->new_tokens = prev.new_tokens;
}

// llmsync_tokens_prefilled_total + llmsync_tokens_generated_total from the server's /metrics.
Result<std::int64_t> EngineTokens(const client::ClientOptions& options) {
  client::HttpClient http(options.host, options.port, options.timeout);
  client::HeaderList headers;
  if (!options.api_key.empty()) headers["Authorization"] = "Bearer " + options.api_key;
  LLMSYNC_ASSIGN_OR_RETURN(client::HttpResult r, http.Get("/metrics", headers));
  std::int64_t total = 0;
  for (std::string_view name : {"llmsync_tokens_prefilled_total ", "llmsync_tokens_generated_total "}) {
    std::size_t at = r.body.find("\n" + std::string(name));
    if (at != std::string::npos) total += std::atoll(r.body.c_str() + at + 1 + name.size());
  }
  return total;
}

// Everything the engine computed since the last turn ended, summary runs of compactions done in
// the background between turns included, except the turn's own answer; at least `reported`.
class EngineCounter {
 public:
  explicit EngineCounter(const client::ClientOptions& options) : options_(options) {}
  Status Start() {
    if (last_ >= 0) return Status::Ok();
    LLMSYNC_ASSIGN_OR_RETURN(last_, EngineTokens(options_));
    return Status::Ok();
  }
  Result<std::int64_t> Computed(std::int64_t reported, std::int64_t generated) {
    LLMSYNC_ASSIGN_OR_RETURN(std::int64_t now, EngineTokens(options_));
    const std::int64_t delta = now - last_ - generated;
    last_ = now;
    return std::max(reported, delta);
  }

 private:
  client::ClientOptions options_;
  std::int64_t last_ = -1;
};

class NativeDriver : public TraceDriver {
 public:
  NativeDriver(const client::ClientOptions& options, const TraceConfig& config)
      : options_(options),
        config_(config),
        clients_(config.sessions),
        history_(config.sessions),
        engine_(options) {}

  Result<TurnSample> Turn(int session, int turn, const std::string& message) override {
    std::unique_ptr<client::Client>& c = clients_[session];
    if (!c) {
      c = std::make_unique<client::Client>(options_);
      LLMSYNC_RETURN_IF_ERROR(c->CreateSession());
      if (!config_.context_policy.empty()) LLMSYNC_RETURN_IF_ERROR(SetPolicy(c->SessionId()));
    }
    // Compaction runs (summaries) are the server's work for this turn too: count every token the
    // engine computed meanwhile, from the server's own counters.
    LLMSYNC_RETURN_IF_ERROR(engine_.Start());
    std::vector<client::NewNode> nodes;
    if (turn == 0) nodes.push_back({"system", TraceSystemPrompt()});
    nodes.push_back({"user", message});
    Clock::time_point start = Clock::now();
    std::uint64_t before = c->BytesSent();
    LLMSYNC_ASSIGN_OR_RETURN(client::AppendResult appended, c->Append(c->Head(), nodes));
    client::RunOptions ro;
    ro.from = appended.head;
    ro.max_tokens = config_.generate_tokens;
    ro.temperature = 0;
    ro.seed = config_.seed;
    LLMSYNC_ASSIGN_OR_RETURN(std::string run, c->StartRun(ro));
    TurnSample s;
    bool first = true;
    client::FollowCallbacks cb;
    cb.on_token = [&](std::string_view) {
      if (first) s.ttft_ms = MsSince(start);
      first = false;
    };
    LLMSYNC_ASSIGN_OR_RETURN(client::RunResult r, c->FollowRun(run, cb));
    if (r.status != "succeeded" || !r.cost)
      return Status::Internal("run " + run + " ended " + r.status + " " + r.error);
    s.bytes_sent = c->BytesSent() - before;
    s.prompt_tokens = r.cost->prompt_tokens;
    s.cached_tokens = r.cost->Cached();
    s.cached_field = "run.usage cached_tokens (native API)";
    s.computed_tokens = r.cost->recomputed;
    s.generated_tokens = r.cost->generated;
    s.server_ttft_ms = r.cost->ttft_ms;
    if (first) s.ttft_ms = MsSince(start);
    LLMSYNC_ASSIGN_OR_RETURN(s.computed_tokens, engine_.Computed(s.computed_tokens, s.generated_tokens));
    s.compacted =
        r.cost->prompt_tokens < (history_[session].empty() ? 0 : history_[session].back().prompt_tokens);
    // The head is the new assistant node; the replica learns it without a full sync.
    LLMSYNC_RETURN_IF_ERROR(c->Sync());
    FillNewTokens(history_[session], &s);
    history_[session].push_back(s);
    return s;
  }

 private:
  Status SetPolicy(const std::string& session) {
    client::HttpClient http(options_.host, options_.port, options_.timeout);
    Json body = {{"context", {{"policy", config_.context_policy}}}};
    if (config_.context_target > 0) body["context"]["target_tokens"] = config_.context_target;
    if (config_.context_budget > 0) body["context"]["budget_tokens"] = config_.context_budget;
    client::HeaderList headers = {{"Content-Type", "application/json"}};
    if (!options_.api_key.empty()) headers["Authorization"] = "Bearer " + options_.api_key;
    LLMSYNC_ASSIGN_OR_RETURN(client::HttpResult r,
                             http.Send("PATCH", "/v1/sessions/" + session, body.dump(), headers));
    if (r.status != 200) return Status::InvalidArgument("setting the context policy: " + r.body);
    return Status::Ok();
  }
  client::ClientOptions options_;
  TraceConfig config_;
  std::vector<std::unique_ptr<client::Client>> clients_;
  std::vector<std::vector<TurnSample>> history_;
  EngineCounter engine_;
};

class OpenAiDriver : public TraceDriver {
 public:
  OpenAiDriver(const client::ClientOptions& options, const OpenAiDriverOptions& openai,
               const TraceConfig& config)
      : http_(options.host, options.port, options.timeout),
        api_key_(options.api_key),
        openai_(openai),
        config_(config),
        messages_(config.sessions, Json::array()),
        history_(config.sessions),
        engine_(options) {}

  Result<TurnSample> Turn(int session, int turn, const std::string& message) override {
    Json& messages = messages_[session];
    if (turn == 0) messages.push_back({{"role", "system"}, {"content", TraceSystemPrompt()}});
    messages.push_back({{"role", "user"}, {"content", message}});
    const bool dropped = openai_.client_budget > 0 && FitClientSide(session);
    if (openai_.local) LLMSYNC_RETURN_IF_ERROR(engine_.Start());
    Json body = {{"model", openai_.model},
                 {"messages", messages},
                 {"max_tokens", config_.generate_tokens},
                 {"temperature", 0.0},
                 {"seed", config_.seed},
                 {"stream", true},
                 {"stream_options", {{"include_usage", true}}}};
    if (openai_.server_policy && !config_.context_policy.empty()) {
      body["llmsync"]["context"] = {{"policy", config_.context_policy}};
      if (config_.context_target > 0) body["llmsync"]["context"]["target_tokens"] = config_.context_target;
      if (config_.context_budget > 0) body["llmsync"]["context"]["budget_tokens"] = config_.context_budget;
    }
    std::string text = body.dump();
    client::HeaderList headers = {{"Content-Type", "application/json"}};
    if (!api_key_.empty()) headers["Authorization"] = "Bearer " + api_key_;
    TurnSample s;
    s.compacted = dropped;
    s.bytes_sent = text.size();
    std::string reply;
    bool first = true;
    Clock::time_point start = Clock::now();
    auto on_event = [&](const client::SseEvent& e) {
      if (e.data == "[DONE]") return false;
      Json chunk = Json::parse(e.data, nullptr, false);
      if (!chunk.is_object()) return true;
      if (chunk.contains("choices") && chunk["choices"].is_array() && !chunk["choices"].empty()) {
        const Json delta = chunk["choices"][0].value("delta", Json::object());
        // The first chunk usually carries only the role (content ""): TTFT waits for real text.
        // (Json::empty() is false for every string, "" included: compare the string itself.)
        const std::string content = delta.contains("content") && delta["content"].is_string()
                                        ? delta["content"].get<std::string>()
                                        : std::string();
        if (!content.empty()) {
          if (first) s.ttft_ms = MsSince(start);
          first = false;
          reply += content;
        }
      }
      // llmsync's extension on the usage chunk carries each run's cost, server TTFT included.
      if (chunk.contains("llmsync") && chunk["llmsync"].is_object() && chunk["llmsync"].contains("runs") &&
          chunk["llmsync"]["runs"].is_array() && !chunk["llmsync"]["runs"].empty()) {
        const Json& cost = chunk["llmsync"]["runs"][0].value("cost", Json::object());
        if (cost.contains("ttft_ms") && cost["ttft_ms"].is_number())
          s.server_ttft_ms = cost["ttft_ms"].get<double>();
      }
      if (chunk.contains("usage") && chunk["usage"].is_object()) {
        const Json& u = chunk["usage"];
        s.prompt_tokens = u.value("prompt_tokens", std::int64_t{0});
        s.generated_tokens = u.value("completion_tokens", std::int64_t{0});
      }
      if (chunk.contains("llmsync") && chunk["llmsync"].is_object() &&
          chunk["llmsync"].value("compaction", Json()).is_object()) {
        s.compacted = true;
      }
      // Each server reports its cache in its own field (llama-server: timings.prompt_n and
      // tokens_cached; OpenAI, vLLM, SGLang, llmsync: usage.prompt_tokens_details.cached_tokens).
      if (std::optional<remote::CacheReport> report = remote::ReadCacheReport(chunk);
          report && report->cached_tokens) {
        if (report->prompt_tokens && s.prompt_tokens == 0)
          s.prompt_tokens = static_cast<std::int64_t>(*report->prompt_tokens);
        s.cached_tokens = static_cast<std::int64_t>(*report->cached_tokens);
        s.cached_field = report->field;
      }
      return true;
    };
    int status = 0;
    std::string error_body;
    LLMSYNC_RETURN_IF_ERROR(
        http_.StreamRequest("POST", openai_.path, text, headers, on_event, &status, &error_body));
    if (status != 200) return client::StatusFromReply(status, error_body);
    if (first) s.ttft_ms = MsSince(start);
    s.computed_tokens = s.prompt_tokens - s.cached_tokens;
    if (openai_.local) {
      LLMSYNC_ASSIGN_OR_RETURN(s.computed_tokens, engine_.Computed(s.computed_tokens, s.generated_tokens));
    }
    if (!history_[session].empty() && s.prompt_tokens < history_[session].back().prompt_tokens)
      s.compacted = true;
    messages.push_back({{"role", "assistant"}, {"content", reply}});
    last_prompt_bytes_ = PromptBytes(messages) - reply.size();
    last_prompt_tokens_ = s.prompt_tokens;
    FillNewTokens(history_[session], &s);
    history_[session].push_back(s);
    return s;
  }

 private:
  static std::size_t PromptBytes(const Json& messages) {
    std::size_t n = 0;
    for (const Json& m : messages) n += m.value("content", std::string()).size();
    return n;
  }
  // Drops the oldest turns (user message and reply, after the system prompt) until the prompt,
  // estimated from the last turn's tokens per byte, leaves room for the answer under the budget.
  bool FitClientSide(int session) {
    Json& messages = messages_[session];
    const double per_byte = last_prompt_bytes_ > 0 ? static_cast<double>(last_prompt_tokens_) /
                                                         static_cast<double>(last_prompt_bytes_)
                                                   : 1.5;
    auto estimate = [&] { return static_cast<double>(PromptBytes(messages)) * per_byte; };
    const double limit = static_cast<double>(openai_.client_budget - config_.generate_tokens);
    bool dropped = false;
    while (messages.size() > 3 && estimate() > limit) {
      messages.erase(messages.begin() + 1, messages.begin() + 3);
      dropped = true;
    }
    return dropped;
  }

  client::HttpClient http_;
  std::string api_key_;
  OpenAiDriverOptions openai_;
  TraceConfig config_;
  std::vector<Json> messages_;
  std::vector<std::vector<TurnSample>> history_;
  EngineCounter engine_;
  std::size_t last_prompt_bytes_ = 0;
  std::int64_t last_prompt_tokens_ = 0;
};

}  // namespace

std::string TraceSystemPrompt() {
  return "You are an autonomous coding agent working in a repository. Think step by step, call tools when "
         "you "
         "need facts, and keep answers short.\n"
         "Tools (JSON schema):\n"
         "[{\"name\":\"search\",\"parameters\":{\"query\":\"string\"}},"
         "{\"name\":\"read_file\",\"parameters\":{\"path\":\"string\",\"offset\":\"integer\"}},"
         "{\"name\":\"run_tests\",\"parameters\":{\"filter\":\"string\"}},"
         "{\"name\":\"edit_file\",\"parameters\":{\"path\":\"string\",\"patch\":\"string\"}}]";
}

std::string TraceMessage(const TraceConfig& config, int session, int turn) {
  std::mt19937_64 rng(config.seed * 1000003ULL + static_cast<std::uint64_t>(session) * 7919ULL +
                      static_cast<std::uint64_t>(turn));
  static constexpr std::string_view kWords[] = {"build", "test", "file",  "error", "line", "fix",
                                                "cache", "node", "token", "state", "run",  "diff",
                                                "path",  "lock", "queue", "log"};
  std::string text = turn % 2 == 1 ? "tool_result(run_tests): " : "user: ";
  while (static_cast<int>(text.size()) < config.message_tokens) {
    text += kWords[rng() % std::size(kWords)];
    text += ' ';
  }
  text.resize(static_cast<std::size_t>(config.message_tokens));
  return text;
}

std::unique_ptr<TraceDriver> MakeNativeDriver(const client::ClientOptions& options,
                                              const TraceConfig& config) {
  return std::make_unique<NativeDriver>(options, config);
}

std::unique_ptr<TraceDriver> MakeOpenAiDriver(const client::ClientOptions& options,
                                              const OpenAiDriverOptions& openai, const TraceConfig& config) {
  return std::make_unique<OpenAiDriver>(options, openai, config);
}

}  // namespace llmsync::cli
