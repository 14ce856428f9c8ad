// DiskTier: the snapshot directory of the KV cache — one file per spilled span, a byte budget,
// and the age order in which snapshots are evicted when the budget is exceeded.
//
// File name: "<model fingerprint hex>-<span key hex>.kvs" (snapshot_codec.h for the contents).
// Files are written with WriteFileAtomically (temporary file, sync, rename, directory sync), so a
// crash leaves either no file or a complete one; a failed write leaves no file. Several models may
// share a directory: a tier only lists, budgets and deletes files carrying its own fingerprint, and
// leaves alone files of its model written with another block layout (dtype, block size).
//
// Scan() indexes the directory at startup: it parses each file's header (not its checksum, which is
// verified when the file is restored), removes stale temporary files and files whose header is
// unreadable or disagrees with the file name, and returns the headers of the rest.
//
// Thread safety: none; KvManager calls it under its mutex. All I/O goes through the Env.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "base/env.h"
#include "kvcache/snapshot_codec.h"

namespace llmsync::kvcache {

struct DiskScan {
  std::vector<SnapshotHeader> headers;
  std::vector<std::uint64_t> sizes;  // file size of each header's file
  int removed_corrupt = 0;           // unreadable headers or names that disagree with them
  int removed_temporary = 0;
  int other_layout = 0;  // this model's files written with another layout: left alone
};

class DiskTier {
 public:
  // An empty dir or a zero budget disables the tier.
  DiskTier(Env* env, std::string dir, const Id& model, const BlockLayout& layout, std::uint64_t budget_bytes);

  bool Enabled() const { return !dir_.empty() && budget_ > 0; }
  std::uint64_t Budget() const { return budget_; }
  std::uint64_t Bytes() const { return bytes_; }
  std::size_t Count() const { return files_.size(); }
  bool Contains(const SpanKey& key) const { return files_.count(key) != 0; }
  std::string PathFor(const SpanKey& key) const;

  // Creates the directory and indexes it; the returned headers are tracked (see Track).
  Result<DiskScan> Scan();

  // Writes a snapshot and tracks it. On failure no file is left behind.
  Status Write(const SpanKey& key, std::string_view bytes, std::uint64_t written_unix_ms);
  Result<std::string> Read(const SpanKey& key);
  // Deletes the file and forgets it; OK when it was already gone.
  Status Remove(const SpanKey& key);

  // Tracked files, oldest first: (written at, arrival order, key).
  using AgeOrder = std::set<std::tuple<std::uint64_t, std::uint64_t, SpanKey>>;
  const AgeOrder& OldestFirst() const { return by_age_; }

 private:
  struct File {
    std::uint64_t bytes = 0;
    std::uint64_t written_unix_ms = 0;
    std::uint64_t order = 0;
  };
  void Track(const SpanKey& key, std::uint64_t bytes, std::uint64_t written_unix_ms);
  void Forget(const SpanKey& key);

  Env* env_;
  std::string dir_;
  Id model_;
  BlockLayout layout_;
  std::string prefix_;  // "<model hex>-"
  std::uint64_t budget_;
  std::uint64_t bytes_ = 0;
  std::uint64_t next_order_ = 0;
  std::unordered_map<SpanKey, File> files_;
  AgeOrder by_age_;
};

}  // namespace llmsync::kvcache
