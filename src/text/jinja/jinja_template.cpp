#include "text/jinja/jinja_template.h"

#include <ctime>

#include "text/jinja/jinja_parser.h"

namespace llmsync::text::jinja {
namespace {

std::string FormatTime(std::int64_t unix_seconds, std::string_view format) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::string fmt(format);
  for (std::size_t size = 256; size <= 65536; size *= 4) {
    std::string buf(size, '\0');
    std::size_t n = std::strftime(buf.data(), buf.size(), fmt.c_str(), &tm);
    if (n > 0 || fmt.empty()) return buf.substr(0, n);
  }
  return "";
}

}  // namespace

StrftimeFn FixedStrftime(std::int64_t unix_seconds) {
  return [unix_seconds](std::string_view format) { return FormatTime(unix_seconds, format); };
}

StrftimeFn SystemStrftime() {
  return [](std::string_view format) {
    return FormatTime(static_cast<std::int64_t>(std::time(nullptr)), format);
  };
}

Result<Template> Template::Parse(std::string_view source) {
  LLMSYNC_ASSIGN_OR_RETURN(NodeList nodes, ParseTemplate(source));
  return Template(std::make_unique<NodeList>(std::move(nodes)));
}

Result<std::string> Template::Render(const ValueDict& variables, const RenderOptions& options) const {
  Interpreter interpreter(options.limits, options.strftime_now ? options.strftime_now : SystemStrftime());
  return interpreter.Render(*nodes_, variables);
}

}  // namespace llmsync::text::jinja
