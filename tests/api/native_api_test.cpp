#include <gtest/gtest.h>

#include <thread>

#include "server_test_env.h"
#include "store/sqlite/sqlite_store.h"

namespace llmsync::testing {
namespace {

struct Event {
  std::string id;
  std::string type;
  Json data;
};

class NativeApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = ServerTestEnv::TinyModel(dir_);
    env_ = std::make_unique<ServerTestEnv>(model_);
    ASSERT_TRUE(env_->Start(dir_.File("data"), Config()).IsOk());
  }
  void TearDown() override { env_->Stop(); }
  virtual api::ServerConfig Config() { return {}; }

  std::string NewSession() {
    auto [status, body] = env_->Post("/v1/sessions", Json::object());
    EXPECT_EQ(status, 201) << body;
    return body.value("id", "");
  }
  Json Append(const std::string& session, const Json& request, int expect = 201) {
    auto [status, body] = env_->Post("/v1/sessions/" + session + "/nodes", request);
    EXPECT_EQ(status, expect) << body;
    return body;
  }
  std::string AppendUser(const std::string& session, const std::string& text, const Json& parent = nullptr) {
    Json req = {{"parent", parent}, {"nodes", {{{"kind", "user"}, {"text", text}}}}};
    return Append(session, req)["head"].get<std::string>();
  }
  std::string StartRun(const std::string& session, Json params) {
    auto [status, body] = env_->Post("/v1/sessions/" + session + "/runs", params);
    EXPECT_EQ(status, 202) << body;
    return body.value("id", "");
  }
  // Reads a run's SSE stream from `after` until it ends (or `stop_after` events).
  std::vector<Event> ReadEvents(const std::string& run, std::uint64_t after = 0,
                                std::size_t stop_after = SIZE_MAX, bool use_header = true) {
    client::HttpClient c("127.0.0.1", env_->Port(), std::chrono::seconds(60));
    std::vector<Event> events;
    client::HeaderList headers;
    std::string target = "/v1/runs/" + run + "/events";
    if (after > 0 && use_header) headers["Last-Event-ID"] = std::to_string(after);
    if (after > 0 && !use_header) target += "?after=" + std::to_string(after);
    int status = 0;
    Status s = c.Stream(
        target, headers,
        [&](const client::SseEvent& e) {
          events.push_back({e.id, e.event, Json::parse(e.data, nullptr, false)});
          return events.size() < stop_after;
        },
        &status);
    EXPECT_TRUE(s.IsOk()) << s.ToString();
    EXPECT_EQ(status, 200);
    return events;
  }
  Json WaitRun(const std::string& run) {
    for (int i = 0; i < 3000; ++i) {
      auto [status, body] = env_->Get("/v1/runs/" + run);
      if (status == 200 && body["status"] != "queued" && body["status"] != "running") return body;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << "run " << run << " did not finish";
    return Json();
  }

  TestDir dir_;
  std::string model_;
  std::unique_ptr<ServerTestEnv> env_;
};

TEST_F(NativeApiTest, SessionLifecycleAndDeltaSync) {
  std::string s = NewSession();
  ASSERT_EQ(s.size(), 64u);
  Json first = Append(
      s, {{"nodes", {{{"kind", "system"}, {"text", "You are terse."}}, {{"kind", "user"}, {"text", "Hi"}}}}});
  ASSERT_EQ(first["nodes"].size(), 2u);
  EXPECT_GT(first["nodes"][0]["n_tokens"].get<int>(), 0);
  EXPECT_EQ(first["head"], first["nodes"][1]["id"]);

  auto [status, full] = env_->Get("/v1/sessions/" + s);
  ASSERT_EQ(status, 200);
  EXPECT_EQ(full["nodes"].size(), 2u);
  EXPECT_EQ(full["nodes"][1]["text"], "Hi");
  EXPECT_EQ(full["nodes"][1]["parent"], full["nodes"][0]["id"]);
  std::uint64_t seq = full["seq"];

  auto etag = env_->Client().Get("/v1/sessions/" + s);
  ASSERT_TRUE(etag.IsOk());
  EXPECT_EQ(etag->headers["etag"], "\"" + std::to_string(seq) + "\"");
  auto not_modified = env_->Client().Get("/v1/sessions/" + s, {{"If-None-Match", etag->headers["etag"]}});
  ASSERT_TRUE(not_modified.IsOk());
  EXPECT_EQ(not_modified->status, 304);

  AppendUser(s, "More", first["head"]);
  auto [st2, delta] = env_->Get("/v1/sessions/" + s + "?since=" + std::to_string(seq));
  ASSERT_EQ(st2, 200);
  ASSERT_EQ(delta["nodes"].size(), 1u) << "only the node after `since`";
  EXPECT_EQ(delta["nodes"][0]["text"], "More");
}

TEST_F(NativeApiTest, CompareAndSwapConflictReportsCurrentHead) {
  std::string s = NewSession();
  std::string h1 = AppendUser(s, "one");
  std::string h2 = AppendUser(s, "two", h1);
  Json stale = {{"parent", h1}, {"expect_head", h1}, {"nodes", {{{"kind", "user"}, {"text", "late"}}}}};
  Json conflict = Append(s, stale, 409);
  EXPECT_EQ(conflict["error"]["code"], "conflict");
  EXPECT_EQ(conflict["head"], h2);
  Json fresh = {{"parent", h2}, {"expect_head", h2}, {"nodes", {{{"kind", "user"}, {"text", "ok"}}}}};
  Append(s, fresh, 201);
}

TEST_F(NativeApiTest, IdempotentRetryReturnsTheFirstAnswer) {
  std::string s = NewSession();
  Json req = {{"idempotency_key", "k-1"}, {"nodes", {{{"kind", "user"}, {"text", "once"}}}}};
  Json a = Append(s, req, 201);
  Json b = Append(s, req, 200);
  EXPECT_EQ(a["nodes"][0]["id"], b["nodes"][0]["id"]);
  EXPECT_EQ(a["nodes"][0]["seq"], b["nodes"][0]["seq"]);
  EXPECT_TRUE(b["replayed"].get<bool>());
  auto [status, full] = env_->Get("/v1/sessions/" + s);
  EXPECT_EQ(full["nodes"].size(), 1u) << "no duplicate";
  Json other = {{"idempotency_key", "k-1"}, {"nodes", {{{"kind", "user"}, {"text", "different"}}}}};
  Append(s, other, 409);
}

TEST_F(NativeApiTest, RunStreamsTokensAndAppendsTheAssistantNode) {
  std::string s = NewSession();
  std::string head = AppendUser(s, "Tell me something");
  std::string run = StartRun(s, {{"max_tokens", 6}, {"temperature", 0.8}, {"seed", 11}});
  std::vector<Event> events = ReadEvents(run);
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events.front().type, "run.started");
  EXPECT_EQ(events.back().type, "run.completed") << events.back().data;
  int tokens = 0;
  for (std::size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].id, std::to_string(i + 1)) << "event ids are 1, 2, 3, ...";
    if (events[i].type == "token") ++tokens;
  }
  EXPECT_EQ(tokens, 6);
  Json usage = events[events.size() - 2].data;
  EXPECT_EQ(events[events.size() - 2].type, "run.usage");
  EXPECT_EQ(usage["generated_tokens"], 6);
  EXPECT_EQ(usage["prompt_tokens"].get<int>(), usage["cached_tokens"]["ram"].get<int>() +
                                                   usage["cached_tokens"]["disk"].get<int>() +
                                                   usage["recomputed_tokens"].get<int>());
  EXPECT_GT(usage["stateless_equivalent_bytes"].get<int>(), 0);
  EXPECT_GT(usage["request_bytes"].get<int>(), 0);

  Json done = WaitRun(run);
  EXPECT_EQ(done["status"], "succeeded");
  std::string node = events.back().data["node_id"];
  EXPECT_EQ(done["node_id"], node);
  EXPECT_EQ(done["usage"]["generated_tokens"], 6);
  EXPECT_TRUE(done["worker"].is_null()) << "one process on SQLite has no workers to name";
  auto [st, session] = env_->Get("/v1/sessions/" + s);
  EXPECT_TRUE(session["running_run"].is_null());
  EXPECT_EQ(session["head"], node);
  EXPECT_EQ(session["nodes"].back()["kind"], "assistant");
  EXPECT_EQ(session["nodes"].back()["parent"], head);
}

