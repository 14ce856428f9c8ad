// Methods of str, dict and list values (as the sandbox exposes them) and the global functions:
// range, namespace, dict, raise_exception, strftime_now, and loop.cycle.
#include <algorithm>
#include <set>

#include "text/jinja/jinja_args.h"
#include "text/jinja/jinja_interpreter.h"
#include "text/jinja/jinja_unicode.h"

namespace llmsync::text::jinja {
namespace {

using BuiltinFn = Result<Value> (*)(Interpreter&, CallArgs);

class BuiltinFunction : public Callable {
 public:
  BuiltinFunction(std::string name, BuiltinFn fn) : name_(std::move(name)), fn_(fn) {}
  std::string Name() const override { return name_; }
  Result<Value> Call(Interpreter& interp, CallArgs args) const override {
    return fn_(interp, std::move(args));
  }

 private:
  std::string name_;
  BuiltinFn fn_;
};

Result<Value> CallMethod(Interpreter& interp, const Value& receiver, const std::string& name, CallArgs args);

class BoundMethod : public Callable {
 public:
  BoundMethod(Value receiver, std::string name) : receiver_(std::move(receiver)), name_(std::move(name)) {}
  std::string Name() const override { return PyTypeName(receiver_) + "." + name_; }
  Result<Value> Call(Interpreter& interp, CallArgs args) const override {
    return CallMethod(interp, receiver_, name_, std::move(args));
  }

 private:
  Value receiver_;
  std::string name_;
};

class LoopCycle : public Callable {
 public:
  explicit LoopCycle(std::int64_t index0) : index0_(index0) {}
  std::string Name() const override { return "loop.cycle"; }
  Result<Value> Call(Interpreter&, CallArgs args) const override {
    if (args.positional.empty()) return Status::InvalidArgument("no items for cycling given");
    return args.positional[static_cast<std::size_t>(index0_) % args.positional.size()];
  }

