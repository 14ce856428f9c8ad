#include "session/sealer.h"

#include <sodium.h>

#include <cctype>
#include <stdexcept>

#include "base/hex.h"
#include "base/sha256.h"

namespace llmsync::session {

namespace {

constexpr std::uint8_t kBlobVersion = 1;
constexpr std::size_t kHeader = 1 + crypto_secretbox_NONCEBYTES;

static_assert(SealKey::kBytes == crypto_secretbox_KEYBYTES);

void EnsureSodium() {
  // sodium_init is idempotent and thread-safe once it has succeeded; a failure means the process
  // has no usable randomness, which is not an expected condition.
  static const int kInitResult = sodium_init();
  if (kInitResult < 0) throw std::runtime_error("libsodium failed to initialise");
}

}  // namespace

Result<SealKey> SealKey::FromHex(std::string_view hex) {
  while (!hex.empty() && std::isspace(static_cast<unsigned char>(hex.front()))) hex.remove_prefix(1);
  while (!hex.empty() && std::isspace(static_cast<unsigned char>(hex.back()))) hex.remove_suffix(1);
  if (hex.size() != 2 * kBytes) {
    return Status::InvalidArgument("a seal key is " + std::to_string(2 * kBytes) + " hex characters, got " +
                                   std::to_string(hex.size()));
  }
  LLMSYNC_ASSIGN_OR_RETURN(std::vector<std::uint8_t> raw, HexDecode(hex));
  SealKey key;
  std::copy(raw.begin(), raw.end(), key.bytes_.begin());
  return key;
}

SealKey SealKey::Random() {
  EnsureSodium();
  SealKey key;
  randombytes_buf(key.bytes_.data(), key.bytes_.size());
  return key;
}

SealKey SealKey::FromSecretForTesting(std::string_view secret) {
  SealKey key;
  Sha256Digest d = Sha256::Hash(secret);
  std::copy(d.begin(), d.end(), key.bytes_.begin());
  return key;
}

std::string SealKey::ToHex() const { return HexEncode(bytes_); }

std::string Seal(const SealKey& key, std::string_view plaintext) {
  EnsureSodium();
  std::string blob(kHeader + crypto_secretbox_MACBYTES + plaintext.size(), '\0');
  auto* out = reinterpret_cast<unsigned char*>(blob.data());
  out[0] = kBlobVersion;
  randombytes_buf(out + 1, crypto_secretbox_NONCEBYTES);
  crypto_secretbox_easy(out + kHeader, reinterpret_cast<const unsigned char*>(plaintext.data()),
                        plaintext.size(), out + 1, key.Bytes().data());
  return blob;
}

Result<std::string> OpenSealed(const SealKey& key, std::string_view blob) {
  EnsureSodium();
  const Status bad = Status::InvalidArgument("the sealed blob is malformed, tampered with, or not ours");
  if (blob.size() < kHeader + crypto_secretbox_MACBYTES) return bad;
  const auto* in = reinterpret_cast<const unsigned char*>(blob.data());
  if (in[0] != kBlobVersion) return bad;
  std::string plain(blob.size() - kHeader - crypto_secretbox_MACBYTES, '\0');
  if (crypto_secretbox_open_easy(reinterpret_cast<unsigned char*>(plain.data()), in + kHeader,
                                 blob.size() - kHeader, in + 1, key.Bytes().data()) != 0) {
    return bad;
  }
  return plain;
}

}  // namespace llmsync::session
