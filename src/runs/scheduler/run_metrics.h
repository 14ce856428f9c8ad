// RunMetrics: the scheduler's Prometheus series, the ones an operator watches for latency and
// throughput:
//
//   llmsync_ttft_seconds                 histogram: submit to first token, per run
//   llmsync_inter_token_seconds          histogram: between consecutive tokens of a run
//   llmsync_run_seconds{status}          histogram: submit to finish (succeeded, failed, cancelled)
//   llmsync_run_decode_tokens_per_second histogram: a finished run's decode rate
//   llmsync_run_prompt_tokens            histogram: prompt length of a finished run
//   llmsync_runs_finished_total{status}  counter
//   llmsync_queued_runs, llmsync_queued_prompt_tokens (gauges, set by the /metrics handler from
//   RunScheduler::Queue())
//
// Prompt tokens by source are llmsync_kv_tokens_total{source} (kvcache/kv_metrics.h).
//
// Thread safety: the pointers are set once at construction; updates are atomic (metrics.h). With
// no registry every method is a no-op.
#pragma once

#include <string>

#include "base/metrics.h"

namespace llmsync::runs {

class RunMetrics {
 public:
  explicit RunMetrics(MetricsRegistry* registry);

  void FirstToken(double seconds) const;
  void InterToken(double seconds) const;
  // `status` is the run's final status name; a rate <= 0 (one token or none) is not observed.
  void Finished(const std::string& status, double run_seconds, double decode_tokens_per_s,
                std::uint64_t prompt_tokens) const;

 private:
  MetricsRegistry* registry_;
  Histogram* ttft_ = nullptr;
  Histogram* inter_token_ = nullptr;
  Histogram* decode_rate_ = nullptr;
  Histogram* prompt_tokens_ = nullptr;
};

}  // namespace llmsync::runs
