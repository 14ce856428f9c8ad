// The Redis Store: the same records and guarantees as the embedded SQLite store, held by one Redis
// server that any number of llmsync processes share.
//
// Every multi-key operation is one Lua script (redis_scripts.h), so it is atomic: concurrent
// writers in different processes never lose an update and an idempotency key replays across
// processes. Run events are Redis Streams whose entry id is "<event_id>-0", so a Last-Event-ID
// maps directly onto XRANGE/XREAD.
//
// Durability is Redis's: with `appendonly yes` and `appendfsync always` an acknowledged write is
// in the fsynced AOF before the reply, so nothing acknowledged is lost; with `everysec` up to a
// second of writes can be (docs/ARCHITECTURE.md, "Redis store").
//
// Thread safety: the returned Store is safe for concurrent use (see store.h).
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "base/env.h"
#include "llmsync/status.h"
#include "store/store.h"

namespace llmsync::store {

struct RedisStoreOptions {
  std::string host = "127.0.0.1";
  int port = 6379;
  int db = 0;
  Env* env = nullptr;  // clocks; nullptr: Env::Default()
  int connect_timeout_ms = 1000;
  int command_timeout_ms = 10000;
  // How long a call keeps reconnecting to an unreachable Redis before it fails with kUnavailable.
  int reconnect_budget_ms = 2000;
  // Events queued beyond this block the caller until the writer catches up.
  std::size_t max_pending_events = 65536;
  // At most this many queued events share one script call.
  std::size_t max_group_events = 4096;
};

// Parses "redis://HOST[:PORT][/DB]" into host, port and db. kInvalidArgument when malformed.
Status ParseRedisUrl(std::string_view url, RedisStoreOptions* options);

// Connects (checking that Redis answers) and starts the event writer thread. kUnavailable when
// Redis cannot be reached.
Result<std::unique_ptr<Store>> OpenRedisStore(const RedisStoreOptions& options);

}  // namespace llmsync::store
