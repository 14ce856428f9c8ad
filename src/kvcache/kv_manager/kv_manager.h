// KvManager: the KV cache of one model — paged RAM blocks shared through a radix prefix index,
// client leases, LRU eviction that spills to a disk tier, and restore with verification. It is
// the engine's KvStorage for every sequence it hands out.
//
// Life of a sequence (the run scheduler's view):
//   auto acquired = kv.Acquire(tenant, prompt_tokens);    // reuse the longest cached prefix
//   acquired->account                                      // RAM / disk / recompute, divergence
//   RecomputeSequence(engine, kv, acquired->seq.Id());     // or prefill in the scheduler's batches
//   kv.Append(seq, {next_token}); engine.Forward(...); kv.Commit(seq);   // decode
//   acquired->seq.Release();                              // or let the handle go out of scope
// Acquire maps every cached block of the prefix into the sequence (RAM hits are shared, not
// copied; disk spans are restored first). The engine then writes through PrepareWrite/Keys/Values.
// A sequence must declare its tokens (Acquire, Append) before the engine writes their positions:
// the manager publishes finished blocks to the index under those tokens. Only rows known to be
// written are published: rows [0, begin) at each PrepareWrite (the KvStorage protocol guarantees
// them), and rows up to the end after Commit (the caller's word that the last Forward succeeded).
//
// Sharing rules: full blocks are published as soon as they are confirmed; a partial last block when
// its sequence is released, or earlier on request (Share). A block referenced by more than one owner (index,
// sequences) is copied before any write into it (copy on write: a branch diverging inside a cached block
// keeps the shared rows before the divergence and writes its own block).
//
// Eviction: when a block is needed and none is free, the least recently used index block that no
// sequence holds, no lease pins and no resident child depends on (an LRU leaf) is spilled to the
// disk tier (unless already there) and freed. A failed spill drops the block: it is recomputed
// later, never stored half-written. The disk budget deletes the oldest unpinned snapshots.
//
// Thread safety: all public methods may be called from any thread; one mutex (mu_) guards the
// pool, the index, leases and the disk tier, and disk I/O for spills and restores happens under it.
// The exception is the per-sequence state read by the engine: Keys/Values take no lock, so the
// operations that change a sequence (Append, Truncate, Commit, Release, PrepareWrite) must not run
// concurrently with a Forward that includes that sequence. In practice the inference loop owns
// sequences; HTTP handlers call Lease/RenewLease/ReleaseLease/Stats. Acquire/Release of one
// sequence may overlap a Forward over others (sequence slots are fixed and never move).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/env.h"
#include "base/metrics.h"
#include "engine/kv_storage.h"
#include "kvcache/block_pool.h"
#include "kvcache/disk_tier.h"
#include "kvcache/kv_metrics.h"
#include "kvcache/lease_table.h"
#include "kvcache/radix_index.h"
#include "llmsync/id.h"
#include "llmsync/status.h"

namespace llmsync::kvcache {

using engine::SeqId;

struct KvOptions {
  Id model_fingerprint;                              // REQUIRED (engine/model_fingerprint.h)
  engine::KvGeometry geometry;                       // REQUIRED: Model::KvGeometryFor(dtype)
  std::int64_t block_tokens = 32;                    // positions per block, in [1, 1024]
  std::int64_t ram_bytes = std::int64_t{256} << 20;  // --kv-ram-mb
  std::string snapshot_dir;                          // empty: no disk tier
  std::int64_t disk_bytes = std::int64_t{1} << 30;   // --kv-disk-mb; 0: no disk tier
  std::int64_t lease_quota_blocks = 256;             // per tenant, unless overridden
  double lease_ram_fraction = 0.5;                   // share of RAM blocks leases may pin
  double max_lease_ttl_s = 24 * 3600.0;
  std::int64_t max_sequences = 1024;   // live sequences at once
  Env* env = nullptr;                  // Env::Default() when null
  MetricsRegistry* metrics = nullptr;  // a private registry when null
};

enum class TokenSource { kRam, kDisk, kRecompute };
std::string_view TokenSourceName(TokenSource source);  // "ram" | "disk" | "recompute"

// Why the cached prefix ends where it does.
enum class DivergeReason {
  kNone,              // every requested token was cached
  kNotCached,         // nothing is cached after the prefix
  kTokenMismatch,     // cached branches continue the prefix with other tokens
  kSnapshotRejected,  // a snapshot failed verification (corrupt, truncated, mismatched)
  kRestoreFailed,     // a snapshot could not be read, or no RAM was free to restore it into
};
std::string_view DivergeReasonName(DivergeReason reason);

struct SourceSpan {
  std::int64_t begin = 0;
  std::int64_t end = 0;
  TokenSource source = TokenSource::kRam;
};

// Where the KV of each requested token comes from: the raw material of cost feedback.
struct KvAccount {
  std::int64_t prompt_tokens = 0;
  std::int64_t ram_tokens = 0;
  std::int64_t disk_tokens = 0;
  std::int64_t recompute_tokens = 0;
  std::int64_t diverged_at = 0;  // first position not served from the cache
  DivergeReason reason = DivergeReason::kNone;
  std::vector<SourceSpan> spans;  // ascending, covering [0, prompt_tokens)
};

class KvManager;

// A live sequence; releases it on destruction. Move-only. REQUIRES: the manager outlives it.
class KvSequence {
 public:
  KvSequence() = default;
  KvSequence(KvManager* manager, SeqId id) : manager_(manager), id_(id) {}
  KvSequence(KvSequence&& other) noexcept;
  KvSequence& operator=(KvSequence&& other) noexcept;
  KvSequence(const KvSequence&) = delete;
  KvSequence& operator=(const KvSequence&) = delete;
  ~KvSequence() { Release(); }

