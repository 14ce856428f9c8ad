// The session event feed across processes (issue 13): three `llmsync serve` processes on one Redis,
// two api processes and an engine. A subscriber on api process B sees, live, what happens through
// api process A and on the engine: node.appended, metadata.changed, run.started, run.finished,
// head.moved. A reconnect with Last-Event-ID on any process gets exactly the nodes it missed, then
// live events. Many subscribers cost a process one blocking Redis connection, not one each.
#include <algorithm>
#include <condition_variable>
#include <filesystem>
#include <mutex>

#include "../store/redis_server.h"
#include "llmsync/id.h"
#include "serve_process.h"

namespace llmsync::testing {
namespace {

struct FeedEvent {
  std::uint64_t id = 0;
  std::string type;
  Json data;
};

// Follows a session's feed on a thread until `stop_after` arrives (or the stream fails).
class FeedReader {
 public:
  FeedReader(std::uint16_t port, std::string session, std::string stop_after, std::string last_event_id = "")
      : port_(port), session_(std::move(session)), stop_after_(std::move(stop_after)) {
    thread_ = std::thread([this, last_event_id] { Read(last_event_id); });
  }
  ~FeedReader() {
    if (thread_.joinable()) thread_.join();
  }
  // Waits until an event of `type` arrived; false after 30 s.
  bool WaitFor(const std::string& type) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(30), [&] {
      for (const FeedEvent& e : events_)
        if (e.type == type) return true;
      return done_;
    }) && Has(type);
  }
  std::vector<FeedEvent> Join() {
    thread_.join();
    std::lock_guard<std::mutex> lock(mu_);
    return events_;
  }

 private:
  bool Has(const std::string& type) const {
    for (const FeedEvent& e : events_)
      if (e.type == type) return true;
    return false;
  }
  void Read(const std::string& last_event_id) {
    client::HttpClient c("127.0.0.1", port_, std::chrono::seconds(30));
    client::HeaderList headers;
    if (!last_event_id.empty()) headers["Last-Event-ID"] = last_event_id;
    int status = 0;
    Status s = c.Stream(
        "/v1/sessions/" + session_ + "/events", headers,
        [&](const client::SseEvent& e) {
          std::lock_guard<std::mutex> lock(mu_);
          events_.push_back({std::stoull(e.id), e.event, Json::parse(e.data, nullptr, false)});
          cv_.notify_all();
          return e.event != stop_after_;
        },
        &status);
    EXPECT_EQ(status, 200) << s.ToString();
    std::lock_guard<std::mutex> lock(mu_);
    done_ = true;
    cv_.notify_all();
  }

  std::uint16_t port_;
  std::string session_;
  std::string stop_after_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<FeedEvent> events_;  // GUARDED_BY(mu_)
  bool done_ = false;              // GUARDED_BY(mu_)
  std::thread thread_;
};

std::vector<std::string> Types(const std::vector<FeedEvent>& events) {
  std::vector<std::string> out;
  for (const FeedEvent& e : events) out.push_back(e.type);
  return out;
}

long long RedisInfoField(int port, const std::string& field) {
  store::redis::ClientOptions options;
  options.port = port;
  store::redis::RedisClient client(options);
  auto r = client.Command({"INFO", "clients"}, true);
  if (!r.IsOk()) return -1;
  std::size_t at = r->str.find(field + ":");
  if (at == std::string::npos) return -1;
  return std::stoll(r->str.substr(at + field.size() + 1));
}

