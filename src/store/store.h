// Store: the durable home of sessions, nodes, heads, idempotency records, runs and run events.
//
// The interface speaks only llmsync records (records.h), so a Redis implementation can replace
// the embedded SQLite one (sqlite_store.h) without touching the layers above. Its guarantees:
//   - Every mutating call is atomic: it applies completely or not at all. An append (its
//     idempotency check, compare-and-swap, parent check, inserts and head move) is one transaction.
//   - A call that returns OK is durable: it survives a process crash and a power cut.
//   - Every operation is tenant-scoped: a session or run of another tenant is "not found", with
//     the same message as one that does not exist. The only exceptions are the Admin* calls and
//     the cross-tenant scans that say so, which are for the operator's CLI and the run scheduler,
//     never for a client.
//   - Reads see a consistent snapshot per call.
// Expected failures come back as Status values: kNotFound, kConflict, kAlreadyExists,
// kInvalidArgument (a record the store cannot hold), kDataLoss (corruption), kUnavailable.
//
// Thread safety: every method may be called concurrently from any thread. Writers that arrive
// together share one transaction and one fsync (group commit) without changing what each sees.
// REQUIRES for every caller: never call a blocking write from inside an EventsDone callback (the
// callback runs on the store's writer thread); such a call fails with kInternal.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "llmsync/id.h"
#include "llmsync/status.h"
#include "store/records.h"

namespace llmsync::store {

// Receives the event ids (in draft order) once the events are durable, or the error.
using EventsDone = std::function<void(Result<std::vector<std::uint64_t>>)>;

// Where a follower of a run's events stands: it has every event up to after_event_id.
struct RunCursor {
  std::string tenant;
  Id run;
  std::uint64_t after_event_id = 0;
};

// One live notification of a session's feed (node.appended, head.moved, run.started,
// run.finished, metadata.changed). The payload is opaque to the store.
struct SessionFeedEvent {
  Id session;
  // Where the event sits in the session's shared feed ("<seq>-<n>"), for the next WaitSessionEvents.
  std::string position;
  std::uint64_t seq = 0;  // the session seq it reflects: never below an earlier event's
  std::string type;
  std::string payload;
};

// Where a follower of a session's feed stands: it has every event up to `after` (a position).
struct SessionFeedCursor {
  Id session;
  std::string after;
};

// How the refusal of a fenced write (a lease taken over by another worker) begins: kConflict.
inline constexpr std::string_view kLeaseLostPrefix = "lease lost: ";
inline bool IsLeaseLost(const Status& s) {
  return s.Code() == StatusCode::kConflict && s.Message().rfind(kLeaseLostPrefix, 0) == 0;
}

// ---- Cache-aware dispatch across engine processes (docs/ARCHITECTURE.md, "Cache-aware dispatch").

// What an engine process publishes every heartbeat: its load, and the changes to the set of KV
// directory members it holds ("<node id hex>:<tenant>": a node id hashes its whole path, so holding
// a member is an exact statement about a token prefix of that tenant).
struct EngineBeat {
  std::string worker;
  std::int64_t ttl_ms = 0;  // the engine counts as live this long after the beat
  std::uint64_t active_runs = 0;
  std::uint64_t queued_runs = 0;
  std::uint64_t queued_prompt_tokens = 0;
  std::vector<std::string> held_added;    // members held now (re-adding refreshes their age)
  std::vector<std::string> held_removed;  // members whose KV left the cache
  std::size_t held_cap = 0;               // the directory keeps at most this many, the newest
};

enum class DispatchMode { kCacheAware, kRoundRobin };

// A run to place: offered to the live engine holding the deepest member of its path, unless that
// engine's queue exceeds queue_bound (then to the least loaded), or to the session's lease holder.
struct DispatchRequest {
  Id run;
  Id session;
  std::vector<std::string> path;      // directory members of the run's path nodes, deepest first
  std::vector<std::uint64_t> depths;  // tokens of the path up to and including each of them
  DispatchMode mode = DispatchMode::kCacheAware;
  std::uint64_t queue_bound = 0;  // queued + offered runs beyond which a holder is passed over
  std::int64_t grace_ms = 0;      // how long other engines leave a run offered to a live one
};

class Store {
 public:
  virtual ~Store() = default;

  // ---- Sessions

  // Creates an empty session; head, head_seq and last_seq of `session` are ignored.
  // kAlreadyExists when the id is taken (by any tenant).
  virtual Status CreateSession(const SessionRecord& session) = 0;
  virtual Result<SessionRecord> GetSession(std::string_view tenant, const Id& session) = 0;
  // The tenant's sessions, newest first.
  virtual Result<std::vector<SessionRecord>> ListSessions(std::string_view tenant, std::size_t limit) = 0;
  // Deletes a session with its nodes, idempotency records, runs and run events.
  virtual Status DeleteSession(std::string_view tenant, const Id& session) = 0;
  // Replaces the session's metadata; returns the updated session. kInvalidArgument beyond
  // kMaxSessionMetadataBytes, kNotFound for another tenant's session.
  virtual Result<SessionRecord> SetSessionMetadata(std::string_view tenant, const Id& session,
                                                   std::string_view metadata) = 0;
  // Operator only (the CLI): finds a session by id whatever its tenant.
  virtual Result<SessionRecord> AdminFindSession(const Id& session) = 0;

