#include "remote/http_remote_engine.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "base/logging.h"
#include "client/http_client.h"
#include "remote/upstream_pool.h"
#include "remote/upstream_report.h"

namespace llmsync::remote {
namespace {

using Json = nlohmann::json;
using text::TokenId;

std::string KindFromOwner(const std::string& owned_by) {
  if (owned_by == "llmsync") return "llmsync";
  if (owned_by == "llamacpp" || owned_by == "llama.cpp") return "llama.cpp";
  if (owned_by == "vllm") return "vllm";
  if (owned_by == "sglang") return "sglang";
  return "openai-compatible";
}

std::string Clip(const std::string& s) { return s.size() > 300 ? s.substr(0, 300) + "..." : s; }

class HttpRemoteEngine;

// One run's stream from one upstream, on its own thread.
class Generation final : public runs::RemoteGeneration {
 public:
  Generation(HttpRemoteEngine* engine, const UpstreamChoice& choice, UpstreamIdentity identity,
             runs::RemoteRequest request, std::function<void()> wake);
  ~Generation() override {
    aborting_ = true;  // an abort is not the upstream's failure
    client_.Abort();
    thread_.join();
  }
  void Launch() {
    thread_ = std::thread([this] { Run(); });
  }

  runs::RemoteProgress Take() override {
    std::lock_guard<std::mutex> lock(mu_);
    runs::RemoteProgress out = std::move(pending_);
    pending_ = runs::RemoteProgress{};
    out.ended = ended_;
    if (ended_) {
      out.error = end_status_;
      out.finish_reason = finish_reason_;
    }
    return out;
  }
  bool WaitForEnd(std::chrono::milliseconds timeout) override {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return ended_; });
  }
  runs::UpstreamEvent Placement() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return placement_;
  }

 private:
  void Run();
  // One POST; `refused` is set when the upstream answered 400/422 to a token-id prompt.
  Status StreamOnce(bool text_prompt, bool* refused);
  void Push(std::vector<TokenId> tokens, std::optional<std::string> finish,
            const std::optional<CacheReport>& report);

  HttpRemoteEngine* const engine_;
  const std::size_t upstream_;
  const runs::RemoteRequest request_;
  const std::function<void()> wake_;
  UpstreamIdentity identity_;  // producer thread only
  client::HttpClient client_;
  std::thread thread_;
  std::vector<TokenId> produced_;  // producer thread only
  std::atomic<bool> aborting_{false};

  mutable std::mutex mu_;
  std::condition_variable cv_;
  runs::RemoteProgress pending_;                   // GUARDED_BY(mu_)
  runs::UpstreamEvent placement_;                  // GUARDED_BY(mu_)
  runs::UpstreamCost cost_;                        // GUARDED_BY(mu_)
  std::optional<std::string> finish_reason_seen_;  // GUARDED_BY(mu_)
  bool ended_ = false;                             // GUARDED_BY(mu_)
  Status end_status_;                              // GUARDED_BY(mu_)
  std::string finish_reason_;                      // GUARDED_BY(mu_)
};

class HttpRemoteEngine final : public runs::RemoteEngine {
 public:
  HttpRemoteEngine(HttpRemoteOptions options, std::vector<UpstreamAddress> upstreams,
                   const text::Tokenizer* tokenizer)
      : options_(std::move(options)), pool_(std::move(upstreams), options_.down_ms), tokenizer_(tokenizer) {
    if (options_.env == nullptr) options_.env = Env::Default();
  }

  Result<std::unique_ptr<runs::RemoteGeneration>> Start(const runs::RemoteRequest& request,
                                                        std::function<void()> wake) override {
    std::string errors;
    for (const UpstreamChoice& choice : pool_.Candidates(request.tenant, request.tokens, NowMs())) {
      const std::size_t i = choice.upstream;
      UpstreamIdentity identity = pool_.Identity(i);
      if (!identity.known) {
        Result<UpstreamIdentity> probed = Probe(i);
        if (!probed.IsOk()) {
          pool_.MarkDown(i, NowMs());
          errors += (errors.empty() ? "" : "; ") + pool_.At(i).url + ": " + probed.GetStatus().Message();
          continue;
        }
        identity = *probed;
        pool_.SetIdentity(i, identity);
        LLMSYNC_LOG(kInfo) << "upstream engine " << pool_.At(i).url << ": " << identity.kind << ", model '"
                           << identity.model << "'";
      }
      pool_.Begin(i);
      auto g = std::make_unique<Generation>(this, choice, identity, request, std::move(wake));
      g->Launch();
      return std::unique_ptr<runs::RemoteGeneration>(std::move(g));
    }
    return Status::Unavailable("no upstream engine is reachable: " + errors);
  }
  int MaxAttempts() const override { return std::max<int>(3, 2 * static_cast<int>(pool_.Size())); }
  std::string Describe() const override {
    std::string out;
    for (std::size_t i = 0; i < pool_.Size(); ++i) out += (i == 0 ? "" : ", ") + pool_.At(i).url;
    return out;
  }

