// The OpenAI-compatible endpoints: views over the state log (docs/PROTOCOL.md, "OpenAI-compatible
// endpoints"). GET /v1/models, POST /v1/chat/completions, and the Responses API
// (POST /v1/responses, GET/DELETE /v1/responses/{id}, POST /v1/responses/{id}/cancel).
//
// Nothing here has state of its own beyond the conversation index (a cache of the tree's
// structure): a request's messages become nodes of the tenant's OpenAI session, generation is a
// durable run, and a response is that run and its result node.
//
// Thread safety: handlers run concurrently on the HTTP threads.
#pragma once

#include "api/router.h"
#include "api/server_context.h"

namespace llmsync::api {

void AddOpenAiRoutes(Router& router, ServerContext& ctx);

}  // namespace llmsync::api
