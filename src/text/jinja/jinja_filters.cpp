// String and number filters, tojson, and the filter dispatch table.
#include "text/jinja/jinja_filters.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <unordered_map>

#include "text/jinja/jinja_args.h"
#include "text/jinja/jinja_json.h"
#include "text/jinja/jinja_unicode.h"

namespace llmsync::text::jinja {
namespace {

// jinja2's soft_str: strings (Markup included) pass through, anything else becomes str(x).
Value SoftStr(const Value& v) { return v.IsString() ? v : Value::String(PyStr(v)); }

Result<Value> StringFilter(Interpreter& interp, const char* name, const Value& input, CallArgs& args,
                           std::string (*fn)(std::string_view)) {
  LLMSYNC_RETURN_IF_ERROR(BindArgs(name, args, {}).GetStatus());
  Value s = SoftStr(input);
  return interp.MakeString(fn(s.AsString()), s.IsSafe());
}

Result<Value> FilterUpper(Interpreter& interp, const Value& input, CallArgs& args) {
  return StringFilter(interp, "upper", input, args, StrUpper);
}
Result<Value> FilterLower(Interpreter& interp, const Value& input, CallArgs& args) {
  return StringFilter(interp, "lower", input, args, StrLower);
}
Result<Value> FilterCapitalize(Interpreter& interp, const Value& input, CallArgs& args) {
  return StringFilter(interp, "capitalize", input, args, StrCapitalize);
}

// jinja2's title filter: each run split off by [-\s({\[<]+ gets an upper first character.
std::string JinjaTitle(std::string_view s) {
  std::string out;
  bool at_word_start = true;
  for (std::size_t pos = 0; pos < s.size();) {
    char32_t cp = NextCodePoint(s, &pos);
    bool separator = IsPyWhitespace(cp) || cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<';
    if (separator) {
      AppendUtf8(cp, &out);
      at_word_start = true;
    } else {
      AppendUtf8(at_word_start ? ToUpper(cp) : ToLower(cp), &out);
      at_word_start = false;
    }
  }
  return out;
}

Result<Value> FilterTitle(Interpreter& interp, const Value& input, CallArgs& args) {
  LLMSYNC_RETURN_IF_ERROR(BindArgs("title", args, {}).GetStatus());
  return interp.MakeString(JinjaTitle(SoftStr(input).AsString()));
}

Result<Value> FilterTrim(Interpreter& interp, const Value& input, CallArgs& args) {
  LLMSYNC_ASSIGN_OR_RETURN(auto a, BindArgs("trim", args, {{"chars", Value::None()}}));
  LLMSYNC_ASSIGN_OR_RETURN(auto chars, OptionalStringArg("trim", "chars", a[0]));
  Value s = SoftStr(input);
  return interp.MakeString(StrStrip(s.AsString(), chars ? &*chars : nullptr, StripSide::kBoth), s.IsSafe());
}

Result<Value> FilterReplace(Interpreter& interp, const Value& input, CallArgs& args) {
  LLMSYNC_ASSIGN_OR_RETURN(
      auto a,
      BindArgs("replace", args, {{"old", std::nullopt}, {"new", std::nullopt}, {"count", Value::None()}}));
  std::int64_t count = -1;
  if (!a[2].IsNone()) {
    LLMSYNC_ASSIGN_OR_RETURN(count, IntArg("replace", "count", a[2]));
  }
  std::string out;
  if (!StrReplace(PyStr(input), PyStr(a[0]), PyStr(a[1]), count, interp.Limits().max_output_bytes, &out)) {
    return Status::ResourceExhausted("replace result exceeds the size limit");
  }
  return interp.MakeString(std::move(out));
}

Result<Value> FilterIndent(Interpreter& interp, const Value& input, CallArgs& args) {
  LLMSYNC_ASSIGN_OR_RETURN(
      auto a,
      BindArgs("indent", args,
               {{"width", Value::Int(4)}, {"first", Value::Bool(false)}, {"blank", Value::Bool(false)}}));
  Value s = SoftStr(input);
  std::string indention;
  if (a[0].IsString()) {
    indention = a[0].AsString();
  } else {
    LLMSYNC_ASSIGN_OR_RETURN(std::int64_t width, IntArg("indent", "width", a[0]));
    if (width > 1024) return Status::Unimplemented("indent widths beyond 1024");
    indention.assign(static_cast<std::size_t>(std::max<std::int64_t>(0, width)), ' ');
  }
  std::vector<std::string> lines = StrSplitLines(s.AsString() + "\n");
  std::string out;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (i > 0) {
      out += "\n";
      if (Truthy(a[2]) || !lines[i].empty()) out += indention;
    }
    out += lines[i];
    if (out.size() > interp.Limits().max_output_bytes)
      return Status::ResourceExhausted("indent result too large");
  }
  if (Truthy(a[1])) out = indention + out;
  return interp.MakeString(std::move(out), s.IsSafe());
}

Result<Value> FilterCenter(Interpreter& interp, const Value& input, CallArgs& args) {
  LLMSYNC_ASSIGN_OR_RETURN(auto a, BindArgs("center", args, {{"width", Value::Int(80)}}));
  Value s = SoftStr(input);
  CallArgs method_args;
  method_args.positional.push_back(a[0]);
  LLMSYNC_ASSIGN_OR_RETURN(Value method, interp.GetAttr(s, "center"));
  return interp.CallValue(method, std::move(method_args));
}

Result<Value> FilterWordcount(Interpreter&, const Value& input, CallArgs& args) {
  LLMSYNC_RETURN_IF_ERROR(BindArgs("wordcount", args, {}).GetStatus());
  std::string s = PyStr(input);
  std::int64_t words = 0;
  bool in_word = false;
  for (std::size_t pos = 0; pos < s.size();) {
    char32_t cp = NextCodePoint(s, &pos);
    bool word_char = cp == '_' || (cp >= '0' && cp <= '9') || IsCased(cp) ||
                     (cp >= 0x80 && !IsPyWhitespace(cp) && IsPyPrintable(cp) && cp > 0x2FF);
    if (word_char && !in_word) ++words;
    in_word = word_char;
  }
  return Value::Int(words);
}

Result<Value> FilterDefault(Interpreter&, const Value& input, CallArgs& args) {
  LLMSYNC_ASSIGN_OR_RETURN(
      auto a,
      BindArgs("default", args, {{"default_value", Value::String("")}, {"boolean", Value::Bool(false)}}));
  if (input.IsUndefined() || (Truthy(a[1]) && !Truthy(input))) return a[0];
  return input;
}

Result<Value> FilterString(Interpreter&, const Value& input, CallArgs& args) {
  LLMSYNC_RETURN_IF_ERROR(BindArgs("string", args, {}).GetStatus());
  return SoftStr(input);
}

Result<Value> FilterSafe(Interpreter&, const Value& input, CallArgs& args) {
  LLMSYNC_RETURN_IF_ERROR(BindArgs("safe", args, {}).GetStatus());
  return Value::String(PyStr(input), true);
}

Result<Value> FilterEscape(Interpreter& interp, const Value& input, CallArgs& args) {
  LLMSYNC_RETURN_IF_ERROR(BindArgs("escape", args, {}).GetStatus());
  if (input.IsString() && input.IsSafe()) return input;
  return interp.MakeString(HtmlEscape(PyStr(input)), true);
}

Result<Value> FilterTojson(Interpreter& interp, const Value& input, CallArgs& args) {
  LLMSYNC_ASSIGN_OR_RETURN(auto a, BindArgs("tojson", args,
                                            {{"ensure_ascii", Value::Bool(false)},
                                             {"indent", Value::None()},
                                             {"separators", Value::None()},
                                             {"sort_keys", Value::Bool(false)}}));
  JsonDumpOptions options;
  options.ensure_ascii = Truthy(a[0]);
  options.sort_keys = Truthy(a[3]);
  if (a[1].IsString()) {
    options.indent = a[1].AsString();
  } else if (a[1].IsIntegral()) {
    options.indent =
        std::string(static_cast<std::size_t>(std::clamp<std::int64_t>(a[1].AsInt(), 0, 1024)), ' ');
  } else if (!a[1].IsNone()) {
    return Status::InvalidArgument("tojson indent must be an int, a str or None");
  }
  if (!a[2].IsNone()) {
    if (!a[2].IsList() || a[2].AsList().size() != 2 || !a[2].AsList()[0].IsString() ||
        !a[2].AsList()[1].IsString()) {
      return Status::InvalidArgument("tojson separators must be a pair of strings");
    }
    options.item_separator = a[2].AsList()[0].AsString();
    options.key_separator = a[2].AsList()[1].AsString();
  }
  LLMSYNC_ASSIGN_OR_RETURN(std::string json, DumpJson(input, options, interp.Limits().max_output_bytes));
  return interp.MakeString(std::move(json));
}

// Python's int(str, base) and float(str) literal rules, minus exotic Unicode digits.
bool ParseIntText(std::string text, int base, std::int64_t* out) {
  text = StrStrip(text, nullptr, StripSide::kBoth);
  std::string digits;
  std::size_t i = 0;
  bool negative = false;
  if (i < text.size() && (text[i] == '+' || text[i] == '-')) negative = text[i++] == '-';
  for (; i < text.size(); ++i) {
    if (text[i] == '_' && !digits.empty() && i + 1 < text.size() && text[i + 1] != '_') continue;
    digits.push_back(text[i]);
  }
  if (digits.empty()) return false;
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(digits.c_str(), &end, base);
  if (errno != 0 || *end != '\0' || digits[0] == '+' || digits[0] == '-' || digits[0] == ' ') return false;
  *out = negative ? -v : v;
  return true;
}

bool ParseFloatText(std::string text, double* out) {
  text = StrLower(StrStrip(text, nullptr, StripSide::kBoth));
  std::string body = text;
  if (!body.empty() && (body[0] == '+' || body[0] == '-')) body = body.substr(1);
  if (body == "inf" || body == "infinity" || body == "nan") {
    *out = std::strtod(text.c_str(), nullptr);
    return true;
  }
  std::string clean;
  bool seen_digit = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '_') {
      bool between = i > 0 && i + 1 < text.size() && std::isdigit(static_cast<unsigned char>(text[i - 1])) &&
                     std::isdigit(static_cast<unsigned char>(text[i + 1]));
      if (!between) return false;
      continue;
    }
    if (!(std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == 'e' || c == '+' || c == '-'))
      return false;
    seen_digit = seen_digit || std::isdigit(static_cast<unsigned char>(c));
    clean.push_back(c);
  }
  if (!seen_digit) return false;
  char* end = nullptr;
  *out = std::strtod(clean.c_str(), &end);
  return *end == '\0';
}

