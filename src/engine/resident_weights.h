// ResidentWeights: private copies of a model's weight matrices in anonymous memory backed by
// transparent huge pages, made once at load time so that decode streams weights at the speed the
// kernels can take them.
//
// Why: reading the weights through the GGUF file's memory map is slower than reading the same
// bytes from anonymous memory in 2 MiB pages. On the development VM one core's Q4_K decode tile
// read 15 GB/s from the file mapping against 21 GB/s from a huge-page copy (bench kernels, 9.4 MB
// matrices, 600 MB of them): the page cache maps the file mostly in 4 KiB pages, and each TLB miss
// costs a nested page walk under virtualization. See docs/PERFORMANCE.md (Engine).
//
// Costs: the process's RSS stays about the size of the weights (the copies are read from the file
// with pread, so the mapping's pages of copied matrices are never touched and never count); the
// page cache keeps its own copy of the file, reclaimable by the kernel; loading reads the weights
// once (the page cache makes that a memory copy when the file was read recently); and processes on
// one host no longer share the weights' physical pages. Q4_0 matrices may be repacked on the way
// (ReadInterleavedQ4_0) into the layout the AVX-512 VNNI tiles stream: the same number of bytes for
// the usual shapes, and one more pass over them at load. Model::Open makes the copies only when
// asked (Placement::kHugePageCopy: the processes that compute), and LLMSYNC_WEIGHTS=map overrides
// that.
//
// Thread safety: Reserve and Read are for the loading thread only; the copies are immutable and
// may be read by any number of threads afterwards, until the object is destroyed.
#pragma once

#include <cstdint>

namespace llmsync::engine {

class ResidentWeights {
 public:
  ResidentWeights() = default;
  ~ResidentWeights();
  ResidentWeights(const ResidentWeights&) = delete;
  ResidentWeights& operator=(const ResidentWeights&) = delete;

  // Reserves room for copies totalling `bytes` (each copy is rounded up to 64 bytes; include that).
  // False when the memory cannot be mapped; the caller then keeps the weights where they are.
  bool Reserve(std::uint64_t bytes);
  // Reads n bytes at `offset` of the open file `fd` into the reserved region (64-byte aligned).
  // Null when the read fails or the region is full.
  const std::uint8_t* Read(int fd, std::uint64_t offset, std::uint64_t n);
  // Reads the rows x cols Q4_0 matrix at `offset` of `fd` and stores it in the kInterleaved16
  // layout (InterleavedBytes(rows, cols) of the region; quant/repack.h), converting a few groups of
  // rows at a time through a small buffer. Null when the read fails or the region is full.
  const std::uint8_t* ReadInterleavedQ4_0(  // NOLINT(readability-identifier-naming): ggml's type name
      int fd, std::uint64_t offset, std::int64_t rows, std::int64_t cols);

  std::uint64_t Bytes() const { return used_; }

 private:
  // Reads n bytes at `offset` of `fd` into dst; false on a failed or short read.
  static bool ReadFully(int fd, std::uint64_t offset, std::uint64_t n, std::uint8_t* dst);

  void* mapping_ = nullptr;
  std::uint64_t mapping_bytes_ = 0;
  std::uint8_t* base_ = nullptr;  // 2 MiB aligned start inside the mapping
  std::uint64_t capacity_ = 0;
  std::uint64_t used_ = 0;
};

// True when $LLMSYNC_WEIGHTS is "map": weights stay in the file mapping even where a copy was asked.
bool WeightsForcedMapped();

}  // namespace llmsync::engine
