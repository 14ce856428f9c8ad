#include "kvcache/kv_metrics.h"

namespace llmsync::kvcache {
namespace {

constexpr const char* kTokensHelp = "Prompt tokens by where their KV came from";
constexpr const char* kEvictionsHelp =
    "KV blocks evicted from RAM, or snapshot files deleted for the disk budget";

}  // namespace

KvMetrics::KvMetrics(MetricsRegistry& r)
    : tokens_ram(r.GetCounter("llmsync_kv_tokens_total", kTokensHelp, {{"source", "ram"}})),
      tokens_disk(r.GetCounter("llmsync_kv_tokens_total", kTokensHelp, {{"source", "disk"}})),
      tokens_recompute(r.GetCounter("llmsync_kv_tokens_total", kTokensHelp, {{"source", "recompute"}})),
      spills(r.GetCounter("llmsync_kv_spills_total", "KV blocks written to the disk tier")),
      spill_failures(r.GetCounter("llmsync_kv_spill_failures_total",
                                  "KV blocks dropped because their snapshot write failed")),
      restores(r.GetCounter("llmsync_kv_restores_total", "KV blocks restored from disk snapshots")),
      ram_evictions(r.GetCounter("llmsync_kv_evictions_total", kEvictionsHelp, {{"tier", "ram"}})),
      disk_evictions(r.GetCounter("llmsync_kv_evictions_total", kEvictionsHelp, {{"tier", "disk"}})),
      snapshots_rejected(r.GetCounter("llmsync_kv_snapshots_rejected_total",
                                      "KV snapshots found corrupt, truncated or mismatched and recomputed")),
      cow_copies(r.GetCounter("llmsync_kv_cow_copies_total", "Shared KV blocks copied before a write")),
      leases_refused(r.GetCounter("llmsync_kv_leases_refused_total", "KV leases refused over a quota")),
      ram_blocks_used(r.GetGauge("llmsync_kv_ram_blocks_used", "KV blocks in RAM")),
      disk_bytes(r.GetGauge("llmsync_kv_disk_bytes", "Bytes of KV snapshots on disk")),
      leases(r.GetGauge("llmsync_kv_leases", "Live KV leases")) {}

}  // namespace llmsync::kvcache
