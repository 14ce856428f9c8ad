// The embedded Store: one SQLite database file in WAL mode with synchronous=FULL.
//
// Durability: a write call returns only after its transaction's WAL frames are fsynced, so
// nothing acknowledged is lost to a process crash or a power cut (docs/ARCHITECTURE.md, "Session
// and store"). Concurrent writers are served by one writer thread that commits whatever has queued
// up in one transaction (group commit), each caller's work inside its own savepoint so one
// caller's failure never undoes another's. Readers use a pool of connections and never block the
// writer.
//
// The schema is versioned (a schema_version table) and migrated forward on open; a database
// written by a newer llmsync is refused rather than misread.
//
// Thread safety: the returned Store is safe for concurrent use (see store.h).
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "base/env.h"
#include "base/metrics.h"
#include "llmsync/status.h"
#include "store/store.h"

namespace llmsync::store {

struct SqliteStoreOptions {
  std::string path;    // the database file; -wal and -shm files live beside it
  Env* env = nullptr;  // files and clocks; nullptr: Env::Default()
  bool create_if_missing = true;
  // Writes queued beyond this block the caller until the writer catches up.
  std::size_t max_pending_writes = 65536;
  // At most this many queued writes share one transaction.
  std::size_t max_group_size = 4096;
  // How long a write waits for another process holding the database's write lock.
  int busy_timeout_ms = 5000;
  // Optional: the writer's latency histograms (sqlite_writer.h).
  MetricsRegistry* metrics = nullptr;
  // Testing only: migrate no further than this schema version (0: the latest).
  int max_schema_version = 0;
};

// The schema version this binary writes.
int LatestSchemaVersion();
// The version of the linked SQLite library ("3.40.1"), for benchmark reports.
std::string SqliteLibraryVersion();

// Opens (or creates) the database, applies pending migrations and starts the writer thread.
// kNotFound when the file is missing and create_if_missing is false; kDataLoss when the file is
// not a database; kInvalidArgument when it is a database of something else; kUnimplemented when
// its schema is newer than this binary's.
Result<std::unique_ptr<Store>> OpenSqliteStore(const SqliteStoreOptions& options);

}  // namespace llmsync::store
