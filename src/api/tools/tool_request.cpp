#include "api/tools/tool_request.h"

#include <set>

#include "api/api_error.h"
#include "api/openai/openai_schema.h"

namespace llmsync::api {
namespace {

constexpr std::size_t kMaxTools = 64;  // the constrained decoder tracks up to 64 forms
constexpr std::size_t kMaxNameBytes = 64;

Status Fail(ToolError* error, std::string param, std::string message) {
  std::string text = param + ": " + message;
  error->param = std::move(param);
  error->message = std::move(message);
  return Status::InvalidArgument(text);
}

// OpenAI's rule for function names: ^[a-zA-Z0-9_-]{1,64}$.
bool ValidName(const std::string& name) {
  if (name.empty() || name.size() > kMaxNameBytes) return false;
  for (char c : name) {
    bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Result<ToolDefinition> ParseTool(const Json& tool, const std::string& where, bool responses_shape,
                                 ToolError* error) {
  if (!tool.is_object()) return Fail(error, where, "each tool must be an object");
  if (!tool.contains("type") || tool["type"] != "function") {
    return Fail(error, where + ".type", "only tools of type 'function' are supported");
  }
  const Json* fn = &tool;
  std::string fn_where = where;
  if (!responses_shape) {
    if (!tool.contains("function") || !tool["function"].is_object()) {
      return Fail(error, where + ".function", "must be an object");
    }
    fn = &tool["function"];
    fn_where = where + ".function";
  }
  ToolDefinition def;
  if (!fn->contains("name") || !(*fn)["name"].is_string()) {
    return Fail(error, fn_where + ".name", "is required and must be a string");
  }
  def.name = (*fn)["name"].get<std::string>();
  if (!ValidName(def.name)) {
    return Fail(error, fn_where + ".name", "'" + def.name + "' must match ^[a-zA-Z0-9_-]{1,64}$");
  }
  if (fn->contains("description") && !(*fn)["description"].is_null()) {
    if (!(*fn)["description"].is_string()) return Fail(error, fn_where + ".description", "must be a string");
    def.description = (*fn)["description"].get<std::string>();
  }
  if (fn->contains("strict") && !(*fn)["strict"].is_null()) {
    if (!(*fn)["strict"].is_boolean()) return Fail(error, fn_where + ".strict", "must be a boolean");
    def.strict = (*fn)["strict"].get<bool>();
  }
  def.parameters = {{"type", "object"}, {"properties", Json::object()}};
  if (fn->contains("parameters") && !(*fn)["parameters"].is_null()) {
    const Json& params = (*fn)["parameters"];
    if (!params.is_object()) return Fail(error, fn_where + ".parameters", "must be a JSON Schema object");
    auto parsed = ParseJsonSchema(params);
    if (!parsed.IsOk()) return Fail(error, fn_where + ".parameters", parsed.GetStatus().Message());
    def.parameters = params;
  }
  return def;
}

Status ParseChoice(const Json& body, bool responses_shape, ToolRequest* out, ToolError* error) {
  if (!body.contains("tool_choice") || body["tool_choice"].is_null()) {
    out->choice = out->tools.empty() ? ToolChoiceMode::kNone : ToolChoiceMode::kAuto;
    return Status::Ok();
  }
  const Json& choice = body["tool_choice"];
  if (choice.is_string()) {
    std::string s = choice.get<std::string>();
    if (s == "auto") {
      out->choice = ToolChoiceMode::kAuto;
    } else if (s == "none") {
      out->choice = ToolChoiceMode::kNone;
    } else if (s == "required") {
      out->choice = ToolChoiceMode::kRequired;
    } else {
      return Fail(error, "tool_choice", "'" + s + "' is not one of auto, none, required");
    }
    if (out->choice == ToolChoiceMode::kRequired && out->tools.empty()) {
      return Fail(error, "tool_choice", "'required' needs a non-empty tools list");
    }
    return Status::Ok();
  }
  if (!choice.is_object() || !choice.contains("type") || choice["type"] != "function") {
    return Fail(error, "tool_choice", "must be auto, none, required or {\"type\": \"function\", ...}");
  }
  const Json* holder = &choice;
  std::string where = "tool_choice";
  if (!responses_shape) {
    if (!choice.contains("function") || !choice["function"].is_object()) {
      return Fail(error, "tool_choice.function", "must be an object with a name");
    }
    holder = &choice["function"];
    where = "tool_choice.function";
  }
  if (!holder->contains("name") || !(*holder)["name"].is_string()) {
    return Fail(error, where + ".name", "is required and must be a string");
  }
  out->named = (*holder)["name"].get<std::string>();
  out->choice = ToolChoiceMode::kNamed;
  for (const ToolDefinition& t : out->tools) {
    if (t.name == out->named) return Status::Ok();
  }
  return Fail(error, where + ".name", "names the function '" + out->named + "', which is not in tools");
}

}  // namespace

OrderedJson ToolRequest::TemplateTools() const {
  OrderedJson list = OrderedJson::array();
  for (const ToolDefinition& t : tools) {
    OrderedJson fn = OrderedJson::object();
    fn["name"] = t.name;
    if (!t.description.empty()) fn["description"] = t.description;
    fn["parameters"] = t.template_parameters;
    OrderedJson tool = OrderedJson::object();
    tool["type"] = "function";
    tool["function"] = std::move(fn);
    list.push_back(std::move(tool));
  }
  return list;
}

std::vector<const ToolDefinition*> ToolRequest::Allowed() const {
  std::vector<const ToolDefinition*> out;
  for (const ToolDefinition& t : tools) {
    if (choice != ToolChoiceMode::kNamed || t.name == named) out.push_back(&t);
  }
  return out;
}

Result<ToolRequest> ParseToolRequest(const Json& body, std::string_view raw_body, bool responses_shape,
                                     ToolError* error) {
  ToolRequest out;
  OrderedJson ordered = OrderedJson::parse(raw_body, nullptr, false);
  if (body.contains("tools") && !body["tools"].is_null()) {
    const Json& tools = body["tools"];
    if (!tools.is_array()) return Fail(error, "tools", "must be an array of tool objects");
    if (tools.size() > kMaxTools) return Fail(error, "tools", "has more than 64 tools");
    std::set<std::string> names;
    for (std::size_t i = 0; i < tools.size(); ++i) {
      std::string where = "tools[" + std::to_string(i) + "]";
      LLMSYNC_ASSIGN_OR_RETURN(ToolDefinition def, ParseTool(tools[i], where, responses_shape, error));
      if (!names.insert(def.name).second) {
        return Fail(error, where + (responses_shape ? ".name" : ".function.name"),
                    "duplicate function name '" + def.name + "'");
      }
      def.template_parameters = OrderedJson::parse(DumpJson(def.parameters));
      if (!ordered.is_discarded() && ordered.is_object() && ordered.contains("tools")) {
        const OrderedJson& t = ordered["tools"][i];
        const OrderedJson& fn = responses_shape ? t : t["function"];
        if (fn.contains("parameters") && fn["parameters"].is_object())
          def.template_parameters = fn["parameters"];
      }
      out.tools.push_back(std::move(def));
    }
  }
  LLMSYNC_RETURN_IF_ERROR(ParseChoice(body, responses_shape, &out, error));
  if (body.contains("parallel_tool_calls") && !body["parallel_tool_calls"].is_null()) {
    if (!body["parallel_tool_calls"].is_boolean())
      return Fail(error, "parallel_tool_calls", "must be a boolean");
    out.parallel_tool_calls = body["parallel_tool_calls"].get<bool>();
  }
  return out;
}

HttpResponse ToolErrorResponse(const ToolError& error) {
  Json body = {{"error",
                {{"message", error.param + ": " + error.message},
                 {"type", "invalid_request_error"},
                 {"param", error.param},
                 {"code", "invalid_argument"}}}};
  return JsonResponse(400, DumpJson(body));
}

}  // namespace llmsync::api
