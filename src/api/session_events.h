// SessionEventBus: live notifications of what changes in a session — node.appended, head.moved,
// run.started, run.finished, metadata.changed — for another tab or client that keeps a replica in
// sync.
//
// These events are hints, not the log: the log is the session's node tree, read with
// GET /v1/sessions/{id}?since=SEQ. Each event's SSE id is the session seq it reflects (never below
// an earlier event's of the same feed), so a client that reconnects with Last-Event-ID first gets a
// `sync` event listing the nodes it missed and then live events.
//
// Many processes on one store (Store::SharesSessionEvents): Publish adds the event to the session's
// feed in the store, and one follower thread per bus waits on the feeds of every session that has a
// subscriber here (one XREAD BLOCK on Redis) and delivers what arrives, from this process or any
// other. A process therefore holds one blocking store connection for all its session subscribers.
// Otherwise Publish delivers directly to this process's subscribers.
//
// Thread safety: all methods are safe for concurrent use. Sinks are written with the bus's lock held.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "api/http/http_message.h"
#include "llmsync/id.h"
#include "store/store.h"

namespace llmsync::api {

class SessionEventBus {
 public:
  // REQUIRES: `store` outlives the bus.
  explicit SessionEventBus(store::Store* store);
  ~SessionEventBus();
  SessionEventBus(const SessionEventBus&) = delete;
  SessionEventBus& operator=(const SessionEventBus&) = delete;

  // Adds a subscriber: it receives every event published (by any process sharing the store) from
  // now on. kUnavailable when the shared store cannot say where its feed ends.
  Status Subscribe(const Id& session, std::shared_ptr<StreamSink> sink);
  // Sends one event to every open subscriber of the session (through the store's feed when it is
  // shared) and drops closed subscribers. A failure to reach the store is logged: events are hints.
  void Publish(const Id& session, std::uint64_t seq, std::string_view type, const std::string& json);
  std::size_t SubscriberCount() const;

 private:
  struct Feed {
    std::string after;      // shared store: the feed position delivered up to
    std::uint64_t seq = 0;  // the highest seq delivered
    std::vector<std::shared_ptr<StreamSink>> sinks;
  };
  // Writes one event to the feed's sinks and drops the closed ones. REQUIRES: mu_ held.
  static void DeliverLocked(Feed& feed, std::uint64_t seq, std::string_view type, std::string_view json);
  void FollowLoop();
  // One follower round: waits for events of the followed feeds and delivers them.
  void FollowOnce();

  store::Store* const store_;
  const bool shared_;
  mutable std::mutex mu_;
  std::condition_variable follow_cv_;
  std::unordered_map<Id, Feed> feeds_;  // GUARDED_BY(mu_)
  bool stopping_ = false;               // GUARDED_BY(mu_)
  std::thread follower_;
};

}  // namespace llmsync::api
