#include <gtest/gtest.h>

#include <cctype>
#include <thread>

#include "../store/sqlite_check.h"
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
  EXPECT_EQ(etag->headers["etag"].rfind("\"" + std::to_string(seq) + "-", 0), 0u) << etag->headers["etag"];
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

// Issue 17: a store written before terminal events and the finished status were committed
// together can hold a finished run whose stream stops short, or a stream that ended while the
// status did not. Startup repairs both, so every finished run's stream ends with its terminal event.
TEST_F(NativeApiTest, StartupRepairsRunsWhoseStatusAndStreamDisagree) {
  std::string s = NewSession();
  AppendUser(s, "repair me");
  std::string finished = StartRun(s, {{"max_tokens", 3}, {"seed", 1}});
  std::vector<Event> events = ReadEvents(finished);
  ASSERT_EQ(events.back().type, "run.completed");
  std::string open_run = StartRun(s, {{"max_tokens", 3}, {"seed", 2}});
  ReadEvents(open_run);
  env_->Stop();
  {
    store::SqliteStoreOptions options;
    options.path = dir_.File("data") + "/llmsync.sqlite";
    auto store = store::OpenSqliteStore(options);
    ASSERT_TRUE(store.IsOk()) << store.GetStatus().ToString();
    std::string db = options.path;
    store->reset();
    // The first run loses its run.usage and run.completed events (the old crash window); the
    // second keeps its run.completed event but goes back to "running".
    std::string sql_finished =
        "DELETE FROM run_events WHERE type IN ('run.usage', 'run.completed') AND run = (SELECT rowid FROM "
        "runs "
        "WHERE hex(id) = upper('" +
        finished +
        "')); UPDATE runs SET last_event_id = (SELECT max(event_id) FROM "
        "run_events WHERE run = runs.rowid) WHERE hex(id) = upper('" +
        finished +
        "'); UPDATE runs SET status = 1 "
        "WHERE hex(id) = upper('" +
        open_run + "');";
    ASSERT_EQ(SqliteCheck(db, sql_finished.c_str()), "");
    std::string last =
        "SELECT type FROM run_events WHERE run = (SELECT rowid FROM runs WHERE hex(id) = upper('" + finished +
        "')) ORDER BY event_id DESC LIMIT 1";
    ASSERT_EQ(SqliteCheck(db, last.c_str()), "token") << "the damage must be in place";
    std::string status = "SELECT status FROM runs WHERE hex(id) = upper('" + open_run + "')";
    ASSERT_EQ(SqliteCheck(db, status.c_str()), "1");
  }
  ASSERT_TRUE(env_->Start(dir_.File("data")).IsOk());
  std::vector<Event> repaired = ReadEvents(finished);
  ASSERT_EQ(repaired.size(), events.size() - 1);  // the usage event is gone for good
  EXPECT_EQ(repaired.back().type, "run.completed");
  EXPECT_EQ(repaired.back().data["node_id"], events.back().data["node_id"]) << repaired.back().data;
  EXPECT_EQ(WaitRun(open_run)["status"], "succeeded");
  std::vector<Event> second = ReadEvents(open_run);
  std::size_t terminal = 0;
  for (const Event& e : second) terminal += e.type == "run.completed";
  EXPECT_EQ(terminal, 1u) << "the run must not have been resumed into a second ending";
}

