// A one-call renderer for template unit tests: parses `source` and renders it with `vars` given
// as a JSON object (transformers-like options: fixed strftime_now, default limits).
//
// Thread safety: stateless.
#pragma once

#include <string>

#include "cli/template_json.h"
#include "text/jinja/jinja_template.h"

namespace llmsync::testing {

inline Result<std::string> RenderJinja(const std::string& source, const std::string& vars_json = "{}",
                                       const text::jinja::RenderLimits& limits = {}) {
  LLMSYNC_ASSIGN_OR_RETURN(auto tmpl, text::jinja::Template::Parse(source));
  LLMSYNC_ASSIGN_OR_RETURN(auto vars, cli::ParseJsonTemplateValue(vars_json));
  text::jinja::RenderOptions options;
  options.limits = limits;
  options.strftime_now = text::jinja::FixedStrftime(1739525400);  // 2025-02-14T09:30:00Z
  return tmpl.Render(vars.AsDict(), options);
}

}  // namespace llmsync::testing
