// Speculative sampling (Sampler::verify) keeps the target's distribution:
// chi-square tests with fixed seeds at one position (drafts from another
// distribution, point masses, a draft the target never takes, q = p) and over
// whole 3-token continuations with history-dependent penalties; the tests
// are shown to have the power to fail (the drafts' own distribution fails
// them). Greedy verification is sample() bit for bit.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>

#include "codey/sampling.h"

namespace codey {
namespace {

std::vector<float> random_logits(int n, uint32_t seed, float scale = 1.5f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> l(static_cast<size_t>(n));
  for (auto& x : l) x = d(rng);
  return l;
}

// The critical value of chi-square with `df` degrees of freedom at p = 1e-4
// (Wilson-Hilferty; within 1% of the exact value for df >= 3).
double chi2_critical(int df) {
  const double z = 3.719;  // one-sided normal quantile at 1e-4
  const double k = df;
  return k * std::pow(1.0 - 2.0 / (9.0 * k) + z * std::sqrt(2.0 / (9.0 * k)), 3.0);
}

struct ChiSquare {
  double stat = 0;
  int df = 0;
  int64_t outside = 0;  // observations where the expected probability is 0
  bool passes() const { return outside == 0 && stat < chi2_critical(std::max(df, 3)); }
};

// Observed counts against expected probabilities; cells expected below 5
// are pooled so the approximation holds.
ChiSquare chi_square(const std::map<int64_t, int64_t>& observed, const std::map<int64_t, double>& expected, int64_t n) {
  ChiSquare c;
  double pooled_obs = 0, pooled_exp = 0;
  int cells = 0;
  for (const auto& [k, p] : expected) {
    const double e = p * static_cast<double>(n);
    const auto it = observed.find(k);
    const double o = it == observed.end() ? 0.0 : static_cast<double>(it->second);
    if (e < 5.0) {
      pooled_obs += o;
      pooled_exp += e;
      continue;
    }
    c.stat += (o - e) * (o - e) / e;
    ++cells;
  }
  if (pooled_exp > 0) {
    c.stat += (pooled_obs - pooled_exp) * (pooled_obs - pooled_exp) / std::max(pooled_exp, 1e-9);
    ++cells;
  }
  for (const auto& [k, o] : observed)
    if (expected.find(k) == expected.end() || expected.at(k) <= 0) c.outside += o;
  c.df = cells - 1;
  return c;
}

SamplerParams filtered_params(uint64_t seed) {
  SamplerParams p;
  p.temperature = 0.9f;
  p.top_k = 8;
  p.top_p = 0.95f;
  p.min_p = 0.02f;
  p.seed = seed;
  return p;
}

std::map<int64_t, double> as_map(const TokenProbs& d) {
  std::map<int64_t, double> m;
  for (size_t i = 0; i < d.size(); ++i) m[d.ids[i]] = d.probs[i];
  return m;
}

TEST(SpeculativeSampling, DistributionIsWhatSampleDraws) {
  const int V = 12;
  const auto logits = random_logits(V, 3);
  Sampler s(filtered_params(5), V);
  TokenProbs p;
  s.distribution(logits, p);
  double sum = 0;
  for (float x : p.probs) sum += x;
  EXPECT_NEAR(sum, 1.0, 1e-6);
  EXPECT_LE(p.size(), 8u);  // top-k
  std::map<int64_t, int64_t> h;
  const int64_t n = 40000;
  for (int64_t i = 0; i < n; ++i) h[s.sample(logits)]++;
  const ChiSquare c = chi_square(h, as_map(p), n);
  EXPECT_TRUE(c.passes()) << "chi2 " << c.stat << " df " << c.df << " outside " << c.outside;

  Sampler g(SamplerParams::greedy(), V);
  g.distribution(logits, p);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p.ids[0], g.sample(logits));
  EXPECT_EQ(p.probs[0], 1.0f);
}

// One position: whatever q the draft came from, the token taken follows p,
// and drafts are accepted at the rate sum_x min(p(x), q(x)).
TEST(SpeculativeSampling, OnePositionKeepsTheTargetDistribution) {
  const int V = 12;
  const auto logits = random_logits(V, 3);
  Sampler probe(filtered_params(1), V);
  TokenProbs p;
  probe.distribution(logits, p);
  const auto pm = as_map(p);
  int32_t best = p.ids[0];
  for (size_t i = 0; i < p.size(); ++i)
    if (p.probs[i] > pm.at(best)) best = p.ids[i];
  int32_t never = -1;  // a token top-k removed
  for (int32_t t = 0; t < V && never < 0; ++t)
    if (!pm.count(t)) never = t;
  ASSERT_GE(never, 0);

  // Draft distributions: another model's (full support, including tokens p
  // excludes), p itself, and point masses (n-gram lookup).
  TokenProbs other;
  {
    SamplerParams dp;
    dp.temperature = 1.0f;
    dp.top_k = 0;
    dp.top_p = 1.0f;
    dp.min_p = 0.0f;
    Sampler d(dp, V);
    d.distribution(random_logits(V, 99), other);
  }
  struct Scenario {
    const char* name;
    const TokenProbs* q;  // nullptr: point mass at `point`
    int32_t point;
  };
  const Scenario scenarios[] = {{"other model's q", &other, -1},
                                {"q = p", &p, -1},
                                {"point mass at p's mode", nullptr, best},
                                {"point mass at a token p excludes", nullptr, never}};
  const int64_t n = 40000;
  for (const Scenario& sc : scenarios) {
    SCOPED_TRACE(sc.name);
    Sampler target(filtered_params(17), V);
    Sampler drafter(filtered_params(23), V);  // only its generator: draws from q
    std::map<int64_t, int64_t> taken, drafted;
    int64_t accepted = 0;
    for (int64_t i = 0; i < n; ++i) {
      const int32_t d = sc.q ? drafter.sample_from(*sc.q) : sc.point;
      drafted[d]++;
      const DraftVerdict v = target.verify(logits, d, sc.q);
      if (v.accepted) {
        EXPECT_EQ(v.token, d);
        ++accepted;
      }
      taken[v.token]++;
    }
    const ChiSquare c = chi_square(taken, pm, n);
    EXPECT_TRUE(c.passes()) << "chi2 " << c.stat << " (critical " << chi2_critical(c.df) << ", df " << c.df
                            << "), outside p's support " << c.outside;
    double overlap = 0;  // sum_x min(p, q)
    if (sc.q) {
      for (const auto& [t, pp] : pm) overlap += std::min(pp, static_cast<double>(sc.q->prob(static_cast<int32_t>(t))));
    } else {
      overlap = pm.count(sc.point) ? pm.at(sc.point) : 0.0;
    }
    EXPECT_NEAR(static_cast<double>(accepted) / n, overlap, 0.01);
    // Power: the drafts' own distribution (what accepting every draft would
    // give) fails the same test unless q is p.
    if (sc.q != &p) {
      const ChiSquare bad = chi_square(drafted, pm, n);
      EXPECT_FALSE(bad.passes()) << "the test cannot tell q from p";
    }
  }
}

// Greedy verification is the argmax after bias and penalties: accepted
// exactly when the draft is what sample() picks, without touching the
// generator.
TEST(SpeculativeSampling, GreedyVerifyIsSample) {
  const int V = 50;
  SamplerParams gp = SamplerParams::greedy();
  gp.repeat_penalty = 1.5f;
  gp.logit_bias = {{7, 0.5f}};
  Sampler a(gp, V), b(gp, V);
  for (int step = 0; step < 40; ++step) {
    const auto logits = random_logits(V, 100 + static_cast<uint32_t>(step), 0.3f);
    const int32_t want = a.sample(logits);
    const DraftVerdict hit = b.verify(logits, want, nullptr);
    EXPECT_TRUE(hit.accepted);
    EXPECT_EQ(hit.token, want);
    const DraftVerdict miss = b.verify(logits, (want + 1) % V, nullptr);
    EXPECT_FALSE(miss.accepted);
    EXPECT_EQ(miss.token, want);
    a.accept(want);
    b.accept(want);
  }
}

// Whole continuations: a target and a draft "model" (Markov chains over a
// vocabulary of 6), repetition penalty over the last 4 tokens (p depends on
// the history), drafts of 3 verified position by position as the decoders
// do. The 3-token continuations follow the target's exact law.
TEST(SpeculativeSampling, ContinuationsKeepTheTargetDistribution) {
  const int V = 6;
  std::vector<std::vector<float>> target(V), draft(V);
  for (int i = 0; i < V; ++i) {
    target[static_cast<size_t>(i)] = random_logits(V, 200 + static_cast<uint32_t>(i));
    draft[static_cast<size_t>(i)] = random_logits(V, 300 + static_cast<uint32_t>(i));
  }
  SamplerParams tp;
  tp.temperature = 1.0f;
  tp.top_k = 0;
  tp.top_p = 1.0f;
  tp.min_p = 0.0f;
  tp.repeat_penalty = 1.4f;
  tp.penalty_last_n = 4;
  SamplerParams dp = tp;
  dp.repeat_penalty = 1.0f;
  const std::vector<int32_t> prompt = {0, 3};
  const int kLen = 3, kDraft = 3;

  // The exact law: products of the sampler's distributions along each path.
  std::map<int64_t, double> exact;
  for (int64_t code = 0; code < V * V * V; ++code) {
    Sampler s(tp, V);
    for (int32_t t : prompt) s.accept(t);
    std::vector<int32_t> seq = prompt;
    double pr = 1.0;
    int64_t c = code;
    for (int i = 0; i < kLen; ++i) {
      const auto tok = static_cast<int32_t>(c % V);
      c /= V;
      TokenProbs d;
      s.distribution(target[static_cast<size_t>(seq.back())], d);
      pr *= d.prob(tok);
      s.accept(tok);
      seq.push_back(tok);
    }
    exact[code] = pr;
  }

  const int64_t n = 40000;
  std::map<int64_t, int64_t> got, drafted_only;
  int64_t drafts = 0, accepted = 0;
  for (int64_t run = 0; run < n; ++run) {
    tp.seed = static_cast<uint64_t>(run) * 2 + 1;
    Sampler verifier(tp, V);
    dp.seed = static_cast<uint64_t>(run) * 2 + 2;
    Sampler drafter(dp, V);
    for (int32_t t : prompt) verifier.accept(t);
    std::vector<int32_t> seq = prompt, out;
    while (static_cast<int>(out.size()) < kLen) {
      // Draft kDraft tokens from the draft chain, keeping each q.
      std::vector<int32_t> d;
      std::vector<TokenProbs> q(kDraft);
      int32_t prev = seq.back();
      for (int i = 0; i < kDraft; ++i) {
        drafter.distribution(draft[static_cast<size_t>(prev)], q[static_cast<size_t>(i)]);
        prev = drafter.sample_from(q[static_cast<size_t>(i)]);
        d.push_back(prev);
      }
      // The target's row i follows seq + d[0, i).
      int i = 0;
      for (; i <= kDraft && static_cast<int>(out.size()) < kLen; ++i) {
        const int32_t ctx = i == 0 ? seq.back() : d[static_cast<size_t>(i - 1)];
        const auto& row = target[static_cast<size_t>(ctx)];
        int32_t tok;
        bool ok = false;
        if (i < kDraft) {
          const DraftVerdict v = verifier.verify(row, d[static_cast<size_t>(i)], &q[static_cast<size_t>(i)]);
          tok = v.token;
          ok = v.accepted;
          ++drafts;
          accepted += ok;
        } else {
          tok = verifier.sample(row);  // every draft accepted: the bonus token
        }
        verifier.accept(tok);
        out.push_back(tok);
        if (!ok) break;
      }
      seq.assign(prompt.begin(), prompt.end());
      seq.insert(seq.end(), out.begin(), out.end());
    }
    int64_t code = 0, mul = 1;
    for (int k = 0; k < kLen; ++k, mul *= V) code += out[static_cast<size_t>(k)] * mul;
    got[code]++;
  }
  const ChiSquare c = chi_square(got, exact, n);
  EXPECT_TRUE(c.passes()) << "chi2 " << c.stat << " (critical " << chi2_critical(c.df) << ", df " << c.df << ")";
  const double rate = static_cast<double>(accepted) / static_cast<double>(drafts);
  EXPECT_GT(rate, 0.05);  // the draft chain is another model: some, not all, accepted
  EXPECT_LT(rate, 0.95);

  // Power: the draft chain's own continuations fail the test.
  for (int64_t run = 0; run < n; ++run) {
    dp.seed = 1000003 + static_cast<uint64_t>(run);
    Sampler drafter(dp, V);
    int32_t prev = prompt.back();
    int64_t code = 0, mul = 1;
    for (int k = 0; k < kLen; ++k, mul *= V) {
      prev = drafter.sample(draft[static_cast<size_t>(prev)]);
      code += prev * mul;
    }
    drafted_only[code]++;
  }
  EXPECT_FALSE(chi_square(drafted_only, exact, n).passes());
}

}  // namespace
}  // namespace codey
