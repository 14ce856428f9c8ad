// Snapshot codec: the on-disk form of one cached span (the KV rows of one block), and the checks a
// snapshot must pass before its rows are used.
//
// Format (little-endian; version 1):
//   offset  size  field
//        0     8  magic "LLMSKVS1"
//        8     4  format version (1)
//       12     4  dtype (0 = f16, 1 = f32)
//       16    12  geometry: n_layer, n_head_kv, head_dim (u32 each)
//       28     4  block_tokens
//       32     4  token count n (1..block_tokens)
//       36     8  start: position of the span's first token
//       44     8  written at (Unix ms; orders the disk tier's eviction across restarts)
//       52    32  model fingerprint
//       84    32  span key (ChildKey(parent key, tokens): names the whole prefix)
//      116    32  parent key
//      148   4n   the span's tokens (i32)
//         8       payload bytes = 2 * n_layer * n * row bytes
//         ...     payload: plane-major (K layers 0..L-1, V layers 0..L-1), then position
//        32       SHA-256 of every byte before it
//
// Checksum: SHA-256 rather than a CRC. It is already a dependency (OpenSSL, SHA-NI on x86), hashes
// at about 1.5 GB/s here — a 1 MiB block in under a millisecond, small beside reading it — and,
// unlike a 32-bit CRC, it does not let a corrupt multi-megabyte file slip through with
// probability 2^-32 per check over years of restores.
//
// DecodeSnapshot verifies, before writing a single row: exact file size, magic, version, the
// expected model fingerprint, dtype, geometry and block size, the expected span key, parent key,
// start and tokens, that the key really is ChildKey(parent, tokens), and the checksum. Anything
// else is kDataLoss (corrupt or truncated) or kInvalidArgument (a valid file for another
// model/path); the caller never uses such a file.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "kvcache/block_pool.h"
#include "kvcache/span_key.h"
#include "llmsync/id.h"
#include "llmsync/status.h"

namespace llmsync::kvcache {

inline constexpr std::uint32_t kSnapshotVersion = 1;
inline constexpr std::size_t kSnapshotFixedHeaderBytes = 148;

struct SnapshotHeader {
  engine::KvGeometry geometry;
  std::int64_t block_tokens = 0;
  std::int64_t start = 0;
  std::uint64_t written_unix_ms = 0;
  Id model;
  SpanKey key;
  SpanKey parent;
  std::vector<std::int32_t> tokens;
};

// The whole file for the rows [0, header.tokens.size()) of `block`, laid out per `layout`.
// REQUIRES: header.geometry == layout.geometry, header.block_tokens == layout.block_tokens,
// 1 <= tokens.size() <= block_tokens.
std::string EncodeSnapshot(const SnapshotHeader& header, const BlockLayout& layout,
                           const std::uint8_t* block);

// The size EncodeSnapshot produces for n tokens.
std::size_t SnapshotBytes(const BlockLayout& layout, std::int64_t n);

// Parses and sanity-checks the header only (for indexing a directory at startup); no checksum.
Result<SnapshotHeader> DecodeSnapshotHeader(std::span<const std::uint8_t> bytes);

// Verifies the whole file against `expected` (every field above, as described in the file comment)
// and then copies its rows into `block`. On any error `block` is untouched.
Status DecodeSnapshot(std::span<const std::uint8_t> bytes, const SnapshotHeader& expected,
                      const BlockLayout& layout, std::uint8_t* block);

}  // namespace llmsync::kvcache
