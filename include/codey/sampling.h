// Picking the next token from logits (greedy, temperature, top-k, top-p,
// min-p, repetition/frequency/presence penalties, logit bias, seed), judging
// drafted tokens (speculative sampling) and stop strings matched on the
// generated text across token boundaries.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace codey {

struct SamplerParams {
  float temperature = 0.8f;  // <= 0: greedy (argmax after bias and penalties)
  int32_t top_k = 40;        // <= 0: off
  float top_p = 0.95f;       // >= 1: off
  float min_p = 0.05f;       // <= 0: off; keeps p >= min_p * p_max
  // Penalties over the last `penalty_last_n` accepted tokens (0: off, -1: all).
  int32_t penalty_last_n = 64;
  float repeat_penalty = 1.0f;     // logit / penalty if > 0, else * penalty
  float frequency_penalty = 0.0f;  // logit -= count * frequency_penalty
  float presence_penalty = 0.0f;   // logit -= (count > 0) * presence_penalty
  uint64_t seed = 0;               // same seed + same logits = same tokens
  // Added to logits before everything else; -infinity bans a token.
  std::vector<std::pair<int32_t, float>> logit_bias;

  static SamplerParams greedy() {
    SamplerParams p;
    p.temperature = 0.0f;
    return p;
  }
};

// A probability distribution over token ids, sparse: the tokens with p > 0
// (a sampler's candidates), probabilities summing to 1.
struct TokenProbs {
  std::vector<int32_t> ids;
  std::vector<float> probs;  // [ids.size()]

  // p(id); 0 for tokens not listed (a linear scan: lists are short or rare).
  float prob(int32_t id) const;
  size_t size() const { return ids.size(); }
  void clear() {
    ids.clear();
    probs.clear();
  }
};

// Speculative sampling's verdict on one drafted token (Sampler::verify).
struct DraftVerdict {
  int32_t token = -1;    // what the sequence takes at this position
  bool accepted = false; // token is the drafted one; false: the draft and everything after it are dropped
};

// The llama.cpp chain: bias -> penalties -> top-k -> top-p -> min-p ->
// temperature -> draw. Buffers are sized for the vocabulary at construction;
// sample() does not allocate. Not thread-safe (one per sequence).
class Sampler {
 public:
  Sampler(const SamplerParams& params, int32_t n_vocab);

  // Chooses a token from logits [n_vocab] (not modified). Does not accept it.
  int32_t sample(std::span<const float> logits);
  // Records a generated (or prompt) token for the penalties.
  void accept(int32_t token);
  void reset();  // forget history, reseed
  const SamplerParams& params() const { return params_; }
  bool greedy() const { return params_.temperature <= 0.0f; }

  // The distribution sample() draws from (after bias, penalties, filters and
  // temperature); greedy: the argmax with probability 1.
  void distribution(std::span<const float> logits, TokenProbs& out);
  // Draws from `dist` with this sampler's generator.
  int32_t sample_from(const TokenProbs& dist);

  // Speculative sampling (Leviathan et al. 2023; Chen et al. 2023) at one
  // position: the target's logits there, the token a draft proposed and the
  // draft distribution q it was drawn from (nullptr: proposed with certainty,
  // a point mass, e.g. n-gram lookup). With p this sampler's distribution,
  // the draft is accepted with probability min(1, p(draft) / q(draft)); else
  // the token is drawn from norm(max(0, p - q)). Either way the token taken
  // is distributed exactly as sample() would draw it. Greedy: the argmax,
  // accepted when it is the draft - bit for bit what sample() returns. Does
  // not accept() the token.
  DraftVerdict verify(std::span<const float> logits, int32_t draft, const TokenProbs* q);

 private:
  void apply_penalties();
  // The chain up to the draw: candidates ids_[0, n) with unnormalized
  // weights probs_[0, n) summing to `total`. Not for greedy.
  size_t candidates(std::span<const float> logits, double& total);
  int32_t argmax_after_penalties(std::span<const float> logits);
  double uniform01();

  SamplerParams params_;
  int32_t n_vocab_;
  std::mt19937_64 rng_;
  std::vector<int32_t> history_;        // ring buffer of recent tokens
  size_t history_pos_ = 0;
  size_t history_count_ = 0;
  std::vector<float> logits_;           // [n_vocab] working copy
  std::vector<int32_t> ids_;            // [n_vocab] candidate ids
  std::vector<float> probs_;            // [n_vocab] candidate probabilities
  std::vector<int32_t> counts_;         // [n_vocab] occurrences in the penalty window
  std::vector<int32_t> touched_;        // tokens whose count is non-zero
  std::vector<float> q_dense_;          // [n_vocab] verify(): q spread out, zero between calls
};

// Finds stop strings in streamed text. Text that could be the start of a stop
// string is held back until it is known not to be; a stop string and all
// text after it are never emitted.
class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops = {});

  // Adds generated text; returns what can be shown now.
  std::string push(std::string_view text);
  // End of generation: releases held-back text (empty once stopped).
  std::string flush();
  bool stopped() const { return stopped_; }
  // The stop string that matched (empty if none).
  const std::string& matched() const { return matched_; }

 private:
  std::vector<std::string> stops_;
  std::string pending_;
  bool stopped_ = false;
  std::string matched_;
};

}  // namespace codey
