// JSON shapes of the native API: nodes, sessions, runs, cost reports and run event payloads.
//
// The run event codec is what the scheduler stores: each event body is serialized to JSON once,
// and the same bytes are served to every subscriber. docs/PROTOCOL.md documents every shape.
//
// Thread safety: pure functions.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "llmsync/status.h"
#include "runs/run_events.h"
#include "session/node.h"
#include "store/records.h"

namespace llmsync::api {

using Json = nlohmann::json;

// Dumps JSON, replacing invalid UTF-8 instead of throwing.
std::string DumpJson(const Json& j);

Json NodeJson(const session::Node& node, bool include_tokens);
Json CostJson(const runs::CostReport& cost);
// Where a run went and why (usage.dispatch, GET /v1/runs/{id}'s dispatch).
Json DispatchJson(const store::RunPlacement& placement);
Json UsageJson(const store::RunUsage& usage);
// The run record, with the cost report of its run.usage event when it has one.
Json RunJson(const store::RunRecord& run, const Json* cost);

runs::EventCodec MakeEventCodec();

// The request field "stop" (absent or null, a string, or an array of strings) as stop strings.
// kInvalidArgument for another shape or an empty string (which would stop before any text).
Result<std::vector<std::string>> ParseStopStrings(const Json& body);

}  // namespace llmsync::api
