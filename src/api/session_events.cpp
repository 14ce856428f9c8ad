#include "api/session_events.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <utility>

#include "api/sse.h"
#include "base/logging.h"

namespace llmsync::api {

namespace {

constexpr int kFollowWaitMs = 250;

// A feed position "<seq>-<n>" as a comparable pair; (0, 0) when malformed.
std::pair<std::uint64_t, std::uint64_t> PositionKey(const std::string& position) {
  std::pair<std::uint64_t, std::uint64_t> key{0, 0};
  std::size_t dash = position.find('-');
  if (dash == std::string::npos) return key;
  const char* begin = position.data();
  const char* end = begin + position.size();
  if (std::from_chars(begin, begin + dash, key.first).ec != std::errc() ||
      std::from_chars(begin + dash + 1, end, key.second).ec != std::errc())
    return {0, 0};
  return key;
}

}  // namespace

SessionEventBus::SessionEventBus(store::Store* store) : store_(store), shared_(store->SharesSessionEvents()) {
  if (shared_) follower_ = std::thread([this] { FollowLoop(); });
}

SessionEventBus::~SessionEventBus() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  follow_cv_.notify_all();
  if (follower_.joinable()) follower_.join();
}

Status SessionEventBus::Subscribe(const Id& session, std::shared_ptr<StreamSink> sink) {
  std::string end;
  if (shared_) {
    // Where the feed ends now: the follower delivers everything after it.
    LLMSYNC_ASSIGN_OR_RETURN(end, store_->SessionFeedEnd(session));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto [it, fresh] = feeds_.try_emplace(session);
    if (fresh) it->second.after = end;
    it->second.sinks.push_back(std::move(sink));
  }
  follow_cv_.notify_all();
  return Status::Ok();
}

void SessionEventBus::DeliverLocked(Feed& feed, std::uint64_t seq, std::string_view type,
                                    std::string_view json) {
  feed.seq = std::max(feed.seq, seq);
  std::string frame = FormatSseEvent(feed.seq, type, json);
  auto& sinks = feed.sinks;
  sinks.erase(
      std::remove_if(sinks.begin(), sinks.end(), [&](const auto& sink) { return !sink->Write(frame); }),
      sinks.end());
}

void SessionEventBus::Publish(const Id& session, std::uint64_t seq, std::string_view type,
                              const std::string& json) {
  if (shared_) {
    Result<store::SessionFeedEvent> published = store_->PublishSessionEvent(session, seq, type, json);
    if (!published.IsOk()) {
      LLMSYNC_LOG(kWarning) << "session " << session.ShortHex() << ": " << type
                            << " not published: " << published.GetStatus().ToString();
    }
    return;  // the follower delivers it, here as in every other process
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto it = feeds_.find(session);
  if (it == feeds_.end()) return;
  DeliverLocked(it->second, seq, type, json);
  if (it->second.sinks.empty()) feeds_.erase(it);
}

std::size_t SessionEventBus::SubscriberCount() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::size_t n = 0;
  for (const auto& [id, feed] : feeds_) n += feed.sinks.size();
  return n;
}

void SessionEventBus::FollowLoop() {
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      follow_cv_.wait(lock, [&] { return stopping_ || !feeds_.empty(); });
      if (stopping_) return;
    }
    FollowOnce();
  }
}

void SessionEventBus::FollowOnce() {
  std::vector<store::SessionFeedCursor> cursors;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = feeds_.begin(); it != feeds_.end();) {
      auto& sinks = it->second.sinks;
      sinks.erase(
          std::remove_if(sinks.begin(), sinks.end(), [](const auto& sink) { return !sink->IsOpen(); }),
          sinks.end());
      if (sinks.empty()) {  // nobody listens any more
        it = feeds_.erase(it);
        continue;
      }
      cursors.push_back({it->first, it->second.after});
      ++it;
    }
  }
  if (cursors.empty()) return;
  Result<std::vector<store::SessionFeedEvent>> events = store_->WaitSessionEvents(cursors, kFollowWaitMs);
  if (!events.IsOk()) {
    LLMSYNC_LOG(kWarning) << "following session feeds: " << events.GetStatus().ToString();
    std::unique_lock<std::mutex> lock(mu_);
    follow_cv_.wait_for(lock, std::chrono::milliseconds(kFollowWaitMs), [&] { return stopping_; });
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (const store::SessionFeedEvent& e : *events) {
    auto it = feeds_.find(e.session);
    if (it == feeds_.end()) continue;
    Feed& feed = it->second;
    if (PositionKey(e.position) <= PositionKey(feed.after)) continue;  // already delivered
    feed.after = e.position;
    DeliverLocked(feed, e.seq, e.type, e.payload);
  }
}

}  // namespace llmsync::api
