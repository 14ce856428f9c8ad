// SseParser: turns a byte stream of server-sent events into events, incrementally.
//
// Follows the WHATWG event-stream rules: lines end with LF, CR or CRLF (also across Feed calls);
// a line starting with ':' is a comment; "field: value" drops one leading space from the value;
// `data` lines join with '\n'; a blank line dispatches the event; `id` persists as the last event
// id (what a reconnect sends as Last-Event-ID); an event without data is not dispatched.
//
// Thread safety: one parser per stream, used by one thread.
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace llmsync::client {

struct SseEvent {
  std::string id;     // the last event id in effect when this event was dispatched
  std::string event;  // "message" when the stream named none
  std::string data;
};

class SseParser {
 public:
  using Callback = std::function<bool(const SseEvent&)>;  // return false to stop

  // Feeds bytes; calls `on_event` for each complete event. Returns false if a callback stopped.
  bool Feed(std::string_view bytes, const Callback& on_event);
  const std::string& LastEventId() const { return last_event_id_; }

 private:
  bool ProcessLine(std::string_view line, const Callback& on_event);

  std::string line_;
  bool last_was_cr_ = false;
  std::string event_;
  std::string data_;
  bool has_data_ = false;
  std::string last_event_id_;
};

}  // namespace llmsync::client
