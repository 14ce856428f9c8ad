// SessionService: the session model's operations over a Store.
//
// A session belongs to a tenant, is bound to a model fingerprint (an opaque Id chosen by the
// caller) and holds an append-only tree of nodes (node.h). The service validates input, computes
// node ids, seals hidden nodes, and turns store records into nodes; the store provides atomicity
// and durability. Nothing is ever rewritten: edit, regenerate and rewind create branches or move
// the head.
//
// Operations (all tenant-scoped: another tenant's session is "not found"):
//   - Append a chain of drafts under a parent (zero: the root). Appending under a node that has
//     children creates a branch. With expect_head the append is a compare-and-swap: on kConflict
//     `*conflict_head` receives the head that won. An idempotency key replayed with the same
//     request returns the original result; reused with a different request it is kConflict.
//     Drafts carry their frozen token ids: the caller (the server) tokenizes, not this layer.
//   - SetHead (rewind or switch branch), Path (root to node), DiffSince (what a client that saw
//     everything up to a seq is missing), Branches (head and branch tips).
//   - Hidden nodes: with a seal key configured every hidden node gets a sealed blob (sealer.h).
//     PublicView shows a hidden node as id, kind, token count and blob. PurgeHidden drops the
//     content of sealed hidden nodes older than a cutoff; Rehydrate restores it from a blob.
//
// Thread safety: safe for concurrent use; the service holds no mutable state of its own.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/env.h"
#include "llmsync/id.h"
#include "llmsync/status.h"
#include "session/node.h"
#include "session/sealer.h"
#include "session/validate.h"
#include "store/store.h"

namespace llmsync::session {

using SessionInfo = store::SessionRecord;
using BranchTip = store::BranchTip;

struct SessionOptions {
  SessionLimits limits;
  // When set, hidden nodes are sealed on append and can be purged and rehydrated.
  std::optional<SealKey> seal_key;
};

struct AppendRequest {
  std::string tenant;
  Id session;
  Id parent;  // zero: append at the root (a new root branch when the session has nodes)
  std::vector<NodeDraft> nodes;
  std::optional<Id> expect_head;
  std::string idempotency_key;  // empty: none
  bool move_head = true;        // false: add the nodes without moving the head (a side branch)
};

struct AppendResult {
  std::vector<Id> ids;
  std::vector<std::uint64_t> seqs;
  std::vector<bool> created;        // false where an identical node already existed
  std::vector<std::string> sealed;  // per node: its sealed blob, empty for public nodes
  Id head;
  std::uint64_t head_seq = 0;
  bool replayed = false;  // the idempotency key matched an earlier request
};

struct Diff {
  SessionInfo session;      // head, head_seq and last_seq at the time of the diff
  std::vector<Node> nodes;  // seq > since, ascending
  bool more = false;        // the limit cut the list short: ask again from the last seq
};

struct Branches {
  Id head;
  std::vector<BranchTip> tips;  // nodes without children, oldest first
};

class SessionService {
 public:
  // REQUIRES: `store` and `env` outlive the service.
  SessionService(store::Store* store, Env* env, SessionOptions options);

  Result<SessionInfo> CreateSession(std::string_view tenant, const Id& model);
  Result<SessionInfo> GetSession(std::string_view tenant, const Id& session);
  Result<std::vector<SessionInfo>> ListSessions(std::string_view tenant, std::size_t limit);
  // Replaces the session's client metadata (at most store::kMaxSessionMetadataBytes).
  Result<SessionInfo> SetMetadata(std::string_view tenant, const Id& session, std::string_view metadata);

  Result<AppendResult> Append(const AppendRequest& request, Id* conflict_head = nullptr);
  // The checks Append makes before touching the store (tenant, node count, idempotency key, each
  // draft's kind, UTF-8 and sizes). Cheap: callers run it before freezing drafts (rendering and
  // tokenizing), so an oversized append is refused before any work (issue 17).
  Status ValidateAppend(const AppendRequest& request) const;
  Result<SessionInfo> SetHead(std::string_view tenant, const Id& session, const Id& node,
                              const std::optional<Id>& expect_head = std::nullopt,
                              Id* conflict_head = nullptr);
  Result<Node> GetNode(std::string_view tenant, const Id& session, const Id& node);
  // Root first, `node` last.
  Result<std::vector<Node>> Path(std::string_view tenant, const Id& session, const Id& node);
  Result<Diff> DiffSince(std::string_view tenant, const Id& session, std::uint64_t since_seq,
                         std::size_t limit);
  Result<Branches> ListBranches(std::string_view tenant, const Id& session, std::size_t limit);

  // Purges sealed hidden nodes created more than `older_than_ms` ago (by the Env's clock), for
  // one tenant or, when unset, all. Returns how many.
  Result<std::uint64_t> PurgeHidden(std::int64_t older_than_ms, const std::optional<std::string>& tenant);
  // Restores a purged hidden node from its sealed blob and returns it. The blob must open under
  // the seal key and its content must hash to the node's id (kInvalidArgument otherwise). A node
  // that is not purged is returned as it is.
  Result<Node> Rehydrate(std::string_view tenant, const Id& session, const Id& node, std::string_view sealed);

  // The content inside a sealed blob (kInvalidArgument when it does not open under the seal key or
  // holds no node; kUnimplemented without a key). The caller checks it against the node's id.
  Result<NodeContent> OpenSealedContent(std::string_view sealed) const;
  // Seals hidden content with the configured key; empty when there is no key or it is public.
  std::string SealIfHidden(const NodeContent& content) const;
  const SessionOptions& Options() const { return options_; }
  store::Store* GetStore() const { return store_; }
  Env* GetEnv() const { return env_; }

 private:
  Status CheckTenant(std::string_view tenant) const { return ValidateTenant(tenant, options_.limits); }
  Status FillReplayedBlobs(const AppendRequest& request, AppendResult* result);

  store::Store* store_;
  Env* env_;
  const SessionOptions options_;
};

// The client's view of a node: a hidden node keeps id, kind, visibility, token count and sealed
// blob; its text, tokens and tool metadata are cleared.
Node PublicView(const Node& node);
// A stored record as a node; kDataLoss for an unknown kind.
Result<Node> NodeFromRecord(store::NodeRecord record);

}  // namespace llmsync::session
