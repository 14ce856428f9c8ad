#include "api/server_config.h"

#include "store/open_store.h"

#include <nlohmann/json.hpp>

namespace llmsync::api {
namespace {

using Json = nlohmann::json;

template <typename T>
Status Take(const Json& j, const char* key, T* out) {
  if (!j.contains(key)) return Status::Ok();
  try {
    *out = j.at(key).get<T>();
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

bool IsLoopbackHost(const std::string& host) {
  return host == "127.0.0.1" || host == "::1" || host == "localhost" || host.rfind("127.", 0) == 0;
}

Status LoadConfigFile(Env* env, const std::string& path, ServerConfig* config) {
  LLMSYNC_ASSIGN_OR_RETURN(std::string text, env->ReadFile(path));
  Json j = Json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return Status::InvalidArgument("config file " + path + " is not a JSON object");
  static constexpr std::string_view kKnown[] = {"listen",
                                                "model",
                                                "db",
                                                "store",
                                                "seal_key_file",
                                                "role",
                                                "run_lease_ms",
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
                                                "idempotency_retention_hours"};
  for (const auto& [key, value] : j.items()) {
    bool known = false;
    for (std::string_view k : kKnown) known = known || key == k;
    if (!known) return Status::InvalidArgument("config file " + path + ": unknown key '" + key + "'");
  }
  LLMSYNC_RETURN_IF_ERROR(Take(j, "listen", &config->listen));
  LLMSYNC_RETURN_IF_ERROR(Take(j, "model", &config->model_path));
  LLMSYNC_RETURN_IF_ERROR(Take(j, "db", &config->db_path));
  LLMSYNC_RETURN_IF_ERROR(Take(j, "store", &config->store));
  LLMSYNC_RETURN_IF_ERROR(Take(j, "seal_key_file", &config->seal_key_file));
  LLMSYNC_RETURN_IF_ERROR(Take(j, "role", &config->role));
  LLMSYNC_RETURN_IF_ERROR(Take(j, "run_lease_ms", &config->run_lease_ms));
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
  if (config->engine_threads < 1 || config->http_threads < 1)
    return Status::InvalidArgument("threads must be >= 1");
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
  constexpr std::string_view kBearer = "Bearer ";
  if (header->size() <= kBearer.size() || header->compare(0, kBearer.size(), kBearer) != 0) {
    return Status::InvalidArgument("Authorization must be 'Bearer <key>'");
  }
  auto it = config.api_keys.find(header->substr(kBearer.size()));
  if (it == config.api_keys.end()) return Status::InvalidArgument("unknown API key");
  return it->second;
}

}  // namespace llmsync::api