  SeqId Id() const { return id_; }
  bool Valid() const { return manager_ != nullptr; }
  // Publishes the sequence's written blocks to the index and frees it. Idempotent.
  void Release();

 private:
  KvManager* manager_ = nullptr;
  SeqId id_ = 0;
};

struct Acquired {
  KvSequence seq;
  KvAccount account;
};

struct LeaseRequest {
  std::string tenant;
  std::vector<std::int32_t> tokens;  // the path to keep warm
  double ttl_s = 0;                  // in (0, max_lease_ttl_s]
  Id key;                            // optional: a lease with the same tenant and key is replaced
};

struct LeaseInfo {
  LeaseId id = 0;
  std::int64_t blocks = 0;             // charged against the tenant's quota
  std::int64_t cached_tokens = 0;      // of the path, cached (RAM or disk) when granted
  std::int64_t expires_at_micros = 0;  // Env::NowMicros clock
  bool replaced = false;
};

struct KvStats {
  std::int64_t block_tokens = 0;
  std::int64_t ram_blocks_capacity = 0;
  std::int64_t ram_blocks_used = 0;
  std::int64_t index_nodes = 0;
  std::int64_t index_resident = 0;
  std::int64_t sequences = 0;
  std::int64_t disk_files = 0;
  std::int64_t disk_bytes = 0;
  std::int64_t leases = 0;
  std::int64_t leased_blocks = 0;
  std::uint64_t tokens_ram = 0;
  std::uint64_t tokens_disk = 0;
  std::uint64_t tokens_recompute = 0;
  std::uint64_t spills = 0;
  std::uint64_t spill_failures = 0;
  std::uint64_t restores = 0;
  std::uint64_t ram_evictions = 0;
  std::uint64_t disk_evictions = 0;
  std::uint64_t snapshots_rejected = 0;
  std::uint64_t cow_copies = 0;
  std::uint64_t leases_refused = 0;
};

class KvManager final : public engine::KvStorage {
 public:
  // Validates the options, and indexes the snapshot directory when there is a disk tier.
  static Result<std::unique_ptr<KvManager>> Open(const KvOptions& options);
  ~KvManager() override;

  // A new sequence declaring `tokens`, holding the KV of their longest cached prefix.
  // kInvalidArgument for a negative token; kResourceExhausted when max_sequences are live.
  Result<Acquired> Acquire(std::string_view tenant, std::span<const std::int32_t> tokens);

  // Declares more tokens (e.g. a sampled one) before the engine writes their positions.
  Status Append(SeqId seq, std::span<const std::int32_t> tokens);
  // Rewinds the sequence to its first `length` tokens (rows beyond are dropped).
  Status Truncate(SeqId seq, std::int64_t length);
  // The last Forward including `seq` succeeded: its rows may be shared.
  Status Commit(SeqId seq);
  // Positions with KV rows (the end declared by the last PrepareWrite, or the cached prefix).
  Result<std::int64_t> Length(SeqId seq) const;
  // The declared tokens.
  Result<std::vector<std::int32_t>> Tokens(SeqId seq) const;
  // Publishes the rows known to be written and frees the sequence; unknown ids are ignored.
  void Release(SeqId seq);
  // Publishes the rows known to be written now, the partial last block included, while the
  // sequence lives on (the end of a prompt: parallel samples and branches started before this
  // sequence is released then reuse all of it). The sequence's next write into that block copies
  // it first. kNotFound for an unknown sequence.
  Status Share(SeqId seq);

