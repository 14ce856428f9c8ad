// A real llmsync server for tests: a tiny generated model, a fresh data directory with its SQLite
// file and KV snapshots, the HTTP server on a free loopback port, and a real HTTP client.
//
// Thread safety: one per test; not shared.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "../base/test_dir.h"
#include "api/llmsync_server.h"
#include "client/http_client.h"
#include "engine/make_test_model.h"

namespace llmsync::testing {

using Json = nlohmann::json;

class ServerTestEnv {
 public:
  explicit ServerTestEnv(const std::string& model_path) : model_path_(model_path) {}

  // Builds the shared tiny model once per process.
  static std::string TinyModel(const TestDir& dir) {
    std::string path = dir.File("tiny.gguf");
    engine::MakeTestModelOptions o;
    o.n_embd = 64;
    o.n_layer = 2;
    o.n_head = 4;
    o.n_head_kv = 2;
    o.n_ff = 128;
    o.seed = 7;
    Status s = engine::MakeTestModel(Env::Default(), o, path);
    EXPECT_TRUE(s.IsOk()) << s.ToString();
    return path;
  }

  Status Start(const std::string& data_dir, api::ServerConfig config = {}) {
    config.listen = "127.0.0.1:0";
    config.model_path = model_path_;
    config.data_dir = data_dir;
    config.kv_ram_mb = config.kv_ram_mb == 512 ? 16 : config.kv_ram_mb;
    config.engine_threads = 1;
    auto server = api::LlmsyncServer::Open(config, Env::Default());
    if (!server.IsOk()) return server.GetStatus();
    server_ = std::move(server).Value();
    LLMSYNC_RETURN_IF_ERROR(server_->Start());
    client_ = std::make_unique<client::HttpClient>("127.0.0.1", server_->Port(), std::chrono::seconds(30));
    return Status::Ok();
  }
  void Stop() {
    client_.reset();
    if (server_) server_->Stop();
    server_.reset();
  }

  std::uint16_t Port() const { return server_->Port(); }
  client::HttpClient& Client() { return *client_; }

  // POSTs JSON and returns (status, parsed body). Fails the test on transport errors.
  std::pair<int, Json> Post(const std::string& target, const Json& body, client::HeaderList headers = {}) {
    auto r = client_->PostJson(target, body.dump(), std::move(headers));
    EXPECT_TRUE(r.IsOk()) << r.GetStatus().ToString();
    if (!r.IsOk()) return {0, Json()};
    return {r->status, Json::parse(r->body, nullptr, false)};
  }
  std::pair<int, Json> Delete(const std::string& target) {
    auto r = client_->Send("DELETE", target, "", {});
    EXPECT_TRUE(r.IsOk()) << r.GetStatus().ToString();
    if (!r.IsOk()) return {0, Json()};
    return {r->status, Json::parse(r->body, nullptr, false)};
  }
  std::pair<int, Json> Get(const std::string& target, client::HeaderList headers = {}) {
    auto r = client_->Get(target, std::move(headers));
    EXPECT_TRUE(r.IsOk()) << r.GetStatus().ToString();
    if (!r.IsOk()) return {0, Json()};
    return {r->status, Json::parse(r->body, nullptr, false)};
  }

 private:
  std::string model_path_;
  std::unique_ptr<api::LlmsyncServer> server_;
  std::unique_ptr<client::HttpClient> client_;
};

}  // namespace llmsync::testing
