// Filters over sequences and mappings: first, last, length, list, join, items, dictsort, map,
// select/reject(attr), sort, unique, min/max, sum, reverse, batch.
#include <algorithm>

#include "text/jinja/jinja_args.h"
#include "text/jinja/jinja_filters.h"
#include "text/jinja/jinja_unicode.h"

namespace llmsync::text::jinja {
namespace {

Value Generator(ValueList items) { return Value::List(std::move(items), ListFlavor::kGenerator); }

// A stable sort that reports the first comparison error.
Status SortValues(std::vector<std::pair<Value, Value>>* keyed, bool reverse) {
  Status failure;
  std::stable_sort(keyed->begin(), keyed->end(), [&](const auto& x, const auto& y) {
    if (!failure.IsOk()) return false;
    Result<int> c = reverse ? PyCompare(y.first, x.first) : PyCompare(x.first, y.first);
    if (!c.IsOk()) {
      failure = c.GetStatus();
      return false;
    }
    return *c == -1;
  });
  return failure;
}

Result<Value> SelectOrReject(Interpreter& interp, const Value& input, CallArgs& args, bool select,
                             bool by_attr) {
  if (!Truthy(input)) return Generator({});
  std::size_t off = by_attr ? 1 : 0;
  if (by_attr && args.positional.empty())
    return Status::InvalidArgument("Missing parameter for attribute name");
  Value attribute = by_attr ? args.positional[0] : Value();
  bool have_test = args.positional.size() > off;
  std::string test_name;
  if (have_test) {
    if (!args.positional[off].IsString()) return Status::InvalidArgument("test name must be a string");
    test_name = args.positional[off].AsString();
  }
  CallArgs test_args;
  for (std::size_t i = off + 1; i < args.positional.size(); ++i)
    test_args.positional.push_back(args.positional[i]);
  test_args.keywords = args.keywords;
  LLMSYNC_ASSIGN_OR_RETURN(ValueList items, interp.Iterate(input));
  ValueList out;
  for (const Value& item : items) {
    Value subject = item;
    if (by_attr) {
      LLMSYNC_ASSIGN_OR_RETURN(subject, LookupAttribute(interp, item, attribute));
    }
    bool ok = Truthy(subject);
    if (have_test) {
      LLMSYNC_ASSIGN_OR_RETURN(ok, interp.ApplyTest(test_name, subject, test_args));
    }
    if (ok == select) out.push_back(item);
  }
  return Generator(std::move(out));
}

Result<Value> MinOrMax(Interpreter& interp, const Value& input, CallArgs& args, bool max) {
  const char* fn = max ? "max" : "min";
  LLMSYNC_ASSIGN_OR_RETURN(
      auto a, BindArgs(fn, args, {{"case_sensitive", Value::Bool(false)}, {"attribute", Value::None()}}));
  LLMSYNC_ASSIGN_OR_RETURN(ValueList items, interp.Iterate(input));
  if (items.empty()) return Value::Undefined("No aggregated item, sequence was empty.");
  const Value* best = nullptr;
  Value best_key;
  for (const Value& item : items) {
    Value key = item;
    if (!a[1].IsNone()) {
      LLMSYNC_ASSIGN_OR_RETURN(key, LookupAttribute(interp, item, a[1]));
    }
    if (!Truthy(a[0])) key = IgnoreCase(key);
    if (best != nullptr) {
      LLMSYNC_ASSIGN_OR_RETURN(int c, PyCompare(key, best_key));
      if (!(max ? c == 1 : c == -1)) continue;
    }
    best = &item;
    best_key = key;
  }
  return *best;
}

}  // namespace

Value IgnoreCase(const Value& v) { return v.IsString() ? Value::String(StrLower(v.AsString())) : v; }

Result<Value> LookupAttribute(Interpreter& interp, const Value& item, const Value& attribute) {
  if (attribute.IsNone()) return item;
  if (!attribute.IsString()) return interp.GetItem(item, attribute);
  Value current = item;
  std::string dot = ".";
  for (const std::string& part : StrSplit(attribute.AsString(), &dot, -1)) {
    bool digits =
        !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    Value key = digits && part.size() < 18 ? Value::Int(std::stoll(part)) : Value::String(part);
    LLMSYNC_ASSIGN_OR_RETURN(current, interp.GetItem(current, key));
  }
  return current;
}

Result<Value> FilterFirst(Interpreter& interp, const Value& input, CallArgs& args) {
  LLMSYNC_RETURN_IF_ERROR(BindArgs("first", args, {}).GetStatus());
  LLMSYNC_ASSIGN_OR_RETURN(ValueList items, interp.Iterate(input));
  if (items.empty()) return Value::Undefined("No first item, sequence was empty.");
  if (input.IsString() && input.IsSafe()) return Value::String(items[0].AsString(), true);
  return items[0];
}

Result<Value> FilterLast(Interpreter& interp, const Value& input, CallArgs& args) {
  LLMSYNC_RETURN_IF_ERROR(BindArgs("last", args, {}).GetStatus());
  if (input.IsGenerator()) return Status::InvalidArgument("'generator' object is not reversible");
  LLMSYNC_ASSIGN_OR_RETURN(ValueList items, interp.Iterate(input));
  if (items.empty()) return Value::Undefined("No last item, sequence was empty.");
  if (input.IsString() && input.IsSafe()) return Value::String(items.back().AsString(), true);
  return items.back();
}

Result<Value> FilterLength(Interpreter&, const Value& input, CallArgs& args) {
  LLMSYNC_RETURN_IF_ERROR(BindArgs("length", args, {}).GetStatus());
  switch (input.Kind()) {
    case ValueKind::kUndefined: return Value::Int(0);
    case ValueKind::kString: return Value::Int(static_cast<std::int64_t>(CodePointCount(input.AsString())));
    case ValueKind::kList:
      if (!input.IsGenerator()) return Value::Int(static_cast<std::int64_t>(input.AsList().size()));
      break;
    case ValueKind::kDict: return Value::Int(static_cast<std::int64_t>(input.AsDict().Size()));
    default: break;
  }
  return Status::InvalidArgument("object of type '" + PyTypeName(input) + "' has no len()");
}

Result<Value> FilterList(Interpreter& interp, const Value& input, CallArgs& args) {
  LLMSYNC_RETURN_IF_ERROR(BindArgs("list", args, {}).GetStatus());
  LLMSYNC_ASSIGN_OR_RETURN(ValueList items, interp.Iterate(input));
  return Value::List(std::move(items));
}

Result<Value> FilterJoin(Interpreter& interp, const Value& input, CallArgs& args) {
  LLMSYNC_ASSIGN_OR_RETURN(auto a,
                           BindArgs("join", args, {{"d", Value::String("")}, {"attribute", Value::None()}}));
  LLMSYNC_ASSIGN_OR_RETURN(ValueList items, interp.Iterate(input));
  std::string sep = PyStr(a[0]);
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) {
    Value item = items[i];
    if (!a[1].IsNone()) {
      LLMSYNC_ASSIGN_OR_RETURN(item, LookupAttribute(interp, item, a[1]));
    }
    if (i > 0) out += sep;
    out += PyStr(item);
    if (out.size() > interp.Limits().max_output_bytes)
      return Status::ResourceExhausted("join result too large");
  }
  return interp.MakeString(std::move(out));
}

