#include "text/jinja/jinja_lexer.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "text/jinja/jinja_unicode.h"

namespace llmsync::text::jinja {
namespace {

Status SyntaxError(std::string message, int line) {
  return Status::InvalidArgument("template syntax error: " + message + " (line " + std::to_string(line) +
                                 ")");
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsNameStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
         static_cast<unsigned char>(c) >= 0x80;
}
bool IsNameChar(char c) { return IsNameStart(c) || IsDigit(c); }
bool IsHex(char c) { return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
char32_t HexValue(char c) {
  if (IsDigit(c)) return static_cast<char32_t>(c - '0');
  return static_cast<char32_t>((c | 0x20) - 'a' + 10);
}

// Length of the Python whitespace run starting at pos.
std::size_t WhitespaceRun(std::string_view s, std::size_t pos) {
  std::size_t end = pos;
  while (end < s.size()) {
    std::size_t next = end;
    if (!IsPyWhitespace(NextCodePoint(s, &next))) break;
    end = next;
  }
  return end - pos;
}

std::string RStrip(std::string_view s) { return StrStrip(s, nullptr, StripSide::kRight); }

// lstrip_blocks: drops the whitespace between the last line start and a block or comment tag.
std::string_view LStripLineTail(std::string_view text, bool line_starting) {
  std::size_t nl = text.rfind('\n');
  std::size_t l_pos = nl == std::string_view::npos ? 0 : nl + 1;
  if (l_pos == 0 && !line_starting) return text;
  std::size_t ws = WhitespaceRun(text, l_pos);
  if (ws == 0 || l_pos + ws != text.size()) return text;
  return text.substr(0, l_pos);
}

// A run of digits with single underscores between them (Python's (\d+_)*\d+).
std::size_t DigitRun(std::string_view s, std::size_t pos) {
  std::size_t end = pos;
  while (end < s.size() && IsDigit(s[end])) {
    ++end;
    if (end + 1 < s.size() && s[end] == '_' && IsDigit(s[end + 1])) ++end;
  }
  return end - pos;
}

std::string WithoutUnderscores(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c != '_') out.push_back(c);
  }
  return out;
}

// Decodes a string literal's body the way Jinja does (Python's unicode-escape codec).
Result<std::string> DecodeString(std::string_view raw, int line) {
  std::string out;
  std::size_t pos = 0;
  while (pos < raw.size()) {
    if (raw[pos] != '\\') {
      std::size_t at = pos;
      NextCodePoint(raw, &pos);
      out.append(raw.substr(at, pos - at));
      continue;
    }
    ++pos;
    if (pos >= raw.size()) return SyntaxError("\\ at end of string", line);
    char c = raw[pos];
    auto hex_escape = [&](int digits) -> Result<char32_t> {
      char32_t value = 0;
      for (int k = 1; k <= digits; ++k) {
        if (pos + k >= raw.size() || !IsHex(raw[pos + k]))
          return SyntaxError("truncated escape in string", line);
        value = value * 16 + HexValue(raw[pos + k]);
      }
      pos += digits + 1;
      return value;
    };
    char32_t cp = 0;
    switch (c) {
      case '\n': ++pos; continue;
      case '\\':
      case '\'':
      case '"':
        out.push_back(c);
        ++pos;
        continue;
      case 'a':
        out.push_back('\a');
        ++pos;
        continue;
      case 'b':
        out.push_back('\b');
        ++pos;
        continue;
      case 'f':
        out.push_back('\f');
        ++pos;
        continue;
      case 'n':
        out.push_back('\n');
        ++pos;
        continue;
      case 'r':
        out.push_back('\r');
        ++pos;
        continue;
      case 't':
        out.push_back('\t');
        ++pos;
        continue;
      case 'v':
        out.push_back('\v');
        ++pos;
        continue;
      case 'x':
      case 'u':
      case 'U': {
        LLMSYNC_ASSIGN_OR_RETURN(cp, hex_escape(c == 'x' ? 2 : (c == 'u' ? 4 : 8)));
        break;
      }
      case 'N':
        return Status::Unimplemented(
            "template uses \\N{...} escapes in a string literal, which are not "
            "supported (line " +
            std::to_string(line) + ")");
      default:
        if (c >= '0' && c <= '7') {
          int n = 0;
          while (n < 3 && pos < raw.size() && raw[pos] >= '0' && raw[pos] <= '7') {
            cp = cp * 8 + static_cast<char32_t>(raw[pos] - '0');
            ++pos, ++n;
          }
          break;
        }
        if (static_cast<unsigned char>(c) >= 0x80) {
          // Jinja first turns non-ASCII into "\xe9"-style text, so "\é" decodes to "\xe9".
          char32_t raw_cp = NextCodePoint(raw, &pos);
          char buf[16];
          std::snprintf(buf, sizeof(buf),
                        raw_cp < 0x100 ? "\\x%02x" : (raw_cp < 0x10000 ? "\\u%04x" : "\\U%08x"),
                        static_cast<unsigned>(raw_cp));
          out += buf;
          continue;
        }
        out.push_back('\\');
        continue;  // unknown escapes stay as written
    }
    if (cp > 0x10FFFF) return SyntaxError("illegal Unicode character in string", line);
    if (cp >= 0xD800 && cp <= 0xDFFF) {
      return Status::Unimplemented(
          "template string literal contains a lone surrogate, which is not supported (line " +
          std::to_string(line) + ")");
    }
    AppendUtf8(cp, &out);
  }
  return out;
}

class Lexer {
 public:
  explicit Lexer(std::string source) : src_(std::move(source)) {}

