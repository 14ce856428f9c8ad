// The SQLite store's single writer: a thread that owns the write connection and commits queued
// write operations in groups.
//
// Callers hand in a Body (the work of one operation, run against the write connection) and a
// Done (told the outcome once it is durable). The writer takes everything queued, up to the group
// size, and runs it in one transaction: BEGIN IMMEDIATE, then each body inside its own savepoint
// (a failing body is rolled back to its savepoint and the others are unaffected), then one COMMIT,
// whose fsync all of them share. Only then are the Done callbacks told, so "OK" always means
// "durable". If SQLite aborts the whole transaction under a body (an I/O error, a full disk), that
// operation fails and the others are queued again; if COMMIT fails, every operation of the group
// gets its error. A Body may therefore run more than once, and must start from scratch each time.
//
// With a metrics registry it observes llmsync_store_write_seconds (an operation's time from Submit
// until it is durable, queueing included) and llmsync_store_commit_seconds (one group's BEGIN to
// COMMIT, the fsync included).
//
// Thread safety: Submit and Run may be called from any thread. Bodies and Done callbacks run on
// the writer thread, one at a time, in submission order. REQUIRES: a Done callback never calls
// Run (it would wait for itself); Run detects this and fails with kInternal.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "base/metrics.h"
#include "llmsync/status.h"
#include "store/sqlite/sqlite_db.h"

namespace llmsync::store {

class SqliteWriter {
 public:
  using Body = std::function<Status(Connection&)>;
  using Done = std::function<void(const Status&)>;

  SqliteWriter(std::unique_ptr<Connection> conn, std::size_t max_pending, std::size_t max_group,
               MetricsRegistry* metrics = nullptr);
  // Finishes every queued operation, then stops the thread.
  ~SqliteWriter();
  SqliteWriter(const SqliteWriter&) = delete;
  SqliteWriter& operator=(const SqliteWriter&) = delete;

  // Queues an operation; blocks while max_pending operations are already queued (except on the
  // writer thread itself, which never waits).
  void Submit(Body body, Done done);
  // Queues an operation and waits until it is durable or has failed.
  Status Run(Body body);
  bool OnWriterThread() const { return std::this_thread::get_id() == thread_.get_id(); }

 private:
  struct Op {
    Body body;
    Done done;
    std::chrono::steady_clock::time_point queued;
  };

  void Loop();
  void CommitGroup(std::vector<Op>& group);
  // Runs one body inside a savepoint. Sets *aborted when SQLite rolled back the transaction.
  Status RunInSavepoint(Op& op, bool* aborted);

  std::unique_ptr<Connection> conn_;  // used only by the writer thread
  const std::size_t max_pending_;
  const std::size_t max_group_;
  Histogram* write_seconds_ = nullptr;   // optional
  Histogram* commit_seconds_ = nullptr;  // optional
  std::mutex mu_;
  std::condition_variable has_work_;
  std::condition_variable has_room_;
  std::deque<Op> queue_;   // GUARDED_BY(mu_)
  bool stopping_ = false;  // GUARDED_BY(mu_)
  std::thread thread_;     // started last, in the constructor
};

}  // namespace llmsync::store
