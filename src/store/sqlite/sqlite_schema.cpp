#include "store/sqlite/sqlite_schema.h"

#include <array>
#include <string>

namespace llmsync::store {

namespace {

// Ids are 32-byte blobs; a NULL id column means "none" (a root's parent, an empty head).
// Sessions and runs have an integer rowid that child tables reference, so their rows stay small.
constexpr const char* kMigration1 = R"sql(
CREATE TABLE sessions (
  rowid         INTEGER PRIMARY KEY,
  id            BLOB    NOT NULL UNIQUE,
  tenant        TEXT    NOT NULL,
  model         BLOB    NOT NULL,
  created_at_ms INTEGER NOT NULL,
  head          BLOB,
  head_seq      INTEGER NOT NULL DEFAULT 0,
  last_seq      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX sessions_by_tenant ON sessions (tenant, created_at_ms);

CREATE TABLE nodes (
  session       INTEGER NOT NULL REFERENCES sessions (rowid) ON DELETE CASCADE,
  id            BLOB    NOT NULL,
  parent        BLOB,
  seq           INTEGER NOT NULL,
  depth         INTEGER NOT NULL,
  kind          INTEGER NOT NULL,
  hidden        INTEGER NOT NULL,
  purged        INTEGER NOT NULL DEFAULT 0,
  text          TEXT    NOT NULL,
  tokens        BLOB    NOT NULL,
  token_count   INTEGER NOT NULL,
  tool_name     TEXT    NOT NULL,
  call_id       TEXT    NOT NULL,
  sealed        BLOB,
  created_at_ms INTEGER NOT NULL,
  UNIQUE (session, id),
  UNIQUE (session, seq),
  FOREIGN KEY (session, parent) REFERENCES nodes (session, id)
);
CREATE INDEX nodes_by_parent ON nodes (session, parent);
CREATE INDEX nodes_purgeable ON nodes (created_at_ms) WHERE hidden = 1 AND purged = 0 AND sealed IS NOT NULL;

CREATE TABLE idempotency (
  session        INTEGER NOT NULL REFERENCES sessions (rowid) ON DELETE CASCADE,
  key            TEXT    NOT NULL,
  request_digest BLOB    NOT NULL,
  outcome        BLOB    NOT NULL,
  created_at_ms  INTEGER NOT NULL,
  PRIMARY KEY (session, key)
) WITHOUT ROWID;
CREATE INDEX idempotency_by_age ON idempotency (created_at_ms);
)sql";

constexpr const char* kMigration2 = R"sql(
CREATE TABLE runs (
  rowid                    INTEGER PRIMARY KEY,
  id                       BLOB    NOT NULL UNIQUE,
  tenant                   TEXT    NOT NULL,
  session                  INTEGER NOT NULL REFERENCES sessions (rowid) ON DELETE CASCADE,
  from_node                BLOB,
  status                   INTEGER NOT NULL,
  params                   BLOB    NOT NULL,
  result_node              BLOB,
  prompt_tokens            INTEGER NOT NULL DEFAULT 0,
  prompt_tokens_ram        INTEGER NOT NULL DEFAULT 0,
  prompt_tokens_disk       INTEGER NOT NULL DEFAULT 0,
  prompt_tokens_recomputed INTEGER NOT NULL DEFAULT 0,
  generated_tokens         INTEGER NOT NULL DEFAULT 0,
  error                    TEXT    NOT NULL DEFAULT '',
  created_at_ms            INTEGER NOT NULL,
  updated_at_ms            INTEGER NOT NULL,
  last_event_id            INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX runs_by_session ON runs (session, created_at_ms);
CREATE INDEX runs_by_status ON runs (status, created_at_ms);

CREATE TABLE run_events (
  run           INTEGER NOT NULL REFERENCES runs (rowid) ON DELETE CASCADE,
  event_id      INTEGER NOT NULL,
  type          TEXT    NOT NULL,
  payload       BLOB    NOT NULL,
  created_at_ms INTEGER NOT NULL,
  PRIMARY KEY (run, event_id)
) WITHOUT ROWID;
)sql";

// Deleted runs (DELETE /v1/responses/{id}) keep their row, so that the id is never reused and a
// late event append for them finds the run, but no read returns them.
constexpr const char* kMigration3 = R"sql(
ALTER TABLE runs ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
)sql";

// Session metadata (a client's JSON object, e.g. the web page's title): '' when never set.
constexpr const char* kMigration4 = R"sql(
ALTER TABLE sessions ADD COLUMN metadata TEXT NOT NULL DEFAULT '';
)sql";

