#include "text/bpe/bpe_word_cache.h"

namespace llmsync::text {

bool BpeWordCache::Lookup(std::string_view word, std::vector<TokenId>* out) const {
  if (word.size() > kMaxWordBytes) return false;
  const Shard& shard = shards_[ShardOf(word)];
  std::lock_guard<std::mutex> lock(shard.mu);
  auto it = shard.map.find(word);
  if (it == shard.map.end()) return false;
  out->insert(out->end(), it->second.begin(), it->second.end());
  return true;
}

void BpeWordCache::Insert(std::string_view word, std::span<const TokenId> ids) {
  if (word.size() > kMaxWordBytes) return;
  Shard& shard = shards_[ShardOf(word)];
  std::lock_guard<std::mutex> lock(shard.mu);
  if (shard.map.size() >= kMaxEntriesPerShard) shard.map.clear();
  shard.map.try_emplace(std::string(word), ids.begin(), ids.end());
}

}  // namespace llmsync::text
