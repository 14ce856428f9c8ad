// SqliteStore: run records and reading run events (appends are in sqlite_events.cpp).
#include <algorithm>
#include <limits>
#include <utility>

#include "store/sqlite/sqlite_store_impl.h"

namespace llmsync::store {

namespace {

constexpr const char* kRunColumns =
    "r.id, r.tenant, s.id, r.from_node, r.status, r.params, r.result_node, r.prompt_tokens, "
    "r.prompt_tokens_ram, "
    "r.prompt_tokens_disk, r.prompt_tokens_recomputed, r.generated_tokens, r.error, r.created_at_ms, "
    "r.updated_at_ms, r.last_event_id";
constexpr const char* kRunFrom = " FROM runs r JOIN sessions s ON s.rowid = r.session";

Result<RunRecord> ReadRun(const Stmt& stmt) {
  RunRecord r;
  LLMSYNC_ASSIGN_OR_RETURN(r.id, stmt.ColumnId(0));
  r.tenant = stmt.ColumnText(1);
  LLMSYNC_ASSIGN_OR_RETURN(r.session, stmt.ColumnId(2));
  LLMSYNC_ASSIGN_OR_RETURN(r.from_node, stmt.ColumnId(3));
  std::int64_t status = stmt.ColumnInt(4);
  if (status < 0 || status > static_cast<std::int64_t>(RunStatus::kCancelled)) {
    return Status::DataLoss("run " + r.id.ToHex() + " has an unknown status " + std::to_string(status));
  }
  r.status = static_cast<RunStatus>(status);
  r.params = stmt.ColumnBlob(5);
  LLMSYNC_ASSIGN_OR_RETURN(r.result_node, stmt.ColumnId(6));
  r.usage.prompt_tokens = static_cast<std::uint64_t>(stmt.ColumnInt(7));
  r.usage.prompt_tokens_ram = static_cast<std::uint64_t>(stmt.ColumnInt(8));
  r.usage.prompt_tokens_disk = static_cast<std::uint64_t>(stmt.ColumnInt(9));
  r.usage.prompt_tokens_recomputed = static_cast<std::uint64_t>(stmt.ColumnInt(10));
  r.usage.generated_tokens = static_cast<std::uint64_t>(stmt.ColumnInt(11));
  r.error = stmt.ColumnText(12);
  r.created_at_ms = stmt.ColumnInt(13);
  r.updated_at_ms = stmt.ColumnInt(14);
  r.last_event_id = static_cast<std::uint64_t>(stmt.ColumnInt(15));
  return r;
}

// A deleted run is not found, except by the writes that finish it (include_deleted).
Result<RunRecord> LoadRun(Connection& conn, std::string_view tenant, const Id& run, bool include_deleted) {
  LLMSYNC_ASSIGN_OR_RETURN(Stmt stmt, conn.Prepare(std::string("SELECT ") + kRunColumns + kRunFrom +
                                                   " WHERE r.id = ? AND r.tenant = ?" +
                                                   (include_deleted ? "" : " AND r.deleted = 0")));
  stmt.BindId(1, run).BindText(2, tenant);
  LLMSYNC_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return RunNotFound(run);
  return ReadRun(stmt);
}

}  // namespace

Status RunNotFound(const Id& run) { return Status::NotFound("run " + run.ToHex() + " not found"); }

std::int64_t ToSql(std::uint64_t v) {
  return static_cast<std::int64_t>(std::min<std::uint64_t>(v, std::numeric_limits<std::int64_t>::max()));
}

Status SqliteStore::CreateRun(const RunRecord& run) {
  return writer_->Run([&run](Connection& conn) -> Status {
    LLMSYNC_ASSIGN_OR_RETURN(std::int64_t session, FindSessionRowid(conn, run.tenant, run.session));
    if (!run.from_node.IsZero()) {
      LLMSYNC_ASSIGN_OR_RETURN(Stmt node, conn.Prepare("SELECT 1 FROM nodes WHERE session = ? AND id = ?"));
      node.Bind(1, session).BindId(2, run.from_node);
      LLMSYNC_ASSIGN_OR_RETURN(bool found, node.Step());
      if (!found) {
        return Status::NotFound("node " + run.from_node.ToHex() + " is not in session " +
                                run.session.ToHex());
      }
    }
    LLMSYNC_ASSIGN_OR_RETURN(Stmt exists, conn.Prepare("SELECT 1 FROM runs WHERE id = ?"));
    exists.BindId(1, run.id);
    LLMSYNC_ASSIGN_OR_RETURN(bool taken, exists.Step());
    if (taken) return Status::AlreadyExists("run " + run.id.ToHex() + " already exists");
    LLMSYNC_ASSIGN_OR_RETURN(
        Stmt insert,
        conn.Prepare(
            "INSERT INTO runs (id, tenant, session, from_node, status, params, result_node, prompt_tokens, "
            "prompt_tokens_ram, prompt_tokens_disk, prompt_tokens_recomputed, generated_tokens, error, "
            "created_at_ms, updated_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
    insert.BindId(1, run.id)
        .BindText(2, run.tenant)
        .Bind(3, session)
        .BindIdOrNull(4, run.from_node)
        .Bind(5, static_cast<std::int64_t>(run.status))
        .BindBlob(6, run.params)
        .BindIdOrNull(7, run.result_node)
        .Bind(8, ToSql(run.usage.prompt_tokens))
        .Bind(9, ToSql(run.usage.prompt_tokens_ram))
        .Bind(10, ToSql(run.usage.prompt_tokens_disk))
        .Bind(11, ToSql(run.usage.prompt_tokens_recomputed))
        .Bind(12, ToSql(run.usage.generated_tokens))
        .BindText(13, run.error)
        .Bind(14, run.created_at_ms)
        .Bind(15, run.updated_at_ms);
    return insert.Run();
  });
}

Result<RunRecord> SqliteStore::GetRun(std::string_view tenant, const Id& run) {
  LLMSYNC_ASSIGN_OR_RETURN(ReadLease conn, Reader());
  return LoadRun(*conn, tenant, run, false);
}

Status SqliteStore::DeleteRun(std::string_view tenant, const Id& run) {
  return writer_->Run([&](Connection& conn) -> Status {
    LLMSYNC_ASSIGN_OR_RETURN(
        Stmt find, conn.Prepare("SELECT rowid FROM runs WHERE id = ? AND tenant = ? AND deleted = 0"));
    find.BindId(1, run).BindText(2, tenant);
    LLMSYNC_ASSIGN_OR_RETURN(bool found, find.Step());
    if (!found) return RunNotFound(run);
    const std::int64_t rowid = find.ColumnInt(0);
    LLMSYNC_ASSIGN_OR_RETURN(Stmt mark, conn.Prepare("UPDATE runs SET deleted = 1 WHERE rowid = ?"));
    LLMSYNC_RETURN_IF_ERROR(mark.Bind(1, rowid).Run());
    LLMSYNC_ASSIGN_OR_RETURN(Stmt events, conn.Prepare("DELETE FROM run_events WHERE run = ?"));
    return events.Bind(1, rowid).Run();
  });
}

Result<RunRecord> SqliteStore::UpdateRun(std::string_view tenant, const Id& run, const RunUpdate& update) {
  for (const RunEventDraft& e : update.events) {
    if (e.run != run || e.tenant != tenant) {
      return Status::InvalidArgument("an event of a run update names another run");
    }
  }
  RunRecord out;
  Status s = writer_->Run([&](Connection& conn) -> Status {
    LLMSYNC_ASSIGN_OR_RETURN(RunRecord r, LoadRun(conn, tenant, run, true));
    if (update.expect_status && *update.expect_status != r.status) {
      return Status::Conflict("run " + run.ToHex() + " is " + std::string(RunStatusName(r.status)) +
                              ", not " + std::string(RunStatusName(*update.expect_status)));
    }
    if (update.status) r.status = *update.status;
    if (update.result_node) r.result_node = *update.result_node;
    if (update.usage) r.usage = *update.usage;
    if (update.error) r.error = *update.error;
    r.updated_at_ms = update.now_ms;
    LLMSYNC_ASSIGN_OR_RETURN(
        Stmt stmt,
        conn.Prepare("UPDATE runs SET status = ?, result_node = ?, prompt_tokens = ?, prompt_tokens_ram = ?, "
                     "prompt_tokens_disk = ?, prompt_tokens_recomputed = ?, generated_tokens = ?, "
                     "error = ?, updated_at_ms = ? WHERE id = ?"));
    stmt.Bind(1, static_cast<std::int64_t>(r.status))
        .BindIdOrNull(2, r.result_node)
        .Bind(3, ToSql(r.usage.prompt_tokens))
        .Bind(4, ToSql(r.usage.prompt_tokens_ram))
        .Bind(5, ToSql(r.usage.prompt_tokens_disk))
        .Bind(6, ToSql(r.usage.prompt_tokens_recomputed))
        .Bind(7, ToSql(r.usage.generated_tokens))
        .BindText(8, r.error)
        .Bind(9, r.updated_at_ms)
        .BindId(10, run);
    LLMSYNC_RETURN_IF_ERROR(stmt.Run());
    if (!update.events.empty()) {
      // Asynchronous appends queued before this call were flushed by an earlier operation of this
      // writer (operations run in queue order), so last_event_id as read above already counts them.
      LLMSYNC_ASSIGN_OR_RETURN(Stmt insert,
                               conn.Prepare("INSERT INTO run_events (run, event_id, type, payload, "
                                            "created_at_ms) SELECT rowid, ?, ?, ?, ? FROM runs "
                                            "WHERE id = ?"));
      for (const RunEventDraft& e : update.events) {
        ++r.last_event_id;
        insert.Bind(1, ToSql(r.last_event_id))
            .BindText(2, e.type)
            .BindBlob(3, e.payload)
            .Bind(4, update.now_ms)
            .BindId(5, run);
        LLMSYNC_RETURN_IF_ERROR(insert.Run());
        insert.Reset();
      }
      LLMSYNC_ASSIGN_OR_RETURN(Stmt last, conn.Prepare("UPDATE runs SET last_event_id = ? WHERE id = ?"));
      LLMSYNC_RETURN_IF_ERROR(last.Bind(1, ToSql(r.last_event_id)).BindId(2, run).Run());
    }
    out = std::move(r);
    return Status::Ok();
  });
  if (!s.IsOk()) return s;
  return out;
}

Result<std::vector<RunRecord>> SqliteStore::ListRuns(const RunFilter& filter) {
  if (filter.session && !filter.tenant)
    return Status::InvalidArgument("a run filter by session needs a tenant");
  std::string sql = std::string("SELECT ") + kRunColumns + kRunFrom + " WHERE r.deleted = 0";
  if (filter.tenant) sql += " AND r.tenant = ?";
  if (filter.session) sql += " AND s.id = ?";
  if (!filter.statuses.empty()) {
    sql += " AND r.status IN (";
    for (std::size_t i = 0; i < filter.statuses.size(); ++i) sql += i == 0 ? "?" : ", ?";
    sql += ")";
  }
  sql += " ORDER BY r.created_at_ms, r.rowid LIMIT ?";
  LLMSYNC_ASSIGN_OR_RETURN(ReadLease conn, Reader());
  LLMSYNC_ASSIGN_OR_RETURN(Stmt stmt, conn->Prepare(sql));
  int index = 1;
  if (filter.tenant) stmt.BindText(index++, *filter.tenant);
  if (filter.session) stmt.BindId(index++, *filter.session);
  for (RunStatus status : filter.statuses) stmt.Bind(index++, static_cast<std::int64_t>(status));
  stmt.Bind(index, ToSql(filter.limit));
  std::vector<RunRecord> runs;
  while (true) {
    LLMSYNC_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    LLMSYNC_ASSIGN_OR_RETURN(RunRecord r, ReadRun(stmt));
    runs.push_back(std::move(r));
  }
  return runs;
}

Result<std::vector<RunEvent>> SqliteStore::ReadRunEvents(std::string_view tenant, const Id& run,
                                                         std::uint64_t after_event_id, std::size_t limit) {
  return ReadSnapshot<std::vector<RunEvent>>([&](Connection& conn) -> Result<std::vector<RunEvent>> {
    LLMSYNC_ASSIGN_OR_RETURN(
        Stmt find, conn.Prepare("SELECT rowid FROM runs WHERE id = ? AND tenant = ? AND deleted = 0"));
    find.BindId(1, run).BindText(2, tenant);
    LLMSYNC_ASSIGN_OR_RETURN(bool found, find.Step());
    if (!found) return RunNotFound(run);
    std::int64_t rowid = find.ColumnInt(0);
    LLMSYNC_ASSIGN_OR_RETURN(
        Stmt stmt,
        conn.Prepare("SELECT event_id, type, payload, created_at_ms FROM run_events WHERE run = ? AND "
                     "event_id > ? ORDER BY event_id LIMIT ?"));
    stmt.Bind(1, rowid).Bind(2, ToSql(after_event_id)).Bind(3, ToSql(limit));
    std::vector<RunEvent> events;
    while (true) {
      LLMSYNC_ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      RunEvent e;
      e.run = run;
      e.event_id = static_cast<std::uint64_t>(stmt.ColumnInt(0));
      e.type = stmt.ColumnText(1);
      e.payload = stmt.ColumnBlob(2);
      e.created_at_ms = stmt.ColumnInt(3);
      events.push_back(std::move(e));
    }
    return events;
  });
}

}  // namespace llmsync::store