Result<Value> FilterInt(Interpreter&, const Value& input, CallArgs& args) {
  LLMSYNC_ASSIGN_OR_RETURN(auto a,
                           BindArgs("int", args, {{"default", Value::Int(0)}, {"base", Value::Int(10)}}));
  if (input.IsIntegral()) return Value::Int(input.AsInt());
  if (input.IsFloat()) {
    double d = std::trunc(input.AsDouble());
    if (!std::isfinite(d) || std::fabs(d) > 9.2e18)
      return Status::InvalidArgument("cannot convert float to integer");
    return Value::Int(static_cast<std::int64_t>(d));
  }
  if (input.IsString()) {
    std::int64_t v = 0;
    LLMSYNC_ASSIGN_OR_RETURN(std::int64_t base, IntArg("int", "base", a[1]));
    if (base >= 2 && base <= 36 && ParseIntText(input.AsString(), static_cast<int>(base), &v))
      return Value::Int(v);
    double d = 0;
    if (ParseFloatText(input.AsString(), &d) && std::isfinite(d) && std::fabs(d) < 9.2e18) {
      return Value::Int(static_cast<std::int64_t>(std::trunc(d)));
    }
  }
  return a[0];
}

Result<Value> FilterFloat(Interpreter&, const Value& input, CallArgs& args) {
  LLMSYNC_ASSIGN_OR_RETURN(auto a, BindArgs("float", args, {{"default", Value::Float(0.0)}}));
  if (input.IsNumber()) return Value::Float(input.AsDouble());
  double d = 0;
  if (input.IsString() && ParseFloatText(input.AsString(), &d)) return Value::Float(d);
  return a[0];
}

