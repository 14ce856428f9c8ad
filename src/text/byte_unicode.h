// The byte-level alphabet of GPT-2 style BPE vocabularies: every byte 0..255 is shown as one
// printable code point, so token texts never contain raw spaces or control characters ("Ġ" is the
// space byte 0x20, "Ċ" is the newline 0x0A).
//
// The map is the one GPT-2 defined: the printable Latin-1 bytes (0x21..0x7E, 0xA1..0xAC,
// 0xAE..0xFF) stand for themselves, and the remaining 68 bytes take U+0100, U+0101, ... in byte
// order. It is computed from that rule, not tabulated by hand.
//
// Thread safety: pure functions over tables built once, on first use (a function-local static).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace llmsync::text {

// The code point that shows byte `b`.
char32_t ByteToCodePoint(std::uint8_t b);

// The byte a code point shows, or nullopt when it is not in the byte-level alphabet.
std::optional<std::uint8_t> CodePointToByte(char32_t cp);

// Appends the byte-level spelling of raw bytes: each byte becomes its code point, in UTF-8.
void AppendByteLevel(std::string_view raw, std::string* out);

// Appends the raw bytes a byte-level token text spells. A code point outside the alphabet is
// copied through as its UTF-8 (vocabularies do not contain such tokens, but decoding never fails).
// REQUIRES: text is valid UTF-8.
void AppendByteLevelDecoded(std::string_view text, std::string* out);

}  // namespace llmsync::text
