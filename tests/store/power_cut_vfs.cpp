#include "power_cut_vfs.h"

#include <sqlite3.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>

namespace llmsync::store::testing {

namespace {

PowerCutVfs* g_owner = nullptr;
sqlite3_vfs* g_real = nullptr;
sqlite3_vfs g_shim;

// A shim file: our header, then the real VFS's file object.
struct ShimFile {
  sqlite3_file base;
  bool tracked;
  char path[512];
  sqlite3_file* Real() { return reinterpret_cast<sqlite3_file*>(this + 1); }
};

ShimFile* Shim(sqlite3_file* f) { return reinterpret_cast<ShimFile*>(f); }
sqlite3_file* Real(sqlite3_file* f) { return Shim(f)->Real(); }

void Apply(std::string& image, const PowerCutVfs::Op& op) {
  if (op.truncate) {
    image.resize(static_cast<std::size_t>(op.offset));
    return;
  }
  std::size_t end = static_cast<std::size_t>(op.offset) + op.data.size();
  if (image.size() < end) image.resize(end, '\0');
  std::memcpy(image.data() + op.offset, op.data.data(), op.data.size());
}

int ShimClose(sqlite3_file* f) {
  int rc = Real(f)->pMethods->xClose(Real(f));
  f->pMethods = nullptr;
  return rc;
}
int ShimRead(sqlite3_file* f, void* buf, int amt, sqlite3_int64 off) {
  return Real(f)->pMethods->xRead(Real(f), buf, amt, off);
}
int ShimWrite(sqlite3_file* f, const void* buf, int amt, sqlite3_int64 off) {
  int rc = Real(f)->pMethods->xWrite(Real(f), buf, amt, off);
  if (rc == SQLITE_OK && Shim(f)->tracked) {
    g_owner->RecordWrite(Shim(f)->path, {false, off, std::string(static_cast<const char*>(buf), amt)});
  }
  return rc;
}
int ShimTruncate(sqlite3_file* f, sqlite3_int64 size) {
  int rc = Real(f)->pMethods->xTruncate(Real(f), size);
  if (rc == SQLITE_OK && Shim(f)->tracked) g_owner->RecordWrite(Shim(f)->path, {true, size, {}});
  return rc;
}
int ShimSync(sqlite3_file* f, int flags) {
  int rc = Real(f)->pMethods->xSync(Real(f), flags);
  if (rc == SQLITE_OK && Shim(f)->tracked) g_owner->RecordSync(Shim(f)->path);
  return rc;
}
int ShimFileSize(sqlite3_file* f, sqlite3_int64* size) { return Real(f)->pMethods->xFileSize(Real(f), size); }
int ShimLock(sqlite3_file* f, int level) { return Real(f)->pMethods->xLock(Real(f), level); }
int ShimUnlock(sqlite3_file* f, int level) { return Real(f)->pMethods->xUnlock(Real(f), level); }
int ShimCheckReservedLock(sqlite3_file* f, int* out) {
  return Real(f)->pMethods->xCheckReservedLock(Real(f), out);
}
int ShimFileControl(sqlite3_file* f, int op, void* arg) {
  // No memory-mapped I/O: every write must pass through xWrite to be seen.
  if (op == SQLITE_FCNTL_MMAP_SIZE) return SQLITE_NOTFOUND;
  return Real(f)->pMethods->xFileControl(Real(f), op, arg);
}
int ShimSectorSize(sqlite3_file* f) { return Real(f)->pMethods->xSectorSize(Real(f)); }
int ShimDeviceCharacteristics(sqlite3_file* f) { return Real(f)->pMethods->xDeviceCharacteristics(Real(f)); }
int ShimShmMap(sqlite3_file* f, int region, int size, int extend, void volatile** out) {
  return Real(f)->pMethods->xShmMap(Real(f), region, size, extend, out);
}
int ShimShmLock(sqlite3_file* f, int offset, int n, int flags) {
  return Real(f)->pMethods->xShmLock(Real(f), offset, n, flags);
}
void ShimShmBarrier(sqlite3_file* f) { Real(f)->pMethods->xShmBarrier(Real(f)); }
int ShimShmUnmap(sqlite3_file* f, int del) { return Real(f)->pMethods->xShmUnmap(Real(f), del); }

const sqlite3_io_methods kShimIo = {
    2,  // version 2: shared memory, no xFetch (so no memory-mapped reads or writes)
    ShimClose,
    ShimRead,
    ShimWrite,
    ShimTruncate,
    ShimSync,
    ShimFileSize,
    ShimLock,
    ShimUnlock,
    ShimCheckReservedLock,
    ShimFileControl,
    ShimSectorSize,
    ShimDeviceCharacteristics,
    ShimShmMap,
    ShimShmLock,
    ShimShmBarrier,
    ShimShmUnmap,
    nullptr,
    nullptr,
};

int ShimOpen(sqlite3_vfs*, const char* name, sqlite3_file* file, int flags, int* out_flags) {
  ShimFile* shim = Shim(file);
  shim->base.pMethods = nullptr;
  int rc = g_real->xOpen(g_real, name, shim->Real(), flags, out_flags);
  if (rc != SQLITE_OK) return rc;
  shim->base.pMethods = &kShimIo;
  shim->tracked = name != nullptr && (flags & (SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_WAL)) != 0 &&
                  std::strlen(name) < sizeof(shim->path);
  if (shim->tracked) {
    std::strcpy(shim->path, name);
    g_owner->Track(name);
  }
  return SQLITE_OK;
}

int ShimDelete(sqlite3_vfs*, const char* name, int sync_dir) {
  int rc = g_real->xDelete(g_real, name, sync_dir);
  if (rc == SQLITE_OK) g_owner->RecordDelete(name);
  return rc;
}
int ShimAccess(sqlite3_vfs*, const char* name, int flags, int* out) {
  return g_real->xAccess(g_real, name, flags, out);
}
int ShimFullPathname(sqlite3_vfs*, const char* name, int n, char* out) {
  return g_real->xFullPathname(g_real, name, n, out);
}
int ShimRandomness(sqlite3_vfs*, int n, char* out) { return g_real->xRandomness(g_real, n, out); }
int ShimSleep(sqlite3_vfs*, int micros) { return g_real->xSleep(g_real, micros); }
int ShimCurrentTime(sqlite3_vfs*, double* out) { return g_real->xCurrentTime(g_real, out); }
int ShimGetLastError(sqlite3_vfs*, int n, char* out) { return g_real->xGetLastError(g_real, n, out); }
int ShimCurrentTimeInt64(sqlite3_vfs*, sqlite3_int64* out) { return g_real->xCurrentTimeInt64(g_real, out); }

}  // namespace

PowerCutVfs::PowerCutVfs() {
  if (g_owner != nullptr) throw std::logic_error("one PowerCutVfs at a time");
  g_real = sqlite3_vfs_find(nullptr);
  g_owner = this;
  std::memset(&g_shim, 0, sizeof(g_shim));
  g_shim.iVersion = 2;
  g_shim.szOsFile = static_cast<int>(sizeof(ShimFile)) + g_real->szOsFile;
  g_shim.mxPathname = g_real->mxPathname;
  g_shim.zName = "llmsync-power-cut";
  g_shim.xOpen = ShimOpen;
  g_shim.xDelete = ShimDelete;
  g_shim.xAccess = ShimAccess;
  g_shim.xFullPathname = ShimFullPathname;
  g_shim.xRandomness = ShimRandomness;
  g_shim.xSleep = ShimSleep;
  g_shim.xCurrentTime = ShimCurrentTime;
  g_shim.xGetLastError = ShimGetLastError;
  g_shim.xCurrentTimeInt64 = ShimCurrentTimeInt64;
  sqlite3_vfs_register(&g_shim, /*makeDflt=*/1);
}

PowerCutVfs::~PowerCutVfs() {
  sqlite3_vfs_unregister(&g_shim);
  g_owner = nullptr;
}

void PowerCutVfs::Track(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, fresh] = files_.try_emplace(path);
  if (!fresh && it->second.exists) return;
  // A file this process did not write is taken as durable as it stands.
  std::ifstream in(path, std::ios::binary);
  if (in) {
    it->second.synced.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    it->second.exists = !it->second.synced.empty();
  }
}

