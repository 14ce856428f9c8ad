// Sampler: picks the next token from a row of logits. Greedy decoding, temperature, top-k, top-p
// (nucleus), min-p and the repetition penalty, with a counter-based draw (rng.h) keyed by
// (seed, position): the same logits, history, seed and position always give the same token, so a
// run resumed from its last durable token continues exactly as the uninterrupted run would have.
//
// Pipeline (the order of llama.cpp's default sampler chain):
//   1. repetition penalty over the distinct tokens among the last `repeat_last_n` of history:
//      a positive logit is divided by the penalty, a negative one multiplied (CTRL's rule);
//   2. temperature <= 0: greedy, the highest logit (the lowest id among equal logits);
//   3. top-k keeps the k highest logits; 4. top-p keeps the shortest prefix (by probability,
//      descending) whose mass reaches top_p; 5. min-p keeps tokens whose probability is at least
//      min_p times the highest one. Probabilities in 4 and 5 are a softmax of the penalized logits;
//   6. temperature divides the surviving logits, which are softmaxed and sampled with
//      u = CounterUniform(seed, position).
// Candidates are ordered by (logit descending, id ascending), so ties never depend on sort
// stability. NaN logits are treated as -infinity; at least one candidate always survives.
//
// Thread safety: a Sampler holds scratch buffers; use one per thread.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "llmsync/status.h"

namespace llmsync::engine {

struct SamplingParams {
  float temperature = 0.0f;         // <= 0: greedy
  std::int32_t top_k = 0;           // <= 0: off
  float top_p = 1.0f;               // >= 1: off; in (0, 1]
  float min_p = 0.0f;               // <= 0: off; in [0, 1]
  float repeat_penalty = 1.0f;      // 1: off; > 0
  std::int32_t repeat_last_n = 64;  // tokens of history the penalty looks at; -1: all of it
  std::uint64_t seed = 0;
};

// kInvalidArgument naming the bad field (NaN, negative temperature, top_p outside (0, 1], ...).
Status ValidateSamplingParams(const SamplingParams& params);

class Sampler {
 public:
  static Result<Sampler> Create(const SamplingParams& params);

  const SamplingParams& Params() const { return params_; }

  // Picks a token for `position`, the position it will occupy in its sequence. `history` holds the
  // sequence's tokens so far (for the repetition penalty); ids outside the vocabulary are ignored.
  // REQUIRES: !logits.empty().
  std::int32_t Sample(std::span<const float> logits, std::span<const std::int32_t> history,
                      std::int64_t position);

 private:
  explicit Sampler(const SamplingParams& params) : params_(params) {}

  struct Candidate {
    float logit;
    std::int32_t id;
  };

  void ApplyRepetitionPenalty(std::span<const std::int32_t> history);

  SamplingParams params_;
  std::vector<Candidate> candidates_;    // scratch, reused between calls
  std::vector<double> probs_;            // scratch
  std::vector<std::uint8_t> penalized_;  // scratch: per-id flag, all zero between calls
};

// The index of the highest logit, the lowest among equals (NaN counts as -infinity).
// REQUIRES: !logits.empty().
std::int32_t ArgMax(std::span<const float> logits);

}  // namespace llmsync::engine
