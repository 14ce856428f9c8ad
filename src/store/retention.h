// RetentionJanitor: deletes what the store keeps only for a while — the events of finished runs
// (after event_retention) and idempotency records (after idempotency_retention) — once at Start
// and then every `interval`, on its own thread. Run records, nodes and sessions are never touched.
//
// Thread safety: Start/Stop from one controlling thread; RunOnce from any thread (the store
// serializes the deletes with every other write).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

#include "base/env.h"
#include "store/store.h"

namespace llmsync::store {

struct RetentionPolicy {
  std::int64_t event_retention_ms = 7 * 24 * 3600 * 1000LL;
  std::int64_t idempotency_retention_ms = 24 * 3600 * 1000LL;
  std::int64_t interval_ms = 10 * 60 * 1000LL;
};

struct RetentionPass {
  std::uint64_t events_deleted = 0;
  std::uint64_t idempotency_records_deleted = 0;
};

class RetentionJanitor {
 public:
  RetentionJanitor(Store* store, Env* env, RetentionPolicy policy);
  ~RetentionJanitor();
  RetentionJanitor(const RetentionJanitor&) = delete;
  RetentionJanitor& operator=(const RetentionJanitor&) = delete;

  void Start();
  void Stop();  // idempotent; returns once the thread has exited
  // One pass now, with cutoffs from env's wall clock.
  Result<RetentionPass> RunOnce();

 private:
  void Loop();

  Store* const store_;
  Env* const env_;
  const RetentionPolicy policy_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;  // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace llmsync::store
