// Fuzz target for the KV snapshot codec: any bytes, as a file found in the snapshot directory,
// must parse or be rejected cleanly — never read out of bounds, never allocate without bound.
// The expectation is taken from the parsed header itself, so mutations reach the size, key and
// checksum checks.
#include <cstdint>
#include <span>
#include <vector>

#include "kvcache/snapshot_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using llmsync::kvcache::BlockLayout;
  std::span<const std::uint8_t> bytes(data, size);
  auto header = llmsync::kvcache::DecodeSnapshotHeader(bytes);
  if (!header.IsOk()) return 0;
  const BlockLayout layout{header->geometry, header->block_tokens};
  // Headers may claim huge geometries; only allocate a block for plausible ones.
  const double block_bytes =
      2.0 * static_cast<double>(layout.geometry.n_layer) * static_cast<double>(layout.block_tokens) *
      static_cast<double>(layout.geometry.n_head_kv) * static_cast<double>(layout.geometry.head_dim) * 4.0;
  if (block_bytes > (1 << 20)) return 0;
  std::vector<std::uint8_t> block(layout.BlockBytes());
  (void)llmsync::kvcache::DecodeSnapshot(bytes, *header, layout, block.data());
  return 0;
}