  std::int64_t NowMs() const { return options_.env->NowMicros() / 1000; }
  client::HeaderList AuthHeaders() const {
    client::HeaderList headers;
    if (!options_.api_key.empty()) headers["Authorization"] = "Bearer " + options_.api_key;
    return headers;
  }
  UpstreamPool& Pool() { return pool_; }
  const HttpRemoteOptions& Options() const { return options_; }
  const text::Tokenizer& Tokenizer() const { return *tokenizer_; }

 private:
  // GET /v1/models: which server this is and the model id to send. A server without the route is
  // a generic OpenAI-compatible one; one that cannot be reached is down.
  Result<UpstreamIdentity> Probe(std::size_t i) {
    const UpstreamAddress& a = pool_.At(i);
    client::HttpClient c(a.host, a.port, options_.probe_timeout);
    LLMSYNC_ASSIGN_OR_RETURN(client::HttpResult r, c.Get("/v1/models", AuthHeaders()));
    if (r.status == 401 || r.status == 403) {
      return Status::Unavailable(
          "the upstream refused our credentials (HTTP " + std::to_string(r.status) +
          (options_.api_key.empty() ? "; set --engine-key)" : "; check --engine-key)"));
    }
    UpstreamIdentity id;
    id.known = true;
    id.kind = "openai-compatible";
    Json j = Json::parse(r.body, nullptr, false);
    if (r.status == 200 && j.is_object() && j.contains("data") && j["data"].is_array() &&
        !j["data"].empty() && j["data"][0].is_object()) {
      const Json& m = j["data"][0];
      id.model = m.value("id", std::string());
      id.kind = KindFromOwner(m.value("owned_by", std::string()));
    }
    return id;
  }

  HttpRemoteOptions options_;
  UpstreamPool pool_;
  const text::Tokenizer* tokenizer_;
};

Generation::Generation(HttpRemoteEngine* engine, const UpstreamChoice& choice, UpstreamIdentity identity,
                       runs::RemoteRequest request, std::function<void()> wake)
    : engine_(engine),
      upstream_(choice.upstream),
      request_(std::move(request)),
      wake_(std::move(wake)),
      identity_(std::move(identity)),
      client_(engine->Pool().At(choice.upstream).host, engine->Pool().At(choice.upstream).port,
              engine->Options().read_timeout) {
  placement_.upstream = engine->Pool().At(choice.upstream).url;
  placement_.reason = choice.reason;
  placement_.matched_tokens = choice.matched_tokens;
  placement_.kind = identity_.kind;
  // llmsync keys sampling by (seed, position): a seeded continuation on another llmsync equals
  // the uninterrupted run. Other servers seed a generator per request, so only greedy is exact.
  placement_.exact = request_.sampling.temperature <= 0 || identity_.kind == "llmsync";
  placement_.text_prompt = identity_.text_prompts;
  cost_.upstream = placement_.upstream;
  cost_.kind = identity_.kind;
  cost_.expected_cached_tokens = choice.matched_tokens;
  cost_.reason = choice.reason;
  cost_.matched_tokens = choice.matched_tokens;
  pending_.cost = cost_;
}

void Generation::Push(std::vector<TokenId> tokens, std::optional<std::string> finish,
                      const std::optional<CacheReport>& report) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.tokens.insert(pending_.tokens.end(), tokens.begin(), tokens.end());
    if (finish) finish_reason_seen_ = finish;
    if (report) {
      cost_.prompt_tokens = report->prompt_tokens;
      cost_.cached_tokens = report->cached_tokens;
      cost_.cached_field = report->field;
      pending_.cost = cost_;
    }
  }
  wake_();
}

