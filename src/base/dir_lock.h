// DirLock: one process per data directory. An exclusive, non-blocking flock(2) on a lock file in
// the directory (llmsync.lock), held for the life of the object; the file holds the holder's pid,
// so a second process can say who has it. The kernel drops the lock when the process dies, so a
// crash never leaves a stale lock behind (the pid in the file is only informational).
//
// flock locks belong to an open file description: a second DirLock on the same directory fails
// even within one process, which is what an embedded server opened twice needs too.
//
// Thread safety: Acquire is thread-safe; a DirLock is owned by one thread.
#pragma once

#include <memory>
#include <string>

#include "llmsync/status.h"

namespace llmsync {

class DirLock {
 public:
  // kUnavailable, naming the holder's pid, when another DirLock holds the directory.
  static Result<std::unique_ptr<DirLock>> Acquire(const std::string& dir);
  ~DirLock();
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;

  const std::string& Path() const { return path_; }

  DirLock(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}

 private:
  int fd_;
  std::string path_;
};

inline constexpr const char* kDirLockFileName = "llmsync.lock";

}  // namespace llmsync