void PowerCutVfs::RecordWrite(const std::string& path, Op op) {
  std::lock_guard<std::mutex> lock(mu_);
  files_[path].pending.push_back(std::move(op));
}

void PowerCutVfs::RecordSync(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  Tracked& t = files_[path];
  for (const Op& op : t.pending) Apply(t.synced, op);
  t.pending.clear();
  t.exists = true;
}

void PowerCutVfs::RecordDelete(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  files_[path] = Tracked{};
}

void PowerCutVfs::WriteDurableImage(const std::string& source_db, const std::string& dir, bool torn,
                                    std::mt19937& rng) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string base = source_db.substr(source_db.find_last_of('/') + 1);
  for (const char* suffix : {"", "-wal"}) {
    auto it = files_.find(source_db + suffix);
    if (it == files_.end()) continue;
    const Tracked& t = it->second;
    std::string image = t.synced;
    bool exists = t.exists;
    if (torn) {
      for (const Op& op : t.pending) {
        if (rng() % 2 == 0) continue;
        Op kept = op;
        if (!kept.truncate && !kept.data.empty() && rng() % 4 == 0)
          kept.data.resize(rng() % kept.data.size());
        Apply(image, kept);
        exists = true;
      }
    }
    if (!exists) continue;
    std::ofstream out(dir + "/" + base + suffix, std::ios::binary);
    out.write(image.data(), static_cast<std::streamsize>(image.size()));
  }
}

}  // namespace llmsync::store::testing
