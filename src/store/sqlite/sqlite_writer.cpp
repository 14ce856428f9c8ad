#include "store/sqlite/sqlite_writer.h"

#include <future>
#include <utility>

namespace llmsync::store {

namespace {

double SecondsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

SqliteWriter::SqliteWriter(std::unique_ptr<Connection> conn, std::size_t max_pending, std::size_t max_group,
                           MetricsRegistry* metrics)
    : conn_(std::move(conn)),
      max_pending_(max_pending == 0 ? 1 : max_pending),
      max_group_(max_group == 0 ? 1 : max_group) {
  if (metrics != nullptr) {
    write_seconds_ =
        metrics->GetHistogram("llmsync_store_write_seconds",
                              "Store write operations: submit to durable (or failed)", kLatencyBuckets);
    commit_seconds_ =
        metrics->GetHistogram("llmsync_store_commit_seconds",
                              "Store group commits: BEGIN to COMMIT, fsync included", kLatencyBuckets);
  }
  thread_ = std::thread([this] { Loop(); });
}

SqliteWriter::~SqliteWriter() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  has_work_.notify_all();
  has_room_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void SqliteWriter::Submit(Body body, Done done) {
  bool writer = OnWriterThread();
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (!writer) has_room_.wait(lock, [this] { return queue_.size() < max_pending_ || stopping_; });
    queue_.push_back(Op{std::move(body), std::move(done), std::chrono::steady_clock::now()});
  }
  has_work_.notify_one();
}

Status SqliteWriter::Run(Body body) {
  if (OnWriterThread()) {
    return Status::Internal("a blocking store write was called from the store's writer thread");
  }
  std::promise<Status> promise;
  std::future<Status> future = promise.get_future();
  Submit(std::move(body), [&promise](const Status& s) { promise.set_value(s); });
  return future.get();
}

void SqliteWriter::Loop() {
  std::vector<Op> group;
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      has_work_.wait(lock, [this] { return !queue_.empty() || stopping_; });
      if (queue_.empty()) return;  // stopping, and everything queued is done
      while (!queue_.empty() && group.size() < max_group_) {
        group.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    has_room_.notify_all();
    CommitGroup(group);
    group.clear();
  }
}

Status SqliteWriter::RunInSavepoint(Op& op, bool* aborted) {
  *aborted = false;
  Status s = conn_->ExecPrepared("SAVEPOINT op");
  if (s.IsOk()) s = op.body(*conn_);
  if (conn_->AutoCommit()) {
    // SQLite rolled the whole transaction back (I/O error, full disk, out of memory).
    *aborted = true;
    return s.IsOk() ? Status::Internal("the store transaction was rolled back") : s;
  }
  if (s.IsOk()) s = conn_->ExecPrepared("RELEASE op");
  if (!s.IsOk()) {
    Status undo = conn_->ExecPrepared("ROLLBACK TO op");
    if (undo.IsOk()) undo = conn_->ExecPrepared("RELEASE op");
    if (!undo.IsOk() || conn_->AutoCommit()) *aborted = true;
  }
  return s;
}

void SqliteWriter::CommitGroup(std::vector<Op>& group) {
  const auto begin_time = std::chrono::steady_clock::now();
  std::vector<Status> results(group.size());
  Status begin = conn_->ExecPrepared("BEGIN IMMEDIATE");
  if (!begin.IsOk()) {
    for (Op& op : group) op.done(begin);
    return;
  }
  std::size_t ran = 0;
  bool aborted = false;
  for (; ran < group.size(); ++ran) {
    results[ran] = RunInSavepoint(group[ran], &aborted);
    if (aborted) break;
  }
  if (aborted) {
    // Nothing of this group persisted. The operation that broke the transaction fails; the
    // others go back to the front of the queue, in order, to be tried in a fresh transaction.
    if (!conn_->AutoCommit()) (void)conn_->Exec("ROLLBACK");
    group[ran].done(results[ran]);
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (std::size_t i = group.size(); i-- > 0;) {
        if (i != ran) queue_.push_front(std::move(group[i]));
      }
    }
    return;
  }
  Status commit = conn_->ExecPrepared("COMMIT");
  if (!commit.IsOk()) {
    if (!conn_->AutoCommit()) (void)conn_->Exec("ROLLBACK");
    for (Status& r : results) {
      if (r.IsOk()) r = commit.WithContext("commit");
    }
  }
  if (commit_seconds_ != nullptr) commit_seconds_->Observe(SecondsSince(begin_time));
  for (std::size_t i = 0; i < group.size(); ++i) {
    if (write_seconds_ != nullptr) write_seconds_->Observe(SecondsSince(group[i].queued));
    group[i].done(results[i]);
  }
}

}  // namespace llmsync::store
