#include "base/crash_point.h"

#include <signal.h>

#include <cstdlib>
#include <string>

namespace llmsync {

void CrashPoint(std::string_view name) {
  static const std::string kTarget = [] {
    const char* v = std::getenv("LLMSYNC_CRASH_AT");
    return std::string(v == nullptr ? "" : v);
  }();
  if (!kTarget.empty() && kTarget == name) ::raise(SIGKILL);
}

}  // namespace llmsync
