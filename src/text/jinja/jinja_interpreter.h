// The Jinja interpreter: renders a parsed template against a set of variables with the semantics
// of jinja2's ImmutableSandboxedEnvironment as Hugging Face transformers configures it
// (autoescape off, default Undefined, loop controls, transformers' tojson/raise_exception/
// strftime_now globals).
//
// One Interpreter renders one template once. Every render is bounded: evaluation steps, nesting
// depth (macro recursion included), output and string sizes and total bytes produced all have
// limits, and exceeding one fails with ResourceExhausted instead of hanging or crashing.
//
// Errors: runtime failures a Python render would raise (undefined values used in arithmetic,
// type errors, raise_exception) are InvalidArgument with the template line; features outside the
// supported subset are Unimplemented, naming the feature and line.
//
// Thread safety: an Interpreter is single-use and single-threaded. The template tree it renders
// is only read, so several interpreters may render the same tree concurrently.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "llmsync/status.h"
#include "text/jinja/jinja_ast.h"
#include "text/jinja/jinja_value.h"

namespace llmsync::text::jinja {

struct RenderLimits {
  std::size_t max_output_bytes = 16u << 20;  // the rendered text, and any one string value
  std::size_t max_total_bytes = 256u << 20;  // bytes of strings produced over the whole render
  std::uint64_t max_steps = 5'000'000;       // expressions evaluated plus statements executed
  int max_depth = 400;                       // nested evaluation, macro calls included
  std::size_t max_items = 1u << 20;          // elements of any one list or dict
  std::int64_t max_range = 100000;           // range() length (jinja2's sandbox MAX_RANGE)
};

// strftime_now(format) as the template sees it; transformers formats datetime.now().
using StrftimeFn = std::function<std::string(std::string_view format)>;

// A lexical scope: the variables set in a template, macro call, loop iteration or with block.
struct Scope {
  std::shared_ptr<Scope> parent;
  std::unordered_map<std::string, Value> vars;

  const Value* Lookup(const std::string& name) const;
};

enum class Flow { kNormal, kBreak, kContinue };

class Interpreter {
 public:
  Interpreter(const RenderLimits& limits, StrftimeFn strftime_now);

  // Renders `nodes` with `variables` as the template's context.
  Result<std::string> Render(const NodeList& nodes, const ValueDict& variables);

  // Services for filters, methods and callables.
  const RenderLimits& Limits() const { return limits_; }
  Result<Value> CallValue(const Value& callee, CallArgs args);
  Result<Value> ApplyFilter(const std::string& name, const Value& input, CallArgs args);
  Result<bool> ApplyTest(const std::string& name, const Value& input, CallArgs args);
  bool HasFilter(const std::string& name) const;
  bool HasTest(const std::string& name) const;
  // The sandbox's getattr (attribute first, then item) and getitem (item first, then attribute).
  Result<Value> GetAttr(const Value& obj, const std::string& name);
  Result<Value> GetItem(const Value& obj, const Value& key);
  // Python's `+`, used by the sum filter.
  Result<Value> Add(const Value& a, const Value& b);
  // for-loop iteration: list items, dict keys, string characters; undefined is empty.
  Result<ValueList> Iterate(const Value& v);
  // A string value, after checking the size limits and charging it to the byte budget.
  Result<Value> MakeString(std::string s, bool safe = false);
  Status ChargeBytes(std::size_t n);
  Status CheckItems(std::size_t n) const;
  std::string Strftime(std::string_view format) const { return strftime_now_(format); }

  // Macro and call-block support (jinja_interpreter.cpp).
  Result<Value> CallMacro(const Node& macro, const std::shared_ptr<Scope>& closure, CallArgs args);
  Result<Value> CallCaller(const Node& call_block, const std::shared_ptr<Scope>& scope, CallArgs args);

 private:
  friend class DepthScope;

