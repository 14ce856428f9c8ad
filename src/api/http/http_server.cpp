#include "api/http/http_server.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <deque>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "api/api_error.h"
#include "base/logging.h"

namespace llmsync::api {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using Tcp = net::ip::tcp;

struct ServerMetrics {
  Counter* bytes_in = nullptr;
  Counter* bytes_out = nullptr;
  Gauge* open_streams = nullptr;
  MetricsRegistry* registry = nullptr;

  void CountResponse(int status) const {
    if (registry == nullptr) return;
    registry
        ->GetCounter("llmsync_http_requests_total", "HTTP requests by status code",
                     {{"code", std::to_string(status)}})
        ->Add();
  }
};

class Connection;

// State shared by the acceptor and all connections.
struct ServerState {
  HttpServerOptions options;
  RequestHandler handler;
  ServerMetrics metrics;
  std::mutex mu;
  std::set<std::shared_ptr<Connection>> connections;  // GUARDED_BY(mu)
  bool stopping = false;                              // GUARDED_BY(mu)
  // A descriptor held in reserve for when the process runs out (see the header). -1: released.
  int reserve_fd = -1;  // GUARDED_BY(mu)

  void TakeReserveLocked() {
    if (reserve_fd < 0) reserve_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  }
  void ReleaseReserveLocked() {
    if (reserve_fd >= 0) ::close(reserve_fd);
    reserve_fd = -1;
  }
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Tcp::socket socket, ServerState* state)
      : stream_(std::move(socket)), heartbeat_(stream_.get_executor()), state_(state) {}

