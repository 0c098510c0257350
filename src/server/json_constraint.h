// JSON mode (OpenAI response_format json_object, Ollama format "json"): a
// byte-level recognizer of one JSON object and a TokenConstraint that only
// lets the sampler pick tokens keeping the output a prefix of valid JSON;
// generation stops when the object closes.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "codey/runtime.h"

namespace codey::server {

// A pushdown recognizer, copyable by value (a fixed-size stack), so testing a
// candidate token is a copy plus its bytes.
class JsonRecognizer {
 public:
  static constexpr int kMaxDepth = 32;        // nesting of objects/arrays
  static constexpr int kMaxWhitespaceRun = 24; // blanks in a row outside strings (no endless padding)

  // Feeds one byte: false (and the state is then undefined) if no valid JSON
  // object starts with the bytes so far plus this one.
  bool feed(uint8_t c);
  bool feed(std::string_view bytes) {
    for (char c : bytes)
      if (!feed(static_cast<uint8_t>(c))) return false;
    return true;
  }
  // The top-level object is closed.
  bool complete() const { return mode_ == Mode::kDone; }

 private:
  enum class Mode : uint8_t {
    kStart, kValue, kFirstKeyOrEnd, kKey, kColon, kAfterValue, kFirstValueOrEnd,
    kString, kEscape, kUnicode, kUtf8,
    kNumMinus, kNumZero, kNumInt, kNumDot, kNumFrac, kNumExp, kNumExpSign, kNumExpDigits,
    kLiteral, kDone,
  };
  bool value_start(uint8_t c);
  bool value_end();
  bool after_value(uint8_t c);
  bool open(char kind);
  static bool blank(uint8_t c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

  Mode mode_ = Mode::kStart;
  bool key_ = false;            // the string being read is an object key
  uint8_t aux_ = 0;             // \u hex digits left, or UTF-8 continuation bytes left
  uint8_t utf8_lo_ = 0x80, utf8_hi_ = 0xbf;  // range of the next continuation byte
  uint8_t ws_run_ = 0;
  const char* literal_ = nullptr;  // rest of true/false/null
  uint8_t depth_ = 0;
  char stack_[kMaxDepth] = {};  // '{' or '['
};

// Each token's bytes as generation emits them (control tokens: empty). Built
// once per model and shared by its requests. Thread-safe (immutable).
struct TokenPieces {
  std::vector<std::string> piece;
  static std::shared_ptr<const TokenPieces> from(const Tokenizer& tokenizer);
};

class JsonConstraint final : public TokenConstraint {
 public:
  explicit JsonConstraint(std::shared_ptr<const TokenPieces> pieces) : pieces_(std::move(pieces)) {}
  void apply(std::span<float> logits) override;
  void accept(TokenId token) override;
  bool done() const override { return state_.complete() || broken_; }

 private:
  std::shared_ptr<const TokenPieces> pieces_;
  JsonRecognizer state_;
  bool broken_ = false;  // a token outside the mask was chosen: stop rather than emit invalid JSON
  std::vector<uint8_t> ok_;  // [n_vocab] scratch of apply()
};

}  // namespace codey::server
