#include "api/sse.h"

namespace llmsync::api {

std::string FormatSseEvent(std::uint64_t id, std::string_view event, std::string_view data) {
  std::string out = "id: " + std::to_string(id) + "\n";
  if (!event.empty()) {
    out += "event: ";
    out += event;
    out += '\n';
  }
  // Each line of the payload becomes a data: line; CR, LF and CRLF all end a line in SSE.
  std::size_t start = 0;
  while (true) {
    std::size_t end = data.find_first_of("\r\n", start);
    out += "data: ";
    out += data.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    out += '\n';
    if (end == std::string_view::npos) break;
    start = end + ((data[end] == '\r' && end + 1 < data.size() && data[end + 1] == '\n') ? 2 : 1);
  }
  out += '\n';
  return out;
}

}  // namespace llmsync::api
