#include "api/openai/openai_schema.h"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <optional>
#include <set>

#include "base/json_depth.h"
#include "runs/json_schema/json_schema_constraint.h"

namespace llmsync::api {
namespace {

using runs::JsonSchema;

constexpr int kMaxSchemaDepth = 16;
constexpr int kMaxSchemaNodes = 4096;
constexpr std::uint64_t kMaxCount = 4096;  // minLength, maxItems, ...

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

// Parsing state: the document root ($ref targets live in its $defs / definitions) and a budget of
// schema nodes, so shared $refs cannot blow a small document up into a huge automaton.
struct ParseContext {
  const Json* root = nullptr;
  int nodes_left = kMaxSchemaNodes;
};

Result<JsonSchema> Parse(const Json& j, int depth, ParseContext& ctx);

// A non-negative integer keyword (minLength, maxItems, ...); `fallback` when absent.
Result<std::int64_t> Count(const Json& j, const char* key, std::int64_t fallback) {
  if (!j.contains(key)) return fallback;
  const Json& v = j[key];
  if (!v.is_number_integer() ||
      (v.is_number_integer() && !v.is_number_unsigned() && v.get<std::int64_t>() < 0))
    return Status::InvalidArgument(std::string(key) + " must be a non-negative integer");
  std::uint64_t n = v.get<std::uint64_t>();
  if (n > kMaxCount) return Status::InvalidArgument(std::string(key) + " is larger than 4096");
  return static_cast<std::int64_t>(n);
}

// minimum / maximum / exclusiveMinimum / exclusiveMaximum (numbers; draft 4's boolean exclusives
// too), enforced for integers. On a number they are a 400: the automaton cannot bound decimals
// exactly. Other types ignore them, as JSON Schema says.
Status ParseIntegerBounds(const Json& j, JsonSchema* s) {
  static const char* const kKeys[] = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"};
  bool any = false;
  for (const char* key : kKeys) any = any || j.contains(key);
  if (!any) return Status::Ok();
  if (s->type == JsonSchema::Type::kNumber || s->type == JsonSchema::Type::kAny) {
    return Status::InvalidArgument(
        "minimum / maximum are enforced only for type integer (a number's bounds are not supported)");
  }
  if (s->type != JsonSchema::Type::kInteger) return Status::Ok();
  constexpr double kLimit = static_cast<double>(runs::kMaxJsonInteger);
  auto bound = [&](const char* key, bool lower, bool exclusive) -> Status {
    const Json& v = j[key];
    if (!v.is_number()) return Status::InvalidArgument(std::string(key) + " must be a number");
    double d = v.get<double>();
    // The tightest integer bound: ceil for a lower bound, floor for an upper; exclusive moves one.
    double b = lower ? std::ceil(d) : std::floor(d);
    if (exclusive && b == d) b += lower ? 1 : -1;
    b = std::clamp(b, -kLimit - 1, kLimit + 1);
    auto n = static_cast<std::int64_t>(b);
    if (lower) s->minimum = std::max(s->minimum, n);
    if (!lower) s->maximum = std::min(s->maximum, n);
    return Status::Ok();
  };
  bool draft4_min = j.contains("exclusiveMinimum") && j["exclusiveMinimum"].is_boolean();
  bool draft4_max = j.contains("exclusiveMaximum") && j["exclusiveMaximum"].is_boolean();
  if (j.contains("minimum"))
    LLMSYNC_RETURN_IF_ERROR(bound("minimum", true, draft4_min && j["exclusiveMinimum"].get<bool>()));
  if (j.contains("maximum"))
    LLMSYNC_RETURN_IF_ERROR(bound("maximum", false, draft4_max && j["exclusiveMaximum"].get<bool>()));
  if (j.contains("exclusiveMinimum") && !draft4_min)
    LLMSYNC_RETURN_IF_ERROR(bound("exclusiveMinimum", true, true));
  if (j.contains("exclusiveMaximum") && !draft4_max)
    LLMSYNC_RETURN_IF_ERROR(bound("exclusiveMaximum", false, true));
  if (s->minimum > s->maximum || s->minimum > runs::kMaxJsonInteger || s->maximum < -runs::kMaxJsonInteger)
    return Status::InvalidArgument("no integer of at most 15 digits satisfies minimum / maximum");
  s->minimum = std::max(s->minimum, -runs::kMaxJsonInteger);
  s->maximum = std::min(s->maximum, runs::kMaxJsonInteger);
  return Status::Ok();
}

// "#/$defs/Name" or "#/definitions/Name" in the root document.
Result<JsonSchema> ParseRef(const Json& ref, int depth, ParseContext& ctx) {
  if (!ref.is_string()) return Status::InvalidArgument("$ref must be a string");
  std::string text = ref.get<std::string>();
  std::string holder;
  for (const char* prefix : {"#/$defs/", "#/definitions/"}) {
    if (text.rfind(prefix, 0) == 0) holder = std::string(prefix).substr(2, std::string(prefix).size() - 3);
  }
  if (holder.empty())
    return Status::InvalidArgument("$ref '" + text +
                                   "' is not supported (only #/$defs/... or #/definitions/...)");
  std::string name = text.substr(holder.size() + 3);
  if (name.find('/') != std::string::npos)
    return Status::InvalidArgument("$ref '" + text + "' is not supported (one level under " + holder + ")");
  std::string unescaped;
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (name[i] == '~' && i + 1 < name.size() && (name[i + 1] == '0' || name[i + 1] == '1')) {
      unescaped += name[i + 1] == '0' ? '~' : '/';
      ++i;
    } else {
      unescaped += name[i];
    }
  }
  const Json& root = *ctx.root;
  if (!root.contains(holder) || !root[holder].is_object() || !root[holder].contains(unescaped))
    return Status::InvalidArgument("$ref '" + text + "' names no schema");
  // A recursive $ref expands until the depth limit, then is refused (the automaton is finite).
  if (depth >= kMaxSchemaDepth)
    return Status::InvalidArgument("$ref '" + text + "' recurses deeper than 16 levels");
  return Parse(root[holder][unescaped], depth + 1, ctx);
}

Result<JsonSchema> Parse(const Json& j, int depth, ParseContext& ctx) {
  if (depth > kMaxSchemaDepth) return Status::InvalidArgument("the schema nests deeper than 16 levels");
  if (--ctx.nodes_left < 0)
    return Status::InvalidArgument(
        "the schema expands to more than 4096 nodes (shared $refs count each use)");
  if (j.is_boolean() && j.get<bool>()) return JsonSchema{};
  if (!j.is_object()) return Status::InvalidArgument("a schema must be an object");
  static const std::set<std::string> kKnown = {"type",
                                               "properties",
                                               "required",
                                               "items",
                                               "enum",
                                               "const",
                                               "anyOf",
                                               "oneOf",
                                               "$ref",
                                               "$defs",
                                               "definitions",
                                               "minLength",
                                               "maxLength",
                                               "minItems",
                                               "maxItems",
                                               "minimum",
                                               "maximum",
                                               "exclusiveMinimum",
                                               "exclusiveMaximum",
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
  if (j.contains("$ref")) return ParseRef(j["$ref"], depth, ctx);
  if (j.contains("const")) {
    s.enum_literals.push_back(DumpJson(j["const"]));
    return s;
  }
  // oneOf is taken as anyOf: the output matches at least one alternative (exclusivity between
  // overlapping alternatives is not enforced; zod and pydantic emit disjoint ones).
  const char* alternatives = j.contains("anyOf") ? "anyOf" : (j.contains("oneOf") ? "oneOf" : nullptr);
  if (alternatives != nullptr) {
    const Json& alts = j[alternatives];
    if (!alts.is_array() || alts.empty())
      return Status::InvalidArgument(std::string(alternatives) + " must be a non-empty array");
    for (const Json& a : alts) {
      LLMSYNC_ASSIGN_OR_RETURN(JsonSchema alt, Parse(a, depth + 1, ctx));
      s.any_of.push_back(std::move(alt));
    }
    if (s.any_of.size() > runs::kMaxSchemaAlternatives)
      return Status::InvalidArgument(std::string(alternatives) + " has too many entries");
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
        LLMSYNC_ASSIGN_OR_RETURN(JsonSchema alt, Parse(one, depth + 1, ctx));
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
      LLMSYNC_ASSIGN_OR_RETURN(JsonSchema p, Parse(it.value(), depth + 1, ctx));
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
    LLMSYNC_ASSIGN_OR_RETURN(JsonSchema item, Parse(j["items"], depth + 1, ctx));
    if (s.type == JsonSchema::Type::kAny) s.type = JsonSchema::Type::kArray;
    s.items.push_back(std::move(item));
  }
  LLMSYNC_ASSIGN_OR_RETURN(s.min_length, Count(j, "minLength", 0));
  LLMSYNC_ASSIGN_OR_RETURN(s.max_length, Count(j, "maxLength", -1));
  LLMSYNC_ASSIGN_OR_RETURN(s.min_items, Count(j, "minItems", 0));
  LLMSYNC_ASSIGN_OR_RETURN(s.max_items, Count(j, "maxItems", -1));
  if (s.max_length >= 0 && s.min_length > s.max_length)
    return Status::InvalidArgument("minLength is larger than maxLength");
  if (s.max_items >= 0 && s.min_items > s.max_items)
    return Status::InvalidArgument("minItems is larger than maxItems");
  // As in JSON Schema, length bounds apply to strings and item bounds to arrays only.
  LLMSYNC_RETURN_IF_ERROR(ParseIntegerBounds(j, &s));
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
  ParseContext ctx;
  ctx.root = &schema;
  LLMSYNC_ASSIGN_OR_RETURN(JsonSchema s, Parse(schema, 0, ctx));
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
  if (!j.is_discarded() && j.value("type", std::string()) == "tool_call") {
    if (j.value("auto", false)) return Status::Ok();  // text is allowed: no minimum
    needed = INT64_MAX;
    for (const Json& f : j["forms"]) {
      LLMSYNC_ASSIGN_OR_RETURN(JsonSchema s, ParseJsonSchema(f["schema"]));
      needed =
          std::min<std::int64_t>(needed, static_cast<std::int64_t>(f.value("prefix", std::string()).size()) +
                                             runs::JsonAutomaton::MinLength(s));
    }
    needed += static_cast<std::int64_t>(j.value("suffix", std::string()).size() +
                                        j.value("close", std::string()).size()) +
              1;
  }
  if (needed > max_tokens) {
    return Status::InvalidArgument("max_tokens " + std::to_string(max_tokens) +
                                   " cannot fit the schema: its smallest " + "document takes " +
                                   std::to_string(needed) + " tokens");
  }
  return Status::Ok();
}

ConstraintTables BuildConstraintTables(const text::Tokenizer& tok) {
  ConstraintTables t;
  t.bytes = runs::TokenBytesTable(tok);
  t.index = runs::MakeTokenIndex(t.bytes);
  std::vector<session::TokenId> eog;
  for (std::int32_t id = 0; id < tok.VocabSize(); ++id) {
    if (tok.IsEndOfGeneration(id)) eog.push_back(id);
    if ((*t.bytes)[static_cast<std::size_t>(id)].empty()) {
      auto text = tok.TokenText(id);
      if (text.IsOk() && !text->empty()) t.controls.emplace_back(std::string(*text), id);
    }
  }
  // The end-of-turn token the templates write after an assistant message, when the model has one.
  for (std::string_view preferred : {"<|im_end|>", "<|eot_id|>", "<|END_OF_TURN_TOKEN|>", "<end_of_turn>"}) {
    for (session::TokenId id : eog) {
      auto text = tok.TokenText(id);
      if (text.IsOk() && *text == preferred) t.end_of_turn = {id};
    }
    if (!t.end_of_turn.empty()) break;
  }
  if (t.end_of_turn.empty()) t.end_of_turn = eog;
  return t;
}

namespace {

Result<std::shared_ptr<const runs::ToolCallGrammar>> ToolGrammar(const Json& j,
                                                                 const ConstraintTables& tables) {
  auto g = std::make_shared<runs::ToolCallGrammar>();
  if (!j.contains("forms") || !j["forms"].is_array() || j["forms"].empty() || j["forms"].size() > 64) {
    return Status::InvalidArgument("malformed tool_call constraint spec");
  }
  for (const Json& f : j["forms"]) {
    runs::ToolCallForm form;
    form.prefix = f.value("prefix", std::string());
    form.next_prefix = f.value("next_prefix", std::string());
    auto schema = std::make_shared<JsonSchema>();
    LLMSYNC_ASSIGN_OR_RETURN(*schema, ParseJsonSchema(f["schema"]));
    form.schema = std::move(schema);
    g->forms.push_back(std::move(form));
  }
  g->suffix = j.value("suffix", std::string());
  g->close = j.value("close", std::string());
  if (j.contains("max_calls") && !j["max_calls"].is_number_integer())
    return Status::InvalidArgument("malformed tool_call constraint spec");
  g->max_calls = j.value("max_calls", 1);
  if (g->max_calls < 1 || g->max_calls > 64)
    return Status::InvalidArgument("malformed tool_call constraint spec");
  for (const runs::ToolCallForm& f : g->forms) {
    if (g->max_calls > 1 && f.next_prefix.empty())
      return Status::InvalidArgument("malformed tool_call constraint spec: parallel calls need next_prefix");
  }
  g->marker = j.value("marker", std::string());
  g->free_until_marker = j.value("auto", false);
  g->end_tokens = tables.end_of_turn;
  for (const auto& [text, id] : tables.controls) {
    bool used = g->suffix.find(text) != std::string::npos || g->marker.find(text) != std::string::npos ||
                g->close.find(text) != std::string::npos;
    for (const runs::ToolCallForm& f : g->forms) {
      used =
          used || f.prefix.find(text) != std::string::npos || f.next_prefix.find(text) != std::string::npos;
    }
    if (used) g->specials.emplace_back(text, id);
  }
  return std::shared_ptr<const runs::ToolCallGrammar>(std::move(g));
}

}  // namespace

Result<std::unique_ptr<runs::TokenConstraint>> MakeConstraint(std::string_view spec,
                                                              const ConstraintTables& t) {
  LLMSYNC_RETURN_IF_ERROR(CheckJsonDepth(spec, "constraint spec"));
  Json j = Json::parse(spec, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::InvalidArgument("malformed constraint spec");
  if (j.value("type", std::string()) == "tool_call") {
    LLMSYNC_ASSIGN_OR_RETURN(std::shared_ptr<const runs::ToolCallGrammar> grammar, ToolGrammar(j, t));
    return std::unique_ptr<runs::TokenConstraint>(
        std::make_unique<runs::ToolCallConstraint>(std::move(grammar), t.index));
  }
  auto schema = std::make_shared<JsonSchema>();
  if (j.value("type", std::string()) == "json_schema") {
    LLMSYNC_ASSIGN_OR_RETURN(*schema, ParseJsonSchema(j["schema"]));
  } else {
    schema->type = JsonSchema::Type::kObject;  // json_object: any object
  }
  return std::unique_ptr<runs::TokenConstraint>(
      std::make_unique<runs::JsonSchemaConstraint>(std::move(schema), t.index));
}

runs::ConstraintFactory MakeConstraintFactory(const text::Tokenizer& tokenizer) {
  const text::Tokenizer* tok = &tokenizer;
  auto tables = std::make_shared<std::optional<ConstraintTables>>();
  auto mu = std::make_shared<std::mutex>();
  return [tok, tables, mu](std::string_view spec) -> Result<std::unique_ptr<runs::TokenConstraint>> {
    ConstraintTables t;
    {
      std::lock_guard<std::mutex> lock(*mu);
      if (!*tables) *tables = BuildConstraintTables(*tok);
      t = **tables;
    }
    return MakeConstraint(spec, t);
  };
}

}  // namespace llmsync::api
