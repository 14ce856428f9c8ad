// Locates ../shared (the team's fixtures: tokenizer vocabularies, chat templates). Tests that read
// it call SharedDirOrSkip() and skip with a message when it is absent, so a clone outside the team
// still passes.
//
// Thread safety: pure functions.
#pragma once

#include <filesystem>
#include <string>

namespace llmsync::testing {

inline std::string SharedDir() {
  if (const char* env = std::getenv("LLMSYNC_SHARED_DIR")) return env;
  return std::string(LLMSYNC_SOURCE_DIR) + "/../shared";
}

inline bool SharedPathExists(const std::string& relative) {
  return std::filesystem::exists(SharedDir() + "/" + relative);
}

}  // namespace llmsync::testing

// Skips the current test unless ../shared/<relative> exists.
#define LLMSYNC_REQUIRE_SHARED(relative)                                                     \
  if (!::llmsync::testing::SharedPathExists(relative)) {                                     \
    GTEST_SKIP() << "skipped: " << ::llmsync::testing::SharedDir() << "/" << (relative)      \
                 << " is absent (team fixtures; set LLMSYNC_SHARED_DIR to point elsewhere)"; \
  }
