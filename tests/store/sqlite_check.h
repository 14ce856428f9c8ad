// Runs a checking PRAGMA (integrity_check, foreign_key_check) on an SQLite file through its own
// connection and returns what it printed, rows concatenated: "ok" for a sound integrity check, ""
// for no foreign-key violations, "cannot open" when the file does not open.
//
// Thread safety: test helper; opens and closes its own connection.
#pragma once

#include <sqlite3.h>

#include <string>

namespace llmsync::testing {

inline std::string SqliteCheck(const std::string& path, const char* pragma) {
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) {
    sqlite3_close(db);
    return "cannot open";
  }
  std::string out;
  sqlite3_exec(
      db, pragma,
      [](void* acc, int n, char** values, char**) {
        for (int i = 0; i < n; ++i) *static_cast<std::string*>(acc) += values[i] ? values[i] : "NULL";
        return 0;
      },
      &out, nullptr);
  sqlite3_close(db);
  return out;
}

}  // namespace llmsync::testing
