// The Lua scripts that implement every multi-key Store operation on Redis (redis_scripts.cpp).
//
// Redis runs a script atomically: no other command interleaves, so a script is the Redis form of
// the SQLite transaction. Redis does not roll a script back when it fails half way, so every
// script validates everything first and only then writes; an error reply therefore means nothing
// was written. Errors come back as "<CODE> <message>" with CODE one of NOTFOUND, CONFLICT,
// HEADCONFLICT, EXISTS, INVALID, DATALOSS (redis_client.cpp maps them to Status codes).
//
// The key layout is described in docs/ARCHITECTURE.md ("Redis store").
//
// Thread safety: constant data.
#pragma once

#include <string_view>

namespace llmsync::store::redis {

enum class Script {
  kCreateSession,
  kListSessions,
  kDeleteSession,
  kAppend,
  kSetHead,
  kGetNode,
  kGetPath,
  kChangesSince,
  kBranchTips,
  kPurgeHidden,
  kRestoreContent,
  kLoadSession,
  kPruneIdempotency,
  kCreateRun,
  kDeleteRun,
  kUpdateRun,
  kListRuns,
  kAppendEvents,
  kReadEvents,
  kPruneEvents,
  kLeaseRun,
  kSetSessionMetadata,
  kPublishSessionEvent,
  kPublishEngine,
  kRetireEngine,
  kDispatchRun,
  kWithdrawDispatch,
  kRunPlacement,
  kUnpinSession,
};
inline constexpr int kScriptCount = static_cast<int>(Script::kUnpinSession) + 1;

// The full source of a script: the shared prelude followed by its body.
std::string_view ScriptSource(Script script);
std::string_view ScriptName(Script script);

// The node fields every node-returning script emits after the node id, in this order.
inline constexpr int kNodeFieldCount = 13;  // parent seq depth kind hidden purged text tokens
                                            // token_count tool call sealed created
// The session fields every session-returning script emits, in this order.
inline constexpr int kSessionFieldCount = 8;  // id tenant model created head head_seq last_seq
                                              // metadata
// The run fields every run-returning script emits after the run id, in this order.
inline constexpr int kRunFieldCount = 16;  // tenant session from status params result u0..u4
                                           // error created updated last_event_id deleted

}  // namespace llmsync::store::redis
