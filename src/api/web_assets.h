// The web chat page (web/), compiled into the binary by cmake/embed_files.cmake and served by
// `llmsync serve`: `/` and `/c/<session id>` answer the page, `/assets/<file>` its script and
// style sheet. Every answer carries a strict Content-Security-Policy (same-origin scripts, styles
// and fetches only; no inline code, no frames) and the right Content-Type. With LLMSYNC_WEB_DIR set,
// a file of that directory is served instead of its embedded copy (for working on the page).
//
// Thread safety: the embedded table is immutable; the handlers are safe for concurrent use.
#pragma once

#include <string_view>
#include <vector>

#include "api/router.h"

namespace llmsync::api {

struct EmbeddedFile {
  std::string_view path;  // relative to web/, e.g. "app.js"
  std::string_view bytes;
};

// Defined in the generated web_files.cpp.
const std::vector<EmbeddedFile>& EmbeddedFiles();

// "text/javascript; charset=utf-8" for "x.js", and so on; "application/octet-stream" otherwise.
std::string_view ContentTypeFor(std::string_view path);

void AddWebRoutes(Router& router);

}  // namespace llmsync::api