// Issue 17: the hidden state with replay round trip over HTTP. A hidden node's sealed blob is
// served as base64url, the node is purged, the client hands the blob back, and a seeded run over
// the same path generates exactly what it generated before the purge.
TEST_F(NativeApiTest, APurgedHiddenNodeRehydratedFromItsBlobReplaysIdentically) {
  std::string s = NewSession();
  std::string user = AppendUser(s, "Think about the plan, then answer.");
  const std::string secret = "Private reasoning: the answer is forty-two, but say it gently.";
  Json appended = Append(
      s,
      {{"parent", user}, {"nodes", {{{"kind", "reasoning"}, {"text", secret}, {"visibility", "hidden"}}}}});
  std::string hidden = appended["nodes"][0]["id"];
  std::string blob = appended["nodes"][0]["sealed"];
  ASSERT_FALSE(blob.empty());
  for (char c : blob) {
    ASSERT_TRUE(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')
        << "not base64url: " << blob;
  }
  auto [sg, view] = env_->Get("/v1/sessions/" + s);
  ASSERT_EQ(sg, 200);
  EXPECT_EQ(view["nodes"][1]["sealed"], blob) << "the session view serves the same blob";
  EXPECT_FALSE(view["nodes"][1].contains("text"));

  const Json params = {{"from", hidden}, {"max_tokens", 12}, {"temperature", 0.8}, {"seed", 99}};
  auto token_ids = [](const std::vector<Event>& events) {
    std::vector<int> ids;
    std::string text;
    for (const Event& e : events) {
      if (e.type == "token") {
        ids.push_back(e.data["token_id"]);
        text += e.data["text"].get<std::string>();
      }
    }
    return std::make_pair(ids, text);
  };
  std::vector<Event> before = ReadEvents(StartRun(s, params));
  ASSERT_EQ(before.back().type, "run.completed");

  env_->Stop();
  {
    store::SqliteStoreOptions options;
    options.path = dir_.File("data") + "/llmsync.sqlite";
    auto store = store::OpenSqliteStore(options);
    ASSERT_TRUE(store.IsOk()) << store.GetStatus().ToString();
    auto purged = (*store)->PurgeHidden(std::nullopt, Env::Default()->UnixMillis() + 3600 * 1000);
    ASSERT_TRUE(purged.IsOk());
    EXPECT_EQ(*purged, 1u);
  }
  ASSERT_TRUE(env_->Start(dir_.File("data")).IsOk());
  auto [sp, purged_view] = env_->Get("/v1/sessions/" + s);
  EXPECT_EQ(purged_view["nodes"][1]["purged"], true) << purged_view["nodes"][1];
  auto [refused, why] = env_->Post("/v1/sessions/" + s + "/runs", params);
  EXPECT_EQ(refused, 400) << why;

  // Bad blobs: not base64url, another node's blob, a tampered one. All 400, nothing restored.
  const std::string target = "/v1/sessions/" + s + "/nodes/" + hidden + "/rehydrate";
  std::string tampered = blob;
  tampered[tampered.size() / 2] = tampered[tampered.size() / 2] == 'A' ? 'B' : 'A';
  Json other = Append(s, {{"parent", user},
                          {"nodes", {{{"kind", "reasoning"}, {"text", "other"}, {"visibility", "hidden"}}}}});
  for (const Json& bad : {Json{{"sealed", blob + "="}}, Json{{"sealed", 7}}, Json{{"sealed", tampered}},
                          Json{{"sealed", other["nodes"][0]["sealed"]}}, Json::object()}) {
    auto [st, err] = env_->Post(target, bad);
    EXPECT_EQ(st, 400) << bad << " -> " << err;
  }
  auto [sr, restored] = env_->Post(target, {{"sealed", blob}});
  ASSERT_EQ(sr, 200) << restored;
  EXPECT_EQ(restored["id"], hidden);
  EXPECT_FALSE(restored.contains("purged"));

  std::vector<Event> after = ReadEvents(StartRun(s, params));
  ASSERT_EQ(after.back().type, "run.completed");
  EXPECT_EQ(token_ids(after), token_ids(before)) << "the replay must generate exactly what it did";
  EXPECT_EQ(after.back().data["node_id"], before.back().data["node_id"]);
}

// Issue 17: a client's export never holds hidden text; hidden nodes appear as id, kind, token
// count and sealed blob, and such a bundle still imports on the server that sealed them.
TEST_F(NativeApiTest, ExportsOverTheApiWithholdHiddenText) {
  std::string s = NewSession();
  std::string user = AppendUser(s, "hello");
  const std::string secret = "hidden thoughts nobody may read";
  Append(s, {{"parent", user},
             {"nodes", {{{"kind", "reasoning"}, {"text", secret}, {"visibility", "hidden"}}}}});
  auto r = env_->Client().Get("/v1/sessions/" + s + "/export");
  ASSERT_TRUE(r.IsOk());
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->body.find("hidden thoughts"), std::string::npos) << r->body;
  bool saw_hidden = false;
  std::size_t start = 0;
  while (start < r->body.size()) {
    std::size_t eol = r->body.find('\n', start);
    Json line = Json::parse(r->body.substr(start, eol - start));
    start = eol == std::string::npos ? r->body.size() : eol + 1;
    if (line["type"] != "node" || line["visibility"] != "hidden") continue;
    saw_hidden = true;
    EXPECT_EQ(line["withheld"], true);
    EXPECT_FALSE(line.contains("text"));
    EXPECT_FALSE(line.contains("tokens"));
    EXPECT_GT(line["token_count"].get<int>(), 0);
    EXPECT_FALSE(line["sealed"].get<std::string>().empty());
  }
  EXPECT_TRUE(saw_hidden);
  auto imported = env_->Client().PostJson("/v1/sessions/import", r->body);
  ASSERT_TRUE(imported.IsOk());
  ASSERT_EQ(imported->status, 201) << imported->body;
  EXPECT_EQ(Json::parse(imported->body)["nodes"], 2);
  auto markdown = env_->Client().Get("/v1/sessions/" + s + "/export?format=markdown");
  ASSERT_TRUE(markdown.IsOk());
  EXPECT_EQ(markdown->body.find("hidden thoughts"), std::string::npos);
}

