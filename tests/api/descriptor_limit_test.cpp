// Issue 17 item 7: at the descriptor limit the accept loop once logged 715,617 lines in 11 s and
// /healthz timed out. A real `llmsync serve` has its RLIMIT_NOFILE lowered from outside (prlimit)
// to a few descriptors above what it holds, is flooded with idle connections, and must log one
// line per 5 s instead of spinning, then serve again once the clients go away, with the low limit
// still in force. The test process keeps its own limit, so its output is never at risk.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>
#include <vector>

#include "serve_process.h"

namespace llmsync::testing {
namespace {

int ConnectIdle(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

std::size_t OpenDescriptors(pid_t pid) {
  std::size_t n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    ++n;
  return n;
}

std::size_t Count(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

TEST(DescriptorLimitTest, ExhaustionBacksOffLogsOnceAndRecovers) {
  TestDir dir;
  std::string model = ServerTestEnv::TinyModel(dir);
  ServeProcess server(model, dir.File("data"));
  server.Start();
  const pid_t pid = server.Pid();
  const std::size_t held = OpenDescriptors(pid);
  ASSERT_GT(held, 3u) << "cannot read /proc/" << pid << "/fd";
  rlimit low{};
  ASSERT_EQ(::prlimit(pid, RLIMIT_NOFILE, nullptr, &low), 0) << std::strerror(errno);
  low.rlim_cur = held + 6;
  ASSERT_EQ(::prlimit(pid, RLIMIT_NOFILE, &low, nullptr), 0) << std::strerror(errno);

  std::vector<int> clients;
  for (int i = 0; i < 40; ++i) {
    int fd = ConnectIdle(server.Port());
    if (fd >= 0) clients.push_back(fd);
  }
  ASSERT_GE(clients.size(), 20u) << "the listen backlog took fewer connections than expected";
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // at the limit, accepting
  ASSERT_EQ(::kill(pid, 0), 0) << "the server died at the descriptor limit; see " << server.LogPath();
  for (int fd : clients) ::close(fd);

  // Recovery with the low limit still in force: the closed connections give their descriptors back.
  client::HttpClient probe("127.0.0.1", server.Port(), std::chrono::seconds(10));
  int status = 0;
  for (int attempt = 0; attempt < 50 && status != 200; ++attempt) {
    auto r = probe.Get("/healthz");
    if (r.IsOk()) status = r->status;
    if (status != 200) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(status, 200) << "no /healthz after the clients left; see " << server.LogPath();
  auto read = Env::Default()->ReadFile(server.LogPath());
  ASSERT_TRUE(read.IsOk()) << read.GetStatus().ToString();
  const std::string& log = *read;
  const std::size_t lines = Count(log, "accept failed");
  EXPECT_GE(lines, 1u) << "the server never reached the descriptor limit:\n" << log;
  EXPECT_LE(lines, 2u) << "one line per 5 s at most:\n" << log;
  EXPECT_EQ(server.Kill(SIGTERM), 0) << "a dirty exit after the shortage; see " << server.LogPath();
}

}  // namespace
}  // namespace llmsync::testing
