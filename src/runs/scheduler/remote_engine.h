// RemoteEngine: the seam where a run's tokens are computed by another server instead of the local
// engine. It plugs into RunScheduler where the local batch step does (SchedulerDeps::remote): the
// scheduler keeps the run, its durable events, text state, stop strings, resumption and cost
// report; the remote engine only turns a token sequence into the next tokens.
//
// The interface speaks tokens and typed values only. The HTTP/JSON implementation lives above
// `runs/` (module `remote/`, docs/ARCHITECTURE.md), so `runs/` stays free of transport and JSON.
//
// Thread safety: RemoteEngine::Start may be called from any thread. A RemoteGeneration is owned by
// one thread (the scheduler's loop); its producer runs on a thread of its own and calls `wake`
// from there whenever Take has something new. Destroying a generation aborts it and waits for its
// producer, and `wake` is never called after the destructor returns.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/sampling.h"
#include "llmsync/status.h"
#include "runs/run_events.h"
#include "text/tokenizer.h"

namespace llmsync::runs {

struct RemoteRequest {
  // The run's tenant: the upstream that computed the deepest prefix of `tokens` for this tenant is
  // preferred (remote/upstream_pool.h), so a conversation's turns find it in that upstream's cache.
  std::string tenant;
  // The whole sequence so far: the frozen prompt plus the tokens the run already generated (the
  // durable ones after a failover). The upstream continues after the last one.
  std::vector<text::TokenId> tokens;
  std::int32_t max_tokens = 0;  // tokens still allowed
  engine::SamplingParams sampling;
};

// What arrived from the upstream since the last Take.
struct RemoteProgress {
  std::vector<text::TokenId> tokens;  // in order
  bool ended = false;                 // nothing more will arrive
  // When ended: OK and the upstream's finish reason ("stop", "length"), or the failure that ended
  // the stream early (a dead or misbehaving upstream): the scheduler retries elsewhere.
  Status error;
  std::string finish_reason;
  std::optional<UpstreamCost> cost;  // the upstream's usage report, when it sent one
};

class RemoteGeneration {
 public:
  virtual ~RemoteGeneration() = default;
  virtual RemoteProgress Take() = 0;
  // Waits up to `timeout` for the stream to end (the upstream's usage report comes last); true
  // when it has.
  virtual bool WaitForEnd(std::chrono::milliseconds timeout) = 0;
  // How the run was placed, for its run.upstream event: what is known so far (whether token ids
  // come back is known once something arrived).
  virtual UpstreamEvent Placement() const = 0;
};

class RemoteEngine {
 public:
  virtual ~RemoteEngine() = default;
  // Chooses an upstream for the request (the session's last one when it is up) and starts
  // streaming. kUnavailable when no upstream could be reached. `wake` is called from the
  // producer thread whenever Take has something new.
  virtual Result<std::unique_ptr<RemoteGeneration>> Start(const RemoteRequest& request,
                                                          std::function<void()> wake) = 0;
  // Upstream starts a run may use in a row without producing a token before it fails.
  virtual int MaxAttempts() const = 0;
  // The upstreams, for logs: "http://a:1, http://b:2".
  virtual std::string Describe() const = 0;
};

}  // namespace llmsync::runs
