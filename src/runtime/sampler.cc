// The bridge from a request's sampling options (model defaults, route and
// request overrides) to the sampling layer's Sampler for one slot.
#include <cmath>
#include <random>

#include "codey/sampling.h"
#include "runtime/internal.h"

namespace codey::rt {
namespace {

class ChainSampler final : public SlotSampler {
 public:
  ChainSampler(const SamplerParams& p, int32_t n_vocab, std::span<const TokenId> prompt) : sampler_(p, n_vocab) {
    // The prompt counts for the penalties, as in llama.cpp.
    const size_t n = p.penalty_last_n < 0 ? prompt.size() : static_cast<size_t>(p.penalty_last_n);
    for (size_t i = prompt.size() > n ? prompt.size() - n : 0; i < prompt.size(); ++i) sampler_.accept(prompt[i]);
  }
  TokenId sample(std::span<float> logits) override { return sampler_.sample(logits); }
  DraftVerdict verify(std::span<float> logits, TokenId draft, const TokenProbs* q) override {
    return sampler_.verify(logits, draft, q);
  }
  void accept(TokenId token) override { sampler_.accept(token); }
  const SamplerParams& params() const override { return sampler_.params(); }

 private:
  Sampler sampler_;
};

}  // namespace

SamplingOptions default_sampling() {
  const SamplerParams d;
  SamplingOptions o;
  o.temperature = d.temperature;
  o.top_k = d.top_k;
  o.top_p = d.top_p;
  o.min_p = d.min_p;
  o.repeat_penalty = d.repeat_penalty;
  o.repeat_last_n = d.penalty_last_n;
  o.presence_penalty = d.presence_penalty;
  o.frequency_penalty = d.frequency_penalty;
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
  CODEY_TRY(range("repeat_penalty", *o.repeat_penalty, 0.01, 100));
  CODEY_TRY(range("repeat_last_n", *o.repeat_last_n, 0, 1 << 20));
  CODEY_TRY(range("presence_penalty", *o.presence_penalty, -100, 100));
  CODEY_TRY(range("frequency_penalty", *o.frequency_penalty, -100, 100));
  for (const auto& [t, b] : bias) {
    if (t < 0 || t >= n_vocab)
      return make_error(ErrorCode::kInvalidArgument, "logit_bias token {} is outside the vocabulary (0..{})", t,
                        n_vocab - 1);
    if (std::isnan(b)) return make_error(ErrorCode::kInvalidArgument, "logit_bias for token {} is not a number", t);
  }
  SamplerParams p;
  p.temperature = *o.temperature;
  p.top_k = *o.top_k;
  p.top_p = *o.top_p;
  p.min_p = *o.min_p;
  p.penalty_last_n = *o.repeat_last_n;
  p.repeat_penalty = *o.repeat_penalty;
  p.frequency_penalty = *o.frequency_penalty;
  p.presence_penalty = *o.presence_penalty;
  p.seed = o.seed ? *o.seed : std::random_device{}();
  p.logit_bias.assign(bias.begin(), bias.end());
  return std::make_unique<ChainSampler>(p, static_cast<int32_t>(n_vocab), prompt);
}

}  // namespace codey::rt
