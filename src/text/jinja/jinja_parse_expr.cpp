// Expression parsing, following jinja2/parser.py's precedence from the conditional expression
// down to primaries, postfix subscripts and calls, filters and tests.
#include <algorithm>
#include <string>

#include "text/jinja/jinja_parser.h"
#include "text/jinja/jinja_parser_internal.h"

namespace llmsync::text::jinja {
namespace {

#define PARSER_GUARD()          \
  DepthGuard depth_guard(this); \
  if (!depth_guard.GetStatus().IsOk()) return depth_guard.GetStatus()

Result<std::unique_ptr<Expr>> Binary(ExprKind kind, std::string op, std::unique_ptr<Expr> a,
                                     std::unique_ptr<Expr> b, int line) {
  auto e = MakeExpr(kind, line);
  e->name = std::move(op);
  e->a = std::move(a);
  e->b = std::move(b);
  LLMSYNC_RETURN_IF_ERROR(SealExpr(e.get()));
  return e;
}

bool IsCompareOp(const Token& t) {
  if (t.kind != TokenKind::kOperator) return false;
  return t.value == "==" || t.value == "!=" || t.value == "<" || t.value == "<=" || t.value == ">" ||
         t.value == ">=";
}

}  // namespace

std::unique_ptr<Expr> MakeExpr(ExprKind kind, int line) {
  auto e = std::make_unique<Expr>();
  e->kind = kind;
  e->line = line;
  return e;
}

Status SealExpr(Expr* e) {
  int tallest = 0;
  auto visit = [&](const std::unique_ptr<Expr>& child) {
    if (child) tallest = std::max(tallest, child->height);
  };
  visit(e->a);
  visit(e->b);
  visit(e->c);
  for (const auto& item : e->items) visit(item);
  for (const auto& kw : e->kwargs) visit(kw.second);
  e->height = tallest + 1;
  if (e->height > kMaxExprHeight) {
    return Status::ResourceExhausted("template expression is too deeply nested or too long (line " +
                                     std::to_string(e->line) + ")");
  }
  return Status::Ok();
}

Result<std::unique_ptr<Expr>> Parser::ParseExpression(bool with_condexpr) {
  PARSER_GUARD();
  return with_condexpr ? ParseCondExpr() : ParseOr();
}

Result<std::unique_ptr<Expr>> Parser::ParseCondExpr() {
  PARSER_GUARD();
  int line = Current().line;
  LLMSYNC_ASSIGN_OR_RETURN(auto expr1, ParseOr());
  while (SkipName("if")) {
    LLMSYNC_ASSIGN_OR_RETURN(auto expr2, ParseOr());
    std::unique_ptr<Expr> expr3;
    if (SkipName("else")) {
      LLMSYNC_ASSIGN_OR_RETURN(expr3, ParseCondExpr());
    }
    auto cond = MakeExpr(ExprKind::kCondition, line);
    cond->a = std::move(expr1);
    cond->b = std::move(expr2);
    cond->c = std::move(expr3);
    LLMSYNC_RETURN_IF_ERROR(SealExpr(cond.get()));
    expr1 = std::move(cond);
  }
  return expr1;
}

Result<std::unique_ptr<Expr>> Parser::ParseOr() {
  int line = Current().line;
  LLMSYNC_ASSIGN_OR_RETURN(auto left, ParseAnd());
  while (SkipName("or")) {
    LLMSYNC_ASSIGN_OR_RETURN(auto right, ParseAnd());
    LLMSYNC_ASSIGN_OR_RETURN(left, Binary(ExprKind::kOr, "or", std::move(left), std::move(right), line));
  }
  return left;
}

Result<std::unique_ptr<Expr>> Parser::ParseAnd() {
  int line = Current().line;
  LLMSYNC_ASSIGN_OR_RETURN(auto left, ParseNot());
  while (SkipName("and")) {
    LLMSYNC_ASSIGN_OR_RETURN(auto right, ParseNot());
    LLMSYNC_ASSIGN_OR_RETURN(left, Binary(ExprKind::kAnd, "and", std::move(left), std::move(right), line));
  }
  return left;
}

Result<std::unique_ptr<Expr>> Parser::ParseNot() {
  PARSER_GUARD();
  if (IsName("not")) {
    int line = Current().line;
    Next();
    LLMSYNC_ASSIGN_OR_RETURN(auto operand, ParseNot());
    auto e = MakeExpr(ExprKind::kNot, line);
    e->a = std::move(operand);
    LLMSYNC_RETURN_IF_ERROR(SealExpr(e.get()));
    return e;
  }
  return ParseCompare();
}

Result<std::unique_ptr<Expr>> Parser::ParseCompare() {
  int line = Current().line;
  LLMSYNC_ASSIGN_OR_RETURN(auto expr, ParseMath1());
  std::unique_ptr<Expr> cmp;
  while (true) {
    std::string op;
    if (IsCompareOp(Current())) {
      op = Current().value;
      Next();
    } else if (SkipName("in")) {
      op = "in";
    } else if (IsName("not") && Look().kind == TokenKind::kName && Look().value == "in") {
      Next();
      Next();
      op = "notin";
    } else {
      break;
    }
    if (!cmp) {
      cmp = MakeExpr(ExprKind::kCompare, line);
      cmp->a = std::move(expr);
    }
    LLMSYNC_ASSIGN_OR_RETURN(auto operand, ParseMath1());
    cmp->compare_ops.push_back(op);
    cmp->items.push_back(std::move(operand));
  }
  if (!cmp) return expr;
  LLMSYNC_RETURN_IF_ERROR(SealExpr(cmp.get()));
  return cmp;
}

Result<std::unique_ptr<Expr>> Parser::ParseMath1() {
  int line = Current().line;
  LLMSYNC_ASSIGN_OR_RETURN(auto left, ParseConcat());
  while (IsOp("+") || IsOp("-")) {
    std::string op = Current().value;
    Next();
    LLMSYNC_ASSIGN_OR_RETURN(auto right, ParseConcat());
    LLMSYNC_ASSIGN_OR_RETURN(left, Binary(ExprKind::kBinary, op, std::move(left), std::move(right), line));
  }
  return left;
}

Result<std::unique_ptr<Expr>> Parser::ParseConcat() {
  int line = Current().line;
  LLMSYNC_ASSIGN_OR_RETURN(auto left, ParseMath2());
  while (SkipOp("~")) {
    LLMSYNC_ASSIGN_OR_RETURN(auto right, ParseMath2());
    LLMSYNC_ASSIGN_OR_RETURN(left, Binary(ExprKind::kBinary, "~", std::move(left), std::move(right), line));
  }
  return left;
}

Result<std::unique_ptr<Expr>> Parser::ParseMath2() {
  int line = Current().line;
  LLMSYNC_ASSIGN_OR_RETURN(auto left, ParsePow());
  while (IsOp("*") || IsOp("/") || IsOp("//") || IsOp("%")) {
    std::string op = Current().value;
    Next();
    LLMSYNC_ASSIGN_OR_RETURN(auto right, ParsePow());
    LLMSYNC_ASSIGN_OR_RETURN(left, Binary(ExprKind::kBinary, op, std::move(left), std::move(right), line));
  }
  return left;
}

Result<std::unique_ptr<Expr>> Parser::ParsePow() {
  int line = Current().line;
  LLMSYNC_ASSIGN_OR_RETURN(auto left, ParseUnary(true));
  while (SkipOp("**")) {
    LLMSYNC_ASSIGN_OR_RETURN(auto right, ParseUnary(true));
    LLMSYNC_ASSIGN_OR_RETURN(left, Binary(ExprKind::kBinary, "**", std::move(left), std::move(right), line));
  }
  return left;
}

Result<std::unique_ptr<Expr>> Parser::ParseUnary(bool with_filter) {
  PARSER_GUARD();
  int line = Current().line;
  std::unique_ptr<Expr> node;
  if (IsOp("-") || IsOp("+")) {
    ExprKind kind = IsOp("-") ? ExprKind::kNeg : ExprKind::kPos;
    Next();
    LLMSYNC_ASSIGN_OR_RETURN(auto operand, ParseUnary(false));
    node = MakeExpr(kind, line);
    node->a = std::move(operand);
    LLMSYNC_RETURN_IF_ERROR(SealExpr(node.get()));
  } else {
    LLMSYNC_ASSIGN_OR_RETURN(node, ParsePrimary());
  }
  LLMSYNC_ASSIGN_OR_RETURN(node, ParsePostfix(std::move(node)));
  if (with_filter) {
    LLMSYNC_ASSIGN_OR_RETURN(node, ParseFilterExpr(std::move(node)));
  }
  return node;
}

Result<std::unique_ptr<Expr>> Parser::ParsePrimary() {
  const Token& t = Current();
  int line = t.line;
  if (t.kind == TokenKind::kName) {
    auto e = MakeExpr(ExprKind::kLiteral, line);
    if (t.value == "true" || t.value == "True") {
      e->literal = Value::Bool(true);
    } else if (t.value == "false" || t.value == "False") {
      e->literal = Value::Bool(false);
    } else if (t.value == "none" || t.value == "None") {
      e->literal = Value::None();
    } else {
      e->kind = ExprKind::kName;
      e->name = t.value;
    }
    Next();
    return e;
  }
  if (t.kind == TokenKind::kString) {
    std::string s;
    while (Current().kind == TokenKind::kString) {
      s += Current().value;
      Next();
    }
    auto e = MakeExpr(ExprKind::kLiteral, line);
    e->literal = Value::String(std::move(s));
    return e;
  }
  if (t.kind == TokenKind::kInteger || t.kind == TokenKind::kFloat) {
    auto e = MakeExpr(ExprKind::kLiteral, line);
    e->literal = t.kind == TokenKind::kInteger ? Value::Int(t.int_value) : Value::Float(t.float_value);
    Next();
    return e;
  }
  if (IsOp("(")) {
    Next();
    LLMSYNC_ASSIGN_OR_RETURN(auto e, ParseTuple(false, true, {}, true));
    LLMSYNC_RETURN_IF_ERROR(ExpectOp(")"));
    return e;
  }
  if (IsOp("[")) return ParseList();
  if (IsOp("{")) return ParseDict();
  return Fail("unexpected " + Describe(t));
}

Result<std::unique_ptr<Expr>> Parser::ParseTuple(bool simplified, bool with_condexpr,
                                                 std::initializer_list<std::string_view> extra_end,
                                                 bool explicit_parentheses) {
  int line = Current().line;
  auto tuple = MakeExpr(ExprKind::kTuple, line);
  bool is_tuple = false;
  auto at_end = [&] {
    const Token& t = Current();
    if (t.kind == TokenKind::kVariableEnd || t.kind == TokenKind::kBlockEnd || IsOp(")")) return true;
    for (std::string_view name : extra_end) {
      if (IsName(name)) return true;
    }
    return false;
  };
  while (true) {
    if (!tuple->items.empty()) LLMSYNC_RETURN_IF_ERROR(ExpectOp(","));
    if (at_end()) break;
    std::unique_ptr<Expr> item;
    if (simplified) {
      LLMSYNC_ASSIGN_OR_RETURN(item, ParsePrimary());
    } else {
      LLMSYNC_ASSIGN_OR_RETURN(item, ParseExpression(with_condexpr));
    }
    tuple->items.push_back(std::move(item));
    if (IsOp(",")) {
      is_tuple = true;
    } else {
      break;
    }
  }
  if (!is_tuple) {
    if (!tuple->items.empty()) return std::move(tuple->items[0]);
    if (!explicit_parentheses) return Fail("expected an expression, got " + Describe(Current()));
  }
  LLMSYNC_RETURN_IF_ERROR(SealExpr(tuple.get()));
  return tuple;
}

Result<std::unique_ptr<Expr>> Parser::ParseList() {
  auto list = MakeExpr(ExprKind::kList, Current().line);
  LLMSYNC_RETURN_IF_ERROR(ExpectOp("["));
  while (!IsOp("]")) {
    if (!list->items.empty()) LLMSYNC_RETURN_IF_ERROR(ExpectOp(","));
    if (IsOp("]")) break;
    LLMSYNC_ASSIGN_OR_RETURN(auto item, ParseExpression());
    list->items.push_back(std::move(item));
  }
  LLMSYNC_RETURN_IF_ERROR(ExpectOp("]"));
  LLMSYNC_RETURN_IF_ERROR(SealExpr(list.get()));
  return list;
}

Result<std::unique_ptr<Expr>> Parser::ParseDict() {
  auto dict = MakeExpr(ExprKind::kDict, Current().line);
  LLMSYNC_RETURN_IF_ERROR(ExpectOp("{"));
  while (!IsOp("}")) {
    if (!dict->items.empty()) LLMSYNC_RETURN_IF_ERROR(ExpectOp(","));
    if (IsOp("}")) break;
    LLMSYNC_ASSIGN_OR_RETURN(auto key, ParseExpression());
    LLMSYNC_RETURN_IF_ERROR(ExpectOp(":"));
    LLMSYNC_ASSIGN_OR_RETURN(auto value, ParseExpression());
    dict->items.push_back(std::move(key));
    dict->items.push_back(std::move(value));
  }
  LLMSYNC_RETURN_IF_ERROR(ExpectOp("}"));
  LLMSYNC_RETURN_IF_ERROR(SealExpr(dict.get()));
  return dict;
}

Result<std::unique_ptr<Expr>> Parser::ParsePostfix(std::unique_ptr<Expr> node) {
  while (true) {
    if (IsOp(".") || IsOp("[")) {
      LLMSYNC_ASSIGN_OR_RETURN(node, ParseSubscript(std::move(node)));
    } else if (IsOp("(")) {
      auto call = MakeExpr(ExprKind::kCall, Current().line);
      call->a = std::move(node);
      LLMSYNC_RETURN_IF_ERROR(ParseCallArgs(call.get()));
      LLMSYNC_RETURN_IF_ERROR(SealExpr(call.get()));
      node = std::move(call);
    } else {
      return node;
    }
  }
}

Result<std::unique_ptr<Expr>> Parser::ParseFilterExpr(std::unique_ptr<Expr> node) {
  while (true) {
    if (IsOp("|")) {
      LLMSYNC_ASSIGN_OR_RETURN(node, ParseFilter(std::move(node), false));
    } else if (IsName("is")) {
      LLMSYNC_ASSIGN_OR_RETURN(node, ParseTest(std::move(node)));
    } else if (IsOp("(")) {
      auto call = MakeExpr(ExprKind::kCall, Current().line);
      call->a = std::move(node);
      LLMSYNC_RETURN_IF_ERROR(ParseCallArgs(call.get()));
      LLMSYNC_RETURN_IF_ERROR(SealExpr(call.get()));
      node = std::move(call);
    } else {
      return node;
    }
  }
}

Result<std::unique_ptr<Expr>> Parser::ParseSubscript(std::unique_ptr<Expr> node) {
  int line = Current().line;
  if (SkipOp(".")) {
    const Token& attr = Current();
    if (attr.kind == TokenKind::kName) {
      auto e = MakeExpr(ExprKind::kGetAttr, line);
      e->a = std::move(node);
      e->name = attr.value;
      Next();
      LLMSYNC_RETURN_IF_ERROR(SealExpr(e.get()));
      return e;
    }
    if (attr.kind == TokenKind::kInteger) {
      auto e = MakeExpr(ExprKind::kGetItem, line);
      e->a = std::move(node);
      e->b = MakeExpr(ExprKind::kLiteral, line);
      e->b->literal = Value::Int(attr.int_value);
      Next();
      LLMSYNC_RETURN_IF_ERROR(SealExpr(e.get()));
      return e;
    }
    return Fail("expected name or number");
  }
  LLMSYNC_RETURN_IF_ERROR(ExpectOp("["));
  std::vector<std::unique_ptr<Expr>> args;
  while (!IsOp("]")) {
    if (!args.empty()) LLMSYNC_RETURN_IF_ERROR(ExpectOp(","));
    LLMSYNC_ASSIGN_OR_RETURN(auto arg, ParseSubscribed());
    args.push_back(std::move(arg));
  }
  LLMSYNC_RETURN_IF_ERROR(ExpectOp("]"));
  if (args.empty()) return Fail("expected an expression in the subscript", line);
  auto e = MakeExpr(ExprKind::kGetItem, line);
  e->a = std::move(node);
  if (args.size() == 1) {
    if (args[0]->kind == ExprKind::kSlice) {
      args[0]->a = std::move(e->a);
      LLMSYNC_RETURN_IF_ERROR(SealExpr(args[0].get()));
      return std::move(args[0]);
    }
    e->b = std::move(args[0]);
  } else {
    for (const auto& arg : args) {
      if (arg->kind == ExprKind::kSlice) return Unsupported("slices inside multi-part subscripts", line);
    }
    e->b = MakeExpr(ExprKind::kTuple, line);
    e->b->items = std::move(args);
    LLMSYNC_RETURN_IF_ERROR(SealExpr(e->b.get()));
  }
  LLMSYNC_RETURN_IF_ERROR(SealExpr(e.get()));
  return e;
}

// A subscript argument: an expression or a slice. A slice is returned as kSlice with its bounds
// in items[0..2] (null when absent); the caller fills in the sliced object.
Result<std::unique_ptr<Expr>> Parser::ParseSubscribed() {
  int line = Current().line;
  auto slice = MakeExpr(ExprKind::kSlice, line);
  slice->items.resize(3);
  if (!SkipOp(":")) {
    LLMSYNC_ASSIGN_OR_RETURN(auto start, ParseExpression());
    if (!SkipOp(":")) return start;
    slice->items[0] = std::move(start);
  }
  if (!IsOp(":") && !IsOp("]") && !IsOp(",")) {
    LLMSYNC_ASSIGN_OR_RETURN(slice->items[1], ParseExpression());
  }
  if (SkipOp(":")) {
    if (!IsOp("]") && !IsOp(",")) {
      LLMSYNC_ASSIGN_OR_RETURN(slice->items[2], ParseExpression());
    }
  }
  return slice;
}

Status Parser::ParseCallArgs(Expr* call) {
  LLMSYNC_RETURN_IF_ERROR(ExpectOp("("));
  bool require_comma = false;
  while (!IsOp(")")) {
    if (require_comma) {
      LLMSYNC_RETURN_IF_ERROR(ExpectOp(","));
      if (IsOp(")")) break;
    }
    if (IsOp("*") || IsOp("**")) return Unsupported("*args/**kwargs in a call", Current().line);
    if (Current().kind == TokenKind::kName && Look().kind == TokenKind::kOperator && Look().value == "=") {
      std::string key = Current().value;
      Next();
      Next();
      LLMSYNC_ASSIGN_OR_RETURN(auto value, ParseExpression());
      call->kwargs.emplace_back(std::move(key), std::move(value));
    } else {
      if (!call->kwargs.empty()) return Fail("invalid syntax for function call expression");
      LLMSYNC_ASSIGN_OR_RETURN(auto arg, ParseExpression());
      call->items.push_back(std::move(arg));
    }
    require_comma = true;
  }
  return ExpectOp(")");
}

Result<std::unique_ptr<Expr>> Parser::ParseFilter(std::unique_ptr<Expr> node, bool start_inline) {
  while (IsOp("|") || start_inline) {
    if (!start_inline) Next();
    start_inline = false;
    int line = Current().line;
    LLMSYNC_ASSIGN_OR_RETURN(std::string name, ExpectName());
    while (SkipOp(".")) {
      LLMSYNC_ASSIGN_OR_RETURN(std::string part, ExpectName());
      name += "." + part;
    }
    auto filter = MakeExpr(ExprKind::kFilter, line);
    filter->name = std::move(name);
    filter->a = std::move(node);
    if (IsOp("(")) LLMSYNC_RETURN_IF_ERROR(ParseCallArgs(filter.get()));
    LLMSYNC_RETURN_IF_ERROR(SealExpr(filter.get()));
    node = std::move(filter);
  }
  return node;
}

Result<std::unique_ptr<Expr>> Parser::ParseTest(std::unique_ptr<Expr> node) {
  int line = Current().line;
  Next();  // "is"
  bool negated = SkipName("not");
  LLMSYNC_ASSIGN_OR_RETURN(std::string name, ExpectName());
  while (SkipOp(".")) {
    LLMSYNC_ASSIGN_OR_RETURN(std::string part, ExpectName());
    name += "." + part;
  }
  auto test = MakeExpr(ExprKind::kTest, line);
  test->name = std::move(name);
  test->a = std::move(node);
  const Token& t = Current();
  if (IsOp("(")) {
    LLMSYNC_RETURN_IF_ERROR(ParseCallArgs(test.get()));
  } else if ((t.kind == TokenKind::kName || t.kind == TokenKind::kString || t.kind == TokenKind::kInteger ||
              t.kind == TokenKind::kFloat || IsOp("[") || IsOp("{")) &&
             !IsName("else") && !IsName("or") && !IsName("and")) {
    if (IsName("is")) return Fail("You cannot chain multiple tests with is");
    LLMSYNC_ASSIGN_OR_RETURN(auto arg, ParsePrimary());
    LLMSYNC_ASSIGN_OR_RETURN(arg, ParsePostfix(std::move(arg)));
    test->items.push_back(std::move(arg));
  }
  LLMSYNC_RETURN_IF_ERROR(SealExpr(test.get()));
  if (!negated) return test;
  auto not_expr = MakeExpr(ExprKind::kNot, line);
  not_expr->a = std::move(test);
  LLMSYNC_RETURN_IF_ERROR(SealExpr(not_expr.get()));
  return not_expr;
}

}  // namespace llmsync::text::jinja
