// SqliteStore: run event appends, coalesced for group commit.
//
// A token stream writes one small event per token, so per-event transaction overhead decides the
// rate. Callers (blocking or not) queue submissions; the first one queues a flush operation on the
// writer, and that flush takes every submission queued by the time it runs: it resolves each run
// once, inserts all the events in one savepoint, and updates each run's last_event_id once. The
// flush commits with whatever other writes share its group, so a burst of events costs one fsync.
// A submission naming an unknown run (or another tenant's) fails alone, before anything is
// inserted; an SQLite error while inserting fails the whole flush.
#include <future>
#include <memory>
#include <unordered_map>
#include <utility>

#include "store/sqlite/sqlite_store_impl.h"

namespace llmsync::store {

void SqliteStore::EnqueueEvents(std::vector<RunEventDraft> events, EventsDone done) {
  bool submit = false;
  {
    std::unique_lock<std::mutex> lock(events_mu_);
    if (!writer_->OnWriterThread()) {
      events_room_.wait(lock, [this] { return pending_event_count_ < options_.max_pending_writes; });
    }
    pending_event_count_ += events.size() + 1;
    pending_events_.push_back(EventSubmission{std::move(events), std::move(done), Status::Ok(), {}});
    if (!flush_queued_) {
      flush_queued_ = true;
      submit = true;
    }
  }
  if (!submit) return;
  // The flush body and its completion share the batch the body takes.
  auto batch = std::make_shared<EventBatch>();
  writer_->Submit([this, batch](Connection& conn) { return FlushEvents(conn, *batch); },
                  [this, batch](const Status& s) { FinishEvents(*batch, s); });
}

Status SqliteStore::FlushEvents(Connection& conn, EventBatch& batch) {
  if (batch.empty()) {  // a retried flush keeps the batch it took the first time
    std::lock_guard<std::mutex> lock(events_mu_);
    batch.swap(pending_events_);
    pending_event_count_ = 0;
    flush_queued_ = false;
  }
  events_room_.notify_all();

  struct Cursor {
    std::string tenant;
    std::int64_t rowid = 0;
    std::uint64_t last = 0;
    bool found = false;
    bool touched = false;
  };
  std::unordered_map<Id, Cursor> cursors;
  LLMSYNC_ASSIGN_OR_RETURN(Stmt find,
                           conn.Prepare("SELECT rowid, tenant, last_event_id FROM runs WHERE id = ?"));
  for (EventSubmission& sub : batch) {
    sub.status = Status::Ok();
    sub.ids.clear();
    for (const RunEventDraft& e : sub.events) {
      auto [it, fresh] = cursors.try_emplace(e.run);
      if (fresh) {
        find.BindId(1, e.run);
        LLMSYNC_ASSIGN_OR_RETURN(bool row, find.Step());
        if (row) {
          it->second = Cursor{find.ColumnText(1), find.ColumnInt(0),
                              static_cast<std::uint64_t>(find.ColumnInt(2)), true, false};
        }
        find.Reset();
      }
      if (!it->second.found || it->second.tenant != e.tenant) {
        sub.status = RunNotFound(e.run);
        break;
      }
    }
  }

  const std::int64_t now_ms = env_->UnixMillis();
  LLMSYNC_ASSIGN_OR_RETURN(Stmt insert, conn.Prepare("INSERT INTO run_events (run, event_id, type, payload, "
                                                     "created_at_ms) VALUES (?, ?, ?, ?, ?)"));
  for (EventSubmission& sub : batch) {
    if (!sub.status.IsOk()) continue;
    sub.ids.reserve(sub.events.size());
    for (const RunEventDraft& e : sub.events) {
      Cursor& c = cursors.at(e.run);
      std::uint64_t id = ++c.last;
      c.touched = true;
      insert.Bind(1, c.rowid).Bind(2, ToSql(id)).BindText(3, e.type).BindBlob(4, e.payload).Bind(5, now_ms);
      LLMSYNC_RETURN_IF_ERROR(insert.Run());
      insert.Reset();
      sub.ids.push_back(id);
    }
  }
  LLMSYNC_ASSIGN_OR_RETURN(Stmt update, conn.Prepare("UPDATE runs SET last_event_id = ? WHERE rowid = ?"));
  for (const auto& [run, c] : cursors) {
    if (!c.touched) continue;
    update.Bind(1, ToSql(c.last)).Bind(2, c.rowid);
    LLMSYNC_RETURN_IF_ERROR(update.Run());
    update.Reset();
  }
  return Status::Ok();
}

void SqliteStore::FinishEvents(EventBatch& batch, const Status& commit) {
  if (batch.empty() && !commit.IsOk()) {
    // The flush failed before its body ran (BEGIN failed): the submissions it was queued for are
    // still pending and no other flush is queued for them, so they share its fate.
    std::lock_guard<std::mutex> lock(events_mu_);
    batch.swap(pending_events_);
    pending_event_count_ = 0;
    flush_queued_ = false;
  }
  events_room_.notify_all();
  for (EventSubmission& sub : batch) {
    if (!sub.done) continue;
    if (!commit.IsOk()) {
      sub.done(commit);
    } else if (!sub.status.IsOk()) {
      sub.done(sub.status);
    } else {
      sub.done(std::move(sub.ids));
    }
  }
}

void SqliteStore::AppendRunEventsAsync(std::vector<RunEventDraft> events, EventsDone done) {
  EnqueueEvents(std::move(events), std::move(done));
}

Result<std::vector<std::uint64_t>> SqliteStore::AppendRunEvents(const std::vector<RunEventDraft>& events) {
  if (writer_->OnWriterThread()) {
    return Status::Internal("a blocking store write was called from the store's writer thread");
  }
  std::promise<Result<std::vector<std::uint64_t>>> promise;
  auto future = promise.get_future();
  EnqueueEvents(events,
                [&promise](Result<std::vector<std::uint64_t>> r) { promise.set_value(std::move(r)); });
  return future.get();
}

Result<std::uint64_t> SqliteStore::PruneRunEvents(std::int64_t finished_before_ms) {
  return RunCountingChanges([&](Connection& conn) -> Result<Stmt> {
    LLMSYNC_ASSIGN_OR_RETURN(
        Stmt stmt,
        conn.Prepare("DELETE FROM run_events WHERE run IN (SELECT rowid FROM runs WHERE deleted = 1 OR "
                     "(status IN (?, ?, ?) AND updated_at_ms < ?))"));
    stmt.Bind(1, static_cast<std::int64_t>(RunStatus::kSucceeded))
        .Bind(2, static_cast<std::int64_t>(RunStatus::kFailed))
        .Bind(3, static_cast<std::int64_t>(RunStatus::kCancelled))
        .Bind(4, finished_before_ms);
    return stmt;
  });
}

}  // namespace llmsync::store
