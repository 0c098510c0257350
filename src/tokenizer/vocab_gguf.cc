// Tokenizer::from_gguf: reads the `tokenizer.ggml.*` metadata into VocabData.
#include "codey/gguf.h"
#include "codey/tokenizer.h"

namespace codey {
namespace {

// An optional token id key; absent is fine, mistyped or negative is an error.
Status read_id(const GgufFile& f, std::string_view key, std::optional<TokenId>& out) {
  if (!f.has(key)) return {};
  auto v = f.get_u32(key);
  if (!v) return std::unexpected(std::move(v.error()));
  // Ids beyond the vocabulary are reported (and ignored) by from_vocab.
  out = *v > uint32_t(INT32_MAX) ? INT32_MAX : TokenId(*v);
  return {};
}

Status read_flag(const GgufFile& f, std::string_view key, std::optional<bool>& out) {
  if (!f.has(key)) return {};
  auto v = f.get_bool(key);
  if (!v) return std::unexpected(std::move(v.error()));
  out = *v;
  return {};
}

}  // namespace

Result<Tokenizer> Tokenizer::from_gguf(const GgufFile& f) {
  auto context = [&](Error&& e) { return std::unexpected(std::move(e).with_context(f.name())); };
  VocabData d;
  auto model = f.get_string("tokenizer.ggml.model");
  if (!model) return std::unexpected(std::move(model.error()));
  d.model = std::string(*model);
  auto pre = f.get_string_or("tokenizer.ggml.pre", "");
  if (!pre) return std::unexpected(std::move(pre.error()));
  d.pre = std::string(*pre);
  auto name = f.get_string_or("general.name", "");
  if (!name) return std::unexpected(std::move(name.error()));
  d.name = std::string(*name);

  auto tokens = f.get_string_array("tokenizer.ggml.tokens");
  if (!tokens) return std::unexpected(std::move(tokens.error()));
  d.tokens.assign(tokens->begin(), tokens->end());

  if (f.has("tokenizer.ggml.scores")) {
    auto scores = f.get_f32_array("tokenizer.ggml.scores");
    if (!scores) return std::unexpected(std::move(scores.error()));
    d.scores = std::move(*scores);
  }
  if (f.has("tokenizer.ggml.token_type")) {
    auto types = f.get_int_array("tokenizer.ggml.token_type");
    if (!types) return std::unexpected(std::move(types.error()));
    d.token_types.reserve(types->size());
    for (int64_t t : *types) d.token_types.push_back(int32_t(t));
  }
  if (d.model == "gpt2") {
    if (!f.has("tokenizer.ggml.merges"))
      return make_error(ErrorCode::kCorrupt, "{}: BPE tokenizer without merges (tokenizer.ggml.merges)", f.name());
    auto merges = f.get_string_array("tokenizer.ggml.merges");
    if (!merges) return std::unexpected(std::move(merges.error()));
    d.merges.assign(merges->begin(), merges->end());
  }

  struct IdKey {
    std::string_view key;
    std::optional<TokenId>* slot;
  };
  // The deprecated prefix/suffix/middle keys come last: as in the reference,
  // they win when a file has both spellings.
  const IdKey ids[] = {
      {"tokenizer.ggml.bos_token_id", &d.bos},         {"tokenizer.ggml.eos_token_id", &d.eos},
      {"tokenizer.ggml.eot_token_id", &d.eot},         {"tokenizer.ggml.eom_token_id", &d.eom},
      {"tokenizer.ggml.unknown_token_id", &d.unk},     {"tokenizer.ggml.seperator_token_id", &d.sep},
      {"tokenizer.ggml.padding_token_id", &d.pad},     {"tokenizer.ggml.mask_token_id", &d.mask},
      {"tokenizer.ggml.fim_pre_token_id", &d.fim_pre}, {"tokenizer.ggml.fim_suf_token_id", &d.fim_suf},
      {"tokenizer.ggml.fim_mid_token_id", &d.fim_mid}, {"tokenizer.ggml.fim_pad_token_id", &d.fim_pad},
      {"tokenizer.ggml.fim_rep_token_id", &d.fim_rep}, {"tokenizer.ggml.fim_sep_token_id", &d.fim_sep},
      {"tokenizer.ggml.prefix_token_id", &d.fim_pre},  {"tokenizer.ggml.suffix_token_id", &d.fim_suf},
      {"tokenizer.ggml.middle_token_id", &d.fim_mid},
  };
  for (const IdKey& k : ids)
    if (auto s = read_id(f, k.key, *k.slot); !s) return std::unexpected(std::move(s.error()));
  for (auto [key, slot] : {std::pair{"tokenizer.ggml.add_bos_token", &d.add_bos},
                           std::pair{"tokenizer.ggml.add_eos_token", &d.add_eos},
                           std::pair{"tokenizer.ggml.add_space_prefix", &d.add_space_prefix}})
    if (auto s = read_flag(f, key, *slot); !s) return std::unexpected(std::move(s.error()));

  auto tok = from_vocab(std::move(d));
  if (!tok) return context(std::move(tok.error()));
  return tok;
}

}  // namespace codey
