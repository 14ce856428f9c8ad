// Export and import bundles: a session as a portable, verifiable file.
//
// A bundle is JSON Lines (the only place in session/ that speaks JSON):
//   line 1      {"type":"llmsync.bundle","version":1,"tenant":..,"session":..,"model":..,
//                "head":..|null,"nodes":N,"exported_at_ms":..}
//   N lines     {"type":"node","id":..,"parent":..|null,"seq":..,"kind":"user",
//                "visibility":"public","text":..,"tokens":[..],"tool_name":..,"call_id":..,
//                "created_at_ms":..,"sealed":..}
//               A hidden node carries its sealed blob ("sealed", base64url without padding) when
//               it has one. Without its content it has "token_count":.. and no text or tokens,
//               plus "purged":true when the server purged it, or "withheld":true in a client's
//               export (HiddenContent::kWithhold), which never holds hidden text.
//   last line   {"type":"transcript","format":"markdown","text":..}   (informational)
// Nodes come in seq order, so every parent precedes its children; the whole tree is exported,
// every branch; hidden content only in the operator's export (the CLI), never in a client's (the
// HTTP API): there a hidden node is id, kind, token count and sealed blob. The transcript is the
// current branch rendered as Markdown for people; import ignores it.
//
// Import verifies everything before writing anything: every id must be the hash of its parent
// and content under the bundle's tenant, so an edited, truncated or reordered bundle fails with
// kDataLoss naming the line, and nothing is imported. Ids are content hashes, not signatures: they
// catch corruption and careless edits, not someone who recomputes every id. Importing under
// another tenant, or into another model (which needs a re-tokenize callback that re-derives the
// frozen tokens from the text), re-derives every id; the result maps old ids to new ones. A node
// without its content is imported only when its sealed blob opens under this server's seal key
// and the content it holds hashes to the node's id (a withheld export imports on the server that
// made it); otherwise the import is refused.
//
// Thread safety: pure functions, plus calls into a SessionService (itself thread-safe).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "llmsync/id.h"
#include "llmsync/status.h"
#include "session/node.h"
#include "session/session_service.h"

namespace llmsync::session {

inline constexpr int kBundleVersion = 1;

struct BundleHeader {
  std::string tenant;
  Id session;
  Id model;
  Id head;  // zero: empty head
  std::uint64_t node_count = 0;
  std::int64_t exported_at_ms = 0;
};

struct Bundle {
  BundleHeader header;
  std::vector<Node> nodes;  // seq order
  std::string transcript;   // Markdown; may be empty
};

// Serializes a bundle as JSON Lines.
std::string EncodeBundle(const Bundle& bundle);
// Parses the JSON Lines structure. kInvalidArgument (naming the line) for malformed input;
// kDataLoss when the node count disagrees with the header (a truncated bundle). No id checks.
Result<Bundle> ParseBundle(std::string_view text);
// Checks every id, the parent order, seqs, the head and the limits; kDataLoss names the first
// bad line (line 2 is the first node).
Status VerifyBundle(const Bundle& bundle, const SessionLimits& limits);
// The current branch as Markdown; hidden nodes appear as placeholders.
std::string RenderTranscript(const SessionInfo& session, const std::vector<Node>& path);

enum class HiddenContent {
  kInclude,   // the operator's export: hidden text and tokens are in the bundle
  kWithhold,  // a client's export: hidden nodes are id, kind, token count and sealed blob
};

// The whole session as a bundle.
Result<std::string> ExportSession(SessionService& sessions, std::string_view tenant, const Id& session,
                                  HiddenContent hidden = HiddenContent::kInclude);
// Only the Markdown transcript of the current branch.
Result<std::string> ExportTranscript(SessionService& sessions, std::string_view tenant, const Id& session);

// Re-derives the frozen tokens of a node's text for the target model.
using RetokenizeFn = std::function<Result<std::vector<TokenId>>(NodeKind kind, std::string_view text)>;

struct ImportOptions {
  std::optional<std::string> tenant;  // unset: the bundle's tenant
  std::optional<Id> model;            // unset: the bundle's model
  // Required when `model` differs from the bundle's model.
  RetokenizeFn retokenize;
};

struct ImportResult {
  SessionInfo session;                    // the new session (a fresh id)
  std::vector<std::pair<Id, Id>> id_map;  // bundle id -> imported id, in bundle order
  bool retokenized = false;
};

// Verifies the bundle, then creates a new session holding all its nodes in one transaction.
Result<ImportResult> ImportSession(SessionService& sessions, std::string_view bundle,
                                   const ImportOptions& options);

}  // namespace llmsync::session
