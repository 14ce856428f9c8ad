// Helpers for the chat-template tests: locating the shared vectors, running the python3-jinja2
// oracle (tests/text/render_chat_templates.py) and reading its JSON.
//
// Thread safety: functions are independent; each test uses its own.
#pragma once

#include <cstdlib>

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

namespace llmsync::testing {

inline std::string TextTestsDir() { return LLMSYNC_TEXT_TESTS_DIR; }
// ../shared next to the checkout, or LLMSYNC_SHARED_DIR (a worktree that lives elsewhere).
inline std::string ChatTemplatesDir() {
  const char* shared = std::getenv("LLMSYNC_SHARED_DIR");
  if (shared != nullptr && *shared != '\0') return std::string(shared) + "/vectors/chat-templates";
  return std::string(LLMSYNC_SOURCE_DIR) + "/../shared/vectors/chat-templates";
}
inline constexpr const char* kSystemPython = "/usr/bin/python3";

inline std::string ReadTextFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct OracleRun {
  int exit_code = -1;
  std::string out;
};

// Runs the oracle with `args`; stderr is discarded. Exit code 3: jinja2 is not importable.
inline OracleRun RunOracle(const std::string& args) {
  OracleRun run;
  if (!std::filesystem::exists(kSystemPython)) return run;
  std::string cmd = std::string(kSystemPython) + " " + TextTestsDir() + "/render_chat_templates.py " + args +
                    " 2>/dev/null";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (pipe == nullptr) return run;
  std::array<char, 65536> buf{};
  std::size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) run.out.append(buf.data(), n);
  int status = ::pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

// Where two strings first differ, with some context, for failure messages.
inline std::string DescribeDifference(const std::string& expected, const std::string& actual) {
  std::size_t i = 0;
  while (i < expected.size() && i < actual.size() && expected[i] == actual[i]) ++i;
  std::size_t from = i > 40 ? i - 40 : 0;
  nlohmann::json e = expected.substr(from, 100);
  nlohmann::json a = actual.substr(from, 100);
  return "first difference at byte " + std::to_string(i) +
         "\n  expected: " + e.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) +
         "\n  actual:   " + a.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace llmsync::testing
