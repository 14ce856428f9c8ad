// RunScheduler::ActiveRun: the state of one run while the inference loop executes it. Not part of
// the API; shared by scheduler*.cpp.
//
// Thread safety: owned by the loop thread once admitted (before that, by the queue under mu_).
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/sampling.h"
#include "runs/scheduler/scheduler.h"
#include "text/stream_decoder.h"

namespace llmsync::runs {

struct RunScheduler::ActiveRun {
  store::RunRecord record;
  RunParams params;
  std::optional<engine::Sampler> sampler;
  std::unique_ptr<TokenConstraint> constraint;  // masks logits before sampling; null: none
  std::vector<session::Node> path;
  std::vector<TokenId> prompt;      // path tokens + generation prompt
  std::size_t path_tokens = 0;      // of prompt, the ones frozen on the path
  std::vector<TokenId> gen_prompt;  // the generation prompt tokens
  std::vector<TokenId> generated;   // sampled tokens, in order (durable ones first after a resume)
  kvcache::KvSequence seq;
  kvcache::KvAccount account;
  std::int64_t fed = 0;         // positions whose KV is written
  std::int64_t feeding = 0;     // positions in the current step's batch
  std::int32_t max_tokens = 0;  // params.max_tokens capped by the context
  bool started = false;         // StartRun done (KV acquired, run.started emitted)
  bool resumed = false;
  std::optional<text::StreamDecoder> decoder;
  std::string text;              // generated text decoded so far
  std::size_t emitted_text = 0;  // bytes of `text` already sent in token events
  std::uint64_t request_bytes = 0;
  std::uint64_t stateless_bytes = 0;
  std::int64_t submitted_micros = 0;
  Id after_prefill_of;  // see SubmitRequest
  std::int64_t first_token_micros = 0;
  std::int64_t last_token_micros = 0;
  // With a remote engine: the stream computing this run, the upstream starts in a row that
  // produced no token, and what the upstream reported about its cache.
  std::unique_ptr<RemoteGeneration> remote;
  int remote_failures = 0;
  int remote_attempts = 0;
  bool upstream_announced = false;  // run.upstream emitted for the current stream
  std::string upstream_previous_error;
  std::optional<UpstreamCost> upstream_cost;
  // Many processes: the fencing token every write of this run carries (0: unfenced), and whether
  // the store refused one because another worker took the run over (set from the writer thread).
  std::uint64_t lease_epoch = 0;
  store::RunPlacement placement;  // many processes: where the run is and why
  std::shared_ptr<std::atomic<bool>> lease_lost = std::make_shared<std::atomic<bool>>(false);

  std::vector<TokenId> SequenceTokens() const {
    std::vector<TokenId> all = prompt;
    all.insert(all.end(), generated.begin(), generated.end());
    return all;
  }
};

// Fills a remote run's cost report from its upstream's own cache report (scheduler_remote.cpp).
void ApplyUpstreamCost(const RunScheduler::ActiveRun& run, CostReport* cost);

// Publishes events just committed by a run update (they end at updated.last_event_id).
void PublishFinal(EventHub& hub, const store::RunRecord& updated,
                  const std::vector<store::RunEventDraft>& drafts, std::int64_t now_ms);

// Where in `text` a stop string starts (npos when none); and how many trailing bytes of `text`
// might still become the start of one (held back from token events).
std::size_t FindStop(const std::string& text, const std::vector<std::string>& stops, std::size_t from);
std::size_t StopPrefixHoldback(const std::string& text, const std::vector<std::string>& stops);
// Models can emit byte sequences that are not UTF-8 (a character split by a stop, or just noise).
// What leaves the scheduler as text replaces each such byte with U+FFFD; the frozen token ids stay
// exact, so nothing the model saw is lost.
std::string ReplaceInvalidUtf8(std::string_view text);

}  // namespace llmsync::runs
