// The value model of the Jinja interpreter: what template expressions compute with.
//
// It mirrors the Python objects a Hugging Face chat template sees: undefined, None, bool, int,
// float, str (optionally "safe", i.e. markupsafe.Markup), list and tuple, dict (insertion
// ordered), callables (macros, builtins, bound methods) and attribute objects (namespace(),
// loop). Lists and dicts are immutable once built, as in Jinja's ImmutableSandboxedEnvironment,
// so they are shared between copies; only namespace objects are mutable, and they are shared by
// reference exactly as in Python (two names may denote the same namespace).
//
// Thread safety: a Value is immutable apart from namespace objects. Values that reach no
// namespace may be read from several threads; a render uses its values from one thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "llmsync/status.h"

namespace llmsync::text::jinja {

class Value;
class ValueDict;
class Callable;
class Interpreter;
struct ObjectData;

using ValueList = std::vector<Value>;

enum class ValueKind {
  kUndefined,
  kNone,
  kBool,
  kInt,
  kFloat,
  kString,
  kList,  // also tuples and one-shot generators (see ListFlavor)
  kDict,
  kCallable,
  kObject,  // namespace(), loop, ...: attribute bags
};

// Python distinguishes list, tuple and generator; they share one representation here.
enum class ListFlavor { kList, kTuple, kGenerator };

class Value {
 public:
  Value() = default;  // undefined
  Value(const Value&) = default;
  Value(Value&&) noexcept = default;
  // Assignment copies (or moves) the source out first, so `v = v.AsDict()[...]`-style assignments
  // from a value owned by the target are safe.
  Value& operator=(const Value& other) {
    Value copy(other);
    return *this = std::move(copy);
  }
  Value& operator=(Value&& other) noexcept {
    Value taken(other.kind_, other.safe_, other.flavor_, other.depth_, std::move(other.data_));
    kind_ = taken.kind_;
    safe_ = taken.safe_;
    flavor_ = taken.flavor_;
    depth_ = taken.depth_;
    data_.swap(taken.data_);
    return *this;
  }
  ~Value() = default;

  static Value Undefined(std::string hint = "");
  static Value None();
  static Value Bool(bool b);
  static Value Int(std::int64_t i);
  static Value Float(double f);
  static Value String(std::string s, bool safe = false);
  static Value List(ValueList items, ListFlavor flavor = ListFlavor::kList);
  static Value Dict(ValueDict dict);
  static Value FromCallable(std::shared_ptr<const Callable> callable);
  static Value Object(std::shared_ptr<ObjectData> object);

  ValueKind Kind() const { return kind_; }
  bool IsUndefined() const { return kind_ == ValueKind::kUndefined; }
  bool IsNone() const { return kind_ == ValueKind::kNone; }
  bool IsBool() const { return kind_ == ValueKind::kBool; }
  bool IsInt() const { return kind_ == ValueKind::kInt; }
  bool IsFloat() const { return kind_ == ValueKind::kFloat; }
  // Python's numbers.Number: int, float and bool.
  bool IsNumber() const { return IsInt() || IsFloat() || IsBool(); }
  // int or bool (bool is an int subclass in Python).
  bool IsIntegral() const { return IsInt() || IsBool(); }
  bool IsString() const { return kind_ == ValueKind::kString; }
  bool IsList() const { return kind_ == ValueKind::kList; }
  bool IsDict() const { return kind_ == ValueKind::kDict; }
  bool IsCallable() const { return kind_ == ValueKind::kCallable; }
  bool IsObject() const { return kind_ == ValueKind::kObject; }

  // REQUIRES: the matching kind (AsInt also accepts bool, AsDouble any number).
  bool AsBool() const { return std::get<bool>(data_); }
  std::int64_t AsInt() const;
  double AsDouble() const;
  const std::string& AsString() const { return std::get<std::string>(data_); }
  const ValueList& AsList() const { return *std::get<std::shared_ptr<const ValueList>>(data_); }
  const ValueDict& AsDict() const { return *std::get<std::shared_ptr<const ValueDict>>(data_); }
  const Callable& AsCallable() const { return *std::get<std::shared_ptr<const Callable>>(data_); }
  const std::shared_ptr<const Callable>& CallablePtr() const {
    return std::get<std::shared_ptr<const Callable>>(data_);
  }
  ObjectData& AsObject() const { return *std::get<std::shared_ptr<ObjectData>>(data_); }
  const ObjectData* ObjectPtr() const { return std::get<std::shared_ptr<ObjectData>>(data_).get(); }

