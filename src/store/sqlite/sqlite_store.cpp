// SqliteStore: opening, the reader pool, sessions and the node reads.
#include <algorithm>
#include <limits>
#include <utility>

#include "store/sqlite/sqlite_schema.h"
#include "store/sqlite/sqlite_store_impl.h"

namespace llmsync::store {

namespace {

constexpr std::size_t kMaxIdleReaders = 8;

constexpr const char* kSessionColumns =
    "id, tenant, model, created_at_ms, head, head_seq, last_seq, metadata";

std::int64_t SqlLimit(std::size_t limit) {
  return static_cast<std::int64_t>(
      std::min<std::size_t>(limit, std::numeric_limits<std::int64_t>::max() - 1));
}

// Reads the kSessionColumns of the current row, starting at column `first`.
Result<SessionRecord> ReadSession(const Stmt& stmt, int first = 0) {
  SessionRecord s;
  LLMSYNC_ASSIGN_OR_RETURN(s.id, stmt.ColumnId(first));
  s.tenant = stmt.ColumnText(first + 1);
  LLMSYNC_ASSIGN_OR_RETURN(s.model, stmt.ColumnId(first + 2));
  s.created_at_ms = stmt.ColumnInt(first + 3);
  LLMSYNC_ASSIGN_OR_RETURN(s.head, stmt.ColumnId(first + 4));
  s.head_seq = static_cast<std::uint64_t>(stmt.ColumnInt(first + 5));
  s.last_seq = static_cast<std::uint64_t>(stmt.ColumnInt(first + 6));
  s.metadata = stmt.ColumnText(first + 7);
  return s;
}

// Applies the pragmas every connection needs. Durability: WAL with synchronous=FULL fsyncs the
// WAL at every commit (see docs/ARCHITECTURE.md, "Session and store").
Status ConfigureConnection(Connection& conn, bool writer) {
  LLMSYNC_RETURN_IF_ERROR(conn.Exec("PRAGMA foreign_keys = ON"));
  LLMSYNC_RETURN_IF_ERROR(conn.Exec("PRAGMA synchronous = FULL"));
  LLMSYNC_RETURN_IF_ERROR(conn.Exec("PRAGMA temp_store = MEMORY"));
  LLMSYNC_RETURN_IF_ERROR(conn.Exec("PRAGMA cache_size = -16384"));
  if (!writer) return conn.Exec("PRAGMA query_only = ON");
  LLMSYNC_ASSIGN_OR_RETURN(Stmt wal, conn.Prepare("PRAGMA journal_mode = WAL"));
  LLMSYNC_ASSIGN_OR_RETURN(bool row, wal.Step());
  std::string mode = row ? wal.ColumnText(0) : "";
  if (mode != "wal")
    return Status::Internal("could not switch the database to WAL mode (got '" + mode + "')");
  return conn.Exec("PRAGMA journal_size_limit = 67108864");
}

}  // namespace

std::string SqliteLibraryVersion() { return SqliteVersionString(); }

Status SessionNotFound(const Id& session) {
  return Status::NotFound("session " + session.ToHex() + " not found");
}

Result<std::int64_t> FindSessionRowid(Connection& conn, std::string_view tenant, const Id& session) {
  LLMSYNC_ASSIGN_OR_RETURN(Stmt stmt, conn.Prepare("SELECT rowid FROM sessions WHERE id = ? AND tenant = ?"));
  stmt.BindId(1, session).BindText(2, tenant);
  LLMSYNC_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return SessionNotFound(session);
  return stmt.ColumnInt(0);
}

Result<NodeRecord> ReadNode(const Stmt& stmt, int first) {
  NodeRecord n;
  LLMSYNC_ASSIGN_OR_RETURN(n.id, stmt.ColumnId(first));
  LLMSYNC_ASSIGN_OR_RETURN(n.parent, stmt.ColumnId(first + 1));
  n.seq = static_cast<std::uint64_t>(stmt.ColumnInt(first + 2));
  std::int64_t depth = stmt.ColumnInt(first + 3);
  std::int64_t kind = stmt.ColumnInt(first + 4);
  std::int64_t token_count = stmt.ColumnInt(first + 9);
  if (depth < 1 || depth > std::numeric_limits<std::uint32_t>::max() || kind < 0 || kind > 255 ||
      token_count < 0 || token_count > std::numeric_limits<std::uint32_t>::max()) {
    return Status::DataLoss("node " + n.id.ToHex() + " has an out-of-range depth, kind or token count");
  }
  n.depth = static_cast<std::uint32_t>(depth);
  n.kind = static_cast<std::uint8_t>(kind);
  n.hidden = stmt.ColumnInt(first + 5) != 0;
  n.purged = stmt.ColumnInt(first + 6) != 0;
  n.text = stmt.ColumnText(first + 7);
  LLMSYNC_ASSIGN_OR_RETURN(n.tokens, stmt.ColumnTokens(first + 8));
  n.token_count = static_cast<std::uint32_t>(token_count);
  n.tool_name = stmt.ColumnText(first + 10);
  n.call_id = stmt.ColumnText(first + 11);
  n.sealed = stmt.ColumnBlob(first + 12);
  n.created_at_ms = stmt.ColumnInt(first + 13);
  return n;
}

Result<std::unique_ptr<Store>> OpenSqliteStore(const SqliteStoreOptions& options) {
  ConfigureSqliteLibrary();
  SqliteStoreOptions opts = options;
  if (opts.env == nullptr) opts.env = Env::Default();
  if (opts.path.empty()) return Status::InvalidArgument("the store path is empty");
  bool existed = opts.env->FileExists(opts.path);
  if (!existed && !opts.create_if_missing)
    return Status::NotFound("database '" + opts.path + "' does not exist");
  if (!existed) LLMSYNC_RETURN_IF_ERROR(opts.env->CreateDirs(DirName(opts.path)));

  auto mode = opts.create_if_missing ? Connection::Mode::kReadWriteCreate : Connection::Mode::kReadWrite;
  LLMSYNC_ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn,
                           Connection::Open(opts.path, mode, opts.busy_timeout_ms));
  Status s = ConfigureConnection(*conn, /*writer=*/true);
  if (s.IsOk()) s = MigrateSchema(*conn, opts.max_schema_version);
  if (!s.IsOk()) return s.WithContext("open store '" + opts.path + "'");
  // SQLite syncs the directory for a new WAL file but not for a new database file.
  if (!existed) LLMSYNC_RETURN_IF_ERROR(opts.env->SyncDir(DirName(opts.path)));
  return std::unique_ptr<Store>(std::make_unique<SqliteStore>(std::move(opts), std::move(conn)));
}

