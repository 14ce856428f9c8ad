// SessionEventBus: live notifications of what changes in a session — node.appended, head.moved,
// run.started, run.finished — for another tab or client that keeps a replica in sync.
//
// These events are hints, not the log: the log is the session's node tree, read with
// GET /v1/sessions/{id}?since=SEQ. Each event's SSE id is the session seq it reflects, so a client
// that reconnects with Last-Event-ID first gets a `sync` event listing the nodes it missed and
// then live events.
//
// Thread safety: all methods are safe for concurrent use.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "api/http/http_message.h"
#include "llmsync/id.h"

namespace llmsync::api {

class SessionEventBus {
 public:
  void Subscribe(const Id& session, std::shared_ptr<StreamSink> sink);
  // Sends one event to every open subscriber of the session and drops closed ones.
  void Publish(const Id& session, std::uint64_t seq, std::string_view type, const std::string& json);
  std::size_t SubscriberCount() const;

 private:
  mutable std::mutex mu_;
  std::unordered_map<Id, std::vector<std::shared_ptr<StreamSink>>> subscribers_;  // GUARDED_BY(mu_)
};

}  // namespace llmsync::api