  // For undefined values: why it is undefined ("'x' is undefined"), used in error messages.
  const std::string& UndefinedHint() const { return std::get<std::string>(data_); }
  bool IsSafe() const { return safe_; }  // a markupsafe.Markup string
  ListFlavor Flavor() const { return flavor_; }
  bool IsTuple() const { return IsList() && flavor_ == ListFlavor::kTuple; }
  bool IsGenerator() const { return IsList() && flavor_ == ListFlavor::kGenerator; }
  // Whether two values are the same object (Python `is`), for containers and objects.
  bool SameObject(const Value& other) const;
  // Container nesting: 0 for scalars, 1 + the deepest element for lists and dicts, 1 for objects.
  // The interpreter bounds it so that no value is too deep to print, compare or destroy.
  std::uint32_t Depth() const { return depth_; }

 private:
  using Data = std::variant<std::monostate, bool, std::int64_t, double, std::string,
                            std::shared_ptr<const ValueList>, std::shared_ptr<const ValueDict>,
                            std::shared_ptr<const Callable>, std::shared_ptr<ObjectData>>;
  Value(ValueKind kind, bool safe, ListFlavor flavor, std::uint32_t depth, Data&& data)
      : kind_(kind), safe_(safe), flavor_(flavor), depth_(depth), data_(std::move(data)) {}

  ValueKind kind_ = ValueKind::kUndefined;
  bool safe_ = false;
  ListFlavor flavor_ = ListFlavor::kList;
  std::uint32_t depth_ = 0;
  Data data_{std::string()};
};

// An insertion-ordered dictionary with Python key semantics (1 == 1.0 == True).
// Keys are hashable scalars: strings, numbers, booleans, None.
class ValueDict {
 public:
  // Inserts, or replaces the value in place when an equal key exists (like a Python dict).
  void Set(Value key, Value value);
  const Value* Find(const Value& key) const;
  const Value* FindString(std::string_view key) const;
  std::size_t Size() const { return entries_.size(); }
  bool Empty() const { return entries_.empty(); }
  const std::vector<std::pair<Value, Value>>& Entries() const { return entries_; }

 private:
  std::vector<std::pair<Value, Value>> entries_;
  std::unordered_map<std::string, std::size_t> string_index_;
};

// Attribute bags: namespace() objects (mutable, shared) and loop contexts (read-only).
// INVARIANT: an assignable object's attributes never contain an object (checked on assignment),
// so objects cannot form reference cycles and nesting stays bounded.
struct ObjectData {
  std::string type_name;  // "Namespace", "LoopContext", "Cycler", ...
  bool assignable = false;
  ValueDict attrs;
};

// Positional and keyword arguments of a call.
struct CallArgs {
  ValueList positional;
  std::vector<std::pair<std::string, Value>> keywords;
};

// Anything a template can call. Implementations live with the interpreter.
class Callable {
 public:
  virtual ~Callable() = default;
  virtual std::string Name() const = 0;
  virtual Result<Value> Call(Interpreter& interpreter, CallArgs args) const = 0;
};

// Python truthiness (undefined and generators included).
bool Truthy(const Value& v);

// Python ==, recursively for containers; numbers compare across int/float/bool.
bool PyEquals(const Value& a, const Value& b);

// Python ordering for <, <=, >, >=: -1, 0 or 1; 2 when unordered (a NaN is involved, so every
// ordering comparison is false); an error for types Python cannot order.
Result<int> PyCompare(const Value& a, const Value& b);

// Python's type(x).__name__ ("str", "dict", "NoneType", "Undefined", ...).
std::string PyTypeName(const Value& v);

// str(x) and repr(x) as Python prints them (undefined prints as "").
std::string PyStr(const Value& v);
std::string PyRepr(const Value& v);

// repr() of a float: the shortest round-trip digits, "1e-05", "1e+16", "2.0", "nan", "inf".
std::string FormatPyFloat(double d);

// "'" + s + "'" for error messages.
std::string Quoted(std::string_view s);

// The number of Unicode code points of UTF-8 text (stray bytes count as one each).
std::size_t CodePointCount(std::string_view s);

}  // namespace llmsync::text::jinja
