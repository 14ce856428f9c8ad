// FuzzServer: the real llmsync server the request fuzzers drive, built for many cheap inputs: a
// one-layer generated model, at most 8 generated tokens a run, no access log, its data directory on
// tmpfs when there is one (the store's fsyncs then cost nothing), removed again at destruction.
// Started, so runs execute and the HTTP port answers.
//
// Thread safety: construct and destroy from one thread; the server itself is thread-safe.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "api/llmsync_server.h"
#include "engine/make_test_model.h"

namespace llmsync::fuzz {

struct FuzzServer {
  std::string dir;
  std::unique_ptr<api::LlmsyncServer> server;

  FuzzServer() {
    std::string base = std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : "/tmp";
    std::string tmpl = base + "/llmsync-fuzz-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
    dir = tmpl;
    engine::MakeTestModelOptions m;
    m.n_embd = 32;
    m.n_layer = 1;
    m.n_head = 2;
    m.n_head_kv = 1;
    m.n_ff = 64;
    if (!engine::MakeTestModel(Env::Default(), m, dir + "/tiny.gguf").IsOk()) std::abort();
    api::ServerConfig c;
    c.listen = "127.0.0.1:0";
    c.model_path = dir + "/tiny.gguf";
    c.data_dir = dir + "/data";
    c.kv_ram_mb = 8;
    c.kv_disk_mb = 8;
    c.engine_threads = 1;
    c.max_tokens = 8;
    c.max_context = 2048;
    c.access_log = false;
    auto opened = api::LlmsyncServer::Open(c, Env::Default());
    if (!opened.IsOk()) std::abort();
    server = std::move(opened).Value();
    if (!server->Start().IsOk()) std::abort();
  }
  ~FuzzServer() {
    server.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  FuzzServer(const FuzzServer&) = delete;
  FuzzServer& operator=(const FuzzServer&) = delete;
};

}  // namespace llmsync::fuzz
