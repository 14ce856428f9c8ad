// Statement parsing and the parser's token helpers.
#include "text/jinja/jinja_parser.h"

#include <functional>

#include "text/jinja/jinja_parser_internal.h"

namespace llmsync::text::jinja {
namespace {

#define PARSER_GUARD()          \
  DepthGuard depth_guard(this); \
  if (!depth_guard.GetStatus().IsOk()) return depth_guard.GetStatus()

bool OneOf(std::string_view name, std::initializer_list<std::string_view> names) {
  for (std::string_view n : names) {
    if (n == name) return true;
  }
  return false;
}

void ScanNames(const Expr* e, const std::function<void(const std::string&)>& visit) {
  if (e == nullptr) return;
  if (e->kind == ExprKind::kName) visit(e->name);
  ScanNames(e->a.get(), visit);
  ScanNames(e->b.get(), visit);
  ScanNames(e->c.get(), visit);
  for (const auto& item : e->items) ScanNames(item.get(), visit);
  for (const auto& kw : e->kwargs) ScanNames(kw.second.get(), visit);
}

// Which of the special names varargs/kwargs/caller a macro body refers to.
void ScanBody(const NodeList& body, const std::function<void(const std::string&)>& visit) {
  for (const auto& node : body) {
    ScanNames(node->expr.get(), visit);
    ScanNames(node->condition.get(), visit);
    ScanNames(node->filter.get(), visit);
    for (const auto& assignment : node->assignments) ScanNames(assignment.second.get(), visit);
    for (const auto& param : node->params) ScanNames(param.default_value.get(), visit);
    for (const auto& branch : node->branches) {
      ScanNames(branch.test.get(), visit);
      ScanBody(branch.body, visit);
    }
    ScanBody(node->body, visit);
    ScanBody(node->else_body, visit);
  }
}

}  // namespace

Status Parser::Enter() {
  if (++depth_ > kMaxParseDepth) {
    return Status::ResourceExhausted("template nests too deeply (more than " +
                                     std::to_string(kMaxParseDepth) + " levels) at line " +
                                     std::to_string(Current().line));
  }
  return Status::Ok();
}

std::string Parser::Describe(const Token& t) const {
  switch (t.kind) {
    case TokenKind::kText: return "template text";
    case TokenKind::kVariableBegin: return "'{{'";
    case TokenKind::kVariableEnd: return "end of print statement";
    case TokenKind::kBlockBegin: return "'{%'";
    case TokenKind::kBlockEnd: return "end of statement block";
    case TokenKind::kName: return Quoted(t.value);
    case TokenKind::kString: return "string";
    case TokenKind::kInteger: return "integer";
    case TokenKind::kFloat: return "float";
    case TokenKind::kOperator: return Quoted(t.value);
    case TokenKind::kEnd: return "end of template";
  }
  return "token";
}

Status Parser::Fail(const std::string& message) const { return Fail(message, Current().line); }

Status Parser::Fail(const std::string& message, int line) const {
  return Status::InvalidArgument("template syntax error: " + message + " (line " + std::to_string(line) +
                                 ")");
}

Status Parser::Unsupported(const std::string& feature, int line) const {
  return Status::Unimplemented("unsupported template feature: " + feature + " (line " + std::to_string(line) +
                               ")");
}

Status Parser::ExpectOp(std::string_view op) {
  if (SkipOp(op)) return Status::Ok();
  return Fail("expected '" + std::string(op) + "', got " + Describe(Current()));
}

Result<std::string> Parser::ExpectName() {
  if (Current().kind != TokenKind::kName) return Fail("expected a name, got " + Describe(Current()));
  std::string name = Current().value;
  Next();
  return name;
}

Status Parser::ExpectBlockEnd() {
  if (Current().kind != TokenKind::kBlockEnd)
    return Fail("expected end of statement block, got " + Describe(Current()));
  Next();
  return Status::Ok();
}

Result<NodeList> Parser::ParseAll() {
  LLMSYNC_ASSIGN_OR_RETURN(NodeList body, Subparse({}));
  if (Current().kind != TokenKind::kEnd) return Fail("unexpected " + Describe(Current()));
  return body;
}

// Parses until end of input or a block tag whose name is one of end_names; in that case the
// stream is left on that name.
Result<NodeList> Parser::Subparse(std::initializer_list<std::string_view> end_names) {
  PARSER_GUARD();
  NodeList body;
  while (Current().kind != TokenKind::kEnd) {
    const Token& t = Current();
    if (t.kind == TokenKind::kText) {
      auto node = std::make_unique<Node>();
      node->kind = NodeKind::kText;
      node->line = t.line;
      node->text = t.value;
      body.push_back(std::move(node));
      Next();
    } else if (t.kind == TokenKind::kVariableBegin) {
      int line = t.line;
      Next();
      LLMSYNC_ASSIGN_OR_RETURN(auto expr, ParseTuple(false, true, {}, false));
      if (Current().kind != TokenKind::kVariableEnd)
        return Fail("expected end of print statement, got " + Describe(Current()));
      Next();
      auto node = std::make_unique<Node>();
      node->kind = NodeKind::kOutput;
      node->line = line;
      node->expr = std::move(expr);
      body.push_back(std::move(node));
    } else if (t.kind == TokenKind::kBlockBegin) {
      Next();
      if (Current().kind == TokenKind::kName && OneOf(Current().value, end_names)) return body;
      LLMSYNC_ASSIGN_OR_RETURN(auto node, ParseStatement());
      body.push_back(std::move(node));
    } else {
      return Fail("unexpected " + Describe(t));
    }
  }
  if (end_names.size() > 0) {
    std::string expected;
    for (std::string_view name : end_names)
      expected += (expected.empty() ? "'" : " or '") + std::string(name) + "'";
    return Fail("unexpected end of template, expected " + expected);
  }
  return body;
}

Result<std::string> Parser::ParseStatements(std::initializer_list<std::string_view> ends, NodeList* body,
                                            bool drop_needle) {
  LLMSYNC_RETURN_IF_ERROR(ExpectBlockEnd());
  LLMSYNC_ASSIGN_OR_RETURN(*body, Subparse(ends));
  std::string end = Current().value;
  Next();
  if (drop_needle) LLMSYNC_RETURN_IF_ERROR(ExpectBlockEnd());
  return end;
}

Result<std::unique_ptr<Node>> Parser::ParseStatement() {
  const Token& t = Current();
  int line = t.line;
  if (t.kind != TokenKind::kName) return Fail("tag name expected");
  std::string name = t.value;
  if (name == "for") return ParseFor(line);
  if (name == "if") return ParseIf(line);
  if (name == "set") return ParseSet(line);
  if (name == "macro") return ParseMacro(line);
  if (name == "call") return ParseCallBlock(line);
  if (name == "filter") return ParseFilterBlock(line);
  if (name == "with") return ParseWith(line);
  if (name == "generation") return ParseBodyOnly(line, "endgeneration");
  if (name == "break" || name == "continue") {
    Next();
    LLMSYNC_RETURN_IF_ERROR(ExpectBlockEnd());
    auto node = std::make_unique<Node>();
    node->kind = name == "break" ? NodeKind::kBreak : NodeKind::kContinue;
    node->line = line;
    return node;
  }
  if (name == "print") {
    Next();
    auto node = std::make_unique<Node>();
    node->kind = NodeKind::kOutput;
    node->line = line;
    LLMSYNC_ASSIGN_OR_RETURN(node->expr, ParseTuple(false, true, {}, false));
    LLMSYNC_RETURN_IF_ERROR(ExpectBlockEnd());
    return node;
  }
  if (OneOf(name, {"block", "extends", "include", "import", "from", "autoescape", "do"})) {
    return Unsupported("'{% " + name + " %}' statement", line);
  }
  if (OneOf(name, {"endfor", "endif", "else", "elif", "endset", "endmacro", "endcall", "endfilter", "endwith",
                   "endgeneration", "endraw"})) {
    return Fail("unexpected '" + name + "'");
  }
  return Fail("encountered unknown tag '" + name + "'");
}

Result<std::unique_ptr<Node>> Parser::ParseFor(int line) {
  Next();  // for
  auto node = std::make_unique<Node>();
  node->kind = NodeKind::kFor;
  node->line = line;
  LLMSYNC_ASSIGN_OR_RETURN(node->target, ParseAssignTarget(false, {"in"}));
  if (!SkipName("in")) return Fail("expected 'in', got " + Describe(Current()));
  LLMSYNC_ASSIGN_OR_RETURN(node->expr, ParseTuple(false, false, {"recursive"}, false));
  if (SkipName("if")) {
    LLMSYNC_ASSIGN_OR_RETURN(node->condition, ParseExpression());
  }
  if (IsName("recursive")) return Unsupported("recursive for loops", line);
  LLMSYNC_ASSIGN_OR_RETURN(std::string end, ParseStatements({"endfor", "else"}, &node->body, false));
  if (end == "else") {
    LLMSYNC_ASSIGN_OR_RETURN(end, ParseStatements({"endfor"}, &node->else_body, false));
  }
  LLMSYNC_RETURN_IF_ERROR(ExpectBlockEnd());
  return node;
}

Result<std::unique_ptr<Node>> Parser::ParseIf(int line) {
  auto node = std::make_unique<Node>();
  node->kind = NodeKind::kIf;
  node->line = line;
  std::string end = "if";
  while (end == "if" || end == "elif") {
    Next();  // if / elif
    Branch branch;
    LLMSYNC_ASSIGN_OR_RETURN(branch.test, ParseTuple(false, false, {}, false));
    LLMSYNC_ASSIGN_OR_RETURN(end, ParseStatements({"elif", "else", "endif"}, &branch.body, false));
    node->branches.push_back(std::move(branch));
    if (end == "elif") --pos_;  // back onto "elif" so the loop reads its test
  }
  if (end == "else") {
    LLMSYNC_ASSIGN_OR_RETURN(end, ParseStatements({"endif"}, &node->else_body, false));
  }
  LLMSYNC_RETURN_IF_ERROR(ExpectBlockEnd());
  return node;
}

Result<std::unique_ptr<Node>> Parser::ParseSet(int line) {
  Next();  // set
  auto node = std::make_unique<Node>();
  node->line = line;
  LLMSYNC_ASSIGN_OR_RETURN(node->target, ParseAssignTarget(true, {}));
  if (SkipOp("=")) {
    node->kind = NodeKind::kSet;
    LLMSYNC_ASSIGN_OR_RETURN(node->expr, ParseTuple(false, true, {}, false));
    LLMSYNC_RETURN_IF_ERROR(ExpectBlockEnd());
    return node;
  }
  node->kind = NodeKind::kSetBlock;
  if (IsOp("|")) {
    LLMSYNC_ASSIGN_OR_RETURN(node->filter, ParseFilter(nullptr, false));
  }
  LLMSYNC_RETURN_IF_ERROR(ParseStatements({"endset"}, &node->body, true).GetStatus());
  return node;
}

Result<Target> Parser::ParseAssignTarget(bool with_namespace,
                                         std::initializer_list<std::string_view> extra_end) {
  Target target;
  int line = Current().line;
  if (with_namespace && Current().kind == TokenKind::kName && Look().kind == TokenKind::kOperator &&
      Look().value == ".") {
    target.names.push_back(Current().value);
    Next();
    Next();
    LLMSYNC_ASSIGN_OR_RETURN(target.attribute, ExpectName());
    return target;
  }
  LLMSYNC_ASSIGN_OR_RETURN(auto expr, ParseTuple(true, true, extra_end, false));
  if (expr->kind == ExprKind::kName) {
    target.names.push_back(expr->name);
    return target;
  }
  if (expr->kind == ExprKind::kTuple) {
    target.is_tuple = true;
    for (const auto& item : expr->items) {
      if (item->kind != ExprKind::kName) return Unsupported("nested tuple assignment targets", line);
      target.names.push_back(item->name);
    }
    return target;
  }
  return Fail("can't assign to this expression", line);
}

Status Parser::ParseSignature(std::vector<Param>* params) {
  LLMSYNC_RETURN_IF_ERROR(ExpectOp("("));
  bool have_default = false;
  while (!IsOp(")")) {
    if (!params->empty()) LLMSYNC_RETURN_IF_ERROR(ExpectOp(","));
    Param param;
    LLMSYNC_ASSIGN_OR_RETURN(param.name, ExpectName());
    if (SkipOp("=")) {
      LLMSYNC_ASSIGN_OR_RETURN(param.default_value, ParseExpression());
      have_default = true;
    } else if (have_default) {
      return Fail("non-default argument follows default argument");
    }
    params->push_back(std::move(param));
  }
  return ExpectOp(")");
}

Result<std::unique_ptr<Node>> Parser::ParseMacro(int line) {
  Next();  // macro
  auto node = std::make_unique<Node>();
  node->kind = NodeKind::kMacro;
  node->line = line;
  LLMSYNC_ASSIGN_OR_RETURN(node->name, ExpectName());
  LLMSYNC_RETURN_IF_ERROR(ParseSignature(&node->params));
  LLMSYNC_RETURN_IF_ERROR(ParseStatements({"endmacro"}, &node->body, true).GetStatus());
  Node* raw = node.get();
  ScanBody(node->body, [raw](const std::string& name) {
    if (name == "varargs") raw->catch_varargs = true;
    if (name == "kwargs") raw->catch_kwargs = true;
    if (name == "caller") raw->uses_caller = true;
  });
  return node;
}

Result<std::unique_ptr<Node>> Parser::ParseCallBlock(int line) {
  Next();  // call
  auto node = std::make_unique<Node>();
  node->kind = NodeKind::kCallBlock;
  node->line = line;
  if (IsOp("(")) LLMSYNC_RETURN_IF_ERROR(ParseSignature(&node->params));
  LLMSYNC_ASSIGN_OR_RETURN(node->expr, ParseExpression());
  if (node->expr->kind != ExprKind::kCall) return Fail("expected call", line);
  LLMSYNC_RETURN_IF_ERROR(ParseStatements({"endcall"}, &node->body, true).GetStatus());
  return node;
}

Result<std::unique_ptr<Node>> Parser::ParseFilterBlock(int line) {
  Next();  // filter
  auto node = std::make_unique<Node>();
  node->kind = NodeKind::kFilterBlock;
  node->line = line;
  LLMSYNC_ASSIGN_OR_RETURN(node->filter, ParseFilter(nullptr, true));
  LLMSYNC_RETURN_IF_ERROR(ParseStatements({"endfilter"}, &node->body, true).GetStatus());
  return node;
}

Result<std::unique_ptr<Node>> Parser::ParseWith(int line) {
  Next();  // with
  auto node = std::make_unique<Node>();
  node->kind = NodeKind::kWith;
  node->line = line;
  while (Current().kind != TokenKind::kBlockEnd) {
    if (!node->assignments.empty()) LLMSYNC_RETURN_IF_ERROR(ExpectOp(","));
    LLMSYNC_ASSIGN_OR_RETURN(Target target, ParseAssignTarget(false, {}));
    LLMSYNC_RETURN_IF_ERROR(ExpectOp("="));
    LLMSYNC_ASSIGN_OR_RETURN(auto value, ParseExpression());
    node->assignments.emplace_back(std::move(target), std::move(value));
  }
  LLMSYNC_RETURN_IF_ERROR(ParseStatements({"endwith"}, &node->body, true).GetStatus());
  return node;
}

Result<std::unique_ptr<Node>> Parser::ParseBodyOnly(int line, std::string_view end_name) {
  Next();
  auto node = std::make_unique<Node>();
  node->kind = NodeKind::kScope;
  node->line = line;
  LLMSYNC_RETURN_IF_ERROR(ParseStatements({end_name}, &node->body, true).GetStatus());
  return node;
}

Result<NodeList> ParseTemplate(std::string_view source) {
  LLMSYNC_ASSIGN_OR_RETURN(std::vector<Token> tokens, Tokenize(source));
  Parser parser(std::move(tokens));
  return parser.ParseAll();
}

}  // namespace llmsync::text::jinja
