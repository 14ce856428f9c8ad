// HTTP request and response values exchanged between the HTTP server and the API handlers.
//
// Handlers never see Boost.Beast types: they take an HttpRequest and return an HttpResponse, which
// is a complete body, a stream, or deferred (a complete body that a handler finishes later, so
// that waiting for a generation never holds one of the few server threads). A stream response sends its
// headers, then hands the producer a StreamSink that it writes to from any thread (SSE events, as they
// happen) and closes when done.
//
// Thread safety: HttpRequest/HttpResponse are values. StreamSink methods are thread-safe.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace llmsync::api {

struct HttpRequest {
  std::string method;                                      // upper case: "GET", "POST", ...
  std::string path;                                        // without the query string, percent-decoded
  std::vector<std::pair<std::string, std::string>> query;  // decoded, in order
  std::map<std::string, std::string> headers;              // names lower-cased
  std::string body;
  std::string remote_address;

  std::optional<std::string> Header(std::string_view lower_name) const;
  std::optional<std::string> Query(std::string_view name) const;
};

// The writing end of a streamed response body.
class StreamSink {
 public:
  virtual ~StreamSink() = default;
  // Queues bytes for the client. Returns false once the client is gone or the server is stopping;
  // the producer should then drop the sink.
  virtual bool Write(std::string bytes) = 0;
  // Ends the response. Idempotent.
  virtual void Close() = 0;
  virtual bool IsOpen() const = 0;
};

struct HttpResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // When set, the response is streamed (chunked): the server sends the status and headers, then
  // calls this once with the sink. It runs on a server thread and must not block for long.
  std::function<void(std::shared_ptr<StreamSink>)> stream;
  // When set (and `stream` is not), the response is known only later: the server calls this once
  // with `finish`, which the handler's code calls once, from any thread, with the complete
  // response (status, headers, body). Meanwhile the connection waits and holds no server thread.
  std::function<void(std::function<void(HttpResponse)> finish)> deferred;

  HttpResponse& SetHeader(std::string name, std::string value);
};

// Splits "a=1&b=x%20y" into decoded pairs; '+' is a space. Malformed escapes are kept literally.
std::vector<std::pair<std::string, std::string>> ParseQueryString(std::string_view query);
std::string PercentDecode(std::string_view text, bool plus_is_space);

}  // namespace llmsync::api