  void Start() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->ReadHeader(); });
  }

  // Over max_connections: a 503 and close, without reading the request.
  void StartRefused() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      HttpResponse r = ErrorResponse(503, "too_many_connections", "the server has too many open connections");
      self->WriteResponse(std::move(r), false);
    });
  }

  // Called from any thread.
  void Shutdown() {
    net::post(stream_.get_executor(), [self = shared_from_this()] { self->Close(); });
  }

  bool StreamOpen() const { return stream_open_.load(); }

  // Called from any thread by the stream sink.
  bool QueueFromSink(std::string bytes) {
    if (!stream_open_.load()) return false;
    net::post(stream_.get_executor(), [self = shared_from_this(), bytes = std::move(bytes)]() mutable {
      self->QueueChunk(std::move(bytes));
    });
    return true;
  }

  void CloseFromSink() {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      self->stream_finishing_ = true;
      self->WriteNext();
    });
  }

 private:
  // Between keep-alive requests: wait up to idle_timeout for the next request's first bytes.
  void ReadRequest() {
    if (buffer_.size() > 0) return ReadHeader();
    stream_.expires_after(state_->options.idle_timeout);
    stream_.async_read_some(buffer_.prepare(4096),
                            [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                              if (ec) return self->Close();
                              self->buffer_.commit(n);  // counted as bytes_in once parsed
                              self->ReadHeader();
                            });
  }

  // The headers within header_timeout (slow-header clients lose their connection), then the body.
  void ReadHeader() {
    parser_.emplace();
    parser_->body_limit(state_->options.max_body_bytes);
    parser_->header_limit(static_cast<std::uint32_t>(state_->options.max_header_bytes));
    stream_.expires_after(state_->options.header_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&Connection::OnHeader, shared_from_this()));
  }

  void OnHeader(beast::error_code ec, std::size_t bytes) {
    if (state_->metrics.bytes_in) state_->metrics.bytes_in->Add(bytes);
    if (ec) return OnReadError(ec);
    stream_.expires_after(state_->options.idle_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Connection::OnRead, shared_from_this()));
  }

  void OnReadError(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == net::error::eof || ec == beast::error::timeout ||
        ec == net::error::operation_aborted || ec == net::error::connection_reset) {
      return Close();
    }
    if (ec == http::error::body_limit) {
      return WriteResponse(
          ErrorResponse(413, "payload_too_large",
                        "request body exceeds " + std::to_string(state_->options.max_body_bytes) + " bytes"),
          false);
    }
    if (ec == http::error::header_limit) {
      return WriteResponse(ErrorResponse(431, "headers_too_large", "request headers are too large"), false);
    }
    WriteResponse(ErrorResponse(400, "bad_request", "malformed HTTP request: " + ec.message()), false);
  }

  void OnRead(beast::error_code ec, std::size_t bytes) {
    if (state_->metrics.bytes_in) state_->metrics.bytes_in->Add(bytes);
    if (ec) return OnReadError(ec);
    http::request<http::string_body> req = parser_->release();
    HttpRequest request = Convert(req);
    bool keep_alive = req.keep_alive();
    HttpResponse response = state_->handler(request);
    if (response.stream) return StartStream(std::move(response));
    if (response.deferred) return StartDeferred(std::move(response), keep_alive);
    WriteResponse(std::move(response), keep_alive);
  }

  // The handler finishes the response later, from any thread; only the first finish counts.
  void StartDeferred(HttpResponse response, bool keep_alive) {
    auto produce = std::move(response.deferred);
    auto finished = std::make_shared<std::atomic<bool>>(false);
    produce([self = shared_from_this(), finished, keep_alive](HttpResponse r) {
      if (finished->exchange(true)) return;
      r.stream = nullptr;
      r.deferred = nullptr;
      net::post(self->stream_.get_executor(), [self, r = std::move(r), keep_alive]() mutable {
        self->WriteResponse(std::move(r), keep_alive);
      });
    });
  }

  HttpRequest Convert(const http::request<http::string_body>& req) {
    HttpRequest out;
    out.method = std::string(req.method_string());
    std::string_view target(req.target().data(), req.target().size());
    std::size_t q = target.find('?');
    out.path = PercentDecode(target.substr(0, q), false);
    if (q != std::string_view::npos) out.query = ParseQueryString(target.substr(q + 1));
    for (const auto& field : req) {
      std::string name(field.name_string());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      out.headers[name] = std::string(field.value());
    }
    out.body = req.body();
    beast::error_code ec;
    auto endpoint = stream_.socket().remote_endpoint(ec);
    if (!ec) out.remote_address = endpoint.address().to_string();
    return out;
  }

  void WriteResponse(HttpResponse response, bool keep_alive) {
    state_->metrics.CountResponse(response.status);
    auto res = std::make_shared<http::response<http::string_body>>();
    res->version(11);
    res->result(static_cast<unsigned>(response.status));
    res->set(http::field::server, "llmsync");
    for (const auto& [name, value] : response.headers) res->set(name, value);
    res->body() = std::move(response.body);
    res->keep_alive(keep_alive);
    res->prepare_payload();
    stream_.expires_after(state_->options.idle_timeout);
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res, keep_alive](beast::error_code ec, std::size_t n) {
                        if (self->state_->metrics.bytes_out) self->state_->metrics.bytes_out->Add(n);
                        if (ec || !keep_alive) return self->Close();
                        self->ReadRequest();
                      });
  }

  void StartStream(HttpResponse response) {
    state_->metrics.CountResponse(response.status);
    auto res = std::make_shared<http::response<http::empty_body>>();
    res->version(11);
    res->result(static_cast<unsigned>(response.status));
    res->set(http::field::server, "llmsync");
    for (const auto& [name, value] : response.headers) res->set(name, value);
    res->chunked(true);
    res->keep_alive(false);  // a stream owns its connection until it ends
    auto serializer = std::make_shared<http::response_serializer<http::empty_body>>(*res);
    stream_.expires_never();
    stream_open_ = true;
    if (state_->metrics.open_streams) state_->metrics.open_streams->Add(1);
    auto start = std::move(response.stream);
    http::async_write_header(stream_, *serializer,
                             [self = shared_from_this(), res, serializer, start = std::move(start)](
                                 beast::error_code ec, std::size_t) {
                               if (ec) return self->Close();
                               self->WatchForDisconnect();
                               self->ArmHeartbeat();
                               start(self->MakeSink());
                             });
  }

  std::shared_ptr<StreamSink> MakeSink();

  // While streaming, the client sends nothing; a completed read means it closed or reset.
  void WatchForDisconnect() {
    stream_.async_read_some(net::buffer(discard_),
                            [self = shared_from_this()](beast::error_code ec, std::size_t) {
                              if (ec) return self->Close();
                              self->WatchForDisconnect();
                            });
  }

  void ArmHeartbeat() {
    heartbeat_.expires_after(state_->options.heartbeat);
    heartbeat_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec || !self->stream_open_) return;
      if (!self->writing_ && self->pending_.empty()) self->QueueChunk(": keepalive\n\n");
      self->ArmHeartbeat();
    });
  }

  void QueueChunk(std::string bytes) {
    if (!stream_open_ || bytes.empty()) return;
    pending_bytes_ += bytes.size();
    pending_.push_back(std::move(bytes));
    if (pending_bytes_ > state_->options.max_stream_backlog_bytes) {
      LLMSYNC_LOG(kWarning) << "closing a stream whose reader is " << pending_bytes_ << " bytes behind";
      return Close();
    }
    WriteNext();
  }

  void WriteNext() {
    if (writing_ || !stream_open_) return;
    if (pending_.empty()) {
      if (!stream_finishing_) return;
      writing_ = true;
      net::async_write(stream_, http::make_chunk_last(),
                       [self = shared_from_this()](beast::error_code, std::size_t) {
                         self->writing_ = false;
                         self->Close();
                       });
      return;
    }
    // Everything queued goes out as one chunk in one write: with many subscribers a burst of
    // events would otherwise cost a syscall and a completion per event per connection.
    if (pending_.size() > 1) {
      std::string merged;
      merged.reserve(pending_bytes_);
      for (const std::string& piece : pending_) merged += piece;
      pending_.clear();
      pending_.push_back(std::move(merged));
    }
    writing_ = true;
    net::async_write(stream_, http::make_chunk(net::buffer(pending_.front())),
                     [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                       self->writing_ = false;
                       if (self->state_->metrics.bytes_out) self->state_->metrics.bytes_out->Add(n);
                       if (ec) return self->Close();
                       self->pending_bytes_ -= self->pending_.front().size();
                       self->pending_.pop_front();
                       self->WriteNext();
                     });
  }

  void Close() {
    if (closed_) return;
    closed_ = true;
    if (stream_open_.exchange(false) && state_->metrics.open_streams) state_->metrics.open_streams->Add(-1);
    heartbeat_.cancel();
    beast::error_code ec;
    stream_.socket().shutdown(Tcp::socket::shutdown_both, ec);
    stream_.close();
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->connections.erase(shared_from_this());
    state_->TakeReserveLocked();  // a descriptor is free again: hold it for the next shortage
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  net::steady_timer heartbeat_;
  ServerState* state_;
  std::deque<std::string> pending_;  // stream chunks; the front is being written when writing_
  std::size_t pending_bytes_ = 0;
  bool writing_ = false;
  bool stream_finishing_ = false;
  bool closed_ = false;
  std::atomic<bool> stream_open_{false};
  char discard_[256];
};

