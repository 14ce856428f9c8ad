// UTF-8 helpers for the tokenizers: strict validation, code point decoding and encoding, and the
// "incomplete tail" test the streaming decoder uses to hold back a character split across tokens.
//
// "Valid" means RFC 3629 UTF-8: no overlong forms, no surrogates (U+D800..U+DFFF), nothing above
// U+10FFFF. This is the same rule PCRE2 applies in UTF mode, so text that passes here can be matched
// with PCRE2_NO_UTF_CHECK.
//
// Thread safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace llmsync::text {

// Length of the sequence a lead byte announces (1..4), or 0 for a byte that cannot start one
// (a continuation byte, 0xC0, 0xC1, 0xF5..0xFF).
std::size_t Utf8SequenceLength(std::uint8_t lead);

// Byte offset of the first byte that is not part of a valid sequence, or nullopt when all of `s`
// is valid UTF-8 (a truncated final sequence is invalid).
std::optional<std::size_t> FindInvalidUtf8(std::string_view s);

inline bool IsValidUtf8(std::string_view s) { return !FindInvalidUtf8(s).has_value(); }

// Number of bytes (0..3) at the end of `s` that form a proper prefix of a valid sequence: bytes that
// may still become a complete character when more bytes arrive. Bytes that can never become valid
// are not counted.
std::size_t IncompleteUtf8Tail(std::string_view s);

// Decodes the code point starting at s[*pos] and advances *pos past it.
// REQUIRES: s is valid UTF-8 and *pos < s.size() is the start of a sequence.
char32_t DecodeUtf8At(std::string_view s, std::size_t* pos);

// Appends the UTF-8 encoding of `cp`.
// REQUIRES: cp <= 0x10FFFF and is not a surrogate.
void AppendUtf8(char32_t cp, std::string* out);

}  // namespace llmsync::text
