#include "store/records.h"

#include <array>

namespace llmsync::store {

namespace {

constexpr std::array<std::string_view, 5> kRunStatusNames = {"queued", "running", "succeeded", "failed",
                                                             "cancelled"};

}  // namespace

std::string_view RunStatusName(RunStatus status) {
  auto index = static_cast<std::size_t>(status);
  return index < kRunStatusNames.size() ? kRunStatusNames[index] : "unknown";
}

Result<RunStatus> ParseRunStatus(std::string_view name) {
  for (std::size_t i = 0; i < kRunStatusNames.size(); ++i) {
    if (kRunStatusNames[i] == name) return static_cast<RunStatus>(i);
  }
  return Status::InvalidArgument("unknown run status '" + std::string(name) + "'");
}

bool IsTerminal(RunStatus status) {
  return status == RunStatus::kSucceeded || status == RunStatus::kFailed || status == RunStatus::kCancelled;
}

}  // namespace llmsync::store
