// OpenStore: opens the Store a location names — "sqlite:PATH" (the embedded default) or
// "redis://HOST[:PORT][/DB]" (shared by many processes) — for `llmsync serve --store`, the config
// key "store" and the operator commands.
//
// Thread safety: a plain function.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "base/env.h"
#include "base/metrics.h"
#include "llmsync/status.h"
#include "store/store.h"

namespace llmsync::store {

enum class StoreKind { kSqlite, kRedis };

struct StoreLocation {
  StoreKind kind = StoreKind::kSqlite;
  std::string target;  // the SQLite path, or the redis:// URL
};

// Parses "sqlite:PATH" or "redis://...". kInvalidArgument for anything else.
Result<StoreLocation> ParseStoreLocation(std::string_view location);
// What the startup log names: "sqlite PATH" or "redis HOST:PORT/DB".
std::string DescribeStore(const StoreLocation& location);
// `metrics` (optional) receives the store's write latency.
Result<std::unique_ptr<Store>> OpenStore(const StoreLocation& location, Env* env,
                                         MetricsRegistry* metrics = nullptr);

}  // namespace llmsync::store
