#include "text/unicode_normalize.h"

#include <unicode/normalizer2.h>
#include <unicode/unistr.h>

#include <algorithm>

namespace llmsync::text {

Result<std::string_view> ToNfc(std::string_view utf8, std::string* storage) {
  if (std::all_of(utf8.begin(), utf8.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; }))
    return utf8;
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* nfc = icu::Normalizer2::getNFCInstance(status);
  if (U_FAILURE(status)) return Status::Internal(std::string("ICU NFC unavailable: ") + u_errorName(status));
  const icu::UnicodeString text =
      icu::UnicodeString::fromUTF8(icu::StringPiece(utf8.data(), static_cast<std::int32_t>(utf8.size())));
  if (nfc->isNormalized(text, status) && U_SUCCESS(status)) return utf8;
  status = U_ZERO_ERROR;
  const icu::UnicodeString normalized = nfc->normalize(text, status);
  if (U_FAILURE(status)) return Status::Internal(std::string("ICU NFC failed: ") + u_errorName(status));
  storage->clear();
  normalized.toUTF8String(*storage);
  return std::string_view(*storage);
}

}  // namespace llmsync::text
