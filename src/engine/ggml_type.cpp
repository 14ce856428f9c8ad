#include "engine/ggml_type.h"

#include <array>
#include <string>

namespace llmsync::engine {
namespace {

constexpr std::array kTypes = {
    GgmlTypeInfo{GgmlType::kF32, "f32", 1, 4},
    GgmlTypeInfo{GgmlType::kF16, "f16", 1, 2},
    GgmlTypeInfo{GgmlType::kQ4_0, "q4_0", 32, 18},
    GgmlTypeInfo{GgmlType::kQ4_1, "q4_1", 32, 20},
    GgmlTypeInfo{GgmlType::kQ5_0, "q5_0", 32, 22},
    GgmlTypeInfo{GgmlType::kQ5_1, "q5_1", 32, 24},
    GgmlTypeInfo{GgmlType::kQ8_0, "q8_0", 32, 34},
    GgmlTypeInfo{GgmlType::kQ8_1, "q8_1", 32, 36},
    GgmlTypeInfo{GgmlType::kQ2K, "q2_K", 256, 84},
    GgmlTypeInfo{GgmlType::kQ3K, "q3_K", 256, 110},
    GgmlTypeInfo{GgmlType::kQ4K, "q4_K", 256, 144},
    GgmlTypeInfo{GgmlType::kQ5K, "q5_K", 256, 176},
    GgmlTypeInfo{GgmlType::kQ6K, "q6_K", 256, 210},
    GgmlTypeInfo{GgmlType::kQ8K, "q8_K", 256, 292},
    GgmlTypeInfo{GgmlType::kIq2Xxs, "iq2_xxs", 256, 66},
    GgmlTypeInfo{GgmlType::kIq2Xs, "iq2_xs", 256, 74},
    GgmlTypeInfo{GgmlType::kIq3Xxs, "iq3_xxs", 256, 98},
    GgmlTypeInfo{GgmlType::kIq1S, "iq1_s", 256, 50},
    GgmlTypeInfo{GgmlType::kIq4Nl, "iq4_nl", 32, 18},
    GgmlTypeInfo{GgmlType::kIq3S, "iq3_s", 256, 110},
    GgmlTypeInfo{GgmlType::kIq2S, "iq2_s", 256, 82},
    GgmlTypeInfo{GgmlType::kIq4Xs, "iq4_xs", 256, 136},
    GgmlTypeInfo{GgmlType::kI8, "i8", 1, 1},
    GgmlTypeInfo{GgmlType::kI16, "i16", 1, 2},
    GgmlTypeInfo{GgmlType::kI32, "i32", 1, 4},
    GgmlTypeInfo{GgmlType::kI64, "i64", 1, 8},
    GgmlTypeInfo{GgmlType::kF64, "f64", 1, 8},
    GgmlTypeInfo{GgmlType::kIq1M, "iq1_m", 256, 56},
    GgmlTypeInfo{GgmlType::kBf16, "bf16", 1, 2},
    GgmlTypeInfo{GgmlType::kTq1_0, "tq1_0", 256, 54},
    GgmlTypeInfo{GgmlType::kTq2_0, "tq2_0", 256, 66},
};

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

}  // namespace

std::optional<GgmlTypeInfo> LookupGgmlType(std::uint32_t raw_id) {
  for (const GgmlTypeInfo& info : kTypes) {
    if (static_cast<std::uint32_t>(info.type) == raw_id) return info;
  }
  return std::nullopt;
}

GgmlTypeInfo GetGgmlTypeInfo(GgmlType type) {
  // Every enumerator is in the table, so the lookup cannot fail for a valid GgmlType.
  return *LookupGgmlType(static_cast<std::uint32_t>(type));
}

std::string_view GgmlTypeName(GgmlType type) { return GetGgmlTypeInfo(type).name; }

Result<GgmlType> ParseGgmlType(std::string_view name) {
  for (const GgmlTypeInfo& info : kTypes) {
    if (EqualsIgnoreCase(info.name, name)) return info.type;
  }
  return Status::InvalidArgument("unknown tensor type '" + std::string(name) + "'");
}

bool IsComputeSupported(GgmlType type) {
  switch (type) {
    case GgmlType::kF32:
    case GgmlType::kF16:
    case GgmlType::kBf16:
    case GgmlType::kQ8_0:
    case GgmlType::kQ4_0:
    case GgmlType::kQ4K:
    case GgmlType::kQ6K: return true;
    default: return false;
  }
}

Result<std::uint64_t> RowBytes(GgmlType type, std::uint64_t n) {
  GgmlTypeInfo info = GetGgmlTypeInfo(type);
  if (n % info.block_elems != 0) {
    return Status::InvalidArgument("row of " + std::to_string(n) + " elements is not a multiple of the " +
                                   std::string(info.name) + " block size " +
                                   std::to_string(info.block_elems));
  }
  return n / info.block_elems * info.block_bytes;
}

}  // namespace llmsync::engine
