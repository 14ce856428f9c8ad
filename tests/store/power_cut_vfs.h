// PowerCutVfs: an SQLite VFS shim for tests that remembers, for every database and WAL file, what
// the disk is guaranteed to hold (the contents at the last successful sync) and which writes have
// happened since. DurableImage() then answers "what could the disk hold if the power failed right
// now": the synced contents, optionally with a random subset of the later writes applied, some of
// them torn. Opening a store over such an image is a power cut without pulling a plug.
//
// Usage: construct one before opening any store (it registers itself as the default VFS) and
// destroy it after closing them (it unregisters itself).
//
// Thread safety: all methods and the VFS callbacks may run concurrently; the file registry is
// guarded by a mutex.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <vector>

struct sqlite3_vfs;

namespace llmsync::store::testing {

class PowerCutVfs {
 public:
  PowerCutVfs();
  ~PowerCutVfs();
  PowerCutVfs(const PowerCutVfs&) = delete;
  PowerCutVfs& operator=(const PowerCutVfs&) = delete;

  // Writes into `dir` the files that would survive a power cut now, named as in the original
  // directory. With `torn`, each unsynced write survives with probability 1/2, possibly cut short.
  void WriteDurableImage(const std::string& source_db, const std::string& dir, bool torn, std::mt19937& rng);

  // Internal: called by the VFS callbacks.
  struct Op {
    bool truncate = false;
    std::int64_t offset = 0;  // the write offset, or the new size for a truncate
    std::string data;
  };
  struct Tracked {
    bool exists = false;  // created and synced at least once (or present when first opened)
    std::string synced;   // contents at the last successful sync
    std::vector<Op> pending;
  };
  void Track(const std::string& path);
  void RecordWrite(const std::string& path, Op op);
  void RecordSync(const std::string& path);
  void RecordDelete(const std::string& path);

 private:
  std::mutex mu_;
  std::map<std::string, Tracked> files_;  // GUARDED_BY(mu_)
};

}  // namespace llmsync::store::testing
