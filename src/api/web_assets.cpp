#include "api/web_assets.h"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "api/api_error.h"

namespace llmsync::api {
namespace {

constexpr const char* kCsp =
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const EmbeddedFile* Find(std::string_view path) {
  for (const EmbeddedFile& f : EmbeddedFiles()) {
    if (f.path == path) return &f;
  }
  return nullptr;
}

// For working on the page without rebuilding: LLMSYNC_WEB_DIR=DIR serves DIR/<name> when it
// exists instead of the embedded copy. `path` is one path segment from the router (no '/').
bool ReadOverride(std::string_view path, std::string* out) {
  const char* dir = std::getenv("LLMSYNC_WEB_DIR");
  if (dir == nullptr || *dir == '\0' || path.empty() || path.front() == '.') return false;
  std::ifstream in(std::string(dir) + "/" + std::string(path), std::ios::binary);
  if (!in) return false;
  std::ostringstream text;
  text << in.rdbuf();
  *out = text.str();
  return true;
}

HttpResponse Serve(std::string_view path) {
  HttpResponse r;
  if (!ReadOverride(path, &r.body)) {
    const EmbeddedFile* f = Find(path);
    if (f == nullptr) return ErrorResponse(404, "not_found", "no asset " + std::string(path));
    r.body = std::string(f->bytes);
  }
  r.SetHeader("Content-Type", std::string(ContentTypeFor(path)));
  r.SetHeader("Content-Security-Policy", kCsp);
  r.SetHeader("X-Content-Type-Options", "nosniff");
  r.SetHeader("Referrer-Policy", "no-referrer");
  // The assets change with the binary; a reload must never run an old script against a new server.
  r.SetHeader("Cache-Control", "no-cache");
  return r;
}

bool IsHexId(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

std::string_view ContentTypeFor(std::string_view path) {
  if (path.ends_with(".html")) return "text/html; charset=utf-8";
  if (path.ends_with(".js")) return "text/javascript; charset=utf-8";
  if (path.ends_with(".css")) return "text/css; charset=utf-8";
  if (path.ends_with(".png")) return "image/png";
  if (path.ends_with(".svg")) return "image/svg+xml";
  return "application/octet-stream";
}

void AddWebRoutes(Router& router) {
  router.Add("GET", "/", [](const HttpRequest&, const PathParams&) { return Serve("index.html"); });
  // One URL per conversation: the page reads the id from its location.
  router.Add("GET", "/c/{id}", [](const HttpRequest&, const PathParams& p) {
    if (!IsHexId(p.at("id"))) return ErrorResponse(404, "not_found", "no conversation " + p.at("id"));
    return Serve("index.html");
  });
  router.Add("GET", "/assets/{name}", [](const HttpRequest&, const PathParams& p) {
    const std::string& name = p.at("name");
    if (name == "index.html") return ErrorResponse(404, "not_found", "no asset " + name);
    return Serve(name);
  });
}

}  // namespace llmsync::api
