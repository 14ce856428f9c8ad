// KvManager: opening, Acquire (prefix lookup and restore), leases, statistics and the engine's
// read path. Sequence writes and publishing are in kv_manager_seq.cpp; allocation, eviction, spill
// and restore in kv_manager_evict.cpp.
#include "kvcache/kv_manager/kv_manager.h"

#include <algorithm>
#include <cmath>

#include "base/logging.h"
#include "kvcache/kv_manager/kv_manager_internal.h"

namespace llmsync::kvcache {
namespace {

constexpr std::int64_t kMaxBlockTokens = 1024;
constexpr std::int64_t kMaxSequences = 1 << 20;

Status ValidateOptions(const KvOptions& o) {
  const engine::KvGeometry& g = o.geometry;
  if (o.model_fingerprint.IsZero()) return Status::InvalidArgument("kv: a model fingerprint is required");
  if (g.n_layer <= 0 || g.n_head_kv <= 0 || g.head_dim <= 0) {
    return Status::InvalidArgument("kv: invalid geometry (" + g.ToString() + ")");
  }
  if (o.block_tokens < 1 || o.block_tokens > kMaxBlockTokens) {
    return Status::InvalidArgument("kv: block_tokens must be in [1, " + std::to_string(kMaxBlockTokens) +
                                   "], got " + std::to_string(o.block_tokens));
  }
  const BlockLayout layout{g, o.block_tokens};
  if (o.ram_bytes < static_cast<std::int64_t>(layout.BlockBytes())) {
    return Status::InvalidArgument("kv: a RAM budget of " + std::to_string(o.ram_bytes) + " bytes holds no " +
                                   std::to_string(layout.BlockBytes()) + "-byte block");
  }
  if (o.disk_bytes < 0) return Status::InvalidArgument("kv: negative disk budget");
  if (!(o.lease_ram_fraction >= 0.0 && o.lease_ram_fraction <= 1.0)) {
    return Status::InvalidArgument("kv: lease_ram_fraction must be in [0, 1]");
  }
  if (!(o.max_lease_ttl_s > 0.0) || o.lease_quota_blocks < 0) {
    return Status::InvalidArgument("kv: max_lease_ttl_s must be positive and lease_quota_blocks >= 0");
  }
  if (o.max_sequences < 1 || o.max_sequences > kMaxSequences) {
    return Status::InvalidArgument("kv: max_sequences must be in [1, " + std::to_string(kMaxSequences) + "]");
  }
  return Status::Ok();
}

MetricsRegistry& RegistryFor(const KvOptions& o, std::unique_ptr<MetricsRegistry>& own) {
  if (o.metrics != nullptr) return *o.metrics;
  own = std::make_unique<MetricsRegistry>();
  return *own;
}

Status ValidateTokens(std::span<const std::int32_t> tokens) {
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0) {
      return Status::InvalidArgument("kv: token " + std::to_string(i) + " is negative (" +
                                     std::to_string(tokens[i]) + ")");
    }
  }
  return Status::Ok();
}

void AddSpan(KvAccount& account, std::int64_t begin, std::int64_t end, TokenSource source) {
  if (begin == end) return;
  if (!account.spans.empty() && account.spans.back().source == source && account.spans.back().end == begin) {
    account.spans.back().end = end;
  } else {
    account.spans.push_back(SourceSpan{begin, end, source});
  }
  std::int64_t n = end - begin;
  if (source == TokenSource::kRam) account.ram_tokens += n;
  if (source == TokenSource::kDisk) account.disk_tokens += n;
  if (source == TokenSource::kRecompute) account.recompute_tokens += n;
}

}  // namespace

std::string_view TokenSourceName(TokenSource source) {
  switch (source) {
    case TokenSource::kRam: return "ram";
    case TokenSource::kDisk: return "disk";
    case TokenSource::kRecompute: return "recompute";
  }
  return "unknown";
}