SqliteStore::SqliteStore(SqliteStoreOptions options, std::unique_ptr<Connection> writer_conn)
    : options_(std::move(options)),
      env_(options_.env),
      writer_(std::make_unique<SqliteWriter>(std::move(writer_conn), options_.max_pending_writes,
                                             options_.max_group_size, options_.metrics)) {}

SqliteStore::ReadLease::~ReadLease() {
  if (conn_ == nullptr) return;
  std::lock_guard<std::mutex> lock(store_->readers_mu_);
  if (store_->idle_readers_.size() < kMaxIdleReaders) store_->idle_readers_.push_back(std::move(conn_));
}

Result<SqliteStore::ReadLease> SqliteStore::Reader() {
  {
    std::lock_guard<std::mutex> lock(readers_mu_);
    if (!idle_readers_.empty()) {
      std::unique_ptr<Connection> conn = std::move(idle_readers_.back());
      idle_readers_.pop_back();
      return ReadLease(this, std::move(conn));
    }
  }
  LLMSYNC_ASSIGN_OR_RETURN(
      std::unique_ptr<Connection> conn,
      Connection::Open(options_.path, Connection::Mode::kReadWrite, options_.busy_timeout_ms));
  LLMSYNC_RETURN_IF_ERROR(ConfigureConnection(*conn, /*writer=*/false));
  return ReadLease(this, std::move(conn));
}

// ---- Sessions

Status SqliteStore::CreateSession(const SessionRecord& session) {
  return writer_->Run([&session](Connection& conn) -> Status {
    LLMSYNC_ASSIGN_OR_RETURN(Stmt exists, conn.Prepare("SELECT 1 FROM sessions WHERE id = ?"));
    exists.BindId(1, session.id);
    LLMSYNC_ASSIGN_OR_RETURN(bool taken, exists.Step());
    if (taken) return Status::AlreadyExists("session " + session.id.ToHex() + " already exists");
    LLMSYNC_ASSIGN_OR_RETURN(
        Stmt insert,
        conn.Prepare("INSERT INTO sessions (id, tenant, model, created_at_ms) VALUES (?, ?, ?, ?)"));
    insert.BindId(1, session.id)
        .BindText(2, session.tenant)
        .BindId(3, session.model)
        .Bind(4, session.created_at_ms);
    return insert.Run();
  });
}

Result<SessionRecord> SqliteStore::GetSession(std::string_view tenant, const Id& session) {
  LLMSYNC_ASSIGN_OR_RETURN(ReadLease conn, Reader());
  LLMSYNC_ASSIGN_OR_RETURN(Stmt stmt, conn->Prepare(std::string("SELECT ") + kSessionColumns +
                                                    " FROM sessions WHERE id = ? AND tenant = ?"));
  stmt.BindId(1, session).BindText(2, tenant);
  LLMSYNC_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return SessionNotFound(session);
  return ReadSession(stmt);
}

