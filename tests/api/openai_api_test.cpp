// The OpenAI-compatible endpoints through a real server (server_test_env.h): prefix reuse for a
// stateless client, divergence reports, n > 1 sharing one prefill, exact Responses stream resume,
// and 400s for malformed requests.
#include <chrono>
#include <future>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "server_test_env.h"

namespace llmsync::testing {
namespace {

class OpenAiApiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_dir_ = new TestDir();  // NOLINT: one shared model per suite, freed in TearDownTestSuite
    model_ = ServerTestEnv::TinyModel(*model_dir_);
  }
  static void TearDownTestSuite() {
    delete model_dir_;  // NOLINT
    model_dir_ = nullptr;
  }
  void SetUp() override {
    env_ = std::make_unique<ServerTestEnv>(model_);
    Status s = env_->Start(dir_.File("data"));
    ASSERT_TRUE(s.IsOk()) << s.ToString();
  }
  void TearDown() override { env_->Stop(); }

  // A counter from /metrics (0 when absent).
  std::uint64_t Metric(const std::string& name) {
    auto r = env_->Client().Get("/metrics");
    EXPECT_TRUE(r.IsOk());
    if (!r.IsOk()) return 0;
    std::string needle = "\n" + name + " ";
    std::size_t at = ("\n" + r->body).find(needle);
    if (at == std::string::npos) return 0;
    return std::stoull(r->body.substr(at + name.size()));
  }

  client::HttpResult PostRaw(const std::string& target, const std::string& body) {
    auto r = env_->Client().PostJson(target, body);
    EXPECT_TRUE(r.IsOk()) << r.GetStatus().ToString();
    return r.IsOk() ? *r : client::HttpResult{};
  }

  static inline TestDir* model_dir_ = nullptr;
  static inline std::string model_;
  TestDir dir_;
  std::unique_ptr<ServerTestEnv> env_;
};

Json Message(const std::string& role, const std::string& content) {
  return {{"role", role}, {"content", content}};
}

TEST_F(OpenAiApiTest, ResendingATenTurnHistoryComputesOnlyTheNewTokens) {
  Json messages = Json::array({Message("system", "You are a helpful assistant. Answer briefly.")});
  std::uint64_t previous_total = 0;
  for (int turn = 0; turn < 10; ++turn) {
    messages.push_back(Message("user", "Question number " + std::to_string(turn) + "?"));
    std::uint64_t prefilled_before = Metric("llmsync_tokens_prefilled_total");
    auto [status, body] = env_->Post(
        "/v1/chat/completions", {{"model", "m"}, {"messages", messages}, {"max_tokens", 6}, {"seed", turn}});
    ASSERT_EQ(status, 200) << body.dump();
    const Json& usage = body["usage"];
    std::uint64_t prompt = usage["prompt_tokens"];
    std::uint64_t cached = usage["prompt_tokens_details"]["cached_tokens"];
    EXPECT_EQ(usage["completion_tokens"], 6);
    EXPECT_EQ(body["llmsync"]["reused_nodes"], turn == 0 ? 0 : 2 * turn + 1) << body["llmsync"].dump();
    EXPECT_EQ(body["llmsync"]["appended_nodes"], turn == 0 ? 2 : 1);
    if (turn > 0) {
      // Everything the previous turn computed is served from the cache; only its last sampled
      // token (never fed) and the new user message are computed.
      EXPECT_GE(cached, previous_total - 1) << "turn " << turn;
      EXPECT_LT(prompt - cached, 120u) << "turn " << turn;
    }
    EXPECT_EQ(Metric("llmsync_tokens_prefilled_total") - prefilled_before, prompt - cached)
        << "turn " << turn;
    previous_total = usage["total_tokens"];
    messages.push_back(Message("assistant", body["choices"][0]["message"]["content"].get<std::string>()));
  }
}