  // ---- Nodes

  // Appends batch.nodes as a chain under batch.parent. In order, inside one transaction:
  //   1. the session must exist for the tenant (else kNotFound);
  //   2. a known idempotency key (keys are scoped to the session) returns the recorded outcome
  //      (replayed = true) when request_digest matches, and kConflict when it does not;
  //   3. expect_head, when set, must equal the head; otherwise kConflict, and `*conflict_head`
  //      (when non-null) receives the current head;
  //   4. a non-zero parent must be a node of the session (else kNotFound);
  //   5. each node whose id already exists in the session is kept as it is (created = false);
  //      the others get the next seqs;
  //   6. with move_head, the head moves to the last node; head_seq becomes that node's seq when
  //      it was created here, else the next seq.
  virtual Result<AppendOutcome> Append(const AppendBatch& batch, Id* conflict_head) = 0;
  // Points the head at `node` (zero: before the first node); nothing is deleted. head_seq takes
  // the next seq. Compare-and-swap like Append when expect_head is set.
  virtual Result<SessionRecord> SetHead(std::string_view tenant, const Id& session, const Id& node,
                                        const std::optional<Id>& expect_head, Id* conflict_head) = 0;
  virtual Result<NodeRecord> GetNode(std::string_view tenant, const Id& session, const Id& node) = 0;
  // The nodes from the root down to `node`, inclusive.
  virtual Result<std::vector<NodeRecord>> GetPath(std::string_view tenant, const Id& session,
                                                  const Id& node) = 0;
  // The session and its nodes with seq > since_seq (at most `limit`), from one snapshot.
  virtual Result<SessionChanges> ChangesSince(std::string_view tenant, const Id& session,
                                              std::uint64_t since_seq, std::size_t limit) = 0;
  // Nodes without children, oldest first.
  virtual Result<std::vector<BranchTip>> ListBranchTips(std::string_view tenant, const Id& session,
                                                        std::size_t limit) = 0;
  // Drops text, tokens and sealed blob of hidden nodes that have a sealed blob and were created
  // before `created_before_ms`; ids, kinds and token counts stay. Unset tenant: every tenant
  // (a maintenance sweep). Returns how many nodes were purged.
  virtual Result<std::uint64_t> PurgeHidden(const std::optional<std::string>& tenant,
                                            std::int64_t created_before_ms) = 0;
  // Puts back the content of a purged node (the caller has verified it against the node id).
  // OK and no change when the node is not purged.
  virtual Status RestoreContent(std::string_view tenant, const Id& session, const Id& node,
                                std::string_view text, const TokenIds& tokens, std::string_view sealed) = 0;
  // Creates `session` with `nodes` (ascending seq, parents first, seq and depth set by the
  // caller) and its head, all in one transaction: the import path.
  virtual Status LoadSession(const SessionRecord& session, const std::vector<NodeRecord>& nodes) = 0;
  // Forgets idempotency records created before the cutoff. Returns how many.
  virtual Result<std::uint64_t> PruneIdempotency(std::int64_t created_before_ms) = 0;
  // Deletes the events of finished runs last updated before the cutoff (retention), and those of
  // deleted runs; the run records stay, with their status and usage. Returns the events deleted.
  virtual Result<std::uint64_t> PruneRunEvents(std::int64_t finished_before_ms) = 0;

  // ---- Runs

  // kNotFound unless the session exists for run.tenant and a non-zero from_node is one of its
  // nodes; kAlreadyExists when the id is taken. last_event_id is ignored.
  virtual Status CreateRun(const RunRecord& run) = 0;
  virtual Result<RunRecord> GetRun(std::string_view tenant, const Id& run) = 0;
  // Deletes a run for every reader: GetRun, ListRuns and ReadRunEvents no longer find it, and its
  // events are deleted now (and any appended later, at the next PruneRunEvents). The row stays,
  // so the id is never reused and the scheduler can still finish it. kNotFound when absent.
  virtual Status DeleteRun(std::string_view tenant, const Id& run) = 0;
  // Applies the set fields and appends update.events, all in one transaction. kConflict when
  // expect_status is set and the run is in another status (the message names it); kInvalidArgument
  // when an event names another run or tenant. Returns the updated record: its last_event_id is
  // the id of the last of update.events, which got consecutive ids ending there.
  virtual Result<RunRecord> UpdateRun(std::string_view tenant, const Id& run, const RunUpdate& update) = 0;
  // Oldest first. A filter without a tenant is a cross-tenant scan for the scheduler.
  virtual Result<std::vector<RunRecord>> ListRuns(const RunFilter& filter) = 0;

