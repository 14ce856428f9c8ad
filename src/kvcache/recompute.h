// RecomputeSequence: "recompute the rest" — replays the tokens a sequence declares beyond its
// cached rows through the engine, so that its KV covers every declared token.
//
// This is kept apart from KvManager::Acquire ("find and restore the cached prefix") on purpose:
// the run scheduler may instead prefill the missing tokens in its own mixed batches. Either way the
// rows are bit-identical to a continuous decode, because the engine is batch-invariant.
//
// Thread safety: as Engine::Forward (one call per Engine at a time) and the sequence rules of
// kv_manager.h (nothing else may change `seq` meanwhile).
#pragma once

#include <cstdint>
#include <vector>

#include "engine/engine.h"
#include "kvcache/kv_manager/kv_manager.h"

namespace llmsync::kvcache {

struct RecomputeResult {
  std::int64_t computed_tokens = 0;  // positions run through the engine
  std::vector<float> logits;         // predicting the token after the last one, when asked
};

// Runs positions [Length(seq), declared tokens) through `engine` in batches of at most
// engine.MaxBatchTokens() tokens, committing each batch. With `want_logits`, returns the logits of
// the last token; when every token was cached, the last one is recomputed for them (its block is
// copied on write if shared). kInvalidArgument when `want_logits` and the sequence is empty.
// REQUIRES: `engine` runs the model the manager was opened for.
Result<RecomputeResult> RecomputeSequence(engine::Engine& engine, KvManager& kv, engine::SeqId seq,
                                          bool want_logits = true);

}  // namespace llmsync::kvcache