TEST_F(NativeApiTest, SecondTurnReusesTheCachedPrefix) {
  std::string s = NewSession();
  AppendUser(s,
             "First question, long enough to fill a few KV blocks of the cache: lorem ipsum dolor sit amet.");
  std::string r1 = StartRun(s, {{"max_tokens", 4}, {"seed", 1}});
  WaitRun(r1);
  auto [st, session] = env_->Get("/v1/sessions/" + s);
  AppendUser(s, "Second question", session["head"]);
  std::string r2 = StartRun(s, {{"max_tokens", 4}, {"seed", 1}});
  Json done = WaitRun(r2);
  Json usage = done["usage"];
  int cached = usage["cached_tokens"]["ram"].get<int>() + usage["cached_tokens"]["disk"].get<int>();
  EXPECT_GT(cached, 64) << usage;
  EXPECT_LT(usage["recomputed_tokens"].get<int>(), usage["prompt_tokens"].get<int>() / 2) << usage;
}

TEST_F(NativeApiTest, LateSubscribersAndReconnectsSeeTheSameSequence) {
  std::string s = NewSession();
  AppendUser(s, "stream please");
  std::string run = StartRun(s, {{"max_tokens", 40}, {"temperature", 0.7}, {"seed", 5}});
  std::vector<Event> first = ReadEvents(run);
  // A second subscriber joining after the end, and a client that was cut after 10 events and
  // reconnects with Last-Event-ID (or ?after=), all see exactly the same events.
  std::vector<Event> second = ReadEvents(run);
  std::vector<Event> cut = ReadEvents(run, 0, 10);
  ASSERT_EQ(cut.size(), 10u);
  std::vector<Event> rest = ReadEvents(run, std::stoull(cut.back().id));
  std::vector<Event> rest_query = ReadEvents(run, std::stoull(cut.back().id), SIZE_MAX, false);
  cut.insert(cut.end(), rest.begin(), rest.end());
  ASSERT_EQ(first.size(), second.size());
  ASSERT_EQ(first.size(), cut.size());
  ASSERT_EQ(rest.size(), rest_query.size());
  for (std::size_t i = 0; i < first.size(); ++i) {
    EXPECT_EQ(first[i].id, second[i].id);
    EXPECT_EQ(first[i].data, second[i].data);
    EXPECT_EQ(first[i].id, cut[i].id);
    EXPECT_EQ(first[i].data, cut[i].data);
  }
}

