// JSON recognizer and the JSON-mode token constraint (see json_constraint.h).
#include "server/json_constraint.h"

#include <cctype>
#include <cmath>
#include <limits>

namespace codey::server {

bool JsonRecognizer::open(char kind) {
  if (depth_ >= kMaxDepth) return false;
  stack_[depth_++] = kind;
  mode_ = kind == '{' ? Mode::kFirstKeyOrEnd : Mode::kFirstValueOrEnd;
  return true;
}

bool JsonRecognizer::value_end() {
  mode_ = depth_ == 0 ? Mode::kDone : Mode::kAfterValue;
  return true;
}

bool JsonRecognizer::value_start(uint8_t c) {
  switch (c) {
    case '{': return open('{');
    case '[': return open('[');
    case '"': key_ = false; mode_ = Mode::kString; return true;
    case '-': mode_ = Mode::kNumMinus; return true;
    case '0': mode_ = Mode::kNumZero; return true;
    case 't': literal_ = "rue"; mode_ = Mode::kLiteral; return true;
    case 'f': literal_ = "alse"; mode_ = Mode::kLiteral; return true;
    case 'n': literal_ = "ull"; mode_ = Mode::kLiteral; return true;
    default:
      if (c >= '1' && c <= '9') {
        mode_ = Mode::kNumInt;
        return true;
      }
      return false;
  }
}

bool JsonRecognizer::after_value(uint8_t c) {
  if (depth_ == 0) return false;
  const char top = stack_[depth_ - 1];
  if (c == ',') {
    mode_ = top == '{' ? Mode::kKey : Mode::kValue;
    return true;
  }
  if ((c == '}' && top == '{') || (c == ']' && top == '[')) {
    --depth_;
    return value_end();
  }
  return false;
}

bool JsonRecognizer::feed(uint8_t c) {
  const bool ws = blank(c);
  switch (mode_) {
    case Mode::kStart:
    case Mode::kValue:
    case Mode::kFirstKeyOrEnd:
    case Mode::kKey:
    case Mode::kColon:
    case Mode::kAfterValue:
    case Mode::kFirstValueOrEnd:
      if (ws) return ++ws_run_ <= kMaxWhitespaceRun;
      ws_run_ = 0;
      break;
    default:
      break;
  }
  switch (mode_) {
    case Mode::kStart:
      return c == '{' && open('{');
    case Mode::kValue:
      return value_start(c);
    case Mode::kFirstKeyOrEnd:
      if (c == '"') {
        key_ = true;
        mode_ = Mode::kString;
        return true;
      }
      if (c == '}') {
        --depth_;
        return value_end();
      }
      return false;
    case Mode::kKey:
      if (c != '"') return false;
      key_ = true;
      mode_ = Mode::kString;
      return true;
    case Mode::kColon:
      if (c != ':') return false;
      mode_ = Mode::kValue;
      return true;
    case Mode::kAfterValue:
      return after_value(c);
    case Mode::kFirstValueOrEnd:
      if (c == ']') {
        --depth_;
        return value_end();
      }
      return value_start(c);
    case Mode::kString:
      if (c == '"') {
        if (key_) {
          key_ = false;
          mode_ = Mode::kColon;
          return true;
        }
        return value_end();
      }
      if (c == '\\') {
        mode_ = Mode::kEscape;
        return true;
      }
      if (c < 0x20) return false;  // raw control characters are not allowed in JSON strings
      if (c < 0x80) return true;
      // A UTF-8 lead byte: the well-formed ranges of Unicode table 3-7.
      if (c >= 0xc2 && c <= 0xdf) aux_ = 1, utf8_lo_ = 0x80, utf8_hi_ = 0xbf;
      else if (c == 0xe0) aux_ = 2, utf8_lo_ = 0xa0, utf8_hi_ = 0xbf;
      else if ((c >= 0xe1 && c <= 0xec) || c == 0xee || c == 0xef) aux_ = 2, utf8_lo_ = 0x80, utf8_hi_ = 0xbf;
      else if (c == 0xed) aux_ = 2, utf8_lo_ = 0x80, utf8_hi_ = 0x9f;
      else if (c == 0xf0) aux_ = 3, utf8_lo_ = 0x90, utf8_hi_ = 0xbf;
      else if (c >= 0xf1 && c <= 0xf3) aux_ = 3, utf8_lo_ = 0x80, utf8_hi_ = 0xbf;
      else if (c == 0xf4) aux_ = 3, utf8_lo_ = 0x80, utf8_hi_ = 0x8f;
      else return false;
      mode_ = Mode::kUtf8;
      return true;
    case Mode::kUtf8:
      if (c < utf8_lo_ || c > utf8_hi_) return false;
      utf8_lo_ = 0x80, utf8_hi_ = 0xbf;
      if (--aux_ == 0) mode_ = Mode::kString;
      return true;
    case Mode::kEscape:
      switch (c) {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
          mode_ = Mode::kString;
          return true;
        case 'u':
          aux_ = 4;
          mode_ = Mode::kUnicode;
          return true;
        default:
          return false;
      }
    case Mode::kUnicode:
      if (!std::isxdigit(c)) return false;
      if (--aux_ == 0) mode_ = Mode::kString;
      return true;
    case Mode::kNumMinus:
      if (c == '0') mode_ = Mode::kNumZero;
      else if (c >= '1' && c <= '9') mode_ = Mode::kNumInt;
      else return false;
      return true;
    case Mode::kNumZero:
    case Mode::kNumInt:
    case Mode::kNumFrac:
    case Mode::kNumExpDigits:
      if (c >= '0' && c <= '9' && mode_ != Mode::kNumZero) return true;
      if (c == '.' && (mode_ == Mode::kNumZero || mode_ == Mode::kNumInt)) {
        mode_ = Mode::kNumDot;
        return true;
      }
      if ((c == 'e' || c == 'E') && mode_ != Mode::kNumExpDigits) {
        mode_ = Mode::kNumExp;
        return true;
      }
      // The number ended; this byte belongs to what follows it.
      value_end();
      return feed(c);
    case Mode::kNumDot:
      if (c < '0' || c > '9') return false;
      mode_ = Mode::kNumFrac;
      return true;
    case Mode::kNumExp:
      if (c == '+' || c == '-') mode_ = Mode::kNumExpSign;
      else if (c >= '0' && c <= '9') mode_ = Mode::kNumExpDigits;
      else return false;
      return true;
    case Mode::kNumExpSign:
      if (c < '0' || c > '9') return false;
      mode_ = Mode::kNumExpDigits;
      return true;
    case Mode::kLiteral:
      if (static_cast<char>(c) != *literal_) return false;
      if (*++literal_ == '\0') return value_end();
      return true;
    case Mode::kDone:
      return false;
  }
  return false;
}

std::shared_ptr<const TokenPieces> TokenPieces::from(const Tokenizer& tokenizer) {
  auto p = std::make_shared<TokenPieces>();
  p->piece.resize(static_cast<size_t>(tokenizer.n_tokens()));
  for (TokenId id = 0; id < tokenizer.n_tokens(); ++id)
    p->piece[static_cast<size_t>(id)] = std::string(tokenizer.token_to_piece(id, /*render_special=*/false));
  return p;
}

void JsonConstraint::apply(std::span<float> logits) {
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  const auto& pieces = pieces_->piece;
  // Two passes so a dead end (no token can continue the JSON) leaves the
  // logits untouched instead of all -inf; ok_ is reused across steps.
  ok_.resize(logits.size());
  size_t allowed = 0;
  for (size_t id = 0; id < logits.size(); ++id) {
    bool ok = false;
    if (logits[id] != kNegInf && id < pieces.size() && !pieces[id].empty()) {
      JsonRecognizer probe = state_;
      ok = probe.feed(pieces[id]);
    }
    ok_[id] = ok;
    allowed += ok;
  }
  if (allowed == 0) {
    broken_ = true;  // stop after this token rather than emit invalid JSON
    return;
  }
  for (size_t id = 0; id < logits.size(); ++id)
    if (!ok_[id]) logits[id] = kNegInf;
}

void JsonConstraint::accept(TokenId token) {
  const auto& pieces = pieces_->piece;
  if (token < 0 || static_cast<size_t>(token) >= pieces.size() || !state_.feed(pieces[static_cast<size_t>(token)]))
    broken_ = true;
}

}  // namespace codey::server
