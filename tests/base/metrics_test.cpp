#include "base/metrics.h"

#include <gtest/gtest.h>

#include <thread>

namespace llmsync {
namespace {

TEST(MetricsTest, RendersPrometheusText) {
  MetricsRegistry r;
  r.GetCounter("llmsync_requests_total", "HTTP requests", {{"code", "200"}})->Add(3);
  r.GetCounter("llmsync_requests_total", "HTTP requests", {{"code", "404"}})->Add();
  r.GetGauge("llmsync_sse_subscribers", "Open SSE streams")->Set(7);
  EXPECT_EQ(r.Render(),
            "# HELP llmsync_requests_total HTTP requests\n"
            "# TYPE llmsync_requests_total counter\n"
            "llmsync_requests_total{code=\"200\"} 3\n"
            "llmsync_requests_total{code=\"404\"} 1\n"
            "# HELP llmsync_sse_subscribers Open SSE streams\n"
            "# TYPE llmsync_sse_subscribers gauge\n"
            "llmsync_sse_subscribers 7\n");
}

TEST(MetricsTest, SameNameAndLabelsIsTheSameMetric) {
  MetricsRegistry r;
  Counter* a = r.GetCounter("c", "h", {{"tier", "ram"}});
  Counter* b = r.GetCounter("c", "h", {{"tier", "ram"}});
  EXPECT_EQ(a, b);
  EXPECT_NE(a, r.GetCounter("c", "h", {{"tier", "disk"}}));
}

TEST(MetricsTest, EscapesLabelValues) {
  EXPECT_EQ(RenderMetricLabels({{"path", "a\"b\\c\nd"}}), "{path=\"a\\\"b\\\\c\\nd\"}");
  EXPECT_EQ(RenderMetricLabels({}), "");
}

TEST(MetricsTest, ConcurrentUpdatesAreNotLost) {
  MetricsRegistry r;
  Counter* c = r.GetCounter("c", "h");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([c] {
      for (int i = 0; i < 10000; ++i) c->Add();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c->Value(), 40000u);
}

TEST(MetricsTest, HistogramsRenderCumulativeBuckets) {
  MetricsRegistry r;
  Histogram* h = r.GetHistogram("llmsync_ttft_seconds", "Time to first token", {0.1, 1}, {{"model", "m"}});
  EXPECT_EQ(h, r.GetHistogram("llmsync_ttft_seconds", "Time to first token", {5}, {{"model", "m"}}));
  h->Observe(0.05);
  h->Observe(0.1);  // a bound is inclusive (le)
  h->Observe(0.5);
  h->Observe(7);
  EXPECT_EQ(r.Render(),
            "# HELP llmsync_ttft_seconds Time to first token\n"
            "# TYPE llmsync_ttft_seconds histogram\n"
            "llmsync_ttft_seconds_bucket{model=\"m\",le=\"0.1\"} 2\n"
            "llmsync_ttft_seconds_bucket{model=\"m\",le=\"1\"} 3\n"
            "llmsync_ttft_seconds_bucket{model=\"m\",le=\"+Inf\"} 4\n"
            "llmsync_ttft_seconds_sum{model=\"m\"} 7.65\n"
            "llmsync_ttft_seconds_count{model=\"m\"} 4\n");
  EXPECT_EQ(h->Count(), 4u);
}

}  // namespace
}  // namespace llmsync
