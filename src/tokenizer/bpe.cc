// Byte-level BPE: pre-tokenize into words, then merge pairs by rank with a
// priority queue over a linked list of symbols (O(n log n) per word), as the
// reference. The reference merges the byte-encoded word (GPT-2's byte ->
// printable character map), one character per byte; here the symbols are the
// raw bytes themselves and only ids are compared, which is the same thing.
#include <queue>

#include "tokenizer/unicode.h"
#include "tokenizer/vocab.h"

namespace codey {
namespace {

struct Symbol {
  uint32_t start;  // byte offset in the word
  uint32_t len;    // bytes; 0 once merged into its left neighbour
  TokenId id;      // the token whose text is this symbol's encoded text, or kNoToken
  int32_t prev;
  int32_t next;
};

struct Bigram {
  int32_t rank;
  int32_t left;
  int32_t right;
  uint32_t left_len;  // lengths when queued: a changed length means stale
  uint32_t right_len;
  TokenId merged;
};

// Lowest rank first, then leftmost (the reference's order).
struct BigramAfter {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
};

void append_encoded(std::string& out, std::string_view raw) {
  for (char c : raw) out.append(tok::byte_to_unicode(uint8_t(c)));
}

std::string encoded(std::string_view raw) {
  std::string out;
  append_encoded(out, raw);
  return out;
}

}  // namespace

void Tokenizer::Impl::emit_symbol(std::string_view raw, TokenId id, std::vector<TokenId>& out) const {
  if (id != kNoToken) {
    out.push_back(id);
    return;
  }
  // The reference looks up each byte of the encoded text as a one-byte token
  // and drops those that are none.
  for (char c : encoded(raw))
    if (auto t = find(std::string_view(&c, 1))) out.push_back(*t);
}

void Tokenizer::Impl::bpe_word(std::string_view word, std::vector<TokenId>& out) const {
  if (word.empty()) return;
  if (word.size() == 1) {  // one symbol: nothing to merge
    emit_symbol(word, byte_token[uint8_t(word[0])], out);
    return;
  }
  if (ignore_merges) {
    if (auto id = find(encoded(word))) {
      out.push_back(*id);
      return;
    }
  }

  std::vector<Symbol> syms(word.size());
  for (size_t i = 0; i < word.size(); ++i)
    syms[i] = {uint32_t(i), 1, byte_token[uint8_t(word[i])], int32_t(i) - 1,
               i + 1 == word.size() ? -1 : int32_t(i) + 1};

  std::vector<Bigram> heap_storage;
  heap_storage.reserve(word.size() * 2);
  std::priority_queue<Bigram, std::vector<Bigram>, BigramAfter> queue(BigramAfter{}, std::move(heap_storage));
  auto try_pair = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    const Symbol& a = syms[l];
    const Symbol& b = syms[r];
    if (a.id != kNoToken && b.id != kNoToken) {
      if (const auto* m = merges_by_id.find(a.id, b.id)) queue.push({m->rank, l, r, a.len, b.len, m->merged});
      return;
    }
    if (merges_by_text.empty()) return;
    std::string key = encoded(word.substr(a.start, a.len));
    key += ' ';
    append_encoded(key, word.substr(b.start, b.len));
    auto it = merges_by_text.find(key);
    if (it == merges_by_text.end()) return;
    queue.push({it->second, l, r, a.len, b.len, find_or_none(encoded(word.substr(a.start, a.len + b.len)))});
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

  for (int32_t i = 0; i != -1; i = syms[i].next) emit_symbol(word.substr(syms[i].start, syms[i].len), syms[i].id, out);
}

void Tokenizer::Impl::tokenize_bpe(std::string_view text, std::vector<TokenId>& out) const {
  // Per-thread buffers keep their capacity (see PreTokenizer::split).
  thread_local std::vector<uint32_t> cps;
  thread_local std::vector<uint32_t> lengths;
  tok::decode_utf8(text, cps);
  lengths.clear();
  pretokenizer->split(cps, lengths);

  // The reference rebuilds each word from its code points, which turns
  // invalid UTF-8 into U+FFFD and overlong forms into canonical ones.
  std::string word;
  size_t start = 0;
  for (uint32_t len : lengths) {
    word.clear();
    for (size_t i = start; i < start + len; ++i) tok::append_utf8(word, cps[i]);
    start += len;
    if (word.size() == 1) {
      emit_symbol(word, byte_token[uint8_t(word[0])], out);
      continue;
    }
    if (word_cache.lookup(word, out)) continue;
    const size_t before = out.size();
    bpe_word(word, out);
    word_cache.insert(word, std::span(out).subspan(before));
  }
}

}  // namespace codey
