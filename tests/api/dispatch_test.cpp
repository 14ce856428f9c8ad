// Cache-aware dispatch (issue 16): two engine processes and an api process on one real Redis.
// Multi-turn sessions return to the engine that holds their prefix (reason cache_hit, cached tokens
// on every follow-up turn) while new sessions spread; a session leased on the other engine goes
// there and stays (reason lease); with the holder's queue over the bound the least loaded engine
// takes a run (reason least_loaded); and a run offered to a holder that is then killed is done by
// the other engine (reason fallback).
#include <filesystem>
#include <map>
#include <set>

#include "../store/redis_server.h"
#include "llmsync/id.h"
#include "serve_process.h"

namespace llmsync::testing {
namespace {

struct Turn {
  std::string run;
  std::string worker;  // the engine that served it
  Json dispatch;
  Json usage;
};

class DispatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaveRedisServer()) GTEST_SKIP() << "redis-server not found at " << kRedisServerBinary;
    model_ = ServerTestEnv::TinyModel(dir_);
    std::filesystem::create_directories(dir_.File("redis"));
    redis_ = std::make_unique<RedisServer>(dir_.File("redis"));
    ASSERT_TRUE(redis_->Start());
    const std::string key_file = dir_.File("seal.key");
    std::FILE* f = std::fopen(key_file.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs((llmsync::Id::Random().ToHex() + "\n").c_str(), f);
    std::fclose(f);
    auto flags = [&](const std::string& role) {
      return std::vector<std::string>{"--store",         redis_->Url(), "--role",         role,
                                      "--seal-key-file", key_file,      "--run-lease-ms", "1500"};
    };
    std::vector<std::string> api_flags = flags("api");
    // Any queued or offered run at the holder passes it over (the bound case below).
    api_flags.insert(api_flags.end(), {"--dispatch-queue-bound", "0", "--dispatch-grace-ms", "20000"});
    api_ = std::make_unique<ServeProcess>(model_, dir_.File("api"), api_flags);
    engine_a_ = std::make_unique<ServeProcess>(model_, dir_.File("engine-a"), flags("engine"));
    engine_b_ = std::make_unique<ServeProcess>(model_, dir_.File("engine-b"), flags("engine"));
    api_->Start();
    engine_a_->Start();
    engine_b_->Start();
  }

  // Appends a user message under the session's head and submits a short run.
  std::string Submit(const std::string& session, const std::string& text) {
    client::HttpClient& c = api_->Client();
    auto info = c.Get("/v1/sessions/" + session);
    EXPECT_TRUE(info.IsOk());
    Json head = Json::parse(info->body)["head"];
    Json appended = PostJson(c, "/v1/sessions/" + session + "/nodes",
                             {{"parent", head}, {"nodes", {{{"kind", "user"}, {"text", text}}}}});
    EXPECT_TRUE(appended.contains("nodes")) << appended.dump();
    Json run = PostJson(c, "/v1/sessions/" + session + "/runs", {{"max_tokens", 6}, {"seed", 7}});
    EXPECT_TRUE(run.contains("id")) << run.dump();
    return run.contains("id") ? run["id"].get<std::string>() : "";
  }

  // Waits for the run's end and reads where it ran.
  Turn Finish(const std::string& run) {
    Streamed events = ReadRun(api_->Port(), run);
    EXPECT_EQ(events.last_type, "run.completed") << run;
    auto got = api_->Client().Get("/v1/runs/" + run);
    EXPECT_TRUE(got.IsOk());
    Json record = Json::parse(got->body);
    Turn t{run, record["worker"].is_string() ? record["worker"].get<std::string>() : "", record["dispatch"],
           record["usage"]};
    // The run's usage says the same (the usage event is what the OpenAI views' cost shows too).
    EXPECT_EQ(t.usage["dispatch"]["reason"], t.dispatch["reason"]) << got->body;
    EXPECT_EQ(t.usage["dispatch"]["engine"], t.worker) << got->body;
    return t;
  }

  Turn Play(const std::string& session, const std::string& text) { return Finish(Submit(session, text)); }

  std::string WorkerOf(const ServeProcess& p) const { return ":" + std::to_string(p.Pid()); }
  ServeProcess& EngineNamed(const std::string& worker) {
    return worker.substr(worker.rfind(':')) == WorkerOf(*engine_a_) ? *engine_a_ : *engine_b_;
  }
  ServeProcess& OtherEngine(const std::string& worker) {
    return &EngineNamed(worker) == engine_a_.get() ? *engine_b_ : *engine_a_;
  }
  static bool Serves(const ServeProcess& p, const std::string& worker) {
    return worker.substr(worker.rfind(':') + 1) == std::to_string(p.Pid());
  }

