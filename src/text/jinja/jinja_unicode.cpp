#include "text/jinja/jinja_unicode.h"

#include <locale.h>
#include <wctype.h>

#include <algorithm>

namespace llmsync::text::jinja {
namespace {

// glibc's C.UTF-8 locale carries the Unicode character classes and simple case mappings.
locale_t Utf8Locale() {
  static const locale_t kLocale = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(nullptr));
  return kLocale;
}

bool InSet(char32_t cp, const std::string& chars) {
  std::size_t pos = 0;
  while (pos < chars.size()) {
    if (NextCodePoint(chars, &pos) == cp) return true;
  }
  return false;
}

}  // namespace

char32_t NextCodePoint(std::string_view s, std::size_t* pos) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  std::size_t i = *pos;
  unsigned char c = p[i];
  if (c < 0x80) {
    *pos = i + 1;
    return c;
  }
  int len = 0;
  char32_t cp = 0;
  char32_t min = 0;
  if ((c & 0xE0) == 0xC0) {
    len = 2, cp = c & 0x1F, min = 0x80;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3, cp = c & 0x0F, min = 0x800;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4, cp = c & 0x07, min = 0x10000;
  } else {
    *pos = i + 1;
    return c;
  }
  if (i + len > s.size()) {
    *pos = i + 1;
    return c;
  }
  for (int k = 1; k < len; ++k) {
    if ((p[i + k] & 0xC0) != 0x80) {
      *pos = i + 1;
      return c;
    }
    cp = (cp << 6) | (p[i + k] & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    *pos = i + 1;
    return c;
  }
  *pos = i + len;
  return cp;
}

std::vector<std::size_t> CodePointOffsets(std::string_view s) {
  std::vector<std::size_t> offsets;
  offsets.reserve(s.size() + 1);
  std::size_t pos = 0;
  while (pos < s.size()) {
    offsets.push_back(pos);
    NextCodePoint(s, &pos);
  }
  offsets.push_back(s.size());
  return offsets;
}

bool IsPyWhitespace(char32_t cp) {
  if (cp >= 0x09 && cp <= 0x0D) return true;
  if (cp >= 0x1C && cp <= 0x20) return true;
  switch (cp) {
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000: return true;
    default: return cp >= 0x2000 && cp <= 0x200A;
  }
}

bool IsPyPrintable(char32_t cp) {
  if (cp == ' ') return true;
  if (cp < 0x20 || (cp >= 0x7F && cp <= 0xA0)) return false;
  if (cp < 0x7F) return true;
  // Separators (Zs, Zl, Zp) and format characters (Cf) that a C library may call printable.
  if (IsPyWhitespace(cp) || cp == 0xAD || (cp >= 0x600 && cp <= 0x605) || cp == 0x61C || cp == 0x6DD ||
      cp == 0x70F || cp == 0x180E || (cp >= 0x200B && cp <= 0x200F) || (cp >= 0x202A && cp <= 0x202E) ||
      (cp >= 0x2060 && cp <= 0x206F) || cp == 0xFEFF || (cp >= 0xFFF9 && cp <= 0xFFFB) ||
      (cp >= 0xE0000 && cp <= 0xE007F)) {
    return false;
  }
  locale_t loc = Utf8Locale();
  if (loc == static_cast<locale_t>(nullptr)) return true;
  return iswprint_l(static_cast<wint_t>(cp), loc) != 0;
}

char32_t ToUpper(char32_t cp) {
  if (cp < 0x80) return (cp >= 'a' && cp <= 'z') ? cp - 32 : cp;
  locale_t loc = Utf8Locale();
  if (loc == static_cast<locale_t>(nullptr)) return cp;
  return static_cast<char32_t>(towupper_l(static_cast<wint_t>(cp), loc));
}

char32_t ToLower(char32_t cp) {
  if (cp < 0x80) return (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
  locale_t loc = Utf8Locale();
  if (loc == static_cast<locale_t>(nullptr)) return cp;
  return static_cast<char32_t>(towlower_l(static_cast<wint_t>(cp), loc));
}

bool IsCased(char32_t cp) { return ToUpper(cp) != cp || ToLower(cp) != cp; }

std::string StrUpper(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t pos = 0; pos < s.size();) AppendUtf8(ToUpper(NextCodePoint(s, &pos)), &out);
  return out;
}

std::string StrLower(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t pos = 0; pos < s.size();) AppendUtf8(ToLower(NextCodePoint(s, &pos)), &out);
  return out;
}

std::string StrTitle(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  bool previous_cased = false;
  for (std::size_t pos = 0; pos < s.size();) {
    char32_t cp = NextCodePoint(s, &pos);
    bool cased = IsCased(cp);
    AppendUtf8(cased ? (previous_cased ? ToLower(cp) : ToUpper(cp)) : cp, &out);
    previous_cased = cased;
  }
  return out;
}

std::string StrCapitalize(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  bool first = true;
  for (std::size_t pos = 0; pos < s.size();) {
    char32_t cp = NextCodePoint(s, &pos);
    AppendUtf8(first ? ToUpper(cp) : ToLower(cp), &out);
    first = false;
  }
  return out;
}

