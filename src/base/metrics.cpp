#include "base/metrics.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace llmsync {

const std::vector<double> kLatencyBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                             0.5,   1,      2.5,   5,    10,    30,   60};
const std::vector<double> kRateBuckets = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000};
const std::vector<double> kTokenCountBuckets = {16, 64, 256, 1024, 4096, 16384, 65536};

namespace {

std::string FormatDouble(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  std::string s = buf;
  // Shortest form that reads back: try fewer digits first.
  for (int digits = 1; digits < 17; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, v);
    if (std::strtod(buf, nullptr) == v) return buf;
  }
  return s;
}

// `labels` rendered ("" or "{a=\"x\"}") with one more label appended.
std::string WithLabel(const std::string& labels, const std::string& extra) {
  if (labels.empty()) return "{" + extra + "}";
  return labels.substr(0, labels.size() - 1) + "," + extra + "}";
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      buckets_(std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1)) {}

void Histogram::Observe(double v) {
  std::size_t i =
      static_cast<std::size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
}

std::uint64_t Histogram::CumulativeCount(std::size_t i) const {
  std::uint64_t n = 0;
  for (std::size_t b = 0; b <= i && b <= bounds_.size(); ++b)
    n += buckets_[b].load(std::memory_order_relaxed);
  return n;
}

std::string RenderMetricLabels(const MetricLabels& labels) {
  if (labels.empty()) return "";
  std::string out = "{";
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (i > 0) out += ',';
    out += labels[i].first;
    out += "=\"";
    for (char c : labels[i].second) {
      if (c == '\\' || c == '"') out += '\\';
      if (c == '\n') {
        out += "\\n";
        continue;
      }
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

Counter* MetricsRegistry::GetCounter(const std::string& name, const std::string& help,
                                     const MetricLabels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  Family& f = families_[name];
  f.kind = Kind::kCounter;
  if (f.help.empty()) f.help = help;
  auto& slot = f.counters[RenderMetricLabels(labels)];
  if (!slot) slot = std::make_unique<Counter>();
  return slot.get();
}

Gauge* MetricsRegistry::GetGauge(const std::string& name, const std::string& help,
                                 const MetricLabels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  Family& f = families_[name];
  f.kind = Kind::kGauge;
  if (f.help.empty()) f.help = help;
  auto& slot = f.gauges[RenderMetricLabels(labels)];
  if (!slot) slot = std::make_unique<Gauge>();
  return slot.get();
}

Histogram* MetricsRegistry::GetHistogram(const std::string& name, const std::string& help,
                                         const std::vector<double>& bounds, const MetricLabels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  Family& f = families_[name];
  f.kind = Kind::kHistogram;
  if (f.help.empty()) f.help = help;
  auto& slot = f.histograms[RenderMetricLabels(labels)];
  if (!slot) slot = std::make_unique<Histogram>(bounds);
  return slot.get();
}

std::string MetricsRegistry::Render() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  for (const auto& [name, f] : families_) {
    out += "# HELP " + name + " " + f.help + "\n";
    const char* type = f.kind == Kind::kCounter ? " counter\n"
                       : f.kind == Kind::kGauge ? " gauge\n"
                                                : " histogram\n";
    out += "# TYPE " + name + type;
    for (const auto& [labels, c] : f.counters) out += name + labels + " " + std::to_string(c->Value()) + "\n";
    for (const auto& [labels, g] : f.gauges) out += name + labels + " " + std::to_string(g->Value()) + "\n";
    for (const auto& [labels, h] : f.histograms) {
      // One pass over the buckets; the count is their total, so the series stay consistent.
      std::uint64_t cumulative = 0;
      for (std::size_t i = 0; i <= h->Bounds().size(); ++i) {
        cumulative = h->CumulativeCount(i);
        std::string le = i < h->Bounds().size() ? FormatDouble(h->Bounds()[i]) : "+Inf";
        out += name + "_bucket" + WithLabel(labels, "le=\"" + le + "\"") + " " + std::to_string(cumulative) +
               "\n";
      }
      out += name + "_sum" + labels + " " + FormatDouble(h->Sum()) + "\n";
      out += name + "_count" + labels + " " + std::to_string(cumulative) + "\n";
    }
  }
  return out;
}

}  // namespace llmsync
