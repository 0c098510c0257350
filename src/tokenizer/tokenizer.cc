// Tokenizer: vocabulary loading (defaults, special-token detection, EOG set),
// special-token partitioning, tokenize and detokenize - following the
// reference's llama_vocab so ids match token for token.
#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "tokenizer/unicode.h"
#include "tokenizer/vocab.h"

namespace codey {
namespace {

constexpr std::string_view kSpmSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's space

uint32_t attr_from_type(int32_t type) {
  switch (TokenType(type)) {
    case TokenType::kUnknown: return kAttrUnknown;
    case TokenType::kUnused: return kAttrUnused;
    case TokenType::kNormal: return kAttrNormal;
    case TokenType::kControl: return kAttrControl;
    case TokenType::kUserDefined: return kAttrUserDefined;
    case TokenType::kByte: return kAttrByte;
    default: return kAttrUndefined;
  }
}

bool is_ascii_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

std::string replace_all(std::string_view s, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  while (true) {
    size_t hit = s.find(from, pos);
    if (hit == std::string_view::npos) break;
    out.append(s.substr(pos, hit - pos)).append(to);
    pos = hit + from.size();
  }
  out.append(s.substr(pos));
  return out;
}

std::string lower_ascii(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = char(std::tolower(uint8_t(c)));
  return out;
}

// Texts by which the reference recognizes tokens when metadata lacks ids.
constexpr std::string_view kEotTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
    "<EOT>", "_<EOT>", "[EOT]", "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>",
    "<end_of_utterance>"};
constexpr std::string_view kEomTexts[] = {"<|eom_id|>"};
constexpr std::string_view kFimPreTexts[] = {
    "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "begin\xEF\xBD\x9C>",
    "<PRE>", "\xE2\x96\x81<PRE>", "<|code_prefix|>", "<|prefix|>"};
constexpr std::string_view kFimSufTexts[] = {
    "<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81hole\xEF\xBD\x9C>",
    "<SUF>", "\xE2\x96\x81<SUF>", "<|code_suffix|>", "<|suffix|>"};
constexpr std::string_view kFimMidTexts[] = {
    "<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "end\xEF\xBD\x9C>",
    "<MID>", "\xE2\x96\x81<MID>", "<|code_middle|>", "<|middle|>"};
constexpr std::string_view kFimPadTexts[] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"};
constexpr std::string_view kFimRepTexts[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"};
constexpr std::string_view kFimSepTexts[] = {"<|file_sep|>"};
constexpr std::string_view kEogTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
    "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
    "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
    "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>", "[e~["};

}  // namespace

// ---- Loading ----------------------------------------------------------------

