// `llmsync serve` as a real process: SIGKILL during a run and restart, SIGTERM shutdown.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <utility>  // before Boost 1.74 asio, whose awaitable.hpp uses std::exchange

#include <boost/asio.hpp>
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
  std::uint16_t Port() const { return port_; }
  pid_t Pid() const { return pid_; }
  client::HttpClient& Client() { return *client_; }

 private:
  std::string model_;
  std::string data_dir_;
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

TEST(ServeProcessTest, SigtermShutsDownCleanly) {
  TestDir dir;
  std::string model = ServerTestEnv::TinyModel(dir);
  ServeProcess server(model, dir.File("data"));
  server.Start();
  int status = server.Kill(SIGTERM);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(ServeProcessTest, SecondServerOnTheSameDataDirExitsNamingTheHolder) {
  TestDir dir;
  std::string model = ServerTestEnv::TinyModel(dir);
  ServeProcess first(model, dir.File("data"));
  first.Start();
  auto second = RunLlmsync("serve --listen 127.0.0.1:0 --model " + model + " --data-dir " + dir.File("data"));
  EXPECT_NE(second.exit_code, 0) << second.out;
  EXPECT_NE(second.out.find("in use by another llmsync process (pid " + std::to_string(first.Pid()) + ")"),
            std::string::npos)
      << second.out;
  auto health = first.Client().Get("/healthz");
  ASSERT_TRUE(health.IsOk());
  EXPECT_EQ(health->status, 200) << "the first server is unharmed";
  // The lock goes with its process: after the first one exits, a new server starts on the dir.
  first.Kill(SIGKILL);
  ServeProcess third(model, dir.File("data"));
  third.Start();
  EXPECT_EQ(third.Client().Get("/healthz")->status, 200);
  third.Kill(SIGTERM);
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
