// Unicode normalization for tokenizers whose model normalizes its input before splitting it:
// Qwen2/Qwen3's tokenizer.json has an NFC normalizer, so "e" + U+0301 and "é" must give the same ids.
// Implemented with ICU's NFC (libicu); ASCII text, the common case, is returned without a copy.
//
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "llmsync/status.h"

namespace llmsync::text {

// The NFC form of `utf8`. REQUIRES: valid UTF-8 (the tokenizer checks before). Writes into
// `*storage` and returns a view of it when the text changes; otherwise returns `utf8` itself.
Result<std::string_view> ToNfc(std::string_view utf8, std::string* storage);

}  // namespace llmsync::text