Result<Value> FilterItems(Interpreter&, const Value& input, CallArgs& args) {
  LLMSYNC_RETURN_IF_ERROR(BindArgs("items", args, {}).GetStatus());
  if (input.IsUndefined()) return Generator({});
  if (!input.IsDict()) return Status::InvalidArgument("Can only get item pairs from a mapping.");
  ValueList out;
  for (const auto& [key, value] : input.AsDict().Entries())
    out.push_back(Value::List({key, value}, ListFlavor::kTuple));
  return Generator(std::move(out));
}

Result<Value> FilterDictsort(Interpreter&, const Value& input, CallArgs& args) {
  LLMSYNC_ASSIGN_OR_RETURN(auto a, BindArgs("dictsort", args,
                                            {{"case_sensitive", Value::Bool(false)},
                                             {"by", Value::String("key")},
                                             {"reverse", Value::Bool(false)}}));
  if (!input.IsDict()) return Status::InvalidArgument("dictsort() requires a mapping");
  std::string by = a[1].IsString() ? a[1].AsString() : "";
  if (by != "key" && by != "value")
    return Status::InvalidArgument("You can only sort by either \"key\" or \"value\"");
  std::vector<std::pair<Value, Value>> keyed;
  for (const auto& [key, value] : input.AsDict().Entries()) {
    Value sort_key = by == "key" ? key : value;
    if (!Truthy(a[0])) sort_key = IgnoreCase(sort_key);
    keyed.emplace_back(sort_key, Value::List({key, value}, ListFlavor::kTuple));
  }
  LLMSYNC_RETURN_IF_ERROR(SortValues(&keyed, Truthy(a[2])));
  ValueList out;
  for (auto& entry : keyed) out.push_back(std::move(entry.second));
  return Value::List(std::move(out));
}

