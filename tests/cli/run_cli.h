// Runs the built `llmsync` binary as a child process and captures its exit code and output, so
// CLI tests exercise the real executable.
//
// Thread safety: each call is independent.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <stdexcept>
#include <string>

namespace llmsync::testing {

struct CliOutput {
  int exit_code = -1;
  std::string out;  // stdout and stderr, interleaved
};

inline std::string LlmsyncBinary() { return std::string(LLMSYNC_BINARY_DIR) + "/bin/llmsync"; }

// `args` is appended to the binary path as-is (callers quote what needs quoting); `env` (shell
// assignments such as "HOME=/tmp/x") goes before it.
inline CliOutput RunLlmsync(const std::string& args, const std::string& env = "") {
  std::string cmd = env + (env.empty() ? "" : " ") + LlmsyncBinary() + " " + args + " 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("popen failed: " + cmd);
  CliOutput result;
  std::array<char, 4096> buf{};
  std::size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) result.out.append(buf.data(), n);
  int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

}  // namespace llmsync::testing
