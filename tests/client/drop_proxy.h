// DropProxy: a loopback TCP proxy for tests that forwards connections to an upstream port and cuts
// each one (both directions, abruptly) after a random number of server-to-client bytes. The
// offsets come from a seeded generator, so a failing run can be replayed.
//
// Thread safety: construct and destroy on one thread; Port() and Cuts() from any thread. Runs an
// accept thread plus two threads per live connection; the destructor stops and joins them all.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <random>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

namespace llmsync::testing {

class DropProxy {
 public:
  DropProxy(std::uint16_t upstream_port, std::uint32_t seed, std::size_t min_bytes, std::size_t max_bytes)
      : upstream_port_(upstream_port), rng_(seed), budget_(min_bytes, max_bytes) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr = Loopback(0);
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listen_fd_, 64) != 0) {
      throw std::runtime_error("DropProxy: cannot listen");
    }
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    accept_thread_ = std::thread([this] { AcceptLoop(); });
  }

  ~DropProxy() {
    stopping_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    accept_thread_.join();
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (int fd : live_fds_) ::shutdown(fd, SHUT_RDWR);
    }
    for (std::thread& t : connection_threads_) t.join();
    ::close(listen_fd_);
  }

  DropProxy(const DropProxy&) = delete;
  DropProxy& operator=(const DropProxy&) = delete;

  std::uint16_t Port() const { return port_; }
  int Cuts() const { return cuts_.load(); }

 private:
  static sockaddr_in Loopback(std::uint16_t port) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return addr;
  }

  void AcceptLoop() {
    while (!stopping_) {
      int client = ::accept(listen_fd_, nullptr, nullptr);
      if (client < 0) return;  // shut down
      int upstream = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in addr = Loopback(upstream_port_);
      if (::connect(upstream, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(upstream);
        ::close(client);
        continue;
      }
      std::size_t budget = budget_(rng_);
      std::lock_guard<std::mutex> lock(mu_);
      live_fds_.insert(client);
      live_fds_.insert(upstream);
      connection_threads_.emplace_back([this, client, upstream, budget] { Serve(client, upstream, budget); });
    }
  }

  // Pumps both directions; cuts both sockets once `budget` bytes went from upstream to the client.
  void Serve(int client, int upstream, std::size_t budget) {
    std::thread up([client, upstream] {
      char buf[4096];
      ssize_t n = 0;
      while ((n = ::read(client, buf, sizeof buf)) > 0) {
        if (!WriteAll(upstream, buf, static_cast<std::size_t>(n))) break;
      }
      ::shutdown(upstream, SHUT_WR);
    });
    char buf[4096];
    std::size_t sent = 0;
    bool cut = false;
    while (true) {
      ssize_t n = ::read(upstream, buf, sizeof buf);
      if (n <= 0) break;
      std::size_t take = static_cast<std::size_t>(n);
      if (sent + take >= budget) {
        take = budget - sent;
        cut = true;
      }
      if (!WriteAll(client, buf, take)) break;
      sent += take;
      if (cut) break;
    }
    if (cut) ++cuts_;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ::shutdown(client, SHUT_RDWR);
      ::shutdown(upstream, SHUT_RDWR);
    }
    up.join();
    std::lock_guard<std::mutex> lock(mu_);
    live_fds_.erase(client);
    live_fds_.erase(upstream);
    ::close(client);
    ::close(upstream);
  }

  static bool WriteAll(int fd, const char* data, std::size_t size) {
    while (size > 0) {
      ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
      if (n <= 0) return false;
      data += n;
      size -= static_cast<std::size_t>(n);
    }
    return true;
  }

  std::uint16_t upstream_port_;
  std::uint16_t port_ = 0;
  int listen_fd_ = -1;
  std::mt19937 rng_;
  std::uniform_int_distribution<std::size_t> budget_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> cuts_{0};
  std::mutex mu_;
  std::set<int> live_fds_;
  std::thread accept_thread_;
  std::vector<std::thread> connection_threads_;
};

}  // namespace llmsync::testing