// Issue 17: an append over the node limit is refused by count before anything is rendered or
// tokenized, and a large append freezes exactly the tokens node-by-node appends freeze (equal ids
// mean equal tokens at every node, since ids hash the frozen tokens and the parent).
TEST_F(NativeApiTest, LargeAppendsAreCheckedFirstAndFreezeLikeSingleAppends) {
  std::string s = NewSession();
  Json too_many = Json::array();
  for (int i = 0; i < 2000; ++i)
    too_many.push_back({{"kind", i % 2 == 0 ? "user" : "assistant"}, {"text", "x"}});
  auto [status, err] = env_->Post("/v1/sessions/" + s + "/nodes", {{"nodes", too_many}});
  EXPECT_EQ(status, 400) << err;
  EXPECT_NE(err.dump().find("exceeds the limit of 1024"), std::string::npos) << err;
  std::string big(1100000, 'a');
  auto [status_big, err_big] =
      env_->Post("/v1/sessions/" + s + "/nodes", {{"nodes", {{{"kind", "user"}, {"text", big}}}}});
  EXPECT_EQ(status_big, 400) << err_big;

  Json nodes = Json::array({{{"kind", "system"}, {"text", "You are terse."}}});
  for (int i = 0; i < 300; ++i) {
    nodes.push_back(
        {{"kind", i % 2 == 0 ? "user" : "assistant"},
         {"text", "Message " + std::to_string(i) + (i % 7 == 0 ? " with <|im_end|> inside" : " héllo")}});
  }
  Json batch = Append(s, {{"nodes", nodes}});
  ASSERT_EQ(batch["nodes"].size(), nodes.size());
  std::string one_by_one = NewSession();
  Json parent = nullptr;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    Json single = Append(one_by_one, {{"parent", parent}, {"nodes", {nodes[i]}}});
    EXPECT_EQ(single["nodes"][0]["id"], batch["nodes"][i]["id"]) << "node " << i << " froze other tokens";
    EXPECT_EQ(single["nodes"][0]["n_tokens"], batch["nodes"][i]["n_tokens"]) << "node " << i;
    parent = single["head"];
  }
  // Appending under an existing history takes the same path.
  Json more = Json::array();
  for (int i = 0; i < 5; ++i)
    more.push_back({{"kind", i % 2 == 0 ? "user" : "assistant"}, {"text", "more " + std::to_string(i)}});
  Json tail_batch = Append(s, {{"parent", batch["head"]}, {"nodes", more}});
  for (std::size_t i = 0; i < more.size(); ++i) {
    Json single = Append(one_by_one, {{"parent", parent}, {"nodes", {more[i]}}});
    EXPECT_EQ(single["nodes"][0]["id"], tail_batch["nodes"][i]["id"]) << "tail node " << i;
    parent = single["head"];
  }
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

// Issue 14: the conversation list and session metadata (the web page's titles).
TEST_F(NativeApiTest, SessionsAreListedNewestFirstWithTheirMetadata) {
  std::string a = NewSession();
  std::string b = NewSession();
  Append(b, {{"nodes", {{{"kind", "user"}, {"text", "Hi"}}}}});
  auto patch = [&](const std::string& id, const std::string& body) {
    auto r = env_->Client().Send("PATCH", "/v1/sessions/" + id, body, {{"Content-Type", "application/json"}});
    EXPECT_TRUE(r.IsOk());
    return std::make_pair(r->status, Json::parse(r->body, nullptr, false));
  };
  auto before = env_->Client().Get("/v1/sessions/" + b);
  ASSERT_TRUE(before.IsOk());
  auto [status, patched] = patch(b, R"({"metadata": {"title": "Greeting"}})");
  ASSERT_EQ(status, 200) << patched.dump();
  EXPECT_EQ(patched["metadata"]["title"], "Greeting");
  EXPECT_EQ(patched["seq"], 1);

  auto [list_status, list] = env_->Get("/v1/sessions?limit=10");
  ASSERT_EQ(list_status, 200);
  ASSERT_GE(list["sessions"].size(), 2u);
  EXPECT_EQ(list["sessions"][0]["id"], b);
  EXPECT_EQ(list["sessions"][0]["metadata"]["title"], "Greeting");
  EXPECT_FALSE(list["sessions"][0]["head"].is_null());
  EXPECT_EQ(list["sessions"][1]["id"], a);
  EXPECT_EQ(list["sessions"][1]["metadata"], Json::object());
  EXPECT_EQ(env_->Get("/v1/sessions/" + b).second["metadata"]["title"], "Greeting");
  // A new title is news to a replica polling with If-None-Match, though no node was added.
  auto after = env_->Client().Get("/v1/sessions/" + b, {{"If-None-Match", before->headers["etag"]}});
  ASSERT_TRUE(after.IsOk());
  EXPECT_EQ(after->status, 200);
  EXPECT_NE(after->headers["etag"], before->headers["etag"]);
  EXPECT_EQ(Json::parse(after->body)["metadata"]["title"], "Greeting");

  // Bad input is a 400 and changes nothing; another session id is a 404.
  EXPECT_EQ(patch(b, R"({"metadata": "x"})").first, 400);
  EXPECT_EQ(patch(b, "{\"metadata\": {\"t\": \"" + std::string(17000, 'x') + "\"}}").first, 400);
  EXPECT_EQ(patch(std::string(64, '0'), R"({"metadata": {}})").first, 404);
  EXPECT_EQ(env_->Get("/v1/sessions?limit=0").first, 400);
  EXPECT_EQ(env_->Get("/v1/sessions?limit=x").first, 400);
  EXPECT_EQ(env_->Get("/v1/sessions/" + b).second["metadata"]["title"], "Greeting");
}

}  // namespace
}  // namespace llmsync::testing
