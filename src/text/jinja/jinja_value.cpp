#include "text/jinja/jinja_value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "text/jinja/jinja_unicode.h"

namespace llmsync::text::jinja {
namespace {

// Python hashes 1, 1.0 and True alike; string keys go through the index.
bool KeysEqual(const Value& a, const Value& b) {
  if (a.IsString() != b.IsString()) return false;
  return PyEquals(a, b);
}

void AppendHex(std::string* out, char prefix, std::uint32_t v, int digits) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "\\%c%0*x", prefix, digits, v);
  out->append(buf);
}

std::string ReprString(const std::string& s) {
  bool has_single = s.find('\'') != std::string::npos;
  bool has_double = s.find('"') != std::string::npos;
  char quote = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, quote);
  for (std::size_t pos = 0; pos < s.size();) {
    char32_t cp = NextCodePoint(s, &pos);
    if (cp == '\\') {
      out += "\\\\";
    } else if (cp == static_cast<char32_t>(quote)) {
      out.push_back('\\');
      out.push_back(quote);
    } else if (cp == '\t') {
      out += "\\t";
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (IsPyPrintable(cp)) {
      AppendUtf8(cp, &out);
    } else if (cp < 0x100) {
      AppendHex(&out, 'x', cp, 2);
    } else if (cp < 0x10000) {
      AppendHex(&out, 'u', cp, 4);
    } else {
      AppendHex(&out, 'U', cp, 8);
    }
  }
  out.push_back(quote);
  return out;
}

int Sign(double d) { return d < 0 ? -1 : (d > 0 ? 1 : 0); }

}  // namespace

void ValueDict::Set(Value key, Value value) {
  if (key.IsString()) {
    auto it = string_index_.find(key.AsString());
    if (it != string_index_.end()) {
      entries_[it->second].second = std::move(value);
      return;
    }
    string_index_.emplace(key.AsString(), entries_.size());
    entries_.emplace_back(std::move(key), std::move(value));
    return;
  }
  for (auto& entry : entries_) {
    if (KeysEqual(entry.first, key)) {
      entry.second = std::move(value);
      return;
    }
  }
  entries_.emplace_back(std::move(key), std::move(value));
}

const Value* ValueDict::Find(const Value& key) const {
  if (key.IsString()) return FindString(key.AsString());
  for (const auto& entry : entries_) {
    if (KeysEqual(entry.first, key)) return &entry.second;
  }
  return nullptr;
}

const Value* ValueDict::FindString(std::string_view key) const {
  auto it = string_index_.find(std::string(key));
  return it == string_index_.end() ? nullptr : &entries_[it->second].second;
}

Value Value::Undefined(std::string hint) {
  Value v;
  v.data_ = std::move(hint);
  return v;
}

Value Value::None() {
  Value v;
  v.kind_ = ValueKind::kNone;
  v.data_ = std::monostate();
  return v;
}

Value Value::Bool(bool b) {
  Value v;
  v.kind_ = ValueKind::kBool;
  v.data_ = b;
  return v;
}

Value Value::Int(std::int64_t i) {
  Value v;
  v.kind_ = ValueKind::kInt;
  v.data_ = i;
  return v;
}

Value Value::Float(double f) {
  Value v;
  v.kind_ = ValueKind::kFloat;
  v.data_ = f;
  return v;
}

Value Value::String(std::string s, bool safe) {
  Value v;
  v.kind_ = ValueKind::kString;
  v.safe_ = safe;
  v.data_ = std::move(s);
  return v;
}

Value Value::List(ValueList items, ListFlavor flavor) {
  Value v;
  v.kind_ = ValueKind::kList;
  v.flavor_ = flavor;
  for (const Value& item : items) v.depth_ = std::max(v.depth_, item.depth_ + 1);
  if (items.empty()) v.depth_ = 1;
  v.data_ = std::make_shared<const ValueList>(std::move(items));
  return v;
}

Value Value::Dict(ValueDict dict) {
  Value v;
  v.kind_ = ValueKind::kDict;
  v.depth_ = 1;
  for (const auto& entry : dict.Entries()) v.depth_ = std::max(v.depth_, entry.second.depth_ + 1);
  v.data_ = std::make_shared<const ValueDict>(std::move(dict));
  return v;
}

Value Value::FromCallable(std::shared_ptr<const Callable> callable) {
  Value v;
  v.kind_ = ValueKind::kCallable;
  v.data_ = std::move(callable);
  return v;
}

