// Env: the seam between llmsync and the operating system's files and clocks.
//
// Everything that touches the disk or reads the time goes through an Env, so tests can substitute
// one that fails a write, a sync or a rename on demand (see fault_injection_env.h) or that moves a
// fake clock. Env::Default() is the POSIX implementation.
//
// Thread safety: Env implementations are safe for concurrent use. A WritableFile or MappedFile
// object is used by one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "llmsync/status.h"

namespace llmsync {

class WritableFile {
 public:
  virtual ~WritableFile() = default;
  virtual Status Append(std::string_view data) = 0;
  // Hands buffered bytes to the OS; they survive a process crash but not a power cut.
  virtual Status Flush() = 0;
  // Makes everything appended durable (fdatasync).
  virtual Status Sync() = 0;
  virtual Status Close() = 0;
};

// A read-only memory map of a whole file. The bytes stay valid while the object lives.
class MappedFile {
 public:
  virtual ~MappedFile() = default;
  virtual std::span<const std::uint8_t> Bytes() const = 0;
};

enum class OpenMode { kTruncate, kAppend };

class Env {
 public:
  virtual ~Env() = default;

  // The process-wide POSIX Env. Never destroyed.
  static Env* Default();

  virtual Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path, OpenMode mode) = 0;
  virtual Result<std::unique_ptr<MappedFile>> MapReadOnly(const std::string& path) = 0;
  virtual Result<std::string> ReadFile(const std::string& path) = 0;
  virtual bool FileExists(const std::string& path) = 0;
  virtual Result<std::uint64_t> FileSize(const std::string& path) = 0;
  // Names (not paths) of the entries of a directory, without "." and "..".
  virtual Result<std::vector<std::string>> ListDir(const std::string& dir) = 0;
  virtual Status RemoveFile(const std::string& path) = 0;
  // Atomically replaces `to` with `from`.
  virtual Status RenameFile(const std::string& from, const std::string& to) = 0;
  // Creates the directory and its missing parents; OK when it exists.
  virtual Status CreateDirs(const std::string& dir) = 0;
  // Makes a directory's entries (renames, creations) durable.
  virtual Status SyncDir(const std::string& dir) = 0;

  // Monotonic time for measuring intervals.
  virtual std::int64_t NowMicros() = 0;
  // Wall-clock time, milliseconds since the Unix epoch, for timestamps that are stored.
  virtual std::int64_t UnixMillis() = 0;
  virtual void SleepForMicros(std::int64_t micros) = 0;
};

// Writes `data` to a temporary file beside `path`, syncs it, renames it over `path` and syncs the
// directory: after a crash `path` holds either the old or the new contents, never a torn mix.
Status WriteFileAtomically(Env* env, const std::string& path, std::string_view data);
// The same protocol for contents produced piece by piece: `write` appends to the temporary file.
Status WriteFileAtomically(Env* env, const std::string& path,
                           const std::function<Status(WritableFile&)>& write);

// The directory part of a path ("a/b/c" -> "a/b", "c" -> ".").
std::string DirName(const std::string& path);
std::string JoinPath(const std::string& dir, const std::string& name);

}  // namespace llmsync
