// SHA-256 over OpenSSL's EVP interface, one-shot or incremental.
//
// Thread safety: a Sha256 object is single-threaded; distinct objects are independent.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

namespace llmsync {

using Sha256Digest = std::array<std::uint8_t, 32>;

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(std::span<const std::uint8_t> bytes);
  void Update(std::string_view text);
  // Appends a little-endian fixed-width integer: for canonical encodings.
  void UpdateU32(std::uint32_t v);
  void UpdateU64(std::uint64_t v);
  // Returns the digest; the object may not be updated afterwards.
  Sha256Digest Finish();

  static Sha256Digest Hash(std::span<const std::uint8_t> bytes);
  static Sha256Digest Hash(std::string_view text);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace llmsync
