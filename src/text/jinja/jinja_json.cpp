#include "text/jinja/jinja_json.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "text/jinja/jinja_unicode.h"

namespace llmsync::text::jinja {
namespace {

constexpr int kMaxJsonDepth = 1000;  // Python's recursion limit is of the same order

class JsonWriter {
 public:
  JsonWriter(const JsonDumpOptions& options, std::size_t max_bytes)
      : options_(options), max_bytes_(max_bytes) {
    bool indented = options.indent.has_value();
    item_sep_ = options.item_separator.value_or(indented ? "," : ", ");
    key_sep_ = options.key_separator.value_or(": ");
  }

  Status Write(const Value& v, int level) {
    if (level > kMaxJsonDepth) return Status::ResourceExhausted("tojson: value nested too deeply");
    if (out_.size() > max_bytes_) return Status::ResourceExhausted("tojson: output too large");
    switch (v.Kind()) {
      case ValueKind::kNone: out_ += "null"; return Status::Ok();
      case ValueKind::kBool: out_ += v.AsBool() ? "true" : "false"; return Status::Ok();
      case ValueKind::kInt: out_ += std::to_string(v.AsInt()); return Status::Ok();
      case ValueKind::kFloat: out_ += FloatText(v.AsDouble()); return Status::Ok();
      case ValueKind::kString: WriteString(v.AsString()); return Status::Ok();
      case ValueKind::kList:
        if (!v.IsGenerator()) return WriteList(v.AsList(), level);
        break;
      case ValueKind::kDict: return WriteDict(v.AsDict(), level);
      default: break;
    }
    return Status::InvalidArgument("Object of type " + PyTypeName(v) + " is not JSON serializable");
  }

  std::string Take() { return std::move(out_); }

 private:
  static std::string FloatText(double d) {
    if (std::isnan(d)) return "NaN";
    if (std::isinf(d)) return d < 0 ? "-Infinity" : "Infinity";
    return FormatPyFloat(d);
  }

  void Newline(int level) {
    if (!options_.indent) return;
    out_.push_back('\n');
    for (int i = 0; i < level; ++i) out_ += *options_.indent;
  }

  void WriteString(const std::string& s) {
    out_.push_back('"');
    for (std::size_t pos = 0; pos < s.size();) {
      char32_t cp = NextCodePoint(s, &pos);
      switch (cp) {
        case '"': out_ += "\\\""; continue;
        case '\\': out_ += "\\\\"; continue;
        case '\n': out_ += "\\n"; continue;
        case '\r': out_ += "\\r"; continue;
        case '\t': out_ += "\\t"; continue;
        case '\b': out_ += "\\b"; continue;
        case '\f': out_ += "\\f"; continue;
        default: break;
      }
      bool escape = cp < 0x20 || (options_.ensure_ascii && cp > 0x7E);
      if (!escape) {
        AppendUtf8(cp, &out_);
      } else if (cp >= 0x10000) {
        char32_t v = cp - 0x10000;
        AppendEscape(0xD800 + (v >> 10));
        AppendEscape(0xDC00 + (v & 0x3FF));
      } else {
        AppendEscape(cp);
      }
    }
    out_.push_back('"');
  }

  void AppendEscape(char32_t unit) {
    char buf[16];
    std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(unit & 0xFFFF));
    out_ += buf;
  }

  Status WriteList(const ValueList& items, int level) {
    if (items.empty()) {
      out_ += "[]";
      return Status::Ok();
    }
    out_.push_back('[');
    for (std::size_t i = 0; i < items.size(); ++i) {
      if (i > 0) out_ += item_sep_;
      Newline(level + 1);
      LLMSYNC_RETURN_IF_ERROR(Write(items[i], level + 1));
    }
    Newline(level);
    out_.push_back(']');
    return Status::Ok();
  }

  Result<std::string> KeyText(const Value& key) {
    switch (key.Kind()) {
      case ValueKind::kString: return key.AsString();
      case ValueKind::kNone: return std::string("null");
      case ValueKind::kBool: return std::string(key.AsBool() ? "true" : "false");
      case ValueKind::kInt: return std::to_string(key.AsInt());
      case ValueKind::kFloat: return FloatText(key.AsDouble());
      default:
        return Status::InvalidArgument("keys must be str, int, float, bool or None, not " + PyTypeName(key));
    }
  }

  Status WriteDict(const ValueDict& dict, int level) {
    if (dict.Empty()) {
      out_ += "{}";
      return Status::Ok();
    }
    std::vector<const std::pair<Value, Value>*> entries;
    for (const auto& entry : dict.Entries()) entries.push_back(&entry);
    if (options_.sort_keys) {
      Status failure;
      std::stable_sort(entries.begin(), entries.end(), [&](const auto* a, const auto* b) {
        Result<int> c = PyCompare(a->first, b->first);
        if (!c.IsOk()) failure = c.GetStatus();
        return c.IsOk() && *c == -1;
      });
      LLMSYNC_RETURN_IF_ERROR(failure);
    }
    out_.push_back('{');
    bool first = true;
    for (const auto* entry : entries) {
      if (!first) out_ += item_sep_;
      first = false;
      Newline(level + 1);
      LLMSYNC_ASSIGN_OR_RETURN(std::string key, KeyText(entry->first));
      WriteString(key);
      out_ += key_sep_;
      LLMSYNC_RETURN_IF_ERROR(Write(entry->second, level + 1));
    }
    Newline(level);
    out_.push_back('}');
    return Status::Ok();
  }

  const JsonDumpOptions& options_;
  std::size_t max_bytes_;
  std::string item_sep_;
  std::string key_sep_;
  std::string out_;
};

}  // namespace

Result<std::string> DumpJson(const Value& v, const JsonDumpOptions& options, std::size_t max_bytes) {
  JsonWriter writer(options, max_bytes);
  LLMSYNC_RETURN_IF_ERROR(writer.Write(v, 0));
  std::string out = writer.Take();
  if (out.size() > max_bytes) return Status::ResourceExhausted("tojson: output too large");
  return out;
}

}  // namespace llmsync::text::jinja
