#include "runs/run_events.h"

namespace llmsync::runs {

std::string_view EventType(const EventBody& body) {
  struct Visitor {
    std::string_view operator()(const StartedEvent&) const { return kEventStarted; }
    std::string_view operator()(const TokenEvent&) const { return kEventToken; }
    std::string_view operator()(const UsageEvent&) const { return kEventUsage; }
    std::string_view operator()(const CompletedEvent&) const { return kEventCompleted; }
    std::string_view operator()(const FailedEvent&) const { return kEventFailed; }
    std::string_view operator()(const CancelledEvent&) const { return kEventCancelled; }
    std::string_view operator()(const UpstreamEvent&) const { return kEventUpstream; }
  };
  return std::visit(Visitor{}, body);
}

std::optional<store::RunStatus> TerminalStatusOf(std::string_view type) {
  if (type == kEventCompleted) return store::RunStatus::kSucceeded;
  if (type == kEventFailed) return store::RunStatus::kFailed;
  if (type == kEventCancelled) return store::RunStatus::kCancelled;
  return std::nullopt;
}

}  // namespace llmsync::runs