  Result<std::vector<Token>> Run() {
    while (pos_ < src_.size()) {
      LLMSYNC_RETURN_IF_ERROR(LexRoot());
    }
    Token end;
    end.kind = TokenKind::kEnd;
    end.line = line_;
    tokens_.push_back(end);
    return std::move(tokens_);
  }

 private:
  void Advance(std::size_t to) {
    for (std::size_t i = pos_; i < to; ++i) line_ += src_[i] == '\n' ? 1 : 0;
    pos_ = to;
    line_starting_ = to > 0 && src_[to - 1] == '\n';
  }

  void EmitText(std::string text, int line) {
    if (text.empty()) return;
    Token t;
    t.kind = TokenKind::kText;
    t.line = line;
    t.value = std::move(text);
    tokens_.push_back(std::move(t));
  }

  void Emit(TokenKind kind, std::string value) {
    Token t;
    t.kind = kind;
    t.line = line_;
    t.value = std::move(value);
    tokens_.push_back(std::move(t));
  }

  // Text before a tag, with the tag's whitespace control applied.
  std::string ControlledText(std::string_view text, char sign, bool lstrip_applies) const {
    if (sign == '-') return RStrip(text);
    if (sign != '+' && lstrip_applies) return std::string(LStripLineTail(text, line_starting_));
    return std::string(text);
  }

  // Length of "{%[-+]?\s*raw\s*(-%}\s*|%})" at pos, or 0.
  std::size_t MatchTagWord(std::size_t pos, std::string_view word, bool raw_end_rules) const {
    std::size_t p = pos + 2;
    if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) ++p;
    p += WhitespaceRun(src_, p);
    if (src_.compare(p, word.size(), word) != 0) return 0;
    p += word.size();
    p += WhitespaceRun(src_, p);
    if (!raw_end_rules) {
      if (src_.compare(p, 3, "-%}") == 0) return p + 3 + WhitespaceRun(src_, p + 3) - pos;
      if (src_.compare(p, 2, "%}") == 0) return p + 2 - pos;
      return 0;
    }
    if (src_.compare(p, 3, "+%}") == 0) return p + 3 - pos;
    if (src_.compare(p, 3, "-%}") == 0) return p + 3 + WhitespaceRun(src_, p + 3) - pos;
    if (src_.compare(p, 2, "%}") == 0)
      return p + 2 + (p + 2 < src_.size() && src_[p + 2] == '\n' ? 1 : 0) - pos;
    return 0;
  }

  Status LexRoot() {
    std::size_t k = pos_;
    while (true) {
      k = src_.find('{', k);
      if (k == std::string::npos || k + 1 >= src_.size()) {
        EmitText(src_.substr(pos_), line_);
        Advance(src_.size());
        return Status::Ok();
      }
      char kind = src_[k + 1];
      if (kind == '{' || kind == '%' || kind == '#') break;
      ++k;
    }
    char kind = src_[k + 1];
    char sign = k + 2 < src_.size() ? src_[k + 2] : '\0';
    if (sign != '-' && sign != '+') sign = '\0';
    int text_line = line_;
    std::size_t raw_len = kind == '%' ? MatchTagWord(k, "raw", false) : 0;
    EmitText(ControlledText(std::string_view(src_).substr(pos_, k - pos_), sign, kind != '{'), text_line);
    if (raw_len > 0) return LexRaw(k, raw_len);
    Advance(k);
    line_starting_ = false;
    pos_ = k + 2 + (sign != '\0' ? 1 : 0);
    if (kind == '#') return LexComment();
    Emit(kind == '%' ? TokenKind::kBlockBegin : TokenKind::kVariableBegin, "");
    return LexTag(kind == '%');
  }

