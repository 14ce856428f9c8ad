// Input validation for the session layer: UTF-8, size limits, tenants, drafts. Everything a client
// can send passes through here before it can reach the store, and every rejection says what was
// wrong and where.
//
// Thread safety: pure functions over values.
#pragma once

#include <cstddef>
#include <string_view>

#include "llmsync/status.h"
#include "session/node.h"

namespace llmsync::session {

struct SessionLimits {
  std::size_t max_text_bytes = 1 << 20;  // per node
  std::size_t max_tokens_per_node = 1 << 18;
  std::size_t max_nodes_per_append = 1024;
  std::size_t max_metadata_bytes = 256;  // tool_name, call_id
  std::size_t max_tenant_bytes = 128;
  std::size_t max_idempotency_key_bytes = 256;
};

// OK when `text` is well-formed UTF-8 (no overlong forms, no surrogates, nothing above
// U+10FFFF); otherwise kInvalidArgument naming `what` and the byte offset of the first error.
Status ValidateUtf8(std::string_view text, std::string_view what);
// A tenant is 1..max_tenant_bytes of UTF-8 without control characters.
Status ValidateTenant(std::string_view tenant, const SessionLimits& limits);
// Kind and visibility in range, text and metadata UTF-8 and within limits, token ids >= 0.
// `index` names the node in messages ("node 2: ...").
Status ValidateDraft(const NodeDraft& draft, std::size_t index, const SessionLimits& limits);

}  // namespace llmsync::session
