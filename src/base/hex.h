// Hex encoding and strict decoding of byte strings.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "llmsync/status.h"

namespace llmsync {

// 0-15 for a hex digit of either case, -1 for any other character.
int HexDigitValue(char c);
std::string HexEncode(std::span<const std::uint8_t> bytes);
// Accepts upper and lower case; rejects odd lengths and non-hex characters, naming the offset.
Result<std::vector<std::uint8_t>> HexDecode(std::string_view hex);

}  // namespace llmsync
