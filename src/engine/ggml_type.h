// The tensor element types of the GGUF/ggml ecosystem: their numeric ids as stored in files, names,
// and block geometry (elements per block, bytes per block).
//
// The table lists every type a GGUF file may name, so that files are read and described
// (`llmsync model info`) even when llmsync cannot compute with a type; IsComputeSupported() says
// which ones the engine runs.
//
// Thread safety: constant data and pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "llmsync/status.h"

namespace llmsync::engine {

enum class GgmlType : std::uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2K = 10,
  kQ3K = 11,
  kQ4K = 12,
  kQ5K = 13,
  kQ6K = 14,
  kQ8K = 15,
  kIq2Xxs = 16,
  kIq2Xs = 17,
  kIq3Xxs = 18,
  kIq1S = 19,
  kIq4Nl = 20,
  kIq3S = 21,
  kIq2S = 22,
  kIq4Xs = 23,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kIq1M = 29,
  kBf16 = 30,
  kTq1_0 = 34,
  kTq2_0 = 35,
};

struct GgmlTypeInfo {
  GgmlType type;
  std::string_view name;      // lower case, as llama.cpp prints it: "q4_K", "bf16"
  std::uint32_t block_elems;  // elements per block
  std::uint32_t block_bytes;  // bytes per block
};

// The info for a raw id read from a file, or nullopt for an id no known type has.
std::optional<GgmlTypeInfo> LookupGgmlType(std::uint32_t raw_id);
GgmlTypeInfo GetGgmlTypeInfo(GgmlType type);
std::string_view GgmlTypeName(GgmlType type);
// Accepts "f32", "f16", "bf16", "q8_0", "q4_0", "q4_k" (case-insensitive), and the other names.
Result<GgmlType> ParseGgmlType(std::string_view name);

// True for the types the native engine can compute with.
bool IsComputeSupported(GgmlType type);

// Bytes of a row of `n` elements, or an error when n is not a multiple of the block size.
Result<std::uint64_t> RowBytes(GgmlType type, std::uint64_t n);

}  // namespace llmsync::engine
