// Jinja tests (`x is defined`, `x is string`, ...), following jinja2/tests.py.
#include <cmath>
#include <unordered_map>

#include "text/jinja/jinja_args.h"
#include "text/jinja/jinja_interpreter.h"
#include "text/jinja/jinja_unicode.h"

namespace llmsync::text::jinja {
namespace {

using TestFn = Result<bool> (*)(Interpreter&, const Value&, CallArgs&);

Result<Value> OneArg(const char* name, CallArgs& args) {
  LLMSYNC_ASSIGN_OR_RETURN(auto a, BindArgs(name, args, {{"other", std::nullopt}}));
  return a[0];
}

#define SIMPLE_TEST(fn_name, expr)                                     \
  Result<bool> fn_name(Interpreter&, const Value& v, CallArgs& args) { \
    LLMSYNC_RETURN_IF_ERROR(BindArgs(#fn_name, args, {}).GetStatus()); \
    return (expr);                                                     \
  }

SIMPLE_TEST(TestDefined, !v.IsUndefined())
SIMPLE_TEST(TestUndefined, v.IsUndefined())
SIMPLE_TEST(TestNone, v.IsNone())
SIMPLE_TEST(TestBoolean, v.IsBool())
SIMPLE_TEST(TestTrue, v.IsBool() && v.AsBool())
SIMPLE_TEST(TestFalse, v.IsBool() && !v.AsBool())
SIMPLE_TEST(TestInteger, v.IsInt())
SIMPLE_TEST(TestFloat, v.IsFloat())
SIMPLE_TEST(TestNumber, v.IsNumber())
SIMPLE_TEST(TestString, v.IsString())
SIMPLE_TEST(TestMapping, v.IsDict())
SIMPLE_TEST(TestCallable, v.IsCallable())
SIMPLE_TEST(TestEscaped, v.IsString() && v.IsSafe())
// iter() succeeds: strings, lists, tuples, generators, dicts, and Undefined (which iterates empty).
SIMPLE_TEST(TestIterable, v.IsUndefined() || v.IsString() || v.IsList() || v.IsDict())
// len() and __getitem__ exist: not generators.
SIMPLE_TEST(TestSequence, v.IsUndefined() || v.IsString() || v.IsDict() || (v.IsList() && !v.IsGenerator()))
SIMPLE_TEST(TestLower, PyStr(v) == StrLower(PyStr(v)) && StrUpper(PyStr(v)) != PyStr(v))
SIMPLE_TEST(TestUpper, PyStr(v) == StrUpper(PyStr(v)) && StrLower(PyStr(v)) != PyStr(v))

Result<bool> Parity(const Value& v, bool odd) {
  if (!v.IsNumber())
    return Status::InvalidArgument("unsupported operand type(s) for %: '" + PyTypeName(v) + "'");
  if (v.IsFloat()) {
    double m = std::fmod(v.AsDouble(), 2.0);
    if (m < 0) m += 2.0;
    return odd ? m == 1.0 : m == 0.0;
  }
  std::int64_t m = v.AsInt() % 2;
  return odd ? m != 0 : m == 0;
}

Result<bool> TestOdd(Interpreter&, const Value& v, CallArgs& args) {
  LLMSYNC_RETURN_IF_ERROR(BindArgs("odd", args, {}).GetStatus());
  return Parity(v, true);
}

Result<bool> TestEven(Interpreter&, const Value& v, CallArgs& args) {
  LLMSYNC_RETURN_IF_ERROR(BindArgs("even", args, {}).GetStatus());
  return Parity(v, false);
}

Result<bool> TestDivisibleBy(Interpreter& interp, const Value& v, CallArgs& args) {
  LLMSYNC_ASSIGN_OR_RETURN(auto a, BindArgs("divisibleby", args, {{"num", std::nullopt}}));
  LLMSYNC_ASSIGN_OR_RETURN(Value rem, BinaryOp(interp, "%", v, a[0]));
  return PyEquals(rem, Value::Int(0));
}

Result<bool> TestEq(Interpreter&, const Value& v, CallArgs& args) {
  LLMSYNC_ASSIGN_OR_RETURN(Value other, OneArg("eq", args));
  return PyEquals(v, other);
}

Result<bool> TestNe(Interpreter&, const Value& v, CallArgs& args) {
  LLMSYNC_ASSIGN_OR_RETURN(Value other, OneArg("ne", args));
  return !PyEquals(v, other);
}

Result<bool> Order(const Value& v, CallArgs& args, int want_low, int want_high) {
  LLMSYNC_ASSIGN_OR_RETURN(Value other, OneArg("compare", args));
  LLMSYNC_ASSIGN_OR_RETURN(int c, PyCompare(v, other));
  return c != 2 && c >= want_low && c <= want_high;
}

Result<bool> TestLt(Interpreter&, const Value& v, CallArgs& args) { return Order(v, args, -1, -1); }
Result<bool> TestLe(Interpreter&, const Value& v, CallArgs& args) { return Order(v, args, -1, 0); }
Result<bool> TestGt(Interpreter&, const Value& v, CallArgs& args) { return Order(v, args, 1, 1); }
Result<bool> TestGe(Interpreter&, const Value& v, CallArgs& args) { return Order(v, args, 0, 1); }

Result<bool> TestIn(Interpreter&, const Value& v, CallArgs& args) {
  LLMSYNC_ASSIGN_OR_RETURN(auto a, BindArgs("in", args, {{"seq", std::nullopt}}));
  return Contains(a[0], v);
}

Result<bool> TestSameAs(Interpreter&, const Value& v, CallArgs& args) {
  LLMSYNC_ASSIGN_OR_RETURN(Value other, OneArg("sameas", args));
  if (v.Kind() != other.Kind()) return false;
  return v.SameObject(other);
}

Result<bool> TestFilterExists(Interpreter& interp, const Value& v, CallArgs& args) {
  LLMSYNC_RETURN_IF_ERROR(BindArgs("filter", args, {}).GetStatus());
  return v.IsString() && interp.HasFilter(v.AsString());
}

Result<bool> TestTestExists(Interpreter& interp, const Value& v, CallArgs& args) {
  LLMSYNC_RETURN_IF_ERROR(BindArgs("test", args, {}).GetStatus());
  return v.IsString() && interp.HasTest(v.AsString());
}

const std::unordered_map<std::string, TestFn>& Tests() {
  static const std::unordered_map<std::string, TestFn> kTests = {
      {"defined", TestDefined},
      {"undefined", TestUndefined},
      {"none", TestNone},
      {"boolean", TestBoolean},
      {"true", TestTrue},
      {"false", TestFalse},
      {"integer", TestInteger},
      {"float", TestFloat},
      {"number", TestNumber},
      {"string", TestString},
      {"mapping", TestMapping},
      {"iterable", TestIterable},
      {"sequence", TestSequence},
      {"callable", TestCallable},
      {"escaped", TestEscaped},
      {"lower", TestLower},
      {"upper", TestUpper},
      {"odd", TestOdd},
      {"even", TestEven},
      {"divisibleby", TestDivisibleBy},
      {"sameas", TestSameAs},
      {"in", TestIn},
      {"==", TestEq},
      {"eq", TestEq},
      {"equalto", TestEq},
      {"!=", TestNe},
      {"ne", TestNe},
      {"<", TestLt},
      {"lt", TestLt},
      {"lessthan", TestLt},
      {"<=", TestLe},
      {"le", TestLe},
      {">", TestGt},
      {"gt", TestGt},
      {"greaterthan", TestGt},
      {">=", TestGe},
      {"ge", TestGe},
      {"filter", TestFilterExists},
      {"test", TestTestExists},
  };
  return kTests;
}

}  // namespace

bool TestExists(const std::string& name) { return Tests().count(name) != 0; }

Result<bool> CallTest(Interpreter& interp, const std::string& name, const Value& input, CallArgs args) {
  auto it = Tests().find(name);
  if (it == Tests().end()) return Status::InvalidArgument("no test named '" + name + "'");
  return it->second(interp, input, args);
}

}  // namespace llmsync::text::jinja
