#include "api/edge_policy.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cctype>

#include "api/api_error.h"

namespace llmsync::api {
namespace {

constexpr const char* kAllowedMethods = "GET, POST, PATCH, DELETE, OPTIONS";
constexpr const char* kDefaultAllowedHeaders = "Authorization, Content-Type, Idempotency-Key, Last-Event-ID";

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool IsJsonMediaType(std::string_view content_type) {
  std::string type = Lower(Trim(content_type.substr(0, content_type.find(';'))));
  if (type == "application/json" || type == "application/x-ndjson" || type == "application/jsonl")
    return true;
  return type.starts_with("application/") && type.ends_with("+json");
}

}  // namespace

std::string HostName(std::string_view host_header) {
  std::string_view h = Trim(host_header);
  if (!h.empty() && h.front() == '[') {  // an IPv6 literal
    std::size_t close = h.find(']');
    return Lower(h.substr(1, close == std::string_view::npos ? std::string_view::npos : close - 1));
  }
  std::size_t colon = h.find(':');
  if (colon != std::string_view::npos && h.find(':', colon + 1) == std::string_view::npos)
    h = h.substr(0, colon);
  if (!h.empty() && h.back() == '.') h.remove_suffix(1);  // "localhost." is localhost
  return Lower(h);
}

EdgePolicy::EdgePolicy(const ServerConfig& config)
    : check_host_(config.api_keys.empty()), any_origin_(false) {
  hosts_.push_back(Lower(config.Host()));
  for (const std::string& h : config.allowed_hosts) hosts_.push_back(HostName(h));
  for (const std::string& o : config.cors_origins) {
    if (o == "*") any_origin_ = true;
    std::string origin = Lower(o);
    while (!origin.empty() && origin.back() == '/') origin.pop_back();
    origins_.push_back(origin);
  }
}

namespace {

// A loopback address literal (127.0.0.0/8, ::1) or localhost. Not IsLoopbackHost's prefix test:
// "127.0.0.1.attacker.example" is a name an attacker controls.
bool IsLoopbackName(const std::string& name) {
  if (name == "localhost") return true;
  in_addr v4{};
  if (::inet_pton(AF_INET, name.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  return ::inet_pton(AF_INET6, name.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

}  // namespace

bool EdgePolicy::HostAllowed(const std::string& host_header) const {
  const std::string name = HostName(host_header);
  if (IsLoopbackName(name)) return true;
  if (name.ends_with(".localhost")) return true;  // RFC 6761: always loopback
  return std::find(hosts_.begin(), hosts_.end(), name) != hosts_.end();
}

bool EdgePolicy::OriginAllowed(const std::string& origin, const HttpRequest& request) const {
  if (any_origin_) return true;
  const std::string o = Lower(origin);
  if (std::find(origins_.begin(), origins_.end(), o) != origins_.end()) return true;
  // The server's own pages (same scheme-less host and port as this request) are same-origin.
  std::optional<std::string> host = request.Header("host");
  return host && (o == "http://" + Lower(*host) || o == "https://" + Lower(*host));
}

std::optional<HttpResponse> EdgePolicy::Check(const HttpRequest& request) const {
  std::optional<std::string> host = request.Header("host");
  if (check_host_ && host && !HostAllowed(*host)) {
    return ErrorResponse(421, "misdirected_request",
                         "Host '" + *host +
                             "' is not this server's: without api_keys only the listen address, localhost "
                             "and allowed_hosts are served");
  }
  std::optional<std::string> origin = request.Header("origin");
  if (origin && !OriginAllowed(*origin, request)) {
    return ErrorResponse(403, "origin_not_allowed",
                         "Origin '" + *origin + "' is not in the server's cors_origins");
  }
  if (request.method == "OPTIONS" && origin && request.Header("access-control-request-method")) {
    HttpResponse r;
    r.status = 204;
    r.SetHeader("Access-Control-Allow-Methods", kAllowedMethods);
    r.SetHeader("Access-Control-Allow-Headers",
                request.Header("access-control-request-headers").value_or(kDefaultAllowedHeaders));
    r.SetHeader("Access-Control-Max-Age", "600");
    Decorate(request, &r);
    return r;
  }
  if (!request.body.empty()) {
    std::optional<std::string> type = request.Header("content-type");
    if (!type || !IsJsonMediaType(*type)) {
      return ErrorResponse(415, "unsupported_media_type",
                           "a request body must be JSON: send Content-Type: application/json" +
                               (type ? " (got '" + *type + "')" : std::string()));
    }
  }
  return std::nullopt;
}

void EdgePolicy::Decorate(const HttpRequest& request, HttpResponse* response) const {
  std::optional<std::string> origin = request.Header("origin");
  if (!origin) return;
  response->SetHeader("Access-Control-Allow-Origin", *origin);
  response->SetHeader("Access-Control-Expose-Headers", "Retry-After, Location");
  response->SetHeader("Vary", "Origin");
}

std::function<HttpResponse(const HttpRequest&)> WithEdgePolicy(
    std::function<HttpResponse(const HttpRequest&)> inner, const EdgePolicy* policy) {
  return [inner = std::move(inner), policy](const HttpRequest& request) {
    if (std::optional<HttpResponse> early = policy->Check(request)) {
      policy->Decorate(request, &*early);
      return std::move(*early);
    }
    HttpResponse response = inner(request);
    policy->Decorate(request, &response);
    return response;
  };
}

}  // namespace llmsync::api
