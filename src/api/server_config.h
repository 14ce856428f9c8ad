// ServerConfig: everything `llmsync serve` is configured with, from flags and an optional JSON
// config file (flags win), and the authentication it implies.
//
// Auth: `Authorization: Bearer KEY` (the scheme in any case, as RFC 7235 says), with keys mapped to
// tenants in the config file. With no keys configured the server has one tenant, "local", and
// refuses to listen on anything but loopback. With keys, GET /healthz stays open unless
// public_health is false, and GET /metrics stays open unless metrics_require_key is true (the
// defaults suit a load balancer and a Prometheus scraper on a private network).
//
// `llmsync config example` prints ExampleConfigFile(): every key with its default and a comment.
// The file is JSON; // and /* */ comments are allowed.
//
// Config file shape (every key optional; unknown keys are an error, so typos do not pass silently):
//   {"listen": "127.0.0.1:8420", "model": "m.gguf", "db": "data/llmsync.sqlite",
//    "store": "redis://127.0.0.1:6379/0", "seal_key_file": "/etc/llmsync/seal.key", "role": "all",
//    "run_lease_ms": 3000, "dispatch": "cache_aware", "dispatch_queue_bound": 4, "dispatch_grace_ms": 2000,
//    "data_dir": "data", "snapshot_dir": "data/kv", "kv_ram_mb": 512, "kv_disk_mb": 4096,
//    "api_keys": {"sk-...": "tenant-a"}, "seal_key": "<64 hex>", "max_body_bytes": 8388608,
//    "max_context": 4096, "max_active_runs": 8, "engine_threads": 0, "http_threads": 2,
//    "max_tokens": 4096, "max_text_bytes": 1048576, "event_retention_hours": 168,
//    "idempotency_retention_hours": 24, "access_log": true, "public_health": true, "strict_model_names":
//    false, "metrics_require_key": false, "allowed_hosts": ["llmsync.lan"], "cors_origins":
//    ["http://localhost:3000"], "max_connections": 1024, "header_timeout_ms": 10000, "idle_timeout_ms":
//    60000, "max_queued_runs": 256}
//
// Thread safety: a value; Authenticate is a pure function of it.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/http/http_message.h"
#include "base/env.h"
#include "llmsync/status.h"

namespace llmsync::api {

inline constexpr std::string_view kLocalTenant = "local";

struct ServerConfig {
  std::string listen = "127.0.0.1:8420";
  std::string model_path;  // empty: the demo model, generated once under data_dir
  std::string data_dir = "data";
  std::string db_path;  // empty: <data_dir>/llmsync.sqlite
  // "sqlite:PATH" or "redis://HOST[:PORT][/DB]"; empty: sqlite:<db_path>.
  std::string store;
  std::string snapshot_dir;  // empty: <data_dir>/kv
  std::int64_t kv_ram_mb = 512;
  std::int64_t kv_disk_mb = 4096;
  std::map<std::string, std::string> api_keys;  // key -> tenant
  std::string seal_key_hex;                     // empty: seal_key_file, else one generated under data_dir
  std::string seal_key_file;                    // a file holding the key's hex (shared by processes)
  // "all" (one process does everything), "api" (records runs, never executes them) or "engine"
  // (claims and executes runs). api and engine need a shared store (redis://).
  std::string role = "all";
  // With a shared store, how long an engine's claim on a run lasts unrenewed: a killed engine's
  // runs move to another engine within about this plus half a second.
  std::int64_t run_lease_ms = 3000;
  // With a shared store, how a submitted run picks its engine process: "cache_aware" (the engine
  // holding the deepest node of its path, unless that engine's queue exceeds dispatch_queue_bound
  // runs; then the least loaded) or "round_robin" (for comparison). Other engines leave a run
  // offered to a live engine alone for dispatch_grace_ms.
  std::string dispatch = "cache_aware";
  std::int64_t dispatch_queue_bound = 4;
  std::int64_t dispatch_grace_ms = 2000;
  std::size_t max_body_bytes = 8 << 20;
  std::int64_t max_context = 4096;
  int max_active_runs = 8;
  int engine_threads = 0;  // 0: one per physical core (engine/cpu_topology.h)
  int http_threads = 2;
  std::int32_t max_tokens = 4096;
  std::size_t max_text_bytes = 1 << 20;
  std::int64_t event_retention_hours = 168;       // events of finished runs, then deleted
  std::int64_t idempotency_retention_hours = 24;  // idempotency keys of appends
  bool access_log = true;                         // one info line per request (http/access_log.h)
  bool public_health = true;                      // GET /healthz without a key when keys are set
  // The OpenAI views answer an unknown `model` with 404 model_not_found (false: any name is served
  // by the one model, as most local clients expect).
  bool strict_model_names = false;
  bool metrics_require_key = false;  // GET /metrics needs a key when keys are set
  // Request hygiene (api/edge_policy.h). With no api_keys, Host must name the listen address,
  // localhost or one of these (DNS rebinding); an Origin header must be one of cors_origins
  // ("http://localhost:3000"; "*" allows any), which also get CORS preflight answers.
  std::vector<std::string> allowed_hosts;
  std::vector<std::string> cors_origins;
  // Connections and queues (api/http/http_server.h, runs/scheduler/scheduler.h).
  int max_connections = 1024;              // beyond it a new connection gets 503 and is closed
  std::int64_t header_timeout_ms = 10000;  // to receive a request's headers once it has begun
  std::int64_t idle_timeout_ms = 60000;    // a keep-alive connection with no request, a body read
  std::int64_t max_queued_runs = 256;      // runs waiting for a slot; beyond it 429 (0: unbounded)
  // `--engine-url` (command line only): generation runs on these OpenAI-compatible upstreams
  // (runs/scheduler/remote_engine.h); empty: the local engine.
  std::vector<std::string> engine_urls;

  std::string Host() const;
  std::uint16_t Port() const;
};

// Reads a JSON config file into `config` (keys present override it).
Status LoadConfigFile(Env* env, const std::string& path, ServerConfig* config);
// A commented config file with every key set to its default; LoadConfigFile reads it back.
std::string ExampleConfigFile();
// Every key a config file may hold.
const std::vector<std::string_view>& ConfigFileKeys();
// Fills defaults that depend on data_dir and checks the whole configuration.
Status FinalizeConfig(ServerConfig* config);

// The tenant a request acts for, or kUnauthenticated-style errors: a missing or unknown key is
// returned as kInvalidArgument with the message the 401 body carries.
Result<std::string> Authenticate(const ServerConfig& config, const HttpRequest& request);

bool IsLoopbackHost(const std::string& host);

}  // namespace llmsync::api