constexpr std::array<const char*, 4> kMigrations = {kMigration1, kMigration2, kMigration3, kMigration4};

Result<bool> TableExists(Connection& conn, const char* name) {
  LLMSYNC_ASSIGN_OR_RETURN(Stmt stmt,
                           conn.Prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"));
  stmt.BindText(1, name);
  return stmt.Step();
}

Result<bool> HasAnyTable(Connection& conn) {
  LLMSYNC_ASSIGN_OR_RETURN(Stmt stmt,
                           conn.Prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' LIMIT 1"));
  return stmt.Step();
}

Status MigrateLocked(Connection& conn, int target) {
  LLMSYNC_ASSIGN_OR_RETURN(int version, ReadSchemaVersion(conn));
  if (version > LatestSchemaVersion()) {
    return Status::Unimplemented("database schema version " + std::to_string(version) +
                                 " is newer than this llmsync (" + std::to_string(LatestSchemaVersion()) +
                                 "); upgrade llmsync");
  }
  if (version == 0) {
    LLMSYNC_RETURN_IF_ERROR(conn.Exec("CREATE TABLE schema_version (version INTEGER NOT NULL)"));
    LLMSYNC_RETURN_IF_ERROR(conn.Exec("INSERT INTO schema_version (version) VALUES (0)"));
  }
  for (int next = version + 1; next <= target; ++next) {
    Status s = conn.Exec(kMigrations[static_cast<std::size_t>(next - 1)]);
    if (!s.IsOk()) return s.WithContext("schema migration " + std::to_string(next));
  }
  if (target > version) {
    LLMSYNC_ASSIGN_OR_RETURN(Stmt stmt, conn.Prepare("UPDATE schema_version SET version = ?"));
    LLMSYNC_RETURN_IF_ERROR(stmt.Bind(1, target).Run());
  }
  return Status::Ok();
}

}  // namespace

int LatestSchemaVersion() { return static_cast<int>(kMigrations.size()); }

Result<int> ReadSchemaVersion(Connection& conn) {
  LLMSYNC_ASSIGN_OR_RETURN(bool has_version, TableExists(conn, "schema_version"));
  if (!has_version) {
    LLMSYNC_ASSIGN_OR_RETURN(bool other_tables, HasAnyTable(conn));
    if (other_tables)
      return Status::InvalidArgument("the file is an SQLite database but not an llmsync store");
    return 0;
  }
  LLMSYNC_ASSIGN_OR_RETURN(Stmt stmt, conn.Prepare("SELECT version FROM schema_version"));
  LLMSYNC_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return Status::DataLoss("schema_version table is empty");
  std::int64_t version = stmt.ColumnInt(0);
  if (version < 0 || version > 1000000) {
    return Status::DataLoss("schema version " + std::to_string(version) + " is out of range");
  }
  return static_cast<int>(version);
}

Status MigrateSchema(Connection& conn, int target) {
  if (target <= 0 || target > LatestSchemaVersion()) target = LatestSchemaVersion();
  // Nothing to do is the common case (every open after the first): check without taking the
  // write lock, so opening a database that a server is busy writing does not wait for it.
  Result<int> current = ReadSchemaVersion(conn);
  if (current.IsOk() && *current >= target && *current <= LatestSchemaVersion()) return Status::Ok();
  // IMMEDIATE: two processes opening a fresh file at once must not both migrate it.
  LLMSYNC_RETURN_IF_ERROR(conn.Exec("BEGIN IMMEDIATE"));
  Status s = MigrateLocked(conn, target);
  if (s.IsOk()) s = conn.Exec("COMMIT");
  if (!s.IsOk() && !conn.AutoCommit()) (void)conn.Exec("ROLLBACK");
  return s;
}

}  // namespace llmsync::store
