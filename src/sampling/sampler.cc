// Sampler: the filter chain over a vocabulary of up to ~260k entries, with
// partial sorting so a step costs a few linear passes, not a full sort.
#include <algorithm>
#include <cmath>

#include "codey/base.h"
#include "codey/sampling.h"

namespace codey {

Sampler::Sampler(const SamplerParams& params, int32_t n_vocab)
    : params_(params),
      n_vocab_(n_vocab),
      rng_(params.seed),
      logits_(static_cast<size_t>(n_vocab)),
      ids_(static_cast<size_t>(n_vocab)),
      probs_(static_cast<size_t>(n_vocab)),
      counts_(static_cast<size_t>(n_vocab), 0),
      q_dense_(static_cast<size_t>(n_vocab), 0.0f) {
  CODEY_ASSERT(n_vocab > 0);
  const size_t window = params.penalty_last_n < 0 ? 4096 : static_cast<size_t>(params.penalty_last_n);
  history_.assign(window, -1);
  touched_.reserve(window);
}

void Sampler::reset() {
  std::fill(history_.begin(), history_.end(), -1);
  history_pos_ = history_count_ = 0;
  rng_.seed(params_.seed);
}

void Sampler::accept(int32_t token) {
  if (history_.empty()) return;
  history_[history_pos_] = token;
  history_pos_ = (history_pos_ + 1) % history_.size();
  history_count_ = std::min(history_count_ + 1, history_.size());
}

void Sampler::apply_penalties() {
  const SamplerParams& p = params_;
  if (history_count_ == 0 ||
      (p.repeat_penalty == 1.0f && p.frequency_penalty == 0.0f && p.presence_penalty == 0.0f))
    return;
  touched_.clear();
  for (size_t i = 0; i < history_count_; ++i) {
    const int32_t t = history_[i];
    if (t < 0 || t >= n_vocab_) continue;
    if (counts_[static_cast<size_t>(t)]++ == 0) touched_.push_back(t);
  }
  for (int32_t t : touched_) {
    float& l = logits_[static_cast<size_t>(t)];
    const int32_t c = counts_[static_cast<size_t>(t)];
    if (p.repeat_penalty != 1.0f) l = l > 0 ? l / p.repeat_penalty : l * p.repeat_penalty;
    l -= static_cast<float>(c) * p.frequency_penalty + p.presence_penalty;
    counts_[static_cast<size_t>(t)] = 0;
  }
}

float TokenProbs::prob(int32_t id) const {
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] == id) return probs[i];
  return 0.0f;
}

int32_t Sampler::sample(std::span<const float> logits) {
  if (greedy()) return argmax_after_penalties(logits);
  double total = 0.0;
  const size_t n = candidates(logits, total);
  if (n == 0) return 0;  // everything banned: nothing sensible to do
  std::uniform_real_distribution<double> uni(0.0, total);
  double r = uni(rng_);
  for (size_t i = 0; i < n; ++i) {
    r -= probs_[i];
    if (r <= 0.0) return ids_[i];
  }
  return ids_[n - 1];
}

int32_t Sampler::argmax_after_penalties(std::span<const float> logits) {
  CODEY_ASSERT(logits.size() == static_cast<size_t>(n_vocab_));
  std::copy(logits.begin(), logits.end(), logits_.begin());
  for (const auto& [tok, bias] : params_.logit_bias)
    if (tok >= 0 && tok < n_vocab_) logits_[static_cast<size_t>(tok)] += bias;
  apply_penalties();
  int32_t best = 0;
  for (int32_t i = 1; i < n_vocab_; ++i)
    if (logits_[static_cast<size_t>(i)] > logits_[static_cast<size_t>(best)]) best = i;
  return best;
}

