// The session `llmsync demo` plays: a coding agent's working session, as a real agent client sends
// it. A long system prompt with the tool list as text, then turns that are mostly tool results fed
// back to the model. Long enough (20+ turns) that resending the history, as a stateless client
// does, costs far more than syncing what is new.
//
// Thread safety: constant data.
#pragma once

#include <string_view>
#include <vector>

namespace llmsync::cli {

struct DemoTurn {
  std::string_view label;  // the table's "what" column
  std::string_view text;   // the user message (a request or a tool result)
};

// The agent's system prompt, tools included.
std::string_view DemoSystemPrompt();
// The turns on the main branch, in order. The demo drops the connection on kDemoDroppedTurn and
// branches by editing kDemoBranchTurn; the branch continues with DemoBranchTurns().
const std::vector<DemoTurn>& DemoMainTurns();
const std::vector<DemoTurn>& DemoBranchTurns();
inline constexpr std::size_t kDemoDroppedTurn = 6;
inline constexpr std::size_t kDemoBranchTurn = 14;

}  // namespace llmsync::cli
