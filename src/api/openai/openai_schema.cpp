#include "api/openai/openai_schema.h"

#include <set>

#include "base/json_depth.h"
#include "runs/json_schema/json_schema_constraint.h"

namespace llmsync::api {
namespace {

using runs::JsonSchema;

constexpr int kMaxSchemaDepth = 16;

Result<JsonSchema::Type> TypeNamed(const std::string& name) {
  if (name == "object") return JsonSchema::Type::kObject;
  if (name == "array") return JsonSchema::Type::kArray;
  if (name == "string") return JsonSchema::Type::kString;
  if (name == "number") return JsonSchema::Type::kNumber;
  if (name == "integer") return JsonSchema::Type::kInteger;
  if (name == "boolean") return JsonSchema::Type::kBoolean;
  if (name == "null") return JsonSchema::Type::kNull;
  return Status::InvalidArgument("unsupported JSON Schema type '" + name + "'");
}

// A property name as it appears between the quotes of compact JSON.
std::string EscapedName(const std::string& name) {
  std::string quoted = DumpJson(Json(name));
  return quoted.substr(1, quoted.size() - 2);
}

Result<JsonSchema> Parse(const Json& j, int depth) {
  if (depth > kMaxSchemaDepth) return Status::InvalidArgument("the schema nests deeper than 16 levels");
  if (j.is_boolean() && j.get<bool>()) return JsonSchema{};
  if (!j.is_object()) return Status::InvalidArgument("a schema must be an object");
  static const std::set<std::string> kKnown = {"type",
                                               "properties",
                                               "required",
                                               "items",
                                               "enum",
                                               "anyOf",
                                               "title",
                                               "description",
                                               "default",
                                               "examples",
                                               "$schema",
                                               "$comment",
                                               "additionalProperties",
                                               "strict"};
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (kKnown.count(it.key()) == 0) {
      return Status::InvalidArgument("unsupported JSON Schema keyword '" + it.key() + "'");
    }
  }
  JsonSchema s;
  if (j.contains("anyOf")) {
    const Json& alts = j["anyOf"];
    if (!alts.is_array() || alts.empty()) return Status::InvalidArgument("anyOf must be a non-empty array");
    for (const Json& a : alts) {
      LLMSYNC_ASSIGN_OR_RETURN(JsonSchema alt, Parse(a, depth + 1));
      s.any_of.push_back(std::move(alt));
    }
    if (s.any_of.size() > runs::kMaxSchemaAlternatives)
      return Status::InvalidArgument("anyOf has too many entries");
    return s;
  }
  if (j.contains("enum")) {
    const Json& values = j["enum"];
    if (!values.is_array() || values.empty())
      return Status::InvalidArgument("enum must be a non-empty array");
    if (values.size() > runs::kMaxSchemaAlternatives)
      return Status::InvalidArgument("enum has more than 64 values");
    for (const Json& v : values) s.enum_literals.push_back(DumpJson(v));
    return s;
  }
  if (j.contains("type")) {
    const Json& t = j["type"];
    if (t.is_array()) {  // a list of types is anyOf the same schema with each type
      if (t.empty()) return Status::InvalidArgument("type must not be an empty array");
      for (const Json& name : t) {
        Json one = j;
        one["type"] = name;
        LLMSYNC_ASSIGN_OR_RETURN(JsonSchema alt, Parse(one, depth + 1));
        s.any_of.push_back(std::move(alt));
      }
      return s;
    }
    if (!t.is_string()) return Status::InvalidArgument("type must be a string or an array of strings");
    LLMSYNC_ASSIGN_OR_RETURN(s.type, TypeNamed(t.get<std::string>()));
  }
  if (j.contains("properties")) {
    const Json& props = j["properties"];
    if (!props.is_object()) return Status::InvalidArgument("properties must be an object");
    if (props.size() > runs::kMaxSchemaAlternatives)
      return Status::InvalidArgument("more than 64 properties");
    if (s.type == JsonSchema::Type::kAny) s.type = JsonSchema::Type::kObject;
    for (auto it = props.begin(); it != props.end(); ++it) {
      LLMSYNC_ASSIGN_OR_RETURN(JsonSchema p, Parse(it.value(), depth + 1));
      s.property_names.push_back(EscapedName(it.key()));
      s.property_schemas.push_back(std::move(p));
      s.required.push_back(false);
    }
  }
  if (j.contains("required")) {
    const Json& req = j["required"];
    if (!req.is_array()) return Status::InvalidArgument("required must be an array of names");
    for (const Json& name : req) {
      if (!name.is_string()) return Status::InvalidArgument("required must be an array of names");
      bool found = false;
      for (std::size_t i = 0; i < s.property_names.size(); ++i) {
        if (s.property_names[i] == EscapedName(name.get<std::string>())) {
          s.required[i] = true;
          found = true;
        }
      }
      if (!found) {
        return Status::InvalidArgument("required names '" + name.get<std::string>() +
                                       "', which is not in properties");
      }
    }
  }
  if (j.contains("items")) {
    LLMSYNC_ASSIGN_OR_RETURN(JsonSchema item, Parse(j["items"], depth + 1));
    if (s.type == JsonSchema::Type::kAny) s.type = JsonSchema::Type::kArray;
    s.items.push_back(std::move(item));
  }
  return s;
}

bool RootIsObject(const JsonSchema& s) {
  if (!s.any_of.empty()) {
    for (const JsonSchema& a : s.any_of) {
      if (!RootIsObject(a)) return false;
    }
    return true;
  }
  return s.enum_literals.empty() && s.type == JsonSchema::Type::kObject;
}

}  // namespace

