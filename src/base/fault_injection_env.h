// FaultInjectionEnv: an Env wrapper that fails chosen operations and runs a controllable clock.
//
// Tests use it the way LevelDB's fault_injection_test does: arm a failure ("the next 2 syncs
// fail", "writes fail once 4 KiB have been written"), run the code under test, and check that it
// reports the error and leaves its files consistent. With a manual clock, time moves only when
// the test calls AdvanceMicros, so TTLs and retention are tested without sleeping.
//
// Thread safety: all methods may be called concurrently; counters are atomic and the armed
// faults are protected by a mutex.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>

#include "base/env.h"

namespace llmsync {

enum class FaultOp { kWrite, kSync, kRename, kOpen, kRemove };

class FaultInjectionEnv final : public Env {
 public:
  explicit FaultInjectionEnv(Env* base) : base_(base) {}

  // The next `count` operations of kind `op` fail with `status` (OK-coded statuses are ignored).
  void FailNext(FaultOp op, int count, Status status);
  // Every write fails once the total bytes written through this Env would exceed `bytes`
  // (a full disk). A negative value removes the limit.
  void SetWriteBudget(std::int64_t bytes);
  void ClearFaults();

  // Switches to a manual clock starting at the given times; AdvanceMicros moves both clocks.
  void UseManualClock(std::int64_t monotonic_micros, std::int64_t unix_millis);
  void AdvanceMicros(std::int64_t micros);

  std::int64_t BytesWritten() const { return bytes_written_.load(); }
  int SyncCount() const { return syncs_.load(); }

  // Consumes an armed fault for `op`, if any (used by the wrapped files).
  Status TakeFault(FaultOp op);
  Status ChargeWrite(std::size_t bytes);
  void CountSync() { syncs_.fetch_add(1); }

  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path, OpenMode mode) override;
  Result<std::unique_ptr<MappedFile>> MapReadOnly(const std::string& path) override;
  Result<std::string> ReadFile(const std::string& path) override { return base_->ReadFile(path); }
  bool FileExists(const std::string& path) override { return base_->FileExists(path); }
  Result<std::uint64_t> FileSize(const std::string& path) override { return base_->FileSize(path); }
  Result<std::vector<std::string>> ListDir(const std::string& dir) override { return base_->ListDir(dir); }
  Status RemoveFile(const std::string& path) override;
  Status RenameFile(const std::string& from, const std::string& to) override;
  Status CreateDirs(const std::string& dir) override { return base_->CreateDirs(dir); }
  Status SyncDir(const std::string& dir) override;
  std::int64_t NowMicros() override;
  std::int64_t UnixMillis() override;
  void SleepForMicros(std::int64_t micros) override;

 private:
  struct Armed {
    int remaining = 0;
    Status status;
  };

  Env* base_;
  std::mutex mu_;
  Armed armed_[5];                       // GUARDED_BY(mu_), indexed by FaultOp
  std::int64_t write_budget_ = -1;       // GUARDED_BY(mu_)
  bool manual_clock_ = false;            // GUARDED_BY(mu_)
  std::int64_t manual_micros_ = 0;       // GUARDED_BY(mu_)
  std::int64_t manual_unix_millis_ = 0;  // GUARDED_BY(mu_)
  std::atomic<std::int64_t> bytes_written_{0};
  std::atomic<int> syncs_{0};
};

}  // namespace llmsync
