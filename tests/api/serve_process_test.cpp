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
