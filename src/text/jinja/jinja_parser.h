// The Jinja parser: tokens to a syntax tree, following jinja2/parser.py's grammar and operator
// precedence (including its quirks: `**` is left-associative, filters bind tighter than unary
// minus's operand chain, `not x is y` is `not (x is y)`).
//
// Supported statements: if/elif/else, for (else branch, inline `if` filter), set (expression,
// namespace attribute, tuple unpacking, block form with optional filter), macro, call, filter,
// with, print, break, continue, and transformers' generation block. Statements outside the
// subset (block, extends, include, import, from, autoescape, recursive loops, *args/**kwargs in
// calls) fail with Unimplemented naming the feature and its line. Nesting is bounded, so no input
// can exhaust the stack.
//
// Thread safety: pure function.
#pragma once

#include <string_view>

#include "llmsync/status.h"
#include "text/jinja/jinja_ast.h"

namespace llmsync::text::jinja {

// Deepest nesting of expressions and statements accepted, and the tallest expression tree (long
// operator chains such as a + b + ... build tall trees without nesting).
inline constexpr int kMaxParseDepth = 100;
inline constexpr int kMaxExprHeight = 256;

Result<NodeList> ParseTemplate(std::string_view source);

}  // namespace llmsync::text::jinja
