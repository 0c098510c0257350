// Internals of the Tokenizer shared by its source files: the loaded
// vocabulary, merge tables, special-token data and the per-word cache.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "codey/tokenizer.h"
#include "tokenizer/flat_tables.h"
#include "tokenizer/pretokenizer.h"

namespace codey {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
template <class V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

struct TokenData {
  std::string text;
  float score = 0.0f;
  uint32_t attr = kAttrNormal;
};

struct Tokenizer::Impl {
  enum class Kind { kBpe, kSpm };
  Kind kind = Kind::kBpe;
  std::string model;
  std::string pre;

  std::vector<TokenData> tokens;
  StringMap<TokenId> token_to_id;

  // BPE: merges of two vocabulary tokens by id; merges with a side that is not
  // a token (rare, but legal) by "left right" text.
  // Value: rank and the token of left+right (or kNoToken).
  tok::MergeTable merges_by_id;
  StringMap<int32_t> merges_by_text;
  std::optional<tok::PreTokenizer> pretokenizer;
  // BPE: token of the one-character string that stands for each byte.
  // SPM: token <0xNN> (or the byte itself as a one-byte token).
  std::array<TokenId, 256> byte_token{};

  bool ignore_merges = false;
  bool clean_spaces = false;
  bool add_bos = false;
  bool add_eos = false;
  bool add_space_prefix = false;

  TokenId bos = kNoToken, eos = kNoToken, eot = kNoToken, eom = kNoToken, unk = kNoToken, sep = kNoToken,
          pad = kNoToken, mask = kNoToken, nl = kNoToken;
  TokenId fim_pre = kNoToken, fim_suf = kNoToken, fim_mid = kNoToken, fim_pad = kNoToken, fim_rep = kNoToken,
          fim_sep = kNoToken;
  std::vector<TokenId> eog;  // sorted

  // Tokens matched in text before tokenizing (control, user-defined,
  // unknown), longest first: the order of the reference's partition.
  std::vector<TokenId> special_tokens;
  // A trie over their texts, to find every occurrence in one pass.
  // Node 0 is the root; `rank` is the index in special_tokens or -1.
  struct TrieNode {
    int32_t rank = -1;
    std::vector<std::pair<uint8_t, int32_t>> kids;  // byte -> node
  };
  std::vector<TrieNode> trie;
  std::array<int32_t, 256> trie_root{};  // first byte -> node, 0 = none
  void build_special_trie();
  // token_to_piece(id, render_special = true) for every token.
  std::vector<std::string> pieces;

  // BPE word (raw bytes) -> tokens.
  tok::WordCache word_cache;

  std::optional<TokenId> find(std::string_view text) const {
    auto it = token_to_id.find(text);
    if (it == token_to_id.end()) return std::nullopt;
    return it->second;
  }
  TokenId find_or_none(std::string_view text) const {
    auto it = token_to_id.find(text);
    return it == token_to_id.end() ? kNoToken : it->second;
  }

  std::vector<TokenId> tokenize(std::string_view text, bool add_special, bool parse_special) const;
  // One fragment of plain text (no special tokens), appended to `out`.
  void tokenize_bpe(std::string_view text, std::vector<TokenId>& out) const;
  void tokenize_spm(std::string_view text, std::vector<TokenId>& out) const;
  // Byte-pair merges of one pre-tokenized word (raw bytes; the merges work
  // on its byte-encoded form, one symbol per byte).
  void bpe_word(std::string_view word, std::vector<TokenId>& out) const;
  // Emits the token of the symbol raw[start, start+len) or, when it is not a
  // token, the one-byte tokens of its encoded text (the reference's fallback).
  void emit_symbol(std::string_view raw, TokenId id, std::vector<TokenId>& out) const;

  std::string make_piece(TokenId id) const;
};

}  // namespace codey
