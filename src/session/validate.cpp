#include "session/validate.h"

#include <string>

namespace llmsync::session {

namespace {

// The offset of the first byte that is not part of well-formed UTF-8, or npos.
std::size_t FirstInvalidUtf8(std::string_view s) {
  std::size_t i = 0;
  const std::size_t n = s.size();
  while (i < n) {
    auto b0 = static_cast<unsigned char>(s[i]);
    if (b0 < 0x80) {
      ++i;
      continue;
    }
    std::size_t len = 0;
    unsigned char lo = 0x80;
    unsigned char hi = 0xbf;
    if (b0 >= 0xc2 && b0 <= 0xdf) {
      len = 2;
    } else if (b0 >= 0xe0 && b0 <= 0xef) {
      len = 3;
      if (b0 == 0xe0) lo = 0xa0;  // overlong
      if (b0 == 0xed) hi = 0x9f;  // surrogates
    } else if (b0 >= 0xf0 && b0 <= 0xf4) {
      len = 4;
      if (b0 == 0xf0) lo = 0x90;  // overlong
      if (b0 == 0xf4) hi = 0x8f;  // above U+10FFFF
    } else {
      return i;
    }
    if (i + len > n) return i;
    auto b1 = static_cast<unsigned char>(s[i + 1]);
    if (b1 < lo || b1 > hi) return i;
    for (std::size_t k = 2; k < len; ++k) {
      auto b = static_cast<unsigned char>(s[i + k]);
      if (b < 0x80 || b > 0xbf) return i;
    }
    i += len;
  }
  return std::string_view::npos;
}

Status CheckField(std::string_view value, std::size_t limit, const std::string& what) {
  if (value.size() > limit) {
    return Status::InvalidArgument(what + " is " + std::to_string(value.size()) + " bytes; the limit is " +
                                   std::to_string(limit));
  }
  return ValidateUtf8(value, what);
}

}  // namespace

Status ValidateUtf8(std::string_view text, std::string_view what) {
  std::size_t bad = FirstInvalidUtf8(text);
  if (bad == std::string_view::npos) return Status::Ok();
  return Status::InvalidArgument(std::string(what) + " is not valid UTF-8 (byte offset " +
                                 std::to_string(bad) + ")");
}

Status ValidateTenant(std::string_view tenant, const SessionLimits& limits) {
  if (tenant.empty()) return Status::InvalidArgument("the tenant is empty");
  LLMSYNC_RETURN_IF_ERROR(CheckField(tenant, limits.max_tenant_bytes, "the tenant"));
  for (char c : tenant) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return Status::InvalidArgument("the tenant contains a control character");
  }
  return Status::Ok();
}

Status ValidateDraft(const NodeDraft& draft, std::size_t index, const SessionLimits& limits) {
  const std::string where = "node " + std::to_string(index);
  if (static_cast<int>(draft.kind) >= kNodeKindCount) {
    return Status::InvalidArgument(where + ": unknown kind " + std::to_string(static_cast<int>(draft.kind)));
  }
  if (draft.visibility != Visibility::kPublic && draft.visibility != Visibility::kHidden) {
    return Status::InvalidArgument(where + ": unknown visibility");
  }
  LLMSYNC_RETURN_IF_ERROR(CheckField(draft.text, limits.max_text_bytes, where + " text"));
  LLMSYNC_RETURN_IF_ERROR(CheckField(draft.tool_name, limits.max_metadata_bytes, where + " tool_name"));
  LLMSYNC_RETURN_IF_ERROR(CheckField(draft.call_id, limits.max_metadata_bytes, where + " call_id"));
  if (draft.tokens.size() > limits.max_tokens_per_node) {
    return Status::InvalidArgument(where + " has " + std::to_string(draft.tokens.size()) +
                                   " tokens; the limit is " + std::to_string(limits.max_tokens_per_node));
  }
  for (std::size_t i = 0; i < draft.tokens.size(); ++i) {
    if (draft.tokens[i] < 0) {
      return Status::InvalidArgument(where + ": token " + std::to_string(i) + " is negative");
    }
  }
  return Status::Ok();
}

}  // namespace llmsync::session