class ConnectionSink final : public StreamSink {
 public:
  explicit ConnectionSink(std::weak_ptr<Connection> conn) : conn_(std::move(conn)) {}
  ~ConnectionSink() override { Close(); }
  bool Write(std::string bytes) override {
    auto c = conn_.lock();
    return c && c->QueueFromSink(std::move(bytes));
  }
  void Close() override {
    if (closed_.exchange(true)) return;
    if (auto c = conn_.lock()) c->CloseFromSink();
  }
  bool IsOpen() const override {
    auto c = conn_.lock();
    return c && c->StreamOpen() && !closed_.load();
  }

 private:
  std::weak_ptr<Connection> conn_;
  std::atomic<bool> closed_{false};
};

std::shared_ptr<StreamSink> Connection::MakeSink() {
  return std::make_shared<ConnectionSink>(weak_from_this());
}

}  // namespace

struct HttpServer::Impl {
  net::io_context ioc;
  std::optional<Tcp::acceptor> acceptor;
  std::optional<net::steady_timer> backoff_timer;
  std::vector<std::thread> threads;
  ServerState state;
  std::uint16_t port = 0;
  bool running = false;
  // Descriptor shortage (touched only by the accept chain, which runs one step at a time).
  std::chrono::milliseconds backoff{0};
  std::uint64_t shortage_count = 0;  // failed accepts since the last log line
  std::chrono::steady_clock::time_point last_shortage_log{};

  static bool OutOfDescriptors(const beast::error_code& ec) {
    return ec == net::error::no_descriptors || ec.value() == ENFILE || ec.value() == EMFILE;
  }

  void Accept() {
    acceptor->async_accept(net::make_strand(ioc), [this](beast::error_code ec, Tcp::socket socket) {
      if (ec == net::error::operation_aborted) return;
      if (ec && OutOfDescriptors(ec)) return OnShortage(ec);
      if (ec) {
        LLMSYNC_LOG(kWarning) << "accept failed: " << ec.message();
      } else {
        backoff = std::chrono::milliseconds(0);
        Admit(std::move(socket));
      }
      if (acceptor->is_open()) Accept();
    });
  }

