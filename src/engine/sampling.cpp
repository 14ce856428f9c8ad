#include "engine/sampling.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "engine/rng.h"

namespace llmsync::engine {
namespace {

float Sanitize(float logit) { return std::isnan(logit) ? -std::numeric_limits<float>::infinity() : logit; }

// Fills probs[0..n) with the softmax of logits[i] * inv_temp, in double precision.
template <typename Candidate>
void Softmax(const std::vector<Candidate>& c, std::size_t n, double inv_temp, std::vector<double>& probs) {
  probs.resize(n);
  double max_logit = static_cast<double>(c[0].logit) * inv_temp;  // c is sorted descending
  double sum = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    double scaled = static_cast<double>(c[i].logit) * inv_temp;
    // -inf - finite max gives exp(-inf) = 0; an all -inf row is handled by the caller.
    probs[i] = std::exp(scaled - max_logit);
    sum += probs[i];
  }
  for (std::size_t i = 0; i < n; ++i) probs[i] /= sum;
}

}  // namespace

Status ValidateSamplingParams(const SamplingParams& p) {
  if (!std::isfinite(p.temperature) || p.temperature < 0.0f) {
    return Status::InvalidArgument("temperature must be a finite number >= 0, got " +
                                   std::to_string(p.temperature));
  }
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) {
    return Status::InvalidArgument("top_p must be in (0, 1], got " + std::to_string(p.top_p));
  }
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) {
    return Status::InvalidArgument("min_p must be in [0, 1], got " + std::to_string(p.min_p));
  }
  if (!std::isfinite(p.repeat_penalty) || p.repeat_penalty <= 0.0f) {
    return Status::InvalidArgument("repeat_penalty must be a finite number > 0, got " +
                                   std::to_string(p.repeat_penalty));
  }
  if (p.top_k < 0) return Status::InvalidArgument("top_k must be >= 0, got " + std::to_string(p.top_k));
  if (p.repeat_last_n < -1) {
    return Status::InvalidArgument("repeat_last_n must be >= -1, got " + std::to_string(p.repeat_last_n));
  }
  return Status::Ok();
}

Result<Sampler> Sampler::Create(const SamplingParams& params) {
  LLMSYNC_RETURN_IF_ERROR(ValidateSamplingParams(params));
  return Sampler(params);
}

std::int32_t ArgMax(std::span<const float> logits) {
  std::size_t best = 0;
  float best_logit = Sanitize(logits[0]);
  for (std::size_t i = 1; i < logits.size(); ++i) {
    float l = Sanitize(logits[i]);
    if (l > best_logit) {
      best_logit = l;
      best = i;
    }
  }
  return static_cast<std::int32_t>(best);
}

void Sampler::ApplyRepetitionPenalty(std::span<const std::int32_t> history) {
  if (params_.repeat_penalty == 1.0f || params_.repeat_last_n == 0 || history.empty()) return;
  std::size_t n_vocab = candidates_.size();
  std::size_t window = params_.repeat_last_n < 0
                           ? history.size()
                           : std::min(history.size(), static_cast<std::size_t>(params_.repeat_last_n));
  std::span<const std::int32_t> recent = history.subspan(history.size() - window);
  penalized_.resize(n_vocab, 0);
  for (std::int32_t id : recent) {
    if (id < 0 || static_cast<std::size_t>(id) >= n_vocab || penalized_[id] != 0) continue;
    penalized_[id] = 1;
    float& logit = candidates_[id].logit;  // candidates_ is still indexed by id here
    logit = logit > 0.0f ? logit / params_.repeat_penalty : logit * params_.repeat_penalty;
  }
  for (std::int32_t id : recent) {
    if (id >= 0 && static_cast<std::size_t>(id) < n_vocab) penalized_[id] = 0;
  }
}

std::int32_t Sampler::Sample(std::span<const float> logits, std::span<const std::int32_t> history,
                             std::int64_t position) {
  candidates_.resize(logits.size());
  for (std::size_t i = 0; i < logits.size(); ++i) {
    candidates_[i] = Candidate{Sanitize(logits[i]), static_cast<std::int32_t>(i)};
  }
  ApplyRepetitionPenalty(history);

  auto better = [](const Candidate& a, const Candidate& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  };
  if (params_.temperature <= 0.0f) {
    return std::min_element(candidates_.begin(), candidates_.end(), better)->id;
  }

  // 3. top-k (or a full sort when top-k is off: top-p needs the order).
  std::size_t n = candidates_.size();
  if (params_.top_k > 0 && static_cast<std::size_t>(params_.top_k) < n) {
    n = static_cast<std::size_t>(params_.top_k);
    std::partial_sort(candidates_.begin(), candidates_.begin() + static_cast<std::ptrdiff_t>(n),
                      candidates_.end(), better);
  } else {
    std::sort(candidates_.begin(), candidates_.end(), better);
  }
  // A row of -inf (or NaN) everywhere leaves nothing to weigh: fall back to the first candidate.
  if (candidates_[0].logit == -std::numeric_limits<float>::infinity()) return candidates_[0].id;

  // 4. top-p and 5. min-p on the untempered distribution.
  if (params_.top_p < 1.0f || params_.min_p > 0.0f) {
    Softmax(candidates_, n, 1.0, probs_);
    if (params_.top_p < 1.0f) {
      double cumulative = 0.0;
      std::size_t keep = n;
      for (std::size_t i = 0; i < n; ++i) {
        cumulative += probs_[i];
        if (cumulative >= static_cast<double>(params_.top_p)) {
          keep = i + 1;
          break;
        }
      }
      n = keep;
    }
    if (params_.min_p > 0.0f) {
      double threshold = static_cast<double>(params_.min_p) * probs_[0];
      std::size_t keep = 1;
      while (keep < n && probs_[keep] >= threshold) ++keep;
      n = keep;
    }
  }

  // 6. temperature, then the counter-based draw.
  Softmax(candidates_, n, 1.0 / static_cast<double>(params_.temperature), probs_);
  double u = CounterUniform(params_.seed, static_cast<std::uint64_t>(position));
  double cumulative = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    cumulative += probs_[i];
    if (u < cumulative) return candidates_[i].id;
  }
  return candidates_[n - 1].id;  // rounding left the total a hair below u
}

}  // namespace llmsync::engine
