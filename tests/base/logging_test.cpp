#include "base/logging.h"

#include <gtest/gtest.h>

#include <vector>

namespace llmsync {
namespace {

class LoggingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    saved_ = GetLogLevel();
    SetLogSink(
        [this](LogLevel level, std::string_view line) { lines_.emplace_back(level, std::string(line)); });
  }
  void TearDown() override {
    SetLogSink(nullptr);
    SetLogLevel(saved_);
  }
  std::vector<std::pair<LogLevel, std::string>> lines_;
  LogLevel saved_ = LogLevel::kInfo;
};

TEST_F(LoggingTest, FiltersBelowLevelAndFormatsLine) {
  SetLogLevel(LogLevel::kWarning);
  int evaluated = 0;
  LLMSYNC_LOG(kInfo) << "hidden " << ++evaluated;
  LLMSYNC_LOG(kWarning) << "disk at " << 93 << "%";
  EXPECT_EQ(evaluated, 0) << "arguments of disabled log lines must not be evaluated";
  ASSERT_EQ(lines_.size(), 1u);
  EXPECT_EQ(lines_[0].first, LogLevel::kWarning);
  const std::string& line = lines_[0].second;
  EXPECT_NE(line.find(" WARN disk at 93%"), std::string::npos) << line;
  EXPECT_EQ(line[4], '-');   // 2026-...
  EXPECT_EQ(line[10], 'T');  // ISO-8601
}

TEST_F(LoggingTest, ParseLogLevel) {
  EXPECT_EQ(*ParseLogLevel("debug"), LogLevel::kDebug);
  EXPECT_EQ(*ParseLogLevel("warn"), LogLevel::kWarning);
  EXPECT_EQ(*ParseLogLevel("off"), LogLevel::kOff);
  auto bad = ParseLogLevel("loud");
  ASSERT_FALSE(bad.IsOk());
  EXPECT_NE(bad.GetStatus().Message().find("loud"), std::string::npos);
}

}  // namespace
}  // namespace llmsync