Status Generation::StreamOnce(bool text_prompt, bool* refused) {
  *refused = false;
  const text::Tokenizer& tok = engine_->Tokenizer();
  const engine::SamplingParams& s = request_.sampling;
  Json body = {{"max_tokens", request_.max_tokens},
               {"stream", true},
               {"stream_options", {{"include_usage", true}}},
               {"temperature", s.temperature},
               {"top_p", s.top_p},
               {"seed", s.seed},
               {"return_token_ids", true},  // vLLM
               {"return_tokens", true},     // llama-server
               {"cache_prompt", true}};     // llama-server (its default on recent versions)
  if (s.top_k > 0) body["top_k"] = s.top_k;
  if (s.min_p > 0) body["min_p"] = s.min_p;
  if (s.repeat_penalty != 1.0f) body["repeat_penalty"] = s.repeat_penalty;
  if (!identity_.model.empty()) body["model"] = identity_.model;
  if (text_prompt) {
    // The frozen tokens spelled out: the template's rendering, special tokens included.
    LLMSYNC_ASSIGN_OR_RETURN(std::string text, tok.Decode(request_.tokens));
    body["prompt"] = std::move(text);
  } else {
    body["prompt"] = request_.tokens;
  }
  bool done = false;
  Status parse_error;
  auto on_event = [&](const client::SseEvent& e) {
    if (e.data == "[DONE]") {
      done = true;
      return true;
    }
    Json j = Json::parse(e.data, nullptr, false);
    if (j.is_discarded()) {
      parse_error = Status::Unavailable("the upstream sent a chunk that is not JSON: " + Clip(e.data));
      return false;
    }
    CompletionPiece piece = ReadCompletionPiece(j);
    if (piece.error) {
      parse_error = Status::Unavailable("the upstream reported an error mid-stream: " + *piece.error);
      return false;
    }
    std::vector<TokenId> tokens;
    if (piece.has_token_ids) {
      tokens = std::move(piece.token_ids);
    } else if (!piece.text.empty()) {
      // No ids from this server: re-tokenize its text (the run's run.upstream event says so).
      text::EncodeOptions eo;
      eo.space_prefix = false;
      eo.parse_special = true;
      auto ids = tok.Encode(piece.text, eo);
      if (!ids.IsOk()) {
        parse_error = ids.GetStatus();
        return false;
      }
      tokens = std::move(ids).Value();
      std::lock_guard<std::mutex> lock(mu_);
      placement_.token_ids = false;
    }
    for (TokenId t : tokens) {
      if (t < 0 || t >= tok.VocabSize()) {
        parse_error =
            Status::Unavailable("the upstream returned token id " + std::to_string(t) +
                                ", outside this model's vocabulary (is it serving the same model?)");
        return false;
      }
    }
    produced_.insert(produced_.end(), tokens.begin(), tokens.end());
    Push(std::move(tokens), piece.finish_reason, ReadCacheReport(j));
    return true;
  };
  int status = 0;
  std::string error_body;
  Status sent = client_.StreamRequest("POST", "/v1/completions",
                                      body.dump(-1, ' ', false, Json::error_handler_t::replace),
                                      engine_->AuthHeaders(), on_event, &status, &error_body);
  LLMSYNC_RETURN_IF_ERROR(sent);
  LLMSYNC_RETURN_IF_ERROR(parse_error);
  if (status < 200 || status >= 300) {
    *refused = !text_prompt && (status == 400 || status == 422) && identity_.kind != "llmsync";
    return Status::Unavailable("the upstream answered HTTP " + std::to_string(status) + ": " +
                               Clip(error_body));
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!done && !finish_reason_seen_) {
    return Status::Unavailable("the upstream's stream ended before the generation finished");
  }
  finish_reason_ = finish_reason_seen_.value_or("stop");
  return Status::Ok();
}

void Generation::Run() {
  bool text_prompt = identity_.text_prompts;
  bool refused = false;
  Status result = StreamOnce(text_prompt, &refused);
  if (refused && produced_.empty()) {
    LLMSYNC_LOG(kWarning) << "upstream " << engine_->Pool().At(upstream_).url
                          << " refused a token-id prompt (" << result.Message()
                          << "); sending prompts as text rendered with the model's template from now on";
    identity_.text_prompts = true;
    engine_->Pool().SetIdentity(upstream_, identity_);
    {
      std::lock_guard<std::mutex> lock(mu_);
      placement_.text_prompt = true;
    }
    result = StreamOnce(true, &refused);
  }
  std::vector<TokenId> held = request_.tokens;
  held.insert(held.end(), produced_.begin(), produced_.end());
  engine_->Pool().End(upstream_, result.IsOk() || aborting_, request_.tenant, request_.tokens,
                      std::move(held), engine_->NowMs());
  {
    std::lock_guard<std::mutex> lock(mu_);
    ended_ = true;
    end_status_ = result;
  }
  cv_.notify_all();
  wake_();
}

}  // namespace

Result<std::unique_ptr<runs::RemoteEngine>> MakeHttpRemoteEngine(HttpRemoteOptions options,
                                                                 const text::Tokenizer* tokenizer) {
  if (options.urls.empty()) return Status::InvalidArgument("no engine URL given");
  std::vector<UpstreamAddress> upstreams;
  for (const std::string& url : options.urls) {
    LLMSYNC_ASSIGN_OR_RETURN(UpstreamAddress a, ParseUpstreamUrl(url));
    upstreams.push_back(std::move(a));
  }
  return std::unique_ptr<runs::RemoteEngine>(
      std::make_unique<HttpRemoteEngine>(std::move(options), std::move(upstreams), tokenizer));
}

}  // namespace llmsync::remote