void Sampler::distribution(std::span<const float> logits, TokenProbs& out) {
  out.clear();
  if (greedy()) {
    out.ids.push_back(argmax_after_penalties(logits));
    out.probs.push_back(1.0f);
    return;
  }
  double total = 0.0;
  const size_t n = candidates(logits, total);
  if (n == 0) {  // everything banned: sample() answers token 0
    out.ids.push_back(0);
    out.probs.push_back(1.0f);
    return;
  }
  out.ids.assign(ids_.begin(), ids_.begin() + static_cast<ptrdiff_t>(n));
  out.probs.resize(n);
  for (size_t i = 0; i < n; ++i) out.probs[i] = static_cast<float>(probs_[i] / total);
}

double Sampler::uniform01() { return std::uniform_real_distribution<double>(0.0, 1.0)(rng_); }

int32_t Sampler::sample_from(const TokenProbs& dist) {
  CODEY_ASSERT(!dist.ids.empty());
  double total = 0.0;
  for (float p : dist.probs) total += p;
  double r = uniform01() * total;
  for (size_t i = 0; i < dist.size(); ++i) {
    r -= dist.probs[i];
    if (r <= 0.0 && dist.probs[i] > 0.0f) return dist.ids[i];
  }
  for (size_t i = dist.size(); i-- > 0;)  // rounding left r > 0: the last token with mass
    if (dist.probs[i] > 0.0f) return dist.ids[i];
  return dist.ids.back();
}

DraftVerdict Sampler::verify(std::span<const float> logits, int32_t draft, const TokenProbs* q) {
  if (greedy()) {
    const int32_t t = argmax_after_penalties(logits);
    return {t, t == draft};
  }
  double total = 0.0;
  const size_t n = candidates(logits, total);
  if (n == 0) return {0, draft == 0};
  // p(draft) and q(draft); q spread out densely for the residual below.
  double p_draft = 0.0;
  for (size_t i = 0; i < n; ++i)
    if (ids_[i] == draft) p_draft = probs_[i] / total;
  double q_draft = 1.0;
  if (q) {
    for (size_t i = 0; i < q->size(); ++i)
      if (q->ids[i] >= 0 && q->ids[i] < n_vocab_) q_dense_[static_cast<size_t>(q->ids[i])] = q->probs[i];
    q_draft = draft >= 0 && draft < n_vocab_ ? q_dense_[static_cast<size_t>(draft)] : 0.0;
  } else if (draft >= 0 && draft < n_vocab_) {
    q_dense_[static_cast<size_t>(draft)] = 1.0f;
  }
  auto clear_q = [&] {
    if (q) {
      for (int32_t id : q->ids)
        if (id >= 0 && id < n_vocab_) q_dense_[static_cast<size_t>(id)] = 0.0f;
    } else if (draft >= 0 && draft < n_vocab_) {
      q_dense_[static_cast<size_t>(draft)] = 0.0f;
    }
  };
  // Accept with probability min(1, p/q). A draft q gave no mass to cannot
  // have been drawn from q: treat it as certain (accepted with p(draft)).
  const double ratio = q_draft > 0.0 ? p_draft / q_draft : p_draft;
  if (p_draft > 0.0 && (ratio >= 1.0 || uniform01() < ratio)) {
    clear_q();
    return {draft, true};
  }
  // Rejected: the residual max(0, p - q) over p's support, in place of the
  // candidate weights (q's mass outside p's support does not matter).
  double residual = 0.0;
  for (size_t i = 0; i < n; ++i) {
    const double r = std::max(0.0, probs_[i] / total - q_dense_[static_cast<size_t>(ids_[i])]);
    probs_[i] = static_cast<float>(r);
    residual += r;
  }
  clear_q();
  if (!(residual > 0.0)) {  // p <= q everywhere: only rounding gets here (p = q accepts surely)
    double t2 = 0.0;
    candidates(logits, t2);
    residual = t2;
  }
  double r = uniform01() * residual;
  for (size_t i = 0; i < n; ++i) {
    r -= probs_[i];
    if (r <= 0.0 && probs_[i] > 0.0f) return {ids_[i], false};
  }
  for (size_t i = n; i-- > 0;)
    if (probs_[i] > 0.0f) return {ids_[i], false};
  return {ids_[n - 1], false};
}

