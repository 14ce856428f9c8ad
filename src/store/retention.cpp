#include "store/retention.h"

#include <chrono>
#include <utility>

#include "base/logging.h"

namespace llmsync::store {

RetentionJanitor::RetentionJanitor(Store* store, Env* env, RetentionPolicy policy)
    : store_(store), env_(env), policy_(std::move(policy)) {}

RetentionJanitor::~RetentionJanitor() { Stop(); }

void RetentionJanitor::Start() {
  if (thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = false;
  }
  thread_ = std::thread([this] { Loop(); });
}

void RetentionJanitor::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Result<RetentionPass> RetentionJanitor::RunOnce() {
  const std::int64_t now = env_->UnixMillis();
  RetentionPass pass;
  LLMSYNC_ASSIGN_OR_RETURN(pass.events_deleted, store_->PruneRunEvents(now - policy_.event_retention_ms));
  LLMSYNC_ASSIGN_OR_RETURN(pass.idempotency_records_deleted,
                           store_->PruneIdempotency(now - policy_.idempotency_retention_ms));
  return pass;
}

void RetentionJanitor::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    lock.unlock();
    Result<RetentionPass> pass = RunOnce();
    if (!pass.IsOk()) {
      LLMSYNC_LOG(kWarning) << "retention pass failed (retried in " << policy_.interval_ms / 1000
                            << " s): " << pass.GetStatus().ToString();
    } else if (pass->events_deleted > 0 || pass->idempotency_records_deleted > 0) {
      LLMSYNC_LOG(kInfo) << "retention: deleted " << pass->events_deleted << " events of finished runs and "
                         << pass->idempotency_records_deleted << " idempotency records";
    }
    lock.lock();
    wake_.wait_for(lock, std::chrono::milliseconds(policy_.interval_ms), [this] { return stopping_; });
  }
}

}  // namespace llmsync::store
