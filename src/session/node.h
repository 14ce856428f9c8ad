// Nodes: the segments a conversation is made of, their canonical encoding and their ids.
//
// A node's id is SHA-256 over a domain tag, its parent's id and the canonical encoding of its
// content (kind, visibility, text, frozen token ids, tool metadata). The id of any node therefore
// names the whole path up to it, the way a git commit does. A root node's "parent" is the
// tenant's root id, derived from the tenant name, so equal conversations of different tenants
// never share ids.
//
// The canonical encoding (version 1), all integers little-endian:
//   u8 kind | u8 visibility | u64 len, text | u64 n, n x u32 token | u64 len, tool_name |
//   u64 len, call_id
// Changing it changes every id: add a new version instead.
//
// Thread safety: pure functions over values.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "llmsync/id.h"
#include "llmsync/status.h"

namespace llmsync::session {

using TokenId = std::int32_t;

// Stored as their numeric values: never renumber.
enum class NodeKind : std::uint8_t {
  kSystem = 0,
  kUser = 1,
  kAssistant = 2,
  kReasoning = 3,
  kToolCall = 4,
  kToolResult = 5,
  kSummary = 6,
  kTemplate = 7,
};
inline constexpr int kNodeKindCount = 8;

enum class Visibility : std::uint8_t { kPublic = 0, kHidden = 1 };

// "system", "user", "assistant", "reasoning", "tool_call", "tool_result", "summary", "template".
std::string_view NodeKindName(NodeKind kind);
Result<NodeKind> ParseNodeKind(std::string_view name);
// "public" | "hidden".
std::string_view VisibilityName(Visibility visibility);
Result<Visibility> ParseVisibility(std::string_view name);

// What a node's id covers. A draft to append is exactly this.
struct NodeContent {
  NodeKind kind = NodeKind::kUser;
  Visibility visibility = Visibility::kPublic;
  std::string text;
  std::vector<TokenId> tokens;  // frozen for the session's model; computed by the caller
  std::string tool_name;        // tool_call / tool_result metadata; may be empty
  std::string call_id;

  friend bool operator==(const NodeContent&, const NodeContent&) = default;
};
using NodeDraft = NodeContent;

// A stored node.
struct Node {
  Id id;
  Id parent;  // zero for a root node
  std::uint64_t seq = 0;
  std::uint32_t depth = 0;  // 1 for a root node
  NodeContent content;      // text and tokens are empty when purged
  bool purged = false;      // hidden content dropped by PurgeHidden; see Rehydrate
  bool withheld = false;    // hidden content left out of a client's export bundle (bundle.h)
  std::uint32_t token_count = 0;
  std::string sealed;  // the sealed blob of a hidden node (when the server has a seal key)
  std::int64_t created_at_ms = 0;

  bool IsHidden() const { return content.visibility == Visibility::kHidden; }
};

// The canonical encoding of `content` (see above).
std::string EncodeContent(const NodeContent& content);
// The inverse; kDataLoss on any malformed input (it parses sealed blobs handed back by clients).
Result<NodeContent> DecodeContent(std::string_view bytes);

// The id a root node's hash chains from, for a tenant.
Id TenantRootId(std::string_view tenant);
// SHA-256("llmsync/node/v1" | chain_parent | EncodeContent(content)), where chain_parent is the
// parent's id, or TenantRootId(tenant) for a root node.
Id ComputeNodeId(const Id& chain_parent, const NodeContent& content);
// The id of a node under `parent` (zero: a root) for a tenant.
Id NodeIdFor(std::string_view tenant, const Id& parent, const NodeContent& content);

}  // namespace llmsync::session
