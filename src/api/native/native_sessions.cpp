#include <charconv>

#include "api/api_error.h"
#include "api/compaction.h"
#include "api/native/native_api.h"
#include "api/session_events.h"
#include "api/sse.h"
#include "api/tools/tool_support.h"
#include "base/base64url.h"
#include "base/sha256.h"
#include "session/bundle.h"

namespace llmsync::api {
namespace {

// Every session handler needs the session id of its path.
struct SessionRequest {
  std::string tenant;
  Id session;
};

Result<SessionRequest> ResolveSession(const std::string& tenant, const PathParams& p) {
  LLMSYNC_ASSIGN_OR_RETURN(Id session, ParseIdParam(p.at("id"), "session id"));
  return SessionRequest{tenant, session};
}

// A node as the native API shows it: an assistant node whose text holds tool calls or reasoning
// also carries them as typed `parts` (tool_support.h).
Json NativeNodeJson(const ToolSupport& tools, const session::Node& n, bool tokens) {
  session::Node view = session::PublicView(n);
  Json j = NodeJson(view, tokens);
  if (auto parts = AssistantPartsJson(tools, view)) j["parts"] = std::move(*parts);
  return j;
}

Result<session::NodeDraft> ParseDraft(const Json& n) {
  if (!n.is_object()) return Status::InvalidArgument("each node must be an object");
  session::NodeDraft d;
  if (!n.contains("kind") || !n["kind"].is_string()) return Status::InvalidArgument("node.kind is required");
  LLMSYNC_ASSIGN_OR_RETURN(d.kind, session::ParseNodeKind(n["kind"].get<std::string>()));
  if (!n.contains("text") || !n["text"].is_string())
    return Status::InvalidArgument("node.text must be a string");
  d.text = n["text"].get<std::string>();
  if (n.contains("visibility")) {
    if (!n["visibility"].is_string()) return Status::InvalidArgument("node.visibility must be a string");
    LLMSYNC_ASSIGN_OR_RETURN(d.visibility, session::ParseVisibility(n["visibility"].get<std::string>()));
  }
  if (n.contains("metadata")) {
    const Json& m = n["metadata"];
    if (!m.is_object()) return Status::InvalidArgument("node.metadata must be an object");
    if (m.contains("tool_name")) {
      if (!m["tool_name"].is_string()) return Status::InvalidArgument("metadata.tool_name must be a string");
      d.tool_name = m["tool_name"].get<std::string>();
    }
    if (m.contains("call_id")) {
      if (!m["call_id"].is_string()) return Status::InvalidArgument("metadata.call_id must be a string");
      d.call_id = m["call_id"].get<std::string>();
    }
  }
  return d;
}

Json BranchesJson(const session::Branches& b) {
  Json tips = Json::array();
  for (const auto& t : b.tips) tips.push_back({{"id", t.id.ToHex()}, {"seq", t.seq}, {"depth", t.depth}});
  return tips;
}

// The metadata is kept as the JSON text the client sent (checked to be an object then).
Json MetadataJson(const std::string& text) {
  if (text.empty()) return Json::object();
  Json m = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  return m.is_object() ? m : Json::object();
}

Json SessionSummaryJson(const session::SessionInfo& s) {
  return {{"id", s.id.ToHex()},
          {"created_at", s.created_at_ms},
          {"head", s.head.IsZero() ? Json(nullptr) : Json(s.head.ToHex())},
          {"head_seq", s.head_seq},
          {"seq", s.last_seq},
          {"metadata", MetadataJson(s.metadata)}};
}

HttpResponse CreateSession(ServerContext& ctx, const HttpRequest& req) {
  return Guarded(ctx, req, [&](const std::string& tenant) -> Result<HttpResponse> {
    Json body = Json::object();
    if (!req.body.empty()) {
      LLMSYNC_ASSIGN_OR_RETURN(body, ParseJsonObject(req.body));
    }
    if (body.contains("model") && !body["model"].is_null()) {
      if (!body["model"].is_string()) return Status::InvalidArgument("model must be a string");
      std::string m = body["model"].get<std::string>();
      if (m != ctx.model_name && m != ctx.model_fingerprint.ToHex()) {
        return Status::NotFound("model '" + m + "' is not served here (this server serves '" +
                                ctx.model_name + "')");
      }
    }
    std::optional<runs::ContextPolicy> policy;
    if (body.contains("context") && !body["context"].is_null()) {
      LLMSYNC_ASSIGN_OR_RETURN(policy, ParseContextPolicy(body["context"], ctx.max_context));
    }
    LLMSYNC_ASSIGN_OR_RETURN(session::SessionInfo info,
                             ctx.sessions->CreateSession(tenant, ctx.model_fingerprint));
    if (policy) {
      Json metadata = {{kContextMetadataKey, ContextPolicyJson(*policy)}};
      LLMSYNC_ASSIGN_OR_RETURN(info, ctx.sessions->SetMetadata(tenant, info.id, DumpJson(metadata)));
    }
    Json out = {{"id", info.id.ToHex()},
                {"root", session::TenantRootId(tenant).ToHex()},
                {"seq", info.last_seq},
                {"model", ctx.model_name},
                {"context", ContextPolicyJson(SessionContextPolicy(info.metadata))}};
    return JsonResponse(201, DumpJson(out));
  });
}

// The tenant's sessions, newest first: what a conversation list needs to draw each entry.
HttpResponse ListSessions(ServerContext& ctx, const HttpRequest& req) {
  return Guarded(ctx, req, [&](const std::string& tenant) -> Result<HttpResponse> {
    std::size_t limit = 100;
    if (auto q = req.Query("limit")) {
      auto [ptr, ec] = std::from_chars(q->data(), q->data() + q->size(), limit);
      if (ec != std::errc() || ptr != q->data() + q->size() || limit == 0 || limit > 1000) {
        return Status::InvalidArgument("limit must be an integer in [1, 1000]");
      }
    }
    LLMSYNC_ASSIGN_OR_RETURN(std::vector<session::SessionInfo> list,
                             ctx.sessions->ListSessions(tenant, limit));
    Json sessions = Json::array();
    for (const session::SessionInfo& s : list) sessions.push_back(SessionSummaryJson(s));
    return JsonResponse(200, DumpJson({{"sessions", std::move(sessions)}}));
  });
}

// PATCH /v1/sessions/{id} {"metadata": {...}}: replaces the session's metadata (e.g. a title).
HttpResponse PatchSession(ServerContext& ctx, const HttpRequest& req, const PathParams& p) {
  return Guarded(ctx, req, [&](const std::string& tenant) -> Result<HttpResponse> {
    LLMSYNC_ASSIGN_OR_RETURN(SessionRequest s, ResolveSession(tenant, p));
    LLMSYNC_ASSIGN_OR_RETURN(Json body, ParseJsonObject(req.body));
    const bool has_context = body.contains("context");
    if (!(has_context && !body.contains("metadata")) &&
        (!body.contains("metadata") || !body["metadata"].is_object())) {
      return Status::InvalidArgument("metadata must be an object");
    }
    // The context policy rides in the metadata under its own key; a metadata-only PATCH keeps it.
    LLMSYNC_ASSIGN_OR_RETURN(session::SessionInfo current, ctx.sessions->GetSession(s.tenant, s.session));
    Json old_metadata = MetadataJson(current.metadata);
    Json metadata = body.contains("metadata") ? body["metadata"] : old_metadata;
    if (has_context) {
      LLMSYNC_ASSIGN_OR_RETURN(runs::ContextPolicy policy,
                               ParseContextPolicy(body["context"], ctx.max_context));
      metadata[kContextMetadataKey] = ContextPolicyJson(policy);
    } else if (old_metadata.contains(kContextMetadataKey) && !metadata.contains(kContextMetadataKey)) {
      metadata[kContextMetadataKey] = old_metadata[kContextMetadataKey];
    }
    std::string text = DumpJson(metadata);
    if (text.size() > store::kMaxSessionMetadataBytes) {
      return Status::InvalidArgument("metadata of " + std::to_string(text.size()) +
                                     " bytes exceeds the limit of " +
                                     std::to_string(store::kMaxSessionMetadataBytes));
    }
    LLMSYNC_ASSIGN_OR_RETURN(session::SessionInfo info, ctx.sessions->SetMetadata(s.tenant, s.session, text));
    ctx.session_events->Publish(s.session, info.last_seq, "metadata.changed",
                                DumpJson({{"metadata", body["metadata"]}}));
    return JsonResponse(200, DumpJson(SessionSummaryJson(info)));
  });
}

// The session GET's validator: the last seq, the run in progress and the metadata, everything the
// body reports that a client polls for. (Nodes alone would answer 304 while a run starts, or a
// title changes, and a replica would keep a stale running_run.)
std::string SessionEtag(const session::SessionInfo& info, const Id& running_run) {
  Sha256 h;
  h.Update(std::string_view(running_run.IsZero() ? std::string() : running_run.ToHex()));
  h.Update(std::string_view("\n"));
  h.Update(std::string_view(info.metadata));
  return "\"" + std::to_string(info.last_seq) + "-" + Id(h.Finish()).ToHex().substr(0, 16) + "\"";
}

HttpResponse GetSession(ServerContext& ctx, const HttpRequest& req, const PathParams& p) {
  return Guarded(ctx, req, [&](const std::string& tenant) -> Result<HttpResponse> {
    LLMSYNC_ASSIGN_OR_RETURN(SessionRequest s, ResolveSession(tenant, p));
    std::uint64_t since = 0;
    if (auto q = req.Query("since")) {
      auto [ptr, ec] = std::from_chars(q->data(), q->data() + q->size(), since);
      if (ec != std::errc() || ptr != q->data() + q->size()) {
        return Status::InvalidArgument("since must be a non-negative integer");
      }
    }
    LLMSYNC_ASSIGN_OR_RETURN(session::SessionInfo info, ctx.sessions->GetSession(s.tenant, s.session));
    // A run in progress (possibly on another process): a page that loads attaches to it.
    store::RunFilter live;
    live.tenant = s.tenant;
    live.session = s.session;
    live.statuses = {store::RunStatus::kQueued, store::RunStatus::kRunning};
    live.limit = 1;
    LLMSYNC_ASSIGN_OR_RETURN(std::vector<store::RunRecord> running, ctx.store->ListRuns(live));
    const Id running_run = running.empty() ? Id() : running[0].id;
    const std::string etag = SessionEtag(info, running_run);
    if (auto inm = req.Header("if-none-match"); inm && *inm == etag) {
      HttpResponse r;
      r.status = 304;
      r.SetHeader("ETag", etag);
      return r;
    }
    LLMSYNC_ASSIGN_OR_RETURN(session::Diff diff, ctx.sessions->DiffSince(s.tenant, s.session, since, 10000));
    LLMSYNC_ASSIGN_OR_RETURN(session::Branches branches,
                             ctx.sessions->ListBranches(s.tenant, s.session, 1000));
    bool tokens = req.Query("tokens").value_or("") == "1";
    Json nodes = Json::array();
    ToolSupport tools = ToolSupportFor(ctx);
    for (const session::Node& n : diff.nodes) nodes.push_back(NativeNodeJson(tools, n, tokens));
    Json out = {{"id", s.session.ToHex()},
                {"running_run", running_run.IsZero() ? Json(nullptr) : Json(running_run.ToHex())},
                {"seq", diff.session.last_seq},
                {"head", diff.session.head.IsZero() ? Json(nullptr) : Json(diff.session.head.ToHex())},
                {"head_seq", diff.session.head_seq},
                {"heads", BranchesJson(branches)},
                {"nodes", std::move(nodes)},
                {"more", diff.more},
                {"metadata", MetadataJson(diff.session.metadata)}};
    HttpResponse r = JsonResponse(200, DumpJson(out));
    r.SetHeader("ETag", SessionEtag(diff.session, running_run));
    return r;
  });
}

HttpResponse AppendNodes(ServerContext& ctx, const HttpRequest& req, const PathParams& p) {
  return Guarded(ctx, req, [&](const std::string& tenant) -> Result<HttpResponse> {
    LLMSYNC_ASSIGN_OR_RETURN(SessionRequest s, ResolveSession(tenant, p));
    LLMSYNC_ASSIGN_OR_RETURN(Json body, ParseJsonObject(req.body));
    session::AppendRequest append;
    append.tenant = s.tenant;
    append.session = s.session;
    LLMSYNC_ASSIGN_OR_RETURN(std::optional<Id> parent, OptionalIdField(body, "parent"));
    if (parent && *parent == session::TenantRootId(s.tenant)) parent.reset();  // "root" means the top
    append.parent = parent.value_or(Id());
    LLMSYNC_ASSIGN_OR_RETURN(append.expect_head, OptionalIdField(body, "expect_head"));
    LLMSYNC_ASSIGN_OR_RETURN(append.idempotency_key, IdempotencyKey(body, req));
    if (!body.contains("nodes") || !body["nodes"].is_array() || body["nodes"].empty()) {
      return Status::InvalidArgument("nodes must be a non-empty array");
    }
    const std::size_t max_nodes = ctx.sessions->Options().limits.max_nodes_per_append;
    if (body["nodes"].size() > max_nodes) {
      return Status::InvalidArgument("an append of " + std::to_string(body["nodes"].size()) +
                                     " nodes exceeds the limit of " + std::to_string(max_nodes));
    }
    for (const Json& n : body["nodes"]) {
      LLMSYNC_ASSIGN_OR_RETURN(session::NodeDraft d, ParseDraft(n));
      append.nodes.push_back(std::move(d));
    }
    // Tools render into the prompt where the template puts them (or as a generic system node).
    std::optional<HttpResponse> tool_error;
    std::optional<ToolRequest> tool_request = NativeToolRequest(body, req.body, &tool_error);
    if (tool_error) return std::move(*tool_error);
    text::jinja::Value template_tools = text::jinja::Value::None();
    if (tool_request) {
      LLMSYNC_ASSIGN_OR_RETURN(template_tools, NativeAppendTools(ToolSupportFor(ctx), *tool_request,
                                                                 append.parent.IsZero(), &append.nodes));
    }
    // Every limit is checked before the drafts are rendered and tokenized.
    LLMSYNC_RETURN_IF_ERROR(ctx.sessions->ValidateAppend(append));
    std::vector<session::Node> path;
    if (!append.parent.IsZero()) {
      LLMSYNC_ASSIGN_OR_RETURN(path, ctx.sessions->Path(s.tenant, s.session, append.parent));
    } else {
      LLMSYNC_RETURN_IF_ERROR(ctx.sessions->GetSession(s.tenant, s.session).GetStatus());
    }
    LLMSYNC_RETURN_IF_ERROR(ctx.conversation->Freeze(path, &append.nodes, template_tools));
    Id conflict_head;
    auto result = ctx.sessions->Append(append, &conflict_head);
    if (!result.IsOk() && result.GetStatus().Code() == StatusCode::kConflict && append.expect_head) {
      Json err = {{"error", {{"code", "conflict"}, {"message", result.GetStatus().Message()}}},
                  {"head", conflict_head.IsZero() ? Json(nullptr) : Json(conflict_head.ToHex())}};
      return JsonResponse(409, DumpJson(err));
    }
    if (!result.IsOk()) return result.GetStatus();
    ctx.AddRequestBytes(s.session, req.body.size());
    Json nodes = Json::array();
    for (std::size_t i = 0; i < result->ids.size(); ++i) {
      nodes.push_back({{"id", result->ids[i].ToHex()},
                       {"seq", result->seqs[i]},
                       {"n_tokens", append.nodes[i].tokens.size()},
                       {"created", static_cast<bool>(result->created[i])}});
      if (!result->sealed[i].empty()) nodes.back()["sealed"] = Base64UrlEncode(result->sealed[i]);
    }
    Json out = {{"nodes", nodes}, {"head", result->head.ToHex()}, {"replayed", result->replayed}};
    if (!result->replayed) {
      ctx.session_events->Publish(s.session, result->head_seq, "node.appended", DumpJson(out));
    }
    return JsonResponse(result->replayed ? 200 : 201, DumpJson(out));
  });
}

HttpResponse SetHead(ServerContext& ctx, const HttpRequest& req, const PathParams& p) {
  return Guarded(ctx, req, [&](const std::string& tenant) -> Result<HttpResponse> {
    LLMSYNC_ASSIGN_OR_RETURN(SessionRequest s, ResolveSession(tenant, p));
    LLMSYNC_ASSIGN_OR_RETURN(Json body, ParseJsonObject(req.body));
    LLMSYNC_ASSIGN_OR_RETURN(std::optional<Id> node, OptionalIdField(body, "node"));
    LLMSYNC_ASSIGN_OR_RETURN(std::optional<Id> expect, OptionalIdField(body, "expect_head"));
    Id conflict_head;
    auto info = ctx.sessions->SetHead(s.tenant, s.session, node.value_or(Id()), expect, &conflict_head);
    if (!info.IsOk() && info.GetStatus().Code() == StatusCode::kConflict && expect) {
      Json err = {{"error", {{"code", "conflict"}, {"message", info.GetStatus().Message()}}},
                  {"head", conflict_head.IsZero() ? Json(nullptr) : Json(conflict_head.ToHex())}};
      return JsonResponse(409, DumpJson(err));
    }
    if (!info.IsOk()) return info.GetStatus();
    Json out = {{"head", info->head.IsZero() ? Json(nullptr) : Json(info->head.ToHex())},
                {"seq", info->head_seq}};
    ctx.session_events->Publish(s.session, info->head_seq, "head.moved", DumpJson(out));
    return JsonResponse(200, DumpJson(out));
  });
}

HttpResponse SessionEvents(ServerContext& ctx, const HttpRequest& req, const PathParams& p) {
  return Guarded(ctx, req, [&](const std::string& tenant) -> Result<HttpResponse> {
    LLMSYNC_ASSIGN_OR_RETURN(SessionRequest s, ResolveSession(tenant, p));
    LLMSYNC_ASSIGN_OR_RETURN(std::uint64_t since, SseCursor(req, "since"));
    LLMSYNC_ASSIGN_OR_RETURN(session::SessionInfo info, ctx.sessions->GetSession(s.tenant, s.session));
    (void)info;
    ServerContext* c = &ctx;
    return SseResponse([c, s, since](std::shared_ptr<StreamSink> sink) {
      if (!c->session_events->Subscribe(s.session, sink).IsOk()) {
        sink->Close();  // the shared store is unreachable: the client reconnects with Last-Event-ID
        return;
      }
      // What the client missed, after subscribing so nothing falls between the two.
      auto diff = c->sessions->DiffSince(s.tenant, s.session, since, 10000);
      if (!diff.IsOk()) return;
      Json nodes = Json::array();
      ToolSupport tools = ToolSupportFor(*c);
      for (const session::Node& n : diff->nodes) nodes.push_back(NativeNodeJson(tools, n, false));
      Json sync = {{"seq", diff->session.last_seq},
                   {"head", diff->session.head.IsZero() ? Json(nullptr) : Json(diff->session.head.ToHex())},
                   {"nodes", nodes}};
      sink->Write(FormatSseEvent(diff->session.last_seq, "sync", DumpJson(sync)));
    });
  });
}

HttpResponse Lease(ServerContext& ctx, const HttpRequest& req, const PathParams& p) {
  return Guarded(ctx, req, [&](const std::string& tenant) -> Result<HttpResponse> {
    LLMSYNC_ASSIGN_OR_RETURN(SessionRequest s, ResolveSession(tenant, p));
    LLMSYNC_ASSIGN_OR_RETURN(Json body, ParseJsonObject(req.body));
    LLMSYNC_ASSIGN_OR_RETURN(std::optional<Id> node, OptionalIdField(body, "node"));
    if (!node) return Status::InvalidArgument("node is required");
    if (!body.contains("ttl_s") || !body["ttl_s"].is_number())
      return Status::InvalidArgument("ttl_s is required");
    LLMSYNC_ASSIGN_OR_RETURN(std::vector<session::Node> path, ctx.sessions->Path(s.tenant, s.session, *node));
    kvcache::LeaseRequest lease{s.tenant, runs::Conversation::PathTokens(path), body["ttl_s"].get<double>(),
                                *node};
    LLMSYNC_ASSIGN_OR_RETURN(kvcache::LeaseInfo info, ctx.kv->Lease(lease));
    // Many processes: the session's runs are offered to this engine while the lease lasts.
    LLMSYNC_RETURN_IF_ERROR(ctx.scheduler->PinSession(s.session, lease.ttl_s));
    Json out = {{"lease_id", info.id},    {"node", node->ToHex()},
                {"blocks", info.blocks},  {"cached_tokens", info.cached_tokens},
                {"ttl_s", body["ttl_s"]}, {"replaced", info.replaced}};
    return JsonResponse(200, DumpJson(out));
  });
}

HttpResponse ReleaseLease(ServerContext& ctx, const HttpRequest& req, const PathParams& p) {
  return Guarded(ctx, req, [&](const std::string& tenant) -> Result<HttpResponse> {
    LLMSYNC_ASSIGN_OR_RETURN(SessionRequest s, ResolveSession(tenant, p));
    std::string text = req.Query("lease_id").value_or("");
    if (text.empty() && !req.body.empty()) {
      LLMSYNC_ASSIGN_OR_RETURN(Json body, ParseJsonObject(req.body));
      if (body.contains("lease_id") && body["lease_id"].is_number_unsigned()) {
        text = std::to_string(body["lease_id"].get<std::uint64_t>());
      }
    }
    std::uint64_t id = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
    if (text.empty() || ec != std::errc() || ptr != text.data() + text.size()) {
      return Status::InvalidArgument("lease_id is required (query or body)");
    }
    LLMSYNC_RETURN_IF_ERROR(ctx.kv->ReleaseLease(s.tenant, id));
    LLMSYNC_RETURN_IF_ERROR(ctx.scheduler->UnpinSession(s.session));
    return JsonResponse(200, DumpJson({{"released", id}}));
  });
}

HttpResponse Export(ServerContext& ctx, const HttpRequest& req, const PathParams& p) {
  return Guarded(ctx, req, [&](const std::string& tenant) -> Result<HttpResponse> {
    LLMSYNC_ASSIGN_OR_RETURN(SessionRequest s, ResolveSession(tenant, p));
    if (req.Query("format").value_or("") == "markdown") {
      LLMSYNC_ASSIGN_OR_RETURN(std::string md, session::ExportTranscript(*ctx.sessions, s.tenant, s.session));
      HttpResponse r;
      r.body = std::move(md);
      r.SetHeader("Content-Type", "text/markdown; charset=utf-8");
      return r;
    }
    LLMSYNC_ASSIGN_OR_RETURN(std::string bundle, session::ExportSession(*ctx.sessions, s.tenant, s.session,
                                                                        session::HiddenContent::kWithhold));
    HttpResponse r;
    r.body = std::move(bundle);
    r.SetHeader("Content-Type", "application/x-ndjson");
    return r;
  });
}

// Puts back the content of a purged hidden node from the sealed blob the client kept.
HttpResponse Rehydrate(ServerContext& ctx, const HttpRequest& req, const PathParams& p) {
  return Guarded(ctx, req, [&](const std::string& tenant) -> Result<HttpResponse> {
    LLMSYNC_ASSIGN_OR_RETURN(SessionRequest s, ResolveSession(tenant, p));
    LLMSYNC_ASSIGN_OR_RETURN(Id node, ParseIdParam(p.at("node"), "node id"));
    LLMSYNC_ASSIGN_OR_RETURN(Json body, ParseJsonObject(req.body));
    if (!body.contains("sealed") || !body["sealed"].is_string()) {
      return Status::InvalidArgument("sealed must be the node's sealed blob (base64url, as served)");
    }
    auto blob = Base64UrlDecode(body["sealed"].get<std::string>());
    if (!blob.IsOk()) return blob.GetStatus().WithContext("sealed");
    LLMSYNC_ASSIGN_OR_RETURN(session::Node restored,
                             ctx.sessions->Rehydrate(s.tenant, s.session, node, *blob));
    return JsonResponse(200, DumpJson(NodeJson(session::PublicView(restored), false)));
  });
}

HttpResponse Import(ServerContext& ctx, const HttpRequest& req) {
  return Guarded(ctx, req, [&](const std::string& tenant) -> Result<HttpResponse> {
    session::ImportOptions options;
    options.tenant = tenant;
    options.model = ctx.model_fingerprint;
    const runs::Conversation* conv = ctx.conversation;
    options.retokenize = [conv](session::NodeKind kind,
                                std::string_view text) -> Result<std::vector<session::TokenId>> {
      std::vector<session::NodeDraft> drafts(1);
      drafts[0].kind = kind;
      drafts[0].text = std::string(text);
      LLMSYNC_RETURN_IF_ERROR(conv->Freeze({}, &drafts));
      return drafts[0].tokens;
    };
    Result<session::ImportResult> imported = session::ImportSession(*ctx.sessions, req.body, options);
    // kDataLoss from the bundle codec describes the client's bytes (tampered, truncated), not our
    // storage: the request is bad, so it is a 400 (docs/PROTOCOL.md).
    if (imported.GetStatus().Code() == StatusCode::kDataLoss)
      return ErrorResponse(400, "invalid_argument", imported.GetStatus().Message());
    LLMSYNC_ASSIGN_OR_RETURN(session::ImportResult result, std::move(imported));
    Json out = {{"id", result.session.id.ToHex()},
                {"head", result.session.head.IsZero() ? Json(nullptr) : Json(result.session.head.ToHex())},
                {"seq", result.session.last_seq},
                {"nodes", result.id_map.size()},
                {"retokenized", result.retokenized}};
    return JsonResponse(201, DumpJson(out));
  });
}

}  // namespace

void AddSessionRoutes(Router& router, ServerContext& ctx) {
  ServerContext* c = &ctx;
  router.Add("POST", "/v1/sessions",
             [c](const HttpRequest& r, const PathParams&) { return CreateSession(*c, r); });
  router.Add("GET", "/v1/sessions",
             [c](const HttpRequest& r, const PathParams&) { return ListSessions(*c, r); });
  router.Add("POST", "/v1/sessions/import",
             [c](const HttpRequest& r, const PathParams&) { return Import(*c, r); });
  router.Add("GET", "/v1/sessions/{id}",
             [c](const HttpRequest& r, const PathParams& p) { return GetSession(*c, r, p); });
  router.Add("PATCH", "/v1/sessions/{id}",
             [c](const HttpRequest& r, const PathParams& p) { return PatchSession(*c, r, p); });
  router.Add("POST", "/v1/sessions/{id}/nodes",
             [c](const HttpRequest& r, const PathParams& p) { return AppendNodes(*c, r, p); });
  router.Add("POST", "/v1/sessions/{id}/head",
             [c](const HttpRequest& r, const PathParams& p) { return SetHead(*c, r, p); });
  router.Add("GET", "/v1/sessions/{id}/events",
             [c](const HttpRequest& r, const PathParams& p) { return SessionEvents(*c, r, p); });
  router.Add("POST", "/v1/sessions/{id}/lease",
             [c](const HttpRequest& r, const PathParams& p) { return Lease(*c, r, p); });
  router.Add("DELETE", "/v1/sessions/{id}/lease",
             [c](const HttpRequest& r, const PathParams& p) { return ReleaseLease(*c, r, p); });
  router.Add("POST", "/v1/sessions/{id}/nodes/{node}/rehydrate",
             [c](const HttpRequest& r, const PathParams& p) { return Rehydrate(*c, r, p); });
  router.Add("GET", "/v1/sessions/{id}/export",
             [c](const HttpRequest& r, const PathParams& p) { return Export(*c, r, p); });
}

}  // namespace llmsync::api
