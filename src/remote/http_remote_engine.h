// HttpRemoteEngine: runs::RemoteEngine over HTTP, for `llmsync serve --engine-url URL` (repeatable).
// Each run streams from one OpenAI-compatible upstream (llama-server, vLLM, SGLang, another
// llmsync) with POST /v1/completions:
//   - the prompt goes up as token ids (an integer array), so the upstream computes exactly the
//     frozen tokens and its own prefix cache can hit. An upstream that refuses token ids (4xx) is
//     sent the same tokens as text (rendered with the model's template, special tokens spelled
//     out) from then on, and the run's run.upstream event says `prompt: text`;
//   - token ids come back when the upstream returns them (llmsync and vLLM `token_ids`,
//     llama-server `tokens`); otherwise the text is re-tokenized here and the event says so;
//   - the usage report at the end (stream_options.include_usage) is read for the upstream's own
//     cache figure (remote/upstream_report.h), and llmsync's expectation is set beside it.
// Which upstream serves a run is UpstreamPool's choice (the deepest prefix it computed, load, health).
//
// Thread safety: Start may be called from any thread; each generation streams on its own thread
// (see runs/scheduler/remote_engine.h for the contract).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "base/env.h"
#include "runs/scheduler/remote_engine.h"
#include "text/tokenizer.h"

namespace llmsync::remote {

struct HttpRemoteOptions {
  std::vector<std::string> urls;  // http://HOST:PORT, at least one
  // A read that waits longer than this fails the stream (the upstream is hung): the run moves on.
  std::chrono::milliseconds read_timeout{30000};
  std::chrono::milliseconds probe_timeout{3000};  // GET /v1/models on first use
  std::int64_t down_ms = 2000;                    // how long a failed upstream is passed over
  Env* env = nullptr;                             // clock; null: Env::Default()
  // Sent as `Authorization: Bearer <api_key>` to every upstream (vLLM --api-key, llama-server
  // --api-key, an llmsync with api_keys); empty: no header.
  std::string api_key;
};

// kInvalidArgument naming the URL when one is malformed. REQUIRES: `tokenizer` outlives the engine.
Result<std::unique_ptr<runs::RemoteEngine>> MakeHttpRemoteEngine(HttpRemoteOptions options,
                                                                 const text::Tokenizer* tokenizer);

}  // namespace llmsync::remote
