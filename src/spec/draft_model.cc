// Drafts from a small model that shares the target's vocabulary: its own
// Context mirrors each sequence (caught up by common prefix, so rejected
// drafts and reused prompts need no bookkeeping), drafts of all sequences
// decoded together one position per pass.
#include <algorithm>
#include <set>

#include <fmt/ranges.h>

#include "codey/kernels.h"
#include "codey/spec.h"

namespace codey {
namespace {

// A token text for messages: quoted, escaped, shortened.
std::string show(std::string_view t) {
  std::string s = t.size() > 40 ? std::string(t.substr(0, 40)) + "..." : std::string(t);
  return fmt::format("{:?}", s);
}

// The attribute bits that say what kind of token it is.
uint32_t kind(const Tokenizer& t, TokenId id) {
  return t.token_attr(id) & (kAttrUnknown | kAttrUnused | kAttrNormal | kAttrControl | kAttrUserDefined | kAttrByte);
}

std::string kind_name(uint32_t k) {
  if (k & kAttrControl) return "control";
  if (k & kAttrUserDefined) return "user-defined";
  if (k & kAttrByte) return "byte";
  if (k & kAttrUnused) return "unused";
  if (k & kAttrUnknown) return "unknown";
  if (k & kAttrNormal) return "normal";
  return "undefined";
}

class ModelDrafter final : public Drafter {
 public:
  ModelDrafter(const Model& m, std::unique_ptr<Context> ctx, DraftModelParams p)
      : model_(m), ctx_(std::move(ctx)), p_(p), n_vocab_(ctx_->n_vocab()) {
    cached_.resize(static_cast<size_t>(ctx_->kv().n_seq()));
    rows_.resize(cached_.size());
    probs_.resize(static_cast<size_t>(n_vocab_));
    if (p_.target_vocab <= 0) p_.target_vocab = n_vocab_;
  }

  Status propose(std::span<const DraftJob> jobs) override {
    for (const DraftJob& j : jobs) {
      CODEY_ASSERT(j.out != nullptr);
      j.out->clear();
    }
    auto st = run(jobs);
    if (!st)
      for (const DraftJob& j : jobs) j.out->clear();
    return st;
  }

  Status prefill(std::span<const DraftJob> jobs) override {
    active_.clear();
    for (const DraftJob& j : jobs) {
      CODEY_TRY(check_seq(j.seq));
      // Everything but the newest token: drafting decodes that one for its logits.
      if (j.history.size() > 1) active_.push_back({&j, sync_point(j), j.history.size() - 1});
    }
    return catch_up(/*want_logits=*/false);
  }

  Status resize_ctx(int64_t n_ctx) override { return ctx_->kv().resize(n_ctx); }
  size_t memory_bytes() const override { return ctx_->memory_bytes(); }
  std::string describe() const override { return fmt::format("draft model {}", model_.describe()); }

  std::unique_ptr<Sampler> make_sampler(const SamplerParams& target) const override {
    SamplerParams d = target;
    d.repeat_penalty = 1.0f;
    d.frequency_penalty = 0.0f;
    d.presence_penalty = 0.0f;
    d.penalty_last_n = 0;
    d.seed = target.seed * 0x9E3779B97F4A7C15ull + 0x5851F42D4C957F2Dull;  // its own stream
    std::erase_if(d.logit_bias, [&](const auto& b) { return b.first < 0 || b.first >= n_vocab_; });
    return std::make_unique<Sampler>(d, static_cast<int32_t>(n_vocab_));
  }

 private:
  struct Active {
    const DraftJob* job;
    size_t from;  // history[from, to) still to decode
    size_t to;
  };

  Status check_seq(int seq) const {
    if (seq < 0 || seq >= ctx_->kv().n_seq())
      return make_error(ErrorCode::kInvalidArgument, "sequence {} is out of range ({} sequences)", seq,
                        ctx_->kv().n_seq());
    return {};
  }

  // Token ids past the draft's embedding rows (a target with more padding)
  // go in as token 0: drafts only affect speed, never what is generated.
  TokenId feed(TokenId t) const { return t >= 0 && t < n_vocab_ ? t : 0; }