Result<runs::JsonSchema> ParseJsonSchema(const Json& schema) {
  LLMSYNC_ASSIGN_OR_RETURN(JsonSchema s, Parse(schema, 0));
  if (!RootIsObject(s)) return Status::InvalidArgument("the schema's root must be an object (type: object)");
  return s;
}

Result<std::string> ConstraintSpecFor(const Json& format, bool responses_shape) {
  if (format.is_null()) return std::string();
  if (!format.is_object() || !format.contains("type") || !format["type"].is_string()) {
    return Status::InvalidArgument("response_format must be an object with a type");
  }
  std::string type = format["type"].get<std::string>();
  if (type == "text") return std::string();
  if (type == "json_object") return DumpJson({{"type", "json_object"}});
  if (type != "json_schema")
    return Status::InvalidArgument("response_format type '" + type + "' is not supported");
  const Json* holder = &format;
  if (!responses_shape) {
    if (!format.contains("json_schema") || !format["json_schema"].is_object()) {
      return Status::InvalidArgument("response_format.json_schema must be an object");
    }
    holder = &format["json_schema"];
  }
  if (!holder->contains("schema")) return Status::InvalidArgument("json_schema.schema is required");
  LLMSYNC_RETURN_IF_ERROR(ParseJsonSchema((*holder)["schema"]).GetStatus());
  return DumpJson({{"type", "json_schema"}, {"schema", (*holder)["schema"]}});
}

Status CheckConstraintFits(const std::string& spec, std::int64_t max_tokens) {
  if (spec.empty()) return Status::Ok();
  LLMSYNC_RETURN_IF_ERROR(CheckJsonDepth(spec, "constraint spec"));
  Json j = Json::parse(spec, nullptr, false);
  std::int64_t needed = 2;  // json_object: {}
  if (!j.is_discarded() && j.value("type", std::string()) == "json_schema") {
    LLMSYNC_ASSIGN_OR_RETURN(JsonSchema s, ParseJsonSchema(j["schema"]));
    needed = runs::JsonAutomaton::MinLength(s);
  }
  if (needed > max_tokens) {
    return Status::InvalidArgument("max_tokens " + std::to_string(max_tokens) +
                                   " cannot fit the schema: its smallest " + "document takes " +
                                   std::to_string(needed) + " tokens");
  }
  return Status::Ok();
}

runs::ConstraintFactory MakeConstraintFactory(const text::Tokenizer& tokenizer) {
  const text::Tokenizer* tok = &tokenizer;
  auto table = std::make_shared<std::shared_ptr<const runs::TokenBytes>>();
  auto mu = std::make_shared<std::mutex>();
  return [tok, table, mu](std::string_view spec) -> Result<std::unique_ptr<runs::TokenConstraint>> {
    LLMSYNC_RETURN_IF_ERROR(CheckJsonDepth(spec, "constraint spec"));
    Json j = Json::parse(spec, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return Status::InvalidArgument("malformed constraint spec");
    auto schema = std::make_shared<JsonSchema>();
    if (j.value("type", std::string()) == "json_schema") {
      LLMSYNC_ASSIGN_OR_RETURN(*schema, ParseJsonSchema(j["schema"]));
    } else {
      schema->type = JsonSchema::Type::kObject;  // json_object: any object
    }
    std::shared_ptr<const runs::TokenBytes> bytes;
    {
      std::lock_guard<std::mutex> lock(*mu);
      if (!*table) *table = runs::TokenBytesTable(*tok);
      bytes = *table;
    }
    return std::unique_ptr<runs::TokenConstraint>(
        std::make_unique<runs::JsonSchemaConstraint>(std::move(schema), std::move(bytes)));
  };
}

}  // namespace llmsync::api
