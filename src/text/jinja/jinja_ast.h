// The syntax tree of a parsed Jinja template: expressions (Expr) and statements (Node).
//
// The parser builds it once; the interpreter walks it for every render without changing it.
// Every node carries the source line it came from, for error messages.
//
// Thread safety: immutable after parsing; a tree may be rendered from several threads at once.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "text/jinja/jinja_value.h"

namespace llmsync::text::jinja {

enum class ExprKind {
  kLiteral,   // literal
  kName,      // name
  kList,      // items
  kTuple,     // items
  kDict,      // items: key, value, key, value, ...
  kGetAttr,   // a.name (a[name] when name is an integer literal is kGetItem)
  kGetItem,   // a[b]
  kSlice,     // a[b:c:d]; absent parts are null
  kCall,      // a(args, kwargs)
  kFilter,    // a|name(args, kwargs); a is null inside {% filter %} blocks
  kTest,      // a is name(args, kwargs)
  kNot,       // not a
  kNeg,       // -a
  kPos,       // +a
  kBinary,    // a op b: + - * / // % ** ~
  kAnd,       // a and b
  kOr,        // a or b
  kCompare,   // a op1 items[0] op2 items[1] ... (ops in compare_ops)
  kCondition  // a if b else c (c may be null)
};

struct Expr {
  ExprKind kind = ExprKind::kLiteral;
  int line = 0;
  int height = 1;  // 1 + the tallest child; bounded by the parser (kMaxExprHeight)
  Value literal;
  std::string name;  // name, attribute, filter or test name, binary operator
  std::unique_ptr<Expr> a;
  std::unique_ptr<Expr> b;
  std::unique_ptr<Expr> c;
  std::vector<std::unique_ptr<Expr>> items;  // elements or positional arguments
  std::vector<std::pair<std::string, std::unique_ptr<Expr>>> kwargs;
  std::vector<std::string> compare_ops;  // "==", "!=", "<", "<=", ">", ">=", "in", "notin"
};

enum class NodeKind {
  kText,         // text
  kOutput,       // {{ expr }}
  kIf,           // if/elif branches, else: else_body
  kFor,          // for target in expr [if condition]: body, else: else_body
  kSet,          // set target = expr
  kSetBlock,     // set target [| filter] %}body{% endset
  kMacro,        // macro name(params) body
  kCallBlock,    // call(params) expr %}body{% endcall
  kFilterBlock,  // filter expr %}body{% endfilter
  kWith,         // with assignments: body
  kScope,        // a body rendered in place (generation blocks)
  kBreak,
  kContinue,
};

struct Param {
  std::string name;
  std::unique_ptr<Expr> default_value;  // null when required
};

// An assignment target: a name, a namespace attribute (ns.attr) or a tuple of names.
struct Target {
  std::vector<std::string> names;  // one name, or several for tuple unpacking
  bool is_tuple = false;
  std::string attribute;  // non-empty for ns.attr: names[0] is the namespace variable
};

struct Node;

// One `if` or `elif` test and the statements it guards.
struct Branch {
  std::unique_ptr<Expr> test;
  std::vector<std::unique_ptr<Node>> body;
};

struct Node {
  NodeKind kind = NodeKind::kText;
  int line = 0;
  std::string text;
  std::unique_ptr<Expr> expr;
  std::unique_ptr<Expr> condition;  // for-loop filter
  std::unique_ptr<Expr> filter;     // set-block filter, filter block: a kFilter chain on null
  Target target;
  std::vector<std::pair<Target, std::unique_ptr<Expr>>> assignments;  // with
  std::string name;                                                   // macro name
  std::vector<Param> params;                                          // macro or call-block params
  bool catch_varargs = false;                                         // macro body uses `varargs`
  bool catch_kwargs = false;                                          // macro body uses `kwargs`
  bool uses_caller = false;                                           // macro body uses `caller`
  std::vector<Branch> branches;                                       // if
  std::vector<std::unique_ptr<Node>> body;
  std::vector<std::unique_ptr<Node>> else_body;
};

using NodeList = std::vector<std::unique_ptr<Node>>;

}  // namespace llmsync::text::jinja