TEST(SessionFeedTest, ASubscriberOnOneProcessSeesWhatAnotherProcessAndAnEngineDid) {
  if (!HaveRedisServer()) GTEST_SKIP() << "redis-server not found at " << kRedisServerBinary;
  TestDir dir;
  std::string model = ServerTestEnv::TinyModel(dir);
  std::filesystem::create_directories(dir.File("redis"));
  RedisServer redis(dir.File("redis"));
  ASSERT_TRUE(redis.Start());
  auto flags = [&](const std::string& role) {
    return std::vector<std::string>{"--store", redis.Url(), "--role", role, "--run-lease-ms", "1500"};
  };
  ServeProcess a(model, dir.File("api-a"), flags("api"));
  ServeProcess b(model, dir.File("api-b"), flags("api"));
  ServeProcess engine(model, dir.File("engine"), flags("engine"));
  a.Start();
  b.Start();
  engine.Start();

  std::string s = PostJson(a.Client(), "/v1/sessions", Json::object())["id"];
  ASSERT_FALSE(s.empty());
  FeedReader feed(b.Port(), s, "head.moved");
  ASSERT_TRUE(feed.WaitFor("sync"));

  // Everything goes through process A or the engine; the subscriber is on B.
  Json appended = PostJson(a.Client(), "/v1/sessions/" + s + "/nodes",
                           {{"nodes", {{{"kind", "user"}, {"text", "Hello there."}}}}});
  const std::string user_node = appended["nodes"][0]["id"];
  ASSERT_TRUE(feed.WaitFor("node.appended"));
  auto patched = a.Client().Send("PATCH", "/v1/sessions/" + s, R"({"metadata": {"title": "greeting"}})");
  ASSERT_TRUE(patched.IsOk());
  ASSERT_EQ(patched->status, 200) << patched->body;
  ASSERT_TRUE(feed.WaitFor("metadata.changed"));
  Json run = PostJson(a.Client(), "/v1/sessions/" + s + "/runs", {{"max_tokens", 6}, {"seed", 7}});
  const std::string run_id = run["id"];
  ASSERT_TRUE(feed.WaitFor("run.finished"));
  Json head = PostJson(a.Client(), "/v1/sessions/" + s + "/head", {{"node", user_node}});
  std::vector<FeedEvent> events = feed.Join();

  EXPECT_EQ(Types(events), (std::vector<std::string>{"sync", "node.appended", "metadata.changed",
                                                     "run.started", "run.finished", "head.moved"}));
  ASSERT_EQ(events.size(), 6u);
  EXPECT_EQ(events[1].data["nodes"][0]["id"], user_node);
  EXPECT_EQ(events[1].id, appended["nodes"][0]["seq"].get<std::uint64_t>());
  EXPECT_EQ(events[2].data["metadata"]["title"], "greeting");
  EXPECT_EQ(events[3].data["id"], run_id);
  EXPECT_EQ(events[4].data["id"], run_id);
  EXPECT_EQ(events[4].data["status"], "succeeded");
  ASSERT_TRUE(events[4].data["result_node"].is_string()) << events[4].data.dump();
  EXPECT_EQ(events[5].data["head"], user_node);
  EXPECT_EQ(events[5].id, head["seq"].get<std::uint64_t>());
  for (std::size_t i = 1; i < events.size(); ++i)
    EXPECT_GE(events[i].id, events[i - 1].id) << "session event ids never go down";
  // The engine finished the run (its process published run.finished).
  auto record = a.Client().Get("/v1/runs/" + run_id);
  ASSERT_TRUE(record.IsOk());
  const std::string worker = Json::parse(record->body)["worker"];
  EXPECT_EQ(worker.substr(worker.rfind(':') + 1), std::to_string(engine.Pid()));

  // Missed while disconnected: a node appended through B. Resuming on the engine process with the
  // last id seen gives exactly that node in the sync, then live events from A.
  Json missed = PostJson(b.Client(), "/v1/sessions/" + s + "/nodes",
                         {{"parent", user_node}, {"nodes", {{{"kind", "user"}, {"text", "Still there?"}}}}});
  FeedReader resumed(engine.Port(), s, "node.appended", std::to_string(events.back().id));
  ASSERT_TRUE(resumed.WaitFor("sync"));
  Json live = PostJson(a.Client(), "/v1/sessions/" + s + "/nodes",
                       {{"parent", user_node}, {"nodes", {{{"kind", "user"}, {"text", "Live one."}}}}});
  std::vector<FeedEvent> after = resumed.Join();
  ASSERT_EQ(Types(after), (std::vector<std::string>{"sync", "node.appended"}));
  ASSERT_EQ(after[0].data["nodes"].size(), 1u) << after[0].data.dump();
  EXPECT_EQ(after[0].data["nodes"][0]["id"], missed["nodes"][0]["id"]);
  EXPECT_EQ(after[1].data["nodes"][0]["id"], live["nodes"][0]["id"]);
  EXPECT_GT(after[1].id, after[0].id);

  // Twenty subscribers over ten sessions on B block one Redis connection for the feeds, not twenty.
  const long long blocked_before = RedisInfoField(redis.Port(), "blocked_clients");
  std::vector<std::string> sessions;
  for (int i = 0; i < 10; ++i) sessions.push_back(PostJson(a.Client(), "/v1/sessions", Json::object())["id"]);
  std::vector<std::unique_ptr<FeedReader>> readers;
  for (int i = 0; i < 20; ++i)
    readers.push_back(std::make_unique<FeedReader>(b.Port(), sessions[i % 10], "node.appended"));
  for (auto& r : readers) ASSERT_TRUE(r->WaitFor("sync"));
  std::this_thread::sleep_for(std::chrono::milliseconds(600));  // a follower round with all of them
  const long long blocked = RedisInfoField(redis.Port(), "blocked_clients");
  EXPECT_LE(blocked, blocked_before + 1) << "before: " << blocked_before;
  for (const std::string& id : sessions)
    PostJson(a.Client(), "/v1/sessions/" + id + "/nodes", {{"nodes", {{{"kind", "user"}, {"text", "hi"}}}}});
  for (auto& r : readers) {
    std::vector<FeedEvent> got = r->Join();
    EXPECT_EQ(Types(got), (std::vector<std::string>{"sync", "node.appended"}));
  }
}

