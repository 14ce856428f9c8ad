// Base64url (RFC 4648 section 5, URL- and filename-safe alphabet) without padding: how binary
// values such as sealed blobs travel inside JSON strings and URLs.
//
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "llmsync/status.h"

namespace llmsync {

std::string Base64UrlEncode(std::string_view bytes);
// Strict: only the alphabet A-Z a-z 0-9 - _, no padding, no whitespace, a length that is not 1
// modulo 4, and zero unused bits in the last character (so every value has one spelling).
// kInvalidArgument naming the offset of the first bad character otherwise.
Result<std::string> Base64UrlDecode(std::string_view text);

}  // namespace llmsync
