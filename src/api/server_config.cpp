#include "api/server_config.h"

#include <cctype>
#include <iterator>
#include <nlohmann/json.hpp>
#include <type_traits>
#include <utility>

#include "base/json_depth.h"
#include "store/open_store.h"

namespace llmsync::api {
namespace {

using Json = nlohmann::json;

template <typename T>
Status Take(const Json& j, const char* key, T* out) {
  if (!j.contains(key)) return Status::Ok();
  const Json& v = j.at(key);
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    // get<T>() would wrap a number T cannot hold (max_tokens 4294967297 → 1): refuse it instead.
    const bool fits = v.is_number_unsigned()  ? std::in_range<T>(v.get<std::uint64_t>())
                      : v.is_number_integer() ? std::in_range<T>(v.get<std::int64_t>())
                                              : false;
    if (!fits)
      return Status::InvalidArgument(std::string("config key '") + key + "' must be an integer in range");
    *out = v.is_number_unsigned() ? static_cast<T>(v.get<std::uint64_t>())
                                  : static_cast<T>(v.get<std::int64_t>());
    return Status::Ok();
  }
  try {
    *out = v.get<T>();
  } catch (const Json::exception&) {
    return Status::InvalidArgument(std::string("config key '") + key + "' has the wrong type");
  }
  return Status::Ok();
}

}  // namespace

std::string ServerConfig::Host() const {
  std::size_t colon = listen.rfind(':');
  std::string host = colon == std::string::npos ? listen : listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return host;
}

std::uint16_t ServerConfig::Port() const {
  std::size_t colon = listen.rfind(':');
  if (colon == std::string::npos) return 8420;
  try {
    int port = std::stoi(listen.substr(colon + 1));
    if (port >= 0 && port <= 65535) return static_cast<std::uint16_t>(port);
  } catch (const std::exception&) {
  }
  return 0;
}

const std::vector<std::string_view>& ConfigFileKeys() {
  static const std::vector<std::string_view> kKeys = {"listen",
                                                      "model",
                                                      "db",
                                                      "store",
                                                      "seal_key_file",
                                                      "role",
                                                      "run_lease_ms",
                                                      "dispatch",
                                                      "dispatch_queue_bound",
                                                      "dispatch_grace_ms",
                                                      "data_dir",
                                                      "snapshot_dir",
                                                      "kv_ram_mb",
                                                      "kv_disk_mb",
                                                      "api_keys",
                                                      "seal_key",
                                                      "max_body_bytes",
                                                      "max_context",
                                                      "max_active_runs",
                                                      "engine_threads",
                                                      "http_threads",
                                                      "max_tokens",
                                                      "max_text_bytes",
                                                      "event_retention_hours",
                                                      "idempotency_retention_hours",
                                                      "access_log",
                                                      "public_health",
                                                      "strict_model_names",
                                                      "metrics_require_key",
                                                      "allowed_hosts",
                                                      "cors_origins",
                                                      "max_connections",
                                                      "header_timeout_ms",
                                                      "idle_timeout_ms",
                                                      "max_queued_runs"};
  return kKeys;
}