 private:
  std::int64_t index0_;
};

const std::set<std::string>& StrMethods() {
  static const std::set<std::string> kNames = {
      "capitalize", "casefold",     "center",       "count",   "encode",     "endswith",    "expandtabs",
      "find",       "format",       "format_map",   "index",   "isalnum",    "isalpha",     "isascii",
      "isdecimal",  "isdigit",      "isidentifier", "islower", "isnumeric",  "isprintable", "isspace",
      "istitle",    "isupper",      "join",         "ljust",   "lower",      "lstrip",      "maketrans",
      "partition",  "removeprefix", "removesuffix", "replace", "rfind",      "rindex",      "rjust",
      "rpartition", "rsplit",       "rstrip",       "split",   "splitlines", "startswith",  "strip",
      "swapcase",   "title",        "translate",    "upper",   "zfill"};
  return kNames;
}

Value Str(std::string s, bool safe = false) { return Value::String(std::move(s), safe); }

// The code point index of byte offset `at` in s.
std::int64_t CodePointIndex(const std::string& s, std::size_t at) {
  return static_cast<std::int64_t>(CodePointCount(std::string_view(s).substr(0, at)));
}

Result<Value> AffixTest(const std::string& fn, const std::string& s, CallArgs& args, bool prefix) {
  LLMSYNC_ASSIGN_OR_RETURN(
      auto a,
      BindArgs(fn, args, {{"prefix", std::nullopt}, {"start", Value::None()}, {"end", Value::None()}}));
  if (!a[1].IsNone() || !a[2].IsNone()) return Status::Unimplemented("str." + fn + "() with start/end");
  ValueList candidates = a[0].IsTuple() ? a[0].AsList() : ValueList{a[0]};
  for (const Value& c : candidates) {
    if (!c.IsString()) {
      return Status::InvalidArgument(fn + " first arg must be str or a tuple of str, not " + PyTypeName(c));
    }
    if (prefix ? s.starts_with(c.AsString()) : s.ends_with(c.AsString())) return Value::Bool(true);
  }
  return Value::Bool(false);
}

Result<Value> StrFormat(Interpreter& interp, const std::string& fmt, const CallArgs& args, bool safe) {
  std::string out;
  std::size_t auto_index = 0;
  for (std::size_t i = 0; i < fmt.size(); ++i) {
    char c = fmt[i];
    if (c == '}') {
      if (i + 1 < fmt.size() && fmt[i + 1] == '}') {
        out.push_back('}');
        ++i;
        continue;
      }
      return Status::InvalidArgument("Single '}' encountered in format string");
    }
    if (c != '{') {
      out.push_back(c);
      continue;
    }
    if (i + 1 < fmt.size() && fmt[i + 1] == '{') {
      out.push_back('{');
      ++i;
      continue;
    }
    std::size_t close = fmt.find('}', i);
    if (close == std::string::npos) return Status::InvalidArgument("Single '{' encountered in format string");
    std::string field = fmt.substr(i + 1, close - i - 1);
    i = close;
    char conversion = 's';
    if (field.size() >= 2 && field[field.size() - 2] == '!') {
      conversion = field.back();
      field.resize(field.size() - 2);
    }
    if (field.find_first_of(":.[") != std::string::npos) {
      return Status::Unimplemented("str.format() with format specs, attributes or indexes");
    }
    const Value* v = nullptr;
    if (field.empty() ||
        std::all_of(field.begin(), field.end(), [](char d) { return d >= '0' && d <= '9'; })) {
      std::size_t index =
          field.empty() ? auto_index++ : static_cast<std::size_t>(std::stoul(field.substr(0, 9)));
      if (index >= args.positional.size()) {
        return Status::InvalidArgument("Replacement index " + std::to_string(index) + " out of range");
      }
      v = &args.positional[index];
    } else {
      for (const auto& kw : args.keywords) {
        if (kw.first == field) v = &kw.second;
      }
      if (v == nullptr) return Status::InvalidArgument("KeyError: '" + field + "'");
    }
    std::string text = conversion == 'r' ? PyRepr(*v) : PyStr(*v);
    out += safe && !(v->IsString() && v->IsSafe()) ? HtmlEscape(text) : text;
  }
  return interp.MakeString(std::move(out), safe);
}

Result<Value> CallStrMethod(Interpreter& interp, const Value& receiver, const std::string& name,
                            CallArgs args) {
  const std::string& s = receiver.AsString();
  bool safe = receiver.IsSafe();
  if (name == "startswith" || name == "endswith") return AffixTest(name, s, args, name == "startswith");
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    LLMSYNC_ASSIGN_OR_RETURN(auto a, BindArgs(name, args, {{"chars", Value::None()}}));
    LLMSYNC_ASSIGN_OR_RETURN(auto chars, OptionalStringArg(name, "chars", a[0]));
    StripSide side =
        name == "strip" ? StripSide::kBoth : (name == "lstrip" ? StripSide::kLeft : StripSide::kRight);
    return Str(StrStrip(s, chars ? &*chars : nullptr, side), safe);
  }
  if (name == "split" || name == "rsplit") {
    LLMSYNC_ASSIGN_OR_RETURN(auto a,
                             BindArgs(name, args, {{"sep", Value::None()}, {"maxsplit", Value::Int(-1)}}));
    LLMSYNC_ASSIGN_OR_RETURN(auto sep, OptionalStringArg(name, "sep", a[0]));
    LLMSYNC_ASSIGN_OR_RETURN(std::int64_t maxsplit, IntArg(name, "maxsplit", a[1]));
    if (sep && sep->empty()) return Status::InvalidArgument("empty separator");
    std::vector<std::string> parts = name == "split" ? StrSplit(s, sep ? &*sep : nullptr, maxsplit)
                                                     : StrRSplit(s, sep ? &*sep : nullptr, maxsplit);
    LLMSYNC_RETURN_IF_ERROR(interp.CheckItems(parts.size()));
    ValueList out;
    for (std::string& p : parts) out.push_back(Str(std::move(p), safe));
    return Value::List(std::move(out));
  }
  if (name == "splitlines") {
    LLMSYNC_ASSIGN_OR_RETURN(auto a, BindArgs(name, args, {{"keepends", Value::Bool(false)}}));
    if (Truthy(a[0])) return Status::Unimplemented("str.splitlines(keepends=True)");
    ValueList out;
    for (std::string& line : StrSplitLines(s)) out.push_back(Str(std::move(line), safe));
    return Value::List(std::move(out));
  }
  if (name == "upper" || name == "lower" || name == "title" || name == "capitalize" || name == "casefold" ||
      name == "swapcase") {
    LLMSYNC_RETURN_IF_ERROR(BindArgs(name, args, {}).GetStatus());
    if (name == "upper") return Str(StrUpper(s), safe);
    if (name == "lower" || name == "casefold") return Str(StrLower(s), safe);
    if (name == "title") return Str(StrTitle(s), safe);
    if (name == "capitalize") return Str(StrCapitalize(s), safe);
    std::string out;
    for (std::size_t pos = 0; pos < s.size();) {
      char32_t cp = NextCodePoint(s, &pos);
      AppendUtf8(ToUpper(cp) != cp ? ToUpper(cp) : ToLower(cp), &out);
    }
    return Str(std::move(out), safe);
  }
  if (name == "replace") {
    LLMSYNC_ASSIGN_OR_RETURN(
        auto a,
        BindArgs(name, args, {{"old", std::nullopt}, {"new", std::nullopt}, {"count", Value::Int(-1)}}));
    LLMSYNC_ASSIGN_OR_RETURN(std::string from, StringArg(name, "old", a[0]));
    LLMSYNC_ASSIGN_OR_RETURN(std::string to, StringArg(name, "new", a[1]));
    LLMSYNC_ASSIGN_OR_RETURN(std::int64_t count, IntArg(name, "count", a[2]));
    if (safe) {
      if (!a[0].IsSafe()) from = HtmlEscape(from);
      if (!a[1].IsSafe()) to = HtmlEscape(to);
    }
    std::string out;
    if (!StrReplace(s, from, to, count, interp.Limits().max_output_bytes, &out)) {
      return Status::ResourceExhausted("str.replace() result exceeds the size limit");
    }
    return interp.MakeString(std::move(out), safe);
  }
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex" || name == "count") {
    LLMSYNC_ASSIGN_OR_RETURN(
        auto a,
        BindArgs(name, args, {{"sub", std::nullopt}, {"start", Value::None()}, {"end", Value::None()}}));
    if (!a[1].IsNone() || !a[2].IsNone()) return Status::Unimplemented("str." + name + "() with start/end");
    LLMSYNC_ASSIGN_OR_RETURN(std::string sub, StringArg(name, "sub", a[0]));
    if (name == "count") {
      if (sub.empty()) return Value::Int(static_cast<std::int64_t>(CodePointCount(s)) + 1);
      std::int64_t n = 0;
      for (std::size_t at = s.find(sub); at != std::string::npos; at = s.find(sub, at + sub.size())) ++n;
      return Value::Int(n);
    }
    std::size_t at = (name == "find" || name == "index") ? s.find(sub) : s.rfind(sub);
    if (at == std::string::npos) {
      if (name == "index" || name == "rindex") return Status::InvalidArgument("substring not found");
      return Value::Int(-1);
    }
    return Value::Int(CodePointIndex(s, at));
  }
  if (name == "join") {
    LLMSYNC_ASSIGN_OR_RETURN(auto a, BindArgs(name, args, {{"iterable", std::nullopt}}));
    LLMSYNC_ASSIGN_OR_RETURN(ValueList items, interp.Iterate(a[0]));
    std::string out;
    for (std::size_t i = 0; i < items.size(); ++i) {
      if (!items[i].IsString()) {
        return Status::InvalidArgument("sequence item " + std::to_string(i) + ": expected str instance, " +
                                       PyTypeName(items[i]) + " found");
      }
      if (i > 0) out += s;
      out += safe && !items[i].IsSafe() ? HtmlEscape(items[i].AsString()) : items[i].AsString();
      LLMSYNC_RETURN_IF_ERROR(interp.ChargeBytes(0));
      if (out.size() > interp.Limits().max_output_bytes)
        return Status::ResourceExhausted("str.join() too large");
    }
    return interp.MakeString(std::move(out), safe);
  }
  if (name.starts_with("is")) {
    LLMSYNC_RETURN_IF_ERROR(BindArgs(name, args, {}).GetStatus());
    if (name == "isascii") {
      return Value::Bool(
          std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; }));
    }
    if (s.empty()) return Value::Bool(false);
    bool any_cased = false;
    bool all = true;
    for (std::size_t pos = 0; pos < s.size();) {
      char32_t cp = NextCodePoint(s, &pos);
      bool digit = cp >= '0' && cp <= '9';
      bool alpha = IsCased(cp) || (cp >= 0x80 && !IsPyWhitespace(cp) && IsPyPrintable(cp) && cp > 0x2FF);
      if (name == "isdigit" || name == "isdecimal" || name == "isnumeric") {
        all = all && digit;
      } else if (name == "isalpha") {
        all = all && alpha;
      } else if (name == "isalnum") {
        all = all && (alpha || digit);
      } else if (name == "isspace") {
        all = all && IsPyWhitespace(cp);
      } else if (name == "islower" || name == "isupper") {
        if (IsCased(cp)) {
          any_cased = true;
          all = all && (name == "islower" ? ToUpper(cp) != cp : ToLower(cp) != cp);
        }
      } else {
        return Status::Unimplemented("str." + name + "()");
      }
    }
    if (name == "islower" || name == "isupper") return Value::Bool(all && any_cased);
    return Value::Bool(all);
  }
  if (name == "removeprefix" || name == "removesuffix") {
    LLMSYNC_ASSIGN_OR_RETURN(auto a, BindArgs(name, args, {{"affix", std::nullopt}}));
    LLMSYNC_ASSIGN_OR_RETURN(std::string affix, StringArg(name, "affix", a[0]));
    if (name == "removeprefix" && s.starts_with(affix)) return Str(s.substr(affix.size()), safe);
    if (name == "removesuffix" && !affix.empty() && s.ends_with(affix)) {
      return Str(s.substr(0, s.size() - affix.size()), safe);
    }
    return receiver;
  }
  if (name == "center" || name == "ljust" || name == "rjust" || name == "zfill") {
    bool zfill = name == "zfill";
    LLMSYNC_ASSIGN_OR_RETURN(auto a, BindArgs(name, args, {{"width", std::nullopt}, {"fillchar", Str(" ")}}));
    LLMSYNC_ASSIGN_OR_RETURN(std::int64_t width, IntArg(name, "width", a[0]));
    LLMSYNC_ASSIGN_OR_RETURN(std::string fill, StringArg(name, "fillchar", a[1]));
    if (CodePointCount(fill) != 1 || zfill) fill = zfill ? "0" : fill;
    std::int64_t len = static_cast<std::int64_t>(CodePointCount(s));
    if (width > static_cast<std::int64_t>(interp.Limits().max_output_bytes)) {
      return Status::ResourceExhausted("str." + name + "() width exceeds the size limit");
    }
    std::int64_t pad = std::max<std::int64_t>(0, width - len);
    std::int64_t left = name == "rjust" || zfill ? pad : (name == "ljust" ? 0 : pad / 2 + (pad & width & 1));
    std::string out;
    for (std::int64_t i = 0; i < left; ++i) out += fill;
    out += s;
    for (std::int64_t i = 0; i < pad - left; ++i) out += fill;
    if (zfill && pad > 0 && !s.empty() && (s[0] == '-' || s[0] == '+')) {
      out = s.substr(0, 1) + out.substr(0, static_cast<std::size_t>(pad)) + s.substr(1);
    }
    return interp.MakeString(std::move(out), safe);
  }
  if (name == "partition" || name == "rpartition") {
    LLMSYNC_ASSIGN_OR_RETURN(auto a, BindArgs(name, args, {{"sep", std::nullopt}}));
    LLMSYNC_ASSIGN_OR_RETURN(std::string sep, StringArg(name, "sep", a[0]));
    if (sep.empty()) return Status::InvalidArgument("empty separator");
    std::size_t at = name == "partition" ? s.find(sep) : s.rfind(sep);
    if (at == std::string::npos) {
      ValueList parts = name == "partition" ? ValueList{Str(s, safe), Str("", safe), Str("", safe)}
                                            : ValueList{Str("", safe), Str("", safe), Str(s, safe)};
      return Value::List(std::move(parts), ListFlavor::kTuple);
    }
    return Value::List({Str(s.substr(0, at), safe), Str(sep, safe), Str(s.substr(at + sep.size()), safe)},
                       ListFlavor::kTuple);
  }
  if (name == "format") return StrFormat(interp, s, args, safe);
  return Status::Unimplemented("str." + name + "()");
}

