#include "text/byte_unicode.h"

#include <array>

#include "text/utf8.h"

namespace llmsync::text {
namespace {

bool ShowsItself(unsigned b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE; }

struct ByteLevelTables {
  std::array<char32_t, 256> to_cp{};
  // Indexed by code point: every code point of the alphabet is below 0x100 + 68.
  std::array<std::int16_t, 0x200> to_byte{};
  std::array<std::string, 256> utf8{};

  ByteLevelTables() {
    to_byte.fill(-1);
    char32_t next = 0x100;
    for (unsigned b = 0; b < 256; ++b) {
      to_cp[b] = ShowsItself(b) ? static_cast<char32_t>(b) : next++;
      to_byte[to_cp[b]] = static_cast<std::int16_t>(b);
      AppendUtf8(to_cp[b], &utf8[b]);
    }
  }
};

const ByteLevelTables& Tables() {
  static const ByteLevelTables kTables;
  return kTables;
}

}  // namespace

char32_t ByteToCodePoint(std::uint8_t b) { return Tables().to_cp[b]; }

std::optional<std::uint8_t> CodePointToByte(char32_t cp) {
  if (cp >= Tables().to_byte.size() || Tables().to_byte[cp] < 0) return std::nullopt;
  return static_cast<std::uint8_t>(Tables().to_byte[cp]);
}

void AppendByteLevel(std::string_view raw, std::string* out) {
  const ByteLevelTables& t = Tables();
  for (char c : raw) out->append(t.utf8[static_cast<std::uint8_t>(c)]);
}

void AppendByteLevelDecoded(std::string_view text, std::string* out) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t start = pos;
    const char32_t cp = DecodeUtf8At(text, &pos);
    if (std::optional<std::uint8_t> b = CodePointToByte(cp)) {
      out->push_back(static_cast<char>(*b));
    } else {
      out->append(text.substr(start, pos - start));
    }
  }
}

}  // namespace llmsync::text
