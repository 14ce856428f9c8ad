// A compiled Jinja template: the entry point of the template engine.
//
//   LLMSYNC_ASSIGN_OR_RETURN(auto tmpl, jinja::Template::Parse(source));
//   LLMSYNC_ASSIGN_OR_RETURN(std::string text, tmpl.Render(variables, options));
//
// The supported language is the subset of Jinja2 that model chat templates use, with the
// semantics of transformers' environment; see jinja_parser.h and jinja_interpreter.h for what is
// in and out, and docs/ARCHITECTURE.md ("Chat templates") for the whole picture.
//
// Thread safety: a Template is immutable after Parse; Render may be called from several threads
// at once (each call has its own interpreter). Variables passed to Render must not contain
// namespace objects shared with another concurrent render.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "llmsync/status.h"
#include "text/jinja/jinja_ast.h"
#include "text/jinja/jinja_interpreter.h"
#include "text/jinja/jinja_value.h"

namespace llmsync::text::jinja {

struct RenderOptions {
  RenderLimits limits;
  // strftime_now() as the template sees it; unset means the current UTC time.
  StrftimeFn strftime_now;
};

// A strftime_now that always formats the given instant (seconds since the Unix epoch, UTC).
StrftimeFn FixedStrftime(std::int64_t unix_seconds);
// strftime_now over the current UTC time.
StrftimeFn SystemStrftime();

class Template {
 public:
  // Fails with InvalidArgument for syntax errors and Unimplemented for features outside the
  // subset, naming the line.
  static Result<Template> Parse(std::string_view source);

  Result<std::string> Render(const ValueDict& variables, const RenderOptions& options) const;

 private:
  explicit Template(std::unique_ptr<NodeList> nodes) : nodes_(std::move(nodes)) {}
  std::unique_ptr<NodeList> nodes_;
};

}  // namespace llmsync::text::jinja
