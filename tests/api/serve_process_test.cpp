// `llmsync serve` as a real process: SIGKILL during a run and restart, SIGTERM shutdown.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "serve_process.h"

namespace llmsync::testing {
namespace {

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
  auto store = RunLlmsync("serve --store mongodb://x --listen 127.0.0.1:0 --data-dir /tmp/llmsync-unused4");
  EXPECT_NE(store.exit_code, 0);
  EXPECT_NE(store.out.find("sqlite:PATH or redis://"), std::string::npos) << store.out;
  auto port =
      RunLlmsync("serve --store redis://h:99999 --listen 127.0.0.1:0 --data-dir /tmp/llmsync-unused5");
  EXPECT_NE(port.exit_code, 0);
  EXPECT_NE(port.out.find("redis://HOST[:PORT][/DB]"), std::string::npos) << port.out;
  auto role = RunLlmsync("serve --role engine --listen 127.0.0.1:0 --data-dir /tmp/llmsync-unused6");
  EXPECT_NE(role.exit_code, 0);
  EXPECT_NE(role.out.find("needs a store shared by processes"), std::string::npos) << role.out;
  TestDir dir;  // opening the store comes after the model: give it one, and a scratch data dir
  auto down = RunLlmsync("serve --store redis://127.0.0.1:1 --listen 127.0.0.1:0 --model " +
                         ServerTestEnv::TinyModel(dir) + " --data-dir " + dir.File("data"));
  EXPECT_NE(down.exit_code, 0);
  EXPECT_NE(down.out.find("unavailable"), std::string::npos) << down.out;
}

}  // namespace
}  // namespace llmsync::testing
