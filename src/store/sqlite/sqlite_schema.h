// The SQLite store's schema and its forward migrations.
//
// Migration N takes a version N-1 database to version N; they run in order, all inside one
// transaction, so a crash mid-migration leaves the old version intact. The version lives in the
// single-row table schema_version. A database whose version is newer than this binary's is
// refused, and a database with tables but no schema_version is someone else's and is refused too.
//
// Thread safety: call on a connection that no other thread uses.
#pragma once

#include "llmsync/status.h"
#include "store/sqlite/sqlite_db.h"

namespace llmsync::store {

int LatestSchemaVersion();

// Reads the version of the database behind `conn` (0 for an empty database).
Result<int> ReadSchemaVersion(Connection& conn);

// Applies the pending migrations up to `target` (0: the latest). REQUIRES: no open transaction.
Status MigrateSchema(Connection& conn, int target);

}  // namespace llmsync::store