TEST_F(OpenAiApiTest, DivergenceNamesTheMessageAndCharacterOffset) {
  Json first = Json::array({Message("system", "Today is 2024-05-01. Be brief."), Message("user", "Hi")});
  auto [s1, b1] = env_->Post("/v1/chat/completions", {{"messages", first}, {"max_tokens", 2}});
  ASSERT_EQ(s1, 200) << b1.dump();
  EXPECT_TRUE(b1["llmsync"]["divergence"].is_null());

  Json changed = first;
  changed[0]["content"] = "Today is 2024-05-02. Be brief.";
  auto r = PostRaw("/v1/chat/completions", Json{{"messages", changed}, {"max_tokens", 2}}.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  Json body = Json::parse(r.body);
  EXPECT_EQ(body["llmsync"]["divergence"]["message_index"], 0);
  EXPECT_EQ(body["llmsync"]["divergence"]["char_offset"], 18);
  ASSERT_TRUE(r.headers.count("x-llmsync-divergence"));
  EXPECT_EQ(r.headers["x-llmsync-divergence"].rfind("message=0; offset=18; byte_offset=18; node=", 0), 0u)
      << r.headers["x-llmsync-divergence"];

  // A later message with multi-byte characters before the change: offsets in code points and bytes.
  Json later = first;
  later.push_back(Message("assistant", b1["choices"][0]["message"]["content"].get<std::string>()));
  later.push_back(Message("user", "héllo wörld, version 1"));
  ASSERT_EQ(env_->Post("/v1/chat/completions", {{"messages", later}, {"max_tokens", 2}}).first, 200);
  later[3]["content"] = "héllo wörld, version 2";
  auto [s3, b3] = env_->Post("/v1/chat/completions", {{"messages", later}, {"max_tokens", 2}});
  ASSERT_EQ(s3, 200);
  EXPECT_EQ(b3["llmsync"]["reused_nodes"], 3);
  EXPECT_EQ(b3["llmsync"]["divergence"]["message_index"], 3);
  EXPECT_EQ(b3["llmsync"]["divergence"]["char_offset"], 21);
  EXPECT_EQ(b3["llmsync"]["divergence"]["byte_offset"], 23);
}

// Issue 17: node ids are content hashes, so the index used to match a resent message against a
// hidden node of the same text and report it reused: an exact guess of hidden text answered
// reused_nodes 1, a wrong one 0. Now both get the same answer.
TEST_F(OpenAiApiTest, AGuessOfHiddenTextIsIndistinguishableFromAWrongGuess) {
  const std::string secret = "The launch code is 7431.";
  // Each guess on a fresh server holding the same hidden node, so one guess cannot see the other.
  int trial_index = 0;
  auto trial = [&](const std::string& guess, std::string* hidden_id) {
    env_->Stop();
    Status started = env_->Start(dir_.File("trial" + std::to_string(trial_index++)));
    EXPECT_TRUE(started.IsOk()) << started.ToString();
    Json first = Json::array({Message("system", "Be brief."), Message("user", "Hi")});
    auto [s1, b1] = env_->Post("/v1/chat/completions", {{"messages", first}, {"max_tokens", 1}});
    EXPECT_EQ(s1, 200) << b1.dump();
    std::string session = b1["llmsync"]["session"];
    // A hidden user node under the system node (appended through the native API).
    auto [sg, tree] = env_->Get("/v1/sessions/" + session);
    std::string system_node;
    for (const Json& n : tree["nodes"]) {
      if (n["kind"] == "system") system_node = n["id"];
    }
    EXPECT_FALSE(system_node.empty()) << tree.dump();
    auto [sa, appended] =
        env_->Post("/v1/sessions/" + session + "/nodes",
                   {{"parent", system_node},
                    {"nodes", {{{"kind", "user"}, {"text", secret}, {"visibility", "hidden"}}}}});
    EXPECT_EQ(sa, 201) << appended.dump();
    *hidden_id = appended["nodes"][0]["id"];
    Json messages = Json::array({Message("system", "Be brief."), Message("user", guess)});
    auto [status, body] = env_->Post("/v1/chat/completions", {{"messages", messages}, {"max_tokens", 1}});
    EXPECT_EQ(status, 200) << body.dump();
    return body;
  };
  std::string hidden_exact, hidden_wrong;
  Json exact = trial(secret, &hidden_exact);
  Json wrong = trial("The launch code is 7432.", &hidden_wrong);
  EXPECT_EQ(hidden_exact, hidden_wrong) << "both servers hold the same hidden node";
  for (const char* field : {"reused_nodes", "appended_nodes", "reused_tokens", "divergence"}) {
    EXPECT_EQ(exact["llmsync"][field], wrong["llmsync"][field])
        << field << ": " << exact["llmsync"].dump() << " vs " << wrong["llmsync"].dump();
  }
  EXPECT_EQ(exact["llmsync"]["reused_nodes"], 1) << "only the system message is reused";
  EXPECT_EQ(exact["usage"]["prompt_tokens"], wrong["usage"]["prompt_tokens"]);
  EXPECT_EQ(exact["usage"]["prompt_tokens_details"]["cached_tokens"],
            wrong["usage"]["prompt_tokens_details"]["cached_tokens"]);
  EXPECT_NE(exact["llmsync"]["node"], hidden_exact) << "the guess became its own public node";
}

TEST_F(OpenAiApiTest, SamplesShareOnePrefill) {
  std::string long_prompt;
  for (int i = 0; i < 12; ++i) long_prompt += "This sentence makes the prompt longer. ";
  std::uint64_t prefilled_before = Metric("llmsync_tokens_prefilled_total");
  auto [status, body] = env_->Post("/v1/chat/completions", {{"messages", {Message("user", long_prompt)}},
                                                            {"max_tokens", 5},
                                                            {"n", 3},
                                                            {"temperature", 1.0},
                                                            {"seed", 5}});
  ASSERT_EQ(status, 200) << body.dump();
  ASSERT_EQ(body["choices"].size(), 3u);
  const Json& runs = body["llmsync"]["runs"];
  ASSERT_EQ(runs.size(), 3u);
  std::uint64_t prompt = runs[0]["cost"]["prompt_tokens"];
  ASSERT_GT(prompt, 400u);
  EXPECT_GE(runs[0]["cost"]["recomputed_tokens"].get<std::uint64_t>(), prompt - 32);  // the one prefill
  std::uint64_t total_recomputed = 0;
  for (const Json& run : runs) total_recomputed += run["cost"]["recomputed_tokens"].get<std::uint64_t>();
  for (int i = 1; i < 3; ++i) {
    // The others reuse the prompt the first one computed; only its last token is fed again.
    EXPECT_EQ(runs[i]["cost"]["recomputed_tokens"].get<std::uint64_t>(), 1u) << runs[i].dump();
  }
  EXPECT_EQ(Metric("llmsync_tokens_prefilled_total") - prefilled_before, total_recomputed);
  EXPECT_EQ(body["usage"]["completion_tokens"], 15);
}

// A non-streaming completion waits for its run without holding a server thread: with one HTTP
// thread, other requests are answered while it waits.
TEST_F(OpenAiApiTest, AWaitingCompletionHoldsNoServerThread) {
  env_->Stop();
  api::ServerConfig config;
  config.http_threads = 1;
  config.max_active_runs = 1;
  ASSERT_TRUE(env_->Start(dir_.File("one-thread"), config).IsOk());
  // A long native run takes the only run slot, so the completion below queues behind it.
  auto [created, session] = env_->Post("/v1/sessions", Json::object());
  ASSERT_EQ(created, 201) << session;
  const std::string sid = session["id"].get<std::string>();
  auto [appended, nodes] =
      env_->Post("/v1/sessions/" + sid + "/nodes", {{"nodes", {{{"kind", "user"}, {"text", "go"}}}}});
  ASSERT_EQ(appended, 201) << nodes;
  auto [started, long_run] = env_->Post("/v1/sessions/" + sid + "/runs", {{"max_tokens", 4000}});
  ASSERT_EQ(started, 202) << long_run;
  const std::string long_id = long_run["id"].get<std::string>();
  // On a loaded machine the scheduler may not have picked the long run up yet: wait until it holds
  // the slot, so the completion really queues behind it.
  std::string long_status;
  for (int i = 0; i < 2500 && long_status != "running"; ++i) {
    if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    auto [status_code, rec] = env_->Get("/v1/runs/" + long_id);
    ASSERT_EQ(status_code, 200) << rec;
    long_status = rec["status"].get<std::string>();
  }
  ASSERT_EQ(long_status, "running") << "the long run never started";
  const std::uint64_t runs_before = Metric("llmsync_runs_total");

  const std::uint16_t port = env_->Port();
  auto completion = std::async(std::launch::async, [port] {
    client::HttpClient c("127.0.0.1", port, std::chrono::seconds(120));
    return c.PostJson("/v1/chat/completions",
                      Json{{"messages", {Message("user", "hi")}}, {"max_tokens", 2}}.dump());
  });
  for (int i = 0; i < 1000 && Metric("llmsync_runs_total") == runs_before; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  ASSERT_GT(Metric("llmsync_runs_total"), runs_before) << "the completion's run was never submitted";

  // The only HTTP thread is free: these are answered while the completion still waits.
  auto [health_status, health] = env_->Get("/healthz");
  EXPECT_EQ(health_status, 200) << health;
  auto [run_status, record] = env_->Get("/v1/runs/" + long_id);
  ASSERT_EQ(run_status, 200) << record;
  EXPECT_EQ(record["status"], "running") << "answered before the long run ended";
  EXPECT_EQ(completion.wait_for(std::chrono::seconds(0)), std::future_status::timeout);

  auto [cancelled, ignored] = env_->Post("/v1/runs/" + long_id + "/cancel", Json::object());
  EXPECT_EQ(cancelled, 200) << ignored;
  auto reply = completion.get();
  ASSERT_TRUE(reply.IsOk()) << reply.GetStatus().ToString();
  ASSERT_EQ(reply->status, 200) << reply->body;
  Json body = Json::parse(reply->body, nullptr, false);
  EXPECT_EQ(body["object"], "chat.completion") << reply->body;
  EXPECT_EQ(body["usage"]["completion_tokens"], 2) << reply->body;
}

TEST_F(OpenAiApiTest, ResponseStreamResumesExactly) {
  auto [status, created] = env_->Post(
      "/v1/responses", {{"input", "Tell a story."}, {"background", true}, {"max_output_tokens", 20}});
  ASSERT_EQ(status, 200) << created.dump();
  std::string id = created["id"];
  auto read = [&](const std::string& query) {
    std::vector<std::pair<std::int64_t, std::string>> events;
    int code = 0;
    Status s = env_->Client().Stream(
        "/v1/responses/" + id + "?stream=true" + query, {},
        [&](const client::SseEvent& e) {
          Json j = Json::parse(e.data);
          events.emplace_back(j["sequence_number"].get<std::int64_t>(), e.data);
          return true;
        },
        &code);
    EXPECT_TRUE(s.IsOk()) << s.ToString();
    EXPECT_EQ(code, 200);
    return events;
  };
  auto all = read("");
  ASSERT_GT(all.size(), 10u);
  EXPECT_EQ(Json::parse(all.front().second)["type"], "response.created");
  EXPECT_EQ(Json::parse(all.back().second)["type"], "response.incomplete");
  for (std::size_t cut : {std::size_t{0}, std::size_t{3}, all.size() / 2, all.size() - 2}) {
    auto rest = read("&starting_after=" + std::to_string(all[cut].first));
    std::vector<std::pair<std::int64_t, std::string>> expected(
        all.begin() + static_cast<std::ptrdiff_t>(cut) + 1, all.end());
    EXPECT_EQ(rest, expected) << "starting_after " << all[cut].first;
  }
  auto [s2, polled] = env_->Get("/v1/responses/" + id);
  ASSERT_EQ(s2, 200);
  EXPECT_EQ(polled["status"], "incomplete");
  EXPECT_EQ(polled["usage"]["output_tokens"], 20);
}

// DELETE /v1/responses/{id} is durable: after a restart the response is still gone.
TEST_F(OpenAiApiTest, ADeletedResponseStaysDeletedAcrossARestart) {
  auto [status, created] = env_->Post("/v1/responses", {{"input", "Forget this."}, {"max_output_tokens", 3}});
  ASSERT_EQ(status, 200) << created.dump();
  const std::string id = created["id"];
  auto [deleted_status, deleted] = env_->Delete("/v1/responses/" + id);
  ASSERT_EQ(deleted_status, 200) << deleted;
  EXPECT_EQ(deleted["deleted"], true);
  EXPECT_EQ(env_->Get("/v1/responses/" + id).first, 404);
  EXPECT_EQ(env_->Delete("/v1/responses/" + id).first, 404);
  auto [follow_status, follow] = env_->Post(
      "/v1/responses", {{"input", "And then?"}, {"previous_response_id", id}, {"max_output_tokens", 2}});
  EXPECT_EQ(follow_status, 404) << follow;

  env_->Stop();
  ASSERT_TRUE(env_->Start(dir_.File("data")).IsOk());
  EXPECT_EQ(env_->Get("/v1/responses/" + id).first, 404);
  EXPECT_EQ(env_->Get("/v1/responses/" + id + "?stream=true").first, 404);
}

TEST_F(OpenAiApiTest, StructuredOutputAlwaysParsesAndValidates) {
  Json schema = {{"type", "object"},
                 {"properties",
                  {{"name", {{"type", "string"}}},
                   {"age", {{"type", "integer"}}},
                   {"kind", {{"enum", {"cat", "dog", 3}}}},
                   {"tags", {{"type", "array"}, {"items", {{"type", "boolean"}}}}},
                   {"extra", {{"anyOf", {{{"type", "null"}}, {{"type", "number"}}}}}}}},
                 {"required", {"name", "age", "kind", "tags"}},
                 {"additionalProperties", false}};
  Json format = {{"type", "json_schema"},
                 {"json_schema", {{"name", "pet"}, {"schema", schema}, {"strict", true}}}};
  for (int max_tokens : {40, 150}) {
    for (int seed = 0; seed < 3; ++seed) {
      auto [status, body] =
          env_->Post("/v1/chat/completions", {{"messages", {Message("user", "A pet as JSON")}},
                                              {"max_tokens", max_tokens},
                                              {"temperature", 1.0},
                                              {"seed", seed},
                                              {"response_format", format}});
      ASSERT_EQ(status, 200) << body.dump();
      std::string text = body["choices"][0]["message"]["content"];
      Json value = Json::parse(text, nullptr, false);
      ASSERT_FALSE(value.is_discarded()) << text;
      ASSERT_TRUE(value.is_object()) << text;
      EXPECT_TRUE(value["name"].is_string()) << text;
      EXPECT_TRUE(value["age"].is_number_integer()) << text;
      EXPECT_TRUE(value["kind"] == "cat" || value["kind"] == "dog" || value["kind"] == 3) << text;
      ASSERT_TRUE(value["tags"].is_array()) << text;
      for (const Json& t : value["tags"]) EXPECT_TRUE(t.is_boolean()) << text;
      if (value.contains("extra")) {
        EXPECT_TRUE(value["extra"].is_null() || value["extra"].is_number()) << text;
      }
      for (auto it = value.begin(); it != value.end(); ++it) {
        EXPECT_TRUE(schema["properties"].contains(it.key()));
      }
      EXPECT_EQ(body["choices"][0]["finish_reason"], "stop") << text;
    }
  }
  auto [status, body] = env_->Post("/v1/chat/completions", {{"messages", {Message("user", "Any object")}},
                                                            {"max_tokens", 30},
                                                            {"seed", 4},
                                                            {"response_format", {{"type", "json_object"}}}});
  ASSERT_EQ(status, 200) << body.dump();
  Json any = Json::parse(body["choices"][0]["message"]["content"].get<std::string>(), nullptr, false);
  EXPECT_TRUE(any.is_object()) << body.dump();
}

TEST_F(OpenAiApiTest, InvalidSchemasGet400NamingTheKeyword) {
  const std::vector<std::pair<Json, std::string>> cases = {
      {{{"type", "object"}, {"properties", {{"a", {{"type", "string"}, {"pattern", "x+"}}}}}}, "pattern"},
      {{{"type", "object"}, {"$ref", "#/defs/a"}}, "$ref"},
      {{{"type", "object"}, {"oneOf", Json::array()}}, "oneOf"},
      {{{"type", "string"}}, "root"},
      {{{"type", "object"}, {"properties", {{"a", {{"type", "date"}}}}}}, "date"},
      {{{"type", "object"}, {"required", {"missing"}}}, "missing"},
      {{{"type", "object"},
        {"properties", {{"long_property_name", {{"type", "string"}}}}},
        {"required", {"long_property_name"}},
        {"description", std::string(10, 'x')}},
       "cannot fit"},
  };
  for (const auto& [schema, word] : cases) {
    auto [status, body] =
        env_->Post("/v1/chat/completions",
                   {{"messages", {Message("user", "x")}},
                    {"max_tokens", 20},
                    {"response_format",
                     {{"type", "json_schema"}, {"json_schema", {{"name", "s"}, {"schema", schema}}}}}});
    EXPECT_EQ(status, 400) << schema.dump();
    EXPECT_NE(body["error"]["message"].get<std::string>().find(word), std::string::npos) << body.dump();
  }
}

TEST_F(OpenAiApiTest, MalformedRequestsGet400JsonErrors) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"/v1/chat/completions", "not json"},
      {"/v1/chat/completions", "[]"},
      {"/v1/chat/completions", "{}"},
      {"/v1/chat/completions", R"({"messages": "hi"})"},
      {"/v1/chat/completions", R"({"messages": []})"},
      {"/v1/chat/completions", R"({"messages": [{"content": "no role"}]})"},
      {"/v1/chat/completions", R"({"messages": [{"role": "user", "content": 7}]})"},
      {"/v1/chat/completions", R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})"},
      {"/v1/chat/completions", R"({"messages": [{"role": "user", "content": "x"}], "temperature": "hot"})"},
      {"/v1/chat/completions", R"({"messages": [{"role": "user", "content": "x"}], "temperature": 9})"},
      {"/v1/chat/completions", R"({"messages": [{"role": "user", "content": "x"}], "n": 0})"},
      {"/v1/chat/completions", R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": -1})"},
      {"/v1/chat/completions", R"({"messages": [{"role": "user", "content": "x"}], "stop": [1]})"},
      {"/v1/chat/completions", R"({"messages": [{"role": "user", "content": "x"}], "stream_options": 1})"},
      {"/v1/chat/completions", R"({"messages": [{"role": "assistant", "tool_calls": [{"id": "c"}]}]})"},
      {"/v1/responses", "{}"},
      {"/v1/responses", R"({"input": 5})"},
      {"/v1/responses", R"({"input": [{"type": "mystery"}]})"},
      {"/v1/responses", R"({"input": "x", "background": "yes"})"},
  };
  for (const auto& [target, body] : bad) {
    client::HttpResult r = PostRaw(target, body);
    EXPECT_EQ(r.status, 400) << target << " " << body << " -> " << r.body;
    Json j = Json::parse(r.body, nullptr, false);
    EXPECT_TRUE(j.is_object() && j.contains("error") && j["error"].contains("message")) << r.body;
    // OpenAI's shape: every error names its type and (possibly null) param.
    EXPECT_EQ(j["error"]["type"], "invalid_request_error") << r.body;
    EXPECT_TRUE(j["error"].contains("param")) << r.body;
  }
  auto [s1, b1] = env_->Post("/v1/responses", {{"input", "x"}, {"previous_response_id", "resp_nope"}});
  EXPECT_EQ(s1, 404) << b1.dump();
  EXPECT_EQ(env_->Get("/v1/responses/resp_" + std::string(64, 'a')).first, 404);
  EXPECT_EQ(env_->Get("/v1/models").second["data"][0]["object"], "model");
  // The server still answers.
  EXPECT_EQ(env_->Get("/healthz").first, 200);
}