  // Truncates the draft's cache of j.seq to the longest prefix it shares
  // with the history; returns that length.
  size_t sync_point(const DraftJob& j) {
    auto& c = cached_[static_cast<size_t>(j.seq)];
    size_t n = 0;
    const size_t lim = std::min(c.size(), j.history.size() - 1);
    while (n < lim && c[n] == feed(j.history[n])) ++n;
    if (n < c.size()) {
      c.resize(n);
      (void)ctx_->kv().truncate(j.seq, static_cast<int64_t>(n));
    }
    return n;
  }

  // Decodes active_[i].job->history[from, to) for every entry, in batches of
  // the context's size. With want_logits, each job's last token asks for
  // logits, copied to rows_[seq].
  Status catch_up(bool want_logits) {
    const int64_t n_batch = ctx_->params().n_batch;
    for (;;) {
      batch_.clear();
      out_seq_.clear();
      for (Active& a : active_) {
        while (a.from < a.to && static_cast<int64_t>(batch_.size()) < n_batch) {
          const bool last = want_logits && a.from + 1 == a.to;
          batch_.add(feed(a.job->history[a.from]), a.job->seq, last);
          if (last) out_seq_.push_back(a.job->seq);
          ++a.from;
        }
      }
      if (batch_.size() == 0) return {};
      auto out = ctx_->decode(batch_);
      if (!out) return std::unexpected(std::move(out.error()));
      for (size_t i = 0; i < batch_.size(); ++i) cached_[static_cast<size_t>(batch_.seq[i])].push_back(batch_.tokens[i]);
      for (size_t k = 0; k < out_seq_.size(); ++k) {
        auto& row = rows_[static_cast<size_t>(out_seq_[k])];
        row.assign(out->begin() + static_cast<ptrdiff_t>(k * static_cast<size_t>(n_vocab_)),
                   out->begin() + static_cast<ptrdiff_t>((k + 1) * static_cast<size_t>(n_vocab_)));
      }
    }
  }

  // The draft's next token from a logits row and whether it is worth
  // proposing (its probability under the draft reaches p_min).
  bool choose(const DraftJob& j, std::span<const float> row, TokenId& tok, TokenProbs& q) {
    if (j.sampler) {
      j.sampler->distribution(row, q);
      tok = j.sampler->sample_from(q);
      return q.prob(tok) >= p_.p_min;
    }
    // Greedy: the argmax, and its softmax probability at temperature 1.
    std::copy(row.begin(), row.end(), probs_.begin());
    kernels::kernels().softmax(probs_.data(), n_vocab_);
    tok = static_cast<TokenId>(std::max_element(probs_.begin(), probs_.end()) - probs_.begin());
    return probs_[static_cast<size_t>(tok)] >= p_.p_min;
  }

  Status run(std::span<const DraftJob> jobs) {
    active_.clear();
    for (const DraftJob& j : jobs) {
      CODEY_TRY(check_seq(j.seq));
      if (j.max_tokens <= 0 || j.history.empty()) continue;
      active_.push_back({&j, sync_point(j), j.history.size()});
    }
    if (active_.empty()) return {};
    // The history's last tokens (normally one or two), logits for the first draft.
    CODEY_TRY(catch_up(/*want_logits=*/true));
    std::vector<const DraftJob*>& live = live_;  // still drafting
    live.clear();
    for (const Active& a : active_) live.push_back(a.job);
    for (size_t step = 0; !live.empty(); ++step) {
      batch_.clear();
      size_t kept = 0;
      for (size_t k = 0; k < live.size(); ++k) {
        const DraftJob& j = *live[k];
        const std::span<const float> row =
            step == 0 ? std::span<const float>(rows_[static_cast<size_t>(j.seq)]) : step_rows_[k];
        TokenId tok = 0;
        // Not worth a target position, or one the target cannot take: stop.
        if (!choose(j, row, tok, q_) || tok >= p_.target_vocab) continue;
        j.out->tokens.push_back(tok);
        if (j.sampler) j.out->q.push_back(q_);
        if (static_cast<int>(j.out->tokens.size()) >= j.max_tokens) continue;
        // Room for one more position in the draft's cache?
        if (ctx_->kv().seq_length(j.seq) + 1 > ctx_->n_ctx()) continue;
        batch_.add(tok, j.seq, true);
        live[kept++] = live[k];
      }
      live.resize(kept);
      if (live.empty()) break;
      auto out = ctx_->decode(batch_);
      if (!out) return std::unexpected(std::move(out.error()));
      step_rows_.resize(live.size());
      for (size_t k = 0; k < live.size(); ++k) {
        cached_[static_cast<size_t>(live[k]->seq)].push_back(batch_.tokens[k]);
        step_rows_[k] = out->subspan(k * static_cast<size_t>(n_vocab_), static_cast<size_t>(n_vocab_));
      }
    }
    return {};
  }

