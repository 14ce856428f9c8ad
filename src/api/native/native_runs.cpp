#include "api/native/native_api.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "api/compaction.h"
#include "api/session_events.h"
#include "api/sse.h"
#include "api/tools/tool_support.h"
#include "base/sha256.h"
#include "llmsync/version.h"

namespace llmsync::api {
namespace {

// Reads an optional number into T, refusing values T cannot hold: no silent wrap-around
// (max_tokens 4294967297 is a 400, not 1) and no infinite or out-of-range floats.
template <typename T>
Status ReadNumber(const Json& body, const char* key, T* out) {
  if (!body.contains(key) || body[key].is_null()) return Status::Ok();
  const Json& v = body[key];
  if (!v.is_number()) return Status::InvalidArgument(std::string(key) + " must be a number");
  if constexpr (std::is_integral_v<T>) {
    if (!v.is_number_integer()) return Status::InvalidArgument(std::string(key) + " must be an integer");
    const bool fits = v.is_number_unsigned() ? std::in_range<T>(v.get<std::uint64_t>())
                                             : std::in_range<T>(v.get<std::int64_t>());
    if (!fits) {
      return Status::InvalidArgument(std::string(key) + " must be in [" +
                                     std::to_string(std::numeric_limits<T>::min()) + ", " +
                                     std::to_string(std::numeric_limits<T>::max()) + "]");
    }
    *out = static_cast<T>(v.is_number_unsigned() ? static_cast<T>(v.get<std::uint64_t>())
                                                 : static_cast<T>(v.get<std::int64_t>()));
  } else {
    const double d = v.get<double>();
    if (!std::isfinite(d) || std::fabs(d) > static_cast<double>(std::numeric_limits<T>::max()))
      return Status::InvalidArgument(std::string(key) + " is out of range");
    *out = static_cast<T>(d);
  }
  return Status::Ok();
}

constexpr std::size_t kMaxRunKeyBytes = 256;

// The run id an idempotency key names: the same key in the same session is the same run.
Id RunIdForKey(const std::string& tenant, const Id& session, const std::string& key) {
  Sha256 h;
  h.Update(std::string_view("llmsync/run-key/v1\0", 19));
  h.Update(tenant);
  h.Update(std::string_view("\0", 1));  // the tenant ends here, whatever the key holds
  h.Update(session.RawBytes());
  h.Update(key);
  return Id(h.Finish());
}

// A retried run request: the first answer when it asks for the same run, 409 otherwise.
Result<HttpResponse> ReplayRun(ServerContext& ctx, const std::string& tenant,
                               const runs::SubmitRequest& submit) {
  LLMSYNC_ASSIGN_OR_RETURN(store::RunRecord run, ctx.store->GetRun(tenant, submit.id));
  const bool same = run.session == submit.session && run.params == runs::EncodeRunParams(submit.params) &&
                    (submit.from_node.IsZero() || run.from_node == submit.from_node);
  if (!same) {
    return Status::Conflict("idempotency_key was already used for run " + run.id.ToHex() +
                            " with a different request");
  }
  Json out = {{"id", run.id.ToHex()},
              {"status", store::RunStatusName(run.status)},
              {"session", submit.session.ToHex()},
              {"replayed", true}};
  return JsonResponse(200, DumpJson(out));
}

// Parses the run request fields shared by the native API and the OpenAI-compatible views.
Result<runs::RunParams> ParseRunParams(const Json& body) {
  runs::RunParams p;
  LLMSYNC_RETURN_IF_ERROR(ReadNumber(body, "max_tokens", &p.max_tokens));
  LLMSYNC_RETURN_IF_ERROR(ReadNumber(body, "temperature", &p.sampling.temperature));
  LLMSYNC_RETURN_IF_ERROR(ReadNumber(body, "top_p", &p.sampling.top_p));
  LLMSYNC_RETURN_IF_ERROR(ReadNumber(body, "top_k", &p.sampling.top_k));
  LLMSYNC_RETURN_IF_ERROR(ReadNumber(body, "min_p", &p.sampling.min_p));
  LLMSYNC_RETURN_IF_ERROR(ReadNumber(body, "repeat_penalty", &p.sampling.repeat_penalty));
  LLMSYNC_RETURN_IF_ERROR(ReadNumber(body, "seed", &p.sampling.seed));
  LLMSYNC_RETURN_IF_ERROR(ReadNumber(body, "lease_s", &p.lease_s));
  LLMSYNC_ASSIGN_OR_RETURN(p.stop, ParseStopStrings(body));
  if (body.contains("add_generation_prompt")) {
    if (!body["add_generation_prompt"].is_boolean())
      return Status::InvalidArgument("add_generation_prompt must be a boolean");
    p.add_generation_prompt = body["add_generation_prompt"].get<bool>();
  }
  return p;
}

// The bytes an OpenAI client would send to get this turn without state: every message of the path.
std::uint64_t StatelessBytes(const ServerContext& ctx, const std::vector<session::Node>& path,
                             const Json& params) {
  Json messages = Json::array();
  for (const session::Node& n : path) {
    messages.push_back({{"role", session::NodeKindName(n.content.kind)}, {"content", n.content.text}});
  }
  Json body = params;
  body["model"] = ctx.model_name;
  body["messages"] = std::move(messages);
  return DumpJson(body).size();
}

// The cost report of a finished run: the payload of its run.usage event.
std::optional<Json> CostOf(ServerContext& ctx, const std::string& tenant, const store::RunRecord& run) {
  if (!store::IsTerminal(run.status) || run.last_event_id == 0) return std::nullopt;
  std::uint64_t after = run.last_event_id > 4 ? run.last_event_id - 4 : 0;
  auto events = ctx.store->ReadRunEvents(tenant, run.id, after, 8);
  if (!events.IsOk()) return std::nullopt;
  for (const store::RunEvent& e : *events) {
    if (e.type == runs::kEventUsage) {
      Json j = Json::parse(e.payload, nullptr, false);
      if (!j.is_discarded()) return j;
    }
  }
  return std::nullopt;
}

Result<HttpResponse> SubmitAndRespond(ServerContext& ctx, const std::string& tenant,
                                      const runs::SubmitRequest& submit, const std::string& key,
                                      const Json* compaction, const runs::ContextPolicy& policy);
HttpResponse AdoptOrCompact(ServerContext& ctx, const CompactionJob& job, runs::SubmitRequest submit,
                            const std::string& key, bool compact);

// The policy of a run: the request's "context" object, else the session's.
Result<runs::ContextPolicy> RunContextPolicy(ServerContext& ctx, const std::string& tenant, const Id& session,
                                             const Json& body) {
  if (body.contains("context") && !body["context"].is_null()) {
    return ParseContextPolicy(body["context"], ctx.max_context);
  }
  LLMSYNC_ASSIGN_OR_RETURN(session::SessionInfo info, ctx.sessions->GetSession(tenant, session));
  return SessionContextPolicy(info.metadata);
}

HttpResponse StartRun(ServerContext& ctx, const HttpRequest& req, const PathParams& p) {
  return Guarded(ctx, req, [&](const std::string& tenant) -> Result<HttpResponse> {
    LLMSYNC_ASSIGN_OR_RETURN(Id session, ParseIdParam(p.at("id"), "session id"));
    LLMSYNC_ASSIGN_OR_RETURN(Json body, ParseJsonObject(req.body));
    runs::SubmitRequest submit;
    submit.tenant = tenant;
    submit.session = session;
    LLMSYNC_ASSIGN_OR_RETURN(std::optional<Id> from, OptionalIdField(body, "from"));
    submit.from_node = from.value_or(Id());
    LLMSYNC_ASSIGN_OR_RETURN(submit.params, ParseRunParams(body));
    std::optional<HttpResponse> tool_error;
    std::optional<ToolRequest> tools = NativeToolRequest(body, req.body, &tool_error);
    if (tool_error) return std::move(*tool_error);
    if (tools) {  // the run may end in tool calls: constrained as in the OpenAI views
      Status planned = NativeRunTools(ToolSupportFor(ctx), *tools, &submit.params, &tool_error);
      if (tool_error) return std::move(*tool_error);
      LLMSYNC_RETURN_IF_ERROR(planned);
    }
    LLMSYNC_ASSIGN_OR_RETURN(std::string key, IdempotencyKey(body, req));
    if (key.size() > kMaxRunKeyBytes) {
      return Status::InvalidArgument("idempotency_key is longer than " + std::to_string(kMaxRunKeyBytes) +
                                     " bytes");
    }
    if (!key.empty()) submit.id = RunIdForKey(tenant, session, key);
    submit.request_bytes = ctx.TakeRequestBytes(session) + req.body.size();
    std::vector<session::Node> path;
    if (!submit.from_node.IsZero()) {
      LLMSYNC_ASSIGN_OR_RETURN(path, ctx.sessions->Path(tenant, session, submit.from_node));
    } else {
      LLMSYNC_ASSIGN_OR_RETURN(session::SessionInfo info, ctx.sessions->GetSession(tenant, session));
      if (!info.head.IsZero()) {
        LLMSYNC_ASSIGN_OR_RETURN(path, ctx.sessions->Path(tenant, session, info.head));
      }
    }
    Json params = body;
    params.erase("from");
    params.erase("idempotency_key");
    params.erase("context");
    submit.stateless_equivalent_bytes = StatelessBytes(ctx, path, params);
    LLMSYNC_ASSIGN_OR_RETURN(runs::ContextPolicy policy, RunContextPolicy(ctx, tenant, session, body));
    const bool replay = !key.empty() && ctx.store->GetRun(tenant, submit.id).IsOk();
    auto job = std::make_shared<CompactionJob>(
        CompactionJob{tenant, session, std::move(path), policy, true, submit.params.sampling.seed});
    if (replay) return SubmitAndRespond(ctx, tenant, submit, key, nullptr, policy);
    LLMSYNC_ASSIGN_OR_RETURN(bool compact, NeedsCompaction(ctx, job->path, policy, submit.params.max_tokens));
    ServerContext* c = &ctx;
    auto go = [c, job, submit, key, compact]() { return AdoptOrCompact(*c, *job, submit, key, compact); };
    // Past the budget while the session is being compacted ahead of time: wait for that one
    // rather than compacting a second time (the wait holds no thread).
    if (!compact) return go();
    bool waited = false;
    HttpResponse after = RespondAfterAhead(ctx, session, false, &waited, go);
    return waited ? std::move(after) : go();
  });
}

// A run from job.path: on the branch compacted ahead of time when one is ready, else, past the
// budget (`compact`), on a branch compacted first (docs/PROTOCOL.md), else on the path itself.
HttpResponse AdoptOrCompact(ServerContext& ctx, const CompactionJob& job, runs::SubmitRequest submit,
                            const std::string& key, bool compact) {
  const std::string& tenant = job.tenant;
  const runs::ContextPolicy& policy = job.policy;
  auto adopted = AdoptAhead(ctx, job, submit.params.max_tokens);
  if (!adopted.IsOk()) return ErrorResponse(adopted.GetStatus());
  if (*adopted) {
    submit.from_node = (*adopted)->compacted_tip;
    submit.after_prefill_of = (*adopted)->prefill_run;  // its KV, when still being computed
    Json compaction = CompactionJson(**adopted);
    Result<HttpResponse> r = SubmitAndRespond(ctx, tenant, submit, key, &compaction, policy);
    return r.IsOk() ? std::move(r).Value() : ErrorResponse(r.GetStatus());
  }
  if (!compact) {
    Result<HttpResponse> r = SubmitAndRespond(ctx, tenant, submit, key, nullptr, policy);
    return r.IsOk() ? std::move(r).Value() : ErrorResponse(r.GetStatus());
  }
  ServerContext* c = &ctx;
  return RespondAfterCompaction(
      ctx, job, false, [c, tenant, submit, key, policy](Result<CompactionReport> report) mutable {
        if (!report.IsOk()) return ErrorResponse(report.GetStatus());
        submit.from_node = report->compacted_tip;
        Json compaction = CompactionJson(*report);
        Result<HttpResponse> r = SubmitAndRespond(*c, tenant, submit, key, &compaction, policy);
        return r.IsOk() ? std::move(r).Value() : ErrorResponse(r.GetStatus());
      });
}

// Submits the run and answers 202; a retried idempotency key replays the first answer.
Result<HttpResponse> SubmitAndRespond(ServerContext& ctx, const std::string& tenant,
                                      const runs::SubmitRequest& submit, const std::string& key,
                                      const Json* compaction, const runs::ContextPolicy& policy) {
  {
    const Id& session = submit.session;
    Result<store::RunRecord> submitted = ctx.scheduler->Submit(submit);
    if (!submitted.IsOk() && submitted.GetStatus().Code() == StatusCode::kAlreadyExists && !key.empty()) {
      return ReplayRun(ctx, tenant, submit);
    }
    LLMSYNC_ASSIGN_OR_RETURN(store::RunRecord run, std::move(submitted));
    ctx.metrics->GetCounter("llmsync_runs_total", "Runs started")->Add();
    ctx.metrics->GetCounter("llmsync_turn_request_bytes_total", "Bytes clients sent for their turns")
        ->Add(submit.request_bytes);
    ctx.metrics
        ->GetCounter("llmsync_stateless_equivalent_bytes_total",
                     "Bytes the same turns would have cost as stateless full-history requests")
        ->Add(submit.stateless_equivalent_bytes);
    Json out = {
        {"id", run.id.ToHex()}, {"status", store::RunStatusName(run.status)}, {"session", session.ToHex()}};
    ctx.session_events->Publish(session, 0, "run.started", DumpJson(out));
    if (compaction != nullptr) out["compaction"] = *compaction;
    // Nearing the budget, the next compaction starts once this run ends, off the next turn's path.
    CompactAheadAfter(ctx, tenant, session, run.id, policy, submit.params.max_tokens);
    return JsonResponse(202, DumpJson(out));
  }
}

// POST /v1/sessions/{id}/compact {"from"?, "context"?}: compacts the branch ending at `from` (the
// head by default) under the request's policy, else the session's, else auto.
HttpResponse CompactSession(ServerContext& ctx, const HttpRequest& req, const PathParams& p) {
  return Guarded(ctx, req, [&](const std::string& tenant) -> Result<HttpResponse> {
    LLMSYNC_ASSIGN_OR_RETURN(Id session, ParseIdParam(p.at("id"), "session id"));
    Json body = Json::object();
    if (!req.body.empty()) {
      LLMSYNC_ASSIGN_OR_RETURN(body, ParseJsonObject(req.body));
    }
    LLMSYNC_ASSIGN_OR_RETURN(runs::ContextPolicy policy, RunContextPolicy(ctx, tenant, session, body));
    if (policy.mode == runs::ContextMode::kNone) policy.mode = runs::ContextMode::kAuto;
    LLMSYNC_ASSIGN_OR_RETURN(std::optional<Id> from, OptionalIdField(body, "from"));
    LLMSYNC_ASSIGN_OR_RETURN(session::SessionInfo info, ctx.sessions->GetSession(tenant, session));
    const Id tip = from.value_or(info.head);
    if (tip.IsZero()) return Status::InvalidArgument("the session is empty: nothing to compact");
    LLMSYNC_ASSIGN_OR_RETURN(std::vector<session::Node> path, ctx.sessions->Path(tenant, session, tip));
    std::uint64_t seed = 0;
    LLMSYNC_RETURN_IF_ERROR(ReadNumber(body, "seed", &seed));
    CompactionJob job{tenant, session, std::move(path), policy, true, seed};
    return RespondAfterCompaction(ctx, std::move(job), false, [](Result<CompactionReport> report) {
      if (!report.IsOk()) return ErrorResponse(report.GetStatus());
      return JsonResponse(200, DumpJson(CompactionJson(*report)));
    });
  });
}

HttpResponse GetRun(ServerContext& ctx, const HttpRequest& req, const PathParams& p) {
  return Guarded(ctx, req, [&](const std::string& tenant) -> Result<HttpResponse> {
    LLMSYNC_ASSIGN_OR_RETURN(Id run_id, ParseIdParam(p.at("id"), "run id"));
    LLMSYNC_ASSIGN_OR_RETURN(store::RunRecord run, ctx.store->GetRun(tenant, run_id));
    std::optional<Json> cost = CostOf(ctx, tenant, run);
    Json out = RunJson(run, cost ? &*cost : nullptr);
    // The result's tool calls and reasoning, typed (the node keeps the generated text).
    if (!run.result_node.IsZero()) {
      auto node = ctx.sessions->GetNode(tenant, run.session, run.result_node);
      if (node.IsOk()) {
        if (auto parts = AssistantPartsJson(ToolSupportFor(ctx), session::PublicView(*node))) {
          out["parts"] = std::move(*parts);
        }
      }
    }
    // The engine process that claimed it (many processes on one store; null in a single process),
    // and where the dispatcher offered it and why (null when the run was not dispatched).
    LLMSYNC_ASSIGN_OR_RETURN(store::RunPlacement placement, ctx.store->GetRunPlacement(run.id));
    out["worker"] = placement.engine.empty() ? Json(nullptr) : Json(placement.engine);
    out["dispatch"] =
        placement.reason.empty() && placement.target.empty() ? Json(nullptr) : DispatchJson(placement);
    return JsonResponse(200, DumpJson(out));
  });
}

HttpResponse CancelRun(ServerContext& ctx, const HttpRequest& req, const PathParams& p) {
  return Guarded(ctx, req, [&](const std::string& tenant) -> Result<HttpResponse> {
    LLMSYNC_ASSIGN_OR_RETURN(Id run_id, ParseIdParam(p.at("id"), "run id"));
    LLMSYNC_ASSIGN_OR_RETURN(store::RunRecord run, ctx.scheduler->Cancel(tenant, run_id));
    return JsonResponse(200, DumpJson(RunJson(run, nullptr)));
  });
}

HttpResponse RunEvents(ServerContext& ctx, const HttpRequest& req, const PathParams& p) {
  return Guarded(ctx, req, [&](const std::string& tenant) -> Result<HttpResponse> {
    LLMSYNC_ASSIGN_OR_RETURN(Id run_id, ParseIdParam(p.at("id"), "run id"));
    LLMSYNC_ASSIGN_OR_RETURN(std::uint64_t after, SseCursor(req));
    LLMSYNC_ASSIGN_OR_RETURN(store::RunRecord run,
                             ctx.store->GetRun(tenant, run_id));  // 404 before streaming
    (void)run;
    runs::EventHub* hub = ctx.hub;
    return SseResponse([hub, tenant, run_id, after](std::shared_ptr<StreamSink> sink) {
      auto subscribed = hub->Subscribe(
          tenant, run_id, after,
          [sink](const store::RunEvent& e) {
            return sink->Write(FormatSseEvent(e.event_id, e.type, e.payload));
          },
          [sink] { sink->Close(); });
      if (!subscribed.IsOk()) {
        sink->Write(FormatSseEvent(0, "error",
                                   DumpJson({{"error",
                                              {{"code", StatusCodeName(subscribed.GetStatus().Code())},
                                               {"message", subscribed.GetStatus().Message()}}}})));
        sink->Close();
      }
    });
  });
}

// The gauges /metrics sets from live state when it is scraped: queue depth, KV blocks per tier,
// leases and build info (runs/scheduler/run_metrics.h has the histograms).
void UpdateOperatorGauges(ServerContext& c, const kvcache::KvStats& kv) {
  MetricsRegistry& m = *c.metrics;
  runs::RunScheduler::QueueStats queue = c.scheduler->Queue();
  m.GetGauge("llmsync_queued_runs", "Runs waiting for a slot")->Set(static_cast<std::int64_t>(queue.runs));
  m.GetGauge("llmsync_queued_prompt_tokens", "Prompt tokens of the runs waiting for a slot")
      ->Set(static_cast<std::int64_t>(queue.prompt_tokens));
  constexpr const char* kBlocksHelp = "KV blocks in RAM, used and free";
  m.GetGauge("llmsync_kv_blocks", kBlocksHelp, {{"tier", "ram"}, {"state", "used"}})->Set(kv.ram_blocks_used);
  m.GetGauge("llmsync_kv_blocks", kBlocksHelp, {{"tier", "ram"}, {"state", "free"}})
      ->Set(kv.ram_blocks_capacity - kv.ram_blocks_used);
  m.GetGauge("llmsync_kv_disk_snapshots", "KV snapshot files on disk (one per spilled span)")
      ->Set(kv.disk_files);
  m.GetGauge("llmsync_kv_disk_free_bytes", "Room left in the KV snapshot disk budget")
      ->Set(std::max<std::int64_t>(0, (c.config->kv_disk_mb << 20) - kv.disk_bytes));
  m.GetGauge("llmsync_kv_leases", "Live KV leases")->Set(kv.leases);
  m.GetGauge("llmsync_build_info", "Build information (always 1)",
             {{"version", std::string(kVersion)}, {"model", c.model_name}})
      ->Set(1);
}

}  // namespace

void AddRunRoutes(Router& router, ServerContext& ctx) {
  ServerContext* c = &ctx;
  router.Add("POST", "/v1/sessions/{id}/runs",
             [c](const HttpRequest& r, const PathParams& p) { return StartRun(*c, r, p); });
  router.Add("POST", "/v1/sessions/{id}/compact",
             [c](const HttpRequest& r, const PathParams& p) { return CompactSession(*c, r, p); });
  router.Add("GET", "/v1/runs/{id}",
             [c](const HttpRequest& r, const PathParams& p) { return GetRun(*c, r, p); });
  router.Add("POST", "/v1/runs/{id}/cancel",
             [c](const HttpRequest& r, const PathParams& p) { return CancelRun(*c, r, p); });
  router.Add("GET", "/v1/runs/{id}/events",
             [c](const HttpRequest& r, const PathParams& p) { return RunEvents(*c, r, p); });
}

void AddAdminRoutes(Router& router, ServerContext& ctx) {
  ServerContext* c = &ctx;
  router.Add("GET", "/healthz", [c](const HttpRequest& r, const PathParams&) {
    if (!c->config->public_health) {
      if (auto tenant = RequireTenant(*c, r); !tenant.IsOk()) return AuthError(tenant.GetStatus());
    }
    Json out = {{"status", "ok"},
                {"version", std::string(kVersion)},
                {"model", c->model_name},
                {"model_fingerprint", c->model_fingerprint.ToHex()},
                {"active_runs", c->scheduler->ActiveRuns()}};
    return JsonResponse(200, DumpJson(out));
  });
  router.Add("GET", "/metrics", [c](const HttpRequest& req, const PathParams&) {
    if (c->config->metrics_require_key) {
      if (auto tenant = RequireTenant(*c, req); !tenant.IsOk()) return AuthError(tenant.GetStatus());
    }
    kvcache::KvStats kv = c->kv->Stats();
    c->metrics->GetGauge("llmsync_kv_ram_blocks_used", "KV RAM blocks in use")->Set(kv.ram_blocks_used);
    c->metrics->GetGauge("llmsync_kv_ram_blocks_capacity", "KV RAM blocks available")
        ->Set(kv.ram_blocks_capacity);
    c->metrics->GetGauge("llmsync_kv_disk_bytes", "Bytes of KV snapshots on disk")->Set(kv.disk_bytes);
    c->metrics->GetGauge("llmsync_active_runs", "Runs being executed")
        ->Set(static_cast<std::int64_t>(c->scheduler->ActiveRuns()));
    c->metrics->GetGauge("llmsync_run_subscribers", "Live run event subscribers")
        ->Set(static_cast<std::int64_t>(c->hub->SubscriberCount()));
    UpdateOperatorGauges(*c, kv);
    HttpResponse r;
    r.body = c->metrics->Render();
    r.SetHeader("Content-Type", "text/plain; version=0.0.4");
    return r;
  });
}

}  // namespace llmsync::api
