// HttpClient: a small blocking HTTP/1.1 client on Boost.Beast for one host, with server-sent
// event streaming. It keeps one connection alive between requests and reconnects when the server
// closed it. Used by `llmsync chat`, the demo, the benchmarks, and the tests' real client.
//
// Thread safety: one HttpClient per thread; it is not safe for concurrent use, except Abort, which
// any thread may call at any time.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "client/sse_parser.h"
#include "llmsync/status.h"

namespace llmsync::client {

struct HttpResult {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

using HeaderList = std::map<std::string, std::string>;

class HttpClient {
 public:
  HttpClient(std::string host, std::uint16_t port,
             std::chrono::milliseconds timeout = std::chrono::seconds(60));
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends one request. Transport failures are kUnavailable; any HTTP status is a result. A
  // non-empty body goes with Content-Type: application/json unless `headers` names another.
  Result<HttpResult> Send(const std::string& method, const std::string& target, const std::string& body = "",
                          const HeaderList& headers = {});
  Result<HttpResult> Get(const std::string& target, const HeaderList& headers = {}) {
    return Send("GET", target, "", headers);
  }
  Result<HttpResult> PostJson(const std::string& target, const std::string& json, HeaderList headers = {});

  // GETs `target` and feeds its body to an SSE parser, calling `on_event` per event until the
  // stream ends (OK), the callback returns false (OK), or the transport fails (kUnavailable).
  // `status` receives the HTTP status; a non-2xx body is returned in `error_body`.
  Status Stream(const std::string& target, const HeaderList& headers, const SseParser::Callback& on_event,
                int* status, std::string* error_body = nullptr);
  // The same for any method and body (an OpenAI-style POST with "stream": true).
  Status StreamRequest(const std::string& method, const std::string& target, const std::string& body,
                       const HeaderList& headers, const SseParser::Callback& on_event, int* status,
                       std::string* error_body = nullptr);

  // Ends a StreamRequest in progress on another thread (it returns kUnavailable promptly, even
  // when the server sends nothing) and makes every later one fail at once.
  void Abort();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace llmsync::client
