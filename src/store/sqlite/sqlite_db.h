// Thin RAII wrappers over the sqlite3 C API, private to the SQLite store: a Connection with a
// cache of prepared statements, and a Stmt handle that binds, steps and reads columns and resets
// itself when it goes out of scope (so an early return never leaves a statement holding a read
// snapshot open). SQLite result codes become Status values here and nowhere else.
//
// Nothing outside src/store/sqlite_*.cpp includes this header; no SQLite type leaves the store.
//
// Thread safety: a Connection (and its statements) is used by one thread at a time. Connections
// are opened with SQLITE_OPEN_NOMUTEX; the store's writer thread and reader pool provide the
// exclusion.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "llmsync/id.h"
#include "llmsync/status.h"
#include "store/records.h"

struct sqlite3;
struct sqlite3_stmt;

namespace llmsync::store {

class Connection;

// A prepared statement borrowed from a Connection's cache. Bind indexes start at 1, column
// indexes at 0. Resets and clears its bindings on destruction.
class Stmt {
 public:
  Stmt(Connection* conn, sqlite3_stmt* stmt) : conn_(conn), stmt_(stmt) {}
  ~Stmt();
  Stmt(Stmt&& other) noexcept : conn_(other.conn_), stmt_(other.stmt_) { other.stmt_ = nullptr; }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  Stmt& operator=(Stmt&&) = delete;

  Stmt& Bind(int index, std::int64_t value);
  Stmt& BindText(int index, std::string_view value);
  Stmt& BindBlob(int index, std::string_view value);
  Stmt& BindId(int index, const Id& id);
  // Binds NULL for a zero id: the encoding of "no node" (a root's parent, an empty head).
  Stmt& BindIdOrNull(int index, const Id& id);
  Stmt& BindTokens(int index, const TokenIds& tokens);
  Stmt& BindNull(int index);

  // True when a row is ready, false when done.
  Result<bool> Step();
  // Steps a statement that returns no rows.
  Status Run();
  // Makes the statement ready to be bound and stepped again.
  void Reset();

  std::int64_t ColumnInt(int column) const;
  std::string ColumnText(int column) const;
  std::string ColumnBlob(int column) const;
  bool ColumnIsNull(int column) const;
  // A 32-byte blob as an Id; NULL reads as the zero id. kDataLoss for any other size.
  Result<Id> ColumnId(int column) const;
  Result<TokenIds> ColumnTokens(int column) const;

 private:
  Connection* conn_;
  sqlite3_stmt* stmt_;
};

class Connection {
 public:
  enum class Mode { kReadWrite, kReadWriteCreate, kReadOnly };

  static Result<std::unique_ptr<Connection>> Open(const std::string& path, Mode mode, int busy_timeout_ms);
  // Takes ownership of an open handle; use Open.
  explicit Connection(sqlite3* db) : db_(db) {}
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs one or more statements without results (pragmas, DDL, BEGIN/COMMIT).
  Status Exec(std::string_view sql);
  // Runs one statement without results through the statement cache (hot paths: BEGIN, COMMIT).
  Status ExecPrepared(std::string_view sql);
  // A cached prepared statement for `sql`.
  Result<Stmt> Prepare(std::string_view sql);
  // True when no transaction is open (SQLite may roll one back by itself after I/O errors).
  bool AutoCommit() const;
  // Rows changed by the last INSERT, UPDATE or DELETE.
  std::int64_t Changes() const;
  std::int64_t LastInsertRowid() const;
  sqlite3* Handle() { return db_; }

  // The Status for the connection's last error, prefixed with `what`.
  Status LastError(std::string_view what) const;

 private:
  sqlite3* db_;
  std::unordered_map<std::string, sqlite3_stmt*> cache_;
};

// Process-wide SQLite settings, applied once before the first connection: memory statistics off
// (they take a global mutex on every allocation). Harmless when SQLite is already initialised.
void ConfigureSqliteLibrary();

// sqlite3_libversion().
std::string SqliteVersionString();

// Maps an SQLite result code to a Status code family with `message`.
Status SqliteStatus(int rc, std::string message);

}  // namespace llmsync::store
