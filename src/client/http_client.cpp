#include "client/http_client.h"

#include <sys/socket.h>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <limits>
#include <mutex>
#include <optional>

namespace llmsync::client {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using Tcp = net::ip::tcp;

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

template <typename Message>
void CopyHeaders(const Message& msg, std::map<std::string, std::string>* out) {
  for (const auto& field : msg) (*out)[Lower(std::string(field.name_string()))] = std::string(field.value());
}

}  // namespace

struct HttpClient::Impl {
  std::string host;
  std::uint16_t port;
  std::chrono::milliseconds timeout;
  net::io_context ioc;
  std::optional<beast::tcp_stream> stream;
  beast::flat_buffer buffer;
  std::mutex abort_mu;
  int streaming_fd = -1;  // GUARDED_BY(abort_mu): the socket of a StreamRequest in progress
  bool aborted = false;   // GUARDED_BY(abort_mu)

  Status Connect(beast::tcp_stream& s) {
    beast::error_code ec;
    Tcp::resolver resolver(ioc);
    auto endpoints = resolver.resolve(host, std::to_string(port), ec);
    if (ec) return Status::Unavailable("cannot resolve " + host + ": " + ec.message());
    s.expires_after(timeout);
    s.connect(endpoints, ec);
    if (ec)
      return Status::Unavailable("cannot connect to " + host + ":" + std::to_string(port) + ": " +
                                 ec.message());
    return Status::Ok();
  }

  http::request<http::string_body> MakeRequest(const std::string& method, const std::string& target,
                                               const std::string& body, const HeaderList& headers) {
    http::request<http::string_body> req;
    req.method_string(method);
    req.target(target);
    req.version(11);
    req.set(http::field::host, host + ":" + std::to_string(port));
    req.set(http::field::user_agent, "llmsync-client");
    // A body is JSON unless the caller says otherwise: the server answers 415 to a body without
    // a JSON Content-Type (docs/PROTOCOL.md).
    if (!body.empty()) req.set(http::field::content_type, "application/json");
    for (const auto& [k, v] : headers) req.set(k, v);
    req.body() = body;
    req.keep_alive(true);
    req.prepare_payload();
    return req;
  }

  Result<HttpResult> SendOnce(http::request<http::string_body>& req, bool* retryable) {
    *retryable = false;
    if (!stream) {
      stream.emplace(ioc);
      buffer.clear();
      LLMSYNC_RETURN_IF_ERROR(Connect(*stream));
    } else {
      *retryable = true;  // a kept-alive connection may have been closed by the server meanwhile
    }
    beast::error_code ec;
    stream->expires_after(timeout);
    http::write(*stream, req, ec);
    if (ec) {
      stream.reset();
      return Status::Unavailable("sending request: " + ec.message());
    }
    http::response_parser<http::string_body> parser;
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    http::read(*stream, buffer, parser, ec);
    if (ec) {
      stream.reset();
      return Status::Unavailable("reading response: " + ec.message());
    }
    *retryable = false;
    auto res = parser.release();
    HttpResult out;
    out.status = static_cast<int>(res.result_int());
    CopyHeaders(res, &out.headers);
    out.body = std::move(res.body());
    if (!res.keep_alive()) stream.reset();
    return out;
  }
};

HttpClient::HttpClient(std::string host, std::uint16_t port, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>()) {
  impl_->host = std::move(host);
  impl_->port = port;
  impl_->timeout = timeout;
}

HttpClient::~HttpClient() = default;

Result<HttpResult> HttpClient::Send(const std::string& method, const std::string& target,
                                    const std::string& body, const HeaderList& headers) {
  auto req = impl_->MakeRequest(method, target, body, headers);
  bool retryable = false;
  Result<HttpResult> r = impl_->SendOnce(req, &retryable);
  if (!r.IsOk() && retryable) r = impl_->SendOnce(req, &retryable);  // once, on a fresh connection
  return r;
}

Result<HttpResult> HttpClient::PostJson(const std::string& target, const std::string& json,
                                        HeaderList headers) {
  headers.emplace("Content-Type", "application/json");
  return Send("POST", target, json, headers);
}

Status HttpClient::Stream(const std::string& target, const HeaderList& headers,
                          const SseParser::Callback& on_event, int* status, std::string* error_body) {
  return StreamRequest("GET", target, "", headers, on_event, status, error_body);
}

Status HttpClient::StreamRequest(const std::string& method, const std::string& target,
                                 const std::string& body, const HeaderList& headers,
                                 const SseParser::Callback& on_event, int* status, std::string* error_body) {
  beast::tcp_stream s(impl_->ioc);
  LLMSYNC_RETURN_IF_ERROR(impl_->Connect(s));
  {
    std::lock_guard<std::mutex> lock(impl_->abort_mu);
    if (impl_->aborted) return Status::Unavailable("the request was aborted");
    impl_->streaming_fd = s.socket().native_handle();
  }
  struct Unregister {
    Impl* impl;
    ~Unregister() {
      std::lock_guard<std::mutex> lock(impl->abort_mu);
      impl->streaming_fd = -1;
    }
  } unregister{impl_.get()};
  HeaderList with_accept = headers;
  with_accept.emplace("Accept", "text/event-stream");
  auto req = impl_->MakeRequest(method, target, body, with_accept);
  beast::error_code ec;
  http::write(s, req, ec);
  if (ec) return Status::Unavailable("sending request: " + ec.message());

  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  s.expires_after(impl_->timeout);
  http::read_header(s, buffer, parser, ec);
  if (ec) return Status::Unavailable("reading response header: " + ec.message());
  *status = static_cast<int>(parser.get().result_int());
  if (*status < 200 || *status >= 300) {
    http::read(s, buffer, parser, ec);
    if (error_body != nullptr) *error_body = parser.get().body();
    return Status::Ok();
  }

  SseParser sse;
  bool stopped = false;
  auto on_chunk = [&](std::uint64_t, beast::string_view body, beast::error_code& cb_ec) -> std::size_t {
    if (!sse.Feed(std::string_view(body.data(), body.size()), on_event)) {
      stopped = true;
      cb_ec = net::error::operation_aborted;
    }
    return body.size();
  };
  parser.on_chunk_body(on_chunk);
  while (!parser.is_done()) {
    s.expires_after(impl_->timeout);
    http::read_some(s, buffer, parser, ec);
    if (stopped) return Status::Ok();
    if (ec == http::error::end_of_stream || ec == net::error::eof) break;
    if (ec) return Status::Unavailable("stream interrupted: " + ec.message());
    if (!parser.chunked() && !parser.get().body().empty()) {
      // A non-chunked stream (body delimited by close): feed what arrived.
      std::string pending = std::move(parser.get().body());
      parser.get().body().clear();
      if (!sse.Feed(pending, on_event)) return Status::Ok();
    }
  }
  return Status::Ok();
}

void HttpClient::Abort() {
  std::lock_guard<std::mutex> lock(impl_->abort_mu);
  impl_->aborted = true;
  // shutdown, not close: the socket stays owned by the streaming thread, whose blocked read
  // returns at once. The descriptor cannot be reused meanwhile: it is unregistered before closing.
  if (impl_->streaming_fd >= 0) ::shutdown(impl_->streaming_fd, SHUT_RDWR);
}

}  // namespace llmsync::client
