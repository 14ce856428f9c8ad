// The parser's internals, shared by jinja_parser.cpp (statements) and jinja_parse_expr.cpp
// (expressions). Not for use outside the parser.
//
// Thread safety: a Parser is used by one thread for one template.
#pragma once

#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "llmsync/status.h"
#include "text/jinja/jinja_ast.h"
#include "text/jinja/jinja_lexer.h"

namespace llmsync::text::jinja {

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  Result<NodeList> ParseAll();

  // Expressions (jinja_parse_expr.cpp).
  Result<std::unique_ptr<Expr>> ParseExpression(bool with_condexpr = true);
  // A comma-separated expression list; a tuple when there is a comma. `simplified` parses only
  // primaries (assignment targets); `extra_end` names that end the list ("in", "recursive").
  Result<std::unique_ptr<Expr>> ParseTuple(bool simplified, bool with_condexpr,
                                           std::initializer_list<std::string_view> extra_end,
                                           bool explicit_parentheses);
  // Filters applied to `node` (null inside filter blocks, where the first filter has no pipe).
  Result<std::unique_ptr<Expr>> ParseFilter(std::unique_ptr<Expr> node, bool start_inline);
  Status ParseCallArgs(Expr* call);

 private:
  friend class DepthGuard;

  // Statements (jinja_parser.cpp).
  Result<NodeList> Subparse(std::initializer_list<std::string_view> end_names);
  Result<std::unique_ptr<Node>> ParseStatement();
  Result<std::unique_ptr<Node>> ParseFor(int line);
  Result<std::unique_ptr<Node>> ParseIf(int line);
  Result<std::unique_ptr<Node>> ParseSet(int line);
  Result<std::unique_ptr<Node>> ParseMacro(int line);
  Result<std::unique_ptr<Node>> ParseCallBlock(int line);
  Result<std::unique_ptr<Node>> ParseFilterBlock(int line);
  Result<std::unique_ptr<Node>> ParseWith(int line);
  Result<std::unique_ptr<Node>> ParseBodyOnly(int line, std::string_view end_name);
  Result<Target> ParseAssignTarget(bool with_namespace, std::initializer_list<std::string_view> extra_end);
  Status ParseSignature(std::vector<Param>* params);
  // Parses statements until `{% <one of ends> %}`, consumes that tag's name and returns the
  // name that ended the body; with drop_needle the rest of the end tag is consumed too.
  Result<std::string> ParseStatements(std::initializer_list<std::string_view> ends, NodeList* body,
                                      bool drop_needle);

  // Expressions (jinja_parse_expr.cpp).
  Result<std::unique_ptr<Expr>> ParseCondExpr();
  Result<std::unique_ptr<Expr>> ParseOr();
  Result<std::unique_ptr<Expr>> ParseAnd();
  Result<std::unique_ptr<Expr>> ParseNot();
  Result<std::unique_ptr<Expr>> ParseCompare();
  Result<std::unique_ptr<Expr>> ParseMath1();
  Result<std::unique_ptr<Expr>> ParseConcat();
  Result<std::unique_ptr<Expr>> ParseMath2();
  Result<std::unique_ptr<Expr>> ParsePow();
  Result<std::unique_ptr<Expr>> ParseUnary(bool with_filter);
  Result<std::unique_ptr<Expr>> ParsePrimary();
  Result<std::unique_ptr<Expr>> ParsePostfix(std::unique_ptr<Expr> node);
  Result<std::unique_ptr<Expr>> ParseFilterExpr(std::unique_ptr<Expr> node);
  Result<std::unique_ptr<Expr>> ParseSubscript(std::unique_ptr<Expr> node);
  Result<std::unique_ptr<Expr>> ParseSubscribed();
  Result<std::unique_ptr<Expr>> ParseTest(std::unique_ptr<Expr> node);
  Result<std::unique_ptr<Expr>> ParseList();
  Result<std::unique_ptr<Expr>> ParseDict();

 public:
  // Token stream helpers.
  const Token& Current() const { return tokens_[pos_]; }
  const Token& Look() const { return tokens_[pos_ + 1 < tokens_.size() ? pos_ + 1 : pos_]; }
  void Next() {
    if (pos_ + 1 < tokens_.size()) ++pos_;
  }
  bool IsOp(std::string_view op) const {
    return Current().kind == TokenKind::kOperator && Current().value == op;
  }
  bool IsName(std::string_view name) const {
    return Current().kind == TokenKind::kName && Current().value == name;
  }
  bool SkipOp(std::string_view op) {
    if (!IsOp(op)) return false;
    Next();
    return true;
  }
  bool SkipName(std::string_view name) {
    if (!IsName(name)) return false;
    Next();
    return true;
  }
  Status ExpectOp(std::string_view op);
  Result<std::string> ExpectName();
  Status ExpectBlockEnd();
  Status Fail(const std::string& message) const;
  Status Fail(const std::string& message, int line) const;
  Status Unsupported(const std::string& feature, int line) const;
  std::string Describe(const Token& t) const;

  Status Enter();
  void Leave() { --depth_; }

 private:
  std::vector<Token> tokens_;
  std::size_t pos_ = 0;
  int depth_ = 0;
};

// Bounds recursion: construct at the top of a recursive parse function and check Ok().
class DepthGuard {
 public:
  explicit DepthGuard(Parser* parser) : parser_(parser), status_(parser->Enter()) {}
  ~DepthGuard() { parser_->Leave(); }
  DepthGuard(const DepthGuard&) = delete;
  DepthGuard& operator=(const DepthGuard&) = delete;
  const Status& GetStatus() const { return status_; }

 private:
  Parser* parser_;
  Status status_;
};

std::unique_ptr<Expr> MakeExpr(ExprKind kind, int line);

// Sets e->height from its children; fails when the tree grows taller than kMaxExprHeight.
Status SealExpr(Expr* e);

}  // namespace llmsync::text::jinja
