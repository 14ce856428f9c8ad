// Python's json.dumps for interpreter values: the `tojson` filter as transformers defines it
// (json.dumps(x, ensure_ascii=False, indent=..., separators=..., sort_keys=...)), byte for byte.
//
// Thread safety: pure functions.
#pragma once

#include <optional>
#include <string>

#include "llmsync/status.h"
#include "text/jinja/jinja_value.h"

namespace llmsync::text::jinja {

struct JsonDumpOptions {
  bool ensure_ascii = false;
  // json.dumps' indent: unset for single-line output; otherwise the per-level indent string
  // (an int n is n spaces).
  std::optional<std::string> indent;
  // json.dumps' separators; unset means (", ", ": ") without indent and (",", ": ") with it.
  std::optional<std::string> item_separator;
  std::optional<std::string> key_separator;
  bool sort_keys = false;
};

// Fails like Python for values JSON cannot hold ("Object of type Undefined is not JSON
// serializable"), and for output beyond max_bytes.
Result<std::string> DumpJson(const Value& v, const JsonDumpOptions& options, std::size_t max_bytes);

}  // namespace llmsync::text::jinja
