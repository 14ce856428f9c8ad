#include <gtest/gtest.h>

#include "llmsync/version.h"
#include "run_cli.h"

namespace llmsync {
namespace {

using testing::RunLlmsync;

TEST(CliTest, VersionPrintsVersion) {
  auto r = RunLlmsync("version");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "llmsync " + std::string(kVersion) + "\n");
}

TEST(CliTest, HelpListsCommands) {
  auto r = RunLlmsync("help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("version"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("help"), std::string::npos) << r.out;
}

TEST(CliTest, HelpForOneCommand) {
  auto r = RunLlmsync("help version");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("Print the llmsync version"), std::string::npos) << r.out;
  auto bad = RunLlmsync("help frobnicate");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.out.find("unknown command 'frobnicate'"), std::string::npos) << bad.out;
}

// Every flag of `serve` says its default, in `help serve` and in `serve --help` alike.
TEST(CliTest, HelpServeShowsEveryDefault) {
  for (const char* args : {"help serve", "serve --help"}) {
    auto r = RunLlmsync(args);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    // One entry per option: from a line starting with "  --" up to the next.
    std::vector<std::string> entries;
    std::size_t at = r.out.find("\n  --");
    while (at != std::string::npos) {
      std::size_t next = r.out.find("\n  -", at + 1);
      entries.push_back(r.out.substr(at + 1, next == std::string::npos ? std::string::npos : next - at - 1));
      at = r.out.find("\n  --", at + 1);
    }
    EXPECT_GE(entries.size(), 11u) << r.out;
    for (const std::string& e : entries) {
      if (e.rfind("  --help", 0) == 0) continue;
      EXPECT_NE(e.find("default"), std::string::npos) << args << ": no default in\n" << e;
    }
    EXPECT_NE(r.out.find("127.0.0.1:8420"), std::string::npos);
  }
}

// The printed example is a valid config file that `config check` accepts.
TEST(CliTest, ConfigExampleIsAValidConfigFile) {
  auto r = RunLlmsync("config example");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("\"api_keys\": {}"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("// "), std::string::npos) << "commented";
  std::string path = ::testing::TempDir() + "/llmsync-example.json";
  auto written = RunLlmsync("config example > " + path);
  ASSERT_EQ(written.exit_code, 0);
  auto check = RunLlmsync("config check " + path);
  EXPECT_EQ(check.exit_code, 0) << check.out;
  EXPECT_NE(check.out.find(": ok"), std::string::npos) << check.out;
  auto bad = RunLlmsync("config check /nonexistent/llmsync.json");
  EXPECT_NE(bad.exit_code, 0);
}

TEST(CliTest, UnknownSubcommandFails) {
  auto r = RunLlmsync("frobnicate");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("frobnicate"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("llmsync help"), std::string::npos) << r.out;
}

TEST(CliTest, BadFlagFails) {
  auto r = RunLlmsync("version --no-such-flag");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("--no-such-flag"), std::string::npos) << r.out;
}

TEST(CliTest, NoSubcommandFails) {
  auto r = RunLlmsync("");
  EXPECT_NE(r.exit_code, 0);
}

}  // namespace
}  // namespace llmsync
