#include "runs/event_hub.h"

#include "base/logging.h"
#include "runs/run_events.h"

namespace llmsync::runs {

namespace {

constexpr int kFollowWaitMs = 250;
// A remote run whose record is terminal is closed after this many quiet rounds (its final events
// were lost with the process that ran it).
constexpr std::int64_t kQuietRoundsBeforeCheck = 4;

bool IsFinalEvent(const std::string& type) {
  return type == kEventCompleted || type == kEventFailed || type == kEventCancelled;
}

}  // namespace

EventHub::EventHub(store::Store* store, bool follow_remote) : store_(store), follow_remote_(follow_remote) {
  if (follow_remote_) follower_ = std::thread([this] { FollowLoop(); });
}

EventHub::~EventHub() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  follow_cv_.notify_all();
  if (follower_.joinable()) follower_.join();
}

void EventHub::Open(const Id& run, const std::string& tenant, std::vector<store::RunEvent> existing) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& entry = runs_[run];
  if (!entry) entry = std::make_unique<Entry>();
  entry->tenant = tenant;
  entry->remote = false;  // this process executes it now (a takeover keeps the subscribers)
  // The store's events are authoritative; a remote entry may already have delivered some of them.
  if (existing.size() >= entry->events.size()) {
    entry->events = std::move(existing);
  }
}

void EventHub::PublishLocked(Entry& entry, const std::vector<store::RunEvent>& events) {
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

void EventHub::Publish(const Id& run, const std::vector<store::RunEvent>& events) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = runs_.find(run);
  if (it == runs_.end()) return;
  PublishLocked(*it->second, events);
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
  auto it = runs_.find(run);
  return it != runs_.end() && !it->second->remote;
}

std::uint64_t EventHub::Attach(Entry& entry, std::uint64_t after_event_id, OnEvent on_event, OnEnd on_end) {
  for (const store::RunEvent& e : entry.events) {
    if (e.event_id > after_event_id && !on_event(e)) return 0;
  }
  std::uint64_t id = next_subscription_++;
  entry.subscribers.emplace(id, Subscriber{std::move(on_event), std::move(on_end)});
  return id;
}

Result<std::uint64_t> EventHub::Subscribe(const std::string& tenant, const Id& run,
                                          std::uint64_t after_event_id, OnEvent on_event, OnEnd on_end) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = runs_.find(run);
    if (it != runs_.end()) {
      Entry& entry = *it->second;
      if (entry.tenant != tenant) return Status::NotFound("run " + run.ToHex() + " not found");
      return Attach(entry, after_event_id, std::move(on_event), std::move(on_end));
    }
  }
  // Not open: the run is terminal (or unknown), or another process executes it.
  LLMSYNC_ASSIGN_OR_RETURN(store::RunRecord record, store_->GetRun(tenant, run));
  if (follow_remote_ && !store::IsTerminal(record.status)) {
    std::vector<store::RunEvent> events;
    while (true) {
      std::uint64_t cursor = events.empty() ? 0 : events.back().event_id;
      LLMSYNC_ASSIGN_OR_RETURN(std::vector<store::RunEvent> page,
                               store_->ReadRunEvents(tenant, run, cursor, 1000));
      events.insert(events.end(), page.begin(), page.end());
      if (page.size() < 1000) break;
    }
    std::uint64_t id = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto& entry = runs_[run];
      if (!entry) {
        entry = std::make_unique<Entry>();
        entry->tenant = tenant;
        entry->remote = true;
      }
      if (entry->tenant != tenant) return Status::NotFound("run " + run.ToHex() + " not found");
      PublishLocked(*entry, events);
      id = Attach(*entry, after_event_id, std::move(on_event), std::move(on_end));
    }
    follow_cv_.notify_all();
    return id;
  }
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

void EventHub::FollowLoop() {
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      follow_cv_.wait(lock, [&] {
        if (stopping_) return true;
        for (const auto& [id, entry] : runs_) {
          if (entry->remote) return true;
        }
        return false;
      });
      if (stopping_) return;
    }
    FollowOnce();
  }
}

void EventHub::FollowOnce() {
  std::vector<store::RunCursor> cursors;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = runs_.begin(); it != runs_.end();) {
      Entry& entry = *it->second;
      if (entry.remote && entry.subscribers.empty()) {  // nobody listens any more
        it = runs_.erase(it);
        continue;
      }
      if (entry.remote) {
        cursors.push_back({entry.tenant, it->first, entry.events.empty() ? 0 : entry.events.back().event_id});
      }
      ++it;
    }
  }
  if (cursors.empty()) return;
  Result<std::vector<store::RunEvent>> events = store_->WaitRunEvents(cursors, kFollowWaitMs);
  if (!events.IsOk()) {
    LLMSYNC_LOG(kWarning) << "following runs of other processes: " << events.GetStatus().ToString();
    std::unique_lock<std::mutex> lock(mu_);
    follow_cv_.wait_for(lock, std::chrono::milliseconds(kFollowWaitMs), [&] { return stopping_; });
    return;
  }
  std::vector<Id> finished;
  std::vector<store::RunCursor> quiet;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const store::RunCursor& c : cursors) {
      auto it = runs_.find(c.run);
      if (it == runs_.end() || !it->second->remote) continue;
      Entry& entry = *it->second;
      std::vector<store::RunEvent> mine;
      for (const store::RunEvent& e : *events) {
        if (e.run == c.run) mine.push_back(e);
      }
      PublishLocked(entry, mine);
      entry.quiet_rounds = mine.empty() ? entry.quiet_rounds + 1 : 0;
      if (!entry.events.empty() && IsFinalEvent(entry.events.back().type)) {
        finished.push_back(c.run);
      } else if (entry.quiet_rounds >= kQuietRoundsBeforeCheck) {
        entry.quiet_rounds = 0;
        quiet.push_back(c);
      }
    }
  }
  // A quiet run whose record is terminal (or gone) has nothing more coming.
  for (const store::RunCursor& c : quiet) {
    Result<store::RunRecord> record = store_->GetRun(c.tenant, c.run);
    if (!record.IsOk() || (store::IsTerminal(record->status) && record->last_event_id <= c.after_event_id)) {
      finished.push_back(c.run);
    }
  }
  for (const Id& run : finished) {
    std::unique_ptr<Entry> entry;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = runs_.find(run);
      if (it == runs_.end() || !it->second->remote) continue;  // taken over here meanwhile
      entry = std::move(it->second);
      runs_.erase(it);
    }
    for (auto& [id, sub] : entry->subscribers) {
      if (sub.on_end) sub.on_end();
    }
  }
}

}  // namespace llmsync::runs
