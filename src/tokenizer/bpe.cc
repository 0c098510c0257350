// Byte-level BPE: pre-tokenize into words, byte-encode each word (GPT-2's
// byte -> printable character map), then merge pairs by rank with a priority
// queue over a linked list of symbols (O(n log n) per word), as the reference.
#include <queue>

#include "tokenizer/unicode.h"
#include "tokenizer/vocab.h"

namespace codey {
namespace {

struct Symbol {
  uint32_t start;  // byte offset in the encoded word
  uint32_t len;    // bytes; 0 once merged into its left neighbour
  TokenId id;      // the token whose text this is, or kNoToken
  int32_t prev;
  int32_t next;
};

struct Bigram {
  int32_t rank;
  int32_t left;
  int32_t right;
  uint32_t left_len;   // lengths when queued: a changed length means stale
  uint32_t right_len;
  TokenId merged;
};

// Lowest rank first, then leftmost (the reference's order).
struct BigramAfter {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
};

inline uint64_t pair_key(TokenId a, TokenId b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }

}  // namespace

void Tokenizer::Impl::bpe_word(std::string_view word, std::vector<TokenId>& out) const {
  if (word.empty()) return;
  if (ignore_merges) {
    if (auto id = find(word)) {
      out.push_back(*id);
      return;
    }
  }

  std::vector<Symbol> syms;
  syms.reserve(word.size());
  for (size_t off = 0; off < word.size();) {
    const size_t n = std::min(tok::utf8_len(uint8_t(word[off])), word.size() - off);
    const int32_t idx = int32_t(syms.size());
    syms.push_back({uint32_t(off), uint32_t(n), find_or_none(word.substr(off, n)), idx - 1,
                    off + n == word.size() ? -1 : idx + 1});
    off += n;
  }

  std::priority_queue<Bigram, std::vector<Bigram>, BigramAfter> queue;
  auto text_of = [&](const Symbol& s) { return word.substr(s.start, s.len); };
  auto try_pair = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    const Symbol& a = syms[l];
    const Symbol& b = syms[r];
    if (a.id != kNoToken && b.id != kNoToken) {
      auto it = merges_by_id.find(pair_key(a.id, b.id));
      if (it == merges_by_id.end()) return;
      queue.push({it->second.rank, l, r, a.len, b.len, it->second.merged});
      return;
    }
    if (merges_by_text.empty()) return;
    std::string key;
    key.reserve(a.len + b.len + 1);
    key.append(text_of(a)).append(" ").append(text_of(b));
    auto it = merges_by_text.find(key);
    if (it == merges_by_text.end()) return;
    queue.push({it->second, l, r, a.len, b.len, find_or_none(word.substr(a.start, a.len + b.len))});
  };

  for (int32_t i = 1; i < int32_t(syms.size()); ++i) try_pair(i - 1, i);

  while (!queue.empty()) {
    const Bigram bg = queue.top();
    queue.pop();
    Symbol& left = syms[bg.left];
    Symbol& right = syms[bg.right];
    // Symbols only grow, in place, so equal lengths mean equal texts: the
    // reference's "left + right == queued text" test.
    if (left.len == 0 || right.len == 0 || left.len != bg.left_len || right.len != bg.right_len) continue;
    left.len += right.len;
    left.id = bg.merged;
    right.len = 0;
    left.next = right.next;
    if (right.next >= 0) syms[right.next].prev = bg.left;
    try_pair(left.prev, bg.left);
    try_pair(bg.left, left.next);
  }

  for (int32_t i = 0; i != -1; i = syms[i].next) {
    const Symbol& s = syms[i];
    if (s.id != kNoToken) {
      out.push_back(s.id);
      continue;
    }
    // Not a token: the reference looks up each byte of the symbol's text as a
    // one-byte token and drops bytes that are none.
    for (char c : text_of(s))
      if (auto id = find(std::string_view(&c, 1))) out.push_back(*id);
  }
}

void Tokenizer::Impl::tokenize_bpe(std::string_view text, std::vector<TokenId>& out) const {
  // Per-thread buffers keep their capacity (see PreTokenizer::split).
  thread_local std::vector<uint32_t> cps;
  thread_local std::vector<uint32_t> lengths;
  tok::decode_utf8(text, cps);
  lengths.clear();
  pretokenizer->split(cps, lengths);

  std::string utf8;
  std::string word;
  size_t start = 0;
  for (uint32_t len : lengths) {
    utf8.clear();
    for (size_t i = start; i < start + len; ++i) tok::append_utf8(utf8, cps[i]);
    start += len;
    word.clear();
    for (char c : utf8) word.append(tok::byte_to_unicode(uint8_t(c)));

    {
      std::lock_guard lock(cache_mu);
      auto it = word_cache.find(word);
      if (it != word_cache.end()) {
        out.insert(out.end(), it->second.begin(), it->second.end());
        continue;
      }
    }
    const size_t before = out.size();
    bpe_word(word, out);
    std::lock_guard lock(cache_mu);
    if (word_cache.size() >= kMaxCacheEntries) word_cache.clear();
    word_cache.emplace(word, std::vector<TokenId>(out.begin() + before, out.end()));
  }
}

}  // namespace codey