Result<Value> CallDictMethod(Interpreter&, const Value& receiver, const std::string& name, CallArgs args) {
  const ValueDict& dict = receiver.AsDict();
  if (name == "get") {
    LLMSYNC_ASSIGN_OR_RETURN(auto a,
                             BindArgs(name, args, {{"key", std::nullopt}, {"default", Value::None()}}));
    if (!IsHashable(a[0])) return Status::InvalidArgument("unhashable type: '" + PyTypeName(a[0]) + "'");
    const Value* v = dict.Find(a[0]);
    return v != nullptr ? *v : a[1];
  }
  LLMSYNC_RETURN_IF_ERROR(BindArgs(name, args, {}).GetStatus());
  if (name == "copy") return receiver;
  ValueList out;
  for (const auto& [key, value] : dict.Entries()) {
    if (name == "items") {
      out.push_back(Value::List({key, value}, ListFlavor::kTuple));
    } else {
      out.push_back(name == "keys" ? key : value);
    }
  }
  return Value::List(std::move(out));
}

Result<Value> CallListMethod(Interpreter&, const Value& receiver, const std::string& name, CallArgs args) {
  const ValueList& items = receiver.AsList();
  if (name == "copy") {
    LLMSYNC_RETURN_IF_ERROR(BindArgs(name, args, {}).GetStatus());
    return Value::List(items);
  }
  if (name == "pop" || name == "clear") {
    return Status::Unimplemented("list." + name + "() (mutating a list passed to the template)");
  }
  LLMSYNC_ASSIGN_OR_RETURN(auto a, BindArgs(name, args, {{"value", std::nullopt}}));
  std::int64_t count = 0;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (!PyEquals(items[i], a[0])) continue;
    if (name == "index") return Value::Int(static_cast<std::int64_t>(i));
    ++count;
  }
  if (name == "index") return Status::InvalidArgument(PyRepr(a[0]) + " is not in list");
  return Value::Int(count);
}

