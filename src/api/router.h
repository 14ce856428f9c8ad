// Router: maps (method, path) to a handler. Patterns are literal segments and `{name}` captures:
//
//   router.Add("GET", "/v1/runs/{id}/events", handler);
//
// Route() answers 404 when no pattern matches the path and 405 (with an Allow header) when a
// pattern matches but not for this method. A handler that throws gets a 500 JSON error here, the
// HTTP boundary, so a bug in one request never takes the server down.
//
// Thread safety: Add() during setup only; Route() is safe for concurrent use afterwards.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "api/http/http_message.h"

namespace llmsync::api {

using PathParams = std::map<std::string, std::string>;
using Handler = std::function<HttpResponse(const HttpRequest&, const PathParams&)>;

class Router {
 public:
  void Add(std::string method, std::string_view pattern, Handler handler);
  HttpResponse Route(const HttpRequest& request) const;
  // The pattern that matches the request's path and method (its captures in `params`), or "".
  std::string Template(const HttpRequest& request, PathParams* params) const;

 private:
  struct Entry {
    std::string method;
    std::string pattern;
    std::vector<std::string> segments;  // "{id}" marks a capture
    Handler handler;
  };

  static bool Match(const std::vector<std::string>& pattern, const std::vector<std::string_view>& path,
                    PathParams* params);

  std::vector<Entry> routes_;
};

std::vector<std::string_view> SplitPath(std::string_view path);

}  // namespace llmsync::api