  Status LexRaw(std::size_t begin, std::size_t raw_len) {
    int start_line = line_;
    Advance(begin + raw_len);
    for (std::size_t q = src_.find("{%", pos_); q != std::string::npos; q = src_.find("{%", q + 1)) {
      std::size_t end_len = MatchTagWord(q, "endraw", true);
      if (end_len == 0) continue;
      char sign = src_[q + 2] == '-' || src_[q + 2] == '+' ? src_[q + 2] : '\0';
      EmitText(ControlledText(std::string_view(src_).substr(pos_, q - pos_), sign, true), line_);
      Advance(q + end_len);
      return Status::Ok();
    }
    return SyntaxError("missing end of raw directive", start_line);
  }

  Status LexComment() {
    int start_line = line_;
    for (std::size_t j = pos_; j + 1 < src_.size(); ++j) {
      if ((src_[j] == '+' || src_[j] == '-') && src_.compare(j + 1, 2, "#}") == 0) {
        std::size_t end = j + 3;
        if (src_[j] == '-') end += WhitespaceRun(src_, end);
        Advance(end);
        return Status::Ok();
      }
      if (src_.compare(j, 2, "#}") == 0) {
        std::size_t end = j + 2;
        if (end < src_.size() && src_[end] == '\n') ++end;
        Advance(end);
        return Status::Ok();
      }
    }
    return SyntaxError("missing end of comment tag", start_line);
  }

  // Matches the end of the current tag at pos_, if brackets are balanced.
  bool MatchTagEnd(bool block) {
    if (!brackets_.empty()) return false;
    std::string_view rest = std::string_view(src_).substr(pos_);
    std::size_t end = 0;
    if (block) {
      if (rest.starts_with("+%}")) {
        end = pos_ + 3;
      } else if (rest.starts_with("-%}")) {
        end = pos_ + 3 + WhitespaceRun(src_, pos_ + 3);
      } else if (rest.starts_with("%}")) {
        end = pos_ + 2 + (rest.size() > 2 && rest[2] == '\n' ? 1 : 0);
      }
    } else if (rest.starts_with("-}}")) {
      end = pos_ + 3 + WhitespaceRun(src_, pos_ + 3);
    } else if (rest.starts_with("}}")) {
      end = pos_ + 2;
    }
    if (end == 0) return false;
    Emit(block ? TokenKind::kBlockEnd : TokenKind::kVariableEnd, "");
    Advance(end);
    return true;
  }

  Status LexTag(bool block) {
    brackets_.clear();
    while (pos_ < src_.size()) {
      if (MatchTagEnd(block)) return Status::Ok();
      std::size_t ws = WhitespaceRun(src_, pos_);
      if (ws > 0) {
        Advance(pos_ + ws);
        continue;
      }
      char c = src_[pos_];
      if (IsDigit(c)) {
        LLMSYNC_RETURN_IF_ERROR(LexNumber());
      } else if (IsNameStart(c)) {
        std::size_t end = pos_;
        while (end < src_.size() && IsNameChar(src_[end])) ++end;
        Emit(TokenKind::kName, src_.substr(pos_, end - pos_));
        Advance(end);
      } else if (c == '\'' || c == '"') {
        LLMSYNC_RETURN_IF_ERROR(LexString(c));
      } else {
        LLMSYNC_RETURN_IF_ERROR(LexOperator());
      }
    }
    return SyntaxError(std::string("unexpected end of template, expected '") + (block ? "%}" : "}}") + "'",
                       line_);
  }