Result<Value> CallMethod(Interpreter& interp, const Value& receiver, const std::string& name, CallArgs args) {
  if (receiver.IsString()) return CallStrMethod(interp, receiver, name, std::move(args));
  if (receiver.IsDict()) return CallDictMethod(interp, receiver, name, std::move(args));
  return CallListMethod(interp, receiver, name, std::move(args));
}

Value Unsafe(const Value& receiver, const std::string& name) {
  return Value::Undefined("access to attribute '" + name + "' of '" + PyTypeName(receiver) +
                          "' object is unsafe.");
}

// Global functions.

Result<Value> Range(Interpreter& interp, CallArgs args) {
  if (!args.keywords.empty()) return Status::InvalidArgument("range() takes no keyword arguments");
  std::vector<std::int64_t> v;
  for (const Value& a : args.positional) {
    LLMSYNC_ASSIGN_OR_RETURN(std::int64_t i, IntArg("range", "argument", a));
    v.push_back(i);
  }
  if (v.empty() || v.size() > 3) return Status::InvalidArgument("range expected 1 to 3 arguments");
  std::int64_t start = v.size() == 1 ? 0 : v[0];
  std::int64_t stop = v.size() == 1 ? v[0] : v[1];
  std::int64_t step = v.size() == 3 ? v[2] : 1;
  if (step == 0) return Status::InvalidArgument("range() arg 3 must not be zero");
  bool ascending = step > 0;
  bool empty = ascending ? stop <= start : stop >= start;
  std::uint64_t span =
      empty ? 0
            : (ascending ? static_cast<std::uint64_t>(stop) - static_cast<std::uint64_t>(start)
                         : static_cast<std::uint64_t>(start) - static_cast<std::uint64_t>(stop));
  std::uint64_t abs_step =
      ascending ? static_cast<std::uint64_t>(step) : 0 - static_cast<std::uint64_t>(step);
  std::uint64_t n = span / abs_step + (span % abs_step != 0 ? 1 : 0);
  if (n > static_cast<std::uint64_t>(interp.Limits().max_range)) {
    return Status::ResourceExhausted("Range too big. The sandbox blocks ranges larger than MAX_RANGE (" +
                                     std::to_string(interp.Limits().max_range) + ").");
  }
  ValueList out;
  std::int64_t current = start;
  for (std::uint64_t i = 0; i < n; ++i) {
    out.push_back(Value::Int(current));
    if (i + 1 < n) current += step;  // stays within [start, stop)
  }
  return Value::List(std::move(out));
}