Value Value::Object(std::shared_ptr<ObjectData> object) {
  Value v;
  v.kind_ = ValueKind::kObject;
  v.depth_ = 1;
  v.data_ = std::move(object);
  return v;
}

std::int64_t Value::AsInt() const {
  if (IsBool()) return AsBool() ? 1 : 0;
  return std::get<std::int64_t>(data_);
}

double Value::AsDouble() const {
  if (IsFloat()) return std::get<double>(data_);
  return static_cast<double>(AsInt());
}

bool Value::SameObject(const Value& other) const {
  if (kind_ != other.kind_) return false;
  switch (kind_) {
    case ValueKind::kList: return &AsList() == &other.AsList();
    case ValueKind::kDict: return &AsDict() == &other.AsDict();
    case ValueKind::kCallable: return &AsCallable() == &other.AsCallable();
    case ValueKind::kObject: return ObjectPtr() == other.ObjectPtr();
    default: return PyEquals(*this, other);
  }
}

bool Truthy(const Value& v) {
  switch (v.Kind()) {
    case ValueKind::kUndefined:
    case ValueKind::kNone: return false;
    case ValueKind::kBool: return v.AsBool();
    case ValueKind::kInt: return v.AsInt() != 0;
    case ValueKind::kFloat: return v.AsDouble() != 0.0;
    case ValueKind::kString: return !v.AsString().empty();
    case ValueKind::kList: return v.IsGenerator() || !v.AsList().empty();
    case ValueKind::kDict: return !v.AsDict().Empty();
    case ValueKind::kCallable:
    case ValueKind::kObject: return true;
  }
  return false;
}

bool PyEquals(const Value& a, const Value& b) {
  if (a.IsNumber() && b.IsNumber()) {
    if (a.IsIntegral() && b.IsIntegral()) return a.AsInt() == b.AsInt();
    return a.AsDouble() == b.AsDouble();
  }
  if (a.Kind() != b.Kind()) return false;
  switch (a.Kind()) {
    case ValueKind::kUndefined:
    case ValueKind::kNone: return true;
    case ValueKind::kString: return a.AsString() == b.AsString();
    case ValueKind::kList: {
      if (a.IsGenerator() || b.IsGenerator()) return a.SameObject(b);
      if (a.IsTuple() != b.IsTuple()) return false;
      const ValueList& x = a.AsList();
      const ValueList& y = b.AsList();
      if (x.size() != y.size()) return false;
      for (std::size_t i = 0; i < x.size(); ++i) {
        if (!PyEquals(x[i], y[i])) return false;
      }
      return true;
    }
    case ValueKind::kDict: {
      const ValueDict& x = a.AsDict();
      const ValueDict& y = b.AsDict();
      if (x.Size() != y.Size()) return false;
      for (const auto& [key, value] : x.Entries()) {
        const Value* other = y.Find(key);
        if (other == nullptr || !PyEquals(value, *other)) return false;
      }
      return true;
    }
    default: return a.SameObject(b);
  }
}

