#include "client/sse_parser.h"

namespace llmsync::client {

bool SseParser::Feed(std::string_view bytes, const Callback& on_event) {
  for (char c : bytes) {
    if (c == '\n' && last_was_cr_) {  // the LF of a CRLF already ended the line
      last_was_cr_ = false;
      continue;
    }
    last_was_cr_ = (c == '\r');
    if (c == '\r' || c == '\n') {
      bool keep_going = ProcessLine(line_, on_event);
      line_.clear();
      if (!keep_going) return false;
      continue;
    }
    line_ += c;
  }
  return true;
}

bool SseParser::ProcessLine(std::string_view line, const Callback& on_event) {
  if (line.empty()) {
    if (!has_data_) {
      event_.clear();
      return true;
    }
    SseEvent e{last_event_id_, event_.empty() ? "message" : event_, data_};
    event_.clear();
    data_.clear();
    has_data_ = false;
    return on_event(e);
  }
  if (line.front() == ':') return true;
  std::size_t colon = line.find(':');
  std::string_view field = line.substr(0, colon);
  std::string_view value = colon == std::string_view::npos ? std::string_view() : line.substr(colon + 1);
  if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  if (field == "data") {
    if (has_data_) data_ += '\n';
    data_ += value;
    has_data_ = true;
  } else if (field == "event") {
    event_ = std::string(value);
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) last_event_id_ = std::string(value);
  }
  return true;
}

}  // namespace llmsync::client
