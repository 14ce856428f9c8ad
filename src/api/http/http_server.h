// HttpServer: HTTP/1.1 on Boost.Beast/Asio, serving one handler function.
//
// A pool of threads runs the io_context; each connection lives on its own strand. The server reads
// a request (bounded header and body sizes; an oversize body gets 413, a malformed request 400),
// calls the handler on the connection's strand, and writes the response, keeping the connection
// alive when the client asks. A stream response is sent with chunked transfer encoding: the
// producer writes through a StreamSink from any thread, the server queues and writes in order,
// sends a comment line as a heartbeat when the stream is idle, and notices a client that goes away
// (the sink then reports closed, so a run never waits for a dead subscriber).
//
// Limits (issue 17): at most max_connections open connections (a new one beyond it gets 503 with
// Retry-After and is closed); a request's headers must arrive within header_timeout of its first
// byte (or of the connection opening), and a keep-alive connection may idle for idle_timeout.
// When accept fails for lack of descriptors (EMFILE, ENFILE) the acceptor backs off 50-500 ms
// and logs one line per 5 s with the count, instead of spinning; a spare descriptor is held in
// reserve and released on the first such failure, so one connection (a /healthz probe) can still
// be accepted and answered; it is taken again once a connection closes.
//
// Thread safety: Start and Stop from one controlling thread; Port() from any thread once started.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "api/http/http_message.h"
#include "base/metrics.h"
#include "llmsync/status.h"

namespace llmsync::api {

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;  // 0 picks a free port
  int threads = 2;
  std::size_t max_body_bytes = 8 << 20;
  std::size_t max_header_bytes = 64 << 10;
  std::chrono::milliseconds idle_timeout{60000};    // keep-alive idle time, and a body's read time
  std::chrono::milliseconds header_timeout{10000};  // a new connection's (or begun request's) headers
  std::size_t max_connections = 1024;               // beyond it: 503 and close
  std::chrono::milliseconds heartbeat{15000};       // comment line on idle streams
  std::size_t max_stream_backlog_bytes = 32 << 20;  // a reader this far behind is disconnected
  MetricsRegistry* metrics = nullptr;               // optional
};

using RequestHandler = std::function<HttpResponse(const HttpRequest&)>;

class HttpServer {
 public:
  HttpServer(HttpServerOptions options, RequestHandler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds, listens and starts the threads. kUnavailable when the address cannot be bound.
  Status Start();
  std::uint16_t Port() const;
  // Stops accepting, closes every connection and stream, and joins the threads. Idempotent.
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace llmsync::api