Result<std::vector<SessionRecord>> SqliteStore::ListSessions(std::string_view tenant, std::size_t limit) {
  LLMSYNC_ASSIGN_OR_RETURN(ReadLease conn, Reader());
  LLMSYNC_ASSIGN_OR_RETURN(Stmt stmt, conn->Prepare(std::string("SELECT ") + kSessionColumns +
                                                    " FROM sessions WHERE tenant = ? "
                                                    "ORDER BY created_at_ms DESC, rowid DESC LIMIT ?"));
  stmt.BindText(1, tenant).Bind(2, SqlLimit(limit));
  std::vector<SessionRecord> out;
  while (true) {
    LLMSYNC_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    LLMSYNC_ASSIGN_OR_RETURN(SessionRecord s, ReadSession(stmt));
    out.push_back(std::move(s));
  }
  return out;
}

Result<SessionRecord> SqliteStore::SetSessionMetadata(std::string_view tenant, const Id& session,
                                                      std::string_view metadata) {
  if (metadata.size() > kMaxSessionMetadataBytes) {
    return Status::InvalidArgument("session metadata of " + std::to_string(metadata.size()) +
                                   " bytes exceeds the limit of " + std::to_string(kMaxSessionMetadataBytes));
  }
  LLMSYNC_RETURN_IF_ERROR(writer_->Run([&](Connection& conn) -> Status {
    LLMSYNC_ASSIGN_OR_RETURN(std::int64_t rowid, FindSessionRowid(conn, tenant, session));
    LLMSYNC_ASSIGN_OR_RETURN(Stmt update, conn.Prepare("UPDATE sessions SET metadata = ? WHERE rowid = ?"));
    return update.BindText(1, metadata).Bind(2, rowid).Run();
  }));
  return GetSession(tenant, session);
}

Status SqliteStore::DeleteSession(std::string_view tenant, const Id& session) {
  return writer_->Run([&](Connection& conn) -> Status {
    LLMSYNC_ASSIGN_OR_RETURN(std::int64_t rowid, FindSessionRowid(conn, tenant, session));
    LLMSYNC_ASSIGN_OR_RETURN(Stmt del, conn.Prepare("DELETE FROM sessions WHERE rowid = ?"));
    return del.Bind(1, rowid).Run();
  });
}

Result<SessionRecord> SqliteStore::AdminFindSession(const Id& session) {
  LLMSYNC_ASSIGN_OR_RETURN(ReadLease conn, Reader());
  LLMSYNC_ASSIGN_OR_RETURN(
      Stmt stmt, conn->Prepare(std::string("SELECT ") + kSessionColumns + " FROM sessions WHERE id = ?"));
  stmt.BindId(1, session);
  LLMSYNC_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return SessionNotFound(session);
  return ReadSession(stmt);
}

// ---- Node reads

Result<NodeRecord> SqliteStore::GetNode(std::string_view tenant, const Id& session, const Id& node) {
  return ReadSnapshot<NodeRecord>([&](Connection& conn) -> Result<NodeRecord> {
    LLMSYNC_ASSIGN_OR_RETURN(std::int64_t rowid, FindSessionRowid(conn, tenant, session));
    LLMSYNC_ASSIGN_OR_RETURN(Stmt stmt, conn.Prepare(std::string("SELECT ") + kNodeColumns +
                                                     " FROM nodes WHERE session = ? AND id = ?"));
    stmt.Bind(1, rowid).BindId(2, node);
    LLMSYNC_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return Status::NotFound("node " + node.ToHex() + " is not in session " + session.ToHex());
    return ReadNode(stmt, 0);
  });
}