Result<Tokenizer> Tokenizer::from_vocab(VocabData d) {
  auto impl = std::make_unique<Impl>();
  Impl& v = *impl;
  v.model = d.model;

  tok::BpePreset preset;
  if (d.model == "gpt2") {
    v.kind = Impl::Kind::kBpe;
    if (d.pre.empty())
      log_warn("tokenizer: missing pre-tokenizer type (tokenizer.ggml.pre), using 'default'; "
               "generation quality will be degraded, consider regenerating the model");
    auto p = tok::find_bpe_preset(d.pre);
    if (!p) return std::unexpected(std::move(p.error()));
    preset = std::move(*p);
    v.pre = preset.name;
    v.ignore_merges = preset.ignore_merges;
    v.clean_spaces = preset.clean_spaces;
    v.add_bos = preset.add_bos;
    v.add_space_prefix = false;
    v.bos = 11;  // the reference's defaults for gpt2 vocabularies
    v.eos = 11;
    if (preset.no_bos) v.bos = kNoToken;
  } else if (d.model == "llama") {
    v.kind = Impl::Kind::kSpm;
    v.pre = "default";
    v.add_space_prefix = true;
    v.clean_spaces = false;
    v.add_bos = true;
    v.bos = 1;
    v.eos = 2;
    v.unk = 0;
  } else {
    return make_error(ErrorCode::kUnsupported,
                      "tokenizer model '{}' (tokenizer.ggml.model) is not supported; supported: gpt2 (byte-level "
                      "BPE), llama (SentencePiece)",
                      d.model);
  }
  if (d.add_space_prefix) v.add_space_prefix = *d.add_space_prefix;

  const size_t n = d.tokens.size();
  if (n == 0) return make_error(ErrorCode::kCorrupt, "tokenizer: the vocabulary (tokenizer.ggml.tokens) is empty");
  if (n > size_t(INT32_MAX))
    return make_error(ErrorCode::kCorrupt, "tokenizer: {} tokens are more than token ids can address", n);
  if (!d.scores.empty() && d.scores.size() < n)
    return make_error(ErrorCode::kCorrupt, "tokenizer: {} scores for {} tokens", d.scores.size(), n);
  if (!d.token_types.empty() && d.token_types.size() < n)
    return make_error(ErrorCode::kCorrupt, "tokenizer: {} token types for {} tokens", d.token_types.size(), n);

  v.tokens.resize(n);
  v.token_to_id.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    std::string text = std::move(d.tokens[i]);
    if (text.empty()) {
      log_warn("tokenizer: empty token at index {}", i);
      text = fmt::format("[EMPTY_{}]", i);
    }
    auto [it, inserted] = v.token_to_id.emplace(text, TokenId(i));
    if (!inserted)
      return make_error(ErrorCode::kCorrupt, "tokenizer: duplicate token '{}' has ids {} and {}", text, it->second,
                        i);
    TokenData& t = v.tokens[i];
    t.text = std::move(text);
    t.score = d.scores.empty() ? 0.0f : d.scores[i];
    t.attr = d.token_types.empty() ? kAttrNormal : attr_from_type(d.token_types[i]);
  }

  if (v.kind == Impl::Kind::kBpe) {
    if (d.merges.empty()) log_warn("tokenizer: BPE vocabulary without merges (tokenizer.ggml.merges)");
    std::vector<std::pair<uint64_t, tok::MergeTable::Value>> by_id;
    by_id.reserve(d.merges.size());
    for (size_t rank = 0; rank < d.merges.size(); ++rank) {
      const std::string& m = d.merges[rank];
      const size_t sp = m.find(' ', 1);
      std::string_view first, second;
      if (sp != std::string::npos) {
        first = std::string_view(m).substr(0, sp);
        second = std::string_view(m).substr(sp + 1);
      }
      const TokenId a = v.find_or_none(first), b = v.find_or_none(second);
      if (a != kNoToken && b != kNoToken) {
        const uint64_t key = (uint64_t(uint32_t(a)) << 32) | uint32_t(b);
        std::string joined = std::string(first) + std::string(second);
        by_id.emplace_back(key, tok::MergeTable::Value{int32_t(rank), v.find_or_none(joined)});
      } else {
        v.merges_by_text.emplace(std::string(first) + " " + std::string(second), int32_t(rank));
      }
    }
    v.merges_by_id.build(by_id);
    auto pt = tok::PreTokenizer::create(preset.regexes);
    if (!pt) return std::unexpected(std::move(pt.error()).with_context(fmt::format("pre-tokenizer '{}'", v.pre)));
    v.pretokenizer = std::move(*pt);
    for (int b = 0; b < 256; ++b) v.byte_token[b] = v.find_or_none(tok::byte_to_unicode(uint8_t(b)));
  } else {
    for (int b = 0; b < 256; ++b) {
      TokenId id = v.find_or_none(fmt::format("<0x{:02X}>", b));
      if (id == kNoToken) id = v.find_or_none(std::string(1, char(b)));
      v.byte_token[b] = id;
    }
  }

  // Special token ids: type defaults (disabled when out of range), then metadata.
  const auto in_range = [n](TokenId id) { return id >= 0 && size_t(id) < n; };
  struct Slot {
    const char* key;
    TokenId* id;
    std::optional<TokenId> meta;
  };
  const Slot slots[] = {
      {"bos_token_id", &v.bos, d.bos},       {"eos_token_id", &v.eos, d.eos},
      {"eot_token_id", &v.eot, d.eot},       {"eom_token_id", &v.eom, d.eom},
      {"unknown_token_id", &v.unk, d.unk},   {"seperator_token_id", &v.sep, d.sep},
      {"padding_token_id", &v.pad, d.pad},   {"mask_token_id", &v.mask, d.mask},
      {"fim_pre_token_id", &v.fim_pre, d.fim_pre}, {"fim_suf_token_id", &v.fim_suf, d.fim_suf},
      {"fim_mid_token_id", &v.fim_mid, d.fim_mid}, {"fim_pad_token_id", &v.fim_pad, d.fim_pad},
      {"fim_rep_token_id", &v.fim_rep, d.fim_rep}, {"fim_sep_token_id", &v.fim_sep, d.fim_sep},
  };
  for (const Slot& s : slots) {
    if (*s.id != kNoToken && !in_range(*s.id)) *s.id = kNoToken;
    if (!s.meta) continue;
    if (!in_range(*s.meta)) {
      log_warn("tokenizer: bad special token tokenizer.ggml.{} = {} (vocabulary has {}), using {}", s.key, *s.meta, n,
               *s.id);
      continue;
    }
    *s.id = *s.meta;
  }

  if (d.add_bos) v.add_bos = *d.add_bos;
  if (d.add_eos) v.add_eos = *d.add_eos;
  if (v.add_bos && v.bos == kNoToken)
    return make_error(ErrorCode::kCorrupt, "tokenizer: add_bos_token is true, but bos_token_id is not set");
  if (v.add_eos && v.eos == kNoToken)
    return make_error(ErrorCode::kCorrupt, "tokenizer: add_eos_token is true, but eos_token_id is not set");

  // Find EOT/EOM/FIM tokens by text when metadata lacks them; such tokens are
  // control tokens whatever the file says. The first text in list order wins.
  auto mark_control = [&](TokenId id) { v.tokens[id].attr |= kAttrControl; };
  auto detect = [&](TokenId& slot, std::span<const std::string_view> texts) {
    if (slot != kNoToken) return;
    for (auto t : texts) {
      if (auto id = v.find(t)) {
        slot = *id;
        mark_control(*id);
        return;
      }
    }
  };
  detect(v.eot, kEotTexts);
  detect(v.eom, kEomTexts);
  detect(v.fim_pre, kFimPreTexts);
  detect(v.fim_suf, kFimSufTexts);
  detect(v.fim_mid, kFimMidTexts);
  detect(v.fim_pad, kFimPadTexts);
  detect(v.fim_rep, kFimRepTexts);
  detect(v.fim_sep, kFimSepTexts);

  // End-of-generation set.
  std::vector<TokenId> eog;
  for (TokenId id : {v.fim_pad, v.fim_rep, v.fim_sep})
    if (id != kNoToken) eog.push_back(id);
  for (auto t : kEogTexts) {
    if (auto id = v.find(t)) {
      eog.push_back(*id);
      mark_control(*id);
    }
  }
  // gpt-oss: these structural tokens are always rendered.
  for (std::string_view t : {"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"})
    if (auto id = v.find(t)) v.tokens[*id].attr = kAttrUserDefined;
  for (TokenId id : {v.eos, v.eot, v.eom})
    if (id != kNoToken) eog.push_back(id);
  std::sort(eog.begin(), eog.end());
  eog.erase(std::unique(eog.begin(), eog.end()), eog.end());
  auto eog_has_text = [&](std::string_view t) {
    return std::any_of(eog.begin(), eog.end(), [&](TokenId id) { return v.tokens[id].text == t; });
  };
  // o200k_harmony / solar-open: "<|end|>" ends a message, not the generation.
  if (eog_has_text("<|end|>") && (eog_has_text("<|call|>") || eog_has_text("<|calls|>")) &&
      (eog_has_text("<|return|>") || eog_has_text("<|flush|>"))) {
    TokenId end_id = *v.find("<|end|>");
    eog.erase(std::remove(eog.begin(), eog.end(), end_id), eog.end());
    v.tokens[end_id].attr = kAttrUserDefined;
  }
  // gemma4/paddleocr: "</s>" is not an end of generation next to "<|tool_response>".
  if (eog_has_text("<|tool_response>") && eog_has_text("</s>")) {
    TokenId s_id = *v.find("</s>");
    eog.erase(std::remove(eog.begin(), eog.end(), s_id), eog.end());
    v.tokens[s_id].attr = kAttrNormal;
  }
  v.eog = std::move(eog);

  // Partition order: longest text first (ties by id, for determinism).
  for (size_t i = 0; i < n; ++i)
    if (v.tokens[i].attr & (kAttrControl | kAttrUserDefined | kAttrUnknown)) v.special_tokens.push_back(TokenId(i));
  std::stable_sort(v.special_tokens.begin(), v.special_tokens.end(), [&](TokenId a, TokenId b) {
    return v.tokens[a].text.size() > v.tokens[b].text.size();
  });
  v.build_special_trie();

  v.pieces.resize(n);
  for (size_t i = 0; i < n; ++i) v.pieces[i] = v.make_piece(TokenId(i));

  // Per-model attribute fixes the reference keys on general.name.
  const std::string lname = lower_ascii(d.name);
  if (lname.find("phi-3") != std::string::npos || lname.find("phi3") != std::string::npos) {
    for (TokenId id : v.special_tokens) v.tokens[id].attr |= kAttrRstrip;
    if (auto id = v.find("</s>")) v.tokens[*id].attr |= kAttrRstrip;
    for (std::string_view t : {"<unk>", "<s>", "<|endoftext|>"})
      if (auto id = v.find(t)) v.tokens[*id].attr &= ~kAttrRstrip;
  }

  // The newline token.
  if (v.kind == Impl::Kind::kSpm) {
    v.nl = v.byte_token['\n'] != kNoToken ? v.byte_token['\n'] : v.pad;
  } else {
    auto ids = v.tokenize("\n", false, false);
    v.nl = ids.empty() ? v.pad : ids[0];
  }
  return Tokenizer(std::move(impl));
}

