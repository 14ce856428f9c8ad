// RedisClient: a small pool of hiredis connections to one Redis server, with reconnects and the
// store's Lua scripts.
//
// Each call borrows a connection, so calls from many threads run side by side. A connection that
// fails is dropped together with every idle one (after a Redis restart they are all dead), and
// the next call reconnects with exponential backoff for at most reconnect_budget_ms; when Redis is
// still unreachable the call fails with kUnavailable. An idle connection is checked with PING
// before reuse. A read (idempotent) call that loses its connection mid-call is retried once on a
// fresh connection; a write is not, since it may have been applied: it fails with kUnavailable
// (the scripts are atomic, so it was applied completely or not at all).
//
// Scripts run with EVALSHA; a server that does not know the script (a restart flushed its script
// cache) gets it with EVAL, which caches it again.
//
// Thread safety: every method may be called concurrently.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "llmsync/status.h"
#include "store/redis/redis_scripts.h"

struct redisContext;

namespace llmsync::store::redis {

// A reply, copied out of hiredis.
struct Reply {
  enum class Type { kNil, kString, kInteger, kArray, kStatus };
  Type type = Type::kNil;
  std::string str;
  long long integer = 0;
  std::vector<Reply> elements;
};

struct ClientOptions {
  std::string host = "127.0.0.1";
  int port = 6379;
  int db = 0;
  int connect_timeout_ms = 1000;
  int command_timeout_ms = 10000;
  int reconnect_budget_ms = 2000;  // how long a call keeps trying to reconnect
  std::size_t max_idle_connections = 8;
};

class RedisClient {
 public:
  explicit RedisClient(ClientOptions options);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // One command. An error reply comes back as kInternal with its text.
  Result<Reply> Command(const std::vector<std::string>& args, bool idempotent);
  // Runs a store script with ARGV = args (no KEYS). Error replies "<CODE> message" map to the
  // Status code of CODE; "HEADCONFLICT <head>" becomes kConflict with the head as the message.
  Result<Reply> Eval(Script script, const std::vector<std::string>& args, bool idempotent);

  std::string Address() const;

 private:
  struct Conn;
  using ConnPtr = std::unique_ptr<Conn>;

  Result<ConnPtr> Acquire();
  void Release(ConnPtr conn);
  Result<ConnPtr> Connect();
  void DropIdle();
  // Sends one command on `conn`. kUnavailable when the connection failed (then it must go).
  Result<Reply> Send(Conn& conn, const std::vector<std::string>& args);
  Result<Reply> RunOnce(const std::vector<std::string>& args, bool idempotent);

  const ClientOptions options_;
  std::mutex mu_;
  std::vector<ConnPtr> idle_;      // GUARDED_BY(mu_)
  std::vector<std::string> shas_;  // GUARDED_BY(mu_): by Script; empty: not loaded
};

// The message prefix of a head compare-and-swap failure; the current head's hex follows it.
inline constexpr std::string_view kHeadConflictPrefix = "head:";

// Maps an error reply's text to a Status.
Status StatusFromError(const std::string& error);

}  // namespace llmsync::store::redis
