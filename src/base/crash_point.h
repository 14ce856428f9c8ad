// Crash points: named places where a crash test may kill the process on purpose.
//
// A crash test needs the process to die at an exact step (after the result node is appended but
// before the run is marked finished, say), which a random SIGKILL from outside reaches only by
// luck. `CrashPoint("name")` raises SIGKILL when the environment variable LLMSYNC_CRASH_AT equals
// "name"; otherwise it does nothing (one string comparison against a value read once). Production
// never sets the variable. Names are "<what>.<step>", listed where they are placed.
//
// Thread safety: callable from any thread.
#pragma once

#include <string_view>

namespace llmsync {

void CrashPoint(std::string_view name);

}  // namespace llmsync
