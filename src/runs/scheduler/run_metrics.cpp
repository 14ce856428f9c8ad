#include "runs/scheduler/run_metrics.h"

namespace llmsync::runs {

RunMetrics::RunMetrics(MetricsRegistry* registry) : registry_(registry) {
  if (registry_ == nullptr) return;
  ttft_ = registry_->GetHistogram("llmsync_ttft_seconds", "Time from run submission to its first token",
                                  kLatencyBuckets);
  inter_token_ = registry_->GetHistogram("llmsync_inter_token_seconds",
                                         "Time between consecutive tokens of a run", kLatencyBuckets);
  decode_rate_ =
      registry_->GetHistogram("llmsync_run_decode_tokens_per_second",
                              "Decode rate of a finished run (tokens after the first)", kRateBuckets);
  prompt_tokens_ = registry_->GetHistogram("llmsync_run_prompt_tokens", "Prompt tokens of a finished run",
                                           kTokenCountBuckets);
}

void RunMetrics::FirstToken(double seconds) const {
  if (ttft_ != nullptr) ttft_->Observe(seconds);
}

void RunMetrics::InterToken(double seconds) const {
  if (inter_token_ != nullptr) inter_token_->Observe(seconds);
}

void RunMetrics::Finished(const std::string& status, double run_seconds, double decode_tokens_per_s,
                          std::uint64_t prompt_tokens) const {
  if (registry_ == nullptr) return;
  registry_
      ->GetHistogram("llmsync_run_seconds", "Time from run submission to its end, by final status",
                     kLatencyBuckets, {{"status", status}})
      ->Observe(run_seconds);
  registry_->GetCounter("llmsync_runs_finished_total", "Runs finished, by final status", {{"status", status}})
      ->Add();
  if (decode_tokens_per_s > 0) decode_rate_->Observe(decode_tokens_per_s);
  prompt_tokens_->Observe(static_cast<double>(prompt_tokens));
}

}  // namespace llmsync::runs