Result<Value> FilterMap(Interpreter& interp, const Value& input, CallArgs& args) {
  if (!Truthy(input)) return Generator({});
  LLMSYNC_ASSIGN_OR_RETURN(ValueList items, interp.Iterate(input));
  ValueList out;
  if (args.positional.empty()) {
    Value attribute;
    Value fallback = Value::None();
    for (const auto& [key, value] : args.keywords) {
      if (key == "attribute") {
        attribute = value;
      } else if (key == "default") {
        fallback = value;
      } else {
        return Status::InvalidArgument("Unexpected keyword argument '" + key + "'");
      }
    }
    if (attribute.IsUndefined()) return Status::InvalidArgument("map requires a filter argument");
    for (const Value& item : items) {
      LLMSYNC_ASSIGN_OR_RETURN(Value v, LookupAttribute(interp, item, attribute));
      if (v.IsUndefined() && !fallback.IsNone()) v = fallback;
      out.push_back(std::move(v));
    }
    return Generator(std::move(out));
  }
  if (!args.positional[0].IsString()) return Status::InvalidArgument("map filter name must be a string");
  std::string name = args.positional[0].AsString();
  CallArgs rest;
  rest.positional.assign(args.positional.begin() + 1, args.positional.end());
  rest.keywords = args.keywords;
  for (const Value& item : items) {
    LLMSYNC_ASSIGN_OR_RETURN(Value v, interp.ApplyFilter(name, item, rest));
    out.push_back(std::move(v));
  }
  return Generator(std::move(out));
}

Result<Value> FilterSelect(Interpreter& interp, const Value& input, CallArgs& args) {
  return SelectOrReject(interp, input, args, true, false);
}
Result<Value> FilterReject(Interpreter& interp, const Value& input, CallArgs& args) {
  return SelectOrReject(interp, input, args, false, false);
}
Result<Value> FilterSelectAttr(Interpreter& interp, const Value& input, CallArgs& args) {
  return SelectOrReject(interp, input, args, true, true);
}
Result<Value> FilterRejectAttr(Interpreter& interp, const Value& input, CallArgs& args) {
  return SelectOrReject(interp, input, args, false, true);
}

Result<Value> FilterSort(Interpreter& interp, const Value& input, CallArgs& args) {
  LLMSYNC_ASSIGN_OR_RETURN(auto a, BindArgs("sort", args,
                                            {{"reverse", Value::Bool(false)},
                                             {"case_sensitive", Value::Bool(false)},
                                             {"attribute", Value::None()}}));
  LLMSYNC_ASSIGN_OR_RETURN(ValueList items, interp.Iterate(input));
  std::vector<std::pair<Value, Value>> keyed;
  for (Value& item : items) {
    LLMSYNC_ASSIGN_OR_RETURN(Value key, LookupAttribute(interp, item, a[2]));
    if (!Truthy(a[1])) key = IgnoreCase(key);
    keyed.emplace_back(std::move(key), std::move(item));
  }
  LLMSYNC_RETURN_IF_ERROR(SortValues(&keyed, Truthy(a[0])));
  ValueList out;
  for (auto& entry : keyed) out.push_back(std::move(entry.second));
  return Value::List(std::move(out));
}