// ---- Tokenize ---------------------------------------------------------------

void Tokenizer::Impl::build_special_trie() {
  trie.assign(1, TrieNode{});
  trie_root.fill(0);
  for (size_t r = 0; r < special_tokens.size(); ++r) {
    const std::string& text = tokens[special_tokens[r]].text;
    int32_t node = 0;
    for (size_t i = 0; i < text.size(); ++i) {
      const uint8_t c = uint8_t(text[i]);
      int32_t child = 0;
      if (node == 0) {
        child = trie_root[c];
      } else {
        for (auto [b, k] : trie[node].kids)
          if (b == c) child = k;
      }
      if (child == 0) {
        child = int32_t(trie.size());
        trie.emplace_back();
        if (node == 0) trie_root[c] = child;
        else trie[node].kids.emplace_back(c, child);
      }
      node = child;
    }
    trie[node].rank = int32_t(r);
  }
}

std::vector<TokenId> Tokenizer::Impl::tokenize(std::string_view raw, bool add_special, bool parse_special) const {
  // Split the text around special tokens into raw ranges and tokens. The
  // reference takes the special tokens one by one, longest first, and splits
  // every remaining raw range at each leftmost non-overlapping occurrence.
  // Same result here, but the occurrences of all of them come from one pass
  // over the text with the trie instead of one search per token.
  struct Fragment {
    TokenId token;  // kNoToken: raw text [off, off + len)
    size_t off;
    size_t len;
  };
  std::vector<Fragment> frags;
  if (!raw.empty()) frags.push_back({kNoToken, 0, raw.size()});

  std::vector<std::pair<int32_t, uint32_t>> occ;  // (rank, position), every occurrence
  if (!trie.empty()) {
    for (size_t i = 0; i < raw.size(); ++i) {
      int32_t node = trie_root[uint8_t(raw[i])];
      for (size_t j = i + 1; node != 0; ++j) {
        const TrieNode& t = trie[node];
        if (t.rank >= 0) {
          const uint32_t attr = tokens[special_tokens[t.rank]].attr;
          if (parse_special || !(attr & (kAttrControl | kAttrUnknown)))  // user-defined always match
            occ.emplace_back(t.rank, uint32_t(i));
        }
        if (j >= raw.size()) break;
        int32_t child = 0;
        for (auto [b, k] : t.kids)
          if (b == uint8_t(raw[j])) child = k;
        node = child;
      }
    }
    std::sort(occ.begin(), occ.end());
  }

  std::vector<Fragment> next;
  for (size_t k = 0; k < occ.size();) {
    const int32_t rank = occ[k].first;
    size_t k_end = k;
    while (k_end < occ.size() && occ[k_end].first == rank) ++k_end;
    const auto positions = std::span(occ).subspan(k, k_end - k);  // ascending
    k = k_end;
    const TokenId sid = special_tokens[rank];
    const TokenData& sd = tokens[sid];
    const size_t st_len = sd.text.size();
    next.clear();
    for (const Fragment& f : frags) {
      if (f.token != kNoToken) {
        next.push_back(f);
        continue;
      }
      size_t off = f.off;
      const size_t end = f.off + f.len;
      while (true) {
        // The first occurrence at or after `off` that fits before `end`.
        auto it = std::lower_bound(positions.begin(), positions.end(), off,
                                   [](const std::pair<int32_t, uint32_t>& o, size_t v) { return o.second < v; });
        if (it == positions.end() || it->second + st_len > end) {
          if (end > off) next.push_back({kNoToken, off, end - off});
          break;
        }
        const size_t m = it->second;
        size_t left_len = m - off;
        if (sd.attr & kAttrLstrip)
          while (left_len > 0 && is_ascii_space(raw[off + left_len - 1])) --left_len;
        if (left_len > 0) next.push_back({kNoToken, off, left_len});
        next.push_back({sid, 0, 0});
        off = m + st_len;
        if (off >= end) break;
        if (sd.attr & kAttrRstrip)
          while (off < end && is_ascii_space(raw[off])) ++off;
      }
    }
    std::swap(frags, next);
  }

  std::vector<TokenId> out;
  out.reserve(raw.size() / 3 + 2);
  if (kind == Kind::kSpm) {
    bool prev_special = true;  // a space prefix goes on the first text and on text after a special token
    if (add_special && add_bos) out.push_back(bos);
    for (const Fragment& f : frags) {
      if (f.token != kNoToken) {
        out.push_back(f.token);
        prev_special = true;
        continue;
      }
      std::string text;
      if (add_space_prefix && prev_special) text = " ";
      text.append(raw.substr(f.off, f.len));
      tokenize_spm(replace_all(text, " ", kSpmSpace), out);
      prev_special = false;
    }
    if (add_special && add_bos && out.size() >= 2 && out[1] == bos)
      log_warn("tokenizer: added a BOS token to a prompt that already starts with BOS; it now starts with two");
    if (add_special && add_eos) out.push_back(eos);
  } else {
    if (add_special && add_bos) out.push_back(bos);
    for (const Fragment& f : frags) {
      if (f.token != kNoToken) out.push_back(f.token);
      else tokenize_bpe(raw.substr(f.off, f.len), out);
    }
    if (add_special && add_eos) out.push_back(eos);
    if (add_special && add_bos && out.size() >= 2 && out[1] == bos)
      log_warn("tokenizer: added a BOS token to a prompt that already starts with BOS; it now starts with two");
    if (add_special && add_eos && out.size() >= 2 && out[out.size() - 2] == eos)
      log_warn("tokenizer: added an EOS token to a prompt that already ends with EOS; it now ends with two");
  }
  return out;
}