std::string_view DivergeReasonName(DivergeReason reason) {
  switch (reason) {
    case DivergeReason::kNone: return "none";
    case DivergeReason::kNotCached: return "not_cached";
    case DivergeReason::kTokenMismatch: return "token_mismatch";
    case DivergeReason::kSnapshotRejected: return "snapshot_rejected";
    case DivergeReason::kRestoreFailed: return "restore_failed";
  }
  return "unknown";
}

KvSequence::KvSequence(KvSequence&& other) noexcept : manager_(other.manager_), id_(other.id_) {
  other.manager_ = nullptr;
}

KvSequence& KvSequence::operator=(KvSequence&& other) noexcept {
  if (this != &other) {
    Release();
    manager_ = other.manager_;
    id_ = other.id_;
    other.manager_ = nullptr;
  }
  return *this;
}

void KvSequence::Release() {
  if (manager_ != nullptr) manager_->Release(id_);
  manager_ = nullptr;
}

KvManager::KvManager(Token /*unused*/, const KvOptions& options)
    : options_(options),
      layout_{options.geometry, options.block_tokens},
      env_(options.env != nullptr ? options.env : Env::Default()),
      metrics_(RegistryFor(options, own_metrics_)),
      pool_(layout_, options.ram_bytes / static_cast<std::int64_t>(layout_.BlockBytes())),
      leases_(options.block_tokens, options.lease_quota_blocks,
              static_cast<std::int64_t>(
                  std::floor(static_cast<double>(pool_.Capacity()) * options.lease_ram_fraction))),
      disk_(env_, options.snapshot_dir, options.model_fingerprint, layout_,
            static_cast<std::uint64_t>(options.disk_bytes)) {
  slots_.resize(static_cast<std::size_t>(options.max_sequences));
  for (std::size_t i = slots_.size(); i > 0; --i) free_slots_.push_back(static_cast<std::uint32_t>(i - 1));
}

KvManager::~KvManager() = default;

Result<std::unique_ptr<KvManager>> KvManager::Open(const KvOptions& options) {
  LLMSYNC_RETURN_IF_ERROR(ValidateOptions(options));
  auto manager = std::make_unique<KvManager>(Token{}, options);
  LLMSYNC_RETURN_IF_ERROR(manager->OpenDiskTier());
  return manager;
}

Status KvManager::OpenDiskTier() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!disk_.Enabled()) return Status::Ok();
  LLMSYNC_ASSIGN_OR_RETURN(DiskScan scan, disk_.Scan());
  metrics_.snapshots_rejected.Add(static_cast<std::uint64_t>(scan.removed_corrupt));
  for (SnapshotHeader& h : scan.headers) {
    if (index_.Find(h.key) != nullptr) continue;
    RadixNode node;
    node.key = h.key;
    node.parent = h.parent;
    node.start = h.start;
    node.tokens = std::move(h.tokens);
    node.on_disk = true;
    index_.Insert(std::move(node));
  }
  EnforceDiskBudget();
  UpdateGauges();
  LLMSYNC_LOG(kInfo) << "kv: indexed " << scan.headers.size() << " snapshots (" << disk_.Bytes()
                     << " bytes) in " << options_.snapshot_dir << "; removed " << scan.removed_corrupt
                     << " unreadable and " << scan.removed_temporary << " temporary files";
  return Status::Ok();
}

KvManager::SeqState* KvManager::Lookup(SeqId seq) const {
  const std::uint64_t slot = seq & 0xffffffffu;
  if (slot >= slots_.size()) return nullptr;
  SeqState* s = slots_[slot].get();
  return s != nullptr && s->id == seq ? s : nullptr;
}

const SpanKey& KvManager::ChainKey(SeqState& s, std::int64_t block) {
  const std::int64_t b = options_.block_tokens;
  while (static_cast<std::int64_t>(s.chain.size()) <= block) {
    const std::int64_t k = static_cast<std::int64_t>(s.chain.size()) - 1;
    std::span<const std::int32_t> segment(s.tokens.data() + k * b, static_cast<std::size_t>(b));
    s.chain.push_back(ChildKey(s.chain.back(), segment));
  }
  return s.chain[static_cast<std::size_t>(block)];
}

