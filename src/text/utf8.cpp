#include "text/utf8.h"

namespace llmsync::text {
namespace {

bool IsContinuation(std::uint8_t b) { return (b & 0xC0) == 0x80; }

// The allowed range of the second byte of a sequence, which is where overlongs, surrogates and
// values above U+10FFFF are excluded; every later byte is a plain continuation byte.
struct SecondByteRange {
  std::uint8_t lo;
  std::uint8_t hi;
};

SecondByteRange SecondByteRangeFor(std::uint8_t lead) {
  switch (lead) {
    case 0xE0: return {0xA0, 0xBF};  // no overlong three-byte forms
    case 0xED: return {0x80, 0x9F};  // no surrogates
    case 0xF0: return {0x90, 0xBF};  // no overlong four-byte forms
    case 0xF4: return {0x80, 0x8F};  // nothing above U+10FFFF
    default: return {0x80, 0xBF};
  }
}

// How many bytes of s[pos..] are a valid prefix of the sequence starting there (at most its length).
std::size_t ValidPrefixLength(std::string_view s, std::size_t pos, std::size_t len) {
  const auto lead = static_cast<std::uint8_t>(s[pos]);
  std::size_t n = 1;
  while (n < len && pos + n < s.size()) {
    const auto b = static_cast<std::uint8_t>(s[pos + n]);
    if (n == 1) {
      const SecondByteRange r = SecondByteRangeFor(lead);
      if (b < r.lo || b > r.hi) break;
    } else if (!IsContinuation(b)) {
      break;
    }
    ++n;
  }
  return n;
}

}  // namespace

std::size_t Utf8SequenceLength(std::uint8_t lead) {
  if (lead < 0x80) return 1;
  if (lead < 0xC2) return 0;  // continuation bytes and the overlong leads 0xC0, 0xC1
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  if (lead < 0xF5) return 4;
  return 0;
}

std::optional<std::size_t> FindInvalidUtf8(std::string_view s) {
  std::size_t pos = 0;
  while (pos < s.size()) {
    const auto lead = static_cast<std::uint8_t>(s[pos]);
    if (lead < 0x80) {
      ++pos;
      continue;
    }
    const std::size_t len = Utf8SequenceLength(lead);
    if (len == 0 || ValidPrefixLength(s, pos, len) != len) return pos;
    pos += len;
  }
  return std::nullopt;
}

std::size_t IncompleteUtf8Tail(std::string_view s) {
  // A held-back sequence is at most 3 bytes, so its lead byte is among the last 3.
  const std::size_t lookback = s.size() < 3 ? s.size() : 3;
  for (std::size_t back = 1; back <= lookback; ++back) {
    const std::size_t pos = s.size() - back;
    const auto b = static_cast<std::uint8_t>(s[pos]);
    if (IsContinuation(b)) continue;
    const std::size_t len = Utf8SequenceLength(b);
    if (len <= back) return 0;  // complete, ASCII or not a lead byte at all
    return ValidPrefixLength(s, pos, len) == back ? back : 0;
  }
  return 0;
}

char32_t DecodeUtf8At(std::string_view s, std::size_t* pos) {
  const auto lead = static_cast<std::uint8_t>(s[*pos]);
  std::size_t len = Utf8SequenceLength(lead);
  if (len == 0 || *pos + len > s.size()) len = 1;  // unreachable for valid input; never overrun
  char32_t cp = 0;
  switch (len) {
    case 1: cp = lead; break;
    case 2: cp = lead & 0x1F; break;
    case 3: cp = lead & 0x0F; break;
    default: cp = lead & 0x07; break;
  }
  for (std::size_t i = 1; i < len; ++i) cp = (cp << 6) | (static_cast<std::uint8_t>(s[*pos + i]) & 0x3F);
  *pos += len;
  return cp;
}

void AppendUtf8(char32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace llmsync::text