  Status LexNumber() {
    std::size_t start = pos_;
    std::size_t p = start;
    bool after_dot = start > 0 && src_[start - 1] == '.';
    // Integers with a base prefix.
    if (src_[p] == '0' && p + 1 < src_.size() &&
        std::string_view("bBoOxX").find(src_[p + 1]) != std::string::npos) {
      char b = static_cast<char>(src_[p + 1] | 0x20);
      int base = b == 'b' ? 2 : (b == 'o' ? 8 : 16);
      std::size_t q = p + 2;
      auto ok = [&](char d) {
        return base == 16 ? IsHex(d) : (d >= '0' && d < static_cast<char>('0' + base));
      };
      while (q < src_.size() && (ok(src_[q]) || (src_[q] == '_' && q + 1 < src_.size() && ok(src_[q + 1]))))
        ++q;
      if (q > p + 2) return EmitInteger(start, q, base);
    }
    std::size_t int_len = DigitRun(src_, p);
    p += int_len;
    bool is_float = false;
    if (!after_dot) {
      std::size_t q = p;
      if (q + 1 < src_.size() && src_[q] == '.' && IsDigit(src_[q + 1])) {
        q += 1 + DigitRun(src_, q + 1);
        is_float = true;
      }
      if (q < src_.size() && (src_[q] == 'e' || src_[q] == 'E')) {
        std::size_t r = q + 1;
        if (r < src_.size() && (src_[r] == '+' || src_[r] == '-')) ++r;
        std::size_t exp_len = r < src_.size() ? DigitRun(src_, r) : 0;
        if (exp_len > 0) q = r + exp_len, is_float = true;
      }
      if (is_float) {
        Token t;
        t.kind = TokenKind::kFloat;
        t.line = line_;
        t.value = src_.substr(start, q - start);
        t.float_value = std::strtod(WithoutUnderscores(t.value).c_str(), nullptr);
        tokens_.push_back(std::move(t));
        Advance(q);
        return Status::Ok();
      }
    }
    // Decimal integers: [1-9](_?\d)* or 0(_?0)*.
    std::size_t q = start + 1;
    if (src_[start] == '0') {
      while (q < src_.size() &&
             (src_[q] == '0' || (src_[q] == '_' && q + 1 < src_.size() && src_[q + 1] == '0')))
        ++q;
    } else {
      q = start + int_len;
    }
    return EmitInteger(start, q, 10);
  }

  Status EmitInteger(std::size_t start, std::size_t end, int base) {
    Token t;
    t.kind = TokenKind::kInteger;
    t.line = line_;
    t.value = src_.substr(start, end - start);
    std::string digits = WithoutUnderscores(t.value);
    if (base != 10) digits = digits.substr(2);
    errno = 0;
    char* stop = nullptr;
    long long v = std::strtoll(digits.c_str(), &stop, base);
    if (errno == ERANGE) {
      return Status::Unimplemented("template uses an integer literal beyond 64 bits (line " +
                                   std::to_string(line_) + ")");
    }
    t.int_value = v;
    tokens_.push_back(std::move(t));
    Advance(end);
    return Status::Ok();
  }

  Status LexString(char quote) {
    int start_line = line_;
    std::size_t p = pos_ + 1;
    while (p < src_.size() && src_[p] != quote) p += src_[p] == '\\' ? 2 : 1;
    if (p >= src_.size()) return SyntaxError(std::string("unexpected char '") + quote + "'", start_line);
    LLMSYNC_ASSIGN_OR_RETURN(std::string value,
                             DecodeString(std::string_view(src_).substr(pos_ + 1, p - pos_ - 1), start_line));
    Emit(TokenKind::kString, std::move(value));
    Advance(p + 1);
    return Status::Ok();
  }

  Status LexOperator() {
    static constexpr std::string_view kTwo[] = {"//", "**", "==", "!=", ">=", "<="};
    std::string_view rest = std::string_view(src_).substr(pos_);
    std::string op;
    for (std::string_view two : kTwo) {
      if (rest.starts_with(two)) op = std::string(two);
    }
    if (op.empty() && std::string_view("+-/*%~[](){}><=.:|,;").find(rest[0]) != std::string_view::npos) {
      op = std::string(1, rest[0]);
    }
    if (op.empty()) {
      std::size_t p = pos_;
      std::string ch;
      AppendUtf8(NextCodePoint(src_, &p), &ch);
      return SyntaxError("unexpected char '" + ch + "'", line_);
    }
    if (op == "(" || op == "[" || op == "{") {
      brackets_.push_back(op == "(" ? ')' : (op == "[" ? ']' : '}'));
    } else if (op == ")" || op == "]" || op == "}") {
      if (brackets_.empty()) return SyntaxError("unexpected '" + op + "'", line_);
      if (brackets_.back() != op[0]) {
        return SyntaxError("unexpected '" + op + "', expected '" + std::string(1, brackets_.back()) + "'",
                           line_);
      }
      brackets_.pop_back();
    }
    Emit(TokenKind::kOperator, op);
    Advance(pos_ + op.size());
    return Status::Ok();
  }

  std::string src_;
  std::size_t pos_ = 0;
  int line_ = 1;
  bool line_starting_ = true;
  std::string brackets_;
  std::vector<Token> tokens_;
};

// Newlines become "\n" and a single trailing newline is dropped (keep_trailing_newline=False).
std::string NormalizeSource(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (std::size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out.push_back(source[i]);
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

}  // namespace

Result<std::vector<Token>> Tokenize(std::string_view source) {
  if (!IsValidUtf8(source))
    return Status::InvalidArgument("template syntax error: template is not valid UTF-8");
  Lexer lexer(NormalizeSource(source));
  return lexer.Run();
}

}  // namespace llmsync::text::jinja
