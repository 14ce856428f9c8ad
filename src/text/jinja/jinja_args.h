// Binds call arguments (positional and keyword) to a builtin's parameter list, the way Python
// binds them, for filters, tests, methods and global functions.
//
// Thread safety: pure functions.
#pragma once

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "llmsync/status.h"
#include "text/jinja/jinja_value.h"

namespace llmsync::text::jinja {

struct ParamSpec {
  std::string_view name;
  std::optional<Value> default_value;  // unset: required
};

// Returns one value per parameter, in order. Fails on missing required arguments, unknown
// keywords, duplicates and surplus positionals, naming `function`.
Result<std::vector<Value>> BindArgs(std::string_view function, const CallArgs& args,
                                    std::initializer_list<ParamSpec> params);

// Argument conversions with Python-like type errors.
Result<std::int64_t> IntArg(std::string_view function, std::string_view param, const Value& v);
Result<std::string> StringArg(std::string_view function, std::string_view param, const Value& v);
// A string, or none when the value is None (e.g. str.strip(chars=None)).
Result<std::optional<std::string>> OptionalStringArg(std::string_view function, std::string_view param,
                                                     const Value& v);

}  // namespace llmsync::text::jinja
