// The JSON nesting limit, checked on raw text before any parser sees it.
//
// nlohmann::json parses, copies, dumps and destroys values recursively, so a value nested 100,000
// levels deep overflows the stack of whichever of those touches it first. Every place JSON enters
// the process (request bodies, the config file, bundle lines, schemas and tool arguments) runs
// CheckJsonDepth first; values that pass are then at most kMaxJsonDepth deep everywhere
// downstream. The scan is iterative and linear: it tracks strings and escapes, counts brackets,
// and does not validate anything else (the parser that follows does).
//
// Thread safety: pure functions.
#pragma once

#include <cstddef>
#include <string_view>

#include "llmsync/status.h"

namespace llmsync {

// Deepest nesting of arrays and objects accepted anywhere JSON enters (docs/PROTOCOL.md).
inline constexpr int kMaxJsonDepth = 64;

// The deepest nesting of [ and { outside strings in `text` (0 for a scalar). Stops counting at
// `stop_at` + 1, so the scan ends early on hostile input.
int JsonNestingDepth(std::string_view text, int stop_at);

// kInvalidArgument naming the limit and the byte offset when `text` nests deeper than max_depth.
// `what` names the input in the message ("request body", "config file").
Status CheckJsonDepth(std::string_view text, std::string_view what, int max_depth = kMaxJsonDepth);

}  // namespace llmsync