// ---- Pieces and detokenize ---------------------------------------------------

std::string Tokenizer::Impl::make_piece(TokenId id) const {
  const TokenData& t = tokens[id];
  if (t.attr & (kAttrUnknown | kAttrControl | kAttrUserDefined)) return t.text;
  if (t.attr & kAttrNormal) {
    if (kind == Kind::kSpm) return replace_all(t.text, kSpmSpace, " ");
    // Byte-level: every character stands for one byte.
    std::string out;
    for (uint32_t cp : tok::decode_utf8(t.text)) {
      const int b = tok::unicode_to_byte(cp);
      if (b >= 0) {
        out.push_back(char(b));
        continue;
      }
      std::string utf8;
      tok::append_utf8(utf8, cp);
      out += "[UNK_BYTE_0x";
      for (char c : utf8) out += fmt::format("{:02x}", uint8_t(c));
      out += t.text + "]";
    }
    return out;
  }
  if (t.attr & kAttrByte) {
    // "<0xNN>"
    const std::string hex = t.text.size() >= 5 ? t.text.substr(3, 2) : std::string();
    return std::string(1, char(std::strtol(hex.c_str(), nullptr, 16)));
  }
  return {};  // undefined / unused tokens render as nothing
}

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

std::vector<TokenId> Tokenizer::tokenize(std::string_view text, bool add_special, bool parse_special) const {
  return impl_->tokenize(text, add_special, parse_special);
}

