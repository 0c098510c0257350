// Picking the next token from logits (greedy, temperature, top-k, top-p,
// min-p, repetition/frequency/presence penalties, logit bias, seed) and
// stop strings matched on the generated text across token boundaries.
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

 private:
  void apply_penalties();

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