Result<Acquired> KvManager::Acquire(std::string_view tenant, std::span<const std::int32_t> tokens) {
  LLMSYNC_RETURN_IF_ERROR(ValidateTokens(tokens));
  std::lock_guard<std::mutex> lock(mu_);
  if (free_slots_.empty()) {
    return Status::ResourceExhausted("kv: all " + std::to_string(slots_.size()) +
                                     " sequence slots are in use");
  }
  const std::uint32_t slot = free_slots_.back();
  free_slots_.pop_back();
  auto s = std::make_unique<SeqState>();
  s->id = (static_cast<std::uint64_t>(next_generation_++) << 32) | slot;
  s->tenant = std::string(tenant);
  s->tokens.assign(tokens.begin(), tokens.end());
  s->chain.push_back(
      RootKey(tenant, options_.model_fingerprint, options_.block_tokens, options_.geometry.dtype));

  const std::int64_t b = options_.block_tokens;
  const std::int64_t n = static_cast<std::int64_t>(tokens.size());
  KvAccount account;
  account.prompt_tokens = n;
  DivergeReason reason = DivergeReason::kNone;
  std::int64_t pos = 0;
  const std::uint64_t tick = ++tick_;
  while (pos < n) {
    std::span<const std::int32_t> segment =
        tokens.subspan(static_cast<std::size_t>(pos), static_cast<std::size_t>(std::min(b, n - pos)));
    const SpanKey parent = ChainKey(*s, pos / b);
    RadixNode* node = nullptr;
    std::int64_t take = 0;
    if (static_cast<std::int64_t>(segment.size()) == b) {
      node = index_.Find(ChainKey(*s, pos / b + 1));
      take = node != nullptr ? b : 0;
    }
    if (node == nullptr) {
      ChildMatch m = index_.BestChild(parent, segment);
      node = m.node;
      take = m.common;
    }
    if (node == nullptr || take == 0) {
      reason = index_.HasChildren(parent) ? DivergeReason::kTokenMismatch : DivergeReason::kNotCached;
      break;
    }
    TokenSource source = TokenSource::kRam;
    if (!node->Resident()) {
      const SpanKey key = node->key;
      Status restored = Restore(key, pos);
      if (!restored.IsOk()) {
        reason = restored.Code() == StatusCode::kDataLoss ? DivergeReason::kSnapshotRejected
                                                          : DivergeReason::kRestoreFailed;
        break;
      }
      node = index_.Find(key);
      source = TokenSource::kDisk;
    }
    pool_.Ref(node->block);
    s->blocks.push_back(node->block);
    s->data.push_back(pool_.Data(node->block));
    index_.Touch(*node, tick);
    AddSpan(account, pos, pos + take, source);
    pos += take;
    if (take < b) {
      if (take < static_cast<std::int64_t>(segment.size())) reason = DivergeReason::kTokenMismatch;
      break;
    }
    ++s->published;  // a full block the index already holds
  }
  AddSpan(account, pos, n, TokenSource::kRecompute);
  account.diverged_at = pos;
  account.reason = pos == n ? DivergeReason::kNone : reason;
  s->end = pos;
  s->confirmed = pos;
  metrics_.tokens_ram.Add(static_cast<std::uint64_t>(account.ram_tokens));
  metrics_.tokens_disk.Add(static_cast<std::uint64_t>(account.disk_tokens));
  metrics_.tokens_recompute.Add(static_cast<std::uint64_t>(account.recompute_tokens));
  const SeqId id = s->id;
  slots_[slot] = std::move(s);
  UpdateGauges();
  return Acquired{KvSequence(this, id), std::move(account)};
}

