// LlmsyncServer: a complete `llmsync serve` process in one object — model, engine, tokenizer,
// chat template, SQLite store, session service, KV manager, run scheduler, event hub and the HTTP
// server with every route — opened in dependency order and shut down in reverse.
//
// With no model configured it generates a small demo model once (cached under data_dir) and says
// so. Startup logs the address, model, store and limits. Stop() is graceful: the HTTP server stops
// accepting and closes streams, the scheduler checkpoints runs in flight (they resume on the next
// start), the KV cache is flushed to disk, and the store drains its queued writes.
//
// Thread safety: Open/Start/Stop from one controlling thread; Port() from any thread.
#pragma once

#include <memory>

#include "api/server_config.h"
#include "llmsync/status.h"

namespace llmsync::api {

class LlmsyncServer {
 public:
  static Result<std::unique_ptr<LlmsyncServer>> Open(ServerConfig config, Env* env);
  ~LlmsyncServer();

  Status Start();
  void Stop();
  std::uint16_t Port() const;

  struct Parts;  // defined in llmsync_server.cpp
  explicit LlmsyncServer(std::unique_ptr<Parts> parts);

 private:
  std::unique_ptr<Parts> parts_;
};

// The demo model `serve` and `demo` use when no model is given: generated once at `path`.
Status EnsureDemoModel(Env* env, const std::string& path);

}  // namespace llmsync::api
