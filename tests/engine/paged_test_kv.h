// PagedTestKv: a KvStorage made of fixed-size blocks handed out in a scrambled order, the shape of
// the paged KV manager to come. Tests use it to show that the engine's results do not depend on
// how the store groups positions into runs, and that the interface is enough for a block store.
//
// Thread safety: as the KvStorage protocol requires; the rest is single-threaded.
#pragma once

#include <cstring>
#include <map>
#include <vector>

#include "engine/kv_storage.h"

namespace llmsync::engine::testing {

class PagedTestKv final : public KvStorage {
 public:
  PagedTestKv(const KvGeometry& geometry, std::int64_t block_positions, std::int64_t n_blocks)
      : geometry_(geometry), block_(block_positions) {
    block_bytes_ = static_cast<std::size_t>(2 * geometry.n_layer * block_) * geometry.RowBytes();
    pool_.resize(block_bytes_ * static_cast<std::size_t>(n_blocks), 0xAB);  // garbage, not zeros
    // Scrambled block order: (b * 7) % n is a permutation when gcd(7, n) == 1; tests pick such n.
    for (std::int64_t b = 0; b < n_blocks; ++b) free_.push_back((b * 7) % n_blocks);
  }

  KvGeometry Geometry() const override { return geometry_; }

  Status PrepareWrite(SeqId seq, std::int64_t begin, std::int64_t count) override {
    Seq& s = seqs_[seq];
    if (begin > s.length) return Status::InvalidArgument("paged: gap");
    std::int64_t end = begin + count;
    std::size_t blocks_needed = static_cast<std::size_t>((end + block_ - 1) / block_);
    while (s.blocks.size() > blocks_needed) {  // the sequence shrank: give blocks back
      free_.push_back(s.blocks.back());
      s.blocks.pop_back();
    }
    while (s.blocks.size() < blocks_needed) {
      if (free_.empty()) return Status::ResourceExhausted("paged: out of blocks");
      s.blocks.push_back(free_.front());
      free_.erase(free_.begin());
    }
    s.length = end;
    return Status::Ok();
  }

  KvRun Keys(SeqId seq, std::int64_t layer, std::int64_t pos) override { return RunAt(seq, layer, pos); }
  KvRun Values(SeqId seq, std::int64_t layer, std::int64_t pos) override {
    return RunAt(seq, geometry_.n_layer + layer, pos);
  }

 private:
  struct Seq {
    std::vector<std::int64_t> blocks;
    std::int64_t length = 0;
  };

  // Block layout: [plane (K layers, then V layers)][position in block][row].
  KvRun RunAt(SeqId seq, std::int64_t plane, std::int64_t pos) {
    const Seq& s = seqs_.find(seq)->second;
    std::int64_t block = s.blocks[static_cast<std::size_t>(pos / block_)];
    std::int64_t in_block = pos % block_;
    std::size_t row_bytes = geometry_.RowBytes();
    std::uint8_t* base = pool_.data() + static_cast<std::size_t>(block) * block_bytes_ +
                         (static_cast<std::size_t>(plane * block_ + in_block)) * row_bytes;
    return KvRun{base, std::min(block_ - in_block, s.length - pos), static_cast<std::int64_t>(row_bytes)};
  }

  KvGeometry geometry_;
  std::int64_t block_;
  std::size_t block_bytes_ = 0;
  std::vector<std::uint8_t> pool_;
  std::vector<std::int64_t> free_;
  std::map<SeqId, Seq> seqs_;
};

}  // namespace llmsync::engine::testing
