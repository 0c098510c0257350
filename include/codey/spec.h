// Speculative decoding: cheap drafts of the next tokens - n-gram lookup in the
// sequence so far, or a small draft model that shares the target's
// vocabulary - verified by the target in one batched forward pass, so one
// pass over the target's weights can yield several tokens. Verification is
// Sampler::verify: greedy output is bit for bit the plain output (the kernels
// are batch-invariant), sampling keeps the target's distribution.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "codey/base.h"
#include "codey/model.h"
#include "codey/sampling.h"
#include "codey/tokenizer.h"

namespace codey {

// What a drafter proposes for one sequence's next positions.
struct Draft {
  std::vector<TokenId> tokens;
  // [tokens.size()] the distribution each token was drawn from (a sampled
  // draft model); empty: every token was proposed with certainty (lookup,
  // greedy drafting), i.e. point masses.
  std::vector<TokenProbs> q;
  void clear() {
    tokens.clear();
    q.clear();
  }
};

struct DraftJob {
  int seq = 0;  // the sequence (slot); distinct within one propose()
  // What the sequence holds: prompt and generated tokens, ending with the
  // newest (sampled, not yet decoded by the target). Drafts continue it.
  std::span<const TokenId> history;
  int max_tokens = 0;          // propose at most this many (0: none)
  // A sampled target: drafts are drawn with this sampler (made by
  // Drafter::make_sampler; its distribution is q). nullptr: greedy drafting.
  Sampler* sampler = nullptr;
  Draft* out = nullptr;        // cleared, then filled
};

// Proposes drafts. Driven by one thread (the scheduler's or the CLI's).
class Drafter {
 public:
  virtual ~Drafter() = default;
  // Drafts for every job; a drafter with a model decodes the jobs together.
  // On error every job's draft is empty and decoding goes on without.
  virtual Status propose(std::span<const DraftJob> jobs) = 0;
  // Brings sequences up to their history ahead of drafting (prompt
  // chunks), so the first draft does not stall on a whole prompt. Optional.
  virtual Status prefill(std::span<const DraftJob> jobs) {
    (void)jobs;
    return {};
  }
  // Positions per sequence changed (the target's context grew).
  virtual Status resize_ctx(int64_t n_ctx) {
    (void)n_ctx;
    return {};
  }
  // Bytes the drafter allocated (a draft model's KV cache, activations).
  virtual size_t memory_bytes() const { return 0; }
  // For a sampled target (one per sequence and request): draws drafts with
  // the target's chain (bias, filters, temperature; no penalties) over the
  // drafter's vocabulary. nullptr: the drafter proposes with certainty.
  virtual std::unique_ptr<Sampler> make_sampler(const SamplerParams& target) const {
    (void)target;
    return nullptr;
  }
  virtual std::string describe() const = 0;
};

// ---- n-gram lookup ------------------------------------------------------------

struct LookupParams {
  // The longest suffix of the sequence (ngram_max tokens down to ngram_min)
  // that occurred before proposes what followed its latest occurrence. Code
  // repeats identifiers, lines and whole blocks (edits copy the file back).
  int ngram_min = 2;
  int ngram_max = 4;
};
// Per-sequence indexes of the n-grams seen, updated incrementally as the
// history grows (rebuilt when a sequence starts over).
std::unique_ptr<Drafter> make_lookup_drafter(int n_seq, LookupParams params = {});

// ---- draft model --------------------------------------------------------------

// Whether `draft` can draft for `target`. They share the vocabulary when:
//  - both use the same tokenizer model (byte-level BPE or SentencePiece);
//  - every token id both lists have stands for the same text and has the
//    same type (normal, control, user-defined, byte, unused), so every token
//    the target can emit means the same to the draft and back;
//  - tokens only one list has are padding (type unused): Qwen2.5-Coder 0.5B
//    and 7B differ only in such [PAD] entries;
//  - the special tokens agree: BOS, EOS, EOT, EOM and the whole set of
//    end-of-generation tokens.
// The error says which rule broke and where (token id, both texts).
Status check_draft_vocabulary(const Tokenizer& target, const Tokenizer& draft);

struct DraftModelParams {
  // Stop drafting at a token the draft itself gives less than this
  // probability (llama.cpp's --draft-p-min): unlikely drafts are rarely
  // accepted and cost a target position each.
  float p_min = 0.75f;
  // Drafts never go past the target's vocabulary (its embedding rows).
  int64_t target_vocab = 0;
};
// The draft model runs in its own Context (ctx.n_seq sequences of ctx.n_ctx
// positions, as the target's); the model must outlive the drafter.
Result<std::unique_ptr<Drafter>> make_model_drafter(const Model& draft, const ContextParams& ctx,
                                                    DraftModelParams params);

// ---- one sequence -------------------------------------------------------------

// Counters of a speculative run.
struct SpecStats {
  int64_t passes = 0;     // target forward passes that yielded tokens
  int64_t drafted = 0;    // draft tokens proposed (and put into a target pass)
  int64_t accepted = 0;   // of those, accepted (verification stops at the first rejection)
  int64_t generated = 0;  // tokens the passes yielded (accepted drafts + one per pass)
  double acceptance() const { return drafted > 0 ? double(accepted) / double(drafted) : 0.0; }
  double tokens_per_pass() const { return passes > 0 ? double(generated) / double(passes) : 0.0; }
};

// Generates one sequence (sequence 0 of `target`) with speculative decoding
// when a drafter is given, else plainly; `codey run` and `codey bench` use
// it. Tokens are taken with `sampler` (Sampler::verify for drafts) and
// accept()ed; the KV cache keeps exactly the tokens taken. Not thread-safe.
class SpecGenerator {
 public:
  // drafter may be null (plain decoding); max_draft: tokens per pass drafted.
  SpecGenerator(Context& target, Sampler& sampler, Drafter* drafter, int max_draft);

  // Evaluates the prompt (in batches of the context's n_batch) after what
  // the cache holds and samples the first token. The prompt is accept()ed.
  Result<TokenId> start(std::span<const TokenId> prompt);
  // One target pass: decodes the newest token (and the drafts), returns the
  // tokens taken (at least one). `max_new` bounds them (>= 1). The caller
  // stops calling on end of generation, a stop string or its limit; tokens
  // after the one it stops at are simply dropped. Error: context full.
  Result<std::span<const TokenId>> step(int max_new);

  const SpecStats& stats() const { return stats_; }
  // Everything taken so far (prompt included).
  std::span<const TokenId> history() const { return history_; }

 private:
  Context& ctx_;
  Sampler& sampler_;
  Drafter* drafter_;
  int max_draft_;
  std::vector<TokenId> history_;  // prompt + taken; the last one is not in the cache yet
  std::vector<TokenId> taken_;
  Draft draft_;
  Batch batch_;
  SpecStats stats_;
  std::unique_ptr<Sampler> draft_sampler_;  // drafts for a sampled target
};

}  // namespace codey