std::string ExampleConfigFile() {
  const ServerConfig d;
  auto str = [](const std::string& v) { return Json(v).dump(); };
  auto num = [](auto v) { return std::to_string(v); };
  auto flag = [](bool v) { return std::string(v ? "true" : "false"); };
  struct Line {
    const char* key;
    std::string value;
    const char* comment;
  };
  const Line lines[] = {
      {"listen", str(d.listen), "HOST:PORT to serve on; a non-loopback host needs api_keys"},
      {"model", str(d.model_path), "GGUF model file; \"\": the demo model (random weights) under data_dir"},
      {"data_dir", str(d.data_dir), "database, KV snapshots, seal key and the lock of one process"},
      {"db", str(d.db_path), "SQLite file; \"\": data_dir/llmsync.sqlite"},
      {"store", str(d.store), "\"sqlite:PATH\" or \"redis://HOST[:PORT][/DB]\"; \"\": sqlite at db"},
      {"seal_key_file", str(d.seal_key_file),
       "file with the seal key's hex; every process of a store shares it"},
      {"role", str(d.role), "all, api (HTTP only) or engine (executes runs); api/engine need redis"},
      {"run_lease_ms", num(d.run_lease_ms), "with redis: a run's claim lasts this long unrenewed"},
      {"dispatch", str(d.dispatch), "with redis: cache_aware (runs go where their prefix is) or round_robin"},
      {"dispatch_queue_bound", num(d.dispatch_queue_bound),
       "with redis: runs queued at the prefix's engine beyond which the least loaded takes a run"},
      {"dispatch_grace_ms", num(d.dispatch_grace_ms),
       "with redis: other engines leave a run offered to a live engine alone this long"},
      {"snapshot_dir", str(d.snapshot_dir), "KV snapshot directory; \"\": data_dir/kv"},
      {"kv_ram_mb", num(d.kv_ram_mb), "KV cache RAM budget, MiB"},
      {"kv_disk_mb", num(d.kv_disk_mb), "KV snapshot disk budget, MiB (0: no disk tier)"},
      {"api_keys", "{}", "key -> tenant, e.g. {\"sk-team-a\": \"team-a\"}; {}: one local tenant, no auth"},
      {"seal_key", str(d.seal_key_hex), "64 hex chars sealing hidden nodes; \"\": generated under data_dir"},
      {"max_body_bytes", num(d.max_body_bytes), "largest request body"},
      {"max_context", num(d.max_context), "context in tokens (capped by the model's)"},
      {"max_active_runs", num(d.max_active_runs), "runs decoding side by side; more wait in a queue"},
      {"engine_threads", num(d.engine_threads), "inference threads (0: one per physical core)"},
      {"http_threads", num(d.http_threads), "HTTP server threads"},
      {"max_tokens", num(d.max_tokens), "largest max_tokens a run may ask for"},
      {"max_text_bytes", num(d.max_text_bytes), "largest text of one node"},
      {"event_retention_hours", num(d.event_retention_hours), "events of finished runs are kept this long"},
      {"idempotency_retention_hours", num(d.idempotency_retention_hours),
       "idempotency keys are kept this long"},
      {"access_log", flag(d.access_log), "one info log line per request"},
      {"public_health", flag(d.public_health), "with api_keys: GET /healthz needs no key"},
      {"strict_model_names", flag(d.strict_model_names),
       "OpenAI views: an unknown model is 404 model_not_found; false: any name is served"},
      {"metrics_require_key", flag(d.metrics_require_key), "with api_keys: GET /metrics needs a key"},
      {"allowed_hosts", "[]",
       "without api_keys: Host names accepted besides the listen address and localhost (DNS rebinding)"},
      {"cors_origins", "[]",
       "browser Origins allowed to call the API (CORS), e.g. [\"http://localhost:3000\"]; \"*\": any"},
      {"max_connections", num(d.max_connections), "open connections; more get 503 and are closed"},
      {"header_timeout_ms", num(d.header_timeout_ms), "time to send a request's headers"},
      {"idle_timeout_ms", num(d.idle_timeout_ms), "keep-alive idle time and body read time"},
      {"max_queued_runs", num(d.max_queued_runs), "runs waiting for a slot; more get 429 (0: unbounded)"},
  };
  std::string out =
      "// llmsync config file: every setting with its default. Pass it with `llmsync serve --config FILE`;\n"
      "// command-line flags override it. JSON with comments; unknown keys are an error.\n{\n";
  const std::size_t n = std::size(lines);
  for (std::size_t i = 0; i < n; ++i) {
    out += "  // " + std::string(lines[i].comment) + "\n";
    out += "  \"" + std::string(lines[i].key) + "\": " + lines[i].value + (i + 1 < n ? ",\n" : "\n");
  }
  return out + "}\n";
}

bool IsLoopbackHost(const std::string& host) {
  return host == "127.0.0.1" || host == "::1" || host == "localhost" || host.rfind("127.", 0) == 0;
}

