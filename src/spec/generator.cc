// One sequence generated with speculative decoding: draft, verify the drafts
// in one target pass, keep what was accepted, roll the KV cache back past
// the rest.
#include <algorithm>

#include "codey/spec.h"

namespace codey {

SpecGenerator::SpecGenerator(Context& target, Sampler& sampler, Drafter* drafter, int max_draft)
    : ctx_(target), sampler_(sampler), drafter_(drafter), max_draft_(std::max(0, max_draft)) {
  if (drafter_ && !sampler_.greedy()) draft_sampler_ = drafter_->make_sampler(sampler_.params());
}

Result<TokenId> SpecGenerator::start(std::span<const TokenId> prompt) {
  const int64_t cached = ctx_.kv().seq_length(0);
  if (static_cast<int64_t>(prompt.size()) <= cached)
    return make_error(ErrorCode::kInvalidArgument, "the prompt ({} tokens) must extend what the cache holds ({})",
                      prompt.size(), cached);
  const auto n_batch = static_cast<size_t>(ctx_.params().n_batch);
  std::span<const float> logits;
  for (size_t i = static_cast<size_t>(cached); i < prompt.size(); i += n_batch) {
    batch_.clear();
    const size_t end = std::min(prompt.size(), i + n_batch);
    for (size_t j = i; j < end; ++j) batch_.add(prompt[j], 0, j + 1 == prompt.size());
    auto r = ctx_.decode(batch_);
    if (!r) return std::unexpected(std::move(r.error()));
    logits = *r;
  }
  history_.assign(prompt.begin(), prompt.end());
  for (TokenId t : prompt) sampler_.accept(t);
  // Drafting from the prompt starts with the first token.
  if (drafter_) {
    Draft none;
    const DraftJob job{0, prompt, 0, nullptr, &none};
    (void)drafter_->prefill(std::span<const DraftJob>(&job, 1));
  }
  const TokenId first = sampler_.sample(logits);
  sampler_.accept(first);
  history_.push_back(first);
  return first;
}

Result<std::span<const TokenId>> SpecGenerator::step(int max_new) {
  CODEY_ASSERT(!history_.empty() && max_new >= 1);
  const int64_t held = ctx_.kv().seq_length(0);  // history_ but its newest token
  const int64_t room = ctx_.n_ctx() - held;
  if (room < 1)
    return make_error(ErrorCode::kResourceExhausted, "the context is full ({} positions)", ctx_.n_ctx());
  const int64_t n_vocab = ctx_.n_vocab();
  draft_.clear();
  if (drafter_ && max_draft_ > 0) {
    const int64_t k = std::min<int64_t>({max_draft_, max_new - 1, room - 1, ctx_.params().n_batch - 1});
    if (k > 0) {
      const DraftJob job{0, history_, static_cast<int>(k), draft_sampler_.get(), &draft_};
      if (auto st = drafter_->propose(std::span<const DraftJob>(&job, 1)); !st) {
        log_warn("drafting failed, decoding without drafts: {}", st.error().message);
        draft_.clear();
      }
      // Only tokens the target has; the rest of a draft after one it has not is dropped.
      size_t ok = 0;
      while (ok < draft_.tokens.size() && draft_.tokens[ok] >= 0 && draft_.tokens[ok] < n_vocab) ++ok;
      draft_.tokens.resize(std::min<size_t>(ok, static_cast<size_t>(k)));
      if (!draft_.q.empty()) draft_.q.resize(draft_.tokens.size());
    }
  }
  const size_t k = draft_.tokens.size();
  stats_.drafted += static_cast<int64_t>(k);
  batch_.clear();
  batch_.add(history_.back(), 0, true);
  for (TokenId d : draft_.tokens) batch_.add(d, 0, true);
  auto out = ctx_.decode(batch_);
  if (!out) return std::unexpected(std::move(out.error()));

  // Row i follows the newest token and drafts [0, i).
  taken_.clear();
  for (size_t i = 0; i <= k; ++i) {
    const auto row = out->subspan(i * static_cast<size_t>(n_vocab), static_cast<size_t>(n_vocab));
    bool go_on = false;
    TokenId tok;
    if (i < k) {
      const DraftVerdict v = sampler_.verify(row, draft_.tokens[i], draft_.q.empty() ? nullptr : &draft_.q[i]);
      tok = v.token;
      go_on = v.accepted;
      stats_.accepted += v.accepted ? 1 : 0;
    } else {
      tok = sampler_.sample(row);  // every draft accepted: one more from the last row
    }
    sampler_.accept(tok);
    taken_.push_back(tok);
    if (!go_on) break;
  }
  // The cache keeps the newest token and the accepted drafts; the last token
  // taken is the next one to decode.
  if (auto st = ctx_.kv().truncate(0, held + static_cast<int64_t>(taken_.size())); !st)
    return std::unexpected(std::move(st.error()));
  history_.insert(history_.end(), taken_.begin(), taken_.end());
  ++stats_.passes;
  stats_.generated += static_cast<int64_t>(taken_.size());
  return std::span<const TokenId>(taken_);
}

}  // namespace codey
