#include "kvcache/block_pool.h"

#include <cassert>
#include <cstring>
#include <new>
#include <string>

namespace llmsync::kvcache {

BlockPool::BlockPool(const BlockLayout& layout, std::int64_t capacity_blocks)
    : layout_(layout), capacity_(capacity_blocks < 0 ? 0 : capacity_blocks) {}

Result<BlockId> BlockPool::Allocate() {
  if (!free_.empty()) {
    BlockId b = free_.back();
    free_.pop_back();
    refs_[static_cast<std::size_t>(b)] = 1;
    ++used_;
    return b;
  }
  if (static_cast<std::int64_t>(memory_.size()) >= capacity_) {
    return Status::ResourceExhausted("kv: all " + std::to_string(capacity_) + " RAM blocks are in use");
  }
  try {
    memory_.push_back(std::make_unique_for_overwrite<std::uint8_t[]>(layout_.BlockBytes()));
    refs_.push_back(1);
  } catch (const std::bad_alloc&) {
    if (memory_.size() > refs_.size()) memory_.pop_back();
    return Status::ResourceExhausted("kv: cannot allocate a " + std::to_string(layout_.BlockBytes()) +
                                     "-byte block");
  }
  ++used_;
  return static_cast<BlockId>(memory_.size() - 1);
}

void BlockPool::Ref(BlockId b) {
  assert(refs_[static_cast<std::size_t>(b)] > 0);
  ++refs_[static_cast<std::size_t>(b)];
}

void BlockPool::Unref(BlockId b) {
  int& r = refs_[static_cast<std::size_t>(b)];
  assert(r > 0);
  if (--r == 0) {
    free_.push_back(b);
    --used_;
  }
}

void BlockPool::CopyRows(BlockId src, BlockId dst, std::int64_t n) {
  if (n <= 0) return;
  const std::size_t bytes = static_cast<std::size_t>(n) * layout_.RowBytes();
  const std::uint8_t* from = Data(src);
  std::uint8_t* to = Data(dst);
  for (std::int64_t plane = 0; plane < layout_.Planes(); ++plane) {
    std::size_t at = layout_.RowOffset(plane, 0);
    std::memcpy(to + at, from + at, bytes);
  }
}

}  // namespace llmsync::kvcache
