#include "kvcache/disk_tier.h"

#include <algorithm>

#include "base/logging.h"

namespace llmsync::kvcache {
namespace {

constexpr std::string_view kSuffix = ".kvs";
constexpr std::string_view kTmpSuffix = ".kvs.tmp";

}  // namespace

DiskTier::DiskTier(Env* env, std::string dir, const Id& model, const BlockLayout& layout,
                   std::uint64_t budget_bytes)
    : env_(env),
      dir_(std::move(dir)),
      model_(model),
      layout_(layout),
      prefix_(model.ToHex() + "-"),
      budget_(budget_bytes) {}

std::string DiskTier::PathFor(const SpanKey& key) const {
  return JoinPath(dir_, prefix_ + key.ToHex() + std::string(kSuffix));
}

Result<DiskScan> DiskTier::Scan() {
  DiskScan scan;
  LLMSYNC_RETURN_IF_ERROR(env_->CreateDirs(dir_));
  LLMSYNC_ASSIGN_OR_RETURN(std::vector<std::string> names, env_->ListDir(dir_));
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    if (!name.starts_with(prefix_)) continue;  // another model's file, or not ours at all
    const std::string path = JoinPath(dir_, name);
    if (name.ends_with(kTmpSuffix)) {  // a write interrupted by a crash
      if (env_->RemoveFile(path).IsOk()) ++scan.removed_temporary;
      continue;
    }
    if (!name.ends_with(kSuffix)) continue;
    std::string_view hex = std::string_view(name).substr(prefix_.size());
    hex.remove_suffix(kSuffix.size());
    Result<Id> key = Id::FromHex(hex);
    Status bad;
    Result<std::unique_ptr<MappedFile>> mapped = env_->MapReadOnly(path);
    if (!key.IsOk()) {
      bad = key.GetStatus();
    } else if (!mapped.IsOk()) {
      bad = mapped.GetStatus();
    } else {
      Result<SnapshotHeader> header = DecodeSnapshotHeader((*mapped)->Bytes());
      if (!header.IsOk()) {
        bad = header.GetStatus();
      } else if (header->key != *key || header->model != model_) {
        bad = Status::DataLoss("header names another span or model than the file name");
      } else if (!(header->geometry == layout_.geometry) || header->block_tokens != layout_.block_tokens) {
        ++scan.other_layout;
        continue;
      } else if (header->start % layout_.block_tokens != 0) {
        bad = Status::DataLoss("span start " + std::to_string(header->start) + " is not on a block boundary");
      } else {
        scan.sizes.push_back((*mapped)->Bytes().size());
        scan.headers.push_back(std::move(header).Value());
        Track(*key, scan.sizes.back(), scan.headers.back().written_unix_ms);
        continue;
      }
    }
    LLMSYNC_LOG(kWarning) << "kv: removing unreadable snapshot " << path << ": " << bad.ToString();
    if (env_->RemoveFile(path).IsOk()) ++scan.removed_corrupt;
  }
  return scan;
}

Status DiskTier::Write(const SpanKey& key, std::string_view bytes, std::uint64_t written_unix_ms) {
  const std::string path = PathFor(key);
  Status s = WriteFileAtomically(env_, path, bytes);
  if (!s.IsOk()) {
    // The rename may have happened before a failing directory sync: leave nothing half-known.
    if (env_->FileExists(path)) (void)env_->RemoveFile(path);
    return s;
  }
  Forget(key);
  Track(key, bytes.size(), written_unix_ms);
  return Status::Ok();
}

Result<std::string> DiskTier::Read(const SpanKey& key) { return env_->ReadFile(PathFor(key)); }

Status DiskTier::Remove(const SpanKey& key) {
  const std::string path = PathFor(key);
  Forget(key);
  if (!env_->FileExists(path)) return Status::Ok();
  return env_->RemoveFile(path);
}

void DiskTier::Track(const SpanKey& key, std::uint64_t bytes, std::uint64_t written_unix_ms) {
  File f{bytes, written_unix_ms, next_order_++};
  files_[key] = f;
  by_age_.emplace(f.written_unix_ms, f.order, key);
  bytes_ += bytes;
}

void DiskTier::Forget(const SpanKey& key) {
  auto it = files_.find(key);
  if (it == files_.end()) return;
  by_age_.erase({it->second.written_unix_ms, it->second.order, key});
  bytes_ -= it->second.bytes;
  files_.erase(it);
}

}  // namespace llmsync::kvcache
