#include "store/open_store.h"

#include "store/redis/redis_store.h"
#include "store/sqlite/sqlite_store.h"

namespace llmsync::store {

Result<StoreLocation> ParseStoreLocation(std::string_view location) {
  constexpr std::string_view kSqlite = "sqlite:";
  StoreLocation out;
  if (location.substr(0, kSqlite.size()) == kSqlite) {
    out.kind = StoreKind::kSqlite;
    out.target = std::string(location.substr(kSqlite.size()));
    if (out.target.empty()) return Status::InvalidArgument("--store sqlite:PATH needs a path");
    return out;
  }
  if (location.substr(0, 8) == "redis://") {
    RedisStoreOptions options;
    LLMSYNC_RETURN_IF_ERROR(ParseRedisUrl(location, &options));
    out.kind = StoreKind::kRedis;
    out.target = std::string(location);
    return out;
  }
  return Status::InvalidArgument("--store must be sqlite:PATH or redis://HOST[:PORT][/DB], got '" +
                                 std::string(location) + "'");
}

std::string DescribeStore(const StoreLocation& location) {
  if (location.kind == StoreKind::kSqlite) return "sqlite " + location.target;
  RedisStoreOptions options;
  (void)ParseRedisUrl(location.target, &options);
  return "redis " + options.host + ":" + std::to_string(options.port) + "/" + std::to_string(options.db);
}

Result<std::unique_ptr<Store>> OpenStore(const StoreLocation& location, Env* env, MetricsRegistry* metrics) {
  if (location.kind == StoreKind::kSqlite) {
    SqliteStoreOptions options;
    options.path = location.target;
    options.env = env;
    options.metrics = metrics;
    return OpenSqliteStore(options);
  }
  RedisStoreOptions options;
  LLMSYNC_RETURN_IF_ERROR(ParseRedisUrl(location.target, &options));
  options.env = env;
  return OpenRedisStore(options);
}

}  // namespace llmsync::store