// Issue 12: a message without content is a 400 naming messages[i].content (an assistant message
// with tool calls may omit it); a bad field is named in `param`.
TEST_F(OpenAiApiTest, ErrorsNameTheParamInOpenAisShape) {
  struct Case {
    std::string target;
    Json body;
    std::string param;
  };
  const std::vector<Case> cases = {
      {"/v1/chat/completions", {{"messages", {{{"role", "user"}}}}}, "messages[0].content"},
      {"/v1/chat/completions",
       {{"messages", {{{"role", "system"}, {"content", "s"}}, {{"role", "user"}, {"content", nullptr}}}}},
       "messages[1].content"},
      {"/v1/chat/completions",
       {{"messages", {{{"role", "user"}, {"content", "x"}}, {{"role", "assistant"}}}}},
       "messages[1].content"},
      {"/v1/chat/completions",
       {{"messages", {{{"role", "user"}, {"content", "x"}}}}, {"temperature", 9}},
       "temperature"},
      {"/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", "x"}}}}, {"model", 7}}, "model"},
      {"/v1/responses", {{"input", "x"}, {"max_output_tokens", 0}}, "max_output_tokens"},
      {"/v1/responses", {{"input", "x"}, {"background", "yes"}}, "background"},
      {"/v1/responses",
       {{"input", {{{"role", "user"}, {"content", "x"}}, {{"role", "user"}}}}},
       "input[1].content"},
      {"/v1/responses",
       {{"instructions", "i"}, {"input", {{{"role", "user"}, {"content", 5}}}}},
       "input[0].content"},
  };
  for (const Case& c : cases) {
    auto [status, body] = env_->Post(c.target, c.body);
    EXPECT_EQ(status, 400) << c.body.dump() << " -> " << body.dump();
    EXPECT_EQ(body["error"]["type"], "invalid_request_error") << body.dump();
    EXPECT_EQ(body["error"]["param"], c.param) << body.dump();
    EXPECT_EQ(body["error"]["code"], "invalid_argument") << body.dump();
  }
  // An assistant message with tool calls needs no content.
  Json calls = {{{"id", "call_1"}, {"type", "function"}, {"function", {{"name", "f"}, {"arguments", "{}"}}}}};
  Json ok = {{"messages",
              {{{"role", "user"}, {"content", "x"}},
               {{"role", "assistant"}, {"tool_calls", calls}},
               {{"role", "tool"}, {"tool_call_id", "call_1"}, {"content", "42"}}}},
             {"max_tokens", 2}};
  auto [status, body] = env_->Post("/v1/chat/completions", ok);
  EXPECT_EQ(status, 200) << body.dump();
  // Not found and auth errors carry the type too.
  auto [missing, missing_body] = env_->Get("/v1/responses/resp_" + std::string(64, 'a'));
  EXPECT_EQ(missing, 404);
  EXPECT_EQ(missing_body["error"]["type"], "invalid_request_error") << missing_body.dump();
  EXPECT_TRUE(missing_body["error"].contains("param")) << missing_body.dump();
}

