// BpeWordCache: remembers the token ids of pre-tokenized words, because text repeats its words and
// merging is the expensive step of byte-level BPE.
//
// The cache is sharded by the word's hash; each shard has its own mutex and is cleared when it
// fills up (a cheap bound on memory that keeps the hot words of current traffic). Words longer than
// kMaxWordBytes are not cached: they are rare and would crowd out the common ones.
//
// Thread safety: safe for concurrent use; each shard's map is GUARDED_BY its mutex.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "text/vocab/vocab.h"

namespace llmsync::text {

class BpeWordCache {
 public:
  static constexpr std::size_t kShards = 16;
  static constexpr std::size_t kMaxEntriesPerShard = 16384;
  static constexpr std::size_t kMaxWordBytes = 64;

  // Appends the cached ids of `word` to `out` and returns true, or returns false.
  bool Lookup(std::string_view word, std::vector<TokenId>* out) const;
  void Insert(std::string_view word, std::span<const TokenId> ids);

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<std::string, std::vector<TokenId>, Hash, std::equal_to<>> map;  // GUARDED_BY(mu)
  };

  static std::size_t ShardOf(std::string_view word) { return Hash{}(word) % kShards; }

  std::array<Shard, kShards> shards_;
};

}  // namespace llmsync::text
