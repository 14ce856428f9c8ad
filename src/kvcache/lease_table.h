// LeaseTable: client leases on token paths — "keep this path's KV warm until the TTL expires" —
// with per-tenant quotas.
//
// A lease on tokens T pins, for each block-sized segment S_i of T (the last may be partial), the
// index nodes under parent key K_i (the span key of T's first i blocks) whose tokens are a prefix
// of S_i or start with S_i: exactly the nodes a lookup of T can use. Pins are by key, so they also
// hold nodes that are cached after the lease was granted (a lease may precede the prefill that
// produces its KV) and disk-only nodes (their snapshots are kept by the disk budget).
//
// Charging: a lease costs ceil(|T| / block_tokens) blocks against its tenant's quota and against a
// global limit (a share of the RAM tier, so leases can never starve active sequences). A lease
// that does not fit is refused with kResourceExhausted naming the quota; it is never accepted and
// then silently dropped. Blocks shared by several leases are charged to each (conservative).
//
// Expiry uses the caller's clock (Env::NowMicros, so tests drive it with FaultInjectionEnv's manual
// clock); Expire(now) drops the leases whose deadline has passed.
//
// Thread safety: none; KvManager calls it under its mutex.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "kvcache/span_key.h"
#include "llmsync/id.h"
#include "llmsync/status.h"

namespace llmsync::kvcache {

using LeaseId = std::uint64_t;

struct LeaseGrant {
  LeaseId id = 0;
  std::int64_t blocks = 0;             // charged against the quotas
  std::int64_t expires_at_micros = 0;  // on the Env's monotonic clock
  bool replaced = false;               // an earlier lease with the same key was replaced
};

class LeaseTable {
 public:
  LeaseTable(std::int64_t block_tokens, std::int64_t default_tenant_quota_blocks,
             std::int64_t total_limit_blocks);

  // Overrides the default quota for one tenant (blocks; 0 forbids leases).
  void SetTenantQuota(const std::string& tenant, std::int64_t blocks);

  // Grants a lease on `tokens` under namespace `root`. `key` is zero or the caller's name for what
  // the lease keeps warm (a node id): a lease of the same tenant with the same non-zero key is
  // replaced, not added, so renewing never double-charges. kResourceExhausted over a quota.
  // REQUIRES: !tokens.empty().
  Result<LeaseGrant> Add(const std::string& tenant, const Id& key, const SpanKey& root,
                         std::span<const std::int32_t> tokens, std::int64_t expires_at_micros);
  // kNotFound for an unknown lease or one of another tenant.
  Status Renew(const std::string& tenant, LeaseId id, std::int64_t expires_at_micros);
  Status Remove(const std::string& tenant, LeaseId id);
  // Drops leases with expires_at <= now; returns how many.
  int Expire(std::int64_t now_micros);

  // Whether a node under `parent` holding `tokens` is pinned by a live lease.
  bool Pins(const SpanKey& parent, std::span<const std::int32_t> tokens) const;

  std::int64_t TenantBlocks(const std::string& tenant) const;
  std::int64_t TenantQuota(const std::string& tenant) const;
  std::int64_t TotalBlocks() const { return total_blocks_; }
  std::int64_t TotalLimit() const { return total_limit_; }
  std::size_t Count() const { return leases_.size(); }

 private:
  struct Pin {
    std::vector<std::int32_t> tokens;
    LeaseId lease = 0;
  };
  struct Lease {
    std::string tenant;
    Id key;
    std::vector<SpanKey> parents;  // where its pins live
    std::int64_t blocks = 0;
    std::int64_t expires_at = 0;
  };

  void Drop(LeaseId id);

  std::int64_t block_tokens_;
  std::int64_t default_quota_;
  std::int64_t total_limit_;
  std::int64_t total_blocks_ = 0;
  LeaseId next_id_ = 1;
  std::unordered_map<LeaseId, Lease> leases_;
  std::unordered_map<SpanKey, std::vector<Pin>> pins_;  // by parent key
  std::unordered_map<std::string, std::int64_t> tenant_blocks_;
  std::unordered_map<std::string, std::int64_t> tenant_quota_;
};

}  // namespace llmsync::kvcache
