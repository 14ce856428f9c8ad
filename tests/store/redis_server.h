// A real redis-server for tests: started on a free loopback port with its own directory and the
// documented production durability (appendonly yes, appendfsync always, no RDB snapshots), and
// killed when the object dies. Kill() and Start() again restart it on the same directory and port,
// which is how the crash tests prove that acknowledged writes survive.
//
// Thread safety: one controlling thread.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "store/redis/redis_client.h"

namespace llmsync::testing {

inline constexpr const char* kRedisServerBinary = "/usr/bin/redis-server";

inline bool HaveRedisServer() { return ::access(kRedisServerBinary, X_OK) == 0; }

// A port that was free a moment ago on 127.0.0.1.
inline int FreeLoopbackPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

class RedisServer {
 public:
  // `dir` must exist and stay for the server's life.
  explicit RedisServer(std::string dir) : dir_(std::move(dir)), port_(FreeLoopbackPort()) {}
  ~RedisServer() { Kill(); }
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  // Starts the server and waits until it answers PING. False when it does not come up.
  bool Start() {
    std::string port = std::to_string(port_);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive a crashed test
      std::string log = dir_ + "/redis.log";
      FILE* f = std::freopen(log.c_str(), "a", stdout);
      (void)f;
      ::execl(kRedisServerBinary, kRedisServerBinary, "--port", port.c_str(), "--bind", "127.0.0.1", "--dir",
              dir_.c_str(), "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize",
              "no", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    store::redis::ClientOptions options;
    options.port = port_;
    options.reconnect_budget_ms = 0;
    store::redis::RedisClient client(options);
    for (int i = 0; i < 500; ++i) {
      if (client.Command({"PING"}, true).IsOk()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  // SIGKILL, no shutdown save: only what the AOF already holds survives.
  void Kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }
  int Port() const { return port_; }
  std::string Url() const { return "redis://127.0.0.1:" + std::to_string(port_); }
  // Deletes every key (between tests sharing one server).
  bool FlushAll() {
    store::redis::ClientOptions options;
    options.port = port_;
    store::redis::RedisClient client(options);
    return client.Command({"FLUSHALL"}, true).IsOk();
  }

 private:
  std::string dir_;
  int port_;
  pid_t pid_ = -1;
};

// One server for the whole test binary, started on first use; nullptr when redis-server is
// missing or does not start.
inline RedisServer* SharedRedisServer() {
  struct Holder {
    std::string dir;
    std::unique_ptr<RedisServer> server;
    ~Holder() {
      server.reset();
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  };
  static Holder* holder = [] {
    static Holder h;
    if (!HaveRedisServer()) return &h;
    std::string pattern = (std::filesystem::temp_directory_path() / "llmsync_redis_XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) return &h;
    h.dir = pattern;
    h.server = std::make_unique<RedisServer>(h.dir);
    if (!h.server->Start()) h.server.reset();
    return &h;
  }();
  return holder->server.get();
}

}  // namespace llmsync::testing
