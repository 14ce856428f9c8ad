// Remote engines (issue 16): `llmsync serve --engine-url` in front of other `llmsync serve`
// processes over HTTP. The upstream is SIGKILLed mid-run and a second one finishes the run;
// seeded output through the remote path equals the local engine's; sessions stick to their
// upstream and the upstream's own cache report reaches run.usage; stateless conversations spread
// over the upstreams by prefix and return to their own; llmsync's /v1/completions takes
// token-id prompts; the field readers know each server's spelling.
#include <optional>

#include "remote/upstream_report.h"
#include "serve_process.h"

namespace llmsync::testing {
namespace {

std::string Url(const ServeProcess& p) { return "http://127.0.0.1:" + std::to_string(p.Port()); }

// The payloads of events of `type`, parsed.
std::vector<Json> EventsOf(const Streamed& s, const std::string& type) {
  std::vector<Json> out;
  for (const std::string& p : s.payloads) {
    if (p.rfind(type + " ", 0) == 0) out.push_back(Json::parse(p.substr(type.size() + 1)));
  }
  return out;
}

// Two upstream `llmsync serve` processes and a front that serves with both as remote engines.
struct FrontOfTwo {
  ServeProcess a;
  ServeProcess b;
  std::optional<ServeProcess> front_process;
  FrontOfTwo(const std::string& model, TestDir& dir)
      : a(model, dir.File("up_a")), b(model, dir.File("up_b")) {
    a.Start();
    b.Start();
    front_process.emplace(model, dir.File("front"),
                          std::vector<std::string>{"--engine-url", Url(a), "--engine-url", Url(b)});
    front_process->Start();
  }
};

TEST(RemoteEngineTest, UpstreamKilledMidRunAnotherFinishesItExactlyAsTheLocalEngine) {
  TestDir dir;
  std::string model = ServerTestEnv::TinyModel(dir);
  ServeProcess local(model, dir.File("local"));
  local.Start();
  std::string local_run = StartLongRun(local.Client());
  Streamed expected = ReadRun(local.Port(), local_run);
  ASSERT_EQ(expected.last_type, "run.completed");
  ASSERT_EQ(expected.tokens.size(), 1500u);
  local.Kill(SIGTERM);

  FrontOfTwo up(model, dir);
  ServeProcess &a = up.a, &b = up.b, &front = *up.front_process;
  std::string run = StartLongRun(front.Client());
  Streamed before = ReadRun(front.Port(), run, 25);
  ASSERT_EQ(before.tokens.size(), 25u);
  std::vector<Json> placed = EventsOf(before, "run.upstream");
  ASSERT_EQ(placed.size(), 1u);
  EXPECT_EQ(placed[0]["kind"], "llmsync");
  EXPECT_EQ(placed[0]["prompt"], "token_ids");
  EXPECT_EQ(placed[0]["token_ids"], "upstream");
  ServeProcess& serving = placed[0]["upstream"] == Url(a) ? a : b;
  const std::string other = placed[0]["upstream"] == Url(a) ? Url(b) : Url(a);
  int status = serving.Kill(SIGKILL);
  EXPECT_TRUE(WIFSIGNALED(status));

  Streamed after = ReadRun(front.Port(), run);
  EXPECT_EQ(after.last_type, "run.completed");
  for (std::size_t i = 0; i < before.payloads.size(); ++i) {
    ASSERT_EQ(after.payloads[i], before.payloads[i]) << "an event a subscriber already saw changed, at " << i;
  }
  std::vector<Json> moves = EventsOf(after, "run.upstream");
  // The kill must have landed mid-run: the run moved to the other upstream after a failure.
  ASSERT_GE(moves.size(), 2u);
  const Json& moved = moves.back();
  EXPECT_EQ(moved["upstream"], other);
  EXPECT_GE(moved["attempt"].get<int>(), 2);
  EXPECT_FALSE(moved["previous_error"].is_null());
  EXPECT_EQ(moved["continuation"], "exact") << "seeded on llmsync: sampling is keyed by (seed, position)";
  EXPECT_GE(moved["from_token"].get<std::uint64_t>(), 25u);
  EXPECT_LT(moved["from_token"].get<std::uint64_t>(), 1500u);
  EXPECT_EQ(after.tokens, expected.tokens) << "the remote path must produce the local engine's tokens";
  std::vector<Json> usage = EventsOf(after, "run.usage");
  ASSERT_EQ(usage.size(), 1u);
  EXPECT_EQ(usage[0]["upstream"]["url"], other);
  EXPECT_GE(usage[0]["upstream"]["attempts"].get<int>(), 2);
  front.Kill(SIGTERM);
}

TEST(RemoteEngineTest, SessionSticksToItsUpstreamWhoseCacheReportReachesTheUsage) {
  TestDir dir;
  std::string model = ServerTestEnv::TinyModel(dir);
  FrontOfTwo up(model, dir);
  ServeProcess& front = *up.front_process;
  client::HttpClient& c = front.Client();
  std::string s = PostJson(c, "/v1/sessions", Json::object())["id"];
  std::vector<std::string> upstreams;
  std::vector<Json> costs;
  Json parent = nullptr;
  for (int turn = 0; turn < 3; ++turn) {
    Json appended =
        PostJson(c, "/v1/sessions/" + s + "/nodes",
                 {{"parent", parent},
                  {"nodes", {{{"kind", "user"}, {"text", "Turn " + std::to_string(turn) + ": more."}}}}});
    ASSERT_TRUE(appended.contains("nodes")) << appended.dump();
    std::string run = PostJson(c, "/v1/sessions/" + s + "/runs", {{"max_tokens", 12}, {"seed", turn}})["id"];
    Streamed events = ReadRun(front.Port(), run);
    ASSERT_EQ(events.last_type, "run.completed");
    parent = EventsOf(events, "run.completed").at(0)["node_id"];
    upstreams.push_back(EventsOf(events, "run.upstream").at(0)["upstream"]);
    costs.push_back(EventsOf(events, "run.usage").at(0));
  }
  EXPECT_EQ(upstreams[1], upstreams[0]);
  EXPECT_EQ(upstreams[2], upstreams[0]);
  const Json& last = costs[2];
  ASSERT_TRUE(last.contains("upstream")) << last.dump();
  EXPECT_EQ(last["upstream"]["cached_field"], "usage.prompt_tokens_details.cached_tokens");
  // The upstream holds the earlier turns (prompt and generated tokens): its own report and
  // llmsync's expectation both say most of the prompt was reused, and run.usage follows them.
  std::uint64_t prompt = last["prompt_tokens"];
  std::uint64_t cached = last["upstream"]["cached_tokens"];
  std::uint64_t expected = last["upstream"]["expected_cached_tokens"];
  EXPECT_GT(cached, prompt / 2) << last.dump();
  EXPECT_GT(expected, prompt / 2) << last.dump();
  EXPECT_EQ(last["cached_tokens"]["ram"].get<std::uint64_t>(), cached);
  EXPECT_EQ(last["recomputed_tokens"].get<std::uint64_t>(), prompt - cached);
  front.Kill(SIGTERM);
}

// The OpenAI stateless view keeps a tenant's conversations in one session; dispatch by prefix
// still spreads them over the upstreams, and each one's later turns return to its own upstream.
TEST(RemoteEngineTest, StatelessConversationsSpreadOverUpstreamsAndEachReturnsToItsOwn) {
  TestDir dir;
  std::string model = ServerTestEnv::TinyModel(dir);
  FrontOfTwo up(model, dir);
  ServeProcess& front = *up.front_process;
  std::vector<Json> conversations = {
      Json::array({{{"role", "user"}, {"content", "Alpha: tell me about rivers."}}}),
      Json::array({{{"role", "user"}, {"content", "Beta: tell me about mountains."}}})};
  std::vector<std::string> home(conversations.size());
  for (int turn = 0; turn < 3; ++turn) {
    for (std::size_t k = 0; k < conversations.size(); ++k) {
      Json reply =
          PostJson(front.Client(), "/v1/chat/completions",
                   {{"model", "default"}, {"messages", conversations[k]}, {"max_tokens", 8}, {"seed", 3}});
      ASSERT_TRUE(reply.contains("llmsync")) << reply.dump();
      const Json& dispatch = reply["llmsync"]["runs"][0]["cost"]["dispatch"];
      const std::string upstream = dispatch["engine"];
      if (turn == 0) {
        home[k] = upstream;
        EXPECT_EQ(dispatch["reason"], "least_loaded") << dispatch.dump();
      } else {
        EXPECT_EQ(upstream, home[k]) << "conversation " << k << " turn " << turn;
        EXPECT_EQ(dispatch["reason"], "cache_hit") << dispatch.dump();
        EXPECT_GT(dispatch["matched_tokens"].get<std::uint64_t>(), 0u) << dispatch.dump();
      }
      conversations[k].push_back(reply["choices"][0]["message"]);
      conversations[k].push_back(
          {{"role", "user"}, {"content", "And then, turn " + std::to_string(turn) + "?"}});
    }
  }
  EXPECT_NE(home[0], home[1]) << "two new conversations go to two upstreams";
  front.Kill(SIGTERM);
}

// --engine-key: the key goes up as a bearer token; without it an upstream that needs one is
// refused with a message that says so.
TEST(RemoteEngineTest, EngineKeyReachesAnUpstreamThatRequiresOne) {
  TestDir dir;
  std::string model = ServerTestEnv::TinyModel(dir);
  const std::string config = dir.File("upstream.json");
  ASSERT_TRUE(
      WriteFileAtomically(Env::Default(), config, R"({"api_keys": {"sk-upstream": "front"}})").IsOk());
  ServeProcess up(model, dir.File("up"), {"--config", config});
  up.Start();
  auto one_run = [&](ServeProcess& front) {
    client::HttpClient& c = front.Client();
    std::string s = PostJson(c, "/v1/sessions", Json::object())["id"];
    PostJson(c, "/v1/sessions/" + s + "/nodes", {{"nodes", {{{"kind", "user"}, {"text", "Hello."}}}}});
    std::string run = PostJson(c, "/v1/sessions/" + s + "/runs", {{"max_tokens", 4}})["id"];
    return ReadRun(front.Port(), run);
  };
  ServeProcess keyed(model, dir.File("keyed"), {"--engine-url", Url(up), "--engine-key", "sk-upstream"});
  keyed.Start();
  EXPECT_EQ(one_run(keyed).last_type, "run.completed");
  keyed.Kill(SIGTERM);
  ServeProcess keyless(model, dir.File("keyless"), {"--engine-url", Url(up)});
  keyless.Start();
  Streamed refused = one_run(keyless);
  ASSERT_EQ(refused.last_type, "run.failed");
  EXPECT_NE(refused.payloads.back().find("--engine-key"), std::string::npos) << refused.payloads.back();
  keyless.Kill(SIGTERM);
}

TEST(RemoteEngineTest, CompletionsTakeTokenIdPromptsAndReturnTokenIds) {
  TestDir dir;
  std::string model = ServerTestEnv::TinyModel(dir);
  ServeProcess up(model, dir.File("up"));
  up.Start();
  client::HttpClient& c = up.Client();
  Json body = {{"prompt", {1, 40, 41, 42, 43}}, {"max_tokens", 6}, {"seed", 9}, {"temperature", 0.7}};
  Json first = PostJson(c, "/v1/completions", body);
  ASSERT_EQ(first["object"], "text_completion") << first.dump();
  ASSERT_EQ(first["choices"][0]["token_ids"].size(), 6u) << first.dump();
  EXPECT_EQ(first["choices"][0]["finish_reason"], "length");
  Json again = PostJson(c, "/v1/completions", body);
  EXPECT_EQ(again["choices"][0]["token_ids"], first["choices"][0]["token_ids"]) << "seeded";
  EXPECT_GE(again["usage"]["prompt_tokens_details"]["cached_tokens"].get<int>(), 4) << again.dump();

  // Streamed: one chunk per token with its id; the ids equal the non-streamed ones.
  body["stream"] = true;
  std::vector<std::int32_t> streamed;
  int status = 0;
  client::HttpClient s("127.0.0.1", up.Port());
  ASSERT_TRUE(s.StreamRequest(
                   "POST", "/v1/completions", body.dump(), {},
                   [&](const client::SseEvent& e) {
                     if (e.data == "[DONE]") return true;
                     Json j = Json::parse(e.data);
                     for (const Json& t : j["choices"][0]["token_ids"]) streamed.push_back(t);
                     return true;
                   },
                   &status)
                  .IsOk());
  EXPECT_EQ(status, 200);
  EXPECT_EQ(Json(streamed), first["choices"][0]["token_ids"]);

  for (const Json& bad : {Json{{"prompt", {1, 999999}}}, Json{{"prompt", Json::array()}},
                          Json{{"prompt", {"a", "b"}}}, Json{{"max_tokens", 3}}}) {
    auto r = c.PostJson("/v1/completions", bad.dump());
    ASSERT_TRUE(r.IsOk());
    EXPECT_EQ(r->status, 400) << bad.dump() << " -> " << r->body;
    EXPECT_NE(r->body.find("prompt"), std::string::npos) << r->body;
  }
}

TEST(RemoteEngineTest, BadOrUnreachableUpstreamsGiveClearErrors) {
  auto https = RunLlmsync("serve --engine-url https://127.0.0.1:1 --listen 127.0.0.1:0 --data-dir /tmp/x16a");
  EXPECT_EQ(https.exit_code, 2);
  EXPECT_NE(https.out.find("https is not supported"), std::string::npos) << https.out;
  auto port =
      RunLlmsync("serve --engine-url http://127.0.0.1:99999 --listen 127.0.0.1:0 --data-dir /tmp/x16b");
  EXPECT_EQ(port.exit_code, 2);
  EXPECT_NE(port.out.find("bad port"), std::string::npos) << port.out;

  TestDir dir;
  std::string model = ServerTestEnv::TinyModel(dir);
  ServeProcess front(model, dir.File("front"),
                     {"--engine-url", "http://127.0.0.1:" + std::to_string(FreePort())});
  front.Start();
  std::string run = StartLongRun(front.Client());
  Streamed events = ReadRun(front.Port(), run);
  EXPECT_EQ(events.last_type, "run.failed");
  std::vector<Json> failed = EventsOf(events, "run.failed");
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_NE(failed[0]["message"].get<std::string>().find("no upstream engine is reachable"),
            std::string::npos)
      << failed[0].dump();
  auto health = front.Client().Get("/healthz");
  ASSERT_TRUE(health.IsOk());
  EXPECT_EQ(health->status, 200);
}

TEST(UpstreamReportTest, ReadsEachServersCacheFieldAndNamesIt) {
  // llama-server: timings.prompt_n is the prefill it ran; the rest of the prompt was cached.
  auto llama = remote::ReadCacheReport(
      Json::parse(R"({"usage":{"prompt_tokens":1000},"timings":{"prompt_n":120},"tokens_cached":1010})"));
  ASSERT_TRUE(llama);
  EXPECT_EQ(llama->field, "timings.prompt_n");
  EXPECT_EQ(*llama->cached_tokens, 880u);
  auto llama_native =
      remote::ReadCacheReport(Json::parse(R"({"timings":{"prompt_n":20},"tokens_cached":80})"));
  ASSERT_TRUE(llama_native);
  EXPECT_EQ(*llama_native->prompt_tokens, 100u);
  EXPECT_EQ(*llama_native->cached_tokens, 80u);
  auto openai = remote::ReadCacheReport(
      Json::parse(R"({"usage":{"prompt_tokens":50,"prompt_tokens_details":{"cached_tokens":32}}})"));
  ASSERT_TRUE(openai);
  EXPECT_EQ(openai->field, "usage.prompt_tokens_details.cached_tokens");
  EXPECT_EQ(*openai->cached_tokens, 32u);
  auto only_cached = remote::ReadCacheReport(Json::parse(R"({"tokens_cached":7})"));
  ASSERT_TRUE(only_cached);
  EXPECT_EQ(only_cached->field, "tokens_cached");
  auto none = remote::ReadCacheReport(Json::parse(R"({"usage":{"prompt_tokens":50}})"));
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->cached_tokens.has_value()) << "not reported is not zero";
  EXPECT_FALSE(remote::ReadCacheReport(Json::parse(R"({"choices":[]})")));

  remote::CompletionPiece vllm = remote::ReadCompletionPiece(
      Json::parse(R"({"choices":[{"text":"hi","token_ids":[5,6],"finish_reason":null}]})"));
  EXPECT_TRUE(vllm.has_token_ids);
  EXPECT_EQ(vllm.token_ids, (std::vector<std::int32_t>{5, 6}));
  remote::CompletionPiece llama_piece = remote::ReadCompletionPiece(
      Json::parse(R"({"choices":[{"text":"x","finish_reason":"stop"}],"tokens":[9]})"));
  EXPECT_EQ(llama_piece.token_ids, (std::vector<std::int32_t>{9}));
  EXPECT_EQ(*llama_piece.finish_reason, "stop");
  remote::CompletionPiece text_only =
      remote::ReadCompletionPiece(Json::parse(R"({"choices":[{"text":"x"}]})"));
  EXPECT_FALSE(text_only.has_token_ids);
}

}  // namespace
}  // namespace llmsync::testing
