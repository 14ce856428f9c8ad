#include "api/router.h"

#include <exception>

#include "api/api_error.h"
#include "base/logging.h"

namespace llmsync::api {

std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> out;
  while (!path.empty()) {
    if (path.front() == '/') {
      path.remove_prefix(1);
      continue;
    }
    std::size_t slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash);
  }
  return out;
}

void Router::Add(std::string method, std::string_view pattern, Handler handler) {
  Entry e;
  e.method = std::move(method);
  e.pattern = std::string(pattern);
  for (std::string_view s : SplitPath(pattern)) e.segments.emplace_back(s);
  e.handler = std::move(handler);
  routes_.push_back(std::move(e));
}

bool Router::Match(const std::vector<std::string>& pattern, const std::vector<std::string_view>& path,
                   PathParams* params) {
  if (pattern.size() != path.size()) return false;
  PathParams captured;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    const std::string& p = pattern[i];
    if (p.size() >= 2 && p.front() == '{' && p.back() == '}') {
      captured[p.substr(1, p.size() - 2)] = std::string(path[i]);
    } else if (p != path[i]) {
      return false;
    }
  }
  *params = std::move(captured);
  return true;
}

std::string Router::Template(const HttpRequest& request, PathParams* params) const {
  std::vector<std::string_view> path = SplitPath(request.path);
  for (const Entry& e : routes_) {
    if (e.method == request.method && Match(e.segments, path, params)) return e.pattern;
  }
  return "";
}

HttpResponse Router::Route(const HttpRequest& request) const {
  std::vector<std::string_view> path = SplitPath(request.path);
  std::string allowed;
  for (const Entry& e : routes_) {
    PathParams params;
    if (!Match(e.segments, path, &params)) continue;
    if (e.method != request.method) {
      allowed += (allowed.empty() ? "" : ", ") + e.method;
      continue;
    }
    try {
      return e.handler(request, params);
    } catch (const std::exception& ex) {
      LLMSYNC_LOG(kError) << request.method << " " << request.path << " failed: " << ex.what();
      return ErrorResponse(500, "internal", std::string("internal error: ") + ex.what());
    }
  }
  if (!allowed.empty()) {
    HttpResponse r =
        ErrorResponse(405, "method_not_allowed", request.method + " is not allowed on " + request.path);
    r.SetHeader("Allow", allowed);
    return r;
  }
  return ErrorResponse(404, "not_found", "no route for " + request.path);
}

}  // namespace llmsync::api
