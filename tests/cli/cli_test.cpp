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