Result<Value> FilterAbs(Interpreter&, const Value& input, CallArgs& args) {
  LLMSYNC_RETURN_IF_ERROR(BindArgs("abs", args, {}).GetStatus());
  if (input.IsFloat()) return Value::Float(std::fabs(input.AsDouble()));
  if (input.IsIntegral()) {
    if (input.AsInt() == std::numeric_limits<std::int64_t>::min())
      return Status::Unimplemented("integer overflow");
    return Value::Int(std::llabs(input.AsInt()));
  }
  return Status::InvalidArgument("bad operand type for abs(): '" + PyTypeName(input) + "'");
}

Result<Value> FilterRound(Interpreter&, const Value& input, CallArgs& args) {
  LLMSYNC_ASSIGN_OR_RETURN(
      auto a, BindArgs("round", args, {{"precision", Value::Int(0)}, {"method", Value::String("common")}}));
  LLMSYNC_ASSIGN_OR_RETURN(std::int64_t precision, IntArg("round", "precision", a[0]));
  std::string method = a[1].IsString() ? a[1].AsString() : "";
  if (method != "common" && method != "ceil" && method != "floor") {
    return Status::InvalidArgument("method must be common, ceil or floor");
  }
  if (!input.IsNumber())
    return Status::InvalidArgument("type " + PyTypeName(input) + " doesn't define __round__");
  if (precision < -300 || precision > 300)
    return Status::Unimplemented("round() precision beyond 300 digits");
  double x = input.AsDouble();
  double scale = std::pow(10.0, static_cast<double>(precision));
  if (method != "common")
    return Value::Float((method == "ceil" ? std::ceil(x * scale) : std::floor(x * scale)) / scale);
  if (input.IsIntegral() && precision >= 0) return Value::Int(input.AsInt());
  if (precision >= 0 && std::isfinite(x)) {
    char buf[512];
    std::snprintf(buf, sizeof(buf), "%.*f", static_cast<int>(precision), x);  // correctly rounded, half-even
    return Value::Float(std::strtod(buf, nullptr));
  }
  return Value::Float(std::nearbyint(x * scale) / scale);
}

