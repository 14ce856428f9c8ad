#include "base/fault_injection_env.h"

namespace llmsync {
namespace {

class FaultInjectionFile final : public WritableFile {
 public:
  FaultInjectionFile(FaultInjectionEnv* env, std::unique_ptr<WritableFile> base)
      : env_(env), base_(std::move(base)) {}

  Status Append(std::string_view data) override {
    LLMSYNC_RETURN_IF_ERROR(env_->TakeFault(FaultOp::kWrite));
    LLMSYNC_RETURN_IF_ERROR(env_->ChargeWrite(data.size()));
    return base_->Append(data);
  }
  Status Flush() override { return base_->Flush(); }
  Status Sync() override {
    LLMSYNC_RETURN_IF_ERROR(env_->TakeFault(FaultOp::kSync));
    env_->CountSync();
    return base_->Sync();
  }
  Status Close() override { return base_->Close(); }

 private:
  FaultInjectionEnv* env_;
  std::unique_ptr<WritableFile> base_;
};

}  // namespace

void FaultInjectionEnv::FailNext(FaultOp op, int count, Status status) {
  std::lock_guard<std::mutex> lock(mu_);
  armed_[static_cast<int>(op)] = Armed{count, std::move(status)};
}

void FaultInjectionEnv::SetWriteBudget(std::int64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  write_budget_ = bytes;
}

void FaultInjectionEnv::ClearFaults() {
  std::lock_guard<std::mutex> lock(mu_);
  for (Armed& a : armed_) a = Armed{};
  write_budget_ = -1;
}

void FaultInjectionEnv::UseManualClock(std::int64_t monotonic_micros, std::int64_t unix_millis) {
  std::lock_guard<std::mutex> lock(mu_);
  manual_clock_ = true;
  manual_micros_ = monotonic_micros;
  manual_unix_millis_ = unix_millis;
}

void FaultInjectionEnv::AdvanceMicros(std::int64_t micros) {
  std::lock_guard<std::mutex> lock(mu_);
  manual_micros_ += micros;
  manual_unix_millis_ += micros / 1000;
}

Status FaultInjectionEnv::TakeFault(FaultOp op) {
  std::lock_guard<std::mutex> lock(mu_);
  Armed& a = armed_[static_cast<int>(op)];
  if (a.remaining <= 0 || a.status.IsOk()) return Status::Ok();
  --a.remaining;
  return a.status;
}

Status FaultInjectionEnv::ChargeWrite(std::size_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  std::int64_t after = bytes_written_.load() + static_cast<std::int64_t>(bytes);
  if (write_budget_ >= 0 && after > write_budget_) {
    return Status::ResourceExhausted("injected fault: no space left on device");
  }
  bytes_written_.store(after);
  return Status::Ok();
}

Result<std::unique_ptr<WritableFile>> FaultInjectionEnv::NewWritableFile(const std::string& path,
                                                                         OpenMode mode) {
  LLMSYNC_RETURN_IF_ERROR(TakeFault(FaultOp::kOpen));
  LLMSYNC_ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> base, base_->NewWritableFile(path, mode));
  return std::unique_ptr<WritableFile>(std::make_unique<FaultInjectionFile>(this, std::move(base)));
}

Result<std::unique_ptr<MappedFile>> FaultInjectionEnv::MapReadOnly(const std::string& path) {
  LLMSYNC_RETURN_IF_ERROR(TakeFault(FaultOp::kOpen));
  return base_->MapReadOnly(path);
}

Status FaultInjectionEnv::RemoveFile(const std::string& path) {
  LLMSYNC_RETURN_IF_ERROR(TakeFault(FaultOp::kRemove));
  return base_->RemoveFile(path);
}

Status FaultInjectionEnv::RenameFile(const std::string& from, const std::string& to) {
  LLMSYNC_RETURN_IF_ERROR(TakeFault(FaultOp::kRename));
  return base_->RenameFile(from, to);
}

Status FaultInjectionEnv::SyncDir(const std::string& dir) {
  LLMSYNC_RETURN_IF_ERROR(TakeFault(FaultOp::kSync));
  CountSync();
  return base_->SyncDir(dir);
}

std::int64_t FaultInjectionEnv::NowMicros() {
  std::lock_guard<std::mutex> lock(mu_);
  return manual_clock_ ? manual_micros_ : base_->NowMicros();
}

std::int64_t FaultInjectionEnv::UnixMillis() {
  std::lock_guard<std::mutex> lock(mu_);
  return manual_clock_ ? manual_unix_millis_ : base_->UnixMillis();
}

void FaultInjectionEnv::SleepForMicros(std::int64_t micros) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (manual_clock_) {
      manual_micros_ += micros;
      manual_unix_millis_ += micros / 1000;
      return;
    }
  }
  base_->SleepForMicros(micros);
}

}  // namespace llmsync