Result<ValueDict> DictFromArgs(const char* fn, CallArgs& args) {
  ValueDict dict;
  if (args.positional.size() > 1)
    return Status::InvalidArgument(std::string(fn) + " expected at most 1 argument");
  if (!args.positional.empty()) {
    const Value& src = args.positional[0];
    if (!src.IsDict())
      return Status::Unimplemented(std::string(fn) + "() from a non-mapping positional argument");
    dict = src.AsDict();
  }
  for (auto& [key, value] : args.keywords) dict.Set(Value::String(key), std::move(value));
  return dict;
}

Result<Value> Namespace(Interpreter&, CallArgs args) {
  auto ns = std::make_shared<ObjectData>();
  ns->type_name = "Namespace";
  ns->assignable = true;
  LLMSYNC_ASSIGN_OR_RETURN(ns->attrs, DictFromArgs("namespace", args));
  for (const auto& entry : ns->attrs.Entries()) {
    if (entry.second.IsObject())
      return Status::Unimplemented("storing a namespace or loop object inside a namespace");
  }
  return Value::Object(std::move(ns));
}

Result<Value> DictFn(Interpreter&, CallArgs args) {
  LLMSYNC_ASSIGN_OR_RETURN(ValueDict dict, DictFromArgs("dict", args));
  return Value::Dict(std::move(dict));
}

