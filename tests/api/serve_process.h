// `llmsync serve` as a child process for tests: start on a free port with extra flags, wait for
// /healthz, signal it; and the helpers that start a long seeded run and read its events.
//
// Thread safety: one ServeProcess per controlling thread; ReadRun opens its own client.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <utility>  // before Boost 1.74 asio, whose awaitable.hpp uses std::exchange

#include <boost/asio.hpp>
#include <string>
#include <thread>
#include <vector>

#include "../cli/run_cli.h"
#include "server_test_env.h"

namespace llmsync::testing {

inline std::uint16_t FreePort() {
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor a(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();
}

class ServeProcess {
 public:
  // `extra` flags follow the usual ones (a store, a role, ...).
  ServeProcess(const std::string& model, const std::string& data_dir, std::vector<std::string> extra = {})
      : model_(model), data_dir_(data_dir), extra_(std::move(extra)) {}
  ~ServeProcess() { Kill(SIGKILL); }
  // The next Start sets LLMSYNC_CRASH_AT (base/crash_point.h) in the child; empty: unset.
  void CrashAt(std::string point) { crash_at_ = std::move(point); }

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
      std::vector<std::string> args = {bin,          "serve",   "--listen",  listen, "--model",     model_,
                                       "--data-dir", data_dir_, "--threads", "1",    "--kv-ram-mb", "16"};
      args.insert(args.end(), extra_.begin(), extra_.end());
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(bin.c_str(), argv.data());
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
  pid_t Pid() const { return pid_; }
  std::string LogPath() const { return data_dir_ + ".log"; }
  client::HttpClient& Client() { return *client_; }

 private:
  std::string model_;
  std::string data_dir_;
  std::vector<std::string> extra_;
  std::string crash_at_;
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
  std::unique_ptr<client::HttpClient> client_;
};

inline Json PostJson(client::HttpClient& c, const std::string& target, const Json& body) {
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
inline Streamed ReadRun(std::uint16_t port, const std::string& run, std::size_t max_tokens = SIZE_MAX) {
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
inline std::string StartLongRun(client::HttpClient& c) {
  Json session = PostJson(c, "/v1/sessions", Json::object());
  std::string s = session["id"];
  PostJson(c, "/v1/sessions/" + s + "/nodes",
           {{"nodes", {{{"kind", "user"}, {"text", "Write a long story."}}}}});
  Json run = PostJson(c, "/v1/sessions/" + s + "/runs",
                      {{"max_tokens", 1500}, {"temperature", 0.9}, {"seed", 1234}});
  return run["id"];
}

// The seeded long run (StartLongRun) played uninterrupted in one process on SQLite: what a run
// that was killed, taken over or fenced must still produce.
inline Streamed UninterruptedLongRun(const std::string& model, const std::string& data_dir) {
  ServeProcess reference(model, data_dir);
  reference.Start();
  Streamed expected = ReadRun(reference.Port(), StartLongRun(reference.Client()));
  reference.Kill(SIGTERM);
  return expected;
}

}  // namespace llmsync::testing