  // Appends events, each to its run, giving each the run's next event id. All events of one call
  // commit together; calls that arrive together share a transaction and an fsync. A call with an
  // unknown run (or a run of another tenant) fails as a whole with kNotFound.
  virtual Result<std::vector<std::uint64_t>> AppendRunEvents(const std::vector<RunEventDraft>& events) = 0;
  // The same, without waiting: `done` runs on the writer thread once the events are durable. A
  // producer can keep generating while earlier events commit. Calls block only while the queue
  // of pending writes is full (backpressure).
  virtual void AppendRunEventsAsync(std::vector<RunEventDraft> events, EventsDone done) = 0;
  // Events of a run with event_id > after_event_id, ascending, at most `limit`.
  virtual Result<std::vector<RunEvent>> ReadRunEvents(std::string_view tenant, const Id& run,
                                                      std::uint64_t after_event_id, std::size_t limit) = 0;

  // ---- Many processes on one store (docs/ARCHITECTURE.md, "Scale-out"). The defaults suit a store
  // that one process owns (SQLite: the data directory's lock keeps out a second process, so there
  // is nobody to fence): leases always succeed with epoch 1 and name nobody, epochs on writes are
  // ignored, and waiting polls.

  // Waits up to timeout_ms for events after any of the cursors and returns those that arrived
  // (ascending per run; empty on timeout). Events written by another process arrive too.
  virtual Result<std::vector<RunEvent>> WaitRunEvents(const std::vector<RunCursor>& cursors, int timeout_ms);
  // Claims the run for `worker` for ttl_ms (epoch 0), or renews the claim of that epoch. Returns the
  // lease epoch `worker` holds now, a fencing token that grows with every claim; 0 when a claim is
  // live (a claim succeeds only on a run nobody holds, so one worker cannot claim a run twice)
  // or, for a renewal, when anyone claimed the run since that epoch (the lease was lost). The claim also
  // records the worker on the run (RunWorker). Appends and updates that carry an epoch
  // (RunEventDraft::lease_epoch, RunUpdate::lease_epoch) are refused once the run's epoch moved past it, or
  // once the run is finished (another process cancelled it), with a Status for which IsLeaseLost() holds: an
  // engine that was paused past its lease cannot write after the engine that took the run over, nor after a
  // cancel made elsewhere.
  virtual Result<std::uint64_t> LeaseRun(const Id& run, const std::string& worker, std::int64_t ttl_ms,
                                         std::uint64_t epoch);
  // The worker that last claimed the run; empty when none did.
  virtual Result<std::string> RunWorker(const Id& run);

  // ---- Cache-aware dispatch (a store shared by many processes; the defaults suit a store one
  // process owns, where there is nothing to choose: publishing is a no-op and dispatch unimplemented).

  // Records the engine as live for beat.ttl_ms with its load, and applies its directory changes.
  virtual Status PublishEngine(const EngineBeat& beat);
  // Removes the engine and its directory at once (a graceful stop).
  virtual Status RetireEngine(const std::string& worker);
  // Chooses the engine for a run not created yet and offers it there; other engines leave the run
  // to that engine for request.grace_ms (LeaseRun), unless it stops being live. Target empty: no
  // engine is live, and the first to come claims the run. kUnimplemented on a store one process owns.
  virtual Result<RunPlacement> DispatchRun(const DispatchRequest& request);
  // Takes back an offer whose run was never created.
  virtual Status WithdrawDispatch(const Id& run);
  // Where the run is (the claiming engine, the dispatcher's target and the reason).
  virtual Result<RunPlacement> GetRunPlacement(const Id& run);
  // `worker` holds a KV lease on the session for ttl_ms: its runs are offered there (reason lease).
  // Unpin forgets it if `worker` is still the holder.
  virtual Status PinSession(const Id& session, const std::string& worker, std::int64_t ttl_ms);
  virtual Status UnpinSession(const Id& session, const std::string& worker);

  // ---- The session event feed across processes. Live notifications, not the log (the node tree
  // is the log): a store shared by many processes carries them so that a subscriber on any process
  // sees what any other process did. A store one process owns does not (SharesSessionEvents() is
  // false, the defaults below): the caller delivers them in-process.

  virtual bool SharesSessionEvents() const { return false; }
  // Adds an event to the session's feed. Its seq is max(seq, the feed's last seq), so the feed's
  // seqs never go down. kUnimplemented unless SharesSessionEvents().
  virtual Result<SessionFeedEvent> PublishSessionEvent(const Id& session, std::uint64_t seq,
                                                       std::string_view type, std::string_view payload);
  // The position of the feed's newest event ("0-0" when empty): a new follower starts after it.
  virtual Result<std::string> SessionFeedEnd(const Id& session);
  // Waits up to timeout_ms for events after any of the cursors and returns those that arrived
  // (ascending per session; empty on timeout). kUnimplemented unless SharesSessionEvents().
  virtual Result<std::vector<SessionFeedEvent>> WaitSessionEvents(
      const std::vector<SessionFeedCursor>& cursors, int timeout_ms);
};

}  // namespace llmsync::store