Result<Value> RaiseException(Interpreter&, CallArgs args) {
  LLMSYNC_ASSIGN_OR_RETURN(auto a, BindArgs("raise_exception", args, {{"message", std::nullopt}}));
  return Status::InvalidArgument("template raised an exception: " + PyStr(a[0]));
}

Result<Value> StrftimeNow(Interpreter& interp, CallArgs args) {
  LLMSYNC_ASSIGN_OR_RETURN(auto a, BindArgs("strftime_now", args, {{"format", std::nullopt}}));
  LLMSYNC_ASSIGN_OR_RETURN(std::string format, StringArg("strftime_now", "format", a[0]));
  return interp.MakeString(interp.Strftime(format));
}

Result<Value> NotSupported(Interpreter&, CallArgs) {
  return Status::Unimplemented("the global functions lipsum, cycler and joiner");
}

}  // namespace

Value GetMethod(const Value& receiver, const std::string& name) {
  auto bind = [&] { return Value::FromCallable(std::make_shared<BoundMethod>(receiver, name)); };
  if (receiver.IsString()) return StrMethods().count(name) != 0 ? bind() : Value::Undefined();
  if (receiver.IsDict()) {
    if (name == "get" || name == "items" || name == "keys" || name == "values" || name == "copy")
      return bind();
    if (name == "pop" || name == "popitem" || name == "setdefault" || name == "update" || name == "clear") {
      return Unsafe(receiver, name);
    }
    return Value::Undefined();
  }
  if (receiver.IsList() && !receiver.IsGenerator()) {
    if (name == "index" || name == "count") return bind();
    if (receiver.IsTuple()) return Value::Undefined();
    if (name == "copy" || name == "pop" || name == "clear") return bind();
    if (name == "append" || name == "extend" || name == "insert" || name == "remove" || name == "reverse" ||
        name == "sort") {
      return Unsafe(receiver, name);
    }
  }
  return Value::Undefined();
}

Value MakeLoopCycle(std::int64_t index0) { return Value::FromCallable(std::make_shared<LoopCycle>(index0)); }

void AddGlobals(ValueDict* globals) {
  auto add = [&](const char* name, BuiltinFn fn) {
    globals->Set(Value::String(name), Value::FromCallable(std::make_shared<BuiltinFunction>(name, fn)));
  };
  add("range", Range);
  add("namespace", Namespace);
  add("dict", DictFn);
  add("raise_exception", RaiseException);
  add("strftime_now", StrftimeNow);
  add("lipsum", NotSupported);
  add("cycler", NotSupported);
  add("joiner", NotSupported);
}

}  // namespace llmsync::text::jinja
