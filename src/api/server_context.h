// ServerContext: the components of a running server that request handlers use, and the helpers
// every handler shares (auth, JSON bodies, id parameters).
//
// Thread safety: the pointers are set once at startup; every component is itself thread-safe.
// The byte accounting map is guarded by its own mutex.
#pragma once

#include <mutex>
#include <string>
#include <unordered_map>

#include "api/api_error.h"
#include "api/http/http_message.h"
#include "api/json_codec.h"
#include "api/server_config.h"
#include "base/metrics.h"
#include "engine/model.h"
#include "kvcache/kv_manager/kv_manager.h"
#include "runs/conversation.h"
#include "runs/event_hub.h"
#include "runs/scheduler/scheduler.h"
#include "session/session_service.h"
#include "store/store.h"

namespace llmsync::api {

class SessionEventBus;
class CompactionsAhead;

struct ServerContext {
  const ServerConfig* config = nullptr;
  Env* env = nullptr;
  MetricsRegistry* metrics = nullptr;
  const engine::Model* model = nullptr;
  std::string model_name;
  Id model_fingerprint;
  // Keys ids clients must not be able to compute (the OpenAI view's sessions). Derived from the
  // seal key, so every process of a shared store agrees on it.
  Id session_secret;
  const runs::Conversation* conversation = nullptr;
  store::Store* store = nullptr;
  session::SessionService* sessions = nullptr;
  kvcache::KvManager* kv = nullptr;
  runs::EventHub* hub = nullptr;
  runs::RunScheduler* scheduler = nullptr;
  SessionEventBus* session_events = nullptr;
  CompactionsAhead* compactions_ahead = nullptr;  // api/compaction.h; null: none ahead of time
  std::int64_t max_context = 0;                   // in force: the config's, capped by the model's

  // Bytes clients sent per session since its last run: a turn's request_bytes is its appends plus
  // the run request.
  std::mutex bytes_mu;
  std::unordered_map<Id, std::uint64_t> pending_request_bytes;  // GUARDED_BY(bytes_mu)
  void AddRequestBytes(const Id& session, std::uint64_t n);
  std::uint64_t TakeRequestBytes(const Id& session);
};

// Handler plumbing. Each returns the error response to send, or nothing.
Result<std::string> RequireTenant(const ServerContext& ctx, const HttpRequest& req);
Result<Json> ParseJsonObject(const std::string& body);
Result<Id> ParseIdParam(const std::string& text, std::string_view what);
HttpResponse AuthError(const Status& status);
// A JSON field holding a node id, absent or null → nullopt.
Result<std::optional<Id>> OptionalIdField(const Json& j, const char* key);
// The request's idempotency key: the body's "idempotency_key", else the Idempotency-Key header,
// else empty. kInvalidArgument when the body field is not a string.
Result<std::string> IdempotencyKey(const Json& body, const HttpRequest& req);

// Runs `fn(tenant)` for an authenticated request: 401 when authentication fails, the mapped HTTP
// error when `fn` returns an error status.
template <typename Fn>
HttpResponse Guarded(const ServerContext& ctx, const HttpRequest& req, Fn&& fn) {
  auto tenant = RequireTenant(ctx, req);
  if (!tenant.IsOk()) return AuthError(tenant.GetStatus());
  Result<HttpResponse> r = fn(*tenant);
  if (!r.IsOk()) return ErrorResponse(r.GetStatus());
  return std::move(r).Value();
}
// The SSE response headers and a stream function; `start` runs once the headers are sent.
HttpResponse SseResponse(std::function<void(std::shared_ptr<StreamSink>)> start);
// The cursor a reconnecting SSE client asks for: Last-Event-ID, else ?after=, else 0.
Result<std::uint64_t> SseCursor(const HttpRequest& req, std::string_view query_name = "after");

}  // namespace llmsync::api
