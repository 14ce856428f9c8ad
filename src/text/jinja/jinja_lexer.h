// The Jinja lexer: template source to tokens, with the whitespace rules of Hugging Face's chat
// template environment (trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False).
//
// It follows jinja2/lexer.py: newlines are normalized to "\n" and one trailing newline is dropped;
// text runs to the first "{{", "{%" or "{#"; "{%-"/"{{-"/"{#-" strip all whitespace before the
// tag, "-%}"/"-}}"/"-#}" all whitespace after it; lstrip_blocks strips spaces and tabs between a
// line start and "{%" or "{#" (not "{{") unless the tag opens with "+"; trim_blocks drops one
// newline after "%}" and "#}" unless it closes with "+%}". Comments vanish and raw blocks become
// text. Inside tags, an end marker only counts while brackets are balanced.
//
// Thread safety: pure function.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "llmsync/status.h"

namespace llmsync::text::jinja {

enum class TokenKind {
  kText,           // template text to output
  kVariableBegin,  // {{
  kVariableEnd,    // }}
  kBlockBegin,     // {%
  kBlockEnd,       // %}
  kName,
  kString,  // value: the decoded literal
  kInteger,
  kFloat,
  kOperator,  // value: the operator text ("+", "//", "==", "(", ...)
  kEnd,
};

struct Token {
  TokenKind kind = TokenKind::kEnd;
  int line = 1;
  std::string value;
  std::int64_t int_value = 0;
  double float_value = 0;
};

// Fails with InvalidArgument naming the line for malformed input (unclosed tags, comments or
// strings, stray characters, unbalanced brackets, invalid escapes, invalid UTF-8).
Result<std::vector<Token>> Tokenize(std::string_view source);

}  // namespace llmsync::text::jinja
