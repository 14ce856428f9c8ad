// Expression evaluation: operators with Python semantics, the sandbox's attribute and item
// lookup, slicing and calls.
#include <algorithm>
#include <cmath>
#include <limits>

#include "text/jinja/jinja_interpreter.h"
#include "text/jinja/jinja_unicode.h"

namespace llmsync::text::jinja {
namespace {

Status TypeError(const std::string& message) { return Status::InvalidArgument(message); }

Status Overflow() {
  return Status::Unimplemented("integer overflow: values beyond 64 bits are not supported");
}

// Python's floor division and modulo for integers.
std::int64_t FloorDiv(std::int64_t a, std::int64_t b) {
  std::int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

std::int64_t PyMod(std::int64_t a, std::int64_t b) {
  std::int64_t r = a % b;
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

Result<Value> Arithmetic(const std::string& op, const Value& a, const Value& b) {
  if (a.IsIntegral() && b.IsIntegral() && op != "/") {
    std::int64_t x = a.AsInt();
    std::int64_t y = b.AsInt();
    std::int64_t r = 0;
    if (op == "+") {
      if (__builtin_add_overflow(x, y, &r)) return Overflow();
    } else if (op == "-") {
      if (__builtin_sub_overflow(x, y, &r)) return Overflow();
    } else if (op == "*") {
      if (__builtin_mul_overflow(x, y, &r)) return Overflow();
    } else if (op == "//" || op == "%") {
      if (y == 0) return TypeError("integer division or modulo by zero");
      if (x == std::numeric_limits<std::int64_t>::min() && y == -1) return Overflow();
      r = op == "//" ? FloorDiv(x, y) : PyMod(x, y);
    } else if (op == "**") {
      if (y < 0) return Value::Float(std::pow(static_cast<double>(x), static_cast<double>(y)));
      r = 1;
      for (std::int64_t base = x, e = y; e > 0; e >>= 1) {
        if ((e & 1) && __builtin_mul_overflow(r, base, &r)) return Overflow();
        if (e > 1 && __builtin_mul_overflow(base, base, &base)) return Overflow();
      }
    }
    return Value::Int(r);
  }
  double x = a.AsDouble();
  double y = b.AsDouble();
  if (op == "+") return Value::Float(x + y);
  if (op == "-") return Value::Float(x - y);
  if (op == "*") return Value::Float(x * y);
  if (op == "/") {
    if (y == 0) return TypeError("division by zero");
    return Value::Float(x / y);
  }
  if (op == "//" || op == "%") {
    if (y == 0) return TypeError("float floor division or modulo by zero");
    // CPython's float divmod.
    double mod = std::fmod(x, y);
    double div = (x - mod) / y;
    if (mod != 0) {
      if ((y < 0) != (mod < 0)) {
        mod += y;
        div -= 1.0;
      }
    } else {
      mod = std::copysign(0.0, y);
    }
    if (op == "%") return Value::Float(mod);
    double floordiv = 0;
    if (div != 0) {
      floordiv = std::floor(div);
      if (div - floordiv > 0.5) floordiv += 1.0;
    } else {
      floordiv = std::copysign(0.0, x / y);
    }
    return Value::Float(floordiv);
  }
  if (op == "**") {
    if (x == 0 && y < 0) return TypeError("0.0 cannot be raised to a negative power");
    return Value::Float(std::pow(x, y));
  }
  return TypeError("unsupported operator " + op);
}

// Python's slice.indices(length) for one dimension.
void SliceBounds(std::int64_t length, const Value& start_v, const Value& stop_v, std::int64_t step,
                 std::int64_t* start, std::int64_t* stop) {
  auto clamp = [&](const Value& v, std::int64_t dflt) {
    if (v.IsNone()) return dflt;
    std::int64_t i = v.AsInt();
    if (i < 0) i += length;
    if (step > 0) return std::clamp<std::int64_t>(i, 0, length);
    return std::clamp<std::int64_t>(i, -1, length - 1);
  };
  *start = clamp(start_v, step > 0 ? 0 : length - 1);
  *stop = clamp(stop_v, step > 0 ? length : -1);
}

std::string UndefinedName(const Value& obj) {
  return obj.IsDict() ? "dict object" : (PyTypeName(obj) + " object");
}

}  // namespace

Status UndefinedError(const Value& v) {
  const std::string& hint = v.UndefinedHint();
  return Status::InvalidArgument(hint.empty() ? "an undefined value was used" : hint);
}

bool IsHashable(const Value& v) {
  return v.IsString() || v.IsNumber() || v.IsNone() || v.IsUndefined() || v.IsCallable() || v.IsObject();
}

Status AtLine(Status status, int line) {
  if (status.IsOk() || status.Message().find("(line ") != std::string::npos) return status;
  return Status(status.Code(), status.Message() + " (line " + std::to_string(line) + ")");
}

Result<Value> BinaryOp(Interpreter& interp, const std::string& op, const Value& a, const Value& b) {
  if (op == "~") {
    std::string s = PyStr(a);
    s += PyStr(b);
    return interp.MakeString(std::move(s));
  }
  if (a.IsUndefined()) return UndefinedError(a);
  if (b.IsUndefined()) return UndefinedError(b);
  if (a.IsNumber() && b.IsNumber()) return Arithmetic(op, a, b);
  if (op == "+") {
    if (a.IsString() && b.IsString()) {
      bool safe = a.IsSafe() || b.IsSafe();
      std::string s = a.IsSafe() || !safe ? a.AsString() : HtmlEscape(a.AsString());
      s += b.IsSafe() || !safe ? b.AsString() : HtmlEscape(b.AsString());
      return interp.MakeString(std::move(s), safe);
    }
    if (a.IsList() && b.IsList() && !a.IsGenerator() && !b.IsGenerator() && a.IsTuple() == b.IsTuple()) {
      LLMSYNC_RETURN_IF_ERROR(interp.CheckItems(a.AsList().size() + b.AsList().size()));
      ValueList items = a.AsList();
      items.insert(items.end(), b.AsList().begin(), b.AsList().end());
      return Value::List(std::move(items), a.Flavor());
    }
    if ((a.IsString() && !a.IsSafe()) || (a.IsList() && !a.IsGenerator())) {
      return TypeError("can only concatenate " + PyTypeName(a) + " (not \"" + PyTypeName(b) + "\") to " +
                       PyTypeName(a));
    }
  }
  if (op == "*" && (a.IsIntegral() || b.IsIntegral()) &&
      (a.IsString() || b.IsString() || a.IsList() || b.IsList())) {
    const Value& seq = a.IsIntegral() ? b : a;
    std::int64_t n = std::max<std::int64_t>(0, (a.IsIntegral() ? a : b).AsInt());
    if (seq.IsString()) {
      const std::string& s = seq.AsString();
      if (!s.empty() && static_cast<std::uint64_t>(n) > interp.Limits().max_output_bytes / s.size()) {
        return Status::ResourceExhausted("string repetition exceeds the size limit");
      }
      std::string out;
      out.reserve(s.size() * static_cast<std::size_t>(n));
      for (std::int64_t i = 0; i < n; ++i) out += s;
      return interp.MakeString(std::move(out), seq.IsSafe());
    }
    if (!seq.IsGenerator()) {
      const ValueList& items = seq.AsList();
      if (!items.empty() && static_cast<std::uint64_t>(n) > interp.Limits().max_items / items.size()) {
        return Status::ResourceExhausted("list repetition exceeds the size limit");
      }
      ValueList out;
      for (std::int64_t i = 0; i < n; ++i) out.insert(out.end(), items.begin(), items.end());
      return Value::List(std::move(out), seq.Flavor());
    }
  }
  if (op == "%" && a.IsString()) return Status::Unimplemented("printf-style string formatting with '%'");
  return TypeError("unsupported operand type(s) for " + op + ": '" + PyTypeName(a) + "' and '" +
                   PyTypeName(b) + "'");
}

Result<bool> Contains(const Value& container, const Value& item) {
  switch (container.Kind()) {
    case ValueKind::kUndefined: return false;
    case ValueKind::kString:
      if (!item.IsString()) {
        return TypeError("'in <string>' requires string as left operand, not " + PyTypeName(item));
      }
      return container.AsString().find(item.AsString()) != std::string::npos;
    case ValueKind::kList:
      for (const Value& v : container.AsList()) {
        if (PyEquals(v, item)) return true;
      }
      return false;
    case ValueKind::kDict:
      if (!IsHashable(item)) return TypeError("unhashable type: '" + PyTypeName(item) + "'");
      return container.AsDict().Find(item) != nullptr;
    default: return TypeError("argument of type '" + PyTypeName(container) + "' is not iterable");
  }
}

Result<Value> Interpreter::Add(const Value& a, const Value& b) { return BinaryOp(*this, "+", a, b); }

Result<Value> Interpreter::GetAttr(const Value& obj, const std::string& name) {
  if (obj.IsUndefined()) return UndefinedError(obj);
  if (name.starts_with("__")) {
    return Value::Undefined("access to attribute '" + name + "' of '" + PyTypeName(obj) +
                            "' object is unsafe.");
  }
  Value method = GetMethod(obj, name);
  if (!method.IsUndefined() || !method.UndefinedHint().empty()) return method;
  if (obj.IsDict()) {
    if (const Value* v = obj.AsDict().FindString(name)) return *v;
  } else if (obj.IsObject()) {
    if (const Value* v = obj.AsObject().attrs.FindString(name)) return *v;
  }
  return Value::Undefined(Quoted(UndefinedName(obj)) + " has no attribute '" + name + "'");
}

Result<Value> Interpreter::GetItem(const Value& obj, const Value& key) {
  if (obj.IsUndefined()) return UndefinedError(obj);
  if (obj.IsDict() && IsHashable(key)) {
    if (const Value* v = obj.AsDict().Find(key)) return *v;
  } else if ((obj.IsList() && !obj.IsGenerator()) || obj.IsString()) {
    if (key.IsIntegral()) {
      std::int64_t i = key.AsInt();
      if (obj.IsList()) {
        const ValueList& items = obj.AsList();
        std::int64_t n = static_cast<std::int64_t>(items.size());
        if (i < 0) i += n;
        if (i >= 0 && i < n) return items[static_cast<std::size_t>(i)];
      } else {
        std::vector<std::size_t> offsets = CodePointOffsets(obj.AsString());
        std::int64_t n = static_cast<std::int64_t>(offsets.size()) - 1;
        if (i < 0) i += n;
        if (i >= 0 && i < n) {
          std::size_t at = offsets[static_cast<std::size_t>(i)];
          return Value::String(obj.AsString().substr(at, offsets[static_cast<std::size_t>(i) + 1] - at),
                               obj.IsSafe());
        }
      }
      return Value::Undefined(Quoted(UndefinedName(obj)) + " has no element " + PyRepr(key));
    }
  }
  if (key.IsString()) {
    if (obj.IsObject()) {
      if (const Value* v = obj.AsObject().attrs.FindString(key.AsString())) return *v;
    }
    Value method = GetMethod(obj, key.AsString());
    if (!method.IsUndefined() || !method.UndefinedHint().empty()) return method;
    return Value::Undefined(Quoted(UndefinedName(obj)) + " has no attribute '" + key.AsString() + "'");
  }
  return Value::Undefined(Quoted(UndefinedName(obj)) + " has no element " + PyRepr(key));
}

Result<ValueList> Interpreter::Iterate(const Value& v) {
  switch (v.Kind()) {
    case ValueKind::kUndefined: return ValueList();
    case ValueKind::kList: return v.AsList();
    case ValueKind::kDict: {
      ValueList keys;
      for (const auto& entry : v.AsDict().Entries()) keys.push_back(entry.first);
      return keys;
    }
    case ValueKind::kString: {
      ValueList chars;
      const std::string& s = v.AsString();
      for (std::size_t pos = 0; pos < s.size();) {
        std::size_t at = pos;
        NextCodePoint(s, &pos);
        chars.push_back(Value::String(s.substr(at, pos - at)));
      }
      return chars;
    }
    default: return TypeError(Quoted(PyTypeName(v)) + " object is not iterable");
  }
}

Result<Value> Interpreter::Eval(const Expr& e, const std::shared_ptr<Scope>& scope) {
  DepthScope depth(this);
  LLMSYNC_RETURN_IF_ERROR(AtLine(depth.GetStatus(), e.line));
  LLMSYNC_RETURN_IF_ERROR(AtLine(Step(), e.line));
  Result<Value> v = EvalInner(e, scope);
  if (!v.IsOk()) return AtLine(v.GetStatus(), e.line);
  if (v->Depth() > static_cast<std::uint32_t>(limits_.max_depth)) {
    return AtLine(Status::ResourceExhausted("value nested too deeply"), e.line);
  }
  return v;
}

Result<CallArgs> Interpreter::EvalArgs(const Expr& e, const std::shared_ptr<Scope>& scope) {
  CallArgs args;
  for (const auto& item : e.items) {
    LLMSYNC_ASSIGN_OR_RETURN(Value v, Eval(*item, scope));
    args.positional.push_back(std::move(v));
  }
  for (const auto& [key, expr] : e.kwargs) {
    LLMSYNC_ASSIGN_OR_RETURN(Value v, Eval(*expr, scope));
    args.keywords.emplace_back(key, std::move(v));
  }
  return args;
}

Result<Value> Interpreter::EvalFilterChain(const Expr& e, const std::shared_ptr<Scope>& scope,
                                           const Value& input) {
  Value base = input;
  if (e.a) {
    if (e.a->kind == ExprKind::kFilter) {
      LLMSYNC_ASSIGN_OR_RETURN(base, EvalFilterChain(*e.a, scope, input));
    } else {
      LLMSYNC_ASSIGN_OR_RETURN(base, Eval(*e.a, scope));
    }
  }
  LLMSYNC_ASSIGN_OR_RETURN(CallArgs args, EvalArgs(e, scope));
  Result<Value> result = ApplyFilter(e.name, base, std::move(args));
  if (!result.IsOk()) return AtLine(result.GetStatus(), e.line);
  return result;
}

Result<Value> Interpreter::EvalInner(const Expr& e, const std::shared_ptr<Scope>& scope) {
  switch (e.kind) {
    case ExprKind::kLiteral: return e.literal;
    case ExprKind::kName: {
      if (const Value* v = scope->Lookup(e.name)) return *v;
      return Value::Undefined(Quoted(e.name) + " is undefined");
    }
    case ExprKind::kList:
    case ExprKind::kTuple: {
      LLMSYNC_RETURN_IF_ERROR(CheckItems(e.items.size()));
      ValueList items;
      items.reserve(e.items.size());
      for (const auto& item : e.items) {
        LLMSYNC_ASSIGN_OR_RETURN(Value v, Eval(*item, scope));
        items.push_back(std::move(v));
      }
      return Value::List(std::move(items),
                         e.kind == ExprKind::kTuple ? ListFlavor::kTuple : ListFlavor::kList);
    }
    case ExprKind::kDict: return EvalDict(e, scope);
    case ExprKind::kGetAttr: {
      LLMSYNC_ASSIGN_OR_RETURN(Value obj, Eval(*e.a, scope));
      return GetAttr(obj, e.name);
    }
    case ExprKind::kGetItem: {
      LLMSYNC_ASSIGN_OR_RETURN(Value obj, Eval(*e.a, scope));
      LLMSYNC_ASSIGN_OR_RETURN(Value key, Eval(*e.b, scope));
      return GetItem(obj, key);
    }
    case ExprKind::kSlice: return EvalSlice(e, scope);
    case ExprKind::kCall: return EvalCall(e, scope);
    case ExprKind::kFilter: {
      if (!e.a) return Status::Internal("filter without input");
      return EvalFilterChain(e, scope, Value());
    }
    case ExprKind::kTest: {
      LLMSYNC_ASSIGN_OR_RETURN(Value v, Eval(*e.a, scope));
      LLMSYNC_ASSIGN_OR_RETURN(CallArgs args, EvalArgs(e, scope));
      LLMSYNC_ASSIGN_OR_RETURN(bool ok, ApplyTest(e.name, v, std::move(args)));
      return Value::Bool(ok);
    }
    case ExprKind::kNot: {
      LLMSYNC_ASSIGN_OR_RETURN(Value v, Eval(*e.a, scope));
      return Value::Bool(!Truthy(v));
    }
    case ExprKind::kNeg:
    case ExprKind::kPos: {
      LLMSYNC_ASSIGN_OR_RETURN(Value v, Eval(*e.a, scope));
      if (v.IsUndefined()) return UndefinedError(v);
      if (!v.IsNumber()) {
        return TypeError(std::string("bad operand type for unary ") + (e.kind == ExprKind::kNeg ? "-" : "+") +
                         ": '" + PyTypeName(v) + "'");
      }
      if (e.kind == ExprKind::kPos) return v.IsBool() ? Value::Int(v.AsInt()) : v;
      if (v.IsFloat()) return Value::Float(-v.AsDouble());
      if (v.AsInt() == std::numeric_limits<std::int64_t>::min()) return Overflow();
      return Value::Int(-v.AsInt());
    }
    case ExprKind::kBinary: return EvalBinary(e, scope);
    case ExprKind::kAnd:
    case ExprKind::kOr: {
      LLMSYNC_ASSIGN_OR_RETURN(Value left, Eval(*e.a, scope));
      if (Truthy(left) == (e.kind == ExprKind::kOr)) return left;
      return Eval(*e.b, scope);
    }
    case ExprKind::kCompare: return EvalCompare(e, scope);
    case ExprKind::kCondition: {
      LLMSYNC_ASSIGN_OR_RETURN(Value test, Eval(*e.b, scope));
      if (Truthy(test)) return Eval(*e.a, scope);
      if (e.c) return Eval(*e.c, scope);
      return Value::Undefined("the inline if-expression on line " + std::to_string(e.line) +
                              " evaluated to false and no else section was defined.");
    }
  }
  return Status::Internal("unknown expression kind");
}

Result<Value> Interpreter::EvalDict(const Expr& e, const std::shared_ptr<Scope>& scope) {
  LLMSYNC_RETURN_IF_ERROR(CheckItems(e.items.size() / 2));
  ValueDict dict;
  for (std::size_t i = 0; i + 1 < e.items.size(); i += 2) {
    LLMSYNC_ASSIGN_OR_RETURN(Value key, Eval(*e.items[i], scope));
    LLMSYNC_ASSIGN_OR_RETURN(Value value, Eval(*e.items[i + 1], scope));
    if (!IsHashable(key) || key.IsCallable() || key.IsObject() || key.IsUndefined()) {
      if (key.IsUndefined() || key.IsCallable() || key.IsObject()) {
        return Status::Unimplemented("dict keys other than strings, numbers, booleans and None");
      }
      return TypeError("unhashable type: '" + PyTypeName(key) + "'");
    }
    dict.Set(std::move(key), std::move(value));
  }
  return Value::Dict(std::move(dict));
}

Result<Value> Interpreter::EvalBinary(const Expr& e, const std::shared_ptr<Scope>& scope) {
  LLMSYNC_ASSIGN_OR_RETURN(Value a, Eval(*e.a, scope));
  LLMSYNC_ASSIGN_OR_RETURN(Value b, Eval(*e.b, scope));
  return BinaryOp(*this, e.name, a, b);
}

Result<Value> Interpreter::EvalCompare(const Expr& e, const std::shared_ptr<Scope>& scope) {
  LLMSYNC_ASSIGN_OR_RETURN(Value left, Eval(*e.a, scope));
  for (std::size_t i = 0; i < e.items.size(); ++i) {
    LLMSYNC_ASSIGN_OR_RETURN(Value right, Eval(*e.items[i], scope));
    const std::string& op = e.compare_ops[i];
    bool ok = false;
    if (op == "==" || op == "!=") {
      ok = PyEquals(left, right) == (op == "==");
    } else if (op == "in" || op == "notin") {
      LLMSYNC_ASSIGN_OR_RETURN(bool found, Contains(right, left));
      ok = found == (op == "in");
    } else {
      LLMSYNC_ASSIGN_OR_RETURN(int c, PyCompare(left, right));
      if (c == 2) {
        ok = false;
      } else if (op == "<") {
        ok = c < 0;
      } else if (op == "<=") {
        ok = c <= 0;
      } else if (op == ">") {
        ok = c > 0;
      } else {
        ok = c >= 0;
      }
    }
    if (!ok) return Value::Bool(false);
    left = std::move(right);
  }
  return Value::Bool(true);
}

Result<Value> Interpreter::EvalSlice(const Expr& e, const std::shared_ptr<Scope>& scope) {
  if (!e.a) return Status::Internal("slice without an object");
  LLMSYNC_ASSIGN_OR_RETURN(Value obj, Eval(*e.a, scope));
  Value parts[3] = {Value::None(), Value::None(), Value::None()};
  for (int i = 0; i < 3; ++i) {
    if (e.items[i]) {
      LLMSYNC_ASSIGN_OR_RETURN(parts[i], Eval(*e.items[i], scope));
    }
  }
  if (obj.IsUndefined()) return UndefinedError(obj);
  bool sliceable = obj.IsString() || (obj.IsList() && !obj.IsGenerator());
  for (const Value& p : parts) {
    if (!p.IsNone() && !p.IsIntegral()) sliceable = false;  // Python raises TypeError; Jinja yields undefined
  }
  if (!sliceable) return Value::Undefined(Quoted(UndefinedName(obj)) + " cannot be sliced");
  std::int64_t step = parts[2].IsNone() ? 1 : parts[2].AsInt();
  if (step == 0) return TypeError("slice step cannot be zero");
  std::vector<std::size_t> offsets;
  std::int64_t length = 0;
  if (obj.IsString()) {
    offsets = CodePointOffsets(obj.AsString());
    length = static_cast<std::int64_t>(offsets.size()) - 1;
  } else {
    length = static_cast<std::int64_t>(obj.AsList().size());
  }
  std::int64_t start = 0;
  std::int64_t stop = 0;
  SliceBounds(length, parts[0], parts[1], step, &start, &stop);
  std::vector<std::int64_t> picks;
  for (std::int64_t i = start; step > 0 ? i < stop : i > stop; i += step) picks.push_back(i);
  if (obj.IsString()) {
    const std::string& s = obj.AsString();
    std::string out;
    if (step == 1 && !picks.empty()) {
      out = s.substr(offsets[start], offsets[stop] - offsets[start]);
    } else {
      for (std::int64_t i : picks) out += s.substr(offsets[i], offsets[i + 1] - offsets[i]);
    }
    return Value::String(std::move(out), obj.IsSafe());
  }
  ValueList items;
  for (std::int64_t i : picks) items.push_back(obj.AsList()[static_cast<std::size_t>(i)]);
  return Value::List(std::move(items), obj.Flavor());
}

Result<Value> Interpreter::EvalCall(const Expr& e, const std::shared_ptr<Scope>& scope) {
  LLMSYNC_ASSIGN_OR_RETURN(Value callee, Eval(*e.a, scope));
  LLMSYNC_ASSIGN_OR_RETURN(CallArgs args, EvalArgs(e, scope));
  return CallValue(callee, std::move(args));
}

Result<Value> Interpreter::CallValue(const Value& callee, CallArgs args) {
  if (callee.IsUndefined()) return UndefinedError(callee);
  if (!callee.IsCallable()) return TypeError(Quoted(PyTypeName(callee)) + " object is not callable");
  return callee.AsCallable().Call(*this, std::move(args));
}

}  // namespace llmsync::text::jinja
