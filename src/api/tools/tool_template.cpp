#include "api/tools/tool_template.h"

#include "base/sha256.h"

namespace llmsync::api {
namespace {

using text::jinja::Value;

constexpr int kMaxDepth = 64;

Result<Value> Convert(const OrderedJson& j, int depth) {
  if (depth > kMaxDepth) return Status::InvalidArgument("tools nest deeper than 64 levels");
  switch (j.type()) {
    case OrderedJson::value_t::null: return Value::None();
    case OrderedJson::value_t::boolean: return Value::Bool(j.get<bool>());
    case OrderedJson::value_t::number_integer: return Value::Int(j.get<std::int64_t>());
    case OrderedJson::value_t::number_unsigned: {
      auto u = j.get<std::uint64_t>();
      if (u > static_cast<std::uint64_t>(INT64_MAX)) return Value::Float(static_cast<double>(u));
      return Value::Int(static_cast<std::int64_t>(u));
    }
    case OrderedJson::value_t::number_float: return Value::Float(j.get<double>());
    case OrderedJson::value_t::string: return Value::String(j.get<std::string>());
    case OrderedJson::value_t::array: {
      text::jinja::ValueList items;
      for (const OrderedJson& item : j) {
        LLMSYNC_ASSIGN_OR_RETURN(Value v, Convert(item, depth + 1));
        items.push_back(std::move(v));
      }
      return Value::List(std::move(items));
    }
    case OrderedJson::value_t::object: {
      text::jinja::ValueDict dict;
      for (auto it = j.begin(); it != j.end(); ++it) {
        LLMSYNC_ASSIGN_OR_RETURN(Value v, Convert(it.value(), depth + 1));
        dict.Set(Value::String(it.key()), std::move(v));
      }
      return Value::Dict(std::move(dict));
    }
    default: return Status::InvalidArgument("tools hold a value JSON cannot express");
  }
}

}  // namespace

Result<Value> JsonToTemplateValue(const OrderedJson& j) { return Convert(j, 0); }

Result<Value> TemplateToolsValue(const ToolRequest& request) {
  if (!request.Active()) return Value::None();
  return Convert(request.TemplateTools(), 0);
}

Id ToolListDigest(const ToolRequest& request) {
  if (!request.Active()) return Id();
  Sha256 h;
  h.Update(std::string_view("llmsync/openai-tools/v1"));
  h.Update(request.TemplateTools().dump(-1, ' ', false, OrderedJson::error_handler_t::replace));
  return Id(h.Finish());
}

std::vector<ToolDigest> ToolDigests(const ToolRequest& request) {
  std::vector<ToolDigest> out;
  OrderedJson tools = request.TemplateTools();
  for (std::size_t i = 0; i < request.tools.size() && i < tools.size(); ++i) {
    Sha256 h;
    h.Update(std::string_view("llmsync/openai-tool/v1"));
    h.Update(tools[i].dump(-1, ' ', false, OrderedJson::error_handler_t::replace));
    out.push_back({request.tools[i].name, Id(h.Finish())});
  }
  return out;
}

}  // namespace llmsync::api
