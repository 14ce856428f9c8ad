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

}  // namespace
}  // namespace llmsync
