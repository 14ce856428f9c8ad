// Fuzz target for the bundle parser and verifier: any input must produce a Status, never a
// crash, an exception or a sanitizer report.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "session/bundle.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto bundle = llmsync::session::ParseBundle(text);
  if (bundle.IsOk()) {
    (void)llmsync::session::VerifyBundle(*bundle, llmsync::session::SessionLimits{});
    (void)llmsync::session::EncodeBundle(*bundle);
  }
  return 0;
}
