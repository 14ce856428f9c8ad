// Statement execution, scopes, macros and the render budget.
#include "text/jinja/jinja_interpreter.h"

#include <utility>

namespace llmsync::text::jinja {
namespace {

// A macro defined by {% macro %}. It holds its defining scope weakly: scopes own the variables
// that hold macros, so a strong reference would be a cycle.
class MacroCallable : public Callable {
 public:
  MacroCallable(const Node* node, std::weak_ptr<Scope> closure) : node_(node), closure_(std::move(closure)) {}
  std::string Name() const override { return node_->name; }
  Result<Value> Call(Interpreter& interp, CallArgs args) const override {
    std::shared_ptr<Scope> closure = closure_.lock();
    if (!closure) return Status::Unimplemented("calling macro '" + node_->name + "' after its scope ended");
    return interp.CallMacro(*node_, closure, std::move(args));
  }

 private:
  const Node* node_;
  std::weak_ptr<Scope> closure_;
};

// `caller` inside a macro invoked by {% call %}: renders the call block's body.
class CallerCallable : public Callable {
 public:
  CallerCallable(const Node* node, std::weak_ptr<Scope> scope) : node_(node), scope_(std::move(scope)) {}
  std::string Name() const override { return "caller"; }
  Result<Value> Call(Interpreter& interp, CallArgs args) const override {
    std::shared_ptr<Scope> scope = scope_.lock();
    if (!scope) return Status::Unimplemented("calling 'caller' after its scope ended");
    return interp.CallCaller(*node_, scope, std::move(args));
  }

