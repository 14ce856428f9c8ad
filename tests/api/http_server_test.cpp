#include "api/http/http_server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio.hpp>
#include <nlohmann/json.hpp>
#include <thread>

#include "api/api_error.h"
#include "api/router.h"
#include "api/sse.h"
#include "client/http_client.h"

namespace llmsync::api {
namespace {

using client::HttpClient;
using client::SseEvent;

class HttpServerTest : public ::testing::Test {
 protected:
  void StartServer(HttpServerOptions options = {}) {
    options.metrics = &metrics_;
    server_ =
        std::make_unique<HttpServer>(options, [this](const HttpRequest& r) { return router_.Route(r); });
    ASSERT_TRUE(server_->Start().IsOk());
    client_ = std::make_unique<HttpClient>("127.0.0.1", server_->Port(), std::chrono::seconds(10));
  }
  void TearDown() override {
    if (server_) server_->Stop();
  }

  // Sends raw bytes on a fresh socket and returns everything the server answers before closing.
  std::string RawExchange(const std::string& bytes) {
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::socket sock(ioc);
    sock.connect({boost::asio::ip::make_address("127.0.0.1"), server_->Port()});
    boost::asio::write(sock, boost::asio::buffer(bytes));
    std::string out;
    char buf[4096];
    boost::system::error_code ec;
    while (true) {
      std::size_t n = sock.read_some(boost::asio::buffer(buf), ec);
      if (ec) break;
      out.append(buf, n);
    }
    return out;
  }

