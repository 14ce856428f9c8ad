// Fuzz target for the Jinja parser and interpreter: any bytes as a template source, rendered
// against a small fixed conversation with tight limits. Must never crash, hang or abort; errors
// are fine.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "text/jinja/jinja_template.h"

namespace {

llmsync::text::jinja::ValueDict Variables() {
  using llmsync::text::jinja::Value;
  using llmsync::text::jinja::ValueDict;
  ValueDict user;
  user.Set(Value::String("role"), Value::String("user"));
  user.Set(Value::String("content"), Value::String("Hi <b>there</b> é"));
  ValueDict vars;
  vars.Set(Value::String("messages"), Value::List({Value::Dict(user)}));
  vars.Set(Value::String("tools"), Value::None());
  vars.Set(Value::String("add_generation_prompt"), Value::Bool(true));
  vars.Set(Value::String("bos_token"), Value::String("<s>"));
  return vars;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view source(reinterpret_cast<const char*>(data), size);
  auto tmpl = llmsync::text::jinja::Template::Parse(source);
  if (!tmpl.IsOk()) return 0;
  static const llmsync::text::jinja::ValueDict kVars = Variables();
  llmsync::text::jinja::RenderOptions options;
  options.limits.max_output_bytes = 1 << 16;
  options.limits.max_total_bytes = 1 << 22;
  options.limits.max_steps = 20000;
  options.limits.max_items = 1 << 12;
  options.limits.max_range = 1000;
  options.strftime_now = llmsync::text::jinja::FixedStrftime(0);
  (void)tmpl->Render(kVars, options);
  return 0;
}
