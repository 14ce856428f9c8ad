#include "base/sha256.h"

#include <openssl/evp.h>

#include <stdexcept>

namespace llmsync {

struct Sha256::Impl {
  EVP_MD_CTX* ctx = nullptr;
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) {
  impl_->ctx = EVP_MD_CTX_new();
  // Allocation failure of a few hundred bytes is not an expected condition.
  if (impl_->ctx == nullptr || EVP_DigestInit_ex(impl_->ctx, EVP_sha256(), nullptr) != 1) {
    throw std::bad_alloc();
  }
}

Sha256::~Sha256() { EVP_MD_CTX_free(impl_->ctx); }

void Sha256::Update(std::span<const std::uint8_t> bytes) {
  if (!bytes.empty()) EVP_DigestUpdate(impl_->ctx, bytes.data(), bytes.size());
}

void Sha256::Update(std::string_view text) {
  if (!text.empty()) EVP_DigestUpdate(impl_->ctx, text.data(), text.size());
}

void Sha256::UpdateU32(std::uint32_t v) {
  std::uint8_t b[4];
  for (int i = 0; i < 4; ++i) b[i] = static_cast<std::uint8_t>(v >> (8 * i));
  Update(std::span<const std::uint8_t>(b, 4));
}

void Sha256::UpdateU64(std::uint64_t v) {
  std::uint8_t b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<std::uint8_t>(v >> (8 * i));
  Update(std::span<const std::uint8_t>(b, 8));
}

Sha256Digest Sha256::Finish() {
  Sha256Digest out{};
  unsigned int len = 0;
  EVP_DigestFinal_ex(impl_->ctx, out.data(), &len);
  return out;
}

Sha256Digest Sha256::Hash(std::span<const std::uint8_t> bytes) {
  Sha256 h;
  h.Update(bytes);
  return h.Finish();
}

Sha256Digest Sha256::Hash(std::string_view text) {
  Sha256 h;
  h.Update(text);
  return h.Finish();
}

}  // namespace llmsync
