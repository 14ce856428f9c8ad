#include "llmsync/id.h"

#include <openssl/rand.h>

#include <algorithm>
#include <stdexcept>

#include "base/hex.h"

namespace llmsync {

Result<Id> Id::FromHex(std::string_view hex) {
  if (hex.size() != kHexChars) {
    return Status::InvalidArgument("id must be " + std::to_string(kHexChars) + " hex characters, got " +
                                   std::to_string(hex.size()));
  }
  LLMSYNC_ASSIGN_OR_RETURN(std::vector<std::uint8_t> raw, HexDecode(hex));
  Bytes bytes{};
  std::copy(raw.begin(), raw.end(), bytes.begin());
  return Id(bytes);
}

Id Id::Random() {
  Bytes bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
    throw std::runtime_error("the system random number generator failed");
  }
  return Id(bytes);
}

std::string Id::ToHex() const { return HexEncode(bytes_); }

bool Id::IsZero() const {
  return std::all_of(bytes_.begin(), bytes_.end(), [](std::uint8_t b) { return b == 0; });
}

}  // namespace llmsync
