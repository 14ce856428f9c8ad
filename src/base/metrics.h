// Process metrics in the Prometheus text format: counters, gauges and histograms, optionally
// labelled.
//
//   Counter* hits = registry.GetCounter("llmsync_kv_hits_total", "KV tokens served", {{"tier", "ram"}});
//   hits->Add(128);
//
// A histogram counts observations into cumulative buckets (upper bounds given at creation, +Inf
// added) and renders NAME_bucket{le=...}, NAME_sum and NAME_count:
//
//   Histogram* ttft = registry.GetHistogram("llmsync_ttft_seconds", "Time to first token", kLatencyBuckets);
//   ttft->Observe(0.042);
//
// A metric is created on first Get and lives as long as the registry; callers keep the pointer and
// update it without locking. Render() writes every metric in name order, with HELP and TYPE lines.
//
// Thread safety: all methods are safe for concurrent use. Updates are lock-free atomics; Get and
// Render take the registry mutex.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace llmsync {

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void Add(std::uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

class Gauge {
 public:
  void Set(std::int64_t v) { value_.store(v, std::memory_order_relaxed); }
  void Add(std::int64_t d) { value_.fetch_add(d, std::memory_order_relaxed); }
  std::int64_t Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::int64_t> value_{0};
};

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double v);
  std::uint64_t Count() const { return count_.load(std::memory_order_relaxed); }
  double Sum() const { return sum_.load(std::memory_order_relaxed); }
  const std::vector<double>& Bounds() const { return bounds_; }
  // Observations <= Bounds()[i] (cumulative), for i in [0, Bounds().size()].
  std::uint64_t CumulativeCount(std::size_t i) const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;  // per bucket, the last one is +Inf
  std::atomic<std::uint64_t> count_{0};
  std::atomic<double> sum_{0.0};
};

// Bucket bounds for latencies in seconds (1 ms .. 60 s) and for rates such as tokens per second.
extern const std::vector<double> kLatencyBuckets;
extern const std::vector<double> kRateBuckets;
extern const std::vector<double> kTokenCountBuckets;

class MetricsRegistry {
 public:
  Counter* GetCounter(const std::string& name, const std::string& help, const MetricLabels& labels = {});
  Gauge* GetGauge(const std::string& name, const std::string& help, const MetricLabels& labels = {});
  // `bounds` (ascending) apply when the histogram is created; later Gets return the same one.
  Histogram* GetHistogram(const std::string& name, const std::string& help, const std::vector<double>& bounds,
                          const MetricLabels& labels = {});
  std::string Render() const;

 private:
  enum class Kind { kCounter, kGauge, kHistogram };
  struct Family {
    Kind kind = Kind::kCounter;
    std::string help;
    std::map<std::string, std::unique_ptr<Counter>> counters;  // by rendered label set
    std::map<std::string, std::unique_ptr<Gauge>> gauges;
    std::map<std::string, std::unique_ptr<Histogram>> histograms;
  };

  mutable std::mutex mu_;
  std::map<std::string, Family> families_;  // GUARDED_BY(mu_)
};

// Renders {a="x",b="y"} with Prometheus escaping, or "" for no labels.
std::string RenderMetricLabels(const MetricLabels& labels);

}  // namespace llmsync