  const Model& model_;
  std::unique_ptr<Context> ctx_;
  DraftModelParams p_;
  int64_t n_vocab_;
  std::vector<std::vector<TokenId>> cached_;  // [n_seq] tokens in the draft's cache
  std::vector<std::vector<float>> rows_;      // [n_seq] logits after catching up
  std::vector<std::span<const float>> step_rows_;  // [live] logits of the last drafting pass
  std::vector<float> probs_;                  // [n_vocab] softmax scratch
  std::vector<Active> active_;
  std::vector<const DraftJob*> live_;
  std::vector<TokenId> out_seq_;
  TokenProbs q_;
  Batch batch_;
};

}  // namespace

Status check_draft_vocabulary(const Tokenizer& target, const Tokenizer& draft) {
  if (target.model() != draft.model())
    return make_error(ErrorCode::kInvalidArgument,
                      "the draft's tokenizer is '{}', the target's '{}': they do not share a vocabulary", draft.model(),
                      target.model());
  const TokenId nt = target.n_tokens(), nd = draft.n_tokens(), n = std::min(nt, nd);
  for (TokenId id = 0; id < n; ++id) {
    if (target.token_text(id) != draft.token_text(id))
      return make_error(ErrorCode::kInvalidArgument, "token {} is {} in the target but {} in the draft", id,
                        show(target.token_text(id)), show(draft.token_text(id)));
    if (kind(target, id) != kind(draft, id))
      return make_error(ErrorCode::kInvalidArgument, "token {} ({}) is {} in the target but {} in the draft", id,
                        show(target.token_text(id)), kind_name(kind(target, id)), kind_name(kind(draft, id)));
  }
  const Tokenizer& longer = nt > nd ? target : draft;
  for (TokenId id = n; id < std::max(nt, nd); ++id)
    if (!(longer.token_attr(id) & kAttrUnused))
      return make_error(ErrorCode::kInvalidArgument,
                        "token {} ({}, {}) of the {} is missing from the {}'s vocabulary of {} tokens (only unused "
                        "padding may differ)",
                        id, show(longer.token_text(id)), kind_name(kind(longer, id)), nt > nd ? "target" : "draft",
                        nt > nd ? "draft" : "target", n);
  const struct {
    const char* name;
    TokenId t, d;
  } specials[] = {{"BOS", target.bos(), draft.bos()},
                  {"EOS", target.eos(), draft.eos()},
                  {"EOT", target.eot(), draft.eot()},
                  {"EOM", target.eom(), draft.eom()}};
  for (const auto& s : specials)
    if (s.t != s.d)
      return make_error(ErrorCode::kInvalidArgument, "the special token {} is {} in the target but {} in the draft",
                        s.name, s.t, s.d);
  const std::set<TokenId> et(target.eog_ids().begin(), target.eog_ids().end()),
      ed(draft.eog_ids().begin(), draft.eog_ids().end());
  if (et != ed)
    return make_error(ErrorCode::kInvalidArgument,
                      "the end-of-generation tokens differ: {} in the target, {} in the draft",
                      fmt::format("{}", fmt::join(et, ", ")), fmt::format("{}", fmt::join(ed, ", ")));
  return {};
}

Result<std::unique_ptr<Drafter>> make_model_drafter(const Model& draft, const ContextParams& ctx,
                                                    DraftModelParams params) {
  auto c = Context::create(draft, ctx);
  if (!c) return std::unexpected(std::move(c.error()).with_context("the draft model's context"));
  return std::unique_ptr<Drafter>(new ModelDrafter(draft, std::move(*c), params));
}

}  // namespace codey
