// N-gram lookup drafts ("prompt lookup decoding"): the longest suffix of the
// sequence that occurred before proposes the tokens that followed its latest
// occurrence. No model: an index per sequence from n-gram to the position
// where it last ended, extended as the sequence grows.
#include <algorithm>
#include <unordered_map>

#include "codey/spec.h"

namespace codey {
namespace {

uint64_t ngram_hash(const TokenId* t, int n) {
  uint64_t h = 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(n + 1);
  for (int i = 0; i < n; ++i) {
    h ^= static_cast<uint32_t>(t[i]);
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 31;
  }
  return h;
}

class LookupDrafter final : public Drafter {
 public:
  LookupDrafter(int n_seq, LookupParams p) : p_(p), seqs_(static_cast<size_t>(std::max(n_seq, 1))) {
    p_.ngram_min = std::max(1, p_.ngram_min);
    p_.ngram_max = std::max(p_.ngram_min, p_.ngram_max);
    for (auto& s : seqs_) s.ends.resize(static_cast<size_t>(p_.ngram_max - p_.ngram_min + 1));
  }

  Status propose(std::span<const DraftJob> jobs) override {
    for (const DraftJob& j : jobs) {
      CODEY_ASSERT(j.out != nullptr);
      j.out->clear();
      if (j.seq < 0 || static_cast<size_t>(j.seq) >= seqs_.size())
        return make_error(ErrorCode::kInvalidArgument, "sequence {} is out of range ({} sequences)", j.seq,
                          seqs_.size());
      Seq& s = seqs_[static_cast<size_t>(j.seq)];
      sync(s, j.history);
      if (j.max_tokens > 0) draft(s, j.max_tokens, j.out->tokens);
    }
    return {};
  }

  std::string describe() const override {
    return fmt::format("n-gram lookup ({}..{}-grams)", p_.ngram_min, p_.ngram_max);
  }

 private:
  struct Seq {
    std::vector<TokenId> tokens;  // the history indexed so far
    size_t indexed = 0;           // n-grams ending before this position are in `ends`
    // [n - ngram_min]: n-gram hash -> the latest position it ended at (one
    // with a known next token: ends <= tokens.size() - 2).
    std::vector<std::unordered_map<uint64_t, int32_t>> ends;
  };

  // Extends the index to `history`; a history that does not continue the
  // indexed one (a new request in the slot) starts it over.
  void sync(Seq& s, std::span<const TokenId> history) {
    if (history.size() < s.tokens.size() || !std::equal(s.tokens.begin(), s.tokens.end(), history.begin())) {
      s.tokens.clear();
      s.indexed = 0;
      for (auto& m : s.ends) m.clear();
    }
    s.tokens.insert(s.tokens.end(), history.begin() + static_cast<ptrdiff_t>(s.tokens.size()), history.end());
    const size_t L = s.tokens.size();
    for (; s.indexed + 1 < L; ++s.indexed) {  // an n-gram ending at e is indexed once e + 1 exists
      const size_t e = s.indexed;
      for (int n = p_.ngram_min; n <= p_.ngram_max && static_cast<size_t>(n) <= e + 1; ++n)
        s.ends[static_cast<size_t>(n - p_.ngram_min)][ngram_hash(s.tokens.data() + e + 1 - n, n)] =
            static_cast<int32_t>(e);
    }
  }

  // The longest suffix seen before proposes what followed it; the proposal
  // may run into itself (a loop of period 3 drafts any length).
  void draft(const Seq& s, int max_tokens, std::vector<TokenId>& out) const {
    const size_t L = s.tokens.size();
    for (int n = p_.ngram_max; n >= p_.ngram_min; --n) {
      if (static_cast<size_t>(n) > L) continue;
      const TokenId* suffix = s.tokens.data() + L - static_cast<size_t>(n);
      const auto& m = s.ends[static_cast<size_t>(n - p_.ngram_min)];
      const auto it = m.find(ngram_hash(suffix, n));
      if (it == m.end()) continue;
      const auto end = static_cast<size_t>(it->second);
      if (!std::equal(suffix, suffix + n, s.tokens.data() + end + 1 - static_cast<size_t>(n))) continue;  // collision
      for (size_t pos = end + 1; out.size() < static_cast<size_t>(max_tokens); ++pos)
        out.push_back(pos < L ? s.tokens[pos] : out[pos - L]);
      return;
    }
  }

  LookupParams p_;
  std::vector<Seq> seqs_;
};

}  // namespace

std::unique_ptr<Drafter> make_lookup_drafter(int n_seq, LookupParams params) {
  return std::make_unique<LookupDrafter>(n_seq, params);
}

}  // namespace codey
