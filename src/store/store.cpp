// The default implementations of the Store's scale-out calls, for a store one process owns.
#include <chrono>
#include <thread>

#include "store/store.h"

namespace llmsync::store {

Result<std::vector<RunEvent>> Store::WaitRunEvents(const std::vector<RunCursor>& cursors, int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    std::vector<RunEvent> out;
    for (const RunCursor& c : cursors) {
      Result<std::vector<RunEvent>> events = ReadRunEvents(c.tenant, c.run, c.after_event_id, 1000);
      if (!events.IsOk()) continue;  // deleted meanwhile: the follower finds out from the run
      out.insert(out.end(), events->begin(), events->end());
    }
    if (!out.empty() || std::chrono::steady_clock::now() >= deadline) return out;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

Result<std::uint64_t> Store::LeaseRun(const Id&, const std::string&, std::int64_t, std::uint64_t epoch) {
  return epoch == 0 ? std::uint64_t{1} : epoch;
}

Result<std::string> Store::RunWorker(const Id&) { return std::string(); }

Status Store::PublishEngine(const EngineBeat&) { return Status::Ok(); }

Status Store::RetireEngine(const std::string&) { return Status::Ok(); }

Result<RunPlacement> Store::DispatchRun(const DispatchRequest&) {
  return Status::Unimplemented("this store has one process: there is no engine to choose");
}

Status Store::WithdrawDispatch(const Id&) { return Status::Ok(); }

Result<RunPlacement> Store::GetRunPlacement(const Id& run) {
  RunPlacement placement;
  LLMSYNC_ASSIGN_OR_RETURN(placement.engine, RunWorker(run));
  return placement;
}

Status Store::PinSession(const Id&, const std::string&, std::int64_t) { return Status::Ok(); }

Status Store::UnpinSession(const Id&, const std::string&) { return Status::Ok(); }

Result<SessionFeedEvent> Store::PublishSessionEvent(const Id&, std::uint64_t, std::string_view,
                                                    std::string_view) {
  return Status::Unimplemented("this store does not share session events between processes");
}

Result<std::string> Store::SessionFeedEnd(const Id&) {
  return Status::Unimplemented("this store does not share session events between processes");
}

Result<std::vector<SessionFeedEvent>> Store::WaitSessionEvents(const std::vector<SessionFeedCursor>&, int) {
  return Status::Unimplemented("this store does not share session events between processes");
}

}  // namespace llmsync::store
