// Issue 17, the edge: hostile request bodies, integer ranges, request hygiene (Content-Type, Host,
// Origin, CORS), the bounded run queue, and the HTTP server's connection limits, all through a
// real server and client. After every refusal the server must still serve.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "api/http/http_server.h"
#include "server_test_env.h"

namespace llmsync::testing {
namespace {

// A JSON value nested `depth` arrays deep (200 KB at 100,000).
std::string DeepArray(int depth) { return std::string(depth, '[') + "1" + std::string(depth, ']'); }

class EdgeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = ServerTestEnv::TinyModel(dir_);
    env_ = std::make_unique<ServerTestEnv>(model_);
    ASSERT_TRUE(env_->Start(dir_.File("data"), Config()).IsOk());
  }
  void TearDown() override { env_->Stop(); }
  virtual api::ServerConfig Config() { return {}; }

  client::HttpResult Raw(const std::string& method, const std::string& target, const std::string& body,
                         client::HeaderList headers = {}) {
    auto r = env_->Client().Send(method, target, body, headers);
    EXPECT_TRUE(r.IsOk()) << r.GetStatus().ToString();
    return r.IsOk() ? *r : client::HttpResult{};
  }
  std::string NewSessionWithUser() {
    auto [status, body] = env_->Post("/v1/sessions", Json::object());
    EXPECT_EQ(status, 201) << body;
    std::string s = body.value("id", "");
    auto [st, appended] = env_->Post("/v1/sessions/" + s + "/nodes",
                                     {{"parent", nullptr}, {"nodes", {{{"kind", "user"}, {"text", "hi"}}}}});
    EXPECT_EQ(st, 201) << appended;
    return s;
  }
  void ExpectStillServing() {
    auto [status, body] = env_->Get("/healthz");
    EXPECT_EQ(status, 200) << body;
    auto [created, session] = env_->Post("/v1/sessions", Json::object());
    EXPECT_EQ(created, 201) << session;
  }
  void ExpectError(const client::HttpResult& r, int status, const std::string& code,
                   const std::string& says) {
    EXPECT_EQ(r.status, status) << r.body;
    Json j = Json::parse(r.body, nullptr, false);
    ASSERT_TRUE(j.is_object()) << r.body;
    EXPECT_EQ(j["error"].value("code", ""), code) << r.body;
    EXPECT_NE(j["error"].value("message", "").find(says), std::string::npos) << r.body;
  }

  TestDir dir_;
  std::string model_;
  std::unique_ptr<ServerTestEnv> env_;
};