std::string_view Tokenizer::token_to_piece(TokenId id, bool render_special) const {
  CODEY_ASSERT(valid(id));
  if (!render_special && (impl_->tokens[id].attr & (kAttrUnknown | kAttrControl))) return {};
  return impl_->pieces[id];
}

std::string Tokenizer::detokenize(std::span<const TokenId> ids, bool render_special, bool remove_special) const {
  const Impl& v = *impl_;
  bool remove_space = v.add_space_prefix;
  if (remove_special && v.add_bos && !ids.empty() && ids.front() == v.bos) {
    remove_space = false;  // as the reference: a removed BOS keeps the space prefix
    ids = ids.subspan(1);
  }
  if (remove_special && v.add_eos && !ids.empty() && ids.back() == v.eos) ids = ids.subspan(0, ids.size() - 1);

  std::string text;
  for (TokenId id : ids) {
    std::string_view piece = valid(id) ? token_to_piece(id, render_special) : std::string_view();
    if (remove_space && !piece.empty() && piece.front() == ' ') piece.remove_prefix(1);
    remove_space = false;
    text.append(piece);
  }
  if (!v.clean_spaces || text.empty()) return text;

  // clean_up_tokenization_spaces, three passes as the reference.
  std::string a;  // " ?", " !", " .", " ," lose the space
  a.reserve(text.size());
  a.push_back(text[0]);
  for (size_t i = 1; i < text.size(); ++i) {
    const char x = text[i];
    if (text[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) a.pop_back();
    a.push_back(x);
  }
  std::string b;  // " ' " becomes "'"
  b.reserve(a.size());
  b.push_back(a[0]);
  for (size_t i = 1; i < a.size(); ++i) {
    const char x = a[i];
    if (x == '\'' && i + 1 < a.size() && a[i - 1] == ' ' && a[i + 1] == ' ') {
      b.pop_back();
      b.push_back(x);
      a[++i] = '\0';  // the following space is dropped and, as in the reference, no longer counts as a space
      continue;
    }
    b.push_back(x);
  }
  std::string c;  // " 's", " 'm", " 're", " 've" lose the space
  c.reserve(b.size());
  c.push_back(b[0]);
  for (size_t i = 1; i < b.size(); ++i) {
    const char x = b[i];
    if (b[i - 1] == ' ' && x == '\'' && i + 1 < b.size()) {
      const char x1 = b[i + 1];
      if (x1 == 's' || x1 == 'm') {
        c.pop_back();
      } else if (x1 != 't' && x1 != 'd' && i + 2 < b.size()) {
        const char x2 = b[i + 2];
        if ((x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e')) c.pop_back();
      }
    }
    c.push_back(x);
  }
  return c;
}

// ---- Accessors ----------------------------------------------------------------

int32_t Tokenizer::n_tokens() const { return int32_t(impl_->tokens.size()); }
const std::string& Tokenizer::token_text(TokenId id) const {
  CODEY_ASSERT(valid(id));
  return impl_->tokens[id].text;
}
float Tokenizer::token_score(TokenId id) const {
  CODEY_ASSERT(valid(id));
  return impl_->tokens[id].score;
}
uint32_t Tokenizer::token_attr(TokenId id) const {
  CODEY_ASSERT(valid(id));
  return impl_->tokens[id].attr;
}
bool Tokenizer::is_eog(TokenId id) const {
  return id != kNoToken && std::binary_search(impl_->eog.begin(), impl_->eog.end(), id);
}
std::span<const TokenId> Tokenizer::eog_ids() const { return impl_->eog; }
std::optional<TokenId> Tokenizer::find_token(std::string_view text) const { return impl_->find(text); }
std::string_view Tokenizer::model() const { return impl_->model; }
std::string_view Tokenizer::pre() const { return impl_->pre; }
TokenId Tokenizer::bos() const { return impl_->bos; }
TokenId Tokenizer::eos() const { return impl_->eos; }
TokenId Tokenizer::eot() const { return impl_->eot; }
TokenId Tokenizer::eom() const { return impl_->eom; }
TokenId Tokenizer::unk() const { return impl_->unk; }
TokenId Tokenizer::sep() const { return impl_->sep; }
TokenId Tokenizer::pad() const { return impl_->pad; }
TokenId Tokenizer::nl() const { return impl_->nl; }
TokenId Tokenizer::fim_pre() const { return impl_->fim_pre; }
TokenId Tokenizer::fim_suf() const { return impl_->fim_suf; }
TokenId Tokenizer::fim_mid() const { return impl_->fim_mid; }
TokenId Tokenizer::fim_pad() const { return impl_->fim_pad; }
TokenId Tokenizer::fim_rep() const { return impl_->fim_rep; }
TokenId Tokenizer::fim_sep() const { return impl_->fim_sep; }
bool Tokenizer::add_bos() const { return impl_->add_bos; }
bool Tokenizer::add_eos() const { return impl_->add_eos; }
bool Tokenizer::add_space_prefix() const { return impl_->add_space_prefix; }
bool Tokenizer::clean_spaces() const { return impl_->clean_spaces; }

}  // namespace codey
