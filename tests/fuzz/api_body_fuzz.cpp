// Fuzz target: arbitrary bytes as the JSON body of every request that takes one (sessions, nodes,
// head, lease, rehydrate, import, runs, compact, chat, completions, responses), dispatched
// in-process to a real LlmsyncServer's handler (LlmsyncServer::Handle: request hygiene, router and
// the real handlers over a real store, scheduler and tiny model) without a socket, so that an input
// costs what its handler costs. No answer may be a 500; a deferred answer must arrive and a
// stream must end (its run finishes) within 30 s: a crash, a 500 or a hang is a finding.
//
// Input: byte 0 picks the route, byte 1 the variations (an Idempotency-Key header, an SSE Accept,
// a path with an unknown session), the rest is the body. The routes' paths name a session created
// at start (a new one every 256 inputs, so that the fuzzer does not only meet the node limit), one
// of its nodes and one of its runs; `{n}` in the body is replaced with that node's id too. With
// LLMSYNC_FUZZ_VERBOSE set, each answer's status is printed.
//
// Thread safety: single-threaded driver; the server's threads run the runs.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>

#include "api/json_codec.h"
#include "api/llmsync_server.h"
#include "base/logging.h"
#include "fuzz_server.h"

namespace {

using llmsync::api::HttpRequest;
using llmsync::api::HttpResponse;
using llmsync::api::Json;

constexpr auto kPatience = std::chrono::seconds(30);
constexpr std::size_t kMaxStreamBytes = 1 << 16;

struct Route {
  const char* method;
  const char* path;  // {s}: the session, {n}: one of its nodes, {r}: one of its runs
};

constexpr Route kRoutes[] = {
    {"POST", "/v1/sessions"},
    {"POST", "/v1/sessions/import"},
    {"PATCH", "/v1/sessions/{s}"},
    {"POST", "/v1/sessions/{s}/nodes"},
    {"POST", "/v1/sessions/{s}/head"},
    {"POST", "/v1/sessions/{s}/lease"},
    {"POST", "/v1/sessions/{s}/nodes/{n}/rehydrate"},
    {"POST", "/v1/sessions/{s}/runs"},
    {"POST", "/v1/sessions/{s}/compact"},
    {"POST", "/v1/runs/{r}/cancel"},
    {"POST", "/v1/chat/completions"},
    {"POST", "/v1/completions"},
    {"POST", "/v1/responses"},
    {"POST", "/v1/responses/resp_{r}/cancel"},
};
constexpr std::size_t kRouteCount = sizeof kRoutes / sizeof kRoutes[0];

// The body of a streamed answer, up to kMaxStreamBytes; then it reports the client gone.
class CollectingSink : public llmsync::api::StreamSink {
 public:
  bool Write(std::string bytes) override {
    std::lock_guard lock(mu_);
    if (!open_) return false;
    body_ += bytes;
    if (body_.size() > kMaxStreamBytes) open_ = false;
    return open_;
  }
  void Close() override {
    std::lock_guard lock(mu_);
    open_ = false;
    cv_.notify_all();
  }
  bool IsOpen() const override {
    std::lock_guard lock(mu_);
    return open_;
  }
  bool WaitClosed() {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kPatience, [&] { return !open_; });
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = true;
  std::string body_;
};

[[noreturn]] void Fail(const HttpRequest& r, const std::string& what) {
  std::fprintf(stderr, "%s for %s %s\n--- body:\n%s\n", what.c_str(), r.method.c_str(), r.path.c_str(),
               r.body.c_str());
  std::abort();
}

// The complete answer to `r`: deferred answers awaited, streams read until they end.
HttpResponse Exchange(const llmsync::api::LlmsyncServer& server, const HttpRequest& r) {
  HttpResponse response = server.Handle(r);
  if (response.stream) {
    auto sink = std::make_shared<CollectingSink>();
    response.stream(sink);
    if (!sink->WaitClosed()) Fail(r, "a stream that did not end");
    response.stream = nullptr;
  } else if (response.deferred) {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<HttpResponse> done;
    response.deferred([&](HttpResponse finished) {
      std::lock_guard lock(mu);
      done = std::move(finished);
      cv.notify_all();
    });
    std::unique_lock lock(mu);
    if (!cv.wait_for(lock, kPatience, [&] { return done.has_value(); }))
      Fail(r, "a deferred answer that never came");
    response = std::move(*done);
  }
  if (response.status == 500) Fail(r, "500 (" + response.body + ")");
  static const bool verbose = std::getenv("LLMSYNC_FUZZ_VERBOSE") != nullptr;  // to check a corpus
  if (verbose)
    std::fprintf(stderr, "%d %s %s %.200s\n", response.status, r.method.c_str(), r.path.c_str(),
                 response.body.c_str());
  return response;
}

HttpRequest Request(std::string method, std::string path, std::string body) {
  HttpRequest r;
  r.method = std::move(method);
  r.path = std::move(path);
  r.headers["host"] = "127.0.0.1";
  r.headers["content-type"] = "application/json";
  r.body = std::move(body);
  r.remote_address = "127.0.0.1";
  return r;
}

std::string Field(const HttpResponse& response, const char* name) {
  Json j = Json::parse(response.body, nullptr, false);
  if (!j.is_object() || !j.contains(name) || !j[name].is_string()) return std::string(64, '0');
  return j[name].get<std::string>();
}

struct Fixture {
  llmsync::fuzz::FuzzServer fuzz;
  llmsync::api::LlmsyncServer* server = fuzz.server.get();
  std::string session, node, run;

  Fixture() { NewSession(); }

  void NewSession() {
    session = Field(Exchange(*server, Request("POST", "/v1/sessions", "{}")), "id");
    HttpResponse appended = Exchange(
        *server, Request("POST", "/v1/sessions/" + session + "/nodes",
                         R"({"parent":null,"nodes":[{"kind":"user","text":"hi","visibility":"hidden"}]})"));
    node = Field(appended, "head");
    run = Field(
        Exchange(*server, Request("POST", "/v1/sessions/" + session + "/runs", R"({"max_tokens":2})")), "id");
  }

  std::string Path(std::string pattern, bool unknown_session) const {
    Put(pattern, "{s}", unknown_session ? std::string(64, 'a') : session);
    Put(pattern, "{n}", node);
    Put(pattern, "{r}", run);
    return pattern;
  }

  // Replaces every `key` (3 characters) in `text` with `value`.
  static void Put(std::string& text, std::string_view key, const std::string& value) {
    for (std::size_t at = text.find(key); at != std::string::npos; at = text.find(key, at + value.size()))
      text.replace(at, key.size(), value);
  }
};

Fixture* fixture = nullptr;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  llmsync::SetLogLevel(llmsync::LogLevel::kOff);
  fixture = new Fixture();  // lives until exit: the server's threads must not outlive it
  std::atexit([] { delete fixture; });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  static int count = 0;
  if (++count % 256 == 0) fixture->NewSession();
  const Route& route = kRoutes[data[0] % kRouteCount];
  const std::uint8_t flags = data[1];
  HttpRequest r = Request(route.method, fixture->Path(route.path, (flags & 4) != 0),
                          std::string(reinterpret_cast<const char*>(data) + 2, size - 2));
  Fixture::Put(r.body, "{n}", fixture->node);
  if (flags & 1) r.headers["idempotency-key"] = "k" + std::to_string(flags >> 4);
  if (flags & 2) r.headers["accept"] = "text/event-stream";
  if (std::string_view(route.path) == "/v1/sessions/import")
    r.headers["content-type"] = "application/x-ndjson";
  (void)Exchange(*fixture->server, r);
  return 0;
}
