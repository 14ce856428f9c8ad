// The client-side commands through the real binary: `chat` driven by piped stdin, `demo`, and
// `bench trace` on a tiny model, whose JSON must add up.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "../api/server_test_env.h"
#include "run_cli.h"

namespace llmsync::testing {
namespace {

int Count(const std::string& haystack, const std::string& needle) {
  int n = 0;
  for (std::size_t p = haystack.find(needle); p != std::string::npos; p = haystack.find(needle, p + 1)) ++n;
  return n;
}

class ClientCliTest : public ::testing::Test {
 protected:
  void SetUp() override { model_ = ServerTestEnv::TinyModel(dir_); }
  std::string Common() const { return "--model " + model_ + " --data-dir " + dir_.File("data"); }
  TestDir dir_;
  std::string model_;
};

TEST_F(ClientCliTest, ChatFromPipedStdinRunsCommandsAndPrintsCosts) {
  std::string script = dir_.File("script.txt");
  std::string bundle = dir_.File("session.ndjson");
  std::ofstream(script) << "Hello there\n"
                           "/usage\n"
                           "Second message\n"
                           "/regen\n"
                           "/branch\n"
                           "/rewind 2\n"
                           "/edit An edited first message\n"
                           "/branch\n"
                           "/switch nosuchnode\n"
                           "/export "
                        << bundle
                        << "\n"
                           "/help\n"
                           "/quit\n"
                           "never sent\n";
  CliOutput r = RunLlmsync("chat " + Common() + " --max-tokens 5 --seed 3 < " + script);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out.find("llmsync chat —"), std::string::npos) << "no banner when stdin is not a TTY";
  EXPECT_EQ(r.out.rfind("> ", 0), std::string::npos) << "no prompt when stdin is not a TTY";
  EXPECT_EQ(Count(r.out, "[cost] prompt"), 4) << "one cost line per turn (2 turns, regen, edit)\n" << r.out;
  EXPECT_NE(r.out.find("turns 1 | prompt"), std::string::npos) << "/usage after one turn\n" << r.out;
  EXPECT_NE(r.out.find("cached"), std::string::npos);
  EXPECT_NE(r.out.find("stateless"), std::string::npos);
  EXPECT_NE(r.out.find("no node nosuchnode"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("/rewind N"), std::string::npos) << "/help lists the commands";
  // After /regen there are two assistant tips; after /edit a third branch from the top.
  EXPECT_GE(Count(r.out, "depth "), 2 + 3) << r.out;
  std::ifstream in(bundle);
  std::stringstream exported;
  exported << in.rdbuf();
  EXPECT_NE(exported.str().find("An edited first message"), std::string::npos) << "the export has the edit";
  EXPECT_NE(exported.str().find("Second message"), std::string::npos) << "and the old branch";
  EXPECT_EQ(exported.str().find("never sent"), std::string::npos) << "/quit stops reading";
}

// Only printable ASCII, newlines and well-formed UTF-8 punctuation of our own: no U+FFFD, NUL or
// other control bytes from the model.
void ExpectCleanText(const std::string& out) {
  EXPECT_EQ(out.find("\xEF\xBF\xBD"), std::string::npos) << "U+FFFD in the output";
  for (char c : out) {
    auto b = static_cast<unsigned char>(c);
    ASSERT_TRUE(b == '\n' || b >= 0x20) << "control byte " << int{b} << " in the output";
  }
}

TEST_F(ClientCliTest, DemoPlaysAnAgentSessionWhereSyncWins) {
  // No --model: the demo model, made under $HOME/.llmsync as a newcomer's first run makes it.
  CliOutput r = RunLlmsync("demo --max-tokens 8", "HOME=" + dir_.Path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("weights are random"), std::string::npos) << "the demo model notice";
  EXPECT_NE(r.out.find("connection dropped after event"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("matches them exactly"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("branch: edited question"), std::string::npos);
  EXPECT_NE(r.out.find("on 2 branches"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\n23 turns."), std::string::npos) << r.out;
  // The point of the demo: sync sends less and computes less than a stateless client.
  std::size_t at = r.out.find("a stateless client would have sent ");
  ASSERT_NE(at, std::string::npos) << r.out;
  std::size_t colon = r.out.find(": ", at);
  ASSERT_NE(colon, std::string::npos);
  EXPECT_GT(std::stod(r.out.substr(colon + 2)), 3.0) << r.out.substr(at - 40, 160);
  std::size_t work = r.out.find("A stateless server computes all ");
  ASSERT_NE(work, std::string::npos);
  std::size_t work_colon = r.out.find(": ", work);
  EXPECT_GT(std::stod(r.out.substr(work_colon + 2)), 3.0) << r.out.substr(work, 80);
  ExpectCleanText(r.out);
  // The temporary data directory is gone.
  std::size_t data = r.out.find(", data in ");
  ASSERT_NE(data, std::string::npos);
  std::string path = r.out.substr(data + 10, r.out.find(' ', data + 10) - data - 10);
  EXPECT_NE(path.find("llmsync-demo-"), std::string::npos) << path;
  EXPECT_FALSE(Env::Default()->FileExists(path)) << path << " was left behind";
}

TEST_F(ClientCliTest, ChatResumePrintsHistoryEofExitsZeroRewindPastTopIsAnError) {
  std::string first = dir_.File("first.txt");
  std::ofstream(first) << "Hello there\n/session\n";  // no /quit: end of input exits
  CliOutput r = RunLlmsync("chat " + Common() + " --max-tokens 4 < " + first);
  ASSERT_EQ(r.exit_code, 0) << "end of input (Ctrl-D) is a normal exit\n" << r.out;
  std::string session;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    if (line.size() == 64 && line.find_first_not_of("0123456789abcdef") == std::string::npos) session = line;
  }
  ASSERT_FALSE(session.empty()) << r.out;

  std::string second = dir_.File("second.txt");
  std::ofstream(second) << "/rewind 99\n/branch\n/quit\n";
  r = RunLlmsync("chat " + Common() + " --session " + session + " < " + second);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("user: Hello there\n"), std::string::npos) << "the history is shown\n" << r.out;
  EXPECT_NE(r.out.find("assistant: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("error: cannot rewind 99"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("head -> (top)"), std::string::npos) << "no silent jump to the top\n" << r.out;
}

// Every client-side TTFT spans the server's own (the client starts first and hears last), so the
// medians are ordered too. A client clock stopped by the role chunk would break this.
void ExpectClientTtftCoversServer(const nlohmann::json& turn) {
  ASSERT_TRUE(turn.contains("server_ttft_ms_p50")) << turn;
  EXPECT_GT(turn["server_ttft_ms_p50"].get<double>(), 0) << turn;
  EXPECT_GE(turn["ttft_ms_p50"].get<double>() + 0.01, turn["server_ttft_ms_p50"].get<double>()) << turn;
}

TEST_F(ClientCliTest, BenchTraceJsonIsConsistent) {
  std::string out = dir_.File("trace.json");
  CliOutput r =
      RunLlmsync("bench trace --model " + model_ +
                 " --sessions 3 --turns 3 --message-tokens 24 --generate 3 --kv-ram-mb 1 --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  std::ifstream in(out);
  nlohmann::json report = nlohmann::json::parse(in, nullptr, false);
  ASSERT_TRUE(report.is_object()) << r.out;
  const nlohmann::json& native = report["targets"]["native"];
  ASSERT_TRUE(native["available"].get<bool>()) << native;
  ASSERT_EQ(native["per_turn"].size(), 3u);
  std::uint64_t cumulative = 0;
  for (const nlohmann::json& t : native["per_turn"]) {
    EXPECT_EQ(t["computed_tokens"].get<int>() + t["cached_tokens"].get<int>(), t["prompt_tokens"].get<int>())
        << t;
    EXPECT_EQ(t["generated_tokens"].get<int>(), 3 * 3) << t;
    EXPECT_GT(t["bytes_sent"].get<int>(), 0);
    cumulative += t["bytes_sent"].get<std::uint64_t>();
    EXPECT_EQ(t["bytes_sent_cumulative"].get<std::uint64_t>(), cumulative);
    EXPECT_LE(t["ttft_ms_p50"].get<double>(), t["ttft_ms_p99"].get<double>());
    ExpectClientTtftCoversServer(t);
  }
  EXPECT_EQ(native["totals"]["computed_tokens"].get<int>() + native["totals"]["cached_tokens"].get<int>(),
            native["totals"]["prompt_tokens"].get<int>());
  // Later turns reuse the session's state: more cached than computed.
  const nlohmann::json& last = native["per_turn"][2];
  EXPECT_GT(last["cached_tokens"].get<int>(), last["computed_tokens"].get<int>()) << last;
  const nlohmann::json& stateless = report["targets"]["llmsync_chat_completions_stateless"];
  ASSERT_TRUE(stateless.is_object());
  if (stateless["available"].get<bool>()) {
    for (const nlohmann::json& t : stateless["per_turn"]) {
      EXPECT_EQ(t["computed_tokens"].get<int>() + t["cached_tokens"].get<int>(),
                t["prompt_tokens"].get<int>());
      ExpectClientTtftCoversServer(t);
    }
    EXPECT_GT(stateless["per_turn"][2]["bytes_sent"].get<int>(),
              native["per_turn"][2]["bytes_sent"].get<int>())
        << "a stateless client resends the history";
  } else {
    EXPECT_NE(stateless["reason"].get<std::string>().find("not available"), std::string::npos);
  }
}

}  // namespace
}  // namespace llmsync::testing
