// Many `llmsync serve` processes on one Redis: an api process and two engine processes. A run is
// followed from the api process while the engine executing it is SIGKILLed; the other engine takes
// it over and the subscriber sees every event exactly once, with the text of an uninterrupted run.
#include <filesystem>
#include <mutex>
#include <set>

#include "../store/redis_server.h"
#include "llmsync/id.h"
#include "serve_process.h"

namespace llmsync::testing {
namespace {

struct Followed {
  std::vector<std::uint64_t> ids;
  std::vector<std::int32_t> tokens;
  std::string last_type;
};

TEST(ScaleOutTest, AnEngineKilledMidRunIsTakenOverAndTheSubscriberMissesNothing) {
  if (!HaveRedisServer()) GTEST_SKIP() << "redis-server not found at " << kRedisServerBinary;
  TestDir dir;
  std::string model = ServerTestEnv::TinyModel(dir);

  // Reference: the same seeded run in one process on SQLite.
  const Streamed expected = UninterruptedLongRun(model, dir.File("ref"));
  ASSERT_EQ(expected.last_type, "run.completed");

  std::filesystem::create_directories(dir.File("redis"));
  RedisServer redis(dir.File("redis"));
  ASSERT_TRUE(redis.Start());
  const std::string key_file = dir.File("seal.key");
  {
    std::FILE* f = std::fopen(key_file.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs((llmsync::Id::Random().ToHex() + "\n").c_str(), f);
    std::fclose(f);
  }
  auto flags = [&](const std::string& role) {
    return std::vector<std::string>{"--store",         redis.Url(), "--role",         role,
                                    "--seal-key-file", key_file,    "--run-lease-ms", "1500"};
  };
  ServeProcess api(model, dir.File("api"), flags("api"));
  ServeProcess engine_a(model, dir.File("engine-a"), flags("engine"));
  ServeProcess engine_b(model, dir.File("engine-b"), flags("engine"));
  api.Start();
  engine_a.Start();
  engine_b.Start();

  std::string run = StartLongRun(api.Client());
  ASSERT_FALSE(run.empty());
  std::mutex mu;
  Followed seen;
  std::thread subscriber([&] {
    client::HttpClient c("127.0.0.1", api.Port(), std::chrono::seconds(120));
    int status = 0;
    Status s = c.Stream(
        "/v1/runs/" + run + "/events", {},
        [&](const client::SseEvent& e) {
          std::lock_guard<std::mutex> lock(mu);
          seen.ids.push_back(std::stoull(e.id));
          seen.last_type = e.event;
          if (e.event == "token") seen.tokens.push_back(Json::parse(e.data)["token_id"].get<std::int32_t>());
          return true;
        },
        &status);
    EXPECT_TRUE(s.IsOk()) << s.ToString();
    EXPECT_EQ(status, 200);
  });

  // Once tokens flow, find the engine executing the run and kill it.
  for (int i = 0; i < 3000; ++i) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (seen.tokens.size() >= 25) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  auto info = api.Client().Get("/v1/runs/" + run);
  ASSERT_TRUE(info.IsOk());
  Json record = Json::parse(info->body);
  ASSERT_TRUE(record["worker"].is_string()) << info->body;
  const std::string worker = record["worker"];
  const pid_t pid = std::stoi(worker.substr(worker.rfind(':') + 1));
  ASSERT_TRUE(pid == engine_a.Pid() || pid == engine_b.Pid()) << worker;
  ServeProcess& victim = pid == engine_a.Pid() ? engine_a : engine_b;
  ServeProcess& survivor = pid == engine_a.Pid() ? engine_b : engine_a;
  EXPECT_TRUE(WIFSIGNALED(victim.Kill(SIGKILL)));
  subscriber.join();

  // The kill landed mid-run: the survivor says it claimed the run while it was running.
  auto log = Env::Default()->ReadFile(survivor.LogPath());
  ASSERT_TRUE(log.IsOk());
  EXPECT_NE(log->find("claimed run " + run.substr(0, 12) + " (running"), std::string::npos) << *log;
  EXPECT_EQ(seen.last_type, "run.completed");
  for (std::size_t i = 0; i < seen.ids.size(); ++i)
    ASSERT_EQ(seen.ids[i], i + 1) << "event ids must be contiguous and unique across the takeover";
  EXPECT_EQ(seen.tokens, expected.tokens)
      << "the taken-over run must continue exactly as the uninterrupted one";

  // Last-Event-ID resumes on any process, here the surviving engine: exactly the rest comes back.
  const std::uint64_t half = seen.ids.size() / 2;
  client::HttpClient other("127.0.0.1", survivor.Port(), std::chrono::seconds(60));
  client::HeaderList resume_headers;
  resume_headers["Last-Event-ID"] = std::to_string(half);
  std::vector<std::uint64_t> rest;
  int resume_status = 0;
  Status resumed = other.Stream(
      "/v1/runs/" + run + "/events", resume_headers,
      [&](const client::SseEvent& e) {
        rest.push_back(std::stoull(e.id));
        return true;
      },
      &resume_status);
  EXPECT_TRUE(resumed.IsOk()) << resumed.ToString();
  ASSERT_EQ(rest.size(), seen.ids.size() - half);
  EXPECT_EQ(rest.front(), half + 1);
  EXPECT_EQ(rest.back(), seen.ids.size());

  // The record names the engine that finished it, and the session no longer has a running run.
  auto done = api.Client().Get("/v1/runs/" + run);
  ASSERT_TRUE(done.IsOk());
  Json finished = Json::parse(done->body);
  EXPECT_EQ(finished["status"], "succeeded");
  EXPECT_EQ(
      finished["worker"].get<std::string>().substr(finished["worker"].get<std::string>().rfind(':') + 1),
      std::to_string(survivor.Pid()));
  auto session = api.Client().Get("/v1/sessions/" + finished["session"].get<std::string>());
  ASSERT_TRUE(session.IsOk());
  EXPECT_TRUE(Json::parse(session->body)["running_run"].is_null()) << session->body;
}

}  // namespace
}  // namespace llmsync::testing