// Issue 12: a prompt longer than the context is 400 context_length_exceeded (not a retryable 429),
// in chat and Responses, streamed or not.
TEST_F(OpenAiApiTest, APromptLongerThanTheContextIs400ContextLengthExceeded) {
  env_->Stop();
  api::ServerConfig config;
  config.max_context = 64;
  ASSERT_TRUE(env_->Start(dir_.File("small"), config).IsOk());
  std::string long_text;
  for (int i = 0; i < 100; ++i) long_text += "word" + std::to_string(i) + " ";
  for (bool stream : {false, true}) {
    auto [chat_status, chat] = env_->Post(
        "/v1/chat/completions",
        {{"messages", {{{"role", "user"}, {"content", long_text}}}}, {"max_tokens", 4}, {"stream", stream}});
    EXPECT_EQ(chat_status, 400) << chat.dump();
    EXPECT_EQ(chat["error"]["code"], "context_length_exceeded") << chat.dump();
    EXPECT_EQ(chat["error"]["type"], "invalid_request_error") << chat.dump();
    EXPECT_EQ(chat["error"]["param"], "messages") << chat.dump();
    auto [resp_status, resp] =
        env_->Post("/v1/responses", {{"input", long_text}, {"max_output_tokens", 4}, {"stream", stream}});
    EXPECT_EQ(resp_status, 400) << resp.dump();
    EXPECT_EQ(resp["error"]["code"], "context_length_exceeded") << resp.dump();
    EXPECT_EQ(resp["error"]["param"], "input") << resp.dump();
  }
  // A short prompt still runs.
  auto [ok, body] = env_->Post("/v1/chat/completions",
                               {{"messages", {{{"role", "user"}, {"content", "hi"}}}}, {"max_tokens", 2}});
  EXPECT_EQ(ok, 200) << body.dump();
}