// Issue 17 item 1: 100,000 levels anywhere in a body once overflowed the stack.
TEST_F(EdgeTest, DeeplyNestedBodiesAre400AndTheServerKeepsServing) {
  std::string s = NewSessionWithUser();
  const std::string deep = DeepArray(100'000);
  ExpectError(Raw("POST", "/v1/sessions/" + s + "/runs", R"({"max_tokens":2,"ignored":)" + deep + "}"), 400,
              "invalid_argument", "deeper than 64 levels");
  const std::string messages = R"("messages":[{"role":"user","content":"hi"}])";
  ExpectError(Raw("POST", "/v1/chat/completions",
                  "{" + messages +
                      R"(,"max_tokens":2,"response_format":{"type":"json_schema","json_schema":{"name":"x",)"
                      R"("schema":{"type":"object","properties":{"a":{"enum":[)" +
                      deep + "]}}}}}}"),
              400, "invalid_argument", "deeper than 64 levels");
  ExpectError(Raw("POST", "/v1/responses",
                  R"({"input":"hi","max_output_tokens":2,"text":{"format":{"type":"json_schema","name":"x",)"
                  R"("schema":{"type":"object","properties":{"a":{"type":"string","default":)" +
                      deep + "}}}}}}"),
              400, "invalid_argument", "deeper than 64 levels");
  // At the limit the body is parsed as usual (the extra field is ignored).
  auto ok = Raw("POST", "/v1/sessions/" + s + "/runs", R"({"max_tokens":1,"ignored":)" + DeepArray(63) + "}");
  EXPECT_EQ(ok.status, 202) << ok.body;
  ExpectStillServing();
}

TEST_F(EdgeTest, IntegersOutOfRangeAre400NotWrapped) {
  std::string s = NewSessionWithUser();
  for (const char* body :
       {R"({"max_tokens":4294967297})", R"({"max_tokens":-1e400})", R"({"top_k":2147483648})",
        R"({"seed":-1})", R"({"lease_s":1e30})", R"({"temperature":1e300})"}) {
    auto r = Raw("POST", "/v1/sessions/" + s + "/runs", body);
    EXPECT_EQ(r.status, 400) << body << " -> " << r.body;
  }
  auto chat = Raw("POST", "/v1/chat/completions",
                  R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":4294967297})");
  EXPECT_EQ(chat.status, 400) << chat.body;
  ExpectStillServing();
}

TEST_F(EdgeTest, TamperedBundleIs400) {
  std::string s = NewSessionWithUser();
  auto exported = Raw("GET", "/v1/sessions/" + s + "/export", "");
  ASSERT_EQ(exported.status, 200) << exported.body;
  std::string bundle = exported.body;
  std::size_t at = bundle.find("\"hi\"");
  ASSERT_NE(at, std::string::npos) << bundle;
  bundle.replace(at, 4, "\"ho\"");
  auto r = Raw("POST", "/v1/sessions/import", bundle);
  EXPECT_EQ(r.status, 400) << r.body;
  auto deep = Raw("POST", "/v1/sessions/import", DeepArray(100'000));
  EXPECT_EQ(deep.status, 400) << deep.body;
  ExpectStillServing();
}

TEST_F(EdgeTest, BodiesMustDeclareJson) {
  for (const char* type : {"text/plain", "application/x-www-form-urlencoded", "multipart/form-data"}) {
    ExpectError(Raw("POST", "/v1/sessions", "{}", {{"Content-Type", type}}), 415, "unsupported_media_type",
                "Content-Type: application/json");
  }
  auto charset = Raw("POST", "/v1/sessions", "{}", {{"Content-Type", "Application/JSON; charset=utf-8"}});
  EXPECT_EQ(charset.status, 201) << charset.body;
  // A request without a body (GET, a body-less POST) needs no Content-Type.
  EXPECT_EQ(Raw("GET", "/healthz", "").status, 200);
  ExpectStillServing();
}

// DNS rebinding: with no api_keys, a foreign Host name is refused before any handler runs.
TEST_F(EdgeTest, ForeignHostIsRefusedWithoutKeys) {
  ExpectError(Raw("GET", "/v1/sessions", "", {{"Host", "attacker.example:8420"}}), 421, "misdirected_request",
              "attacker.example");
  ExpectError(Raw("GET", "/healthz", "", {{"Host", "rebind.attacker.example"}}), 421, "misdirected_request",
              "not this server's");
  EXPECT_EQ(Raw("GET", "/healthz", "", {{"Host", "127.0.0.1.attacker.example"}}).status, 421);
  for (const char* host : {"localhost", "localhost:8420", "127.0.0.1:1", "[::1]:8420", "app.localhost"}) {
    EXPECT_EQ(Raw("GET", "/healthz", "", {{"Host", host}}).status, 200) << host;
  }
}

TEST_F(EdgeTest, OriginMustBeAllowedAndPreflightIsRefusedForOthers) {
  ExpectError(Raw("POST", "/v1/sessions", "{}", {{"Origin", "http://evil.example"}}), 403,
              "origin_not_allowed", "evil.example");
  auto preflight = Raw("OPTIONS", "/v1/sessions", "",
                       {{"Origin", "http://evil.example"}, {"Access-Control-Request-Method", "POST"}});
  EXPECT_EQ(preflight.status, 403) << preflight.body;
  // The server's own origin is same-origin.
  auto own =
      Raw("POST", "/v1/sessions", "{}", {{"Origin", "http://127.0.0.1:" + std::to_string(env_->Port())}});
  EXPECT_EQ(own.status, 201) << own.body;
}

class EdgeConfiguredTest : public EdgeTest {
 protected:
  api::ServerConfig Config() override {
    api::ServerConfig c;
    c.allowed_hosts = {"llmsync.lan"};
    c.cors_origins = {"http://localhost:3000"};
    c.max_active_runs = 1;
    c.max_queued_runs = 1;
    return c;
  }
};

TEST_F(EdgeConfiguredTest, AllowedHostsAndOriginsAndPreflight) {
  EXPECT_EQ(Raw("GET", "/healthz", "", {{"Host", "llmsync.lan:8420"}}).status, 200);
  EXPECT_EQ(Raw("GET", "/healthz", "", {{"Host", "other.lan"}}).status, 421);
  auto preflight = Raw("OPTIONS", "/v1/chat/completions", "",
                       {{"Origin", "http://localhost:3000"},
                        {"Access-Control-Request-Method", "POST"},
                        {"Access-Control-Request-Headers", "content-type, authorization"}});
  EXPECT_EQ(preflight.status, 204) << preflight.body;
  EXPECT_EQ(preflight.headers["access-control-allow-origin"], "http://localhost:3000");
  EXPECT_EQ(preflight.headers["access-control-allow-methods"], "GET, POST, PATCH, DELETE, OPTIONS");
  EXPECT_EQ(preflight.headers["access-control-allow-headers"], "content-type, authorization");
  auto post = Raw("POST", "/v1/sessions", "{}", {{"Origin", "http://localhost:3000"}});
  EXPECT_EQ(post.status, 201) << post.body;
  EXPECT_EQ(post.headers["access-control-allow-origin"], "http://localhost:3000");
  EXPECT_EQ(post.headers["vary"], "Origin");
}

// The run queue is bounded: beyond max_queued_runs a run request is a 429 with Retry-After.
TEST_F(EdgeConfiguredTest, FullRunQueueIs429WithRetryAfter) {
  std::string s = NewSessionWithUser();
  int accepted = 0;
  int refused = 0;
  for (int i = 0; i < 8; ++i) {
    auto r = Raw("POST", "/v1/sessions/" + s + "/runs", R"({"max_tokens":400})");
    if (r.status == 202) ++accepted;
    if (r.status == 429) {
      ++refused;
      EXPECT_EQ(r.headers["retry-after"], "1");
      Json j = Json::parse(r.body);
      EXPECT_EQ(j["error"]["code"], "resource_exhausted") << r.body;
    }
  }
  EXPECT_GE(accepted, 1);
  EXPECT_GE(refused, 1);
  EXPECT_EQ(accepted + refused, 8);
  ExpectStillServing();
}

// The OpenAI view's session id is keyed by the server's secret: two data directories (two seal
// keys) give the same tenant and model different ids, so /healthz data cannot name it.
TEST_F(EdgeTest, OpenAiSessionIdIsNotDerivableFromPublicData) {
  const std::string body = R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":1})";
  auto first = Raw("POST", "/v1/chat/completions", body);
  ASSERT_EQ(first.status, 200) << first.body;
  std::string id1 = Json::parse(first.body)["llmsync"]["session"];
  env_->Stop();
  ASSERT_TRUE(env_->Start(dir_.File("data2")).IsOk());
  auto second = Raw("POST", "/v1/chat/completions", body);
  ASSERT_EQ(second.status, 200) << second.body;
  std::string id2 = Json::parse(second.body)["llmsync"]["session"];
  EXPECT_NE(id1, id2);
}

TEST(EdgeConfigTest, ConfigFileDepthAndIntegerRangesAreChecked) {
  TestDir dir;
  const std::string path = dir.File("c.json");
  api::ServerConfig c;
  ASSERT_TRUE(
      WriteFileAtomically(Env::Default(), path, R"({"cors_origins":)" + DeepArray(100'000) + "}").IsOk());
  Status deep = api::LoadConfigFile(Env::Default(), path, &c);
  EXPECT_NE(deep.Message().find("deeper than 64 levels"), std::string::npos) << deep.ToString();
  for (const char* text : {R"({"max_tokens":4294967297})", R"({"max_active_runs":-2147483649})",
                           R"({"max_body_bytes":-1})", R"({"max_connections":1.5})"}) {
    ASSERT_TRUE(WriteFileAtomically(Env::Default(), path, text).IsOk());
    Status s = api::LoadConfigFile(Env::Default(), path, &c);
    EXPECT_EQ(s.Code(), StatusCode::kInvalidArgument) << text;
  }
  ASSERT_TRUE(
      WriteFileAtomically(Env::Default(), path,
                          R"({"allowed_hosts":["a.lan"],"cors_origins":["http://x"],"max_queued_runs":3})")
          .IsOk());
  ASSERT_TRUE(api::LoadConfigFile(Env::Default(), path, &c).IsOk());
  EXPECT_EQ(c.allowed_hosts, std::vector<std::string>{"a.lan"});
  EXPECT_EQ(c.max_queued_runs, 3);
}

// ---- The HTTP server alone: connection cap and header timeout.

int Connect(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

std::string ReadAll(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

api::HttpResponse Hello(const api::HttpRequest&) {
  api::HttpResponse r;
  r.body = "hello";
  return r;
}

TEST(HttpServerLimitsTest, ConnectionsBeyondTheCapGet503) {
  api::HttpServerOptions o;
  o.max_connections = 2;
  api::HttpServer server(o, Hello);
  ASSERT_TRUE(server.Start().IsOk());
  int a = Connect(server.Port());
  int b = Connect(server.Port());
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // both accepted
  int c = Connect(server.Port());
  ASSERT_GE(c, 0);
  std::string refused = ReadAll(c);
  EXPECT_NE(refused.find("503"), std::string::npos) << refused;
  EXPECT_NE(refused.find("too_many_connections"), std::string::npos) << refused;
  ::close(c);
  ::close(a);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // a's slot frees
  client::HttpClient client("127.0.0.1", server.Port());
  auto r = client.Get("/");
  ASSERT_TRUE(r.IsOk()) << r.GetStatus().ToString();
  EXPECT_EQ(r->status, 200);
  ::close(b);
  server.Stop();
}

TEST(HttpServerLimitsTest, SlowHeadersLoseTheConnection) {
  api::HttpServerOptions o;
  o.header_timeout = std::chrono::milliseconds(300);
  api::HttpServer server(o, Hello);
  ASSERT_TRUE(server.Start().IsOk());
  int fd = Connect(server.Port());
  ASSERT_GE(fd, 0);
  const std::string partial = "GET / HTTP/1.1\r\nHost: x\r\n";  // never finished
  ASSERT_EQ(::write(fd, partial.data(), partial.size()), static_cast<ssize_t>(partial.size()));
  auto start = std::chrono::steady_clock::now();
  std::string got = ReadAll(fd);  // returns when the server closes
  auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(got.empty()) << got;
  EXPECT_LT(waited, std::chrono::seconds(3));
  ::close(fd);
  // An idle connection that never sends a byte is closed after the header timeout too.
  int idle = Connect(server.Port());
  ASSERT_GE(idle, 0);
  EXPECT_TRUE(ReadAll(idle).empty());
  ::close(idle);
  server.Stop();
}

}  // namespace
}  // namespace llmsync::testing
