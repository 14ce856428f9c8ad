// Sealed blobs: hidden node content encrypted and authenticated under a server key, so a client
// can hold state it may not read and hand it back after the server has purged it.
//
// A blob is: version byte 0x01 | 24-byte random nonce | libsodium secretbox (XSalsa20-Poly1305)
// of the node's canonical content encoding (node.h). Opening checks the MAC; the session layer
// then checks that the content hashes to the node's id, which binds a blob to its node.
//
// Thread safety: SealKey is a value; Seal and Open are safe to call concurrently.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "llmsync/status.h"

namespace llmsync::session {

class SealKey {
 public:
  static constexpr std::size_t kBytes = 32;

  // 64 hex characters (as read from config or a key file; surrounding whitespace is ignored).
  static Result<SealKey> FromHex(std::string_view hex);
  // A fresh key from the system CSPRNG.
  static SealKey Random();
  // A key derived from a passphrase by hashing it: for tests and local use, not for production.
  static SealKey FromSecretForTesting(std::string_view secret);

  const std::array<std::uint8_t, kBytes>& Bytes() const { return bytes_; }
  std::string ToHex() const;

 private:
  std::array<std::uint8_t, kBytes> bytes_{};
};

// Encrypts and authenticates `plaintext`.
std::string Seal(const SealKey& key, std::string_view plaintext);
// The plaintext of a blob sealed under `key`; kInvalidArgument for a blob that is malformed,
// tampered with, or sealed under another key (one message for all three).
Result<std::string> OpenSealed(const SealKey& key, std::string_view blob);

}  // namespace llmsync::session
