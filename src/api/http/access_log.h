// The access log: one structured line per HTTP request, at info level, written when the response
// is complete (a streamed response when its stream ends, a deferred one when it is finished):
//
//   access method=POST path=/v1/sessions/{id}/runs status=202 tenant=local bytes_in=84 bytes_out=312
//          ms=1.9 run=5f0c...
//
// `path` is the route template, not the concrete path, so lines aggregate by endpoint and ids stay
// out of the path field; `run` is the run the request created or read ("-" when none). Bytes are
// body bytes (request body in, response body or stream bytes out). Requests the HTTP server answers
// by itself (a malformed request, an oversize body) do not reach the handler and are not logged.
//
// WithAccessLog wraps a request handler; it adds no work to the HTTP server's connection code.
//
// Thread safety: the wrapped handler is safe for concurrent use when `inner` and `describe` are.
#pragma once

#include <functional>
#include <string>

#include "api/http/http_server.h"

namespace llmsync::api {

// What the access log learns about a request from the layer above the HTTP server.
struct AccessInfo {
  std::string path_template;  // e.g. "/v1/runs/{id}/events"; empty: no route matched
  std::string tenant;         // empty: not authenticated
  std::string run_id;         // from a {id} of a /v1/runs/ path; empty: none (or found in the body)
};
using AccessDescriber = std::function<AccessInfo(const HttpRequest&)>;

RequestHandler WithAccessLog(RequestHandler inner, AccessDescriber describe);

// The run id a response body names: the hex after "chatcmpl-" or "resp_", or the "id" of a native
// run (`native_run` true). Empty when none.
std::string RunIdInBody(std::string_view body, bool native_run);

}  // namespace llmsync::api
