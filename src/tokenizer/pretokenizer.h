// Pre-tokenizers of byte-level BPE vocabularies: the regex lists selected by
// `tokenizer.ggml.pre`, applied in sequence exactly as the reference does
// (each regex splits the pieces left by the previous one).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "codey/base.h"

namespace codey::tok {

// What a `tokenizer.ggml.pre` name implies for a BPE vocabulary.
struct BpePreset {
  std::string name;  // canonical name ("default" for a missing pre)
  std::vector<std::string> regexes;
  bool clean_spaces = true;   // detokenize: " ," -> "," etc. (clean_up_tokenization_spaces)
  bool ignore_merges = false; // a word that is a whole token is not merged
  bool add_bos = false;       // default of add_bos_token when metadata has none
  bool no_bos = false;        // the preset has no BOS token (e.g. chatglm)
};

// Looks up a pre-tokenizer name (aliases included). An empty name gives the
// reference's fallback "default" (the caller warns). Unknown or unsupported
// names are errors that name the pre-tokenizer.
Result<BpePreset> find_bpe_preset(std::string_view pre);
// Every name find_bpe_preset accepts (for docs and tests).
std::vector<std::string_view> supported_bpe_presets();

// A compiled regex list. Immutable after creation; split() is thread-safe.
class PreTokenizer {
 public:
  static Result<PreTokenizer> create(const std::vector<std::string>& regexes);
  PreTokenizer(PreTokenizer&&) noexcept;
  PreTokenizer& operator=(PreTokenizer&&) noexcept;
  ~PreTokenizer();

  // Splits `cps` (code points of the whole fragment) into pieces; appends
  // their lengths in code points, in order, summing to cps.size(). Pieces
  // are never empty.
  void split(std::span<const uint32_t> cps, std::vector<uint32_t>& lengths) const;

  struct Stage;

 private:
  PreTokenizer();
  std::vector<std::unique_ptr<Stage>> stages_;
  bool need_collapsed_ = false;
  bool need_utf8_ = false;
};

}  // namespace codey::tok
