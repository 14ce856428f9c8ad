// Weight layouts other than GGUF's row-major one: weights repacked once at load time into the order
// a kernel streams them.
//
// kInterleaved16 (Q4_0 only) stores rows in groups of 16. Group g holds rows 16 g .. 16 g + 15 (the
// last group padded with zero rows) in InterleavedGroupBytes(cols) bytes, groups one after another:
//   - codes: for each block b of 32 elements, 256 bytes at b * 256: for m in 0..3 and row j in
//     0..15, the four bytes qs[4 m .. 4 m + 3] of row 16 g + j's block b at b * 256 + 64 m + 4 j;
//   - scales: after the codes (at nb * 256), the 16 rows' f16 scales d of block b at nb * 256 +
//     32 b + 2 j;
//   - zero bytes up to a multiple of 64.
// So one 64-byte load holds four code bytes of each of 16 rows: their low nibbles are elements
// 4 m .. 4 m + 3 and their high nibbles elements 16 + 4 m .. 16 + 4 m + 3 of each row, and a
// dot-product instruction that sums groups of four bytes (vpdpbusd) yields the 16 rows' partial sums
// in its 16 lanes, with no horizontal reduction. The same bytes as GGUF's (and no more, when 16 rows
// of blocks fill whole cache lines, as they do for any multiple of 64 columns); only the order
// differs.
//
// Thread safety: pure functions over caller-owned memory.
#pragma once

#include <cstdint>

namespace llmsync::engine {

enum class WeightLayout {
  kRows,           // as stored in GGUF: row r at r * row_bytes
  kInterleaved16,  // Q4_0 rows interleaved in groups of 16 (above)
};

inline constexpr std::int64_t kInterleavedRows = 16;

// Bytes of one group of 16 rows of `cols` elements (a multiple of 32).
inline std::int64_t InterleavedGroupBytes(std::int64_t cols) {
  const std::int64_t nb = cols / 32;
  return (nb * 288 + 63) / 64 * 64;
}

// Bytes of a rows x cols matrix in the kInterleaved16 layout.
inline std::int64_t InterleavedBytes(std::int64_t rows, std::int64_t cols) {
  return (rows + kInterleavedRows - 1) / kInterleavedRows * InterleavedGroupBytes(cols);
}

// Writes the whole groups of rows [row_begin, row_end) of a Q4_0 matrix of total_rows rows (GGUF
// rows at `src`, the first of them row row_begin) into their places in the kInterleaved16 matrix at
// `dst`, padding included, so a matrix may be converted a few groups at a time as it is read.
// REQUIRES: cols % 32 == 0; row_begin % 16 == 0; row_end % 16 == 0 or row_end == total_rows;
// dst holds InterleavedBytes(total_rows, cols).
void InterleaveQ4_0Rows(  // NOLINT(readability-identifier-naming): ggml's type name
    const std::uint8_t* src, std::int64_t row_begin, std::int64_t row_end, std::int64_t total_rows,
    std::int64_t cols, std::uint8_t* dst);

}  // namespace llmsync::engine
