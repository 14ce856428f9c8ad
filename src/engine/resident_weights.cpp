// Anonymous huge-page copies of weight matrices.
#include "engine/resident_weights.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

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

const std::uint8_t* ResidentWeights::Read(int fd, std::uint64_t offset, std::uint64_t n) {
  const std::uint64_t rounded = (n + kAlign - 1) / kAlign * kAlign;
  if (base_ == nullptr || rounded > capacity_ - used_) return nullptr;
  std::uint8_t* dst = base_ + used_;
  std::uint64_t done = 0;
  while (done < n) {
    const ssize_t got = ::pread(fd, dst + done, n - done, static_cast<off_t>(offset + done));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return nullptr;
    done += static_cast<std::uint64_t>(got);
  }
  used_ += rounded;
  return dst;
}

bool WeightsForcedMapped() {
  const char* mode = std::getenv("LLMSYNC_WEIGHTS");
  return mode != nullptr && std::strcmp(mode, "map") == 0;
}

}  // namespace llmsync::engine
