// The SqliteStore class behind OpenSqliteStore, shared by the files that implement it:
// sqlite_store.cpp (open, sessions, reads), sqlite_node_writes.cpp (appends, heads, purge, import)
// and sqlite_runs.cpp (runs and their events). Private to src/store/.
//
// Thread safety: as Store. Writes go through writer_ (one thread, group commit); reads borrow a
// connection from the reader pool, one caller per connection at a time.
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "store/sqlite/sqlite_db.h"
#include "store/sqlite/sqlite_store.h"
#include "store/sqlite/sqlite_writer.h"

namespace llmsync::store {

// The columns every node query selects, in the order ReadNode expects.
inline constexpr const char* kNodeColumns =
    "id, parent, seq, depth, kind, hidden, purged, text, tokens, token_count, tool_name, call_id, sealed, "
    "created_at_ms";

// Reads the kNodeColumns of the current row, starting at column `first`.
Result<NodeRecord> ReadNode(const Stmt& stmt, int first);
// The rowid of a tenant's session; kNotFound (one message whatever the reason) otherwise.
Result<std::int64_t> FindSessionRowid(Connection& conn, std::string_view tenant, const Id& session);
Status SessionNotFound(const Id& session);
Status RunNotFound(const Id& run);
// A count as an SQLite integer, saturating.
std::int64_t ToSql(std::uint64_t v);

class SqliteStore final : public Store {
 public:
  SqliteStore(SqliteStoreOptions options, std::unique_ptr<Connection> writer_conn);
  ~SqliteStore() override = default;

  Status CreateSession(const SessionRecord& session) override;
  Result<SessionRecord> GetSession(std::string_view tenant, const Id& session) override;
  Result<std::vector<SessionRecord>> ListSessions(std::string_view tenant, std::size_t limit) override;
  Result<SessionRecord> SetSessionMetadata(std::string_view tenant, const Id& session,
                                           std::string_view metadata) override;
  Status DeleteSession(std::string_view tenant, const Id& session) override;
  Result<SessionRecord> AdminFindSession(const Id& session) override;

  Result<AppendOutcome> Append(const AppendBatch& batch, Id* conflict_head) override;
  Result<SessionRecord> SetHead(std::string_view tenant, const Id& session, const Id& node,
                                const std::optional<Id>& expect_head, Id* conflict_head) override;
  Result<NodeRecord> GetNode(std::string_view tenant, const Id& session, const Id& node) override;
  Result<std::vector<NodeRecord>> GetPath(std::string_view tenant, const Id& session,
                                          const Id& node) override;
  Result<SessionChanges> ChangesSince(std::string_view tenant, const Id& session, std::uint64_t since_seq,
                                      std::size_t limit) override;
  Result<std::vector<BranchTip>> ListBranchTips(std::string_view tenant, const Id& session,
                                                std::size_t limit) override;
  Result<std::uint64_t> PurgeHidden(const std::optional<std::string>& tenant,
                                    std::int64_t created_before_ms) override;
  Status RestoreContent(std::string_view tenant, const Id& session, const Id& node, std::string_view text,
                        const TokenIds& tokens, std::string_view sealed) override;
  Status LoadSession(const SessionRecord& session, const std::vector<NodeRecord>& nodes) override;
  Result<std::uint64_t> PruneIdempotency(std::int64_t created_before_ms) override;
  Result<std::uint64_t> PruneRunEvents(std::int64_t finished_before_ms) override;
  Status DeleteRun(std::string_view tenant, const Id& run) override;

  Status CreateRun(const RunRecord& run) override;
  Result<RunRecord> GetRun(std::string_view tenant, const Id& run) override;
  Result<RunRecord> UpdateRun(std::string_view tenant, const Id& run, const RunUpdate& update) override;
  Result<std::vector<RunRecord>> ListRuns(const RunFilter& filter) override;
  Result<std::vector<std::uint64_t>> AppendRunEvents(const std::vector<RunEventDraft>& events) override;
  void AppendRunEventsAsync(std::vector<RunEventDraft> events, EventsDone done) override;
  Result<std::vector<RunEvent>> ReadRunEvents(std::string_view tenant, const Id& run,
                                              std::uint64_t after_event_id, std::size_t limit) override;

 private:
  // A read connection borrowed from the pool; returned when the lease dies.
  class ReadLease {
   public:
    ReadLease(SqliteStore* store, std::unique_ptr<Connection> conn) : store_(store), conn_(std::move(conn)) {}
    ~ReadLease();
    ReadLease(ReadLease&&) = default;
    ReadLease(const ReadLease&) = delete;
    ReadLease& operator=(const ReadLease&) = delete;
    ReadLease& operator=(ReadLease&&) = delete;
    Connection& operator*() { return *conn_; }
    Connection* operator->() { return conn_.get(); }

   private:
    SqliteStore* store_;
    std::unique_ptr<Connection> conn_;
  };

  Result<ReadLease> Reader();
  // Runs one statement on the writer: `prepare_and_bind` returns it ready to run. Returns the
  // number of rows it changed (the purge and prune operations).
  Result<std::uint64_t> RunCountingChanges(const std::function<Result<Stmt>(Connection&)>& prepare_and_bind);
  // Runs `body` on a read connection inside one read transaction (one snapshot).
  template <typename T, typename F>
  Result<T> ReadSnapshot(F&& body);

  // Event appends are coalesced: callers queue submissions, and one flush operation on the writer
  // inserts everything queued so far in a single savepoint (sqlite_events.cpp).
  struct EventSubmission {
    std::vector<RunEventDraft> events;
    EventsDone done;
    Status status;                   // kNotFound when a run is unknown to the tenant
    std::vector<std::uint64_t> ids;  // assigned when status is OK
  };
  using EventBatch = std::vector<EventSubmission>;
  void EnqueueEvents(std::vector<RunEventDraft> events, EventsDone done);
  Status FlushEvents(Connection& conn, EventBatch& batch);
  void FinishEvents(EventBatch& batch, const Status& commit);

  const SqliteStoreOptions options_;
  Env* const env_;
  std::mutex readers_mu_;
  std::vector<std::unique_ptr<Connection>> idle_readers_;  // GUARDED_BY(readers_mu_)
  std::mutex events_mu_;
  std::condition_variable events_room_;
  EventBatch pending_events_;            // GUARDED_BY(events_mu_)
  std::size_t pending_event_count_ = 0;  // GUARDED_BY(events_mu_)
  bool flush_queued_ = false;            // GUARDED_BY(events_mu_): a flush is queued on the writer
  // Declared last: destroyed first, so queued writes finish while everything else still exists.
  std::unique_ptr<SqliteWriter> writer_;
};

template <typename T, typename F>
Result<T> SqliteStore::ReadSnapshot(F&& body) {
  LLMSYNC_ASSIGN_OR_RETURN(ReadLease conn, Reader());
  LLMSYNC_RETURN_IF_ERROR(conn->ExecPrepared("BEGIN"));
  Result<T> result = body(*conn);
  Status end = conn->ExecPrepared("COMMIT");
  if (!end.IsOk() && !conn->AutoCommit()) (void)conn->ExecPrepared("ROLLBACK");
  if (result.IsOk() && !end.IsOk()) return end;
  return result;
}

}  // namespace llmsync::store
