// KvManager::SeqState: the per-sequence state shared by kv_manager*.cpp. Not part of the API.
//
// Thread safety: fields are changed under KvManager::mu_ by the operations on this sequence; the
// engine's Keys/Values read `data` and `end` without the lock (see kv_manager.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kvcache/kv_manager/kv_manager.h"

namespace llmsync::kvcache {

struct KvManager::SeqState {
  SeqId id = 0;  // (generation << 32) | slot
  std::string tenant;
  std::vector<std::int32_t> tokens;  // declared (Acquire, Append)
  std::vector<SpanKey> chain;        // chain[i]: key of the first i blocks of tokens; chain[0] = root
  std::vector<BlockId> blocks;       // the block of positions [i * B, (i + 1) * B)
  std::vector<std::uint8_t*> data;   // pool data of blocks[i], for the lock-free read path
  std::int64_t end = 0;              // positions with rows: the end of the last PrepareWrite
  std::int64_t confirmed = 0;        // rows known written: publishable
  std::int64_t published = 0;        // leading full blocks whose span the index holds
  // Invariants: confirmed <= end <= tokens.size(); blocks.size() == ceil(end / B) after a
  // PrepareWrite; published <= confirmed / B.
};

}  // namespace llmsync::kvcache