Result<Value> FilterAttr(Interpreter& interp, const Value& input, CallArgs& args) {
  LLMSYNC_ASSIGN_OR_RETURN(auto a, BindArgs("attr", args, {{"name", std::nullopt}}));
  // Python's getattr only: unlike `x.name`, `x|attr('name')` never falls back to dict keys.
  std::string name = PyStr(a[0]);
  if (input.IsUndefined()) return interp.GetAttr(input, name);  // fails like jinja2
  if (input.IsObject()) {
    if (const Value* v = input.AsObject().attrs.FindString(name)) return *v;
  }
  Value method = GetMethod(input, name);
  bool found = !method.IsUndefined() || !method.UndefinedHint().empty();  // a method, or an unsafe one
  if (found) return method;
  return Value::Undefined(Quoted(PyTypeName(input) + " object") + " has no attribute " + Quoted(name));
}

Result<Value> Unsupported(Interpreter&, const Value&, CallArgs&) {
  return Status::Unimplemented("this filter is not supported");
}

const std::unordered_map<std::string, FilterFn>& Filters() {
  static const std::unordered_map<std::string, FilterFn> kFilters = {
      {"abs", FilterAbs},
      {"attr", FilterAttr},
      {"batch", FilterBatch},
      {"capitalize", FilterCapitalize},
      {"center", FilterCenter},
      {"count", FilterLength},
      {"d", FilterDefault},
      {"default", FilterDefault},
      {"dictsort", FilterDictsort},
      {"e", FilterEscape},
      {"escape", FilterEscape},
      {"first", FilterFirst},
      {"float", FilterFloat},
      {"forceescape", FilterEscape},
      {"indent", FilterIndent},
      {"int", FilterInt},
      {"items", FilterItems},
      {"join", FilterJoin},
      {"last", FilterLast},
      {"length", FilterLength},
      {"list", FilterList},
      {"lower", FilterLower},
      {"map", FilterMap},
      {"max", FilterMax},
      {"min", FilterMin},
      {"reject", FilterReject},
      {"rejectattr", FilterRejectAttr},
      {"replace", FilterReplace},
      {"reverse", FilterReverse},
      {"round", FilterRound},
      {"safe", FilterSafe},
      {"select", FilterSelect},
      {"selectattr", FilterSelectAttr},
      {"sort", FilterSort},
      {"string", FilterString},
      {"sum", FilterSum},
      {"title", FilterTitle},
      {"tojson", FilterTojson},
      {"trim", FilterTrim},
      {"unique", FilterUnique},
      {"upper", FilterUpper},
      {"wordcount", FilterWordcount},
      // jinja2 filters outside the subset: they exist, so they fail as unsupported, not unknown.
      {"filesizeformat", Unsupported},
      {"format", Unsupported},
      {"groupby", Unsupported},
      {"pprint", Unsupported},
      {"random", Unsupported},
      {"slice", Unsupported},
      {"striptags", Unsupported},
      {"truncate", Unsupported},
      {"urlencode", Unsupported},
      {"urlize", Unsupported},
      {"wordwrap", Unsupported},
      {"xmlattr", Unsupported},
  };
  return kFilters;
}

}  // namespace

bool FilterExists(const std::string& name) { return Filters().count(name) != 0; }

Result<Value> CallFilter(Interpreter& interp, const std::string& name, const Value& input, CallArgs args) {
  auto it = Filters().find(name);
  if (it == Filters().end()) return Status::InvalidArgument("no filter named '" + name + "'");
  Result<Value> result = it->second(interp, input, args);
  if (!result.IsOk() && result.GetStatus().Code() == StatusCode::kUnimplemented &&
      result.GetStatus().Message() == "this filter is not supported") {
    return Status::Unimplemented("unsupported template feature: the '" + name + "' filter");
  }
  return result;
}

}  // namespace llmsync::text::jinja
