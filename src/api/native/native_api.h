// The native state-sync API (docs/PROTOCOL.md): sessions, nodes, heads, runs, event streams,
// leases, export/import, health and metrics. Each handler parses JSON into typed requests at the
// edge, calls the session service, scheduler or KV manager, and maps Status to an HTTP error.
//
// Thread safety: handlers run concurrently on the HTTP threads; they share only the thread-safe
// components in ServerContext.
#pragma once

#include "api/router.h"
#include "api/server_context.h"

namespace llmsync::api {

void AddSessionRoutes(Router& router, ServerContext& ctx);
void AddRunRoutes(Router& router, ServerContext& ctx);
void AddAdminRoutes(Router& router, ServerContext& ctx);

}  // namespace llmsync::api
