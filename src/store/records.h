// The plain records a Store persists: sessions, nodes, idempotency outcomes, runs and run events.
//
// These are storage shapes, not the session model. The store assigns sequence numbers and depths
// and enforces atomicity (a compare-and-swap append is one transaction), but it never computes a
// node id, never interprets a node's kind and never validates text: session/ owns that meaning.
// Every record names its tenant or is reached through a tenant-scoped session.
//
// Thread safety: plain values; see status.h for the usual rules.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "llmsync/id.h"
#include "llmsync/status.h"

namespace llmsync::store {

using TokenIds = std::vector<std::int32_t>;

struct SessionRecord {
  Id id;
  std::string tenant;
  Id model;  // opaque model fingerprint chosen by the caller
  std::int64_t created_at_ms = 0;
  Id head;                     // zero: empty, or rewound to before the first node
  std::uint64_t head_seq = 0;  // the seq at which `head` last changed
  std::uint64_t last_seq = 0;  // the highest seq handed out in this session
  // Client metadata (the API keeps a JSON object here, e.g. a title); opaque to the store, at most
  // kMaxSessionMetadataBytes; empty when never set. Not part of the node log: no seq changes.
  std::string metadata;
};

inline constexpr std::size_t kMaxSessionMetadataBytes = 16 * 1024;

struct NodeRecord {
  Id id;
  Id parent;                // zero for a root node
  std::uint64_t seq = 0;    // assigned by the store on append; 1, 2, ... per session
  std::uint32_t depth = 0;  // assigned by the store: 1 for a root node
  std::uint8_t kind = 0;    // opaque to the store (session/ defines the kinds)
  bool hidden = false;
  bool purged = false;  // hidden content (text, tokens, sealed blob) dropped by PurgeHidden
  std::string text;
  TokenIds tokens;
  std::uint32_t token_count = 0;  // kept when the content is purged
  std::string tool_name;
  std::string call_id;
  std::string sealed;  // sealed blob of a hidden node; empty when none
  std::int64_t created_at_ms = 0;
};

// A branch tip: a node without children.
struct BranchTip {
  Id id;
  std::uint64_t seq = 0;
  std::uint32_t depth = 0;
  std::int64_t created_at_ms = 0;
};

// One append: a chain of nodes under `parent`, applied in one transaction.
struct AppendBatch {
  std::string tenant;
  Id session;
  Id parent;                      // zero: append at the root
  std::optional<Id> expect_head;  // compare-and-swap on the session head
  // REQUIRES: non-empty; nodes[0].parent == parent and nodes[i].parent == nodes[i-1].id.
  std::vector<NodeRecord> nodes;
  std::string idempotency_key;  // empty: none
  Id request_digest;            // identifies the request an idempotency key was first used with
  bool move_head = true;        // move the head to the last node
};

struct AppendOutcome {
  std::vector<Id> ids;
  std::vector<std::uint64_t> seqs;  // the seq of each node (the existing one when not created)
  std::vector<bool> created;        // false where an identical node already existed
  Id head;
  std::uint64_t head_seq = 0;
  bool replayed = false;  // served from an idempotency record; nothing was written
};

// What a client that has seen everything up to a seq is missing, read from one snapshot.
struct SessionChanges {
  SessionRecord session;
  std::vector<NodeRecord> nodes;  // seq > since, ascending
  bool more = false;              // the limit cut the list short
};

enum class RunStatus : std::uint8_t { kQueued = 0, kRunning, kSucceeded, kFailed, kCancelled };

// "queued", "running", "succeeded", "failed", "cancelled".
std::string_view RunStatusName(RunStatus status);
Result<RunStatus> ParseRunStatus(std::string_view name);
bool IsTerminal(RunStatus status);

struct RunUsage {
  std::uint64_t prompt_tokens = 0;
  std::uint64_t prompt_tokens_ram = 0;   // served from the in-memory KV cache
  std::uint64_t prompt_tokens_disk = 0;  // restored from a disk snapshot
  std::uint64_t prompt_tokens_recomputed = 0;
  std::uint64_t generated_tokens = 0;

  friend bool operator==(const RunUsage&, const RunUsage&) = default;
};

struct RunRecord {
  Id id;
  std::string tenant;
  Id session;
  Id from_node;  // the path the run reads; zero: the empty path
  RunStatus status = RunStatus::kQueued;
  std::string params;  // opaque to the store; encoded by runs/
  Id result_node;      // zero until the run appends its result
  RunUsage usage;
  std::string error;  // why the run failed; empty otherwise
  std::int64_t created_at_ms = 0;
  std::int64_t updated_at_ms = 0;
  std::uint64_t last_event_id = 0;  // maintained by the store
};

// Where a run went and why.
struct RunPlacement {
  std::string engine;  // the worker that claimed the run last; empty: nobody yet
  std::string target;  // the engine the dispatcher offered it to; empty: none
  // cache_hit | least_loaded | lease | round_robin (the dispatcher's, when the target claimed it),
  // fallback (another engine claimed it: the target was dead or did not claim in time, or there
  // was none), takeover (resumed after its engine's lease lapsed). Empty: not dispatched.
  std::string reason;
  std::uint64_t matched_tokens = 0;  // of the prompt, held by the target when offered
};

struct RunEventDraft {
  std::string tenant;
  Id run;
  std::string type;
  std::string payload;
  // The fencing token of the writer's lease on the run (Store::LeaseRun); 0: unfenced. A store
  // shared by many processes refuses the append when another worker has claimed the run since.
  std::uint64_t lease_epoch = 0;
};

// A change to a run's mutable fields, applied only while the run is in `expect_status` (when set).
struct RunUpdate {
  std::optional<RunStatus> expect_status;
  std::optional<RunStatus> status;
  std::optional<Id> result_node;
  std::optional<RunUsage> usage;
  std::optional<std::string> error;
  std::int64_t now_ms = 0;
  // Events appended to this run in the same transaction as the update, after every event already
  // appended (including asynchronous appends queued before this call): a run's terminal events
  // and its finished status become durable together. Each must name this run and tenant.
  std::vector<RunEventDraft> events;
  // As RunEventDraft::lease_epoch: the update is refused once the writer's lease was taken over.
  std::uint64_t lease_epoch = 0;
};

struct RunFilter {
  std::optional<std::string> tenant;  // unset: every tenant (the scheduler's restart scan)
  std::optional<Id> session;          // REQUIRES: tenant is set when session is set
  std::vector<RunStatus> statuses;    // empty: any status
  std::size_t limit = 1000;
};

struct RunEvent {
  Id run;
  std::uint64_t event_id = 0;  // 1, 2, ... per run, assigned by the store in commit order
  std::string type;
  std::string payload;
  std::int64_t created_at_ms = 0;
};

}  // namespace llmsync::store
