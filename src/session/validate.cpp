#include "session/validate.h"

#include <optional>
#include <string>

#include "text/utf8.h"

namespace llmsync::session {

namespace {

Status CheckField(std::string_view value, std::size_t limit, const std::string& what) {
  if (value.size() > limit) {
    return Status::InvalidArgument(what + " is " + std::to_string(value.size()) + " bytes; the limit is " +
                                   std::to_string(limit));
  }
  return ValidateUtf8(value, what);
}

}  // namespace

Status ValidateUtf8(std::string_view text, std::string_view what) {
  std::optional<std::size_t> bad = text::FindInvalidUtf8(text);
  if (!bad) return Status::Ok();
  return Status::InvalidArgument(std::string(what) + " is not valid UTF-8 (byte offset " +
                                 std::to_string(*bad) + ")");
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