// Issue 12: with strict_model_names an unknown model is OpenAI's 404 model_not_found; the served
// name and the file's name are accepted. Without it any name is served (the default).
TEST_F(OpenAiApiTest, UnknownModelIs404WhenNamesAreStrict) {
  auto chat = [&](const std::string& model) {
    return env_->Post(
        "/v1/chat/completions",
        {{"model", model}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}, {"max_tokens", 1}});
  };
  EXPECT_EQ(chat("anything").first, 200);
  env_->Stop();
  api::ServerConfig config;
  config.strict_model_names = true;
  ASSERT_TRUE(env_->Start(dir_.File("strict"), config).IsOk());
  std::string served = env_->Get("/v1/models").second["data"][0]["id"];
  EXPECT_EQ(chat(served).first, 200);
  EXPECT_EQ(chat("tiny.gguf").first, 200);
  EXPECT_EQ(chat("tiny").first, 200);
  auto [status, body] = chat("gpt-4o");
  EXPECT_EQ(status, 404) << body.dump();
  EXPECT_EQ(body["error"]["code"], "model_not_found") << body.dump();
  EXPECT_EQ(body["error"]["param"], "model") << body.dump();
  EXPECT_EQ(env_->Get("/v1/models/gpt-4o").second["error"]["code"], "model_not_found");
  EXPECT_EQ(body["error"]["type"], "invalid_request_error") << body.dump();
  auto [resp_status, resp] = env_->Post("/v1/responses", {{"model", "gpt-4o"}, {"input", "hi"}});
  EXPECT_EQ(resp_status, 404) << resp.dump();
  EXPECT_EQ(resp["error"]["code"], "model_not_found") << resp.dump();
}

