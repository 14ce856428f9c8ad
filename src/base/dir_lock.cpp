#include "base/dir_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace llmsync {
namespace {

std::string ReadHolder(int fd) {
  char buf[32] = {};
  ssize_t n = ::pread(fd, buf, sizeof(buf) - 1, 0);
  std::string pid(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
  while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
  return pid.empty() ? "unknown" : pid;
}

}  // namespace

Result<std::unique_ptr<DirLock>> DirLock::Acquire(const std::string& dir) {
  std::string path = dir + "/" + kDirLockFileName;
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Status::Internal("cannot open " + path + ": " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    std::string holder = err == EWOULDBLOCK ? ReadHolder(fd) : "";
    ::close(fd);
    if (err != EWOULDBLOCK) return Status::Internal("cannot lock " + path + ": " + std::strerror(err));
    return Status::Unavailable("the data directory " + dir + " is in use by another llmsync process (pid " +
                               holder + "); stop it, or give this one another --data-dir");
  }
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 ||
      ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    int err = errno;
    ::close(fd);
    return Status::Internal("cannot write " + path + ": " + std::strerror(err));
  }
  return std::make_unique<DirLock>(fd, std::move(path));
}

DirLock::~DirLock() { ::close(fd_); }  // closing the descriptor releases the lock

}  // namespace llmsync
