// The llmsync release version, for `llmsync version` and the server's /healthz.
//
// Thread safety: constants only.
#pragma once

#include <string_view>

namespace llmsync {

inline constexpr std::string_view kVersion = "0.1.0";

}  // namespace llmsync
