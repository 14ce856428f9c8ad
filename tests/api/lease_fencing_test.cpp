// Lease fencing (issue 13): an engine paused past its run lease (SIGSTOP) while another engine
// takes the run over must not write for that run once it continues (SIGCONT). Its writes carry the
// lease epoch it claimed, the store refuses them, and it drops the run with a log line. The
// subscriber sees contiguous, unique event ids and exactly the tokens of an uninterrupted run.
#include <filesystem>
#include <mutex>

#include "../store/redis_server.h"
#include "llmsync/id.h"
#include "serve_process.h"

namespace llmsync::testing {
namespace {

bool LogContains(const ServeProcess& p, const std::string& text) {
  auto log = Env::Default()->ReadFile(p.LogPath());
  return log.IsOk() && log->find(text) != std::string::npos;
}

TEST(LeaseFencingTest, AnEnginePausedPastItsLeaseCannotWriteAfterTheTakeover) {
  if (!HaveRedisServer()) GTEST_SKIP() << "redis-server not found at " << kRedisServerBinary;
  TestDir dir;
  std::string model = ServerTestEnv::TinyModel(dir);

  // Reference: the same seeded run in one process on SQLite.
  const Streamed expected = UninterruptedLongRun(model, dir.File("ref"));
  ASSERT_EQ(expected.last_type, "run.completed");

  std::filesystem::create_directories(dir.File("redis"));
  RedisServer redis(dir.File("redis"));
  ASSERT_TRUE(redis.Start());
  auto flags = [&](const std::string& role) {
    return std::vector<std::string>{"--store", redis.Url(), "--role", role, "--run-lease-ms", "1000"};
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
  std::vector<std::uint64_t> ids;
  std::vector<std::int32_t> tokens;
  std::string last_type;
  std::thread subscriber([&] {
    client::HttpClient c("127.0.0.1", api.Port(), std::chrono::seconds(120));
    client::HeaderList headers;
    std::uint64_t cursor = 0;
    // The stale engine's process may end a local subscription; resume like a client does.
    for (int attempt = 0; attempt < 5; ++attempt) {
      if (cursor > 0) headers["Last-Event-ID"] = std::to_string(cursor);
      int status = 0;
      (void)c.Stream(
          "/v1/runs/" + run + "/events", headers,
          [&](const client::SseEvent& e) {
            std::lock_guard<std::mutex> lock(mu);
            cursor = std::stoull(e.id);
            ids.push_back(cursor);
            last_type = e.event;
            if (e.event == "token") tokens.push_back(Json::parse(e.data)["token_id"].get<std::int32_t>());
            return true;
          },
          &status);
      std::lock_guard<std::mutex> lock(mu);
      if (last_type == "run.completed") return;
    }
  });

  for (int i = 0; i < 3000; ++i) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (tokens.size() >= 25) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  auto info = api.Client().Get("/v1/runs/" + run);
  ASSERT_TRUE(info.IsOk());
  const std::string worker = Json::parse(info->body)["worker"];
  const pid_t pid = std::stoi(worker.substr(worker.rfind(':') + 1));
  ASSERT_TRUE(pid == engine_a.Pid() || pid == engine_b.Pid()) << worker;
  ServeProcess& stale = pid == engine_a.Pid() ? engine_a : engine_b;
  ServeProcess& survivor = pid == engine_a.Pid() ? engine_b : engine_a;

  // Pause the owner past its lease until the other engine has claimed the run, then let it go on.
  ASSERT_EQ(::kill(stale.Pid(), SIGSTOP), 0);
  const std::string claimed = "claimed run " + run.substr(0, 12) + " (running";
  for (int i = 0; i < 1500 && !LogContains(survivor, claimed); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_TRUE(LogContains(survivor, claimed)) << "the other engine never took the run over";
  ASSERT_EQ(::kill(stale.Pid(), SIGCONT), 0);
  subscriber.join();

  EXPECT_EQ(last_type, "run.completed");
  for (std::size_t i = 0; i < ids.size(); ++i)
    ASSERT_EQ(ids[i], i + 1) << "event ids must be contiguous and unique across the takeover";
  EXPECT_EQ(tokens, expected.tokens) << "the stale engine must not have added tokens";

  // The stale engine noticed and stopped the run quietly: it is alive and says why.
  for (int i = 0; i < 500 && !LogContains(stale, "another worker took it over"); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_TRUE(LogContains(stale, "another worker took it over"));
  auto health = stale.Client().Get("/healthz");
  ASSERT_TRUE(health.IsOk());
  EXPECT_EQ(health->status, 200);

  // The durable stream, read afresh after the stale engine had time to try more writes.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  Streamed stored = ReadRun(api.Port(), run);
  EXPECT_EQ(stored.tokens, expected.tokens);
  EXPECT_EQ(stored.payloads.size(), ids.size());
  auto done = api.Client().Get("/v1/runs/" + run);
  ASSERT_TRUE(done.IsOk());
  Json finished = Json::parse(done->body);
  EXPECT_EQ(finished["status"], "succeeded");
  const std::string last_worker = finished["worker"];
  EXPECT_EQ(last_worker.substr(last_worker.rfind(':') + 1), std::to_string(survivor.Pid()));
}

}  // namespace
}  // namespace llmsync::testing