// Issue 12: a streamed response numbers its events 0, 1, 2, ... with no gap (the usage event used to
// leave one before the final events), and the message item of an incomplete response says so.
TEST_F(OpenAiApiTest, ResponseStreamSequenceNumbersAreContiguous) {
  auto [status, created] = env_->Post(
      "/v1/responses", {{"input", "Tell a story."}, {"background", true}, {"max_output_tokens", 40}});
  ASSERT_EQ(status, 200) << created.dump();
  std::vector<Json> events;
  int code = 0;
  Status s = env_->Client().Stream(
      "/v1/responses/" + created["id"].get<std::string>() + "?stream=true", {},
      [&](const client::SseEvent& e) {
        events.push_back(Json::parse(e.data));
        return true;
      },
      &code);
  ASSERT_TRUE(s.IsOk()) << s.ToString();
  ASSERT_GT(events.size(), 8u);
  for (std::size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i]["sequence_number"], i) << events[i].dump();
  }
  EXPECT_EQ(events.back()["type"], "response.incomplete");
  const Json& done = events[events.size() - 2];
  ASSERT_EQ(done["type"], "response.output_item.done") << done.dump();
  EXPECT_EQ(done["item"]["status"], "incomplete") << done.dump();
  EXPECT_EQ(events.back()["response"]["output"][0]["status"], "incomplete");
}