  // For each end in `ends` (ascending, each in [1, tokens.size()]): the key of the cached span (RAM
  // or disk) that holds position end - 1 of this path, or the zero key when tokens [0, end) are
  // not all cached. Touches nothing: a lookup, not a use.
  std::vector<SpanKey> SpansHolding(std::string_view tenant, std::span<const std::int32_t> tokens,
                                    std::span<const std::int64_t> ends);
  // Whether each span is still cached (RAM or disk).
  std::vector<bool> Contains(std::span<const SpanKey> keys) const;

  // Leases (see lease_table.h). kInvalidArgument for a bad TTL or empty path; kResourceExhausted
  // over a quota; kNotFound for an unknown lease or one of another tenant.
  Result<LeaseInfo> Lease(const LeaseRequest& request);
  Status RenewLease(std::string_view tenant, LeaseId id, double ttl_s);
  Status ReleaseLease(std::string_view tenant, LeaseId id);
  void SetTenantLeaseQuota(std::string_view tenant, std::int64_t blocks);

  // Writes a snapshot of every resident span that has none (graceful shutdown: the next process
  // restores instead of recomputing). Returns the last write error, after trying every span.
  Status FlushToDisk();

  KvStats Stats();
  const KvOptions& Options() const { return options_; }
  const Id& ModelFingerprint() const { return options_.model_fingerprint; }

  // KvStorage.
  engine::KvGeometry Geometry() const override { return options_.geometry; }
  Status PrepareWrite(SeqId seq, std::int64_t begin, std::int64_t count) override;
  engine::KvRun Keys(SeqId seq, std::int64_t layer, std::int64_t pos) override;
  engine::KvRun Values(SeqId seq, std::int64_t layer, std::int64_t pos) override;

 private:
  struct Token {};

 public:
  KvManager(Token /*unused*/, const KvOptions& options);

 private:
  struct SeqState;

  SeqState* Lookup(SeqId seq) const;  // REQUIRES: mu_ held
  const SpanKey& ChainKey(SeqState& s, std::int64_t block);
  Status OpenDiskTier();
  // Allocation, eviction, spill and restore (kv_manager_evict.cpp); all REQUIRE mu_ held.
  Result<BlockId> AllocateBlock();
  bool EvictOne();
  Status Spill(RadixNode& node);
  void EnforceDiskBudget();
  // Reads, verifies and makes resident the node's snapshot; kDataLoss when verification fails.
  Status Restore(const SpanKey& key, std::int64_t start);
  void DropNode(const SpanKey& key);
  bool Pinned(const RadixNode& node) const;
  void ExpireLeases();
  Status OutOfBlocks() const;
  // Publishing (kv_manager_seq.cpp); REQUIRE mu_ held.
  void ConfirmTo(SeqState& s, std::int64_t rows);
  void Publish(SeqState& s, std::int64_t block, std::int64_t n_tokens);
  void PublishConfirmed(SeqState& s);  // every confirmed row, the partial last block included
  void DropRedundantSiblings(const RadixNode& node);
  void ReleaseLocked(SeqState& s);
  void UpdateGauges();
  engine::KvRun RunAt(SeqId seq, std::int64_t plane, std::int64_t pos) const;

  const KvOptions options_;
  const BlockLayout layout_;
  Env* const env_;
  std::unique_ptr<MetricsRegistry> own_metrics_;
  KvMetrics metrics_;

  mutable std::mutex mu_;
  BlockPool pool_;          // GUARDED_BY(mu_)
  RadixIndex index_;        // GUARDED_BY(mu_)
  LeaseTable leases_;       // GUARDED_BY(mu_)
  DiskTier disk_;           // GUARDED_BY(mu_)
  std::uint64_t tick_ = 0;  // GUARDED_BY(mu_): LRU clock
  // GUARDED_BY(mu_) for writes; fixed size. Keys/Values read a live sequence's slot without mu_.
  std::vector<std::unique_ptr<SeqState>> slots_;
  std::vector<std::uint32_t> free_slots_;  // GUARDED_BY(mu_)
  std::uint32_t next_generation_ = 1;      // GUARDED_BY(mu_)
  std::int64_t gauge_ram_ = 0;             // GUARDED_BY(mu_): last values added to the gauges
  std::int64_t gauge_disk_ = 0;            // GUARDED_BY(mu_)
  std::int64_t gauge_leases_ = 0;          // GUARDED_BY(mu_)
};

}  // namespace llmsync::kvcache
