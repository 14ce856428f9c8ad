// Span keys: the names of cached KV spans. A span is the run of tokens one KV block holds (at most
// block_tokens of them, starting at a block boundary). Its key is a hash chain, like a node id:
//
//   root  = SHA-256("llmsync.kv.root.v1", tenant, model fingerprint, block_tokens, dtype)
//   child = SHA-256("llmsync.kv.span.v1", parent key, token count, tokens)
//
// so the key of a span names the whole token prefix ending with it, within one tenant and one
// model. Equal prefixes of different tenants never share a key (no cross-tenant cache probing),
// and a snapshot file named by its key can be checked against the exact path it claims.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "engine/kv_storage.h"
#include "llmsync/id.h"

namespace llmsync::kvcache {

using SpanKey = Id;

SpanKey RootKey(std::string_view tenant, const Id& model_fingerprint, std::int64_t block_tokens,
                engine::KvDtype dtype);
SpanKey ChildKey(const SpanKey& parent, std::span<const std::int32_t> tokens);

// Length of the longest common prefix of a and b.
std::int64_t CommonPrefix(std::span<const std::int32_t> a, std::span<const std::int32_t> b);

}  // namespace llmsync::kvcache