  MetricsRegistry metrics_;
  Router router_;
  std::unique_ptr<HttpServer> server_;
  std::unique_ptr<HttpClient> client_;
};

TEST_F(HttpServerTest, RoutesWithCapturesQueryAndHeaders) {
  router_.Add("GET", "/v1/things/{id}/parts/{part}", [](const HttpRequest& r, const PathParams& p) {
    nlohmann::json j = {{"id", p.at("id")},
                        {"part", p.at("part")},
                        {"since", r.Query("since").value_or("")},
                        {"auth", r.Header("authorization").value_or("")}};
    return JsonResponse(200, j.dump());
  });
  StartServer();
  auto r = client_->Get("/v1/things/abc/parts/x%20y?since=12&other=1", {{"Authorization", "Bearer k"}});
  ASSERT_TRUE(r.IsOk()) << r.GetStatus().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->headers["content-type"], "application/json");
  auto j = nlohmann::json::parse(r->body);
  EXPECT_EQ(j["id"], "abc");
  EXPECT_EQ(j["part"], "x y");
  EXPECT_EQ(j["since"], "12");
  EXPECT_EQ(j["auth"], "Bearer k");
}

TEST_F(HttpServerTest, UnknownPathIs404AndWrongMethodIs405) {
  router_.Add("POST", "/v1/sessions",
              [](const HttpRequest&, const PathParams&) { return JsonResponse(201, "{}"); });
  StartServer();
  auto missing = client_->Get("/v1/nothing");
  ASSERT_TRUE(missing.IsOk());
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(nlohmann::json::parse(missing->body)["error"]["code"], "not_found");
  auto wrong = client_->Get("/v1/sessions");
  ASSERT_TRUE(wrong.IsOk());
  EXPECT_EQ(wrong->status, 405);
  EXPECT_EQ(wrong->headers["allow"], "POST");
  auto ok = client_->PostJson("/v1/sessions", "{}");
  ASSERT_TRUE(ok.IsOk());
  EXPECT_EQ(ok->status, 201);
}

TEST_F(HttpServerTest, HandlerExceptionBecomes500AndServerSurvives) {
  router_.Add("GET", "/boom", [](const HttpRequest&, const PathParams&) -> HttpResponse {
    throw std::runtime_error("kaboom");
  });
  router_.Add("GET", "/ok", [](const HttpRequest&, const PathParams&) { return JsonResponse(200, "{}"); });
  StartServer();
  auto r = client_->Get("/boom");
  ASSERT_TRUE(r.IsOk());
  EXPECT_EQ(r->status, 500);
  EXPECT_NE(r->body.find("kaboom"), std::string::npos);
  EXPECT_EQ(client_->Get("/ok")->status, 200);
}

TEST_F(HttpServerTest, OversizeBodyIs413) {
  router_.Add("POST", "/echo", [](const HttpRequest& r, const PathParams&) {
    return JsonResponse(200, nlohmann::json{{"n", r.body.size()}}.dump());
  });
  HttpServerOptions options;
  options.max_body_bytes = 1000;
  StartServer(options);
  auto ok = client_->PostJson("/echo", std::string(1000, 'x'));
  ASSERT_TRUE(ok.IsOk());
  EXPECT_EQ(ok->status, 200);
  auto big = client_->PostJson("/echo", std::string(1001, 'x'));
  ASSERT_TRUE(big.IsOk()) << big.GetStatus().ToString();
  EXPECT_EQ(big->status, 413);
  EXPECT_EQ(nlohmann::json::parse(big->body)["error"]["code"], "payload_too_large");
}

TEST_F(HttpServerTest, MalformedRequestIs400) {
  router_.Add("GET", "/ok", [](const HttpRequest&, const PathParams&) { return JsonResponse(200, "{}"); });
  StartServer();
  std::string answer = RawExchange("GARBAGE\x01\x02 / HTTP/9.9\r\n\r\n");
  EXPECT_NE(answer.find("400"), std::string::npos) << answer;
  EXPECT_NE(answer.find("bad_request"), std::string::npos) << answer;
  answer = RawExchange("POST /ok HTTP/1.1\r\nContent-Length: zebra\r\n\r\n");
  EXPECT_NE(answer.find("400"), std::string::npos) << answer;
  EXPECT_EQ(client_->Get("/ok")->status, 200) << "the server keeps serving";
}

TEST_F(HttpServerTest, KeepAliveServesManyRequestsOnOneConnection) {
  std::atomic<int> calls{0};
  router_.Add("GET", "/n", [&](const HttpRequest&, const PathParams&) {
    return JsonResponse(200, std::to_string(++calls));
  });
  StartServer();
  for (int i = 1; i <= 50; ++i) {
    auto r = client_->Get("/n");
    ASSERT_TRUE(r.IsOk());
    EXPECT_EQ(r->body, std::to_string(i));
  }
}

TEST_F(HttpServerTest, StreamsEventsInOrderFromAnotherThread) {
  std::thread producer;
  router_.Add("GET", "/events", [&](const HttpRequest&, const PathParams&) {
    HttpResponse r;
    r.SetHeader("Content-Type", std::string(kSseContentType));
    r.stream = [&](std::shared_ptr<StreamSink> sink) {
      producer = std::thread([sink] {
        for (int i = 1; i <= 200; ++i) sink->Write(FormatSseEvent(i, "token", "t" + std::to_string(i)));
        sink->Close();
      });
    };
    return r;
  });
  StartServer();
  std::vector<SseEvent> events;
  int status = 0;
  Status s = client_->Stream(
      "/events", {},
      [&](const SseEvent& e) {
        events.push_back(e);
        return true;
      },
      &status);
  producer.join();
  ASSERT_TRUE(s.IsOk()) << s.ToString();
  EXPECT_EQ(status, 200);
  ASSERT_EQ(events.size(), 200u);
  for (int i = 0; i < 200; ++i) {
    EXPECT_EQ(events[i].id, std::to_string(i + 1));
    EXPECT_EQ(events[i].event, "token");
    EXPECT_EQ(events[i].data, "t" + std::to_string(i + 1));
  }
}

TEST_F(HttpServerTest, SinkReportsClosedAfterClientLeaves) {
  std::shared_ptr<StreamSink> kept;
  std::atomic<bool> started{false};
  router_.Add("GET", "/events", [&](const HttpRequest&, const PathParams&) {
    HttpResponse r;
    r.SetHeader("Content-Type", std::string(kSseContentType));
    r.stream = [&](std::shared_ptr<StreamSink> sink) {
      sink->Write(FormatSseEvent(1, "hello", "x"));
      kept = sink;
      started = true;
    };
    return r;
  });
  StartServer();
  int status = 0;
  Status s = client_->Stream(
      "/events", {}, [](const SseEvent&) { return false; }, &status);
  ASSERT_TRUE(s.IsOk());
  ASSERT_TRUE(started.load());
  // The client closed its socket; the server notices and the sink refuses writes.
  bool closed = false;
  for (int i = 0; i < 400 && !closed; ++i) {
    closed = !kept->IsOpen();
    if (!closed) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_TRUE(closed);
  EXPECT_FALSE(kept->Write("data: late\n\n"));
  EXPECT_NE(metrics_.Render().find("llmsync_sse_subscribers 0"), std::string::npos) << metrics_.Render();
}

TEST_F(HttpServerTest, StopEndsOpenStreams) {
  std::shared_ptr<StreamSink> kept;
  router_.Add("GET", "/events", [&](const HttpRequest&, const PathParams&) {
    HttpResponse r;
    r.stream = [&](std::shared_ptr<StreamSink> sink) { kept = sink; };
    return r;
  });
  StartServer();
  std::thread stopper([&] {
    while (!kept) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    server_->Stop();
  });
  int status = 0;
  Status s = client_->Stream(
      "/events", {}, [](const SseEvent&) { return true; }, &status);
  stopper.join();
  EXPECT_EQ(status, 200);
  EXPECT_FALSE(kept->IsOpen());
}

TEST_F(HttpServerTest, CountsRequestsByStatus) {
  router_.Add("GET", "/ok", [](const HttpRequest&, const PathParams&) { return JsonResponse(200, "{}"); });
  StartServer();
  ASSERT_TRUE(client_->Get("/ok").IsOk());
  ASSERT_TRUE(client_->Get("/ok").IsOk());
  ASSERT_TRUE(client_->Get("/missing").IsOk());
  std::string text = metrics_.Render();
  EXPECT_NE(text.find("llmsync_http_requests_total{code=\"200\"} 2"), std::string::npos) << text;
  EXPECT_NE(text.find("llmsync_http_requests_total{code=\"404\"} 1"), std::string::npos) << text;
}

TEST(HttpServerStartTest, PortInUseIsUnavailable) {
  HttpServer a({}, [](const HttpRequest&) { return HttpResponse{}; });
  ASSERT_TRUE(a.Start().IsOk());
  HttpServerOptions taken;
  taken.port = a.Port();
  HttpServer b(taken, [](const HttpRequest&) { return HttpResponse{}; });
  Status s = b.Start();
  EXPECT_EQ(s.Code(), StatusCode::kUnavailable) << s.ToString();
  HttpServerOptions bad;
  bad.host = "not-an-address";
  EXPECT_EQ(HttpServer(bad, [](const HttpRequest&) { return HttpResponse{}; }).Start().Code(),
            StatusCode::kInvalidArgument);
}

TEST(SseFormatTest, SplitsLinesIntoDataFields) {
  EXPECT_EQ(FormatSseEvent(7, "token", "a\nb\r\nc\rd"),
            "id: 7\nevent: token\ndata: a\ndata: b\ndata: c\ndata: d\n\n");
  EXPECT_EQ(FormatSseEvent(1, "", ""), "id: 1\ndata: \n\n");
}

TEST(QueryStringTest, DecodesPairs) {
  auto q = ParseQueryString("a=1&b=x+y&c=%41%zz&&d");
  ASSERT_EQ(q.size(), 4u);
  EXPECT_EQ(q[1].second, "x y");
  EXPECT_EQ(q[2].second, "A%zz");
  EXPECT_EQ(q[3].first, "d");
  EXPECT_EQ(q[3].second, "");
}

// A store outage (kUnavailable, e.g. Redis down) is 503 and tells the client when to retry.
TEST(ApiErrorTest, UnavailableIs503WithRetryAfter) {
  HttpResponse r = ErrorResponse(Status::Unavailable("redis at 127.0.0.1:6379/0 is unavailable"));
  EXPECT_EQ(r.status, 503);
  bool retry_after = false;
  for (const auto& [name, value] : r.headers)
    retry_after = retry_after || (name == "Retry-After" && value == "1");
  EXPECT_TRUE(retry_after);
  EXPECT_NE(r.body.find("\"unavailable\""), std::string::npos) << r.body;
  for (const auto& [name, value] : ErrorResponse(Status::NotFound("x")).headers)
    EXPECT_NE(name, "Retry-After");
}

}  // namespace
}  // namespace llmsync::api
