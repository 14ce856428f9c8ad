// Id: a 256-bit identifier written as 64 lowercase hex characters.
//
// Node ids are SHA-256 digests (the id names the whole path, like a git commit); session, run and
// response ids are random. Parsing is strict: anything but exactly 64 hex digits is an error, so a
// client typo never silently names another object.
//
// Thread safety: Id is a value type; Random() may be called from any thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "llmsync/status.h"

namespace llmsync {

class Id {
 public:
  static constexpr std::size_t kBytes = 32;
  static constexpr std::size_t kHexChars = 2 * kBytes;
  using Bytes = std::array<std::uint8_t, kBytes>;

  Id() = default;  // all zero: the "no id" value
  explicit Id(const Bytes& bytes) : bytes_(bytes) {}

  // REQUIRES: nothing; returns kInvalidArgument naming the first bad character or the length.
  static Result<Id> FromHex(std::string_view hex);
  // 256 bits from the operating system's CSPRNG.
  static Id Random();

  std::string ToHex() const;
  // The first 12 hex characters, for logs.
  std::string ShortHex() const { return ToHex().substr(0, 12); }
  bool IsZero() const;
  const Bytes& RawBytes() const { return bytes_; }

  friend bool operator==(const Id&, const Id&) = default;
  friend auto operator<=>(const Id&, const Id&) = default;

 private:
  Bytes bytes_{};
};

}  // namespace llmsync

template <>
struct std::hash<llmsync::Id> {
  std::size_t operator()(const llmsync::Id& id) const noexcept {
    std::size_t h = 0;
    for (int i = 0; i < 8; ++i) h = (h << 8) | id.RawBytes()[i];
    return h;  // ids are uniformly distributed; the first 8 bytes suffice
  }
};
