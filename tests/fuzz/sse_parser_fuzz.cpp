// Fuzz target: arbitrary bytes as a server-sent event stream. The client's parser must never crash,
// and must see the same events whether the bytes arrive at once or in pieces (the first byte picks
// the piece size), as they do from a real socket.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "client/sse_parser.h"

namespace {

std::vector<std::string> Parse(std::string_view bytes, std::size_t piece) {
  llmsync::client::SseParser parser;
  std::vector<std::string> seen;
  auto on_event = [&](const llmsync::client::SseEvent& e) {
    seen.push_back(e.id + '\x1f' + e.event + '\x1f' + e.data);
    return true;
  };
  for (std::size_t at = 0; at < bytes.size(); at += piece) parser.Feed(bytes.substr(at, piece), on_event);
  seen.push_back("last-id " + parser.LastEventId());
  return seen;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t piece = 1 + data[0] % 7;
  std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (Parse(bytes, bytes.size() + 1) != Parse(bytes, piece)) std::abort();
  return 0;
}
