#include "kvcache/lease_table.h"

#include <algorithm>

namespace llmsync::kvcache {

LeaseTable::LeaseTable(std::int64_t block_tokens, std::int64_t default_tenant_quota_blocks,
                       std::int64_t total_limit_blocks)
    : block_tokens_(block_tokens),
      default_quota_(default_tenant_quota_blocks),
      total_limit_(total_limit_blocks) {}

void LeaseTable::SetTenantQuota(const std::string& tenant, std::int64_t blocks) {
  tenant_quota_[tenant] = std::max<std::int64_t>(blocks, 0);
}

std::int64_t LeaseTable::TenantBlocks(const std::string& tenant) const {
  auto it = tenant_blocks_.find(tenant);
  return it == tenant_blocks_.end() ? 0 : it->second;
}

std::int64_t LeaseTable::TenantQuota(const std::string& tenant) const {
  auto it = tenant_quota_.find(tenant);
  return it == tenant_quota_.end() ? default_quota_ : it->second;
}

Result<LeaseGrant> LeaseTable::Add(const std::string& tenant, const Id& key, const SpanKey& root,
                                   std::span<const std::int32_t> tokens, std::int64_t expires_at_micros) {
  const std::int64_t n = static_cast<std::int64_t>(tokens.size());
  const std::int64_t blocks = (n + block_tokens_ - 1) / block_tokens_;
  LeaseId replaced = 0;
  std::int64_t replaced_blocks = 0;
  if (!key.IsZero()) {
    for (const auto& [id, lease] : leases_) {
      if (lease.tenant == tenant && lease.key == key) {
        replaced = id;
        replaced_blocks = lease.blocks;
        break;
      }
    }
  }
  const std::int64_t tenant_after = TenantBlocks(tenant) - replaced_blocks + blocks;
  if (tenant_after > TenantQuota(tenant)) {
    return Status::ResourceExhausted("kv: lease of " + std::to_string(n) + " tokens (" +
                                     std::to_string(blocks) + " blocks) refused: tenant '" + tenant +
                                     "' holds " + std::to_string(TenantBlocks(tenant) - replaced_blocks) +
                                     " of its " + std::to_string(TenantQuota(tenant)) + "-block lease quota");
  }
  if (total_blocks_ - replaced_blocks + blocks > total_limit_) {
    return Status::ResourceExhausted("kv: lease of " + std::to_string(n) + " tokens (" +
                                     std::to_string(blocks) + " blocks) refused: leases already pin " +
                                     std::to_string(total_blocks_ - replaced_blocks) + " of the " +
                                     std::to_string(total_limit_) + " RAM blocks leases may hold");
  }
  if (replaced != 0) Drop(replaced);

  Lease lease;
  lease.tenant = tenant;
  lease.key = key;
  lease.blocks = blocks;
  lease.expires_at = expires_at_micros;
  const LeaseId id = next_id_++;
  SpanKey parent = root;
  for (std::int64_t at = 0; at < n; at += block_tokens_) {
    std::span<const std::int32_t> segment = tokens.subspan(
        static_cast<std::size_t>(at), static_cast<std::size_t>(std::min(block_tokens_, n - at)));
    pins_[parent].push_back(Pin{std::vector<std::int32_t>(segment.begin(), segment.end()), id});
    lease.parents.push_back(parent);
    if (static_cast<std::int64_t>(segment.size()) == block_tokens_) parent = ChildKey(parent, segment);
  }
  leases_.emplace(id, std::move(lease));
  tenant_blocks_[tenant] += blocks;
  total_blocks_ += blocks;
  return LeaseGrant{id, blocks, expires_at_micros, replaced != 0};
}

Status LeaseTable::Renew(const std::string& tenant, LeaseId id, std::int64_t expires_at_micros) {
  auto it = leases_.find(id);
  if (it == leases_.end() || it->second.tenant != tenant) {
    return Status::NotFound("kv: no lease " + std::to_string(id) + " for tenant '" + tenant + "'");
  }
  it->second.expires_at = expires_at_micros;
  return Status::Ok();
}

Status LeaseTable::Remove(const std::string& tenant, LeaseId id) {
  auto it = leases_.find(id);
  if (it == leases_.end() || it->second.tenant != tenant) {
    return Status::NotFound("kv: no lease " + std::to_string(id) + " for tenant '" + tenant + "'");
  }
  Drop(id);
  return Status::Ok();
}

int LeaseTable::Expire(std::int64_t now_micros) {
  std::vector<LeaseId> expired;
  for (const auto& [id, lease] : leases_) {
    if (lease.expires_at <= now_micros) expired.push_back(id);
  }
  for (LeaseId id : expired) Drop(id);
  return static_cast<int>(expired.size());
}

void LeaseTable::Drop(LeaseId id) {
  auto it = leases_.find(id);
  if (it == leases_.end()) return;
  for (const SpanKey& parent : it->second.parents) {
    auto pins = pins_.find(parent);
    if (pins == pins_.end()) continue;
    std::erase_if(pins->second, [id](const Pin& p) { return p.lease == id; });
    if (pins->second.empty()) pins_.erase(pins);
  }
  tenant_blocks_[it->second.tenant] -= it->second.blocks;
  if (tenant_blocks_[it->second.tenant] == 0) tenant_blocks_.erase(it->second.tenant);
  total_blocks_ -= it->second.blocks;
  leases_.erase(it);
}

bool LeaseTable::Pins(const SpanKey& parent, std::span<const std::int32_t> tokens) const {
  auto it = pins_.find(parent);
  if (it == pins_.end()) return false;
  for (const Pin& pin : it->second) {
    std::int64_t common = CommonPrefix(pin.tokens, tokens);
    if (common == static_cast<std::int64_t>(pin.tokens.size()) ||
        common == static_cast<std::int64_t>(tokens.size())) {
      return true;
    }
  }
  return false;
}

}  // namespace llmsync::kvcache