TEST_F(NativeApiTest, ConcurrentLiveSubscribersSeeIdenticalStreams) {
  std::string s = NewSession();
  AppendUser(s, "many readers");
  std::string run = StartRun(s, {{"max_tokens", 60}, {"temperature", 0.9}, {"seed", 9}});
  std::vector<std::vector<Event>> seen(3);
  std::vector<std::thread> readers;
  for (int i = 0; i < 3; ++i) {
    readers.emplace_back([&, i] {
      std::this_thread::sleep_for(std::chrono::milliseconds(15 * i));  // join at different times
      seen[i] = ReadEvents(run);
    });
  }
  for (auto& t : readers) t.join();
  for (int i = 1; i < 3; ++i) {
    ASSERT_EQ(seen[i].size(), seen[0].size());
    for (std::size_t k = 0; k < seen[0].size(); ++k) EXPECT_EQ(seen[i][k].data, seen[0][k].data);
  }
  EXPECT_EQ(seen[0].back().type, "run.completed");
}

TEST_F(NativeApiTest, CancelIsAuthoritativeAndIdempotent) {
  std::string s = NewSession();
  AppendUser(s, "go on forever");
  std::string run = StartRun(s, {{"max_tokens", 1500}});
  std::vector<Event> some = ReadEvents(run, 0, 4);
  // A page that loads now sees the generation in progress.
  EXPECT_EQ(env_->Get("/v1/sessions/" + s).second["running_run"], run);
  auto [st, cancelled] = env_->Post("/v1/runs/" + run + "/cancel", Json::object());
  EXPECT_EQ(st, 200) << cancelled;
  EXPECT_EQ(cancelled["status"], "cancelled");
  std::vector<Event> all = ReadEvents(run);
  EXPECT_EQ(all.back().type, "run.cancelled");
  std::size_t tokens = 0;
  for (const Event& e : all) tokens += e.type == "token";
  EXPECT_LT(tokens, 1500u);
  auto [st2, again] = env_->Post("/v1/runs/" + run + "/cancel", Json::object());
  EXPECT_EQ(st2, 200);
  EXPECT_EQ(again["status"], "cancelled");
  EXPECT_EQ(ReadEvents(run).size(), all.size()) << "nothing after the cancel";
  EXPECT_TRUE(env_->Get("/v1/sessions/" + s).second["running_run"].is_null());
}

