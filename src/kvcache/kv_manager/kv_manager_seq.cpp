// KvManager: the operations that change a sequence — declaring tokens, the engine's PrepareWrite
// (copy on write, growth, shrinking), commit, release — and publishing its blocks to the index.
#include <algorithm>

#include "kvcache/kv_manager/kv_manager.h"
#include "kvcache/kv_manager/kv_manager_internal.h"

namespace llmsync::kvcache {
namespace {

Status NoSequence(SeqId seq) { return Status::NotFound("kv: no live sequence " + std::to_string(seq)); }

}  // namespace

Status KvManager::Append(SeqId seq, std::span<const std::int32_t> tokens) {
  for (std::int32_t t : tokens) {
    if (t < 0) return Status::InvalidArgument("kv: negative token " + std::to_string(t));
  }
  std::lock_guard<std::mutex> lock(mu_);
  SeqState* s = Lookup(seq);
  if (s == nullptr) return NoSequence(seq);
  s->tokens.insert(s->tokens.end(), tokens.begin(), tokens.end());
  return Status::Ok();
}

Status KvManager::Truncate(SeqId seq, std::int64_t length) {
  std::lock_guard<std::mutex> lock(mu_);
  SeqState* s = Lookup(seq);
  if (s == nullptr) return NoSequence(seq);
  if (length < 0 || length > static_cast<std::int64_t>(s->tokens.size())) {
    return Status::InvalidArgument("kv: cannot truncate a sequence of " + std::to_string(s->tokens.size()) +
                                   " tokens to " + std::to_string(length));
  }
  const std::int64_t b = options_.block_tokens;
  s->tokens.resize(static_cast<std::size_t>(length));
  s->chain.resize(std::min(s->chain.size(), static_cast<std::size_t>(length / b + 1)));
  s->end = std::min(s->end, length);
  ConfirmTo(*s, std::min(s->confirmed, length));
  const std::size_t keep = static_cast<std::size_t>((s->end + b - 1) / b);
  while (s->blocks.size() > keep) {
    pool_.Unref(s->blocks.back());
    s->blocks.pop_back();
    s->data.pop_back();
  }
  UpdateGauges();
  return Status::Ok();
}

Status KvManager::Commit(SeqId seq) {
  std::lock_guard<std::mutex> lock(mu_);
  SeqState* s = Lookup(seq);
  if (s == nullptr) return NoSequence(seq);
  ConfirmTo(*s, s->end);
  return Status::Ok();
}

Result<std::int64_t> KvManager::Length(SeqId seq) const {
  std::lock_guard<std::mutex> lock(mu_);
  const SeqState* s = Lookup(seq);
  if (s == nullptr) return NoSequence(seq);
  return s->end;
}

Result<std::vector<std::int32_t>> KvManager::Tokens(SeqId seq) const {
  std::lock_guard<std::mutex> lock(mu_);
  const SeqState* s = Lookup(seq);
  if (s == nullptr) return NoSequence(seq);
  return s->tokens;
}

void KvManager::Release(SeqId seq) {
  std::lock_guard<std::mutex> lock(mu_);
  SeqState* s = Lookup(seq);
  if (s != nullptr) ReleaseLocked(*s);
}

Status KvManager::Share(SeqId seq) {
  std::lock_guard<std::mutex> lock(mu_);
  SeqState* s = Lookup(seq);
  if (s == nullptr) return NoSequence(seq);
  PublishConfirmed(*s);
  UpdateGauges();
  return Status::Ok();
}

void KvManager::PublishConfirmed(SeqState& s) {
  const std::int64_t b = options_.block_tokens;
  ConfirmTo(s, s.confirmed);
  if (s.confirmed % b != 0) Publish(s, s.confirmed / b, s.confirmed % b);
}

void KvManager::ReleaseLocked(SeqState& s) {
  PublishConfirmed(s);
  for (BlockId block : s.blocks) pool_.Unref(block);
  const std::uint32_t slot = static_cast<std::uint32_t>(s.id & 0xffffffffu);
  slots_[slot].reset();  // destroys s
  free_slots_.push_back(slot);
  UpdateGauges();
}

Status KvManager::PrepareWrite(SeqId seq, std::int64_t begin, std::int64_t count) {
  std::lock_guard<std::mutex> lock(mu_);
  SeqState* s = Lookup(seq);
  if (s == nullptr) return NoSequence(seq);
  if (begin < 0 || count < 0) return Status::InvalidArgument("kv: negative position or count");
  if (begin > s->end) {
    return Status::InvalidArgument("kv: sequence " + std::to_string(seq) + " holds " +
                                   std::to_string(s->end) + " positions; cannot write at " +
                                   std::to_string(begin) + " (positions must follow without gaps)");
  }
  if (begin + count > static_cast<std::int64_t>(s->tokens.size())) {
    return Status::InvalidArgument("kv: sequence " + std::to_string(seq) + " declares " +
                                   std::to_string(s->tokens.size()) + " tokens; writing positions up to " +
                                   std::to_string(begin + count) + " needs them declared first (Append)");
  }
  // The protocol guarantees rows [0, begin): they may be shared from now on.
  ConfirmTo(*s, begin);

  const std::int64_t b = options_.block_tokens;
  const std::int64_t first = begin / b;
  const std::int64_t need = count > 0 ? (begin + count + b - 1) / b : (begin + b - 1) / b;
  auto must_replace = [&](std::int64_t i) {
    return i >= static_cast<std::int64_t>(s->blocks.size()) ||
           pool_.RefCount(s->blocks[static_cast<std::size_t>(i)]) > 1;
  };
  // Reserve every block first, so that a failure leaves the sequence as it was.
  std::vector<BlockId> fresh;
  for (std::int64_t i = first; count > 0 && i < need; ++i) {
    if (!must_replace(i)) continue;
    Result<BlockId> block = AllocateBlock();
    if (!block.IsOk()) {
      for (BlockId f : fresh) pool_.Unref(f);
      UpdateGauges();
      return block.GetStatus();
    }
    fresh.push_back(*block);
  }
  std::size_t next = 0;
  for (std::int64_t i = first; count > 0 && i < need; ++i) {
    if (!must_replace(i)) continue;
    const BlockId block = fresh[next++];
    if (i < static_cast<std::int64_t>(s->blocks.size())) {
      // Copy on write: keep the shared rows before `begin`, write our own block from there.
      BlockId& slot = s->blocks[static_cast<std::size_t>(i)];
      if (i == first) pool_.CopyRows(slot, block, begin - first * b);
      pool_.Unref(slot);
      slot = block;
      s->data[static_cast<std::size_t>(i)] = pool_.Data(block);
      metrics_.cow_copies.Add();
    } else {
      s->blocks.push_back(block);
      s->data.push_back(pool_.Data(block));
    }
  }
  while (static_cast<std::int64_t>(s->blocks.size()) > need) {
    pool_.Unref(s->blocks.back());
    s->blocks.pop_back();
    s->data.pop_back();
  }
  s->end = begin + count;
  UpdateGauges();
  return Status::Ok();
}

void KvManager::ConfirmTo(SeqState& s, std::int64_t rows) {
  const std::int64_t b = options_.block_tokens;
  if (rows < s.confirmed) {
    s.confirmed = rows;
    s.published = std::min(s.published, rows / b);
    return;
  }
  s.confirmed = rows;
  for (std::int64_t i = s.published; i < rows / b; ++i) Publish(s, i, b);
  s.published = std::max(s.published, rows / b);
}

void KvManager::Publish(SeqState& s, std::int64_t block, std::int64_t n_tokens) {
  const std::int64_t b = options_.block_tokens;
  const SpanKey parent = ChainKey(s, block);
  std::span<const std::int32_t> segment(s.tokens.data() + block * b, static_cast<std::size_t>(n_tokens));
  const SpanKey key = n_tokens == b ? ChainKey(s, block + 1) : ChildKey(parent, segment);
  const BlockId ours = s.blocks[static_cast<std::size_t>(block)];
  const std::uint64_t tick = ++tick_;
  if (RadixNode* existing = index_.Find(key)) {
    if (!existing->Resident()) {  // a disk-only span: adopt our identical rows
      pool_.Ref(ours);
      index_.SetBlock(*existing, ours);
    }
    index_.Touch(*existing, tick);
    return;
  }
  if (n_tokens < b) {
    // A partial span that a cached sibling already covers adds nothing.
    ChildMatch m = index_.BestChild(parent, segment);
    if (m.node != nullptr && m.common == n_tokens) return;
  }
  RadixNode node;
  node.key = key;
  node.parent = parent;
  node.start = block * b;
  node.tokens.assign(segment.begin(), segment.end());
  node.block = ours;
  node.last_use = tick;
  pool_.Ref(ours);
  DropRedundantSiblings(index_.Insert(std::move(node)));
}

void KvManager::DropRedundantSiblings(const RadixNode& node) {
  // Partial siblings whose tokens are a prefix of the new node's: it serves every lookup they
  // served. Only those nobody else holds or pins.
  const SpanKey key = node.key;
  const std::vector<std::int32_t> tokens = node.tokens;
  for (const SpanKey& sibling_key : index_.Children(node.parent)) {
    RadixNode* sibling = index_.Find(sibling_key);
    if (sibling == nullptr || sibling_key == key || sibling->tokens.size() >= tokens.size()) continue;
    if (CommonPrefix(sibling->tokens, tokens) != static_cast<std::int64_t>(sibling->tokens.size())) continue;
    if (sibling->Resident() && pool_.RefCount(sibling->block) > 1) continue;
    if (Pinned(*sibling)) continue;
    DropNode(sibling_key);
  }
}

}  // namespace llmsync::kvcache