Result<int> PyCompare(const Value& a, const Value& b) {
  if (a.IsNumber() && b.IsNumber()) {
    if (a.IsIntegral() && b.IsIntegral()) return a.AsInt() < b.AsInt() ? -1 : (a.AsInt() > b.AsInt() ? 1 : 0);
    double x = a.AsDouble();
    double y = b.AsDouble();
    if (std::isnan(x) || std::isnan(y)) return 2;  // every comparison with NaN is false
    return Sign(x - y);
  }
  if (a.IsString() && b.IsString()) {
    int c = a.AsString().compare(b.AsString());  // UTF-8 byte order is code point order
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  if (a.IsList() && b.IsList() && a.IsTuple() == b.IsTuple() && !a.IsGenerator() && !b.IsGenerator()) {
    const ValueList& x = a.AsList();
    const ValueList& y = b.AsList();
    for (std::size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (PyEquals(x[i], y[i])) continue;
      return PyCompare(x[i], y[i]);
    }
    return x.size() < y.size() ? -1 : (x.size() > y.size() ? 1 : 0);
  }
  if (a.IsUndefined() || b.IsUndefined()) {
    return Status::InvalidArgument((a.IsUndefined() ? a.UndefinedHint() : b.UndefinedHint()).empty()
                                       ? std::string("undefined value in a comparison")
                                       : (a.IsUndefined() ? a.UndefinedHint() : b.UndefinedHint()));
  }
  return Status::InvalidArgument("'<' not supported between instances of '" + PyTypeName(a) + "' and '" +
                                 PyTypeName(b) + "'");
}

std::string PyTypeName(const Value& v) {
  switch (v.Kind()) {
    case ValueKind::kUndefined: return "Undefined";
    case ValueKind::kNone: return "NoneType";
    case ValueKind::kBool: return "bool";
    case ValueKind::kInt: return "int";
    case ValueKind::kFloat: return "float";
    case ValueKind::kString: return v.IsSafe() ? "Markup" : "str";
    case ValueKind::kList: return v.IsTuple() ? "tuple" : (v.IsGenerator() ? "generator" : "list");
    case ValueKind::kDict: return "dict";
    case ValueKind::kCallable: return "function";
    case ValueKind::kObject: return v.AsObject().type_name;
  }
  return "object";
}

std::string FormatPyFloat(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  // sci looks like "-1.2345e+17": split sign, digits and exponent.
  std::string sign;
  std::size_t i = 0;
  if (sci[0] == '-') sign = "-", i = 1;
  std::size_t e = sci.find('e');
  std::string digits;
  for (std::size_t k = i; k < e; ++k) {
    if (sci[k] != '.') digits.push_back(sci[k]);
  }
  int exponent = std::stoi(sci.substr(e + 1));
  int decpt = exponent + 1;  // position of the decimal point relative to the digits
  std::string out = sign;
  if (decpt <= -4 || decpt > 16) {
    out.push_back(digits[0]);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char ebuf[16];
    std::snprintf(ebuf, sizeof(ebuf), "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
    return out + ebuf;
  }
  if (decpt <= 0) return out + "0." + std::string(static_cast<std::size_t>(-decpt), '0') + digits;
  if (static_cast<std::size_t>(decpt) >= digits.size()) {
    return out + digits + std::string(static_cast<std::size_t>(decpt) - digits.size(), '0') + ".0";
  }
  return out + digits.substr(0, decpt) + "." + digits.substr(decpt);
}

std::string PyStr(const Value& v) {
  switch (v.Kind()) {
    case ValueKind::kUndefined: return "";
    case ValueKind::kString: return v.AsString();
    default: return PyRepr(v);
  }
}

std::string PyRepr(const Value& v) {
  switch (v.Kind()) {
    case ValueKind::kUndefined: return "Undefined";
    case ValueKind::kNone: return "None";
    case ValueKind::kBool: return v.AsBool() ? "True" : "False";
    case ValueKind::kInt: return std::to_string(v.AsInt());
    case ValueKind::kFloat: return FormatPyFloat(v.AsDouble());
    case ValueKind::kString:
      return v.IsSafe() ? "Markup(" + ReprString(v.AsString()) + ")" : ReprString(v.AsString());
    case ValueKind::kList: {
      if (v.IsGenerator()) return "<generator object>";
      const ValueList& items = v.AsList();
      std::string out = v.IsTuple() ? "(" : "[";
      for (std::size_t i = 0; i < items.size(); ++i) {
        if (i > 0) out += ", ";
        out += PyRepr(items[i]);
      }
      if (v.IsTuple() && items.size() == 1) out += ",";
      return out + (v.IsTuple() ? ")" : "]");
    }
    case ValueKind::kDict: {
      std::string out = "{";
      bool first = true;
      for (const auto& [key, value] : v.AsDict().Entries()) {
        if (!first) out += ", ";
        first = false;
        out += PyRepr(key) + ": " + PyRepr(value);
      }
      return out + "}";
    }
    case ValueKind::kCallable: return "<function " + v.AsCallable().Name() + ">";
    case ValueKind::kObject: {
      const ObjectData& obj = v.AsObject();
      if (obj.type_name == "Namespace") return "<Namespace " + PyRepr(Value::Dict(obj.attrs)) + ">";
      return "<" + obj.type_name + ">";
    }
  }
  return "";
}

std::string Quoted(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out.push_back('\'');
  out.append(s);
  out.push_back('\'');
  return out;
}

std::size_t CodePointCount(std::string_view s) {
  std::size_t n = 0;
  for (std::size_t pos = 0; pos < s.size(); ++n) NextCodePoint(s, &pos);
  return n;
}

}  // namespace llmsync::text::jinja