Status LoadConfigFile(Env* env, const std::string& path, ServerConfig* config) {
  LLMSYNC_ASSIGN_OR_RETURN(std::string text, env->ReadFile(path));
  LLMSYNC_RETURN_IF_ERROR(CheckJsonDepth(text, "config file " + path));
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false, /*ignore_comments=*/true);
  if (j.is_discarded() || !j.is_object())
    return Status::InvalidArgument("config file " + path + " is not a JSON object");
  for (const auto& [key, value] : j.items()) {
    bool known = false;
    for (std::string_view k : ConfigFileKeys()) known = known || key == k;
    if (!known) return Status::InvalidArgument("config file " + path + ": unknown key '" + key + "'");
  }
  LLMSYNC_RETURN_IF_ERROR(Take(j, "listen", &config->listen));
  LLMSYNC_RETURN_IF_ERROR(Take(j, "model", &config->model_path));
  LLMSYNC_RETURN_IF_ERROR(Take(j, "db", &config->db_path));
  LLMSYNC_RETURN_IF_ERROR(Take(j, "store", &config->store));
  LLMSYNC_RETURN_IF_ERROR(Take(j, "seal_key_file", &config->seal_key_file));
  LLMSYNC_RETURN_IF_ERROR(Take(j, "role", &config->role));
  LLMSYNC_RETURN_IF_ERROR(Take(j, "run_lease_ms", &config->run_lease_ms));
  LLMSYNC_RETURN_IF_ERROR(Take(j, "dispatch", &config->dispatch));
  LLMSYNC_RETURN_IF_ERROR(Take(j, "dispatch_queue_bound", &config->dispatch_queue_bound));
  LLMSYNC_RETURN_IF_ERROR(Take(j, "dispatch_grace_ms", &config->dispatch_grace_ms));
  LLMSYNC_RETURN_IF_ERROR(Take(j, "data_dir", &config->data_dir));
  LLMSYNC_RETURN_IF_ERROR(Take(j, "snapshot_dir", &config->snapshot_dir));
  LLMSYNC_RETURN_IF_ERROR(Take(j, "kv_ram_mb", &config->kv_ram_mb));
  LLMSYNC_RETURN_IF_ERROR(Take(j, "kv_disk_mb", &config->kv_disk_mb));
  LLMSYNC_RETURN_IF_ERROR(Take(j, "api_keys", &config->api_keys));
  LLMSYNC_RETURN_IF_ERROR(Take(j, "seal_key", &config->seal_key_hex));
  LLMSYNC_RETURN_IF_ERROR(Take(j, "max_body_bytes", &config->max_body_bytes));
  LLMSYNC_RETURN_IF_ERROR(Take(j, "max_context", &config->max_context));
  LLMSYNC_RETURN_IF_ERROR(Take(j, "max_active_runs", &config->max_active_runs));
  LLMSYNC_RETURN_IF_ERROR(Take(j, "engine_threads", &config->engine_threads));
  LLMSYNC_RETURN_IF_ERROR(Take(j, "http_threads", &config->http_threads));
  LLMSYNC_RETURN_IF_ERROR(Take(j, "max_tokens", &config->max_tokens));
  LLMSYNC_RETURN_IF_ERROR(Take(j, "max_text_bytes", &config->max_text_bytes));
  LLMSYNC_RETURN_IF_ERROR(Take(j, "event_retention_hours", &config->event_retention_hours));
  LLMSYNC_RETURN_IF_ERROR(Take(j, "idempotency_retention_hours", &config->idempotency_retention_hours));
  LLMSYNC_RETURN_IF_ERROR(Take(j, "access_log", &config->access_log));
  LLMSYNC_RETURN_IF_ERROR(Take(j, "public_health", &config->public_health));
  LLMSYNC_RETURN_IF_ERROR(Take(j, "strict_model_names", &config->strict_model_names));
  LLMSYNC_RETURN_IF_ERROR(Take(j, "metrics_require_key", &config->metrics_require_key));
  LLMSYNC_RETURN_IF_ERROR(Take(j, "allowed_hosts", &config->allowed_hosts));
  LLMSYNC_RETURN_IF_ERROR(Take(j, "cors_origins", &config->cors_origins));
  LLMSYNC_RETURN_IF_ERROR(Take(j, "max_connections", &config->max_connections));
  LLMSYNC_RETURN_IF_ERROR(Take(j, "header_timeout_ms", &config->header_timeout_ms));
  LLMSYNC_RETURN_IF_ERROR(Take(j, "idle_timeout_ms", &config->idle_timeout_ms));
  LLMSYNC_RETURN_IF_ERROR(Take(j, "max_queued_runs", &config->max_queued_runs));
  return Status::Ok();
}