Result<std::vector<NodeRecord>> SqliteStore::GetPath(std::string_view tenant, const Id& session,
                                                     const Id& node) {
  return ReadSnapshot<std::vector<NodeRecord>>([&](Connection& conn) -> Result<std::vector<NodeRecord>> {
    LLMSYNC_ASSIGN_OR_RETURN(std::int64_t rowid, FindSessionRowid(conn, tenant, session));
    // Walks parent links upwards over (rowid, parent, depth) only, then reads the full rows by
    // rowid: the recursion's queue stays small. Requiring the depth to drop by one at every step
    // makes the walk finite even over a corrupt file; the checks below catch a broken chain.
    static const std::string kSql =
        "WITH RECURSIVE path(rid, parent, depth) AS (SELECT rowid, parent, depth FROM nodes WHERE session = "
        "?1 "
        "AND id = ?2 UNION ALL SELECT n.rowid, n.parent, n.depth FROM nodes n JOIN path p ON n.session = ?1 "
        "AND "
        "n.id = p.parent AND n.depth = p.depth - 1) SELECT n.id, n.parent, n.seq, n.depth, n.kind, n.hidden, "
        "n.purged, n.text, n.tokens, n.token_count, n.tool_name, n.call_id, n.sealed, n.created_at_ms "
        "FROM path p JOIN nodes n ON n.rowid = p.rid";
    LLMSYNC_ASSIGN_OR_RETURN(Stmt stmt, conn.Prepare(kSql));
    stmt.Bind(1, rowid).BindId(2, node);
    std::vector<NodeRecord> path;
    while (true) {
      LLMSYNC_ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      LLMSYNC_ASSIGN_OR_RETURN(NodeRecord n, ReadNode(stmt, 0));
      path.push_back(std::move(n));
    }
    if (path.empty())
      return Status::NotFound("node " + node.ToHex() + " is not in session " + session.ToHex());
    std::sort(path.begin(), path.end(),
              [](const NodeRecord& a, const NodeRecord& b) { return a.depth < b.depth; });
    bool intact = path.back().id == node && path.front().parent.IsZero() && path.size() == path.back().depth;
    for (std::size_t i = 1; intact && i < path.size(); ++i) intact = path[i].parent == path[i - 1].id;
    if (!intact) return Status::DataLoss("the path to node " + node.ToHex() + " is broken");
    return path;
  });
}

Result<SessionChanges> SqliteStore::ChangesSince(std::string_view tenant, const Id& session,
                                                 std::uint64_t since_seq, std::size_t limit) {
  return ReadSnapshot<SessionChanges>([&](Connection& conn) -> Result<SessionChanges> {
    SessionChanges changes;
    LLMSYNC_ASSIGN_OR_RETURN(Stmt get, conn.Prepare(std::string("SELECT rowid, ") + kSessionColumns +
                                                    " FROM sessions WHERE id = ? AND tenant = ?"));
    get.BindId(1, session).BindText(2, tenant);
    LLMSYNC_ASSIGN_OR_RETURN(bool found, get.Step());
    if (!found) return SessionNotFound(session);
    std::int64_t rowid = get.ColumnInt(0);
    LLMSYNC_ASSIGN_OR_RETURN(changes.session, ReadSession(get, 1));
    if (since_seq > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return changes;
    LLMSYNC_ASSIGN_OR_RETURN(Stmt stmt,
                             conn.Prepare(std::string("SELECT ") + kNodeColumns +
                                          " FROM nodes WHERE session = ? AND seq > ? ORDER BY seq LIMIT ?"));
    stmt.Bind(1, rowid).Bind(2, static_cast<std::int64_t>(since_seq)).Bind(3, SqlLimit(limit) + 1);
    while (true) {
      LLMSYNC_ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      if (changes.nodes.size() == limit) {
        changes.more = true;
        break;
      }
      LLMSYNC_ASSIGN_OR_RETURN(NodeRecord n, ReadNode(stmt, 0));
      changes.nodes.push_back(std::move(n));
    }
    return changes;
  });
}

Result<std::vector<BranchTip>> SqliteStore::ListBranchTips(std::string_view tenant, const Id& session,
                                                           std::size_t limit) {
  return ReadSnapshot<std::vector<BranchTip>>([&](Connection& conn) -> Result<std::vector<BranchTip>> {
    LLMSYNC_ASSIGN_OR_RETURN(std::int64_t rowid, FindSessionRowid(conn, tenant, session));
    LLMSYNC_ASSIGN_OR_RETURN(
        Stmt stmt,
        conn.Prepare("SELECT n.id, n.seq, n.depth, n.created_at_ms FROM nodes n WHERE n.session = ?1 AND "
                     "NOT EXISTS (SELECT 1 FROM nodes c WHERE c.session = ?1 AND c.parent = n.id) "
                     "ORDER BY n.seq LIMIT ?2"));
    stmt.Bind(1, rowid).Bind(2, SqlLimit(limit));
    std::vector<BranchTip> tips;
    while (true) {
      LLMSYNC_ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      BranchTip tip;
      LLMSYNC_ASSIGN_OR_RETURN(tip.id, stmt.ColumnId(0));
      tip.seq = static_cast<std::uint64_t>(stmt.ColumnInt(1));
      tip.depth = static_cast<std::uint32_t>(stmt.ColumnInt(2));
      tip.created_at_ms = stmt.ColumnInt(3);
      tips.push_back(tip);
    }
    return tips;
  });
}

}  // namespace llmsync::store