  // Statements (jinja_interpreter.cpp).
  Result<Flow> RenderNodes(const NodeList& nodes, const std::shared_ptr<Scope>& scope, std::string* out);
  Result<Flow> RenderNode(const Node& node, const std::shared_ptr<Scope>& scope, std::string* out);
  Result<Flow> RenderIf(const Node& node, const std::shared_ptr<Scope>& scope, std::string* out);
  Result<Flow> RenderFor(const Node& node, const std::shared_ptr<Scope>& scope, std::string* out);
  Status RenderSet(const Node& node, const std::shared_ptr<Scope>& scope);
  Status RenderCallBlock(const Node& node, const std::shared_ptr<Scope>& scope, std::string* out);
  Status RenderWith(const Node& node, const std::shared_ptr<Scope>& scope, std::string* out);
  Status Assign(const Target& target, const Value& value, Scope& scope, int line);
  Status Output(std::string* out, std::string_view text);

  // Expressions (jinja_eval.cpp).
  Result<Value> Eval(const Expr& e, const std::shared_ptr<Scope>& scope);
  // Evaluates a filter chain whose innermost input is `input` (filter blocks, set blocks).
  Result<Value> EvalFilterChain(const Expr& e, const std::shared_ptr<Scope>& scope, const Value& input);
  Result<Value> EvalInner(const Expr& e, const std::shared_ptr<Scope>& scope);
  Result<CallArgs> EvalArgs(const Expr& e, const std::shared_ptr<Scope>& scope);
  Result<Value> EvalBinary(const Expr& e, const std::shared_ptr<Scope>& scope);
  Result<Value> EvalCompare(const Expr& e, const std::shared_ptr<Scope>& scope);
  Result<Value> EvalSlice(const Expr& e, const std::shared_ptr<Scope>& scope);
  Result<Value> EvalDict(const Expr& e, const std::shared_ptr<Scope>& scope);
  Result<Value> EvalCall(const Expr& e, const std::shared_ptr<Scope>& scope);
  Status Step();
  Status Enter();
  void Leave() { --depth_; }

  RenderLimits limits_;
  StrftimeFn strftime_now_;
  std::uint64_t steps_ = 0;
  std::uint64_t total_bytes_ = 0;
  int depth_ = 0;
};

// RAII for Interpreter depth accounting.
class DepthScope {
 public:
  explicit DepthScope(Interpreter* interpreter) : interpreter_(interpreter), status_(interpreter->Enter()) {}
  ~DepthScope() { interpreter_->Leave(); }
  DepthScope(const DepthScope&) = delete;
  DepthScope& operator=(const DepthScope&) = delete;
  const Status& GetStatus() const { return status_; }

 private:
  Interpreter* interpreter_;
  Status status_;
};

// Value operations shared by the evaluator, filters and tests (jinja_eval.cpp).
Result<Value> BinaryOp(Interpreter& interp, const std::string& op, const Value& a, const Value& b);
Result<bool> Contains(const Value& container, const Value& item);
Status UndefinedError(const Value& v);
bool IsHashable(const Value& v);

// Builtin globals, methods, filters and tests (jinja_methods.cpp, jinja_filters.cpp,
// jinja_predicates.cpp).
void AddGlobals(ValueDict* globals);
// The bound method `name` of a str, dict or list receiver; an undefined value (with an empty hint)
// when there is no such method, or with a hint when the sandbox forbids it (list.append).
Value GetMethod(const Value& receiver, const std::string& name);
// loop.cycle for iteration index0.
Value MakeLoopCycle(std::int64_t index0);
Result<Value> CallFilter(Interpreter& interp, const std::string& name, const Value& input, CallArgs args);
bool FilterExists(const std::string& name);
Result<bool> CallTest(Interpreter& interp, const std::string& name, const Value& input, CallArgs args);
bool TestExists(const std::string& name);

// Annotates an error with the template line it happened on (once).
Status AtLine(Status status, int line);

}  // namespace llmsync::text::jinja