  void Admit(Tcp::socket socket) {
    auto conn = std::make_shared<Connection>(std::move(socket), &state);
    bool accepted = false;
    bool over_cap = false;
    {
      std::lock_guard<std::mutex> lock(state.mu);
      if (!state.stopping) {
        over_cap = state.connections.size() >= state.options.max_connections;
        state.connections.insert(conn);
        accepted = true;
      }
    }
    if (!accepted) return;
    if (over_cap) return conn->StartRefused();
    conn->Start();
  }

  // EMFILE/ENFILE: release the reserve so the next accept can take one connection (a health
  // probe gets its answer), and otherwise wait before trying again instead of spinning.
  void OnShortage(const beast::error_code& ec) {
    ++shortage_count;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_shortage_log >= std::chrono::seconds(5)) {
      LLMSYNC_LOG(kWarning) << "accept failed: " << ec.message() << " (" << shortage_count
                            << " times since the last report); backing off";
      shortage_count = 0;
      last_shortage_log = now;
    }
    bool released = false;
    {
      std::lock_guard<std::mutex> lock(state.mu);
      released = state.reserve_fd >= 0;
      state.ReleaseReserveLocked();
    }
    if (released) {
      if (acceptor->is_open()) Accept();
      return;
    }
    backoff = std::clamp(backoff * 2, std::chrono::milliseconds(50), std::chrono::milliseconds(500));
    backoff_timer->expires_after(backoff);
    backoff_timer->async_wait([this](beast::error_code wait_ec) {
      if (!wait_ec && acceptor->is_open()) Accept();
    });
  }
};

HttpServer::HttpServer(HttpServerOptions options, RequestHandler handler) : impl_(std::make_unique<Impl>()) {
  impl_->state.options = std::move(options);
  impl_->state.handler = std::move(handler);
  if (MetricsRegistry* m = impl_->state.options.metrics) {
    impl_->state.metrics.registry = m;
    impl_->state.metrics.bytes_in = m->GetCounter("llmsync_http_bytes_in_total", "Bytes received over HTTP");
    impl_->state.metrics.bytes_out = m->GetCounter("llmsync_http_bytes_out_total", "Bytes sent over HTTP");
    impl_->state.metrics.open_streams = m->GetGauge("llmsync_sse_subscribers", "Open streaming responses");
  }
}

HttpServer::~HttpServer() { Stop(); }

Status HttpServer::Start() {
  beast::error_code ec;
  net::ip::address address = net::ip::make_address(impl_->state.options.host, ec);
  if (ec) return Status::InvalidArgument("invalid listen address '" + impl_->state.options.host + "'");
  Tcp::endpoint endpoint(address, impl_->state.options.port);
  impl_->acceptor.emplace(impl_->ioc);
  impl_->acceptor->open(endpoint.protocol(), ec);
  if (!ec) impl_->acceptor->set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) impl_->acceptor->bind(endpoint, ec);
  if (!ec) impl_->acceptor->listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status::Unavailable("cannot listen on " + impl_->state.options.host + ":" +
                               std::to_string(impl_->state.options.port) + ": " + ec.message());
  }
  impl_->port = impl_->acceptor->local_endpoint().port();
  impl_->backoff_timer.emplace(impl_->acceptor->get_executor());
  {
    std::lock_guard<std::mutex> lock(impl_->state.mu);
    impl_->state.TakeReserveLocked();
  }
  impl_->Accept();
  int n = std::max(1, impl_->state.options.threads);
  for (int i = 0; i < n; ++i) impl_->threads.emplace_back([this] { impl_->ioc.run(); });
  impl_->running = true;
  return Status::Ok();
}

std::uint16_t HttpServer::Port() const { return impl_->port; }

void HttpServer::Stop() {
  if (!impl_->running) return;
  impl_->running = false;
  net::post(impl_->ioc, [this] {
    beast::error_code ec;
    impl_->acceptor->close(ec);
    impl_->backoff_timer->cancel();
  });
  std::set<std::shared_ptr<Connection>> open;
  {
    std::lock_guard<std::mutex> lock(impl_->state.mu);
    impl_->state.stopping = true;
    open = impl_->state.connections;
  }
  for (const auto& c : open) c->Shutdown();
  // Connections close on their strands; give them a moment, then stop the loop regardless.
  for (int i = 0; i < 200; ++i) {
    {
      std::lock_guard<std::mutex> lock(impl_->state.mu);
      if (impl_->state.connections.empty()) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  impl_->ioc.stop();
  for (std::thread& t : impl_->threads) t.join();
  impl_->threads.clear();
  std::lock_guard<std::mutex> lock(impl_->state.mu);
  impl_->state.connections.clear();
  impl_->state.ReleaseReserveLocked();
}

}  // namespace llmsync::api
