// StreamDecoder: piece-by-piece detokenization that only ever emits complete,
// valid UTF-8 (incomplete characters are held back, invalid bytes replaced).
#include "codey/tokenizer.h"
#include "tokenizer/unicode.h"

namespace codey {
namespace {
constexpr std::string_view kReplacementUtf8 = "\xEF\xBF\xBD";
}

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool render_special)
    : tokenizer_(&tokenizer), render_special_(render_special) {}

std::string StreamDecoder::push(TokenId id) {
  if (!tokenizer_->valid(id)) return push_bytes({});
  return push_bytes(tokenizer_->token_to_piece(id, render_special_));
}

std::string StreamDecoder::push_bytes(std::string_view bytes) {
  pending_.append(bytes);
  std::string out;
  size_t pos = 0;
  while (pos < pending_.size()) {
    size_t bad = 0;
    const size_t valid = tok::utf8_valid_prefix(std::string_view(pending_).substr(pos), &bad);
    out.append(pending_, pos, valid);
    pos += valid;
    if (bad == 0) break;  // the rest is the start of a character still to come
    // One U+FFFD per maximal ill-formed subsequence (Unicode's recommended practice).
    out.append(kReplacementUtf8);
    pos += bad;
  }
  pending_.erase(0, pos);
  return out;
}

std::string StreamDecoder::flush() {
  if (pending_.empty()) return {};
  pending_.clear();
  return std::string(kReplacementUtf8);
}

}  // namespace codey
