// JSON to template values, at the edge: the CLI (and tests) read messages and tools as JSON and
// hand the chat-template engine its own Value type. Key order is kept, as Python's json does.
//
// Thread safety: pure functions.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "llmsync/status.h"
#include "text/jinja/jinja_value.h"

namespace llmsync::cli {

inline constexpr int kMaxJsonValueDepth = 256;

inline Result<text::jinja::Value> JsonToTemplateValue(const nlohmann::ordered_json& j, int depth = 0) {
  using text::jinja::Value;
  if (depth > kMaxJsonValueDepth)
    return Status::InvalidArgument("JSON nests too deeply for a template value");
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null: return Value::None();
    case nlohmann::ordered_json::value_t::boolean: return Value::Bool(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer: return Value::Int(j.get<std::int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      auto u = j.get<std::uint64_t>();
      if (u > static_cast<std::uint64_t>(INT64_MAX))
        return Status::Unimplemented("JSON integers beyond 64 bits");
      return Value::Int(static_cast<std::int64_t>(u));
    }
    case nlohmann::ordered_json::value_t::number_float: return Value::Float(j.get<double>());
    case nlohmann::ordered_json::value_t::string: return Value::String(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      text::jinja::ValueList items;
      for (const auto& item : j) {
        LLMSYNC_ASSIGN_OR_RETURN(Value v, JsonToTemplateValue(item, depth + 1));
        items.push_back(std::move(v));
      }
      return Value::List(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      text::jinja::ValueDict dict;
      for (const auto& [key, item] : j.items()) {
        LLMSYNC_ASSIGN_OR_RETURN(Value v, JsonToTemplateValue(item, depth + 1));
        dict.Set(Value::String(key), std::move(v));
      }
      return Value::Dict(std::move(dict));
    }
    default: return Status::InvalidArgument("unsupported JSON value");
  }
}

// Parses JSON text into a template value.
inline Result<text::jinja::Value> ParseJsonTemplateValue(const std::string& text) {
  nlohmann::ordered_json j = nlohmann::ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::InvalidArgument("invalid JSON");
  return JsonToTemplateValue(j);
}

}  // namespace llmsync::cli
