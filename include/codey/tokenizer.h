// Tokenizer layer: text <-> token ids from GGUF `tokenizer.ggml.*` metadata,
// identical to the reference implementation (llama.cpp) for byte-level BPE
// (`gpt2`) and SentencePiece-style (`llama`) vocabularies.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "codey/base.h"

namespace codey {

class GgufFile;

using TokenId = int32_t;
inline constexpr TokenId kNoToken = -1;

// GGUF `tokenizer.ggml.token_type` values (the on-disk ids).
enum class TokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

// Per-token attributes derived from the type plus load-time fixes (bit set).
// kControl tokens are special: never produced from plain text, rendered only
// on request. kUserDefined tokens are matched in plain text too (added tokens).
enum TokenAttr : uint32_t {
  kAttrUndefined = 0,
  kAttrUnknown = 1u << 0,
  kAttrUnused = 1u << 1,
  kAttrNormal = 1u << 2,
  kAttrControl = 1u << 3,
  kAttrUserDefined = 1u << 4,
  kAttrByte = 1u << 5,
  kAttrNormalized = 1u << 6,
  kAttrLstrip = 1u << 7,  // swallow whitespace to the left when matched as special
  kAttrRstrip = 1u << 8,  // swallow whitespace to the right when matched as special
  kAttrSingleWord = 1u << 9,
};

// Plain vocabulary data, as found under `tokenizer.ggml.*` (and general.name,
// which the reference uses for a few per-model attribute fixes). Optional
// fields left unset take the reference's defaults for the model type.
struct VocabData {
  std::string model;  // "gpt2" (byte-level BPE) or "llama" (SentencePiece)
  std::string pre;    // pre-tokenizer name; empty = missing (BPE falls back to "default" with a warning)
  std::string name;   // general.name
  std::vector<std::string> tokens;
  std::vector<float> scores;          // empty = all 0
  std::vector<int32_t> token_types;   // TokenType values; empty = all normal
  std::vector<std::string> merges;    // BPE only: "left right", rank = index

  std::optional<TokenId> bos, eos, eot, eom, unk, sep, pad, mask;
  std::optional<TokenId> fim_pre, fim_suf, fim_mid, fim_pad, fim_rep, fim_sep;
  std::optional<bool> add_bos, add_eos, add_space_prefix;
};

class Tokenizer {
 public:
  // Reads tokenizer.ggml.* from a parsed GGUF file (copies what it needs; the
  // file may be closed afterwards). Errors name the key and what was wrong.
  static Result<Tokenizer> from_gguf(const GgufFile& file);
  static Result<Tokenizer> from_vocab(VocabData data);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;
  ~Tokenizer();

  // All const methods are thread-safe.

  // add_special: BOS/EOS as the vocabulary asks (add_bos/add_eos metadata).
  // parse_special: control tokens written in the text (e.g. "<|im_start|>")
  // become single tokens; use only for text codey built itself (templates,
  // FIM prompts). User-defined (added) tokens are matched either way, as the
  // reference does. Invalid UTF-8 in BPE input becomes U+FFFD per bad byte.
  std::vector<TokenId> tokenize(std::string_view text, bool add_special, bool parse_special = false) const;

  // The bytes a token stands for (not necessarily valid UTF-8 on its own).
  // Control/unknown tokens give their text only with render_special.
  std::string_view token_to_piece(TokenId id, bool render_special = false) const;
  // Whole-sequence decoding exactly like the reference: the leading space the
  // SPM tokenizer adds is dropped, and BPE vocabularies with
  // clean_up_tokenization_spaces get " ," -> "," style clean-up.
  // remove_special drops a leading BOS / trailing EOS added by add_special.
  std::string detokenize(std::span<const TokenId> ids, bool render_special = false,
                         bool remove_special = false) const;

  int32_t n_tokens() const;
  bool valid(TokenId id) const { return id >= 0 && id < n_tokens(); }
  const std::string& token_text(TokenId id) const;  // the raw vocabulary string
  float token_score(TokenId id) const;
  uint32_t token_attr(TokenId id) const;
  bool is_control(TokenId id) const { return (token_attr(id) & kAttrControl) != 0; }
  bool is_eog(TokenId id) const;  // end of generation (EOS, EOT, <|im_end|>, ...)
  std::span<const TokenId> eog_ids() const;
  std::optional<TokenId> find_token(std::string_view text) const;

  std::string_view model() const;  // "gpt2" | "llama"
  std::string_view pre() const;    // the pre-tokenizer in use ("default" when missing)

  // kNoToken when the vocabulary has none.
  TokenId bos() const;
  TokenId eos() const;
  TokenId eot() const;
  TokenId eom() const;
  TokenId unk() const;
  TokenId sep() const;
  TokenId pad() const;
  TokenId nl() const;  // the token of "\n"
  TokenId fim_pre() const;
  TokenId fim_suf() const;
  TokenId fim_mid() const;
  TokenId fim_pad() const;
  TokenId fim_rep() const;
  TokenId fim_sep() const;
  bool add_bos() const;
  bool add_eos() const;
  bool add_space_prefix() const;
  bool clean_spaces() const;

  struct Impl;

 private:
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Incremental detokenization for streaming output: push tokens, get back only
// complete UTF-8 characters. Bytes of a character split across tokens are held
// until it completes; bytes that can never form a valid character come out as
// U+FFFD, so the concatenated output is always valid UTF-8. No clean-up of
// spaces and no leading-space removal (piece by piece, as streamed). Not
// thread-safe; one per stream. The tokenizer must outlive it.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer, bool render_special = false);
  // Text that became complete with this token (possibly empty).
  std::string push(TokenId id);
  // Appends raw bytes (e.g. a piece produced elsewhere); same hold-back rule.
  std::string push_bytes(std::string_view bytes);
  // End of stream: held bytes (an incomplete character) come out as U+FFFD.
  std::string flush();
  size_t pending_bytes() const { return pending_.size(); }

 private:
  const Tokenizer* tokenizer_;
  bool render_special_;
  std::string pending_;
};

}  // namespace codey