std::vector<SpanKey> KvManager::SpansHolding(std::string_view tenant, std::span<const std::int32_t> tokens,
                                             std::span<const std::int64_t> ends) {
  std::vector<SpanKey> out(ends.size());
  const std::int64_t b = options_.block_tokens;
  const std::int64_t n = static_cast<std::int64_t>(tokens.size());
  std::lock_guard<std::mutex> lock(mu_);
  SpanKey parent = RootKey(tenant, options_.model_fingerprint, b, options_.geometry.dtype);
  std::size_t next = 0;
  std::int64_t pos = 0;
  while (pos < n && next < ends.size()) {
    std::span<const std::int32_t> segment =
        tokens.subspan(static_cast<std::size_t>(pos), static_cast<std::size_t>(std::min(b, n - pos)));
    const RadixNode* node = nullptr;
    std::int64_t take = 0;
    if (static_cast<std::int64_t>(segment.size()) == b) {
      node = index_.Find(ChildKey(parent, segment));
      take = node != nullptr ? b : 0;
    }
    if (node == nullptr) {
      ChildMatch m = index_.BestChild(parent, segment);
      node = m.node;
      take = m.common;
    }
    if (node == nullptr || take == 0) break;
    while (next < ends.size() && ends[next] <= pos + take) {
      if (ends[next] > pos) out[next] = node->key;
      ++next;
    }
    if (take < b) break;
    parent = node->key;
    pos += b;
  }
  return out;
}

std::vector<bool> KvManager::Contains(std::span<const SpanKey> keys) const {
  std::vector<bool> out(keys.size());
  std::lock_guard<std::mutex> lock(mu_);
  for (std::size_t i = 0; i < keys.size(); ++i) out[i] = index_.Find(keys[i]) != nullptr;
  return out;
}

Result<LeaseInfo> KvManager::Lease(const LeaseRequest& request) {
  if (request.tokens.empty()) return Status::InvalidArgument("kv: a lease needs a non-empty token path");
  LLMSYNC_RETURN_IF_ERROR(ValidateTokens(request.tokens));
  if (!(request.ttl_s > 0.0) || request.ttl_s > options_.max_lease_ttl_s) {
    return Status::InvalidArgument("kv: lease ttl_s must be in (0, " +
                                   std::to_string(options_.max_lease_ttl_s) + "], got " +
                                   std::to_string(request.ttl_s));
  }
  std::lock_guard<std::mutex> lock(mu_);
  ExpireLeases();
  const SpanKey root =
      RootKey(request.tenant, options_.model_fingerprint, options_.block_tokens, options_.geometry.dtype);
  const std::int64_t expires = env_->NowMicros() + static_cast<std::int64_t>(request.ttl_s * 1e6);
  Result<LeaseGrant> grant = leases_.Add(request.tenant, request.key, root, request.tokens, expires);
  if (!grant.IsOk()) {
    metrics_.leases_refused.Add();
    UpdateGauges();
    return grant.GetStatus();
  }
  // How much of the path is cached right now (RAM or disk).
  const std::int64_t b = options_.block_tokens;
  const std::int64_t n = static_cast<std::int64_t>(request.tokens.size());
  std::span<const std::int32_t> tokens(request.tokens);
  std::int64_t cached = 0;
  SpanKey parent = root;
  while (cached < n) {
    std::span<const std::int32_t> segment =
        tokens.subspan(static_cast<std::size_t>(cached), static_cast<std::size_t>(std::min(b, n - cached)));
    if (static_cast<std::int64_t>(segment.size()) == b) {
      SpanKey key = ChildKey(parent, segment);
      if (index_.Find(key) != nullptr) {
        cached += b;
        parent = key;
        continue;
      }
    }
    cached += index_.BestChild(parent, segment).common;
    break;
  }
  UpdateGauges();
  return LeaseInfo{grant->id, grant->blocks, cached, grant->expires_at_micros, grant->replaced};
}

