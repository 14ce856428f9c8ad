#include "kvcache/span_key.h"

#include <algorithm>

#include "base/sha256.h"

namespace llmsync::kvcache {

SpanKey RootKey(std::string_view tenant, const Id& model_fingerprint, std::int64_t block_tokens,
                engine::KvDtype dtype) {
  Sha256 h;
  h.Update(std::string_view("llmsync.kv.root.v1"));
  h.UpdateU64(tenant.size());
  h.Update(tenant);
  h.Update(model_fingerprint.RawBytes());
  h.UpdateU64(static_cast<std::uint64_t>(block_tokens));
  h.UpdateU32(dtype == engine::KvDtype::kF16 ? 0 : 1);
  return SpanKey(h.Finish());
}

SpanKey ChildKey(const SpanKey& parent, std::span<const std::int32_t> tokens) {
  Sha256 h;
  h.Update(std::string_view("llmsync.kv.span.v1"));
  h.Update(parent.RawBytes());
  h.UpdateU32(static_cast<std::uint32_t>(tokens.size()));
  for (std::int32_t t : tokens) h.UpdateU32(static_cast<std::uint32_t>(t));
  return SpanKey(h.Finish());
}

std::int64_t CommonPrefix(std::span<const std::int32_t> a, std::span<const std::int32_t> b) {
  std::size_t n = std::min(a.size(), b.size());
  std::size_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return static_cast<std::int64_t>(i);
}

}  // namespace llmsync::kvcache
