#include "api/api_error.h"

#include <nlohmann/json.hpp>

#include "runs/scheduler/scheduler.h"

namespace llmsync::api {

int HttpStatusFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return 200;
    case StatusCode::kInvalidArgument: return 400;
    case StatusCode::kNotFound: return 404;
    case StatusCode::kConflict: return 409;
    case StatusCode::kAlreadyExists: return 409;
    case StatusCode::kResourceExhausted: return 429;
    case StatusCode::kDataLoss: return 500;
    case StatusCode::kUnavailable: return 503;
    case StatusCode::kInternal: return 500;
    case StatusCode::kCancelled: return 409;
    case StatusCode::kUnimplemented: return 501;
  }
  return 500;
}

HttpResponse JsonResponse(int http_status, std::string json_body) {
  HttpResponse r;
  r.status = http_status;
  r.body = std::move(json_body);
  r.SetHeader("Content-Type", "application/json");
  return r;
}

HttpResponse ErrorResponse(int http_status, std::string code, std::string message) {
  nlohmann::json body = {{"error", {{"code", std::move(code)}, {"message", std::move(message)}}}};
  // Invalid UTF-8 in a message (say, echoing a bad client string) is replaced, never thrown.
  HttpResponse r =
      JsonResponse(http_status, body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  // 503 is a transient outage (the store unreachable, a lock held): tell clients when to retry.
  // 429 is a full queue or a spent quota: the same advice.
  if (http_status == 503 || http_status == 429) r.SetHeader("Retry-After", "1");
  return r;
}

HttpResponse ErrorResponse(const Status& status) {
  if (runs::IsContextLengthExceeded(status))
    return ErrorResponse(400, "context_length_exceeded", status.Message());
  return ErrorResponse(HttpStatusFor(status.Code()), std::string(StatusCodeName(status.Code())),
                       status.Message());
}

}  // namespace llmsync::api
