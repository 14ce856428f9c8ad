// Server-sent events framing (WHATWG HTML "Server-sent events"): one event is an `id:` line, an
// `event:` line and one `data:` line per line of payload, ended by a blank line.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace llmsync::api {

std::string FormatSseEvent(std::uint64_t id, std::string_view event, std::string_view data);
// The headers every SSE response carries.
inline constexpr std::string_view kSseContentType = "text/event-stream";

}  // namespace llmsync::api
