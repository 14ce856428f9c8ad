#include "text/jinja/jinja_args.h"

namespace llmsync::text::jinja {

Result<std::vector<Value>> BindArgs(std::string_view function, const CallArgs& args,
                                    std::initializer_list<ParamSpec> params) {
  std::vector<std::optional<Value>> bound(params.size());
  if (args.positional.size() > params.size()) {
    return Status::InvalidArgument(std::string(function) + "() takes at most " +
                                   std::to_string(params.size()) + " argument(s) (" +
                                   std::to_string(args.positional.size()) + " given)");
  }
  for (std::size_t i = 0; i < args.positional.size(); ++i) bound[i] = args.positional[i];
  for (const auto& [key, value] : args.keywords) {
    std::size_t index = 0;
    for (const ParamSpec& p : params) {
      if (p.name == key) break;
      ++index;
    }
    if (index == params.size()) {
      return Status::InvalidArgument(std::string(function) + "() got an unexpected keyword argument '" + key +
                                     "'");
    }
    if (bound[index]) {
      return Status::InvalidArgument(std::string(function) + "() got multiple values for argument '" + key +
                                     "'");
    }
    bound[index] = value;
  }
  std::vector<Value> out;
  out.reserve(params.size());
  std::size_t i = 0;
  for (const ParamSpec& p : params) {
    if (bound[i]) {
      out.push_back(std::move(*bound[i]));
    } else if (p.default_value) {
      out.push_back(*p.default_value);
    } else {
      return Status::InvalidArgument(std::string(function) + "() missing required argument '" +
                                     std::string(p.name) + "'");
    }
    ++i;
  }
  return out;
}

Result<std::int64_t> IntArg(std::string_view function, std::string_view param, const Value& v) {
  if (v.IsIntegral()) return v.AsInt();
  return Status::InvalidArgument(std::string(function) + "(): '" + std::string(param) +
                                 "' must be an integer, not " + PyTypeName(v));
}

Result<std::string> StringArg(std::string_view function, std::string_view param, const Value& v) {
  if (v.IsString()) return v.AsString();
  return Status::InvalidArgument(std::string(function) + "(): '" + std::string(param) +
                                 "' must be str, not " + PyTypeName(v));
}

Result<std::optional<std::string>> OptionalStringArg(std::string_view function, std::string_view param,
                                                     const Value& v) {
  if (v.IsNone()) return std::optional<std::string>();
  LLMSYNC_ASSIGN_OR_RETURN(std::string s, StringArg(function, param, v));
  return std::optional<std::string>(std::move(s));
}

}  // namespace llmsync::text::jinja
