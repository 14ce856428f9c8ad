// KvManager: block allocation, LRU eviction with spill to the disk tier, the disk budget, and
// restore of snapshots (with verification) into RAM.
#include <string>

#include "base/logging.h"
#include "kvcache/kv_manager/kv_manager.h"
#include "kvcache/kv_manager/kv_manager_internal.h"

namespace llmsync::kvcache {

Result<BlockId> KvManager::AllocateBlock() {
  for (;;) {
    Result<BlockId> block = pool_.Allocate();
    if (block.IsOk()) return block;
    if (!EvictOne()) return OutOfBlocks();
  }
}

Status KvManager::OutOfBlocks() const {
  std::int64_t cached_only = 0;  // resident spans that only the index holds (pinned or not leaves)
  for (const auto& [tick, key] : index_.LruOrder()) {
    if (pool_.RefCount(index_.Find(key)->block) == 1) ++cached_only;
  }
  return Status::ResourceExhausted("kv: out of RAM blocks: none of the " + std::to_string(pool_.Capacity()) +
                                   " is free or evictable (" + std::to_string(cached_only) +
                                   " hold cached spans that are leased or have resident children, the rest "
                                   "belong to live sequences; leases pin up to " +
                                   std::to_string(leases_.TotalBlocks()) + " blocks)");
}

void KvManager::ExpireLeases() {
  if (leases_.Expire(env_->NowMicros()) > 0) UpdateGauges();
}

bool KvManager::Pinned(const RadixNode& node) const { return leases_.Pins(node.parent, node.tokens); }

bool KvManager::EvictOne() {
  ExpireLeases();
  const RadixNode* victim = nullptr;
  for (const auto& [tick, key] : index_.LruOrder()) {
    const RadixNode* node = index_.Find(key);
    if (pool_.RefCount(node->block) != 1) continue;  // a live sequence holds it
    if (index_.HasResidentChild(key)) continue;      // not a leaf
    if (Pinned(*node)) continue;
    victim = node;
    break;
  }
  if (victim == nullptr) return false;
  const SpanKey key = victim->key;
  RadixNode& node = *index_.Find(key);
  if (disk_.Enabled() && !node.on_disk) (void)Spill(node);
  const BlockId block = node.block;
  index_.SetBlock(node, kNoBlock);
  pool_.Unref(block);
  metrics_.ram_evictions.Add();
  if (!node.on_disk) index_.Erase(key);
  UpdateGauges();
  return true;
}

Status KvManager::Spill(RadixNode& node) {
  SnapshotHeader header;
  header.geometry = options_.geometry;
  header.block_tokens = options_.block_tokens;
  header.start = node.start;
  header.written_unix_ms = static_cast<std::uint64_t>(env_->UnixMillis());
  header.model = options_.model_fingerprint;
  header.key = node.key;
  header.parent = node.parent;
  header.tokens = node.tokens;
  Status s;
  if (SnapshotBytes(layout_, static_cast<std::int64_t>(node.tokens.size())) > disk_.Budget()) {
    s = Status::ResourceExhausted("kv: a snapshot is larger than the whole disk budget");
  } else {
    s = disk_.Write(node.key, EncodeSnapshot(header, layout_, pool_.Data(node.block)),
                    header.written_unix_ms);
  }
  if (!s.IsOk()) {
    metrics_.spill_failures.Add();
    LLMSYNC_LOG(kWarning) << "kv: cannot spill span " << node.key.ShortHex() << " (" << node.tokens.size()
                          << " tokens at " << node.start << ") to disk; dropping it: " << s.ToString();
    return s;
  }
  node.on_disk = true;
  metrics_.spills.Add();
  EnforceDiskBudget();
  return Status::Ok();
}

void KvManager::EnforceDiskBudget() {
  while (disk_.Bytes() > disk_.Budget()) {
    bool found = false;
    SpanKey oldest;
    for (const auto& [written, order, key] : disk_.OldestFirst()) {
      const RadixNode* node = index_.Find(key);
      if (node != nullptr && Pinned(*node)) continue;
      oldest = key;
      found = true;
      break;
    }
    if (!found) return;  // everything left is leased: over budget until a lease ends
    Status removed = disk_.Remove(oldest);
    if (!removed.IsOk()) {
      LLMSYNC_LOG(kWarning) << "kv: cannot delete snapshot " << disk_.PathFor(oldest) << ": "
                            << removed.ToString();
    }
    metrics_.disk_evictions.Add();
    if (RadixNode* node = index_.Find(oldest)) {
      node->on_disk = false;
      if (!node->Resident()) index_.Erase(oldest);
    }
  }
  UpdateGauges();
}

void KvManager::DropNode(const SpanKey& key) {
  RadixNode* node = index_.Find(key);
  if (node == nullptr) return;
  if (node->Resident()) {
    const BlockId block = node->block;
    index_.SetBlock(*node, kNoBlock);
    pool_.Unref(block);
  }
  if (node->on_disk) {
    Status removed = disk_.Remove(key);
    if (!removed.IsOk()) {
      LLMSYNC_LOG(kWarning) << "kv: cannot delete snapshot " << disk_.PathFor(key) << ": "
                            << removed.ToString();
    }
  }
  index_.Erase(key);
  UpdateGauges();
}

Status KvManager::Restore(const SpanKey& key, std::int64_t start) {
  Result<std::string> bytes = disk_.Read(key);
  if (!bytes.IsOk()) {
    LLMSYNC_LOG(kWarning) << "kv: cannot read snapshot " << disk_.PathFor(key)
                          << "; recomputing: " << bytes.GetStatus().ToString();
    DropNode(key);
    return Status::Unavailable(bytes.GetStatus().Message());
  }
  Result<BlockId> block = AllocateBlock();
  if (!block.IsOk()) return block.GetStatus();
  RadixNode* node = index_.Find(key);  // allocation may have evicted (and spilled) other spans
  if (node == nullptr || node->Resident()) {
    pool_.Unref(*block);
    return Status::Unavailable("kv: span " + key.ShortHex() + " changed during its restore");
  }
  SnapshotHeader expected;
  expected.start = start;
  expected.model = options_.model_fingerprint;
  expected.key = key;
  expected.parent = node->parent;
  expected.tokens = node->tokens;
  const std::string& file = *bytes;
  Status verified = DecodeSnapshot(
      std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(file.data()), file.size()),
      expected, layout_, pool_.Data(*block));
  if (!verified.IsOk()) {
    pool_.Unref(*block);
    metrics_.snapshots_rejected.Add();
    LLMSYNC_LOG(kWarning) << "kv: rejecting snapshot " << disk_.PathFor(key)
                          << "; recomputing: " << verified.ToString();
    DropNode(key);
    return Status::DataLoss(verified.Message());
  }
  index_.SetBlock(*node, *block);
  metrics_.restores.Add();
  UpdateGauges();
  return Status::Ok();
}

Status KvManager::FlushToDisk() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!disk_.Enabled()) return Status::Ok();
  Status last;
  std::vector<SpanKey> keys;
  for (const auto& [tick, key] : index_.LruOrder()) keys.push_back(key);
  for (const SpanKey& key : keys) {
    RadixNode* node = index_.Find(key);
    if (node == nullptr || !node->Resident() || node->on_disk) continue;
    Status s = Spill(*node);
    if (!s.IsOk()) last = s;
  }
  return last;
}

}  // namespace llmsync::kvcache