TEST_F(NativeApiTest, BadRequestsGetClearErrors) {
  std::string s = NewSession();
  auto bad_json = env_->Client().PostJson("/v1/sessions/" + s + "/nodes", "{not json");
  ASSERT_TRUE(bad_json.IsOk());
  EXPECT_EQ(bad_json->status, 400);
  EXPECT_EQ(Json::parse(bad_json->body)["error"]["code"], "invalid_argument");
  EXPECT_EQ(env_->Get("/v1/sessions/" + std::string(64, 'a')).first, 404);
  EXPECT_EQ(env_->Get("/v1/sessions/xyz").first, 400);
  EXPECT_EQ(env_->Get("/v1/runs/" + std::string(64, 'b')).first, 404);
  EXPECT_EQ(Append(s, {{"nodes", Json::array()}}, 400)["error"]["code"], "invalid_argument");
  EXPECT_EQ(Append(s, {{"nodes", {{{"kind", "wizard"}, {"text", "x"}}}}}, 400)["error"]["code"],
            "invalid_argument");
  Append(s, {{"parent", std::string(64, 'c')}, {"nodes", {{{"kind", "user"}, {"text", "x"}}}}}, 404);
  auto [st, err] = env_->Post("/v1/sessions/" + s + "/runs", {{"max_tokens", -3}});
  EXPECT_EQ(st, 400) << err;
  auto [st2, err2] = env_->Post("/v1/sessions/" + s + "/runs", {{"temperature", "hot"}});
  EXPECT_EQ(st2, 400) << err2;
  for (const Json& stop : {Json(""), Json::array({"ok", ""}), Json(7), Json::array({1})}) {
    auto [st3, err3] = env_->Post("/v1/sessions/" + s + "/runs", {{"stop", stop}});
    EXPECT_EQ(st3, 400) << stop << ": " << err3;
    EXPECT_NE(err3["error"]["message"].get<std::string>().find("stop"), std::string::npos) << err3;
  }
  std::string invalid_utf8 = "{\"nodes\":[{\"kind\":\"user\",\"text\":\"\xff\xfe\"}]}";
  auto utf = env_->Client().PostJson("/v1/sessions/" + s + "/nodes", invalid_utf8);
  ASSERT_TRUE(utf.IsOk());
  EXPECT_EQ(utf->status, 400) << utf->body;
  auto [hs, health] = env_->Get("/healthz");
  EXPECT_EQ(hs, 200) << "the server is still healthy";
}

class AuthTest : public NativeApiTest {
 protected:
  api::ServerConfig Config() override {
    api::ServerConfig c;
    c.api_keys = {{"key-a", "tenant-a"}, {"key-b", "tenant-b"}};
    c.max_body_bytes = 4096;
    return c;
  }
};

TEST_F(AuthTest, KeysMapToTenantsAndTenantsAreIsolated) {
  EXPECT_EQ(env_->Post("/v1/sessions", Json::object()).first, 401);
  EXPECT_EQ(env_->Post("/v1/sessions", Json::object(), {{"Authorization", "Bearer wrong"}}).first, 401);
  auto [st, created] = env_->Post("/v1/sessions", Json::object(), {{"Authorization", "Bearer key-a"}});
  ASSERT_EQ(st, 201);
  std::string s = created["id"];
  EXPECT_EQ(env_->Get("/v1/sessions/" + s, {{"Authorization", "Bearer key-a"}}).first, 200);
  auto [other, body] = env_->Get("/v1/sessions/" + s, {{"Authorization", "Bearer key-b"}});
  EXPECT_EQ(other, 404) << "another tenant's session does not exist for it";
  auto big = env_->Client().PostJson("/v1/sessions/" + s + "/nodes", std::string(5000, ' '),
                                     {{"Authorization", "Bearer key-a"}});
  ASSERT_TRUE(big.IsOk());
  EXPECT_EQ(big->status, 413);
}

TEST_F(NativeApiTest, StateSurvivesARestart) {
  std::string s = NewSession();
  AppendUser(s, "remember me");
  std::string run = StartRun(s, {{"max_tokens", 5}, {"seed", 3}});
  std::vector<Event> before = ReadEvents(run);
  env_->Stop();
  ASSERT_TRUE(env_->Start(dir_.File("data")).IsOk());
  auto [st, session] = env_->Get("/v1/sessions/" + s);
  ASSERT_EQ(st, 200);
  EXPECT_EQ(session["nodes"].size(), 2u);
  std::vector<Event> after = ReadEvents(run);
  ASSERT_EQ(after.size(), before.size());
  for (std::size_t i = 0; i < before.size(); ++i) EXPECT_EQ(after[i].data, before[i].data);
}

