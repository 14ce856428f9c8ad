// The agent-trace benchmark (`llmsync bench trace`): a seeded synthetic trace of S sessions x T
// turns sharing a system prompt and tool list, the drivers that play it against a target (the
// native state-sync API, or an OpenAI-compatible endpoint used statelessly), and the report.
//
// Thread safety: a driver and its samples belong to the benchmark's single thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "llmsync/client.h"
#include "llmsync/status.h"

namespace llmsync::cli {

struct TraceConfig {
  int sessions = 8;
  int turns = 8;
  int message_tokens = 64;   // K: bytes of text per message (one token per byte on byte-vocab models)
  int generate_tokens = 16;  // G
  std::uint64_t seed = 1;
  // Issue 19: the native sessions' context policy ("auto" | "truncate"; empty: none) and the
  // server's context in tokens (0: the model's).
  std::string context_policy;
  std::int64_t context_target = 0;
  std::int64_t context_budget = 0;  // 0: the server's default budget
  std::int64_t max_context = 0;
};

// What a target did for one (session, turn).
struct TurnSample {
  std::int64_t prompt_tokens = 0;
  std::int64_t cached_tokens = 0;
  std::int64_t computed_tokens = 0;
  std::int64_t generated_tokens = 0;
  std::int64_t new_tokens = 0;   // prompt tokens the previous turn's state did not hold
  double ttft_ms = 0;            // client side: from the turn's first request to the first token
  double server_ttft_ms = -1;    // llmsync's own: from the run's start to its first token (-1: unknown)
  std::uint64_t bytes_sent = 0;  // request bodies of the turn
  bool compacted = false;        // the turn compacted its session first (its cost is in computed)
  // The response field cached_tokens came from (remote/upstream_report.h: "timings.prompt_n",
  // "usage.prompt_tokens_details.cached_tokens", "tokens_cached"); empty: the server reported no
  // cache figure, and every prompt token counts as computed.
  std::string cached_field;
};

// The trace's text: the shared system prompt (with its tool list) and message `turn` of `session`.
std::string TraceSystemPrompt();
std::string TraceMessage(const TraceConfig& config, int session, int turn);

// Plays turns against one target. Turn 0 of a session carries the system prompt.
class TraceDriver {
 public:
  virtual ~TraceDriver() = default;
  virtual Result<TurnSample> Turn(int session, int turn, const std::string& message) = 0;
};

std::unique_ptr<TraceDriver> MakeNativeDriver(const client::ClientOptions& options,
                                              const TraceConfig& config);
// How the stateless OpenAI driver plays the trace.
struct OpenAiDriverOptions {
  std::string path = "/v1/chat/completions";
  std::string model = "default";  // the model name to send
  // The bench's own llmsync: computed tokens come from its /metrics (summary runs included).
  bool local = false;
  // Sends the trace's context policy as llmsync's extension (`llmsync.context`).
  bool server_policy = false;
  // > 0: the client keeps its prompt under this many tokens itself, the way harnesses do: it drops
  // the oldest turns (after the system prompt) and re-sends the rest, so the prompt's prefix
  // changes at every turn past the limit.
  std::int64_t client_budget = 0;
};
std::unique_ptr<TraceDriver> MakeOpenAiDriver(const client::ClientOptions& options,
                                              const OpenAiDriverOptions& openai, const TraceConfig& config);

}  // namespace llmsync::cli
