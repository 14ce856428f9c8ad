// Issue 17's crash campaign: random SIGKILLs of a real `llmsync serve` while clients append nodes,
// start seeded runs, cancel some and subscribe to all. After each kill: PRAGMA integrity_check
// passes; after each restart: every acknowledged node is there with its seq, every event a
// subscriber saw is stored unchanged, no event id repeats or skips, every finished run ends with
// exactly one terminal event, acknowledged cancels stayed cancelled, and every run's tokens are a
// prefix of (for completed runs: equal to) an uninterrupted run with the same prompt and seed.
// Bounded: 20 kills (6 when LLMSYNC_SANITIZED=1) and about 40 s of activity at most.
// The same campaign runs on the Redis store (redis-server with appendonly yes, appendfsync always):
// there every third kill takes redis-server down too (SIGKILL, restart from its AOF), and the same
// checks hold.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <utility>  // before Boost 1.74 asio, whose awaitable.hpp uses std::exchange

#include <atomic>
#include <boost/asio.hpp>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "../cli/run_cli.h"
#include "../store/redis_server.h"
#include "../store/sqlite_check.h"
#include "server_test_env.h"

namespace llmsync::testing {
namespace {

std::uint16_t FreePort() {
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor a(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();
}

std::string LlmsyncBin() { return LlmsyncBinary(); }

// One `llmsync serve` child process.
class Server {
 public:
  Server(std::string model, std::string data, std::vector<std::string> extra = {})
      : model_(std::move(model)), data_(std::move(data)), extra_(std::move(extra)) {}
  ~Server() { Kill(SIGKILL); }
  bool Start() {
    port_ = FreePort();
    std::string listen = "127.0.0.1:" + std::to_string(port_);
    std::string bin = LlmsyncBin();
    pid_ = ::fork();
    if (pid_ == 0) {
      std::string log = data_ + ".log";
      FILE* f = std::freopen(log.c_str(), "a", stderr);
      (void)f;
      std::vector<std::string> args = {bin,          "serve", "--listen",  listen, "--model",     model_,
                                       "--data-dir", data_,   "--threads", "1",    "--kv-ram-mb", "16"};
      args.insert(args.end(), extra_.begin(), extra_.end());
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(bin.c_str(), argv.data());
      ::_exit(127);
    }
    client::HttpClient c("127.0.0.1", port_, std::chrono::seconds(5));
    for (int i = 0; i < 1000; ++i) {
      auto r = c.Get("/healthz");
      if (r.IsOk() && r->status == 200) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  void Kill(int sig) {
    if (pid_ <= 0) return;
    ::kill(pid_, sig);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }
  std::uint16_t Port() const { return port_; }

 private:
  std::string model_, data_;
  std::vector<std::string> extra_;
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
};

constexpr int kPrompts = 4;
const Json kRunParams = {{"max_tokens", 24}, {"temperature", 0.9}};

struct RunInfo {
  int prompt = 0;
  bool cancel_acked = false;
};

// What clients were told, across every round.
struct Acked {
  std::mutex mu;
  std::map<std::string, std::uint64_t> nodes;  // node id -> seq (in the notes session)
  std::map<std::string, RunInfo> runs;         // run id -> prompt
  std::map<std::pair<std::string, std::uint64_t>, std::string> events;  // (run, event id) -> "type data"
};

Json Post(client::HttpClient& c, const std::string& target, const Json& body, int* status = nullptr) {
  auto r = c.PostJson(target, body.dump());
  if (status != nullptr) *status = r.IsOk() ? r->status : 0;
  return r.IsOk() ? Json::parse(r->body, nullptr, false) : Json();
}

// Streams a run's events after `after`, recording each; stops after `max_tokens` tokens if given.
// Returns the last event id seen.
std::uint64_t Subscribe(std::uint16_t port, const std::string& run, std::uint64_t after, Acked& acked,
                        std::size_t max_tokens = SIZE_MAX, std::vector<std::string>* out = nullptr) {
  client::HttpClient c("127.0.0.1", port, std::chrono::seconds(30));
  client::HeaderList headers;
  if (after > 0) headers["Last-Event-ID"] = std::to_string(after);
  std::size_t tokens = 0;
  int status = 0;
  (void)c.Stream(
      "/v1/runs/" + run + "/events", headers,
      [&](const client::SseEvent& e) {
        std::uint64_t id = std::strtoull(e.id.c_str(), nullptr, 10);
        if (id == 0) return true;  // not a run event (an error notice)
        after = id;
        std::string line = e.event + " " + e.data;
        if (out != nullptr) out->push_back(line);
        {
          std::lock_guard<std::mutex> lock(acked.mu);
          acked.events.emplace(std::make_pair(run, id), line);
        }
        if (e.event == "token") ++tokens;
        return tokens < max_tokens;
      },
      &status);
  return after;
}

std::vector<std::int32_t> Tokens(const std::vector<std::string>& lines) {
  std::vector<std::int32_t> out;
  for (const std::string& l : lines) {
    if (l.rfind("token ", 0) == 0) out.push_back(Json::parse(l.substr(6))["token_id"].get<std::int32_t>());
  }
  return out;
}

std::string StartPromptRun(client::HttpClient& c, int prompt) {
  Json session = Post(c, "/v1/sessions", Json::object());
  if (!session.contains("id")) return "";
  std::string s = session["id"];
  int st = 0;
  Post(c, "/v1/sessions/" + s + "/nodes",
       {{"nodes", {{{"kind", "user"}, {"text", "Story number " + std::to_string(prompt)}}}}}, &st);
  if (st != 201) return "";
  Json params = kRunParams;
  params["seed"] = 500 + prompt;
  Json run = Post(c, "/v1/sessions/" + s + "/runs", params, &st);
  return st == 202 && run.contains("id") ? run["id"].get<std::string>() : "";
}

// The campaign on SQLite (redis == nullptr) or on the given Redis server.
void RunCampaign(RedisServer* redis) {
  const bool sanitized = std::getenv("LLMSYNC_SANITIZED") != nullptr;
  const int max_kills = sanitized ? 6 : 20;
  TestDir dir;
  std::string model = ServerTestEnv::TinyModel(dir);

  // The uninterrupted reference for each prompt.
  std::vector<std::vector<std::int32_t>> reference(kPrompts);
  {
    Server ref(model, dir.File("ref"));
    ASSERT_TRUE(ref.Start());
    client::HttpClient c("127.0.0.1", ref.Port(), std::chrono::seconds(30));
    Acked scratch;
    for (int k = 0; k < kPrompts; ++k) {
      std::string run = StartPromptRun(c, k);
      ASSERT_FALSE(run.empty());
      std::vector<std::string> lines;
      Subscribe(ref.Port(), run, 0, scratch, SIZE_MAX, &lines);
      ASSERT_FALSE(lines.empty());
      ASSERT_EQ(lines.back().rfind("run.completed", 0), 0u) << lines.back();
      reference[k] = Tokens(lines);
    }
    ref.Kill(SIGTERM);
  }

  const std::string data = dir.File("data");
  const std::string db = data + "/llmsync.sqlite";
  std::vector<std::string> flags;
  // One process on Redis still claims runs under leases: a restarted one (a new worker) takes the
  // dead one's runs over once their short lease lapses.
  if (redis != nullptr) flags = {"--store", redis->Url(), "--run-lease-ms", "600"};
  Server server(model, data, flags);
  ASSERT_TRUE(server.Start());
  std::string notes;
  {
    client::HttpClient c("127.0.0.1", server.Port(), std::chrono::seconds(30));
    notes = Post(c, "/v1/sessions", Json::object())["id"];
  }
  Acked acked;
  std::mt19937 rng(1717);
  std::atomic<int> note_counter{0};
  std::atomic<int> run_counter{0};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(40);
  int kills = 0;
  std::size_t events_checked = 0;

  auto verify = [&](bool final_round) {
    client::HttpClient c("127.0.0.1", server.Port(), std::chrono::seconds(30));
    auto r = c.Get("/v1/sessions/" + notes);
    ASSERT_TRUE(r.IsOk() && r->status == 200);
    std::map<std::string, std::uint64_t> stored;
    const Json session = Json::parse(r->body);
    for (const Json& n : session["nodes"]) stored[n["id"].get<std::string>()] = n["seq"].get<std::uint64_t>();
    std::lock_guard<std::mutex> lock(acked.mu);
    for (const auto& [id, seq] : acked.nodes) {
      ASSERT_TRUE(stored.count(id)) << "acknowledged node " << id << " (seq " << seq
                                    << ") lost; the session has " << stored.size()
                                    << " nodes: " << r->body.substr(0, 300);
      EXPECT_EQ(stored[id], seq);
    }
    if (!final_round) return;
    for (const auto& [run, info] : acked.runs) {
      Json record;
      for (int i = 0; i < 3000; ++i) {
        auto g = c.Get("/v1/runs/" + run);
        if (g.IsOk() && g->status == 200) {
          record = Json::parse(g->body);
          if (record["status"] != "queued" && record["status"] != "running") break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      ASSERT_TRUE(record.is_object()) << run;
      std::vector<std::string> lines;
      Acked scratch;
      Subscribe(server.Port(), run, 0, scratch, SIZE_MAX, &lines);
      std::size_t terminal = 0;
      for (const std::string& l : lines) {
        terminal += l.rfind("run.completed", 0) == 0 || l.rfind("run.cancelled", 0) == 0 ||
                    l.rfind("run.failed", 0) == 0;
      }
      EXPECT_EQ(terminal, 1u) << "run " << run << " status " << record["status"];
      ASSERT_FALSE(lines.empty());
      std::string last = lines.back().substr(0, lines.back().find(' '));
      const std::string status = record["status"];
      EXPECT_EQ(last, status == "succeeded"   ? "run.completed"
                      : status == "cancelled" ? "run.cancelled"
                                              : "run.failed")
          << run;
      if (info.cancel_acked) {
        EXPECT_EQ(status, "cancelled") << run;
      }
      // Event ids are 1..n (the stream's ids), and what subscribers saw is what is stored.
      std::uint64_t id = 0;
      for (const auto& [key, line] : scratch.events) {
        EXPECT_EQ(key.second, ++id) << "event ids of run " << run << " skip or repeat";
      }
      std::vector<std::int32_t> tokens = Tokens(lines);
      const auto& ref = reference[info.prompt];
      ASSERT_LE(tokens.size(), ref.size()) << "run " << run << " has extra tokens";
      EXPECT_TRUE(std::equal(tokens.begin(), tokens.end(), ref.begin())) << "run " << run << " diverged";
      if (status == "succeeded") {
        EXPECT_EQ(tokens, ref) << run;
      }
      // Every event a subscriber saw (the hub delivers only durable events) is stored unchanged.
      for (auto it = acked.events.lower_bound({run, 0}); it != acked.events.end() && it->first.first == run;
           ++it) {
        auto stored_event = scratch.events.find(it->first);
        ASSERT_TRUE(stored_event != scratch.events.end())
            << "acknowledged event " << it->first.second << " of run " << run << " lost";
        EXPECT_EQ(stored_event->second, it->second) << "an acknowledged event changed";
        ++events_checked;
      }
    }
    for (const auto& [key, line] : acked.events) {
      (void)line;
      EXPECT_TRUE(acked.runs.count(key.first));
    }
  };

  while (kills < max_kills && std::chrono::steady_clock::now() < deadline) {
    std::atomic<bool> stop{false};
    const std::uint16_t port = server.Port();
    std::vector<std::thread> clients;
    clients.emplace_back([&] {  // appender
      client::HttpClient c("127.0.0.1", port, std::chrono::seconds(10));
      while (!stop) {
        int n = note_counter++;
        int st = 0;
        Json out = Post(c, "/v1/sessions/" + notes + "/nodes",
                        {{"nodes", {{{"kind", "user"}, {"text", "note " + std::to_string(n)}}}}}, &st);
        if (st != 201 && st != 200) break;
        std::lock_guard<std::mutex> lock(acked.mu);
        acked.nodes[out["nodes"][0]["id"]] = out["nodes"][0]["seq"];
      }
    });
    for (int t = 0; t < 2; ++t) {
      clients.emplace_back([&] {  // runners: start, subscribe, sometimes cancel
        client::HttpClient c("127.0.0.1", port, std::chrono::seconds(10));
        while (!stop) {
          int n = run_counter++;
          int prompt = n % kPrompts;
          std::string run = StartPromptRun(c, prompt);
          if (run.empty()) break;
          {
            std::lock_guard<std::mutex> lock(acked.mu);
            acked.runs[run].prompt = prompt;
          }
          if (n % 3 == 0) {
            std::uint64_t after = Subscribe(port, run, 0, acked, 3);
            int st = 0;
            Json cancelled = Post(c, "/v1/runs/" + run + "/cancel", Json::object(), &st);
            if (st == 200 && cancelled.value("status", "") == "cancelled") {
              std::lock_guard<std::mutex> lock(acked.mu);
              acked.runs[run].cancel_acked = true;
            }
            Subscribe(port, run, after, acked);
          } else {
            Subscribe(port, run, 0, acked);
          }
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100 + rng() % 500));
    server.Kill(SIGKILL);
    ++kills;
    stop = true;
    for (std::thread& t : clients) t.join();
    if (redis == nullptr) {
      ASSERT_EQ(SqliteCheck(db, "PRAGMA integrity_check"), "ok") << "after kill " << kills;
    } else if (kills % 3 == 0) {
      redis->Kill();  // SIGKILL: only what the AOF holds comes back
      ASSERT_TRUE(redis->Start()) << "redis restart " << kills;
    }
    ASSERT_TRUE(server.Start()) << "restart " << kills;
    verify(false);
    if (::testing::Test::HasFatalFailure()) return;
  }
  verify(true);
  std::size_t events = events_checked;
  std::cout << "[CrashCampaign" << (redis != nullptr ? " on Redis" : "") << "] kills " << kills
            << ", acknowledged nodes " << acked.nodes.size() << ", runs " << acked.runs.size()
            << ", acknowledged events checked " << events
            << (::testing::Test::HasFailure() ? ", FAILURES (see above)"
                                              : ", lost 0, duplicated 0, runs without "
                                                "a terminal event 0")
            << "\n";
  EXPECT_GE(kills, sanitized ? 3 : 10) << "the time bound cut the campaign short";
  server.Kill(SIGTERM);
}

TEST(CrashCampaignTest, RandomKillsLoseNothingAndEveryRunEnds) { RunCampaign(nullptr); }

TEST(CrashCampaignTest, OnRedisRandomKillsOfLlmsyncAndRedisLoseNothing) {
  if (!HaveRedisServer()) GTEST_SKIP() << "redis-server not found at " << kRedisServerBinary;
  TestDir dir;
  std::filesystem::create_directories(dir.File("redis"));
  RedisServer redis(dir.File("redis"));
  ASSERT_TRUE(redis.Start());
  RunCampaign(&redis);
}

}  // namespace
}  // namespace llmsync::testing