// One process on SQLite delivers the same feed in-process: every kind of event, ids never below
// an earlier one (a run event carries the latest seq, not 0).
TEST(SessionFeedTest, OneProcessOnSqliteDeliversTheSameEvents) {
  TestDir dir;
  std::string model = ServerTestEnv::TinyModel(dir);
  ServeProcess server(model, dir.File("one"));
  server.Start();
  std::string s = PostJson(server.Client(), "/v1/sessions", Json::object())["id"];
  FeedReader feed(server.Port(), s, "head.moved");
  ASSERT_TRUE(feed.WaitFor("sync"));
  Json appended = PostJson(server.Client(), "/v1/sessions/" + s + "/nodes",
                           {{"nodes", {{{"kind", "user"}, {"text", "Hello there."}}}}});
  ASSERT_TRUE(feed.WaitFor("node.appended"));
  auto patched = server.Client().Send("PATCH", "/v1/sessions/" + s, R"({"metadata": {"title": "t"}})");
  ASSERT_TRUE(patched.IsOk());
  ASSERT_TRUE(feed.WaitFor("metadata.changed"));
  PostJson(server.Client(), "/v1/sessions/" + s + "/runs", {{"max_tokens", 4}, {"seed", 1}});
  ASSERT_TRUE(feed.WaitFor("run.finished"));
  PostJson(server.Client(), "/v1/sessions/" + s + "/head", {{"node", appended["nodes"][0]["id"]}});
  std::vector<FeedEvent> events = feed.Join();
  std::vector<std::string> types = Types(events);
  ASSERT_EQ(types.size(), 6u);
  // The run may end before its HTTP handler publishes run.started: those two in either order.
  std::sort(types.begin() + 3, types.begin() + 5);
  EXPECT_EQ(types, (std::vector<std::string>{"sync", "node.appended", "metadata.changed", "run.finished",
                                             "run.started", "head.moved"}));
  for (std::size_t i = 2; i < events.size(); ++i) {
    EXPECT_GE(events[i].id, events[i - 1].id) << events[i].type;
    EXPECT_GT(events[i].id, 0u) << events[i].type;
  }
}

}  // namespace
}  // namespace llmsync::testing
