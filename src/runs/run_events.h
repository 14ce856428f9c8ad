// The events of a run, as typed values, and the interface that turns them into stored payloads.
//
// A run's event log is what subscribers read over SSE: run.started, token, run.usage,
// run.completed, run.failed, run.cancelled. The scheduler produces typed bodies; an EventEncoder
// (EventCodec) supplied by the API layer serializes each body once (as JSON: JSON stays at the
// edges), and the
// store keeps (type, payload) with a monotonically increasing event id per run.
//
// Thread safety: values; an EventEncoder must be callable from the scheduler thread.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <variant>

#include "llmsync/id.h"
#include "store/records.h"

namespace llmsync::runs {

inline constexpr std::string_view kEventStarted = "run.started";
inline constexpr std::string_view kEventToken = "token";
inline constexpr std::string_view kEventUsage = "run.usage";
inline constexpr std::string_view kEventCompleted = "run.completed";
inline constexpr std::string_view kEventFailed = "run.failed";
inline constexpr std::string_view kEventCancelled = "run.cancelled";
// A remote engine (runs/scheduler/remote_engine.h) took the run, first or after another failed.
inline constexpr std::string_view kEventUpstream = "run.upstream";

// Where the cached prefix stopped matching the request, when it did.
struct Divergence {
  std::int64_t position = 0;  // token position of the first token not served from cache
  Id node;                    // the node holding that position (zero when unknown)
};

// Cost feedback: what this run cost and what the cache saved.
// What a remote engine said about its own prompt cache, beside llmsync's expectation.
struct UpstreamCost {
  std::string upstream;                        // base URL of the engine that finished the run
  std::string kind;                            // "llmsync", "llama.cpp", "vllm", "openai-compatible"
  std::optional<std::uint64_t> prompt_tokens;  // as the upstream counted them
  std::optional<std::uint64_t> cached_tokens;  // prompt tokens it did not compute; nullopt: not reported
  std::string cached_field;                    // the response field the figure came from (empty: none)
  // llmsync's own figure: tokens of this prompt it had already sent to the same upstream for the
  // same session (what that upstream's prefix cache can hold).
  std::uint64_t expected_cached_tokens = 0;
  int attempts = 1;  // upstreams the run started on
  // Why the run went to that upstream (cache_hit, least_loaded) and the prompt tokens llmsync
  // expected it to hold when chosen.
  std::string reason;
  std::uint64_t matched_tokens = 0;
};

struct CostReport {
  store::RunUsage usage;                         // prompt tokens by source, generated tokens
  std::uint64_t request_bytes = 0;               // what the client sent for this turn
  std::uint64_t stateless_equivalent_bytes = 0;  // a full-history resend as OpenAI messages
  double ttft_ms = 0;
  double decode_tokens_per_s = 0;
  std::optional<Divergence> divergence;
  std::optional<UpstreamCost> upstream;  // set when a remote engine computed the run
  // Which engine served the run and why: the engine process (many processes on one store), the
  // upstream (remote engines in one process), or "local".
  std::optional<store::RunPlacement> dispatch;
};

struct StartedEvent {
  Id session;
  Id from_node;
  std::uint64_t prompt_tokens = 0;
  bool resumed = false;  // true when the run continues after a restart
};
struct TokenEvent {
  std::int32_t token_id = 0;
  std::string text;  // complete UTF-8 characters only; may be empty while a character is split
};
struct UsageEvent {
  CostReport cost;
};
struct CompletedEvent {
  Id node_id;
  std::string finish_reason;  // "stop" (end of turn or a stop string) or "length"
};
struct FailedEvent {
  std::string code;
  std::string message;
};
struct CancelledEvent {};
// The run (re)started on a remote engine. `from_token` generated tokens were already durable; the
// continuation equals the uninterrupted run's only when `exact` (greedy, or an upstream whose
// sampling is keyed by seed and position, such as llmsync); otherwise it may differ.
struct UpstreamEvent {
  std::string upstream;
  std::string kind;
  int attempt = 1;
  std::uint64_t from_token = 0;
  std::string previous_error;  // why the previous upstream was left; empty on the first attempt
  bool exact = true;
  bool token_ids = true;             // false: the upstream streams text, re-tokenized here
  bool text_prompt = false;          // the upstream takes text prompts: the template-rendered text went up
  std::string reason;                // why this upstream: cache_hit, least_loaded (failover: the next one)
  std::uint64_t matched_tokens = 0;  // prompt tokens it was expected to hold
};

using EventBody = std::variant<StartedEvent, TokenEvent, UsageEvent, CompletedEvent, FailedEvent,
                               CancelledEvent, UpstreamEvent>;

std::string_view EventType(const EventBody& body);
// The status a run ends with when its stream ends with an event of this type; nullopt when the type
// is not terminal (run.completed, run.failed and run.cancelled are).
std::optional<store::RunStatus> TerminalStatusOf(std::string_view type);

// Serializes event bodies into the stored (and streamed) payloads, and reads token events back
// (a run resumed after a restart recovers its generated tokens from them).
struct EventCodec {
  std::function<std::string(const EventBody&)> encode;
  std::function<Result<TokenEvent>(std::string_view payload)> decode_token;
};

}  // namespace llmsync::runs
