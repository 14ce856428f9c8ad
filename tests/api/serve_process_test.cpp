// `llmsync serve` as a real process: SIGKILL during a run and restart, SIGTERM shutdown.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <utility>  // before Boost 1.74 asio, whose awaitable.hpp uses std::exchange

#include <boost/asio.hpp>
#include <map>
#include <thread>

#include "../cli/run_cli.h"
#include "server_test_env.h"

namespace llmsync::testing {
namespace {

std::uint16_t FreePort() {
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor a(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();
}

class ServeProcess {
 public:
  ServeProcess(const std::string& model, const std::string& data_dir) : model_(model), data_dir_(data_dir) {}
  // The next Start sets LLMSYNC_CRASH_AT (crash_point.h) in the child; empty: unset.
  void CrashAt(std::string point) { crash_at_ = std::move(point); }
  ~ServeProcess() { Kill(SIGKILL); }

  void Start() {
    port_ = FreePort();
    std::string listen = "127.0.0.1:" + std::to_string(port_);
    std::string bin = LlmsyncBinary();
    pid_ = ::fork();
    if (pid_ == 0) {
      std::string log = data_dir_ + ".log";
      FILE* f = std::freopen(log.c_str(), "a", stderr);
      (void)f;
      if (crash_at_.empty()) {
        ::unsetenv("LLMSYNC_CRASH_AT");
      } else {
        ::setenv("LLMSYNC_CRASH_AT", crash_at_.c_str(), 1);
      }
      ::execl(bin.c_str(), bin.c_str(), "serve", "--listen", listen.c_str(), "--model", model_.c_str(),
              "--data-dir", data_dir_.c_str(), "--threads", "1", "--kv-ram-mb", "16",
              static_cast<char*>(nullptr));
      ::_exit(127);
    }
    client_ = std::make_unique<client::HttpClient>("127.0.0.1", port_, std::chrono::seconds(30));
    for (int i = 0; i < 500; ++i) {
      auto r = client_->Get("/healthz");
      if (r.IsOk() && r->status == 200) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    FAIL() << "llmsync serve did not come up";
  }
  // Sends a signal and waits for the process; returns its exit status.
  int Kill(int sig) {
    if (pid_ <= 0) return -1;
    ::kill(pid_, sig);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    client_.reset();
    return status;
  }
  // Waits up to `seconds` for the process to end by itself (a crash point); then kills it.
  // Returns its exit status.
  int WaitForExit(int seconds) {
    for (int i = 0; i < seconds * 50 && pid_ > 0; ++i) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        client_.reset();
        return status;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ADD_FAILURE() << "the server did not reach its crash point";
    return Kill(SIGKILL);
  }
  std::uint16_t Port() const { return port_; }
  client::HttpClient& Client() { return *client_; }

 private:
  std::string model_;
  std::string data_dir_;
  std::string crash_at_;
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
  std::unique_ptr<client::HttpClient> client_;
};

Json PostJson(client::HttpClient& c, const std::string& target, const Json& body) {
  auto r = c.PostJson(target, body.dump());
  EXPECT_TRUE(r.IsOk()) << r.GetStatus().ToString();
  return r.IsOk() ? Json::parse(r->body, nullptr, false) : Json();
}

struct Streamed {
  std::vector<std::string> payloads;  // raw event data, in order
  std::vector<std::int32_t> tokens;
  std::string last_type;
};

// Reads a run's events from the start; stops after `max_tokens` token events if given.
Streamed ReadRun(std::uint16_t port, const std::string& run, std::size_t max_tokens = SIZE_MAX) {
  client::HttpClient c("127.0.0.1", port, std::chrono::seconds(120));
  Streamed out;
  int status = 0;
  Status s = c.Stream(
      "/v1/runs/" + run + "/events", {},
      [&](const client::SseEvent& e) {
        out.payloads.push_back(e.event + " " + e.data);
        out.last_type = e.event;
        if (e.event == "token") out.tokens.push_back(Json::parse(e.data)["token_id"].get<std::int32_t>());
        return out.tokens.size() < max_tokens;
      },
      &status);
  EXPECT_EQ(status, 200);
  (void)s;  // the transport may break when the server is killed
  return out;
}

// Starts one session with one user message and a long seeded run; returns the run id.
std::string StartLongRun(client::HttpClient& c) {
  Json session = PostJson(c, "/v1/sessions", Json::object());
  std::string s = session["id"];
  PostJson(c, "/v1/sessions/" + s + "/nodes",
           {{"nodes", {{{"kind", "user"}, {"text", "Write a long story."}}}}});
  Json run = PostJson(c, "/v1/sessions/" + s + "/runs",
                      {{"max_tokens", 1500}, {"temperature", 0.9}, {"seed", 1234}});
  return run["id"];
}

TEST(ServeProcessTest, KilledRunResumesAndMatchesAnUninterruptedRun) {
  TestDir dir;
  std::string model = ServerTestEnv::TinyModel(dir);

  // Reference: the same run, uninterrupted.
  ServeProcess reference(model, dir.File("ref"));
  reference.Start();
  std::string ref_run = StartLongRun(reference.Client());
  Streamed expected = ReadRun(reference.Port(), ref_run);
  ASSERT_EQ(expected.last_type, "run.completed");
  ASSERT_EQ(expected.tokens.size(), 1500u);
  reference.Kill(SIGTERM);

  ServeProcess server(model, dir.File("data"));
  server.Start();
  std::string run = StartLongRun(server.Client());
  Streamed before = ReadRun(server.Port(), run, 25);
  ASSERT_EQ(before.tokens.size(), 25u);
  int status = server.Kill(SIGKILL);
  EXPECT_TRUE(WIFSIGNALED(status));

  server.Start();
  Streamed after = ReadRun(server.Port(), run);
  // The kill must have landed mid-run, or this test proves nothing: the restarted server says so.
  auto log = Env::Default()->ReadFile(dir.File("data") + ".log");
  ASSERT_TRUE(log.IsOk());
  EXPECT_NE(log->find("resuming run"), std::string::npos) << *log;
  EXPECT_EQ(after.last_type, "run.completed");
  ASSERT_GE(after.payloads.size(), before.payloads.size());
  for (std::size_t i = 0; i < before.payloads.size(); ++i) {
    EXPECT_EQ(after.payloads[i], before.payloads[i]) << "an event a subscriber already saw changed, at " << i;
  }
  EXPECT_EQ(after.tokens, expected.tokens)
      << "the resumed run must continue exactly as the uninterrupted one";
  server.Kill(SIGTERM);
}

// Waits until the run is finished; returns its record.
Json WaitFinished(client::HttpClient& c, const std::string& run) {
  for (int i = 0; i < 3000; ++i) {
    auto r = c.Get("/v1/runs/" + run);
    if (r.IsOk() && r->status == 200) {
      Json body = Json::parse(r->body, nullptr, false);
      if (body["status"] != "queued" && body["status"] != "running") return body;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ADD_FAILURE() << "run " << run << " did not finish";
  return Json();
}

// Checks the invariant of issue 17 for one finished run: its stream holds exactly one terminal
// event, it is the last, and it agrees with the run's status.
void ExpectOneTerminalEventLast(const Streamed& events, const std::string& status) {
  static const std::map<std::string, std::string> kTerminal = {
      {"succeeded", "run.completed"}, {"cancelled", "run.cancelled"}, {"failed", "run.failed"}};
  std::size_t terminal = 0;
  for (const std::string& p : events.payloads) {
    std::string type = p.substr(0, p.find(' '));
    for (const auto& [s, t] : kTerminal) terminal += type == t;
  }
  EXPECT_EQ(terminal, 1u);
  ASSERT_TRUE(kTerminal.count(status)) << status;
  EXPECT_EQ(events.last_type, kTerminal.at(status));
}

// Issue 17: the server is killed at every step of finishing and of cancelling a run (crash
// points, see crash_point.h). After a restart every run is finished, its stream ends with exactly
// one terminal event that matches its status, the session holds at most one result node, and a
// completed run's tokens equal an uninterrupted run's.
TEST(ServeProcessTest, KilledAtEveryStepOfFinishingEveryRunEndsWithOneTerminalEvent) {
  TestDir dir;
  std::string model = ServerTestEnv::TinyModel(dir);
  const Json run_params = {{"max_tokens", 40}, {"temperature", 0.9}, {"seed", 77}};
  auto start_run = [&](client::HttpClient& c, std::string* session, bool long_run = false) {
    *session = PostJson(c, "/v1/sessions", Json::object())["id"];
    PostJson(c, "/v1/sessions/" + *session + "/nodes",
             {{"nodes", {{{"kind", "user"}, {"text", "Once upon"}}}}});
    Json params = run_params;
    if (long_run) params["max_tokens"] = 1500;  // long enough to be cancelled mid-run
    return PostJson(c, "/v1/sessions/" + *session + "/runs", params)["id"].get<std::string>();
  };
  ServeProcess reference(model, dir.File("ref"));
  reference.Start();
  std::string ref_session;
  Streamed expected = ReadRun(reference.Port(), start_run(reference.Client(), &ref_session));
  ASSERT_EQ(expected.last_type, "run.completed");
  reference.Kill(SIGTERM);

  const std::vector<std::string> points = {"succeeded.before_result", "succeeded.before_commit",
                                           "succeeded.after_commit", "cancelled.before_commit",
                                           "cancelled.after_commit"};
  for (const std::string& point : points) {
    SCOPED_TRACE(point);
    std::string data = dir.File("data-" + point);
    ServeProcess server(model, data);
    server.CrashAt(point);
    server.Start();
    std::string session;
    bool cancelling = point.rfind("cancelled.", 0) == 0;
    std::string run = start_run(server.Client(), &session, cancelling);
    if (cancelling) {
      // Cancel once a few tokens are out: the cancel request never gets its answer.
      client::HttpClient c("127.0.0.1", server.Port(), std::chrono::seconds(30));
      ReadRun(server.Port(), run, 3);
      (void)c.PostJson("/v1/runs/" + run + "/cancel", "{}");
    }
    int status = server.WaitForExit(60);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "status " << status;

    server.CrashAt("");
    server.Start();
    Json record = WaitFinished(server.Client(), run);
    std::string final_status = record.value("status", "");
    Streamed after = ReadRun(server.Port(), run);
    ExpectOneTerminalEventLast(after, final_status);
    auto nodes = server.Client().Get("/v1/sessions/" + session);
    ASSERT_TRUE(nodes.IsOk());
    std::size_t node_count = Json::parse(nodes->body)["nodes"].size();
    if (final_status == "succeeded") {
      EXPECT_EQ(node_count, 2u) << "exactly one result node";
      if (!cancelling) {
        EXPECT_EQ(after.tokens, expected.tokens) << "the seeded run must produce the uninterrupted tokens";
      }
    } else {
      EXPECT_EQ(final_status, "cancelled");
      EXPECT_TRUE(cancelling);
      EXPECT_EQ(node_count, 1u);
    }
    // The step after the commit has both; the steps before it have neither (the run resumes).
    if (point == "cancelled.after_commit") {
      EXPECT_EQ(final_status, "cancelled");
    }
    if (point == "cancelled.before_commit") {
      EXPECT_EQ(final_status, "succeeded");
    }
    server.Kill(SIGTERM);
  }
}

TEST(ServeProcessTest, SigtermShutsDownCleanly) {
  TestDir dir;
  std::string model = ServerTestEnv::TinyModel(dir);
  ServeProcess server(model, dir.File("data"));
  server.Start();
  int status = server.Kill(SIGTERM);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(ServeProcessTest, BadFlagsFailWithAMessage) {
  auto r = RunLlmsync("serve --listen nonsense --data-dir /tmp/llmsync-unused");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("HOST:PORT"), std::string::npos) << r.out;
  auto missing = RunLlmsync(
      "serve --model /nonexistent/model.gguf --listen 127.0.0.1:0 --data-dir /tmp/llmsync-unused2");
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.out.find("/nonexistent/model.gguf"), std::string::npos) << missing.out;
  auto open = RunLlmsync("serve --listen 0.0.0.0:0 --data-dir /tmp/llmsync-unused3");
  EXPECT_NE(open.exit_code, 0);
  EXPECT_NE(open.out.find("without api_keys"), std::string::npos) << open.out;
}

}  // namespace
}  // namespace llmsync::testing
