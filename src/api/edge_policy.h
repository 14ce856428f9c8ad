// EdgePolicy: request hygiene checked before any handler runs (issue 17, "request hygiene").
//
//   - Host. With no api_keys the server trusts everyone who can reach it, which is meant to be
//     this machine only; a DNS-rebinding page reaches it under a foreign name. So without keys the
//     Host header's name must be the listen address, a loopback name (localhost, 127.x, ::1) or
//     one of `allowed_hosts`: otherwise 421 misdirected_request.
//   - Origin. A browser names the page that sent a request. When present it must be one of
//     `cors_origins` ("*" allows any) or the server's own origin (same Host): otherwise 403
//     origin_not_allowed. Allowed origins get Access-Control-Allow-Origin on every response, and
//     a CORS preflight (OPTIONS with Access-Control-Request-Method) is answered with 204 and the
//     methods GET, POST, PATCH, DELETE, OPTIONS.
//   - Content-Type. A request with a body must declare JSON (application/json, application/*+json,
//     or application/x-ndjson / application/jsonl for bundles): otherwise 415
//     unsupported_media_type. A text/plain POST, which a browser sends cross-site without a
//     preflight, never reaches a handler.
//
// Every refusal is a JSON error body (api/api_error.h).
//
// Thread safety: immutable after construction; Check and Decorate are safe for concurrent use.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/http/http_message.h"
#include "api/server_config.h"

namespace llmsync::api {

class EdgePolicy {
 public:
  explicit EdgePolicy(const ServerConfig& config);

  // The response that ends the request here (a refusal, or the answer to a preflight), or nullopt
  // when the request may go on to its handler.
  std::optional<HttpResponse> Check(const HttpRequest& request) const;
  // Adds the CORS headers a response to an allowed cross-origin request carries.
  void Decorate(const HttpRequest& request, HttpResponse* response) const;

 private:
  bool HostAllowed(const std::string& host_header) const;
  bool OriginAllowed(const std::string& origin, const HttpRequest& request) const;

  bool check_host_;
  std::vector<std::string> hosts_;  // lower case, without ports
  std::vector<std::string> origins_;
  bool any_origin_;
};

// The name in a Host header, lower case, without the port ("[::1]:8420" → "::1").
std::string HostName(std::string_view host_header);

// `inner` behind the policy: refusals and preflights answered here, CORS headers added after.
// REQUIRES: `policy` outlives the returned handler.
std::function<HttpResponse(const HttpRequest&)> WithEdgePolicy(
    std::function<HttpResponse(const HttpRequest&)> inner, const EdgePolicy* policy);

}  // namespace llmsync::api
