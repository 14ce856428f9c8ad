// The kInterleaved16 repacking of Q4_0 rows.
#include "engine/quant/repack.h"

#include <cassert>
#include <cstring>

#include "engine/quant/quant_blocks.h"

namespace llmsync::engine {

void InterleaveQ4_0Rows(  // NOLINT(readability-identifier-naming): ggml's type name
    const std::uint8_t* src, std::int64_t row_begin, std::int64_t row_end,
    [[maybe_unused]] std::int64_t total_rows, std::int64_t cols, std::uint8_t* dst) {
  assert(cols % kBlock32 == 0 && row_begin % kInterleavedRows == 0);
  assert(row_end % kInterleavedRows == 0 || row_end == total_rows);
  const std::int64_t nb = cols / kBlock32;
  const std::int64_t row_bytes = nb * static_cast<std::int64_t>(sizeof(BlockQ4_0));
  const std::int64_t group_bytes = InterleavedGroupBytes(cols);
  for (std::int64_t g0 = row_begin; g0 < row_end; g0 += kInterleavedRows) {
    std::uint8_t* group = dst + g0 / kInterleavedRows * group_bytes;
    std::memset(group, 0, static_cast<std::size_t>(group_bytes));
    std::uint8_t* codes = group;
    std::uint8_t* scales = group + nb * 256;
    for (std::int64_t j = 0; j < kInterleavedRows && g0 + j < row_end; ++j) {
      const std::uint8_t* row = src + (g0 - row_begin + j) * row_bytes;
      for (std::int64_t b = 0; b < nb; ++b) {
        const std::uint8_t* block = row + b * static_cast<std::int64_t>(sizeof(BlockQ4_0));
        std::memcpy(scales + b * 32 + 2 * j, block, 2);
        for (int m = 0; m < 4; ++m) std::memcpy(codes + b * 256 + 64 * m + 4 * j, block + 2 + 4 * m, 4);
      }
    }
  }
}

}  // namespace llmsync::engine
