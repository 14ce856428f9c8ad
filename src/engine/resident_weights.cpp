// Anonymous huge-page copies of weight matrices.
#include "engine/resident_weights.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "engine/quant/repack.h"

namespace llmsync::engine {
namespace {

constexpr std::uint64_t kHugePage = std::uint64_t{2} << 20;
constexpr std::uint64_t kAlign = 64;

}  // namespace

ResidentWeights::~ResidentWeights() {
  if (mapping_ != nullptr) ::munmap(mapping_, mapping_bytes_);
}

bool ResidentWeights::Reserve(std::uint64_t bytes) {
  if (mapping_ != nullptr || bytes == 0) return false;
  const std::uint64_t capacity = (bytes + kHugePage - 1) / kHugePage * kHugePage;
  const std::uint64_t mapping_bytes = capacity + kHugePage;  // room to align the start
  void* mapping = ::mmap(nullptr, mapping_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mapping == MAP_FAILED) return false;
  mapping_ = mapping;
  mapping_bytes_ = mapping_bytes;
  const auto start = reinterpret_cast<std::uintptr_t>(mapping);
  base_ = reinterpret_cast<std::uint8_t*>((start + kHugePage - 1) / kHugePage * kHugePage);
  capacity_ = capacity;
  // Huge pages where the kernel allows them (advisory: without THP the copy still works), faulted
  // in up front by the kernel rather than one page fault at a time during the copy.
  ::madvise(base_, capacity_, MADV_HUGEPAGE);
#ifdef MADV_POPULATE_WRITE
  ::madvise(base_, capacity_, MADV_POPULATE_WRITE);
#endif
  return true;
}

bool ResidentWeights::ReadFully(int fd, std::uint64_t offset, std::uint64_t n, std::uint8_t* dst) {
  std::uint64_t done = 0;
  while (done < n) {
    const ssize_t got = ::pread(fd, dst + done, n - done, static_cast<off_t>(offset + done));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    done += static_cast<std::uint64_t>(got);
  }
  return true;
}

const std::uint8_t* ResidentWeights::Read(int fd, std::uint64_t offset, std::uint64_t n) {
  const std::uint64_t rounded = (n + kAlign - 1) / kAlign * kAlign;
  if (base_ == nullptr || rounded > capacity_ - used_) return nullptr;
  std::uint8_t* dst = base_ + used_;
  if (!ReadFully(fd, offset, n, dst)) return nullptr;
  used_ += rounded;
  return dst;
}

const std::uint8_t* ResidentWeights::ReadInterleavedQ4_0(  // NOLINT(readability-identifier-naming)
    int fd, std::uint64_t offset, std::int64_t rows, std::int64_t cols) {
  const auto bytes = static_cast<std::uint64_t>(InterleavedBytes(rows, cols));
  const std::uint64_t rounded = (bytes + kAlign - 1) / kAlign * kAlign;
  if (base_ == nullptr || rows <= 0 || cols % 32 != 0 || rounded > capacity_ - used_) return nullptr;
  std::uint8_t* dst = base_ + used_;
  const auto row_bytes = static_cast<std::uint64_t>(cols / 32 * 18);
  // About 1 MiB of GGUF rows per read: a whole number of groups of 16.
  const std::int64_t chunk_rows =
      std::max<std::int64_t>(1, static_cast<std::int64_t>((std::uint64_t{1} << 20) / (16 * row_bytes))) * 16;
  std::vector<std::uint8_t> buffer(static_cast<std::size_t>(chunk_rows) * row_bytes);
  for (std::int64_t r = 0; r < rows; r += chunk_rows) {
    const std::int64_t end = std::min(rows, r + chunk_rows);
    const std::uint64_t n = static_cast<std::uint64_t>(end - r) * row_bytes;
    if (!ReadFully(fd, offset + static_cast<std::uint64_t>(r) * row_bytes, n, buffer.data())) return nullptr;
    InterleaveQ4_0Rows(buffer.data(), r, end, rows, cols, dst);
  }
  used_ += rounded;
  return dst;
}

bool WeightsForcedMapped() {
  const char* mode = std::getenv("LLMSYNC_WEIGHTS");
  return mode != nullptr && std::strcmp(mode, "map") == 0;
}

}  // namespace llmsync::engine
