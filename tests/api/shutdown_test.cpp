// Issue 17 item 8: ordered shutdown. SIGTERM (sent more than once) while runs generate and clients
// stream must end the process cleanly, every time: under the sanitizer build a use-after-free at
// teardown (EventHub::Publish from the store's writer thread) aborts the child, which fails here.
#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "serve_process.h"

namespace llmsync::testing {
namespace {

TEST(ShutdownTest, RepeatedSigtermDuringRunsExitsCleanly) {
  TestDir dir;
  std::string model = ServerTestEnv::TinyModel(dir);
  ServeProcess server(model, dir.File("data"));
  std::vector<std::string> runs;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  constexpr int kIterations = 4;
  for (int i = 0; i < kIterations && std::chrono::steady_clock::now() < deadline; ++i) {
    server.Start();
    for (int r = 0; r < 3; ++r) runs.push_back(StartLongRun(server.Client()));
    // Subscribers streaming while the server goes down.
    std::vector<std::thread> readers;
    for (int r = 0; r < 2; ++r) {
      const std::string run = runs[runs.size() - 1 - static_cast<std::size_t>(r)];
      readers.emplace_back([port = server.Port(), run] { ReadRun(port, run, 1u << 20); });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50 + 60 * i));
    const pid_t pid = server.Pid();
    ::kill(pid, SIGTERM);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    ::kill(pid, SIGTERM);  // a second (impatient) SIGTERM during the shutdown
    int status = server.Kill(SIGTERM);
    for (std::thread& t : readers) t.join();
    ASSERT_TRUE(WIFEXITED(status)) << "iteration " << i << ": the server died of signal "
                                   << (WIFSIGNALED(status) ? WTERMSIG(status) : 0) << "; see "
                                   << server.LogPath();
    ASSERT_EQ(WEXITSTATUS(status), 0) << "iteration " << i << "; see " << server.LogPath();
  }
  // The interrupted runs were checkpointed, not lost: the next start resumes them to their end.
  server.Start();
  auto r = server.Client().Get("/v1/runs/" + runs.front());
  ASSERT_TRUE(r.IsOk());
  EXPECT_EQ(r->status, 200) << r->body;
  server.Kill(SIGTERM);
}

}  // namespace
}  // namespace llmsync::testing
