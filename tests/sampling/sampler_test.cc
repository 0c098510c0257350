// Sampler features (greedy, temperature, top-k/p, min-p, penalties, bias,
// seed) and stop strings across token boundaries.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>

#include "codey/sampling.h"

namespace codey {
namespace {

std::vector<float> logits_of(std::vector<double> probs) {
  std::vector<float> l;
  for (double p : probs) l.push_back(p > 0 ? static_cast<float>(std::log(p)) : -INFINITY);
  return l;
}

std::map<int32_t, int> histogram(Sampler& s, const std::vector<float>& logits, int n) {
  std::map<int32_t, int> h;
  for (int i = 0; i < n; ++i) h[s.sample(logits)]++;
  return h;
}

TEST(SamplerTest, GreedyIsArgmax) {
  Sampler s(SamplerParams::greedy(), 5);
  EXPECT_EQ(s.sample(std::vector<float>{0.1f, 3.0f, -1.0f, 2.9f, 0.0f}), 1);
}

TEST(SamplerTest, TemperatureFollowsSoftmax) {
  SamplerParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.seed = 42;
  Sampler s(p, 4);
  const auto logits = logits_of({0.1, 0.2, 0.3, 0.4});
  const auto h = histogram(s, logits, 40000);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(h.at(i) / 40000.0, 0.1 * (i + 1), 0.01) << i;
  // Temperature 0.5 squares the ratios: p ~ q^2.
  p.temperature = 0.5f;
  Sampler s2(p, 4);
  const auto h2 = histogram(s2, logits, 40000);
  const double z = 0.01 + 0.04 + 0.09 + 0.16;
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(h2.at(i) / 40000.0, 0.01 * (i + 1) * (i + 1) / z, 0.01) << i;
}

TEST(SamplerTest, SeedReproduces) {
  SamplerParams p;
  p.seed = 7;
  p.top_k = 0;
  p.min_p = 0;
  std::vector<float> logits(1000);
  std::mt19937 rng(1);
  for (auto& l : logits) l = std::normal_distribution<float>(0, 2)(rng);
  Sampler a(p, 1000), b(p, 1000);
  std::vector<int32_t> ta, tb;
  for (int i = 0; i < 50; ++i) {
    ta.push_back(a.sample(logits));
    tb.push_back(b.sample(logits));
  }
  EXPECT_EQ(ta, tb);
  a.reset();
  for (int i = 0; i < 50; ++i) EXPECT_EQ(a.sample(logits), ta[static_cast<size_t>(i)]);
  p.seed = 8;
  Sampler c(p, 1000);
  std::vector<int32_t> tc;
  for (int i = 0; i < 50; ++i) tc.push_back(c.sample(logits));
  EXPECT_NE(ta, tc);
}

TEST(SamplerTest, TopKTopPMinP) {
  SamplerParams p;
  p.temperature = 1.0f;
  p.top_k = 2;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  const auto logits = logits_of({0.05, 0.4, 0.15, 0.3, 0.1});
  Sampler k2(p, 5);
  auto h = histogram(k2, logits, 5000);
  EXPECT_EQ(h.size(), 2u);
  EXPECT_TRUE(h.count(1) && h.count(3));
  EXPECT_NEAR(h[1] / 5000.0, 0.4 / 0.7, 0.03);

  p.top_k = 0;
  p.top_p = 0.8f;  // 0.4 + 0.3 = 0.7 < 0.8, + 0.15 reaches it
  Sampler tp(p, 5);
  h = histogram(tp, logits, 5000);
  EXPECT_EQ(h.size(), 3u);
  EXPECT_TRUE(h.count(1) && h.count(3) && h.count(2));

  p.top_p = 1.0f;
  p.min_p = 0.3f;  // keeps p >= 0.12: tokens 1, 3, 2
  Sampler mp(p, 5);
  h = histogram(mp, logits, 5000);
  EXPECT_EQ(h.size(), 3u);
  EXPECT_FALSE(h.count(4));
}

TEST(SamplerTest, TopPOverLargeVocabulary) {
  // 150k entries: top-p needs only a partial sort; the kept set is exact.
  const int32_t n = 150000;
  std::vector<float> logits(n, 0.0f);
  for (int i = 0; i < 10; ++i) logits[static_cast<size_t>(i * 7919)] = 14.0f;  // ~10 dominant tokens
  SamplerParams p;
  p.top_k = 0;
  p.top_p = 0.5f;
  p.min_p = 0.0f;
  Sampler s(p, n);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(s.sample(logits) % 7919, 0);
}

TEST(SamplerTest, Penalties) {
  SamplerParams p = SamplerParams::greedy();
  p.repeat_penalty = 2.0f;
  p.penalty_last_n = 4;
  Sampler s(p, 3);
  const std::vector<float> l = {3.0f, 2.0f, -1.0f};
  EXPECT_EQ(s.sample(l), 0);
  s.accept(0);  // 3.0 / 2 = 1.5 < 2.0
  EXPECT_EQ(s.sample(l), 1);
  s.accept(1);  // 2.0 / 2 = 1.0 < 1.5
  EXPECT_EQ(s.sample(l), 0);
  for (int i = 0; i < 4; ++i) s.accept(2);  // window of 4: tokens 0 and 1 fell out
  EXPECT_EQ(s.sample(l), 0);

  SamplerParams f = SamplerParams::greedy();
  f.frequency_penalty = 0.6f;
  f.presence_penalty = 0.1f;
  f.penalty_last_n = -1;
  Sampler fs(f, 2);
  const std::vector<float> l2 = {1.0f, 0.0f};
  fs.accept(0);  // 1 - 0.6 - 0.1 = 0.3 > 0
  EXPECT_EQ(fs.sample(l2), 0);
  fs.accept(0);  // 1 - 1.2 - 0.1 < 0
  EXPECT_EQ(fs.sample(l2), 1);
}

TEST(SamplerTest, LogitBiasBansAndBoosts) {
  SamplerParams p = SamplerParams::greedy();
  p.logit_bias = {{0, -INFINITY}, {2, 5.0f}};
  Sampler s(p, 3);
  EXPECT_EQ(s.sample(std::vector<float>{10.0f, 1.0f, 0.0f}), 2);
  p.logit_bias = {{0, -INFINITY}};
  p.temperature = 1.0f;
  p.top_k = 0;
  p.min_p = 0;
  Sampler t(p, 3);
  for (int i = 0; i < 500; ++i) EXPECT_NE(t.sample(std::vector<float>{10.0f, 1.0f, 0.0f}), 0);
}

TEST(StopMatcherTest, AcrossTokenBoundariesNeverEmitted) {
  StopMatcher m({"\n\n", "</s>"});
  std::string out;
  for (const char* piece : {"def f", "():", "\n", "    return 1<", "/", "s", ">tail"}) out += m.push(piece);
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.matched(), "</s>");
  EXPECT_EQ(out, "def f():\n    return 1");
  EXPECT_EQ(m.push("more"), "");
  EXPECT_EQ(m.flush(), "");
}

TEST(StopMatcherTest, HeldBackTextIsReleased) {
  StopMatcher m({"STOP"});
  EXPECT_EQ(m.push("abc ST"), "abc ");
  EXPECT_EQ(m.push("O"), "");
  EXPECT_EQ(m.push("P!"), "");
  EXPECT_TRUE(m.stopped());
  StopMatcher n({"STOP"});
  EXPECT_EQ(n.push("x ST"), "x ");
  EXPECT_EQ(n.push("AR"), "STAR");
  EXPECT_EQ(n.push("ST"), "");
  EXPECT_EQ(n.flush(), "ST");
  EXPECT_FALSE(n.stopped());
  StopMatcher none;
  EXPECT_EQ(none.push("anything"), "anything");
}

TEST(StopMatcherTest, EarliestStopWins) {
  StopMatcher m({"bc", "abcd"});
  EXPECT_EQ(m.push("xabcd"), "x");  // "abcd" starts first
  EXPECT_EQ(m.matched(), "abcd");
}

}  // namespace
}  // namespace codey