Status FinalizeConfig(ServerConfig* config) {
  if (config->db_path.empty()) config->db_path = JoinPath(config->data_dir, "llmsync.sqlite");
  if (config->store.empty()) config->store = "sqlite:" + config->db_path;
  LLMSYNC_ASSIGN_OR_RETURN(store::StoreLocation where, store::ParseStoreLocation(config->store));
  if (config->role != "all" && config->role != "api" && config->role != "engine")
    return Status::InvalidArgument("--role must be all, api or engine, got '" + config->role + "'");
  if (config->role != "all" && where.kind != store::StoreKind::kRedis) {
    return Status::InvalidArgument("--role " + config->role +
                                   " needs a store shared by processes: --store redis://HOST:PORT");
  }
  if (config->run_lease_ms < 200 || config->run_lease_ms > 600000)
    return Status::InvalidArgument("run_lease_ms must be in [200, 600000]");
  if (config->dispatch != "cache_aware" && config->dispatch != "round_robin") {
    return Status::InvalidArgument("--dispatch must be cache_aware or round_robin, got '" + config->dispatch +
                                   "'");
  }
  if (config->dispatch_queue_bound < 0 || config->dispatch_queue_bound > 1000000)
    return Status::InvalidArgument("dispatch_queue_bound must be in [0, 1000000]");
  if (config->dispatch_grace_ms < 0 || config->dispatch_grace_ms > 600000)
    return Status::InvalidArgument("dispatch_grace_ms must be in [0, 600000]");
  if (config->snapshot_dir.empty()) config->snapshot_dir = JoinPath(config->data_dir, "kv");
  if (config->listen.find(':') == std::string::npos) {
    return Status::InvalidArgument("--listen must be HOST:PORT, got '" + config->listen + "'");
  }
  if (config->Port() == 0 && config->listen.substr(config->listen.rfind(':') + 1) != "0") {
    return Status::InvalidArgument("--listen has an invalid port: '" + config->listen + "'");
  }
  if (config->api_keys.empty() && !IsLoopbackHost(config->Host())) {
    return Status::InvalidArgument("refusing to listen on " + config->Host() +
                                   " without api_keys in a config file: with no keys the server has a single "
                                   "unauthenticated tenant and only serves loopback");
  }
  for (const auto& [key, tenant] : config->api_keys) {
    if (key.empty() || tenant.empty())
      return Status::InvalidArgument("api_keys entries need a key and a tenant");
  }
  if (config->kv_ram_mb < 1) return Status::InvalidArgument("--kv-ram-mb must be at least 1");
  if (config->kv_disk_mb < 0) return Status::InvalidArgument("--kv-disk-mb must not be negative");
  if (config->max_context < 16) return Status::InvalidArgument("max_context must be at least 16");
  if (config->max_active_runs < 1) return Status::InvalidArgument("max_active_runs must be at least 1");
  if (config->engine_threads < 0 || config->http_threads < 1)
    return Status::InvalidArgument("threads must be >= 1 (engine_threads 0: one per physical core)");
  if (config->max_connections < 1) return Status::InvalidArgument("max_connections must be at least 1");
  if (config->header_timeout_ms < 100 || config->idle_timeout_ms < 100)
    return Status::InvalidArgument("header_timeout_ms and idle_timeout_ms must be at least 100");
  if (config->max_queued_runs < 0) return Status::InvalidArgument("max_queued_runs must not be negative");
  constexpr std::int64_t kMaxRetentionHours = 24 * 365 * 100;
  if (config->event_retention_hours < 1 || config->event_retention_hours > kMaxRetentionHours ||
      config->idempotency_retention_hours < 1 || config->idempotency_retention_hours > kMaxRetentionHours) {
    return Status::InvalidArgument("event_retention_hours and idempotency_retention_hours must be in [1, " +
                                   std::to_string(kMaxRetentionHours) + "]");
  }
  return Status::Ok();
}

Result<std::string> Authenticate(const ServerConfig& config, const HttpRequest& request) {
  if (config.api_keys.empty()) return std::string(kLocalTenant);
  auto header = request.Header("authorization");
  if (!header) return Status::InvalidArgument("missing Authorization: Bearer <key>");
  // The auth scheme is case-insensitive (RFC 7235 section 2.1): "bearer KEY" is as good.
  constexpr std::string_view kBearer = "bearer";
  std::string_view value = *header;
  bool bearer =
      value.size() > kBearer.size() && (value[kBearer.size()] == ' ' || value[kBearer.size()] == '\t');
  for (std::size_t i = 0; bearer && i < kBearer.size(); ++i) {
    bearer = std::tolower(static_cast<unsigned char>(value[i])) == kBearer[i];
  }
  if (!bearer) return Status::InvalidArgument("Authorization must be 'Bearer <key>'");
  value.remove_prefix(kBearer.size());
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  auto it = config.api_keys.find(std::string(value));
  if (it == config.api_keys.end()) return Status::InvalidArgument("unknown API key");
  return it->second;
}

}  // namespace llmsync::api
