// The bridge from a request's sampling options to a per-slot sampler.
// Until the sampling layer (include/codey/sampling.h) lands this holds the
// chain itself, in llama.cpp's order: logit bias, penalties, top-k, then
// temperature with top-p / min-p, or greedy at temperature 0.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <unordered_map>

#include "runtime/internal.h"

namespace codey::rt {
namespace {

class ChainSampler final : public SlotSampler {
 public:
  ChainSampler(const SamplingOptions& o, const std::map<TokenId, float>& bias, std::span<const TokenId> prompt)
      : o_(o), bias_(bias.begin(), bias.end()), rng_(o.seed ? *o.seed : std::random_device{}()) {
    const size_t n = static_cast<size_t>(*o_.repeat_last_n);
    const size_t from = prompt.size() > n ? prompt.size() - n : 0;
    history_.assign(prompt.begin() + static_cast<std::ptrdiff_t>(from), prompt.end());
  }

  TokenId sample(std::span<float> logits) override {
    for (const auto& [t, b] : bias_)
      if (t >= 0 && static_cast<size_t>(t) < logits.size()) logits[static_cast<size_t>(t)] += b;
    apply_penalties(logits);
    const float temp = *o_.temperature;
    if (temp <= 0.0f) return argmax(logits);

    // Candidates sorted by logit, cut by top-k.
    cand_.resize(logits.size());
    std::iota(cand_.begin(), cand_.end(), 0);
    size_t k = cand_.size();
    if (*o_.top_k > 0) k = std::min(k, static_cast<size_t>(*o_.top_k));
    auto by_logit = [&](TokenId a, TokenId b) { return logits[static_cast<size_t>(a)] > logits[static_cast<size_t>(b)]; };
    if (k < cand_.size()) {
      std::partial_sort(cand_.begin(), cand_.begin() + static_cast<std::ptrdiff_t>(k), cand_.end(), by_logit);
      cand_.resize(k);
    } else {
      std::sort(cand_.begin(), cand_.end(), by_logit);
    }
    // Softmax at the temperature.
    probs_.resize(cand_.size());
    const float top = logits[static_cast<size_t>(cand_[0])];
    if (!std::isfinite(top)) return cand_[0];
    double sum = 0;
    for (size_t i = 0; i < cand_.size(); ++i) {
      const float l = logits[static_cast<size_t>(cand_[i])];
      probs_[i] = std::isfinite(l) ? std::exp((l - top) / temp) : 0.0f;
      sum += probs_[i];
    }
    size_t n = cand_.size();
    // min-p: drop tokens below min_p x the top probability.
    if (*o_.min_p > 0.0f) {
      const float cut = *o_.min_p * probs_[0];
      size_t keep = 1;
      while (keep < n && probs_[keep] >= cut) ++keep;
      n = keep;
    }
    // top-p: the smallest prefix with at least top_p of the mass.
    if (*o_.top_p < 1.0f) {
      double mass = 0, total = 0;
      for (size_t i = 0; i < n; ++i) total += probs_[i];
      size_t keep = 0;
      while (keep < n) {
        mass += probs_[keep++];
        if (mass >= *o_.top_p * total) break;
      }
      n = std::max<size_t>(keep, 1);
    }
    sum = 0;
    for (size_t i = 0; i < n; ++i) sum += probs_[i];
    std::uniform_real_distribution<double> u(0.0, sum);
    double x = u(rng_);
    for (size_t i = 0; i < n; ++i) {
      x -= probs_[i];
      if (x <= 0) return cand_[i];
    }
    return cand_[n - 1];
  }

  void accept(TokenId token) override {
    history_.push_back(token);
    const size_t n = static_cast<size_t>(*o_.repeat_last_n);
    if (history_.size() > n + 1024) history_.erase(history_.begin(), history_.end() - static_cast<std::ptrdiff_t>(n));
  }

 private:
  static TokenId argmax(std::span<const float> logits) {
    return static_cast<TokenId>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  }

  void apply_penalties(std::span<float> logits) {
    const float rep = *o_.repeat_penalty, pres = *o_.presence_penalty, freq = *o_.frequency_penalty;
    const size_t n = static_cast<size_t>(*o_.repeat_last_n);
    if ((rep == 1.0f && pres == 0.0f && freq == 0.0f) || n == 0) return;
    counts_.clear();
    const size_t from = history_.size() > n ? history_.size() - n : 0;
    for (size_t i = from; i < history_.size(); ++i) ++counts_[history_[i]];
    for (const auto& [t, c] : counts_) {
      if (t < 0 || static_cast<size_t>(t) >= logits.size()) continue;
      float& l = logits[static_cast<size_t>(t)];
      l = l > 0 ? l / rep : l * rep;
      l -= static_cast<float>(c) * freq + pres;
    }
  }

  SamplingOptions o_;
  std::vector<std::pair<TokenId, float>> bias_;
  std::mt19937_64 rng_;
  std::vector<TokenId> history_;
  std::unordered_map<TokenId, int> counts_;
  std::vector<TokenId> cand_;
  std::vector<float> probs_;
};

}  // namespace

SamplingOptions default_sampling() {
  SamplingOptions o;
  o.temperature = 0.8f;
  o.top_k = 40;
  o.top_p = 0.95f;
  o.min_p = 0.05f;
  o.repeat_penalty = 1.0f;
  o.repeat_last_n = 64;
  o.presence_penalty = 0.0f;
  o.frequency_penalty = 0.0f;
  return o;
}

Result<std::unique_ptr<SlotSampler>> make_slot_sampler(const SamplingOptions& o, const std::map<TokenId, float>& bias,
                                                       std::span<const TokenId> prompt, int64_t n_vocab) {
  auto range = [](std::string_view name, double v, double lo, double hi) -> Status {
    if (!(v >= lo && v <= hi) || !std::isfinite(v))
      return make_error(ErrorCode::kInvalidArgument, "{} must be in [{}, {}], got {}", name, lo, hi, v);
    return {};
  };
  CODEY_TRY(range("temperature", *o.temperature, 0, 100));
  CODEY_TRY(range("top_k", *o.top_k, 0, 1e9));
  CODEY_TRY(range("top_p", *o.top_p, 0, 1));
  CODEY_TRY(range("min_p", *o.min_p, 0, 1));
  CODEY_TRY(range("repeat_penalty", *o.repeat_penalty, 0, 100));
  CODEY_TRY(range("repeat_last_n", *o.repeat_last_n, 0, 1 << 20));
  CODEY_TRY(range("presence_penalty", *o.presence_penalty, -100, 100));
  CODEY_TRY(range("frequency_penalty", *o.frequency_penalty, -100, 100));
  for (const auto& [t, b] : bias) {
    if (t < 0 || t >= n_vocab)
      return make_error(ErrorCode::kInvalidArgument, "logit_bias token {} is outside the vocabulary (0..{})", t,
                        n_vocab - 1);
    if (std::isnan(b)) return make_error(ErrorCode::kInvalidArgument, "logit_bias for token {} is not a number", t);
  }
  return std::make_unique<ChainSampler>(o, bias, prompt);
}

}  // namespace codey::rt
