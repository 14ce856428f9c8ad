// EventHub: fans the durable events of runs out to any number of live subscribers.
//
// Every run that is not yet terminal is open in the hub, from submission (or, after a restart,
// from the scheduler's resume scan) until its last event is durable. An open run keeps all of its
// events in memory, so a subscriber that joins at any time with any cursor gets, under one lock,
// the events after its cursor and then every later one, in id order, with no gap and no
// duplicate. Events reach the hub only once the store reports them durable: a subscriber never
// sees an event that a crash could take back. A run that is not open is terminal; its events are
// read from the store and the subscription ends after them.
//
// Many processes on one store (follow_remote): a run that is not open here but not terminal in the
// store executes in another process. Subscribing opens it here as a remote run: the hub reads its
// durable events, and one follower thread per hub waits on the store for more (Store::
// WaitRunEvents: XREAD BLOCK on Redis) and publishes them, until the run's terminal event (or a
// terminal record with no further events) closes it, or its last subscriber leaves. If this
// process takes the run over, Open turns the entry local and the subscribers stay attached.
//
// Thread safety: all methods are safe for concurrent use. Callbacks run with the hub's lock held
// for that run's entry: they must be quick and must not call back into the hub.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "llmsync/id.h"
#include "store/records.h"
#include "store/store.h"

namespace llmsync::runs {

class EventHub {
 public:
  // Returns false to unsubscribe.
  using OnEvent = std::function<bool(const store::RunEvent&)>;
  // Called once when the run has ended and every event was delivered (not after Unsubscribe).
  using OnEnd = std::function<void()>;

  // REQUIRES: `store` outlives the hub.
  explicit EventHub(store::Store* store, bool follow_remote = false);
  ~EventHub();
  EventHub(const EventHub&) = delete;
  EventHub& operator=(const EventHub&) = delete;

  // Opens a run with the events it already has (ascending; empty for a new run).
  void Open(const Id& run, const std::string& tenant, std::vector<store::RunEvent> existing);
  // Delivers events that just became durable (ascending ids, following the ones already known).
  void Publish(const Id& run, const std::vector<store::RunEvent>& events);
  // The run is terminal and all its events were published: subscribers end, the entry goes.
  void Close(const Id& run);
  bool IsOpen(const Id& run) const;

  // Subscribes to the events with id > after_event_id. kNotFound for an unknown run or another
  // tenant's, and for a finished run whose events retention deleted (the message says so).
  // Returns a subscription id for Unsubscribe (0 when the run had already ended and everything
  // was delivered synchronously).
  Result<std::uint64_t> Subscribe(const std::string& tenant, const Id& run, std::uint64_t after_event_id,
                                  OnEvent on_event, OnEnd on_end);
  void Unsubscribe(const Id& run, std::uint64_t subscription);

  std::size_t SubscriberCount() const;

 private:
  struct Subscriber {
    OnEvent on_event;
    OnEnd on_end;
  };
  struct Entry {
    std::string tenant;
    std::vector<store::RunEvent> events;
    std::map<std::uint64_t, Subscriber> subscribers;
    bool remote = false;            // followed from the store: another process executes the run
    std::int64_t quiet_rounds = 0;  // follower rounds without an event (remote only)
  };

  // Delivers the events after the cursor and adds the subscriber. REQUIRES: mu_ held.
  std::uint64_t Attach(Entry& entry, std::uint64_t after_event_id, OnEvent on_event, OnEnd on_end);
  void PublishLocked(Entry& entry, const std::vector<store::RunEvent>& events);
  void FollowLoop();
  // One follower round: waits for events of the remote runs and publishes them.
  void FollowOnce();

  store::Store* store_;
  const bool follow_remote_;
  mutable std::mutex mu_;
  std::condition_variable follow_cv_;
  std::unordered_map<Id, std::unique_ptr<Entry>> runs_;  // GUARDED_BY(mu_)
  std::uint64_t next_subscription_ = 1;                  // GUARDED_BY(mu_)
  bool stopping_ = false;                                // GUARDED_BY(mu_)
  std::thread follower_;
};

}  // namespace llmsync::runs
