#include "api/session_events.h"

#include <algorithm>

#include "api/sse.h"

namespace llmsync::api {

void SessionEventBus::Subscribe(const Id& session, std::shared_ptr<StreamSink> sink) {
  std::lock_guard<std::mutex> lock(mu_);
  subscribers_[session].push_back(std::move(sink));
}

void SessionEventBus::Publish(const Id& session, std::uint64_t seq, std::string_view type,
                              const std::string& json) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = subscribers_.find(session);
  if (it == subscribers_.end()) return;
  std::string frame = FormatSseEvent(seq, type, json);
  auto& subs = it->second;
  subs.erase(std::remove_if(subs.begin(), subs.end(), [&](const auto& sink) { return !sink->Write(frame); }),
             subs.end());
  if (subs.empty()) subscribers_.erase(it);
}

std::size_t SessionEventBus::SubscriberCount() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::size_t n = 0;
  for (const auto& [id, subs] : subscribers_) n += subs.size();
  return n;
}

}  // namespace llmsync::api