Result<Value> FilterUnique(Interpreter& interp, const Value& input, CallArgs& args) {
  LLMSYNC_ASSIGN_OR_RETURN(
      auto a,
      BindArgs("unique", args, {{"case_sensitive", Value::Bool(false)}, {"attribute", Value::None()}}));
  LLMSYNC_ASSIGN_OR_RETURN(ValueList items, interp.Iterate(input));
  ValueList seen;
  ValueList out;
  for (const Value& item : items) {
    LLMSYNC_ASSIGN_OR_RETURN(Value key, LookupAttribute(interp, item, a[1]));
    if (!Truthy(a[0])) key = IgnoreCase(key);
    if (!IsHashable(key)) return Status::InvalidArgument("unhashable type: '" + PyTypeName(key) + "'");
    bool dup = std::any_of(seen.begin(), seen.end(), [&](const Value& s) { return PyEquals(s, key); });
    if (dup) continue;
    seen.push_back(key);
    out.push_back(item);
  }
  return Generator(std::move(out));
}

Result<Value> FilterMax(Interpreter& interp, const Value& input, CallArgs& args) {
  return MinOrMax(interp, input, args, true);
}
Result<Value> FilterMin(Interpreter& interp, const Value& input, CallArgs& args) {
  return MinOrMax(interp, input, args, false);
}

Result<Value> FilterSum(Interpreter& interp, const Value& input, CallArgs& args) {
  LLMSYNC_ASSIGN_OR_RETURN(auto a,
                           BindArgs("sum", args, {{"attribute", Value::None()}, {"start", Value::Int(0)}}));
  LLMSYNC_ASSIGN_OR_RETURN(ValueList items, interp.Iterate(input));
  Value total = a[1];
  for (const Value& item : items) {
    LLMSYNC_ASSIGN_OR_RETURN(Value v, LookupAttribute(interp, item, a[0]));
    LLMSYNC_ASSIGN_OR_RETURN(total, interp.Add(total, v));
  }
  return total;
}

Result<Value> FilterReverse(Interpreter& interp, const Value& input, CallArgs& args) {
  LLMSYNC_RETURN_IF_ERROR(BindArgs("reverse", args, {}).GetStatus());
  LLMSYNC_ASSIGN_OR_RETURN(ValueList items, interp.Iterate(input));
  std::reverse(items.begin(), items.end());
  if (input.IsString()) {
    std::string out;
    for (const Value& c : items) out += c.AsString();
    return Value::String(std::move(out), input.IsSafe());
  }
  // reversed() of a list is an iterator; a generator is materialized into a list first.
  return Value::List(std::move(items), input.IsGenerator() ? ListFlavor::kList : ListFlavor::kGenerator);
}

Result<Value> FilterBatch(Interpreter& interp, const Value& input, CallArgs& args) {
  LLMSYNC_ASSIGN_OR_RETURN(
      auto a, BindArgs("batch", args, {{"linecount", std::nullopt}, {"fill_with", Value::None()}}));
  LLMSYNC_ASSIGN_OR_RETURN(std::int64_t n, IntArg("batch", "linecount", a[0]));
  if (n <= 0) return Status::InvalidArgument("batch size must be positive");
  LLMSYNC_ASSIGN_OR_RETURN(ValueList items, interp.Iterate(input));
  ValueList out;
  ValueList current;
  for (Value& item : items) {
    current.push_back(std::move(item));
    if (static_cast<std::int64_t>(current.size()) == n)
      out.push_back(Value::List(std::move(current))), current = {};
  }
  if (!current.empty()) {
    if (!a[1].IsNone()) {
      while (static_cast<std::int64_t>(current.size()) < n) current.push_back(a[1]);
    }
    out.push_back(Value::List(std::move(current)));
  }
  return Generator(std::move(out));
}

}  // namespace llmsync::text::jinja
