#include "api/server_context.h"

#include <charconv>

#include "api/api_error.h"
#include "api/sse.h"
#include "base/json_depth.h"

namespace llmsync::api {

void ServerContext::AddRequestBytes(const Id& session, std::uint64_t n) {
  std::lock_guard<std::mutex> lock(bytes_mu);
  pending_request_bytes[session] += n;
}

std::uint64_t ServerContext::TakeRequestBytes(const Id& session) {
  std::lock_guard<std::mutex> lock(bytes_mu);
  auto it = pending_request_bytes.find(session);
  if (it == pending_request_bytes.end()) return 0;
  std::uint64_t n = it->second;
  pending_request_bytes.erase(it);
  return n;
}

Result<std::string> RequireTenant(const ServerContext& ctx, const HttpRequest& req) {
  return Authenticate(*ctx.config, req);
}

HttpResponse AuthError(const Status& status) {
  HttpResponse r = ErrorResponse(401, "unauthorized", status.Message());
  r.SetHeader("WWW-Authenticate", "Bearer");
  return r;
}

Result<std::optional<Id>> OptionalIdField(const Json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) return std::optional<Id>();
  if (!j[key].is_string()) return Status::InvalidArgument(std::string(key) + " must be an id string");
  LLMSYNC_ASSIGN_OR_RETURN(Id id, ParseIdParam(j[key].get<std::string>(), key));
  return std::optional<Id>(id);
}

Result<std::string> IdempotencyKey(const Json& body, const HttpRequest& req) {
  if (body.contains("idempotency_key")) {
    if (!body["idempotency_key"].is_string())
      return Status::InvalidArgument("idempotency_key must be a string");
    return body["idempotency_key"].get<std::string>();
  }
  return req.Header("idempotency-key").value_or("");
}

Result<Json> ParseJsonObject(const std::string& body) {
  // Before the parser: nlohmann parses, dumps and destroys recursively (base/json_depth.h).
  LLMSYNC_RETURN_IF_ERROR(CheckJsonDepth(body, "request body"));
  Json j = Json::parse(body, nullptr, false);
  if (j.is_discarded()) return Status::InvalidArgument("request body is not valid JSON");
  if (!j.is_object()) return Status::InvalidArgument("request body must be a JSON object");
  return j;
}

Result<Id> ParseIdParam(const std::string& text, std::string_view what) {
  auto id = Id::FromHex(text);
  if (!id.IsOk()) return Status::InvalidArgument(std::string(what) + ": " + id.GetStatus().Message());
  return *id;
}

HttpResponse SseResponse(std::function<void(std::shared_ptr<StreamSink>)> start) {
  HttpResponse r;
  r.SetHeader("Content-Type", std::string(kSseContentType));
  r.SetHeader("Cache-Control", "no-cache");
  r.SetHeader("X-Accel-Buffering", "no");
  r.stream = std::move(start);
  return r;
}

Result<std::uint64_t> SseCursor(const HttpRequest& req, std::string_view query_name) {
  std::optional<std::string> text = req.Header("last-event-id");
  if (!text || text->empty()) text = req.Query(query_name);
  if (!text || text->empty()) return std::uint64_t{0};
  std::uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
  if (ec != std::errc() || ptr != text->data() + text->size()) {
    return Status::InvalidArgument("event cursor must be a non-negative integer, got '" + *text + "'");
  }
  return v;
}

}  // namespace llmsync::api
