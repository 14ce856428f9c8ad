// JSON error responses: {"error": {"code": "not_found", "message": "..."}}.
//
// Every failure the API reports goes through here, so clients see one shape and a status code
// that follows from the Status code (invalid argument → 400, not found → 404, conflict → 409, ...).
// A 503 (kUnavailable: the store is unreachable or locked) and a 429 (kResourceExhausted: the run
// queue is full) carry `Retry-After: 1`.
//
// Thread safety: pure functions.
#pragma once

#include <string>

#include "api/http/http_message.h"
#include "llmsync/status.h"

namespace llmsync::api {

int HttpStatusFor(StatusCode code);
// The response for a non-OK status, with the status code HttpStatusFor picks.
HttpResponse ErrorResponse(const Status& status);
// The response for an explicit HTTP status (401, 413, 422, ...) and error code name.
HttpResponse ErrorResponse(int http_status, std::string code, std::string message);
// A JSON body with the given status and Content-Type: application/json.
HttpResponse JsonResponse(int http_status, std::string json_body);

}  // namespace llmsync::api