std::string StrStrip(std::string_view s, const std::string* chars, StripSide side) {
  auto strip_it = [&](char32_t cp) { return chars == nullptr ? IsPyWhitespace(cp) : InSet(cp, *chars); };
  std::vector<std::size_t> offsets = CodePointOffsets(s);
  std::size_t n = offsets.size() - 1;
  std::size_t begin = 0;
  std::size_t end = n;
  auto cp_at = [&](std::size_t k) {
    std::size_t pos = offsets[k];
    return NextCodePoint(s, &pos);
  };
  if (side != StripSide::kRight) {
    while (begin < end && strip_it(cp_at(begin))) ++begin;
  }
  if (side != StripSide::kLeft) {
    while (end > begin && strip_it(cp_at(end - 1))) --end;
  }
  return std::string(s.substr(offsets[begin], offsets[end] - offsets[begin]));
}

std::vector<std::string> StrSplit(std::string_view s, const std::string* sep, std::int64_t maxsplit) {
  std::vector<std::string> parts;
  if (sep != nullptr) {
    std::size_t start = 0;
    while (maxsplit < 0 || static_cast<std::int64_t>(parts.size()) < maxsplit) {
      std::size_t hit = s.find(*sep, start);
      if (hit == std::string_view::npos) break;
      parts.emplace_back(s.substr(start, hit - start));
      start = hit + sep->size();
    }
    parts.emplace_back(s.substr(start));
    return parts;
  }
  std::size_t pos = 0;
  while (pos < s.size()) {
    // Skip a run of whitespace.
    std::size_t word = pos;
    while (word < s.size()) {
      std::size_t next = word;
      if (!IsPyWhitespace(NextCodePoint(s, &next))) break;
      word = next;
    }
    if (word >= s.size()) break;
    if (maxsplit >= 0 && static_cast<std::int64_t>(parts.size()) >= maxsplit) {
      parts.emplace_back(s.substr(word));
      return parts;
    }
    std::size_t end = word;
    while (end < s.size()) {
      std::size_t next = end;
      if (IsPyWhitespace(NextCodePoint(s, &next))) break;
      end = next;
    }
    parts.emplace_back(s.substr(word, end - word));
    pos = end;
  }
  return parts;
}

std::vector<std::string> StrRSplit(std::string_view s, const std::string* sep, std::int64_t maxsplit) {
  std::vector<std::string> parts;
  if (sep != nullptr) {
    std::size_t end = s.size();
    while (maxsplit < 0 || static_cast<std::int64_t>(parts.size()) < maxsplit) {
      if (end < sep->size()) break;
      std::size_t hit = s.rfind(*sep, end - sep->size());
      if (hit == std::string_view::npos) break;
      parts.emplace_back(s.substr(hit + sep->size(), end - hit - sep->size()));
      end = hit;
    }
    parts.emplace_back(s.substr(0, end));
    std::reverse(parts.begin(), parts.end());
    return parts;
  }
  std::vector<std::size_t> offsets = CodePointOffsets(s);
  auto ws_at = [&](std::size_t k) {
    std::size_t pos = offsets[k];
    return IsPyWhitespace(NextCodePoint(s, &pos));
  };
  std::size_t k = offsets.size() - 1;  // code points remaining: [0, k)
  while (k > 0) {
    while (k > 0 && ws_at(k - 1)) --k;
    if (k == 0) break;
    if (maxsplit >= 0 && static_cast<std::int64_t>(parts.size()) >= maxsplit) {
      parts.emplace_back(s.substr(0, offsets[k]));
      break;
    }
    std::size_t word_end = k;
    while (k > 0 && !ws_at(k - 1)) --k;
    parts.emplace_back(s.substr(offsets[k], offsets[word_end] - offsets[k]));
  }
  std::reverse(parts.begin(), parts.end());
  return parts;
}

std::vector<std::string> StrSplitLines(std::string_view s) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  std::size_t pos = 0;
  while (pos < s.size()) {
    std::size_t at = pos;
    char32_t cp = NextCodePoint(s, &pos);
    bool brk = cp == '\n' || cp == '\r' || cp == 0x0B || cp == 0x0C || (cp >= 0x1C && cp <= 0x1E) ||
               cp == 0x85 || cp == 0x2028 || cp == 0x2029;
    if (!brk) continue;
    lines.emplace_back(s.substr(start, at - start));
    if (cp == '\r' && pos < s.size() && s[pos] == '\n') ++pos;
    start = pos;
  }
  if (start < s.size()) lines.emplace_back(s.substr(start));
  return lines;
}

bool StrReplace(std::string_view s, std::string_view from, std::string_view to, std::int64_t count,
                std::size_t max_bytes, std::string* out) {
  out->clear();
  std::int64_t done = 0;
  auto room = [&](std::size_t extra) { return out->size() + extra <= max_bytes; };
  if (from.empty()) {
    // Python inserts `to` before every code point and at the end.
    std::size_t pos = 0;
    while (pos <= s.size()) {
      if (count < 0 || done < count) {
        if (!room(to.size())) return false;
        out->append(to);
        ++done;
      }
      if (pos == s.size()) break;
      std::size_t at = pos;
      NextCodePoint(s, &pos);
      if (!room(pos - at)) return false;
      out->append(s.substr(at, pos - at));
    }
    return true;
  }
  std::size_t start = 0;
  while (count < 0 || done < count) {
    std::size_t hit = s.find(from, start);
    if (hit == std::string_view::npos) break;
    if (!room(hit - start + to.size())) return false;
    out->append(s.substr(start, hit - start));
    out->append(to);
    start = hit + from.size();
    ++done;
  }
  if (!room(s.size() - start)) return false;
  out->append(s.substr(start));
  return true;
}

std::string HtmlEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '\'': out += "&#39;"; break;
      case '"': out += "&#34;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

}  // namespace llmsync::text::jinja
