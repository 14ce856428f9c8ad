// `llmsync bench sse`: one run followed by N live SSE subscribers (default 1,000), all connected
// before the run starts. Reports per-event delivery latency (the event's created_at, stamped by
// the store when it commits the event, vs. the wall-clock time a subscriber parsed it; 1 ms
// resolution) and the server's CPU time (process CPU minus the benchmark's own client threads).
#include <sys/resource.h>

// <utility> must precede Asio: Boost 1.74's awaitable.hpp needs it.
#include <utility>

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <iostream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "base/env.h"
#include "base/logging.h"
#include "cli/client_util.h"
#include "cli/commands.h"
#include "client/sse_parser.h"
#include "store/sqlite/sqlite_store.h"

namespace llmsync::cli {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using Json = nlohmann::json;

struct SseFlags {
  int subscribers = 1000;
  std::int32_t tokens = 200;
  std::string model;
  int threads = 0;
  int http_threads = 2;
};

double UnixMsNow() {
  return std::chrono::duration<double, std::milli>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double CpuSeconds(int who) {
  rusage u{};
  ::getrusage(who, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// One subscriber: connect, GET the events, parse SSE as bytes arrive, note each token's receipt.
struct Subscriber {
  explicit Subscriber(net::io_context& ioc) : stream(ioc) {}
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
  http::request<http::empty_body> request;
  http::response_parser<http::string_body> parser;
  // Beast keeps a reference to the chunk callback, so it lives here, beside its parser.
  std::function<std::size_t(std::uint64_t, beast::string_view, beast::error_code&)> on_chunk;
  client::SseParser sse;
  std::vector<std::pair<std::uint64_t, double>> receipts;  // token event id, unix ms
  bool ok = false;
  bool finished = false;
};

class FanOut {
 public:
  FanOut(int n, std::uint16_t port, const std::string& target) : port_(port) {
    for (int i = 0; i < n; ++i) {
      subs_.push_back(std::make_unique<Subscriber>(ioc_));
      Subscriber& s = *subs_.back();
      s.request.method(http::verb::get);
      s.request.target(target);
      s.request.version(11);
      s.request.set(http::field::host, "127.0.0.1");
      s.request.set(http::field::accept, "text/event-stream");
      s.parser.body_limit(std::numeric_limits<std::uint64_t>::max());
      s.on_chunk = [&s](std::uint64_t, beast::string_view body, beast::error_code&) {
        Feed(s, std::string_view(body.data(), body.size()));
        return body.size();
      };
      s.parser.on_chunk_body(s.on_chunk);
    }
  }

  // Connects everyone on a thread of our own; returns once all have their response headers.
  Status ConnectAll() {
    net::ip::tcp::endpoint ep(net::ip::make_address("127.0.0.1"), port_);
    for (auto& s : subs_) Connect(*s, ep);
    thread_ = std::thread([this] {
      ioc_.run();
      client_cpu_s_ = CpuSeconds(RUSAGE_THREAD);
    });
    while (connected_.load() + failed_.load() < static_cast<int>(subs_.size())) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (failed_.load() > 0)
      return Status::Unavailable(std::to_string(failed_.load()) + " subscribers failed to connect");
    return Status::Ok();
  }
  void Join() { thread_.join(); }
  double ClientCpuSeconds() const { return client_cpu_s_; }
  const std::vector<std::unique_ptr<Subscriber>>& Subs() const { return subs_; }

 private:
  static void Feed(Subscriber& s, std::string_view bytes) {
    s.sse.Feed(bytes, [&s](const client::SseEvent& e) {
      if (e.event == "token") s.receipts.emplace_back(std::strtoull(e.id.c_str(), nullptr, 10), UnixMsNow());
      return true;
    });
  }

  void Connect(Subscriber& s, const net::ip::tcp::endpoint& ep) {
    s.stream.async_connect(ep, [this, &s](beast::error_code ec) {
      if (ec) return Fail();
      http::async_write(s.stream, s.request, [this, &s](beast::error_code ec2, std::size_t) {
        if (ec2) return Fail();
        http::async_read_header(s.stream, s.buffer, s.parser, [this, &s](beast::error_code ec3, std::size_t) {
          if (ec3 || s.parser.get().result_int() != 200) return Fail();
          s.ok = true;
          ++connected_;
          Read(s);
        });
      });
    });
  }

  void Read(Subscriber& s) {
    http::async_read_some(s.stream, s.buffer, s.parser, [this, &s](beast::error_code ec, std::size_t) {
      if (!s.parser.chunked() && !s.parser.get().body().empty()) {
        std::string pending = std::move(s.parser.get().body());
        s.parser.get().body().clear();
        Feed(s, pending);
      }
      if (ec || s.parser.is_done()) {
        s.finished = true;
        beast::error_code ignored;
        s.stream.socket().shutdown(net::ip::tcp::socket::shutdown_both, ignored);
        return;
      }
      Read(s);
    });
  }

  void Fail() { ++failed_; }

  net::io_context ioc_;
  std::uint16_t port_;
  std::vector<std::unique_ptr<Subscriber>> subs_;
  std::atomic<int> connected_{0};
  std::atomic<int> failed_{0};
  std::thread thread_;
  double client_cpu_s_ = 0;
};

double Percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::size_t k = std::min(v.size() - 1, static_cast<std::size_t>(p / 100.0 * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

Result<Json> Measure(const SseFlags& f, const std::string& data_dir) {
  EmbeddedOptions eo;
  eo.model_path = f.model.empty() ? DefaultDataDir() + "/models/demo.gguf" : f.model;
  if (f.model.empty()) LLMSYNC_RETURN_IF_ERROR(api::EnsureDemoModel(Env::Default(), eo.model_path));
  eo.data_dir = data_dir;
  eo.engine_threads = f.threads;
  eo.max_active_runs = 1;  // the measured run waits behind a blocker until everyone is connected
  eo.http_threads = f.http_threads;
  LLMSYNC_ASSIGN_OR_RETURN(std::unique_ptr<EmbeddedServer> server, EmbeddedServer::Start(eo));
  client::ClientOptions co;
  co.port = server->Port();
  client::Client c(co);
  LLMSYNC_RETURN_IF_ERROR(c.CreateSession());
  LLMSYNC_ASSIGN_OR_RETURN(client::AppendResult appended, c.Append("", {{"user", "Stream to everyone."}}));
  client::RunOptions blocker_options;
  blocker_options.from = appended.head;
  blocker_options.max_tokens = 1500;
  LLMSYNC_ASSIGN_OR_RETURN(std::string blocker, c.StartRun(blocker_options));
  client::RunOptions ro;
  ro.from = appended.head;
  ro.max_tokens = f.tokens;
  ro.seed = 7;
  LLMSYNC_ASSIGN_OR_RETURN(std::string run, c.StartRun(ro));

  FanOut fan(f.subscribers, server->Port(), "/v1/runs/" + run + "/events");
  LLMSYNC_RETURN_IF_ERROR(fan.ConnectAll());
  double cpu_before = CpuSeconds(RUSAGE_SELF);
  auto wall_start = std::chrono::steady_clock::now();
  LLMSYNC_RETURN_IF_ERROR(c.CancelRun(blocker));
  fan.Join();
  double wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  double process_cpu = CpuSeconds(RUSAGE_SELF) - cpu_before;
  server.reset();  // flushes the store

  store::SqliteStoreOptions so;
  so.path = data_dir + "/llmsync.sqlite";
  so.env = Env::Default();
  LLMSYNC_ASSIGN_OR_RETURN(std::unique_ptr<store::Store> st, store::OpenSqliteStore(so));
  LLMSYNC_ASSIGN_OR_RETURN(Id run_id, Id::FromHex(run));
  LLMSYNC_ASSIGN_OR_RETURN(std::vector<store::RunEvent> events,
                           st->ReadRunEvents("local", run_id, 0, 100000));
  std::map<std::uint64_t, std::int64_t> created;
  for (const store::RunEvent& e : events) {
    if (e.type == "token") created[e.event_id] = e.created_at_ms;
  }
  std::vector<double> latency;
  int complete = 0;
  for (const auto& s : fan.Subs()) {
    if (s->receipts.size() == created.size()) ++complete;
    for (const auto& [id, at] : s->receipts) {
      auto it = created.find(id);
      if (it != created.end()) latency.push_back(at - static_cast<double>(it->second));
    }
  }
  std::size_t deliveries = latency.size();
  double p50 = Percentile(latency, 50);
  double p99 = Percentile(latency, 99);
  double max = latency.empty() ? 0 : *std::max_element(latency.begin(), latency.end());
  double server_cpu = process_cpu - fan.ClientCpuSeconds();
  return Json{
      {"benchmark", "sse"},
      {"subscribers", f.subscribers},
      {"token_events", created.size()},
      {"deliveries", deliveries},
      {"subscribers_with_every_token", complete},
      {"latency_ms", {{"p50", p50}, {"p99", p99}, {"max", max}}},
      {"latency_definition", "client receipt (wall clock) - event created_at (store commit, ms)"},
      {"wall_s", wall_s},
      {"server_cpu_s", server_cpu},
      {"client_cpu_s", fan.ClientCpuSeconds()},
      {"server_cpu_us_per_delivery", deliveries > 0 ? server_cpu * 1e6 / static_cast<double>(deliveries) : 0},
      {"http_threads", f.http_threads}};
}

int RunSse(const SseFlags& f) {
  if (GetLogLevel() < LogLevel::kWarning) SetLogLevel(LogLevel::kWarning);
  // Each subscriber needs two descriptors in this process (ours and the server's).
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
  }
  auto dir = MakeTempDir("bench-sse");
  if (!dir.IsOk()) {
    std::cerr << "llmsync bench sse: " << dir.GetStatus().ToString() << "\n";
    return 1;
  }
  auto report = Measure(f, *dir);
  if (!report.IsOk()) {
    std::cerr << "llmsync bench sse: " << report.GetStatus().ToString() << "\n";
    return 1;
  }
  std::cout << report->dump(2) << std::endl;
  return (*report)["subscribers_with_every_token"].get<int>() == f.subscribers ? 0 : 1;
}

}  // namespace

void AddBenchSseCommand(CLI::App& app, CliState& state) {
  CLI::App* bench = GetOrAddSubcommand(app, "bench", "Benchmarks");
  auto f = std::make_shared<SseFlags>();
  CLI::App* cmd = bench->add_subcommand("sse", "One run followed by many live SSE subscribers");
  cmd->add_option("--subscribers", f->subscribers, "Live subscribers")->check(CLI::Range(1, 20000));
  cmd->add_option("--tokens", f->tokens, "Tokens the run generates")->check(CLI::Range(1, 4096));
  cmd->add_option("--model", f->model, "GGUF model (default: the demo model)");
  cmd->add_option("--threads", f->threads, "Engine threads")->check(CLI::PositiveNumber);
  cmd->add_option("--http-threads", f->http_threads, "Server HTTP threads")->check(CLI::PositiveNumber);
  cmd->callback([f, &state] { state.exit_code = RunSse(*f); });
}

}  // namespace llmsync::cli
