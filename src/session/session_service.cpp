#include "session/session_service.h"

#include <utility>

#include "base/sha256.h"

namespace llmsync::session {

namespace {

// Identifies a request for idempotency: the same key with another digest is a conflict.
Id RequestDigest(const AppendRequest& request, const std::vector<store::NodeRecord>& nodes) {
  Sha256 h;
  h.Update(std::string_view("llmsync/append/v1"));
  h.Update(request.session.RawBytes());
  h.Update(request.parent.RawBytes());
  h.UpdateU32(request.expect_head ? 1 : 0);
  if (request.expect_head) h.Update(request.expect_head->RawBytes());
  h.UpdateU32(request.move_head ? 1 : 0);
  h.UpdateU64(nodes.size());
  for (const store::NodeRecord& n : nodes) h.Update(n.id.RawBytes());
  return Id(h.Finish());
}

}  // namespace

Result<Node> NodeFromRecord(store::NodeRecord record) {
  if (record.kind >= kNodeKindCount) {
    return Status::DataLoss("node " + record.id.ToHex() + " has unknown kind " + std::to_string(record.kind));
  }
  Node n;
  n.id = record.id;
  n.parent = record.parent;
  n.seq = record.seq;
  n.depth = record.depth;
  n.content.kind = static_cast<NodeKind>(record.kind);
  n.content.visibility = record.hidden ? Visibility::kHidden : Visibility::kPublic;
  n.content.text = std::move(record.text);
  n.content.tokens = std::move(record.tokens);
  n.content.tool_name = std::move(record.tool_name);
  n.content.call_id = std::move(record.call_id);
  n.purged = record.purged;
  n.token_count = record.token_count;
  n.sealed = std::move(record.sealed);
  n.created_at_ms = record.created_at_ms;
  return n;
}

Node PublicView(const Node& node) {
  Node view = node;
  if (node.IsHidden()) {
    view.content.text.clear();
    view.content.tokens.clear();
    view.content.tool_name.clear();
    view.content.call_id.clear();
  }
  return view;
}

SessionService::SessionService(store::Store* store, Env* env, SessionOptions options)
    : store_(store), env_(env != nullptr ? env : Env::Default()), options_(std::move(options)) {}

std::string SessionService::SealIfHidden(const NodeContent& content) const {
  if (!options_.seal_key || content.visibility != Visibility::kHidden) return {};
  return Seal(*options_.seal_key, EncodeContent(content));
}

Result<SessionInfo> SessionService::CreateSession(std::string_view tenant, const Id& model) {
  LLMSYNC_RETURN_IF_ERROR(CheckTenant(tenant));
  SessionInfo s;
  s.id = Id::Random();
  s.tenant = std::string(tenant);
  s.model = model;
  s.created_at_ms = env_->UnixMillis();
  LLMSYNC_RETURN_IF_ERROR(store_->CreateSession(s));
  return s;
}

Result<SessionInfo> SessionService::GetSession(std::string_view tenant, const Id& session) {
  LLMSYNC_RETURN_IF_ERROR(CheckTenant(tenant));
  return store_->GetSession(tenant, session);
}

Result<std::vector<SessionInfo>> SessionService::ListSessions(std::string_view tenant, std::size_t limit) {
  LLMSYNC_RETURN_IF_ERROR(CheckTenant(tenant));
  return store_->ListSessions(tenant, limit);
}

Result<SessionInfo> SessionService::SetMetadata(std::string_view tenant, const Id& session,
                                                std::string_view metadata) {
  LLMSYNC_RETURN_IF_ERROR(CheckTenant(tenant));
  return store_->SetSessionMetadata(tenant, session, metadata);
}

Status SessionService::ValidateAppend(const AppendRequest& request) const {
  const SessionLimits& limits = options_.limits;
  LLMSYNC_RETURN_IF_ERROR(CheckTenant(request.tenant));
  if (request.nodes.empty()) return Status::InvalidArgument("an append needs at least one node");
  if (request.nodes.size() > limits.max_nodes_per_append) {
    return Status::InvalidArgument("an append of " + std::to_string(request.nodes.size()) +
                                   " nodes exceeds the limit of " +
                                   std::to_string(limits.max_nodes_per_append));
  }
  if (request.idempotency_key.size() > limits.max_idempotency_key_bytes) {
    return Status::InvalidArgument("the idempotency key exceeds " +
                                   std::to_string(limits.max_idempotency_key_bytes) + " bytes");
  }
  LLMSYNC_RETURN_IF_ERROR(ValidateUtf8(request.idempotency_key, "the idempotency key"));
  for (std::size_t i = 0; i < request.nodes.size(); ++i) {
    LLMSYNC_RETURN_IF_ERROR(ValidateDraft(request.nodes[i], i, limits));
  }
  return Status::Ok();
}

Result<AppendResult> SessionService::Append(const AppendRequest& request, Id* conflict_head) {
  LLMSYNC_RETURN_IF_ERROR(ValidateAppend(request));

  store::AppendBatch batch;
  batch.tenant = request.tenant;
  batch.session = request.session;
  batch.parent = request.parent;
  batch.expect_head = request.expect_head;
  batch.idempotency_key = request.idempotency_key;
  batch.move_head = request.move_head;
  const std::int64_t now_ms = env_->UnixMillis();
  Id parent = request.parent;
  Id chain = parent.IsZero() ? TenantRootId(request.tenant) : parent;
  batch.nodes.reserve(request.nodes.size());
  for (const NodeDraft& draft : request.nodes) {
    store::NodeRecord r;
    r.id = ComputeNodeId(chain, draft);
    r.parent = parent;
    r.kind = static_cast<std::uint8_t>(draft.kind);
    r.hidden = draft.visibility == Visibility::kHidden;
    r.text = draft.text;
    r.tokens = draft.tokens;
    r.token_count = static_cast<std::uint32_t>(draft.tokens.size());
    r.tool_name = draft.tool_name;
    r.call_id = draft.call_id;
    r.sealed = SealIfHidden(draft);
    r.created_at_ms = now_ms;
    parent = chain = r.id;
    batch.nodes.push_back(std::move(r));
  }
  batch.request_digest = RequestDigest(request, batch.nodes);

  LLMSYNC_ASSIGN_OR_RETURN(store::AppendOutcome out, store_->Append(batch, conflict_head));
  AppendResult result;
  result.ids = std::move(out.ids);
  result.seqs = std::move(out.seqs);
  result.created = std::move(out.created);
  result.head = out.head;
  result.head_seq = out.head_seq;
  result.replayed = out.replayed;
  result.sealed.resize(result.ids.size());
  for (std::size_t i = 0; i < result.ids.size() && i < batch.nodes.size(); ++i) {
    if (result.created[i] && !result.replayed) result.sealed[i] = batch.nodes[i].sealed;
  }
  LLMSYNC_RETURN_IF_ERROR(FillReplayedBlobs(request, &result));
  return result;
}

Status SessionService::FillReplayedBlobs(const AppendRequest& request, AppendResult* result) {
  // Nodes that already existed (or a replay) keep the blob sealed when they were first stored.
  for (std::size_t i = 0; i < result->ids.size() && i < request.nodes.size(); ++i) {
    if (request.nodes[i].visibility != Visibility::kHidden || !result->sealed[i].empty()) continue;
    LLMSYNC_ASSIGN_OR_RETURN(store::NodeRecord stored,
                             store_->GetNode(request.tenant, request.session, result->ids[i]));
    result->sealed[i] = std::move(stored.sealed);
  }
  return Status::Ok();
}

Result<SessionInfo> SessionService::SetHead(std::string_view tenant, const Id& session, const Id& node,
                                            const std::optional<Id>& expect_head, Id* conflict_head) {
  LLMSYNC_RETURN_IF_ERROR(CheckTenant(tenant));
  return store_->SetHead(tenant, session, node, expect_head, conflict_head);
}

Result<Node> SessionService::GetNode(std::string_view tenant, const Id& session, const Id& node) {
  LLMSYNC_RETURN_IF_ERROR(CheckTenant(tenant));
  LLMSYNC_ASSIGN_OR_RETURN(store::NodeRecord record, store_->GetNode(tenant, session, node));
  return NodeFromRecord(std::move(record));
}

Result<std::vector<Node>> SessionService::Path(std::string_view tenant, const Id& session, const Id& node) {
  LLMSYNC_RETURN_IF_ERROR(CheckTenant(tenant));
  LLMSYNC_ASSIGN_OR_RETURN(std::vector<store::NodeRecord> records, store_->GetPath(tenant, session, node));
  std::vector<Node> path;
  path.reserve(records.size());
  for (store::NodeRecord& r : records) {
    LLMSYNC_ASSIGN_OR_RETURN(Node n, NodeFromRecord(std::move(r)));
    path.push_back(std::move(n));
  }
  return path;
}

Result<Diff> SessionService::DiffSince(std::string_view tenant, const Id& session, std::uint64_t since_seq,
                                       std::size_t limit) {
  LLMSYNC_RETURN_IF_ERROR(CheckTenant(tenant));
  LLMSYNC_ASSIGN_OR_RETURN(store::SessionChanges changes,
                           store_->ChangesSince(tenant, session, since_seq, limit));
  Diff diff;
  diff.session = std::move(changes.session);
  diff.more = changes.more;
  diff.nodes.reserve(changes.nodes.size());
  for (store::NodeRecord& r : changes.nodes) {
    LLMSYNC_ASSIGN_OR_RETURN(Node n, NodeFromRecord(std::move(r)));
    diff.nodes.push_back(std::move(n));
  }
  return diff;
}

Result<Branches> SessionService::ListBranches(std::string_view tenant, const Id& session, std::size_t limit) {
  LLMSYNC_RETURN_IF_ERROR(CheckTenant(tenant));
  LLMSYNC_ASSIGN_OR_RETURN(SessionInfo info, store_->GetSession(tenant, session));
  LLMSYNC_ASSIGN_OR_RETURN(std::vector<BranchTip> tips, store_->ListBranchTips(tenant, session, limit));
  return Branches{info.head, std::move(tips)};
}

Result<std::uint64_t> SessionService::PurgeHidden(std::int64_t older_than_ms,
                                                  const std::optional<std::string>& tenant) {
  if (older_than_ms < 0) return Status::InvalidArgument("older_than must not be negative");
  if (tenant) LLMSYNC_RETURN_IF_ERROR(CheckTenant(*tenant));
  return store_->PurgeHidden(tenant, env_->UnixMillis() - older_than_ms);
}

Result<Node> SessionService::Rehydrate(std::string_view tenant, const Id& session, const Id& node_id,
                                       std::string_view sealed) {
  LLMSYNC_RETURN_IF_ERROR(CheckTenant(tenant));
  LLMSYNC_ASSIGN_OR_RETURN(Node node, GetNode(tenant, session, node_id));
  if (!node.purged) return node;
  LLMSYNC_ASSIGN_OR_RETURN(NodeContent opened, OpenSealedContent(sealed));
  Result<NodeContent> content = std::move(opened);
  if (NodeIdFor(tenant, node.parent, *content) != node.id) {
    return Status::InvalidArgument("the sealed blob belongs to another node than " + node.id.ToHex());
  }
  LLMSYNC_RETURN_IF_ERROR(
      store_->RestoreContent(tenant, session, node.id, content->text, content->tokens, sealed));
  node.content = std::move(content).Value();
  node.purged = false;
  node.token_count = static_cast<std::uint32_t>(node.content.tokens.size());
  node.sealed = std::string(sealed);
  return node;
}

Result<NodeContent> SessionService::OpenSealedContent(std::string_view sealed) const {
  if (!options_.seal_key)
    return Status::Unimplemented("this server has no seal key; it cannot open sealed blobs");
  LLMSYNC_ASSIGN_OR_RETURN(std::string plain, OpenSealed(*options_.seal_key, sealed));
  Result<NodeContent> content = DecodeContent(plain);
  if (!content.IsOk()) return Status::InvalidArgument("the sealed blob does not hold a node");
  return content;
}

}  // namespace llmsync::session
