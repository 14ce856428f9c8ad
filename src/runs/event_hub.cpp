#include "runs/event_hub.h"

namespace llmsync::runs {

void EventHub::Open(const Id& run, const std::string& tenant, std::vector<store::RunEvent> existing) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& entry = runs_[run];
  if (!entry) entry = std::make_unique<Entry>();
  entry->tenant = tenant;
  entry->events = std::move(existing);
}

void EventHub::Publish(const Id& run, const std::vector<store::RunEvent>& events) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = runs_.find(run);
  if (it == runs_.end()) return;
  Entry& entry = *it->second;
  for (const store::RunEvent& e : events) {
    if (!entry.events.empty() && e.event_id <= entry.events.back().event_id) continue;  // already known
    entry.events.push_back(e);
    for (auto sub = entry.subscribers.begin(); sub != entry.subscribers.end();) {
      if (sub->second.on_event(e)) {
        ++sub;
      } else {
        sub = entry.subscribers.erase(sub);
      }
    }
  }
}

void EventHub::Close(const Id& run) {
  std::unique_ptr<Entry> entry;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = runs_.find(run);
    if (it == runs_.end()) return;
    entry = std::move(it->second);
    runs_.erase(it);
  }
  for (auto& [id, sub] : entry->subscribers) {
    if (sub.on_end) sub.on_end();
  }
}

bool EventHub::IsOpen(const Id& run) const {
  std::lock_guard<std::mutex> lock(mu_);
  return runs_.count(run) != 0;
}

Result<std::uint64_t> EventHub::Subscribe(const std::string& tenant, const Id& run,
                                          std::uint64_t after_event_id, OnEvent on_event, OnEnd on_end) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = runs_.find(run);
    if (it != runs_.end()) {
      Entry& entry = *it->second;
      if (entry.tenant != tenant) return Status::NotFound("run " + run.ToHex() + " not found");
      for (const store::RunEvent& e : entry.events) {
        if (e.event_id > after_event_id && !on_event(e)) return std::uint64_t{0};
      }
      std::uint64_t id = next_subscription_++;
      entry.subscribers.emplace(id, Subscriber{std::move(on_event), std::move(on_end)});
      return id;
    }
  }
  // Not open: the run is terminal (or unknown), so its durable events are all there is.
  LLMSYNC_ASSIGN_OR_RETURN(store::RunRecord record, store_->GetRun(tenant, run));
  std::uint64_t cursor = after_event_id;
  while (true) {
    LLMSYNC_ASSIGN_OR_RETURN(std::vector<store::RunEvent> page,
                             store_->ReadRunEvents(tenant, run, cursor, 1000));
    if (page.empty() && cursor == after_event_id && record.last_event_id > after_event_id) {
      // The run had events after the cursor and none are left: retention deleted them.
      return Status::NotFound("the events of run " + run.ToHex() +
                              " were deleted after the retention period; GET /v1/runs/" + run.ToHex() +
                              " still reports its status and usage");
    }
    for (const store::RunEvent& e : page) {
      if (!on_event(e)) return std::uint64_t{0};
      cursor = e.event_id;
    }
    if (page.size() < 1000) break;
  }
  if (on_end) on_end();
  return std::uint64_t{0};
}

void EventHub::Unsubscribe(const Id& run, std::uint64_t subscription) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = runs_.find(run);
  if (it != runs_.end()) it->second->subscribers.erase(subscription);
}

std::size_t EventHub::SubscriberCount() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::size_t n = 0;
  for (const auto& [id, entry] : runs_) n += entry->subscribers.size();
  return n;
}

}  // namespace llmsync::runs