 private:
  const Node* node_;
  std::weak_ptr<Scope> scope_;
};

std::shared_ptr<Scope> ChildScope(const std::shared_ptr<Scope>& parent) {
  auto scope = std::make_shared<Scope>();
  scope->parent = parent;
  return scope;
}

// Whether v reaches an object (namespace, loop); such values may not be stored in a namespace.
bool ContainsObject(const Value& v) {
  if (v.IsObject()) return true;
  if (v.IsList()) {
    for (const Value& item : v.AsList()) {
      if (item.Depth() > 0 && ContainsObject(item)) return true;
    }
  } else if (v.IsDict()) {
    for (const auto& entry : v.AsDict().Entries()) {
      if (entry.second.Depth() > 0 && ContainsObject(entry.second)) return true;
    }
  }
  return false;
}

// The `loop` variable of iteration i over items.
Value MakeLoopObject(const ValueList& items, std::int64_t i) {
  std::int64_t n = static_cast<std::int64_t>(items.size());
  auto loop = std::make_shared<ObjectData>();
  loop->type_name = "LoopContext";
  ValueDict& a = loop->attrs;
  a.Set(Value::String("index"), Value::Int(i + 1));
  a.Set(Value::String("index0"), Value::Int(i));
  a.Set(Value::String("revindex"), Value::Int(n - i));
  a.Set(Value::String("revindex0"), Value::Int(n - i - 1));
  a.Set(Value::String("first"), Value::Bool(i == 0));
  a.Set(Value::String("last"), Value::Bool(i == n - 1));
  a.Set(Value::String("length"), Value::Int(n));
  a.Set(Value::String("depth"), Value::Int(1));
  a.Set(Value::String("depth0"), Value::Int(0));
  a.Set(Value::String("previtem"), i > 0 ? items[i - 1] : Value::Undefined("there is no previous item"));
  a.Set(Value::String("nextitem"), i + 1 < n ? items[i + 1] : Value::Undefined("there is no next item"));
  a.Set(Value::String("cycle"), MakeLoopCycle(i));
  return Value::Object(std::move(loop));
}

Status Unpack(const ValueList& items, std::size_t expected) {
  if (items.size() < expected) {
    return Status::InvalidArgument("not enough values to unpack (expected " + std::to_string(expected) +
                                   ", got " + std::to_string(items.size()) + ")");
  }
  if (items.size() > expected) {
    return Status::InvalidArgument("too many values to unpack (expected " + std::to_string(expected) + ")");
  }
  return Status::Ok();
}

}  // namespace

const Value* Scope::Lookup(const std::string& name) const {
  for (const Scope* s = this; s != nullptr; s = s->parent.get()) {
    auto it = s->vars.find(name);
    if (it != s->vars.end()) return &it->second;
  }
  return nullptr;
}

Interpreter::Interpreter(const RenderLimits& limits, StrftimeFn strftime_now)
    : limits_(limits), strftime_now_(std::move(strftime_now)) {}

Status Interpreter::Step() {
  if (++steps_ > limits_.max_steps) {
    return Status::ResourceExhausted("template exceeded its evaluation budget of " +
                                     std::to_string(limits_.max_steps) + " steps");
  }
  return Status::Ok();
}

Status Interpreter::Enter() {
  if (++depth_ > limits_.max_depth) {
    return Status::ResourceExhausted("template recursion is too deep (more than " +
                                     std::to_string(limits_.max_depth) + " levels)");
  }
  return Status::Ok();
}

Status Interpreter::ChargeBytes(std::size_t n) {
  total_bytes_ += n;
  if (total_bytes_ > limits_.max_total_bytes) {
    return Status::ResourceExhausted("template produced more than " +
                                     std::to_string(limits_.max_total_bytes) + " bytes of strings");
  }
  return Status::Ok();
}

Status Interpreter::CheckItems(std::size_t n) const {
  if (n > limits_.max_items) {
    return Status::ResourceExhausted("a list or dict exceeds " + std::to_string(limits_.max_items) +
                                     " items");
  }
  return Status::Ok();
}

Result<Value> Interpreter::MakeString(std::string s, bool safe) {
  if (s.size() > limits_.max_output_bytes) {
    return Status::ResourceExhausted("a string exceeds the size limit of " +
                                     std::to_string(limits_.max_output_bytes) + " bytes");
  }
  LLMSYNC_RETURN_IF_ERROR(ChargeBytes(s.size()));
  return Value::String(std::move(s), safe);
}

Status Interpreter::Output(std::string* out, std::string_view text) {
  if (out->size() + text.size() > limits_.max_output_bytes) {
    return Status::ResourceExhausted("rendered text exceeds the size limit of " +
                                     std::to_string(limits_.max_output_bytes) + " bytes");
  }
  LLMSYNC_RETURN_IF_ERROR(ChargeBytes(text.size()));
  out->append(text);
  return Status::Ok();
}

Result<Value> Interpreter::ApplyFilter(const std::string& name, const Value& input, CallArgs args) {
  if (!FilterExists(name)) return Status::InvalidArgument("no filter named '" + name + "'");
  return CallFilter(*this, name, input, std::move(args));
}

Result<bool> Interpreter::ApplyTest(const std::string& name, const Value& input, CallArgs args) {
  if (!TestExists(name)) return Status::InvalidArgument("no test named '" + name + "'");
  return CallTest(*this, name, input, std::move(args));
}

bool Interpreter::HasFilter(const std::string& name) const { return FilterExists(name); }
bool Interpreter::HasTest(const std::string& name) const { return TestExists(name); }

Result<std::string> Interpreter::Render(const NodeList& nodes, const ValueDict& variables) {
  auto globals = std::make_shared<Scope>();
  ValueDict builtins;
  AddGlobals(&builtins);
  for (const auto& [key, value] : builtins.Entries()) globals->vars[key.AsString()] = value;
  for (const auto& [key, value] : variables.Entries()) {
    if (key.IsString()) globals->vars[key.AsString()] = value;
  }
  auto top = ChildScope(globals);
  std::string out;
  LLMSYNC_RETURN_IF_ERROR(RenderNodes(nodes, top, &out).GetStatus());
  return out;
}

Result<Flow> Interpreter::RenderNodes(const NodeList& nodes, const std::shared_ptr<Scope>& scope,
                                      std::string* out) {
  for (const auto& node : nodes) {
    LLMSYNC_ASSIGN_OR_RETURN(Flow flow, RenderNode(*node, scope, out));
    if (flow != Flow::kNormal) return flow;
  }
  return Flow::kNormal;
}

Result<Flow> Interpreter::RenderNode(const Node& node, const std::shared_ptr<Scope>& scope,
                                     std::string* out) {
  DepthScope depth(this);
  LLMSYNC_RETURN_IF_ERROR(AtLine(depth.GetStatus(), node.line));
  LLMSYNC_RETURN_IF_ERROR(AtLine(Step(), node.line));
  switch (node.kind) {
    case NodeKind::kText: LLMSYNC_RETURN_IF_ERROR(AtLine(Output(out, node.text), node.line)); break;
    case NodeKind::kOutput: {
      LLMSYNC_ASSIGN_OR_RETURN(Value v, Eval(*node.expr, scope));
      LLMSYNC_RETURN_IF_ERROR(AtLine(Output(out, PyStr(v)), node.line));
      break;
    }
    case NodeKind::kIf: return RenderIf(node, scope, out);
    case NodeKind::kFor: return RenderFor(node, scope, out);
    case NodeKind::kSet:
    case NodeKind::kSetBlock: LLMSYNC_RETURN_IF_ERROR(AtLine(RenderSet(node, scope), node.line)); break;
    case NodeKind::kMacro:
      scope->vars[node.name] = Value::FromCallable(std::make_shared<MacroCallable>(&node, scope));
      break;
    case NodeKind::kCallBlock:
      LLMSYNC_RETURN_IF_ERROR(AtLine(RenderCallBlock(node, scope, out), node.line));
      break;
    case NodeKind::kFilterBlock: {
      std::string body;
      LLMSYNC_RETURN_IF_ERROR(RenderNodes(node.body, scope, &body).GetStatus());
      LLMSYNC_ASSIGN_OR_RETURN(Value input, MakeString(std::move(body)));
      LLMSYNC_ASSIGN_OR_RETURN(Value v, EvalFilterChain(*node.filter, scope, input));
      LLMSYNC_RETURN_IF_ERROR(AtLine(Output(out, PyStr(v)), node.line));
      break;
    }
    case NodeKind::kWith: LLMSYNC_RETURN_IF_ERROR(AtLine(RenderWith(node, scope, out), node.line)); break;
    case NodeKind::kScope: return RenderNodes(node.body, scope, out);
    case NodeKind::kBreak: return Flow::kBreak;
    case NodeKind::kContinue: return Flow::kContinue;
  }
  return Flow::kNormal;
}

Result<Flow> Interpreter::RenderIf(const Node& node, const std::shared_ptr<Scope>& scope, std::string* out) {
  for (const Branch& branch : node.branches) {
    LLMSYNC_ASSIGN_OR_RETURN(Value test, Eval(*branch.test, scope));
    if (Truthy(test)) return RenderNodes(branch.body, scope, out);
  }
  return RenderNodes(node.else_body, scope, out);
}

Result<Flow> Interpreter::RenderFor(const Node& node, const std::shared_ptr<Scope>& scope, std::string* out) {
  LLMSYNC_ASSIGN_OR_RETURN(Value iterable, Eval(*node.expr, scope));
  Result<ValueList> all = Iterate(iterable);
  if (!all.IsOk()) return AtLine(all.GetStatus(), node.line);
  ValueList items;
  if (!node.condition) {
    items = std::move(all).Value();
  } else {
    // The inline filter sees the loop variable but not `loop`.
    for (Value& item : *all) {
      LLMSYNC_RETURN_IF_ERROR(AtLine(Step(), node.line));
      auto frame = ChildScope(scope);
      LLMSYNC_RETURN_IF_ERROR(AtLine(Assign(node.target, item, *frame, node.line), node.line));
      LLMSYNC_ASSIGN_OR_RETURN(Value keep, Eval(*node.condition, frame));
      if (Truthy(keep)) items.push_back(std::move(item));
    }
  }
  if (items.empty()) {
    auto frame = ChildScope(scope);
    LLMSYNC_RETURN_IF_ERROR(RenderNodes(node.else_body, frame, out).GetStatus());
    return Flow::kNormal;
  }
  std::int64_t n = static_cast<std::int64_t>(items.size());
  for (std::int64_t i = 0; i < n; ++i) {
    LLMSYNC_RETURN_IF_ERROR(AtLine(Step(), node.line));
    auto frame = ChildScope(scope);
    LLMSYNC_RETURN_IF_ERROR(AtLine(Assign(node.target, items[i], *frame, node.line), node.line));
    frame->vars["loop"] = MakeLoopObject(items, i);
    LLMSYNC_ASSIGN_OR_RETURN(Flow flow, RenderNodes(node.body, frame, out));
    if (flow == Flow::kBreak) break;
  }
  return Flow::kNormal;
}

Status Interpreter::Assign(const Target& target, const Value& value, Scope& scope, int line) {
  if (!target.attribute.empty()) {
    const Value* ns = scope.Lookup(target.names[0]);
    if (ns == nullptr || !ns->IsObject() || !ns->AsObject().assignable) {
      return Status::InvalidArgument("cannot assign attribute on non-namespace object");
    }
    if (ContainsObject(value)) {
      return Status::Unimplemented("storing a namespace or loop object inside a namespace");
    }
    ns->AsObject().attrs.Set(Value::String(target.attribute), value);
    return Status::Ok();
  }
  if (!target.is_tuple) {
    scope.vars[target.names[0]] = value;
    return Status::Ok();
  }
  LLMSYNC_ASSIGN_OR_RETURN(ValueList parts, Iterate(value));
  LLMSYNC_RETURN_IF_ERROR(AtLine(Unpack(parts, target.names.size()), line));
  for (std::size_t i = 0; i < parts.size(); ++i) scope.vars[target.names[i]] = parts[i];
  return Status::Ok();
}

Status Interpreter::RenderSet(const Node& node, const std::shared_ptr<Scope>& scope) {
  Value value;
  if (node.kind == NodeKind::kSet) {
    LLMSYNC_ASSIGN_OR_RETURN(value, Eval(*node.expr, scope));
  } else {
    std::string body;
    LLMSYNC_RETURN_IF_ERROR(RenderNodes(node.body, scope, &body).GetStatus());
    LLMSYNC_ASSIGN_OR_RETURN(value, MakeString(std::move(body)));
    if (node.filter) {
      LLMSYNC_ASSIGN_OR_RETURN(value, EvalFilterChain(*node.filter, scope, value));
    }
  }
  return Assign(node.target, value, *scope, node.line);
}

Status Interpreter::RenderCallBlock(const Node& node, const std::shared_ptr<Scope>& scope, std::string* out) {
  const Expr& call = *node.expr;
  LLMSYNC_ASSIGN_OR_RETURN(Value callee, Eval(*call.a, scope));
  LLMSYNC_ASSIGN_OR_RETURN(CallArgs args, EvalArgs(call, scope));
  args.keywords.emplace_back("caller", Value::FromCallable(std::make_shared<CallerCallable>(&node, scope)));
  LLMSYNC_ASSIGN_OR_RETURN(Value v, CallValue(callee, std::move(args)));
  return Output(out, PyStr(v));
}

Status Interpreter::RenderWith(const Node& node, const std::shared_ptr<Scope>& scope, std::string* out) {
  auto frame = ChildScope(scope);
  for (const auto& [target, expr] : node.assignments) {
    LLMSYNC_ASSIGN_OR_RETURN(Value v, Eval(*expr, scope));
    LLMSYNC_RETURN_IF_ERROR(Assign(target, v, *frame, node.line));
  }
  return RenderNodes(node.body, frame, out).GetStatus();
}

Result<Value> Interpreter::CallMacro(const Node& macro, const std::shared_ptr<Scope>& closure,
                                     CallArgs args) {
  DepthScope depth(this);
  LLMSYNC_RETURN_IF_ERROR(AtLine(depth.GetStatus(), macro.line));
  auto frame = ChildScope(closure);
  const std::vector<Param>& params = macro.params;
  ValueList varargs;
  for (std::size_t i = 0; i < args.positional.size(); ++i) {
    if (i < params.size()) {
      frame->vars[params[i].name] = std::move(args.positional[i]);
    } else if (macro.catch_varargs) {
      varargs.push_back(std::move(args.positional[i]));
    } else {
      return Status::InvalidArgument("macro '" + macro.name + "' takes not more than " +
                                     std::to_string(params.size()) + " argument(s)");
    }
  }
  ValueDict kwargs;
  for (auto& [key, value] : args.keywords) {
    std::size_t index = 0;
    while (index < params.size() && params[index].name != key) ++index;
    if (index < params.size()) {
      if (index < args.positional.size()) {
        return Status::InvalidArgument("macro '" + macro.name + "' got multiple values for argument '" + key +
                                       "'");
      }
      frame->vars[key] = std::move(value);
    } else if (key == "caller") {
      frame->vars["caller"] = std::move(value);
    } else if (macro.catch_kwargs) {
      kwargs.Set(Value::String(key), std::move(value));
    } else {
      return Status::InvalidArgument("macro '" + macro.name + "' takes no keyword argument '" + key + "'");
    }
  }
  for (const Param& param : params) {
    if (frame->vars.count(param.name) != 0) continue;
    if (param.default_value) {
      LLMSYNC_ASSIGN_OR_RETURN(Value v, Eval(*param.default_value, frame));
      frame->vars[param.name] = std::move(v);
    } else {
      frame->vars[param.name] = Value::Undefined("parameter '" + param.name + "' was not provided");
    }
  }
  frame->vars["varargs"] = Value::List(std::move(varargs), ListFlavor::kTuple);
  frame->vars["kwargs"] = Value::Dict(std::move(kwargs));
  std::string out;
  LLMSYNC_RETURN_IF_ERROR(RenderNodes(macro.body, frame, &out).GetStatus());
  return Value::String(std::move(out));
}

Result<Value> Interpreter::CallCaller(const Node& call_block, const std::shared_ptr<Scope>& scope,
                                      CallArgs args) {
  DepthScope depth(this);
  LLMSYNC_RETURN_IF_ERROR(AtLine(depth.GetStatus(), call_block.line));
  auto frame = ChildScope(scope);
  const std::vector<Param>& params = call_block.params;
  if (args.positional.size() > params.size()) {
    return Status::InvalidArgument("caller takes not more than " + std::to_string(params.size()) +
                                   " argument(s)");
  }
  for (std::size_t i = 0; i < args.positional.size(); ++i) frame->vars[params[i].name] = args.positional[i];
  for (auto& [key, value] : args.keywords) frame->vars[key] = std::move(value);
  for (const Param& param : params) {
    if (frame->vars.count(param.name) != 0) continue;
    if (param.default_value) {
      LLMSYNC_ASSIGN_OR_RETURN(Value v, Eval(*param.default_value, frame));
      frame->vars[param.name] = std::move(v);
    } else {
      frame->vars[param.name] = Value::Undefined("parameter '" + param.name + "' was not provided");
    }
  }
  std::string out;
  LLMSYNC_RETURN_IF_ERROR(RenderNodes(call_block.body, frame, &out).GetStatus());
  return Value::String(std::move(out));
}

}  // namespace llmsync::text::jinja
