// UTF-8 and Python string semantics for the Jinja interpreter: Python strings are sequences of
// code points, so lengths, indexes, slices and case changes work on code points here too.
//
// Character classes come from Python's definitions (str.isspace) where they are short lists, and
// from the C library's C.UTF-8 locale (towupper/towlower/iswprint) otherwise; Python's full case
// mappings that change a string's length (German sharp s to "SS") are not reproduced.
//
// Thread safety: all functions are pure and safe to call concurrently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "text/utf8.h"  // AppendUtf8, IsValidUtf8: the strict codec shared with the tokenizer

namespace llmsync::text::jinja {

// Decodes the code point at s[*pos] and advances *pos. A byte that does not start a valid UTF-8
// sequence decodes as itself (0x80..0xFF) and advances one byte.
// REQUIRES: *pos < s.size().
char32_t NextCodePoint(std::string_view s, std::size_t* pos);

// Byte offsets of each code point of s, plus s.size() at the end.
std::vector<std::size_t> CodePointOffsets(std::string_view s);

bool IsPyWhitespace(char32_t cp);  // str.isspace()
bool IsPyPrintable(char32_t cp);   // str.isprintable(), for repr()
char32_t ToUpper(char32_t cp);
char32_t ToLower(char32_t cp);
bool IsCased(char32_t cp);  // has distinct upper/lower forms or is a letter with case

std::string StrUpper(std::string_view s);
std::string StrLower(std::string_view s);
std::string StrTitle(std::string_view s);       // str.title()
std::string StrCapitalize(std::string_view s);  // str.capitalize()

// str.strip(chars) family; chars == nullptr means whitespace.
enum class StripSide { kBoth, kLeft, kRight };
std::string StrStrip(std::string_view s, const std::string* chars, StripSide side);

// str.split(sep, maxsplit) and str.rsplit; sep == nullptr splits on runs of whitespace.
std::vector<std::string> StrSplit(std::string_view s, const std::string* sep, std::int64_t maxsplit);
std::vector<std::string> StrRSplit(std::string_view s, const std::string* sep, std::int64_t maxsplit);
std::vector<std::string> StrSplitLines(std::string_view s);  // str.splitlines() without keepends

// str.replace(old, new, count); count < 0 replaces all. Fails (returns false) when the result
// would exceed max_bytes.
bool StrReplace(std::string_view s, std::string_view from, std::string_view to, std::int64_t count,
                std::size_t max_bytes, std::string* out);

// markupsafe.escape: & < > ' " become entities.
std::string HtmlEscape(std::string_view s);

}  // namespace llmsync::text::jinja