Status KvManager::RenewLease(std::string_view tenant, LeaseId id, double ttl_s) {
  if (!(ttl_s > 0.0) || ttl_s > options_.max_lease_ttl_s) {
    return Status::InvalidArgument("kv: lease ttl_s must be in (0, " +
                                   std::to_string(options_.max_lease_ttl_s) + "], got " +
                                   std::to_string(ttl_s));
  }
  std::lock_guard<std::mutex> lock(mu_);
  ExpireLeases();
  return leases_.Renew(std::string(tenant), id, env_->NowMicros() + static_cast<std::int64_t>(ttl_s * 1e6));
}

Status KvManager::ReleaseLease(std::string_view tenant, LeaseId id) {
  std::lock_guard<std::mutex> lock(mu_);
  ExpireLeases();
  Status s = leases_.Remove(std::string(tenant), id);
  UpdateGauges();
  return s;
}

void KvManager::SetTenantLeaseQuota(std::string_view tenant, std::int64_t blocks) {
  std::lock_guard<std::mutex> lock(mu_);
  leases_.SetTenantQuota(std::string(tenant), blocks);
}

KvStats KvManager::Stats() {
  std::lock_guard<std::mutex> lock(mu_);
  ExpireLeases();
  KvStats st;
  st.block_tokens = options_.block_tokens;
  st.ram_blocks_capacity = pool_.Capacity();
  st.ram_blocks_used = pool_.Used();
  st.index_nodes = static_cast<std::int64_t>(index_.Size());
  st.index_resident = static_cast<std::int64_t>(index_.ResidentCount());
  st.sequences = static_cast<std::int64_t>(slots_.size() - free_slots_.size());
  st.disk_files = static_cast<std::int64_t>(disk_.Count());
  st.disk_bytes = static_cast<std::int64_t>(disk_.Bytes());
  st.leases = static_cast<std::int64_t>(leases_.Count());
  st.leased_blocks = leases_.TotalBlocks();
  st.tokens_ram = metrics_.tokens_ram.Value();
  st.tokens_disk = metrics_.tokens_disk.Value();
  st.tokens_recompute = metrics_.tokens_recompute.Value();
  st.spills = metrics_.spills.Value();
  st.spill_failures = metrics_.spill_failures.Value();
  st.restores = metrics_.restores.Value();
  st.ram_evictions = metrics_.ram_evictions.Value();
  st.disk_evictions = metrics_.disk_evictions.Value();
  st.snapshots_rejected = metrics_.snapshots_rejected.Value();
  st.cow_copies = metrics_.cow_copies.Value();
  st.leases_refused = metrics_.leases_refused.Value();
  return st;
}

void KvManager::UpdateGauges() {
  const auto ram = pool_.Used();
  const auto disk = static_cast<std::int64_t>(disk_.Bytes());
  const auto leases = static_cast<std::int64_t>(leases_.Count());
  // Deltas, so that managers sharing a registry add up.
  metrics_.ram_blocks_used->Add(ram - gauge_ram_);
  metrics_.disk_bytes->Add(disk - gauge_disk_);
  metrics_.leases->Add(leases - gauge_leases_);
  gauge_ram_ = ram;
  gauge_disk_ = disk;
  gauge_leases_ = leases;
}

engine::KvRun KvManager::RunAt(SeqId seq, std::int64_t plane, std::int64_t pos) const {
  // No lock: see the class comment. The sequence is live and not being changed.
  const SeqState& s = *slots_[seq & 0xffffffffu];
  const std::int64_t b = options_.block_tokens;
  const std::int64_t in_block = pos % b;
  std::uint8_t* base = s.data[static_cast<std::size_t>(pos / b)] + layout_.RowOffset(plane, in_block);
  return engine::KvRun{base, std::min(b - in_block, s.end - pos),
                       static_cast<std::int64_t>(layout_.RowBytes())};
}

engine::KvRun KvManager::Keys(SeqId seq, std::int64_t layer, std::int64_t pos) {
  return RunAt(seq, layer, pos);
}

engine::KvRun KvManager::Values(SeqId seq, std::int64_t layer, std::int64_t pos) {
  return RunAt(seq, options_.geometry.n_layer + layer, pos);
}

}  // namespace llmsync::kvcache