// After the retention period a finished run keeps its record, and a stream that would have
// replayed deleted events says why instead of ending silently.
TEST_F(NativeApiTest, ARunWhoseEventsRetentionDeletedSaysSo) {
  std::string s = NewSession();
  AppendUser(s, "soon forgotten");
  std::string run = StartRun(s, {{"max_tokens", 3}});
  std::vector<Event> events = ReadEvents(run);
  ASSERT_FALSE(events.empty());
  env_->Stop();
  {
    store::SqliteStoreOptions options;
    options.path = dir_.File("data") + "/llmsync.sqlite";
    auto store = store::OpenSqliteStore(options);
    ASSERT_TRUE(store.IsOk()) << store.GetStatus().ToString();
    auto pruned = (*store)->PruneRunEvents(Env::Default()->UnixMillis() + 3600 * 1000);
    ASSERT_TRUE(pruned.IsOk());
    EXPECT_EQ(*pruned, events.size());
  }
  ASSERT_TRUE(env_->Start(dir_.File("data")).IsOk());
  auto [status, record] = env_->Get("/v1/runs/" + run);
  ASSERT_EQ(status, 200) << record;
  EXPECT_EQ(record["status"], "succeeded") << record;
  std::vector<Event> replay = ReadEvents(run);
  ASSERT_EQ(replay.size(), 1u);
  EXPECT_EQ(replay[0].type, "error");
  EXPECT_NE(replay[0].data.dump().find("retention"), std::string::npos) << replay[0].data;
  // A reader that already had every event loses nothing, so its reconnect just ends.
  EXPECT_TRUE(ReadEvents(run, std::stoull(events.back().id)).empty());
}

// A run request retried with its idempotency key gets the first run back, never a second run.
TEST_F(NativeApiTest, RunRequestsWithAnIdempotencyKeyAreSafeToRetry) {
  std::string s = NewSession();
  std::string head = AppendUser(s, "once only");
  const Json request = {{"from", head}, {"max_tokens", 3}, {"seed", 9}, {"idempotency_key", "turn-1"}};
  auto [first_status, first] = env_->Post("/v1/sessions/" + s + "/runs", request);
  ASSERT_EQ(first_status, 202) << first;
  auto [again_status, again] = env_->Post("/v1/sessions/" + s + "/runs", request);
  EXPECT_EQ(again_status, 200) << again;
  EXPECT_EQ(again["id"], first["id"]);
  EXPECT_EQ(again["replayed"], true);
  // The header form names the same run.
  Json without_field = request;
  without_field.erase("idempotency_key");
  auto [header_status, by_header] =
      env_->Post("/v1/sessions/" + s + "/runs", without_field, {{"Idempotency-Key", "turn-1"}});
  EXPECT_EQ(header_status, 200) << by_header;
  EXPECT_EQ(by_header["id"], first["id"]);
  // The same key for a different request is a conflict, not a silent replay.
  Json different = request;
  different["max_tokens"] = 4;
  auto [conflict_status, conflict] = env_->Post("/v1/sessions/" + s + "/runs", different);
  EXPECT_EQ(conflict_status, 409) << conflict;
  // One generation happened: one assistant node.
  WaitRun(first["id"].get<std::string>());
  auto [st, session] = env_->Get("/v1/sessions/" + s);
  ASSERT_EQ(st, 200);
  EXPECT_EQ(session["nodes"].size(), 2u) << session;
  auto [bad_status, bad] = env_->Post("/v1/sessions/" + s + "/runs", {{"idempotency_key", 5}});
  EXPECT_EQ(bad_status, 400) << bad;
}

TEST_F(NativeApiTest, MetricsReportTokensAndBytes) {
  std::string s = NewSession();
  AppendUser(s, "count me");
  WaitRun(StartRun(s, {{"max_tokens", 3}}));
  auto r = env_->Client().Get("/metrics");
  ASSERT_TRUE(r.IsOk());
  for (const char* name : {"llmsync_tokens_generated_total", "llmsync_tokens_prefilled_total",
                           "llmsync_stateless_equivalent_bytes_total", "llmsync_http_requests_total",
                           "llmsync_http_bytes_in_total", "llmsync_sse_subscribers", "llmsync_runs_total"}) {
    EXPECT_NE(r->body.find(name), std::string::npos) << name << " missing from\n" << r->body;
  }
}

}  // namespace
}  // namespace llmsync::testing
