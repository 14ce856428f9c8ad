// KvMetrics: the KV cache's Prometheus series, registered once in a MetricsRegistry, plus a
// per-manager copy of every counter (so Stats() stays exact when several managers share a registry).
//
//   llmsync_kv_tokens_total{source="ram"|"disk"|"recompute"}  prompt tokens by where their KV came from
//   llmsync_kv_spills_total, llmsync_kv_spill_failures_total   blocks written to / not written to disk
//   llmsync_kv_restores_total                                  blocks restored from disk
//   llmsync_kv_evictions_total{tier="ram"|"disk"}              blocks freed / snapshot files deleted
//   llmsync_kv_snapshots_rejected_total                        corrupt, truncated or mismatched files
//   llmsync_kv_cow_copies_total                                shared blocks copied before a write
//   llmsync_kv_leases_refused_total                            leases refused over a quota
//   llmsync_kv_ram_blocks_used, llmsync_kv_disk_bytes, llmsync_kv_leases (gauges)
//
// Thread safety: the pointers are set once at construction; updates are atomic (metrics.h).
#pragma once

#include <cstdint>

#include "base/metrics.h"

namespace llmsync::kvcache {

// A registry counter and this manager's own count of the same events.
class KvCounter {
 public:
  explicit KvCounter(Counter* shared) : shared_(shared) {}
  void Add(std::uint64_t n = 1) {
    local_.Add(n);
    shared_->Add(n);
  }
  std::uint64_t Value() const { return local_.Value(); }

 private:
  Counter local_;
  Counter* shared_;
};

struct KvMetrics {
  explicit KvMetrics(MetricsRegistry& registry);

  KvCounter tokens_ram;
  KvCounter tokens_disk;
  KvCounter tokens_recompute;
  KvCounter spills;
  KvCounter spill_failures;
  KvCounter restores;
  KvCounter ram_evictions;
  KvCounter disk_evictions;
  KvCounter snapshots_rejected;
  KvCounter cow_copies;
  KvCounter leases_refused;
  Gauge* ram_blocks_used;
  Gauge* disk_bytes;
  Gauge* leases;
};

}  // namespace llmsync::kvcache
