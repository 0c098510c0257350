// SentencePiece-style BPE (`llama` vocabularies): start from UTF-8
// characters, repeatedly merge the adjacent pair whose concatenation is the
// highest-scoring token, and fall back to <0xNN> byte tokens for characters
// that no token covers - the reference's llm_tokenizer_spm.
#include <queue>

#include "tokenizer/unicode.h"
#include "tokenizer/vocab.h"

namespace codey {
namespace {

struct Symbol {
  uint32_t start;
  uint32_t len;  // 0 once merged into its left neighbour
  int32_t prev;
  int32_t next;
};

struct Bigram {
  float score;
  int32_t left;
  int32_t right;
  uint32_t size;  // left.len + right.len when queued
};

// Highest score first, then leftmost.
struct BigramBefore {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

}  // namespace

// `text` has spaces already escaped as U+2581.
void Tokenizer::Impl::tokenize_spm(std::string_view text, std::vector<TokenId>& out) const {
  if (text.empty()) return;
  std::vector<Symbol> syms;
  syms.reserve(text.size());
  for (size_t off = 0; off < text.size();) {
    const size_t n = std::min(tok::utf8_len(uint8_t(text[off])), text.size() - off);
    const int32_t idx = int32_t(syms.size());
    syms.push_back({uint32_t(off), uint32_t(n), idx - 1, off + n == text.size() ? -1 : idx + 1});
    off += n;
  }

  std::priority_queue<Bigram, std::vector<Bigram>, BigramBefore> queue;
  auto try_pair = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    const uint32_t size = syms[l].len + syms[r].len;
    auto id = find(text.substr(syms[l].start, size));
    if (!id) return;
    queue.push({tokens[*id].score, l, r, size});
  };
  for (int32_t i = 1; i < int32_t(syms.size()); ++i) try_pair(i - 1, i);

  while (!queue.empty()) {
    const Bigram bg = queue.top();
    queue.pop();
    Symbol& left = syms[bg.left];
    Symbol& right = syms[bg.right];
    if (left.len == 0 || right.len == 0 || left.len + right.len != bg.size) continue;
    left.len += right.len;
    right.len = 0;
    left.next = right.next;
    if (right.next >= 0) syms[right.next].prev = bg.left;
    try_pair(left.prev, bg.left);
    try_pair(bg.left, left.next);
  }

  for (int32_t i = 0; i != -1; i = syms[i].next) {
    const std::string_view piece = text.substr(syms[i].start, syms[i].len);
    if (auto id = find(piece)) {
      out.push_back(*id);
      continue;
    }
    // Every merge result is a token, so what is left is one character that
    // the vocabulary lacks: its bytes as byte tokens.
    for (char c : piece) {
      const TokenId b = byte_token[uint8_t(c)];
      if (b != kNoToken) out.push_back(b);
      else if (unk != kNoToken) out.push_back(unk);  // the reference aborts here
    }
  }
}

}  // namespace codey