size_t Sampler::candidates(std::span<const float> logits, double& total_out) {
  CODEY_ASSERT(logits.size() == static_cast<size_t>(n_vocab_));
  const SamplerParams& p = params_;
  std::copy(logits.begin(), logits.end(), logits_.begin());
  for (const auto& [tok, bias] : p.logit_bias)
    if (tok >= 0 && tok < n_vocab_) logits_[static_cast<size_t>(tok)] += bias;
  apply_penalties();

  // Candidates: every token not banned (-inf).
  size_t n = 0;
  for (int32_t i = 0; i < n_vocab_; ++i)
    if (logits_[static_cast<size_t>(i)] != -INFINITY) ids_[n++] = i;
  if (n == 0) return 0;
  auto by_logit = [&](int32_t a, int32_t b) {
    const float la = logits_[static_cast<size_t>(a)], lb = logits_[static_cast<size_t>(b)];
    return la > lb || (la == lb && a < b);
  };
  auto begin = ids_.begin();
  size_t sorted = 0;  // ids_[0, sorted) is in descending order
  if (p.top_k > 0 && static_cast<size_t>(p.top_k) < n) {
    std::nth_element(begin, begin + p.top_k, begin + static_cast<ptrdiff_t>(n), by_logit);
    n = static_cast<size_t>(p.top_k);
    std::sort(begin, begin + static_cast<ptrdiff_t>(n), by_logit);
    sorted = n;
  }
  const float max_logit = sorted > 0 ? logits_[static_cast<size_t>(ids_[0])]
                                     : logits_[static_cast<size_t>(*std::max_element(begin, begin + static_cast<ptrdiff_t>(n),
                                                                                  [&](int32_t a, int32_t b) { return by_logit(b, a); }))];
  if (p.top_p < 1.0f) {
    // Softmax at temperature 1 over the candidates, then the smallest prefix
    // (by probability) whose mass reaches top_p; sort only as far as needed.
    double total = 0.0;
    for (size_t i = 0; i < n; ++i) total += std::exp(logits_[static_cast<size_t>(ids_[i])] - max_logit);
    double cum = 0.0;
    size_t keep = n;
    size_t i = 0;
    for (size_t chunk = 64;; chunk *= 4) {
      const size_t end = std::min(n, sorted + chunk);
      if (end > sorted) {
        std::nth_element(begin + static_cast<ptrdiff_t>(sorted), begin + static_cast<ptrdiff_t>(end - 1),
                         begin + static_cast<ptrdiff_t>(n), by_logit);
        std::sort(begin + static_cast<ptrdiff_t>(sorted), begin + static_cast<ptrdiff_t>(end), by_logit);
        sorted = end;
      }
      for (; i < sorted; ++i) {
        cum += std::exp(logits_[static_cast<size_t>(ids_[i])] - max_logit) / total;
        if (cum >= p.top_p) {
          keep = i + 1;
          break;
        }
      }
      if (keep < n || sorted == n) break;
    }
    n = keep;
  }
  if (p.min_p > 0.0f) {
    // p_i >= min_p * p_max  <=>  logit_i >= max_logit + log(min_p).
    const float threshold = max_logit + std::log(p.min_p);
    size_t kept = 0;
    for (size_t i = 0; i < n; ++i)
      if (logits_[static_cast<size_t>(ids_[i])] >= threshold) ids_[kept++] = ids_[i];
    n = std::max<size_t>(kept, 1);
  }
  // Temperature, softmax (unnormalized).
  const float inv_t = 1.0f / p.temperature;
  double total = 0.0;
  for (size_t i = 0; i < n; ++i) {
    probs_[i] = std::exp((logits_[static_cast<size_t>(ids_[i])] - max_logit) * inv_t);
    total += probs_[i];
  }
  total_out = total;
  return n;
}

}  // namespace codey