  TestDir dir_;
  std::string model_;
  std::unique_ptr<RedisServer> redis_;
  std::unique_ptr<ServeProcess> api_;
  std::unique_ptr<ServeProcess> engine_a_;
  std::unique_ptr<ServeProcess> engine_b_;
};

TEST_F(DispatchTest, SessionsReturnToTheirPrefixLeasesPinAndABusyOrDeadHolderIsPassedOver) {
  constexpr int kSessions = 4;
  constexpr int kTurns = 3;
  std::vector<std::string> sessions;
  for (int s = 0; s < kSessions; ++s)
    sessions.push_back(PostJson(api_->Client(), "/v1/sessions", Json::object())["id"]);
  std::map<std::string, std::string> holder;  // session -> the worker of its first turn
  for (int t = 0; t < kTurns; ++t) {
    for (int s = 0; s < kSessions; ++s) {
      Turn turn =
          Play(sessions[s], "Session " + std::to_string(s) + ", turn " + std::to_string(t) + ": go on.");
      ASSERT_FALSE(turn.worker.empty());
      if (t == 0) {
        holder[sessions[s]] = turn.worker;
        EXPECT_EQ(turn.dispatch["reason"], "least_loaded") << turn.dispatch.dump();
        continue;
      }
      EXPECT_EQ(turn.worker, holder[sessions[s]]) << "turn " << t << " of session " << s << " moved";
      EXPECT_EQ(turn.dispatch["reason"], "cache_hit") << turn.dispatch.dump();
      EXPECT_GT(turn.dispatch["matched_tokens"].get<std::uint64_t>(), 0u) << turn.dispatch.dump();
      EXPECT_GT(turn.usage["cached_tokens"]["ram"].get<std::uint64_t>(), 0u) << turn.usage.dump();
    }
  }
  std::set<std::string> used;
  for (const auto& [s, w] : holder) used.insert(w);
  EXPECT_EQ(used.size(), 2u) << "new sessions spread over both engines";

  // A lease taken on the other engine pins the session there, for every turn while it lasts.
  const std::string leased = sessions[0];
  ServeProcess& lessee = OtherEngine(holder[leased]);
  auto info = api_->Client().Get("/v1/sessions/" + leased);
  ASSERT_TRUE(info.IsOk());
  const std::string head = Json::parse(info->body)["head"];
  Json lease =
      PostJson(lessee.Client(), "/v1/sessions/" + leased + "/lease", {{"node", head}, {"ttl_s", 600}});
  ASSERT_TRUE(lease.contains("lease_id")) << lease.dump();
  for (int t = 0; t < 2; ++t) {
    Turn turn = Play(leased, "Leased turn " + std::to_string(t) + ".");
    EXPECT_TRUE(Serves(lessee, turn.worker)) << turn.worker;
    EXPECT_EQ(turn.dispatch["reason"], "lease") << turn.dispatch.dump();
  }

  // Two sessions held by one engine; that engine stops (SIGSTOP: still live to the dispatcher
  // for its heartbeat's TTL, but claiming nothing). The first run is offered to it (nothing is
  // queued there yet); the second finds a run queued there, over the bound of 0, and goes to the
  // least loaded engine at once.
  std::vector<std::string> held_by_one;
  const std::string busy_worker = holder[sessions[1]];
  for (int s = 1; s < kSessions; ++s) {
    if (holder[sessions[s]] == busy_worker) held_by_one.push_back(sessions[s]);
  }
  ASSERT_GE(held_by_one.size(), 2u);
  ServeProcess& busy = EngineNamed(busy_worker);
  ServeProcess& other = OtherEngine(busy_worker);
  ::kill(busy.Pid(), SIGSTOP);
  const std::string offered = Submit(held_by_one[0], "Offered to a stopped engine.");
  const std::string passed = Submit(held_by_one[1], "Passed over.");
  Turn over_bound = Finish(passed);
  EXPECT_TRUE(Serves(other, over_bound.worker)) << over_bound.worker;
  EXPECT_EQ(over_bound.dispatch["reason"], "least_loaded") << over_bound.dispatch.dump();
  EXPECT_EQ(over_bound.dispatch["target"], over_bound.worker);

  // The holder dies with the first run still offered to it: the other engine does it, and says why.
  EXPECT_TRUE(WIFSIGNALED(busy.Kill(SIGKILL)));
  Turn rescued = Finish(offered);
  EXPECT_TRUE(Serves(other, rescued.worker)) << rescued.worker;
  EXPECT_EQ(rescued.dispatch["reason"], "fallback") << rescued.dispatch.dump();
  EXPECT_EQ(rescued.dispatch["target"], busy_worker) << "it was offered to the holder first";
}

}  // namespace
}  // namespace llmsync::testing
