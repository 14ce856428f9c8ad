#include "engine/sampling.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <set>
#include <vector>

#include "engine/rng.h"

namespace llmsync::engine {
namespace {

// Logits whose softmax is exactly `probs`.
std::vector<float> LogitsOf(const std::vector<double>& probs) {
  std::vector<float> logits;
  for (double p : probs) logits.push_back(static_cast<float>(std::log(p)));
  return logits;
}

Sampler Make(const SamplingParams& p) {
  auto s = Sampler::Create(p);
  EXPECT_TRUE(s.IsOk()) << s.GetStatus().ToString();
  return std::move(s).Value();
}

// Draws at positions 0..n-1 and counts the tokens.
std::vector<int> Histogram(Sampler& sampler, const std::vector<float>& logits, int n) {
  std::vector<int> counts(logits.size(), 0);
  for (int pos = 0; pos < n; ++pos) ++counts[static_cast<std::size_t>(sampler.Sample(logits, {}, pos))];
  return counts;
}

// |observed - expected| within 5 standard deviations of a binomial count (deterministic seeds, so
// this is a fixed check, not a flaky one).
void ExpectFrequency(int count, int n, double p) {
  double sd = std::sqrt(n * p * (1 - p)) + 1.0;
  EXPECT_NEAR(count, n * p, 5 * sd) << "expected probability " << p;
}

TEST(RngTest, CounterRandomIsAFixedFunction) {
  // The reproducibility contract: these values must never change (resumed runs depend on them).
  EXPECT_EQ(CounterRandom64(0, 0), CounterRandom64(0, 0));
  EXPECT_NE(CounterRandom64(1, 0), CounterRandom64(0, 0));
  EXPECT_NE(CounterRandom64(0, 1), CounterRandom64(0, 0));
  EXPECT_NE(CounterRandom64(0, 0, 1), CounterRandom64(0, 0, 0));
  EXPECT_EQ(SplitMix64Mix(0x9e3779b97f4a7c15ULL),
            0xe220a8397b1dcdafULL);  // SplitMix64's first output for seed 0
  static_assert(CounterUniform(5, 9) >= 0.0 && CounterUniform(5, 9) < 1.0);
  double sum = 0;
  for (std::uint64_t i = 0; i < 10000; ++i) sum += CounterUniform(3, i);
  EXPECT_NEAR(sum / 10000, 0.5, 0.02);
}

TEST(SamplingTest, ArgMaxPrefersLowestIdAndIgnoresNan) {
  EXPECT_EQ(ArgMax(std::vector<float>{1, 3, 3, 2}), 1);
  EXPECT_EQ(ArgMax(std::vector<float>{std::nanf(""), -5, -1}), 2);
}

TEST(SamplingTest, GreedyPicksTheArgMaxWhateverTheSeed) {
  std::vector<float> logits = {0.1f, 2.0f, 1.9f, -3.0f};
  for (std::uint64_t seed : {0u, 1u, 99u}) {
    SamplingParams p;
    p.seed = seed;
    Sampler s = Make(p);
    for (int pos = 0; pos < 20; ++pos) EXPECT_EQ(s.Sample(logits, {}, pos), 1);
  }
}

TEST(SamplingTest, RepetitionPenaltyDividesPositiveAndMultipliesNegativeLogits) {
  SamplingParams p;
  p.repeat_penalty = 1.2f;
  Sampler s = Make(p);
  std::vector<std::int32_t> history = {0};
  EXPECT_EQ(s.Sample(std::vector<float>{2.0f, 1.9f}, history, 1), 1) << "2.0 / 1.2 < 1.9";
  EXPECT_EQ(s.Sample(std::vector<float>{2.0f, 1.5f}, history, 1), 0) << "2.0 / 1.2 > 1.5";
  EXPECT_EQ(s.Sample(std::vector<float>{-1.0f, -1.1f}, history, 1), 1) << "-1.0 * 1.2 < -1.1";
  // Applied once per distinct token, however often it repeats.
  std::vector<std::int32_t> repeated = {0, 0, 0, 0};
  EXPECT_EQ(s.Sample(std::vector<float>{2.0f, 1.5f}, repeated, 4), 0);
  // Out-of-vocabulary history entries are ignored.
  std::vector<std::int32_t> junk = {-4, 77};
  EXPECT_EQ(s.Sample(std::vector<float>{2.0f, 1.9f}, junk, 2), 0);
}

TEST(SamplingTest, RepetitionPenaltyLooksOnlyAtTheLastN) {
  SamplingParams p;
  p.repeat_penalty = 2.0f;
  p.repeat_last_n = 2;
  Sampler s = Make(p);
  std::vector<float> logits = {2.0f, 1.5f, 0.0f};
  EXPECT_EQ(s.Sample(logits, std::vector<std::int32_t>{0, 2, 2}, 3), 0) << "token 0 is outside the window";
  EXPECT_EQ(s.Sample(logits, std::vector<std::int32_t>{2, 0}, 2), 1);
  p.repeat_last_n = -1;
  Sampler all = Make(p);
  EXPECT_EQ(all.Sample(logits, std::vector<std::int32_t>{0, 2, 2, 2, 2}, 5), 1);
}

TEST(SamplingTest, TemperatureSamplingFollowsTheSoftmax) {
  std::vector<double> probs = {0.5, 0.25, 0.15, 0.1};
  SamplingParams p;
  p.temperature = 1.0f;
  p.seed = 11;
  Sampler s = Make(p);
  const int n = 20000;
  std::vector<int> counts = Histogram(s, LogitsOf(probs), n);
  for (std::size_t i = 0; i < probs.size(); ++i) ExpectFrequency(counts[i], n, probs[i]);
}

TEST(SamplingTest, HighTemperatureFlattensLowSharpens) {
  std::vector<double> probs = {0.7, 0.2, 0.1};
  SamplingParams p;
  p.temperature = 100.0f;
  Sampler hot = Make(p);
  std::vector<int> counts = Histogram(hot, LogitsOf(probs), 6000);
  for (int c : counts) ExpectFrequency(c, 6000, 1.0 / 3.0 + 0.005);
  p.temperature = 0.05f;
  Sampler cold = Make(p);
  EXPECT_EQ(Histogram(cold, LogitsOf(probs), 500)[0], 500);
}

TEST(SamplingTest, TopKKeepsTheKBest) {
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_k = 2;
  Sampler s = Make(p);
  std::vector<int> counts = Histogram(s, LogitsOf({0.4, 0.3, 0.2, 0.1}), 7000);
  EXPECT_EQ(counts[2] + counts[3], 0);
  ExpectFrequency(counts[0], 7000, 0.4 / 0.7);
  p.top_k = 1;
  Sampler one = Make(p);
  EXPECT_EQ(Histogram(one, LogitsOf({0.1, 0.3, 0.6}), 300)[2], 300);
}

TEST(SamplingTest, TopPKeepsTheSmallestNucleus) {
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_p = 0.75f;  // 0.5 < 0.75 <= 0.5 + 0.3
  Sampler s = Make(p);
  std::vector<int> counts = Histogram(s, LogitsOf({0.5, 0.3, 0.15, 0.05}), 8000);
  EXPECT_EQ(counts[2] + counts[3], 0);
  ExpectFrequency(counts[0], 8000, 0.5 / 0.8);
  p.top_p = 0.1f;  // the top token alone already covers it
  Sampler tight = Make(p);
  EXPECT_EQ(Histogram(tight, LogitsOf({0.5, 0.3, 0.15, 0.05}), 300)[0], 300);
}

TEST(SamplingTest, MinPDropsTokensBelowAFractionOfTheBest) {
  SamplingParams p;
  p.temperature = 1.0f;
  p.min_p = 0.4f;  // threshold 0.2: keeps 0.5 and 0.3, drops 0.15 and 0.05
  Sampler s = Make(p);
  std::vector<int> counts = Histogram(s, LogitsOf({0.3, 0.5, 0.15, 0.05}), 8000);
  EXPECT_EQ(counts[2] + counts[3], 0);
  ExpectFrequency(counts[1], 8000, 0.5 / 0.8);
}

TEST(SamplingTest, SameSeedAndPositionReproduceAcrossSamplers) {
  std::vector<float> logits = LogitsOf({0.2, 0.2, 0.2, 0.2, 0.2});
  SamplingParams p;
  p.temperature = 0.9f;
  p.top_k = 4;
  p.seed = 1234;
  Sampler first = Make(p);
  std::vector<std::int32_t> run;
  for (int pos = 0; pos < 64; ++pos) run.push_back(first.Sample(logits, run, pos));
  // A "resumed" sampler starting at position 32 continues identically: no hidden state.
  Sampler resumed = Make(p);
  std::vector<std::int32_t> history(run.begin(), run.begin() + 32);
  for (int pos = 32; pos < 64; ++pos) {
    std::int32_t t = resumed.Sample(logits, history, pos);
    EXPECT_EQ(t, run[static_cast<std::size_t>(pos)]) << pos;
    history.push_back(t);
  }
  EXPECT_GT(std::set<std::int32_t>(run.begin(), run.end()).size(), 2u) << "draws vary with position";
  p.seed = 1235;
  Sampler other = Make(p);
  std::vector<std::int32_t> other_run;
  for (int pos = 0; pos < 64; ++pos) other_run.push_back(other.Sample(logits, other_run, pos));
  EXPECT_NE(run, other_run);
}

TEST(SamplingTest, DegenerateRowsStillYieldAToken) {
  SamplingParams p;
  p.temperature = 1.0f;
  Sampler s = Make(p);
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(s.Sample(std::vector<float>{-inf, -inf, -inf}, {}, 0), 0);
  EXPECT_EQ(s.Sample(std::vector<float>{std::nanf(""), 1.0f, -inf}, {}, 0), 1);
  EXPECT_EQ(s.Sample(std::vector<float>{5.0f}, {}, 3), 0);
}

TEST(SamplingTest, RejectsInvalidParameters) {
  auto bad = [](auto mutate) {
    SamplingParams p;
    mutate(p);
    return Sampler::Create(p).GetStatus().Code();
  };
  EXPECT_EQ(bad([](SamplingParams& p) { p.temperature = -1; }), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad([](SamplingParams& p) { p.temperature = std::nanf(""); }), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad([](SamplingParams& p) { p.top_p = 0; }), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad([](SamplingParams& p) { p.top_p = 1.5f; }), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad([](SamplingParams& p) { p.min_p = -0.1f; }), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad([](SamplingParams& p) { p.repeat_penalty = 0; }), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad([](SamplingParams& p) { p.top_k = -2; }), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad([](SamplingParams& p) { p.repeat_last_n = -5; }), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad([](SamplingParams&) {}), StatusCode::kOk);
}

}  // namespace
}  // namespace llmsync::engine