// Issue 12: GET reports what the response was created with (background, store, tools,
// tool_choice); an incomplete or cancelled response's message item is incomplete.
TEST_F(OpenAiApiTest, ResponsesReportTheirRequestAndIncompleteItems) {
  Json tools = {{{"type", "function"},
                 {"name", "lookup"},
                 {"description", "Look a word up."},
                 {"parameters", {{"type", "object"}, {"properties", {{"word", {{"type", "string"}}}}}}}}};
  auto [status, created] = env_->Post("/v1/responses", {{"input", "Go."},
                                                        {"background", true},
                                                        {"max_output_tokens", 3},
                                                        {"tools", tools},
                                                        {"tool_choice", "none"}});
  ASSERT_EQ(status, 200) << created.dump();
  EXPECT_EQ(created["background"], true);
  std::string id = created["id"];
  Json polled;
  for (int i = 0; i < 200; ++i) {
    polled = env_->Get("/v1/responses/" + id).second;
    if (polled["status"] != "queued" && polled["status"] != "in_progress") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(polled["status"], "incomplete") << polled.dump();
  EXPECT_EQ(polled["background"], true);
  EXPECT_EQ(polled["store"], true);
  EXPECT_EQ(polled["tools"], tools);
  EXPECT_EQ(polled["tool_choice"], "none");
  ASSERT_EQ(polled["output"].size(), 1u) << polled.dump();
  EXPECT_EQ(polled["output"][0]["status"], "incomplete") << polled.dump();

  // Cancel a long background response mid-run. On a loaded machine the run can reach its
  // max_output_tokens before the cancel lands (it then ends "incomplete"); that attempt proves
  // nothing about cancelling, so it is tried again.
  Json after_cancel;
  for (int attempt = 0; attempt < 5 && after_cancel["status"] != "cancelled"; ++attempt) {
    auto [long_status, long_run] =
        env_->Post("/v1/responses", {{"input", "Go on."}, {"background", true}, {"max_output_tokens", 1500}});
    ASSERT_EQ(long_status, 200) << long_run.dump();
    std::string long_id = long_run["id"];
    for (int i = 0; i < 500 && env_->Get("/v1/responses/" + long_id).second["usage"].is_null(); ++i) {
      Json now = env_->Get("/v1/responses/" + long_id).second;
      if (!now["output"].empty()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    auto [cancel_status, cancelled] = env_->Post("/v1/responses/" + long_id + "/cancel", Json::object());
    ASSERT_EQ(cancel_status, 200) << cancelled.dump();
    for (int i = 0; i < 200; ++i) {
      after_cancel = env_->Get("/v1/responses/" + long_id).second;
      if (after_cancel["status"] != "queued" && after_cancel["status"] != "in_progress") break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  EXPECT_EQ(after_cancel["status"], "cancelled") << after_cancel.dump();
  for (const Json& item : after_cancel["output"]) EXPECT_EQ(item["status"], "incomplete") << item.dump();
}

// Issue 12: store: false answers normally, then the response is not retrievable, cannot be
// continued, and background needs store.
TEST_F(OpenAiApiTest, AnUnstoredResponseIsNotRetrievable) {
  auto [status, created] =
      env_->Post("/v1/responses", {{"input", "Keep nothing."}, {"store", false}, {"max_output_tokens", 3}});
  ASSERT_EQ(status, 200) << created.dump();
  EXPECT_EQ(created["store"], false);
  EXPECT_EQ(created["output"].size(), 1u) << created.dump();
  std::string id = created["id"];
  EXPECT_EQ(env_->Get("/v1/responses/" + id).first, 404);
  EXPECT_EQ(env_->Get("/v1/responses/" + id + "?stream=true").first, 404);
  EXPECT_EQ(env_->Get("/v1/responses/" + id + "/input_items").first, 404);
  auto [follow_status, follow] = env_->Post(
      "/v1/responses", {{"input", "And then?"}, {"previous_response_id", id}, {"max_output_tokens", 2}});
  EXPECT_EQ(follow_status, 404) << follow.dump();
  auto [bg_status, bg] =
      env_->Post("/v1/responses", {{"input", "x"}, {"store", false}, {"background", true}});
  EXPECT_EQ(bg_status, 400) << bg.dump();
  EXPECT_EQ(bg["error"]["param"], "store") << bg.dump();
  // Streamed, it streams to the end, and is not kept either.
  std::vector<Json> events;
  int code = 0;
  Status s = env_->Client().StreamRequest(
      "POST", "/v1/responses",
      R"({"input": "Stream it.", "store": false, "stream": true, "max_output_tokens": 3})", {},
      [&](const client::SseEvent& e) {
        events.push_back(Json::parse(e.data));
        return true;
      },
      &code);
  ASSERT_TRUE(s.IsOk()) << s.ToString();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back()["type"], "response.incomplete");
  EXPECT_EQ(events.back()["response"]["store"], false);
  EXPECT_EQ(env_->Get("/v1/responses/" + events.back()["response"]["id"].get<std::string>()).first, 404);
}

// Issue 12: GET /v1/responses/{id}/input_items lists what the response read after the previous
// response's output, newest first by default, paged with limit / order / after.
TEST_F(OpenAiApiTest, InputItemsListTheResponsesInput) {
  Json input = {{{"role", "user"}, {"content", "first"}},
                {{"role", "assistant"}, {"content", "ok"}},
                {{"role", "user"}, {"content", "second"}}};
  auto [s1, r1] = env_->Post("/v1/responses", {{"input", input}, {"max_output_tokens", 2}});
  ASSERT_EQ(s1, 200) << r1.dump();
  std::string id1 = r1["id"];
  auto [l1, list1] = env_->Get("/v1/responses/" + id1 + "/input_items");
  ASSERT_EQ(l1, 200) << list1.dump();
  EXPECT_EQ(list1["object"], "list");
  ASSERT_EQ(list1["data"].size(), 3u) << list1.dump();
  EXPECT_EQ(list1["data"][0]["content"][0]["text"], "second") << "desc by default";
  EXPECT_EQ(list1["data"][0]["role"], "user");
  EXPECT_EQ(list1["data"][1]["role"], "assistant");
  EXPECT_EQ(list1["data"][2]["content"][0]["text"], "first");
  EXPECT_EQ(list1["first_id"], list1["data"][0]["id"]);
  EXPECT_EQ(list1["last_id"], list1["data"][2]["id"]);
  EXPECT_EQ(list1["has_more"], false);

  auto [p1, page1] = env_->Get("/v1/responses/" + id1 + "/input_items?order=asc&limit=2");
  ASSERT_EQ(p1, 200) << page1.dump();
  ASSERT_EQ(page1["data"].size(), 2u);
  EXPECT_EQ(page1["data"][0]["content"][0]["text"], "first");
  EXPECT_EQ(page1["has_more"], true);
  auto [p2, page2] = env_->Get("/v1/responses/" + id1 +
                               "/input_items?order=asc&limit=2&after=" + page1["last_id"].get<std::string>());
  ASSERT_EQ(p2, 200) << page2.dump();
  ASSERT_EQ(page2["data"].size(), 1u);
  EXPECT_EQ(page2["data"][0]["content"][0]["text"], "second");
  EXPECT_EQ(page2["has_more"], false);
  EXPECT_EQ(env_->Get("/v1/responses/" + id1 + "/input_items?limit=0").first, 400);
  EXPECT_EQ(env_->Get("/v1/responses/" + id1 + "/input_items?order=up").first, 400);

  Json output = {{{"type", "function_call_output"}, {"call_id", "call_9"}, {"output", "42"}},
                 {{"role", "user"}, {"content", "third"}}};
  auto [s2, r2] = env_->Post("/v1/responses",
                             {{"input", output}, {"previous_response_id", id1}, {"max_output_tokens", 2}});
  ASSERT_EQ(s2, 200) << r2.dump();
  auto [l2, list2] = env_->Get("/v1/responses/" + r2["id"].get<std::string>() + "/input_items?order=asc");
  ASSERT_EQ(l2, 200) << list2.dump();
  ASSERT_EQ(list2["data"].size(), 2u) << list2.dump();
  EXPECT_EQ(list2["data"][0]["type"], "function_call_output");
  EXPECT_EQ(list2["data"][0]["call_id"], "call_9");
  EXPECT_EQ(list2["data"][0]["output"], "42");
  EXPECT_EQ(list2["data"][1]["content"][0]["text"], "third");
}

}  // namespace
}  // namespace llmsync::testing
