#include "store/sqlite/sqlite_db.h"

#include <sqlite3.h>

#include <bit>
#include <cstring>

namespace llmsync::store {

static_assert(sizeof(std::int32_t) == 4);

void ConfigureSqliteLibrary() {
  static const int kConfigResult = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  (void)kConfigResult;  // SQLITE_MISUSE when another part of the process initialised SQLite first
}

std::string SqliteVersionString() { return sqlite3_libversion(); }

Status SqliteStatus(int rc, std::string message) {
  switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE: return Status::Ok();
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return Status::DataLoss(std::move(message));
    case SQLITE_FULL: return Status::ResourceExhausted(std::move(message));
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return Status::Unavailable(std::move(message));
    case SQLITE_CANTOPEN: return Status::NotFound(std::move(message));
    case SQLITE_TOOBIG:
    case SQLITE_RANGE:
    case SQLITE_MISMATCH: return Status::InvalidArgument(std::move(message));
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH: return Status::InvalidArgument(std::move(message));
    default: return Status::Internal(std::move(message));
  }
}

// ---- Stmt

Stmt::~Stmt() {
  if (stmt_ != nullptr) {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
}

Stmt& Stmt::Bind(int index, std::int64_t value) {
  sqlite3_bind_int64(stmt_, index, value);
  return *this;
}

Stmt& Stmt::BindText(int index, std::string_view value) {
  // SQLITE_TRANSIENT copies: callers' strings may die before the statement steps.
  sqlite3_bind_text64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  return *this;
}

Stmt& Stmt::BindBlob(int index, std::string_view value) {
  sqlite3_bind_blob64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT);
  return *this;
}

Stmt& Stmt::BindId(int index, const Id& id) {
  sqlite3_bind_blob(stmt_, index, id.RawBytes().data(), static_cast<int>(Id::kBytes), SQLITE_TRANSIENT);
  return *this;
}

Stmt& Stmt::BindIdOrNull(int index, const Id& id) {
  if (id.IsZero()) return BindNull(index);
  return BindId(index, id);
}

Stmt& Stmt::BindTokens(int index, const TokenIds& tokens) {
  // Stored as little-endian int32s, whatever the host order.
  std::string bytes(tokens.size() * 4, '\0');
  if constexpr (std::endian::native == std::endian::little) {
    if (!tokens.empty()) std::memcpy(bytes.data(), tokens.data(), bytes.size());
  } else {
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      std::uint32_t v = __builtin_bswap32(static_cast<std::uint32_t>(tokens[i]));
      std::memcpy(bytes.data() + 4 * i, &v, 4);
    }
  }
  return BindBlob(index, bytes);
}

Stmt& Stmt::BindNull(int index) {
  sqlite3_bind_null(stmt_, index);
  return *this;
}

Result<bool> Stmt::Step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return conn_->LastError("sqlite step");
}

Status Stmt::Run() {
  LLMSYNC_ASSIGN_OR_RETURN(bool row, Step());
  (void)row;
  return Status::Ok();
}

void Stmt::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

std::int64_t Stmt::ColumnInt(int column) const { return sqlite3_column_int64(stmt_, column); }

std::string Stmt::ColumnText(int column) const {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
  int n = sqlite3_column_bytes(stmt_, column);
  if (p == nullptr || n <= 0) return {};
  return std::string(p, static_cast<std::size_t>(n));
}

std::string Stmt::ColumnBlob(int column) const {
  const auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_, column));
  int n = sqlite3_column_bytes(stmt_, column);
  if (p == nullptr || n <= 0) return {};
  return std::string(p, static_cast<std::size_t>(n));
}

bool Stmt::ColumnIsNull(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }

Result<Id> Stmt::ColumnId(int column) const {
  if (ColumnIsNull(column)) return Id();
  const auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt_, column));
  int n = sqlite3_column_bytes(stmt_, column);
  if (p == nullptr || n != static_cast<int>(Id::kBytes)) {
    return Status::DataLoss("stored id has " + std::to_string(n) + " bytes, expected 32");
  }
  Id::Bytes bytes{};
  std::memcpy(bytes.data(), p, Id::kBytes);
  return Id(bytes);
}

Result<TokenIds> Stmt::ColumnTokens(int column) const {
  const auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt_, column));
  int n = sqlite3_column_bytes(stmt_, column);
  if (n % 4 != 0) return Status::DataLoss("stored token list has " + std::to_string(n) + " bytes");
  TokenIds tokens(static_cast<std::size_t>(n / 4));
  if (n == 0 || p == nullptr) return tokens;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    std::uint32_t v = 0;
    std::memcpy(&v, p + 4 * i, 4);
    if constexpr (std::endian::native != std::endian::little) v = __builtin_bswap32(v);
    tokens[i] = static_cast<std::int32_t>(v);
  }
  return tokens;
}

// ---- Connection

Result<std::unique_ptr<Connection>> Connection::Open(const std::string& path, Mode mode,
                                                     int busy_timeout_ms) {
  int flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_PRIVATECACHE;
  switch (mode) {
    case Mode::kReadWrite: flags |= SQLITE_OPEN_READWRITE; break;
    case Mode::kReadWriteCreate: flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE; break;
    case Mode::kReadOnly: flags |= SQLITE_OPEN_READONLY; break;
  }
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = "open database '" + path + "': " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_close_v2(db);
    return SqliteStatus(rc, std::move(msg));
  }
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, busy_timeout_ms);
  return std::make_unique<Connection>(db);
}

Connection::~Connection() {
  for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
  sqlite3_close_v2(db_);
}

Status Connection::Exec(std::string_view sql) {
  std::string text(sql);
  char* err = nullptr;
  int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &err);
  if (rc == SQLITE_OK) return Status::Ok();
  std::string msg = std::string("sqlite: ") + (err ? err : sqlite3_errstr(rc));
  sqlite3_free(err);
  return SqliteStatus(rc, std::move(msg));
}

Result<Stmt> Connection::Prepare(std::string_view sql) {
  std::string key(sql);
  auto it = cache_.find(key);
  if (it != cache_.end()) return Stmt(this, it->second);
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, key.data(), static_cast<int>(key.size()), SQLITE_PREPARE_PERSISTENT, &stmt,
                              nullptr);
  if (rc != SQLITE_OK) return LastError("prepare");
  cache_.emplace(std::move(key), stmt);
  return Stmt(this, stmt);
}

Status Connection::ExecPrepared(std::string_view sql) {
  LLMSYNC_ASSIGN_OR_RETURN(Stmt stmt, Prepare(sql));
  return stmt.Run();
}

std::int64_t Connection::Changes() const { return sqlite3_changes64(db_); }

std::int64_t Connection::LastInsertRowid() const { return sqlite3_last_insert_rowid(db_); }

bool Connection::AutoCommit() const { return sqlite3_get_autocommit(db_) != 0; }

Status Connection::LastError(std::string_view what) const {
  int rc = sqlite3_extended_errcode(db_);
  return SqliteStatus(rc, std::string(what) + ": " + sqlite3_errmsg(db_));
}

}  // namespace llmsync::store
