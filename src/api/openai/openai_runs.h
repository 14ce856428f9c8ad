// Run outcomes for the OpenAI-compatible views: what a chat completion or a response reads from a
// run's durable events (text, finish reason, result node, cost report), and answering once runs end.
//
// The views never keep their own copy of a generation: they subscribe to the run's event log in
// the event hub, exactly like a native SSE subscriber, so what they return is what the log says.
//
// Thread safety: RunOutcome is a value; RespondWhenRunsEnd is safe for concurrent use and never
// blocks.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "api/server_context.h"

namespace llmsync::api {

struct RunOutcome {
  Id run;
  std::string status;  // "completed" | "cancelled" | "failed"; empty while the run is going
  std::string text;    // concatenated token texts
  std::string finish_reason;
  Id node;                   // the assistant node the run appended
  Json cost;                 // the run.usage payload (null until it arrives)
  std::string error;         // run.failed message
  std::uint64_t tokens = 0;  // token events seen
  std::uint64_t last_event_id = 0;
};

// Applies one run event to `out`; returns the text of a token event (empty otherwise).
std::string ApplyRunEvent(const store::RunEvent& event, RunOutcome* out);

// A deferred response (see HttpResponse::deferred) finished once every run has ended: `build`
// turns the outcomes into it, and its errors (or exceptions) become JSON error responses. No
// thread waits meanwhile; `build` runs on whichever thread sees the last run end.
using BuildFromOutcomes = std::function<Result<HttpResponse>(const std::vector<RunOutcome>&)>;
HttpResponse RespondWhenRunsEnd(ServerContext& ctx, const std::string& tenant, std::vector<Id> runs,
                                BuildFromOutcomes build);

// Prompt tokens served from the cache (RAM + disk) in a cost report; 0 for null.
std::uint64_t CachedTokens(const Json& cost);
std::uint64_t PromptTokens(const Json& cost);

}  // namespace llmsync::api

namespace llmsync::api {

// A run's outcome so far, read from its durable events in the store (does not wait).
Result<RunOutcome> ReadRunOutcome(ServerContext& ctx, const std::string& tenant, const Id& run);

}  // namespace llmsync::api
