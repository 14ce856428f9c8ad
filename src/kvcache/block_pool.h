// BlockPool: the RAM tier of the KV cache — fixed-size blocks with reference counts, bounded by a
// byte budget.
//
// A block holds the keys and values of block_tokens consecutive positions for every layer. Layout
// (BlockLayout): plane-major, K of layers 0..L-1 then V of layers 0..L-1; within a plane, one row
// per position; a row is n_head_kv * head_dim elements of the KV dtype (F16 or F32). The rows of
// one plane are therefore contiguous, which is what KvStorage::Keys/Values hand to the engine.
//
// References are held by the radix index (a cached span) and by live sequences (their block
// tables). A block with more than one reference is shared and must be copied before it is written
// (copy on write, done by KvManager). Memory is allocated on first use and kept for reuse, never
// beyond `capacity` blocks.
//
// Thread safety: none; KvManager calls it under its mutex. Data(b) stays valid and unmoved while
// the block holds a reference, so readers may use the pointer without the lock.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "engine/kv_storage.h"
#include "llmsync/status.h"

namespace llmsync::kvcache {

using BlockId = std::int32_t;
inline constexpr BlockId kNoBlock = -1;

struct BlockLayout {
  engine::KvGeometry geometry;
  std::int64_t block_tokens = 32;

  std::int64_t Planes() const { return 2 * geometry.n_layer; }
  std::size_t RowBytes() const { return geometry.RowBytes(); }
  std::size_t BlockBytes() const {
    return static_cast<std::size_t>(Planes() * block_tokens) * geometry.RowBytes();
  }
  // Offset of the row of `pos` (0 <= pos < block_tokens) in `plane` (K layers, then V layers).
  std::size_t RowOffset(std::int64_t plane, std::int64_t pos) const {
    return static_cast<std::size_t>(plane * block_tokens + pos) * geometry.RowBytes();
  }
};

class BlockPool {
 public:
  BlockPool(const BlockLayout& layout, std::int64_t capacity_blocks);

  const BlockLayout& Layout() const { return layout_; }
  std::int64_t Capacity() const { return capacity_; }
  std::int64_t Used() const { return used_; }

  // A block with one reference, or kResourceExhausted when `capacity` blocks are in use or the
  // memory cannot be allocated. Its contents are unspecified.
  Result<BlockId> Allocate();
  // REQUIRES: b holds a reference.
  void Ref(BlockId b);
  // Drops one reference; at zero the block returns to the free list. REQUIRES: b holds a reference.
  void Unref(BlockId b);
  int RefCount(BlockId b) const { return refs_[static_cast<std::size_t>(b)]; }
  std::uint8_t* Data(BlockId b) { return memory_[static_cast<std::size_t>(b)].get(); }
  // Copies the rows of positions [0, n) of every plane from `src` to `dst`.
  void CopyRows(BlockId src, BlockId dst, std::int64_t n);

 private:
  BlockLayout layout_;
  std::int64_t capacity_;
  std::int64_t used_ = 0;
  std::vector<std::unique_ptr<std::uint8_t[]>> memory_;  // one per block ever allocated
  std::vector<int> refs_;
  std::vector<BlockId> free_;  // allocated memory with no references
};

}  // namespace llmsync::kvcache
