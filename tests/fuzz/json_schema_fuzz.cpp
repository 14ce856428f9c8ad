// Fuzz target: arbitrary bytes as a response_format JSON Schema. The depth check, the JSON parser,
// the schema compiler and the structured-output automaton must answer with a value or a Status,
// never crash or recurse without bound; a compiled schema must drive its automaton over the input.
#include <cstdint>
#include <string_view>

#include "api/openai/openai_schema.h"
#include "base/json_depth.h"
#include "runs/json_schema/json_schema.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (!llmsync::CheckJsonDepth(text, "schema").IsOk()) return 0;
  llmsync::api::Json j = llmsync::api::Json::parse(text, nullptr, false);
  if (j.is_discarded()) return 0;
  auto schema = llmsync::api::ParseJsonSchema(j);
  llmsync::api::Json format = {{"type", "json_schema"}, {"json_schema", {{"name", "f"}, {"schema", j}}}};
  auto spec = llmsync::api::ConstraintSpecFor(format, false);
  if (spec.IsOk()) (void)llmsync::api::CheckConstraintFits(*spec, 64);
  if (!schema.IsOk()) return 0;
  std::int64_t min = llmsync::runs::JsonAutomaton::MinLength(*schema);
  llmsync::runs::JsonAutomaton automaton(&*schema);
  automaton.Feed(text);
  return min < 0 ? 1 : 0;
}
