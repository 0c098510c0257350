// Tokenizer behaviour beyond the conformance files: special tokens (parsed or
// not, longest match, strip attributes), BOS/EOS, FIM/EOG ids, byte fallback,
// invalid UTF-8, BPE merge order on a hand-made vocabulary, streaming decode.
#include <gtest/gtest.h>

#include "codey/gguf.h"
#include "codey/tokenizer.h"
#include "testing/testing.h"
#include "tokenizer/unicode.h"

namespace codey {
namespace {

Tokenizer load_vocab(const std::string& name) {
  auto f = GgufFile::open(testing::testdata("vocab/ggml-vocab-" + name + ".gguf"));
  if (!f) ADD_FAILURE() << f.error().message;
  auto t = Tokenizer::from_gguf(*f);
  if (!t) ADD_FAILURE() << t.error().message;
  return std::move(*t);
}

bool valid_utf8(std::string_view s) {
  size_t bad = 0;
  return tok::utf8_valid_prefix(s, &bad) == s.size();
}

bool contains(const std::vector<TokenId>& ids, TokenId id) { return std::find(ids.begin(), ids.end(), id) != ids.end(); }

// ---- Special tokens ---------------------------------------------------------

TEST(SpecialTokens, ControlTokensParsedOnlyOnRequest) {
  const Tokenizer tok = load_vocab("deepseek-coder");
  const TokenId begin = *tok.find_token("<\xEF\xBD\x9C" "fim\xE2\x96\x81" "begin\xEF\xBD\x9C>");
  const TokenId hole = *tok.find_token("<\xEF\xBD\x9C" "fim\xE2\x96\x81hole\xEF\xBD\x9C>");
  const TokenId end = *tok.find_token("<\xEF\xBD\x9C" "fim\xE2\x96\x81" "end\xEF\xBD\x9C>");
  EXPECT_TRUE(tok.is_control(begin));
  const std::string prompt = tok.token_text(begin) + "def f():\n    " + tok.token_text(hole) + "\n" + tok.token_text(end);

  const auto parsed = tok.tokenize(prompt, false, /*parse_special=*/true);
  ASSERT_GE(parsed.size(), 4u);
  EXPECT_EQ(parsed.front(), begin);
  EXPECT_EQ(parsed.back(), end);
  EXPECT_TRUE(contains(parsed, hole));
  // The text between the specials is tokenized as if alone.
  auto body = tok.tokenize("def f():\n    ", false, false);
  EXPECT_TRUE(std::equal(body.begin(), body.end(), parsed.begin() + 1));

  // As user content, the same characters are plain text.
  const auto plain = tok.tokenize(prompt, false, /*parse_special=*/false);
  EXPECT_FALSE(contains(plain, begin));
  EXPECT_FALSE(contains(plain, hole));
  EXPECT_FALSE(contains(plain, end));
  EXPECT_EQ(tok.detokenize(plain), prompt);
  // Rendering: control tokens show only when asked.
  EXPECT_EQ(tok.detokenize(parsed, /*render_special=*/true), prompt);
  EXPECT_EQ(tok.detokenize(parsed, /*render_special=*/false), "def f():\n    \n");
}

TEST(SpecialTokens, UserDefinedTokensAlwaysMatch) {
  // deepseek-coder's added tokens such as "ü" are user-defined: the reference
  // splits them out of plain text too (the conformance case "Führer").
  const Tokenizer tok = load_vocab("deepseek-coder");
  const TokenId u = *tok.find_token("\xC3\xBC");
  EXPECT_FALSE(tok.is_control(u));
  EXPECT_TRUE(tok.token_attr(u) & kAttrUserDefined);
  EXPECT_TRUE(contains(tok.tokenize("F\xC3\xBChrer", false, false), u));
  EXPECT_EQ(tok.token_to_piece(u), "\xC3\xBC");
}

TEST(SpecialTokens, LongestFirst) {
  VocabData d;
  d.model = "gpt2";
  d.pre = "gpt-2";
  for (int b = 0; b < 256; ++b) d.tokens.emplace_back(tok::byte_to_unicode(uint8_t(b)));
  d.tokens.push_back("<|a|>");       // 256
  d.tokens.push_back("<|a|><|b|>");  // 257
  d.tokens.push_back("<|b|>");       // 258
  d.token_types.assign(256, int32_t(TokenType::kNormal));
  d.token_types.insert(d.token_types.end(), 3, int32_t(TokenType::kControl));
  auto tok = Tokenizer::from_vocab(d);
  ASSERT_TRUE(tok.has_value()) << tok.error().message;
  EXPECT_EQ(tok->tokenize("<|a|><|b|><|b|>x<|a|>", false, true), (std::vector<TokenId>{257, 258, 'x', 256}));
}

TEST(SpecialTokens, Phi3StripsWhitespaceAfterSpecialTokens) {
  // The reference marks phi-3's special tokens rstrip (keyed on general.name):
  // "<|user|>\nHi" tokenizes like "<|user|>Hi".
  const Tokenizer tok = load_vocab("phi-3");
  const TokenId user = *tok.find_token("<|user|>");
  const auto a = tok.tokenize("<|user|>\nHi", false, true);
  const auto b = tok.tokenize("<|user|>Hi", false, true);
  EXPECT_EQ(a, b);
  ASSERT_FALSE(a.empty());
  EXPECT_EQ(a.front(), user);
  // Text after a special token gets SentencePiece's space prefix again.
  EXPECT_EQ(tok.token_text(a[1]).substr(0, 3), "\xE2\x96\x81");
}

// ---- BOS / EOS / FIM / EOG ---------------------------------------------------

TEST(SpecialIds, FromMetadataAndDetectedByText) {
  const Tokenizer ds = load_vocab("deepseek-coder");
  EXPECT_EQ(ds.bos(), 32013);
  EXPECT_EQ(ds.eos(), 32014);
  EXPECT_TRUE(ds.add_bos());
  EXPECT_FALSE(ds.add_eos());
  EXPECT_EQ(ds.fim_pre(), 32016);  // <｜fim▁begin｜>
  EXPECT_EQ(ds.fim_suf(), 32015);  // <｜fim▁hole｜>
  EXPECT_EQ(ds.fim_mid(), 32017);  // <｜fim▁end｜>
  EXPECT_TRUE(ds.is_eog(32014));
  EXPECT_FALSE(ds.is_eog(32013));
  EXPECT_EQ(ds.nl(), ds.tokenize("\n", false)[0]);

  const Tokenizer sc = load_vocab("starcoder");
  EXPECT_EQ(sc.fim_pre(), *sc.find_token("<fim_prefix>"));
  EXPECT_EQ(sc.fim_suf(), *sc.find_token("<fim_suffix>"));
  EXPECT_EQ(sc.fim_mid(), *sc.find_token("<fim_middle>"));
  EXPECT_EQ(sc.fim_pad(), *sc.find_token("<fim_pad>"));
  EXPECT_TRUE(sc.is_eog(*sc.find_token("<|endoftext|>")));
  EXPECT_TRUE(sc.is_eog(sc.fim_pad()));  // as the reference: FIM pad/repo/sep end generation

  const Tokenizer spm = load_vocab("llama-spm");
  EXPECT_EQ(spm.bos(), 1);
  EXPECT_EQ(spm.eos(), 2);
  EXPECT_EQ(spm.unk(), 0);
  EXPECT_EQ(spm.nl(), *spm.find_token("<0x0A>"));
  EXPECT_EQ(spm.fim_pre(), kNoToken);
}

TEST(SpecialIds, AddSpecialFollowsMetadata) {
  const Tokenizer ds = load_vocab("deepseek-coder");
  const auto with = ds.tokenize("x", true);
  const auto without = ds.tokenize("x", false);
  ASSERT_EQ(with.size(), without.size() + 1);
  EXPECT_EQ(with.front(), ds.bos());
  EXPECT_EQ(ds.detokenize(with, false, /*remove_special=*/true), "x");

  const Tokenizer gpt2 = load_vocab("gpt-2");  // no add_bos_token: gpt2 adds nothing
  EXPECT_EQ(gpt2.tokenize("x", true), gpt2.tokenize("x", false));

  const Tokenizer spm = load_vocab("llama-spm");
  const auto s = spm.tokenize("Hello", true);
  EXPECT_EQ(s.front(), 1);
  // The reference strips the SentencePiece prefix space from the first token
  // only; after a BOS (shown, hidden or removed) the space stays.
  EXPECT_EQ(spm.detokenize(spm.tokenize("Hello", false)), "Hello");
  EXPECT_EQ(spm.detokenize(s), " Hello");
  EXPECT_EQ(spm.detokenize(s, true), "<s> Hello");
  EXPECT_EQ(spm.detokenize(s, false, /*remove_special=*/true), " Hello");
}

// ---- Byte fallback, invalid UTF-8 ---------------------------------------------

TEST(ByteFallback, SpmUsesByteTokensForUnknownCharacters) {
  const Tokenizer tok = load_vocab("llama-spm");
  const std::string text = "\xF0\x9D\x94\x98";  // U+1D518, not in the vocabulary
  ASSERT_FALSE(tok.find_token(text).has_value());
  const auto ids = tok.tokenize(text, false);
  ASSERT_GE(ids.size(), 4u);
  const std::vector<TokenId> tail(ids.end() - 4, ids.end());
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(tok.token_text(tail[i]), fmt::format("<0x{:02X}>", uint8_t(text[i])));
    EXPECT_EQ(tok.token_to_piece(tail[i]), text.substr(i, 1));
  }
  EXPECT_EQ(tok.detokenize(ids), text);
}

TEST(ByteFallback, SpmRoundTripsInvalidUtf8) {
  const Tokenizer tok = load_vocab("llama-spm");
  const std::string text = "ok\xFF\xC3(\x80";
  EXPECT_EQ(tok.detokenize(tok.tokenize(text, false)), text);
}

TEST(ByteFallback, BpeReplacesInvalidUtf8LikeTheReference) {
  const Tokenizer tok = load_vocab("deepseek-coder");
  // Each bad byte becomes U+FFFD before byte-level encoding.
  EXPECT_EQ(tok.detokenize(tok.tokenize("a\xFF" "b", false)), "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(tok.tokenize("a\xFF" "b", false), tok.tokenize("a\xEF\xBF\xBD" "b", false));
  // Every byte value is representable.
  std::string all;
  for (int b = 1; b < 128; ++b) all.push_back(char(b));
  EXPECT_EQ(tok.detokenize(tok.tokenize(all, false)), all);
}

// ---- BPE on a hand-made vocabulary --------------------------------------------

VocabData tiny_bpe(std::vector<std::string> extra, std::vector<std::string> merges, std::string pre = "gpt-2") {
  VocabData d;
  d.model = "gpt2";
  d.pre = std::move(pre);
  for (int b = 0; b < 256; ++b) d.tokens.emplace_back(tok::byte_to_unicode(uint8_t(b)));
  for (auto& t : extra) d.tokens.push_back(std::move(t));
  d.merges = std::move(merges);
  return d;
}

TEST(Bpe, MergesByRankThenLeftmost) {
  // ids: 256 "aa", 257 "ab", 258 "aab"
  auto tok = Tokenizer::from_vocab(tiny_bpe({"aa", "ab", "aab"}, {"a b", "a a", "a ab", "aa b"}));
  ASSERT_TRUE(tok.has_value()) << tok.error().message;
  const TokenId a = 'a';  // byte tokens are in byte order here
  // "ab" has the best rank, so "aab" -> "a" + "ab" -> (a, ab) rank 2 -> "aab".
  EXPECT_EQ(tok->tokenize("aab", false), (std::vector<TokenId>{258}));
  // Equal ranks: the leftmost pair merges first ("aaa" -> "aa" + "a").
  EXPECT_EQ(tok->tokenize("aaa", false), (std::vector<TokenId>{256, a}));
  EXPECT_EQ(tok->tokenize("aaaa", false), (std::vector<TokenId>{256, 256}));
}

TEST(Bpe, LongWordsAreNotQuadratic) {
  auto tok = Tokenizer::from_vocab(tiny_bpe({"aa", "aaaa"}, {"a a", "aa aa"}));
  ASSERT_TRUE(tok.has_value());
  const std::string word(200000, 'a');  // one pre-tokenizer word
  const auto t0 = Clock::now();
  const auto ids = tok->tokenize(word, false);
  EXPECT_LT(seconds_since(t0), 5.0);  // quadratic would be ~10^10 steps
  EXPECT_EQ(ids, std::vector<TokenId>(50000, 257));
}

TEST(Bpe, IgnoreMergesTakesWholeWordTokens) {
  // llama3-style vocabularies emit a word that is itself a token directly.
  auto merged = Tokenizer::from_vocab(tiny_bpe({"ab", "abc"}, {"a b"}, "gpt-2"));
  auto whole = Tokenizer::from_vocab(tiny_bpe({"ab", "abc"}, {"a b"}, "llama-bpe"));
  ASSERT_TRUE(merged.has_value() && whole.has_value());
  EXPECT_EQ(merged->tokenize("abc", false), (std::vector<TokenId>{256, 'c'}));
  EXPECT_EQ(whole->tokenize("abc", false), (std::vector<TokenId>{257}));
}

TEST(Bpe, CacheGivesTheSameTokens) {
  const Tokenizer tok = load_vocab("deepseek-coder");
  const std::string text = "def fibonacci(n):\n    return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)\n";
  const auto first = tok.tokenize(text, false);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(tok.tokenize(text, false), first);
}

// ---- Loading errors --------------------------------------------------------------

TEST(Load, ClearErrors) {
  auto unknown_pre = Tokenizer::from_vocab(tiny_bpe({}, {}, "martian"));
  ASSERT_FALSE(unknown_pre.has_value());
  EXPECT_NE(unknown_pre.error().message.find("martian"), std::string::npos);

  VocabData bert = tiny_bpe({}, {});
  bert.model = "bert";
  auto b = Tokenizer::from_vocab(bert);
  ASSERT_FALSE(b.has_value());
  EXPECT_EQ(b.error().code, ErrorCode::kUnsupported);
  EXPECT_NE(b.error().message.find("bert"), std::string::npos);

  VocabData dup = tiny_bpe({"a"}, {});
  auto d = Tokenizer::from_vocab(dup);
  ASSERT_FALSE(d.has_value());
  EXPECT_NE(d.error().message.find("duplicate"), std::string::npos);

  VocabData no_bos = tiny_bpe({}, {}, "gpt-2");
  no_bos.add_bos = true;
  no_bos.tokens.resize(11);  // the gpt2 default BOS (11) is out of range
  auto n = Tokenizer::from_vocab(no_bos);
  ASSERT_FALSE(n.has_value());
  EXPECT_NE(n.error().message.find("bos"), std::string::npos);

  // A missing pre-tokenizer falls back to "default" (with a warning).
  auto missing = Tokenizer::from_vocab(tiny_bpe({}, {}, ""));
  ASSERT_TRUE(missing.has_value());
  EXPECT_EQ(missing->pre(), "default");
}

// ---- Streaming --------------------------------------------------------------------

TEST(StreamDecoder, HoldsBackIncompleteCharacters) {
  const Tokenizer tok = load_vocab("deepseek-coder");
  StreamDecoder dec(tok);
  EXPECT_EQ(dec.push_bytes("ab\xF0\x9F"), "ab");
  EXPECT_EQ(dec.pending_bytes(), 2u);
  EXPECT_EQ(dec.push_bytes("\x98"), "");
  EXPECT_EQ(dec.push_bytes("\x80!"), "\xF0\x9F\x98\x80!");
  EXPECT_EQ(dec.pending_bytes(), 0u);
  EXPECT_EQ(dec.flush(), "");
}

TEST(StreamDecoder, InvalidBytesBecomeReplacementCharacters) {
  const Tokenizer tok = load_vocab("deepseek-coder");
  StreamDecoder dec(tok);
  EXPECT_EQ(dec.push_bytes("\xC3("), "\xEF\xBF\xBD(");         // lead byte, then not a continuation
  EXPECT_EQ(dec.push_bytes("\x80x"), "\xEF\xBF\xBDx");         // stray continuation
  // A surrogate: ED is no valid start of A0, so three maximal subparts.
  EXPECT_EQ(dec.push_bytes("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(dec.push_bytes("\xE2\x82"), "");
  EXPECT_EQ(dec.flush(), "\xEF\xBF\xBD");  // unfinished at the end
}

TEST(StreamDecoder, TokenByTokenIsValidUtf8AndComplete) {
  for (const char* name : {"deepseek-coder", "gpt-2", "llama-spm"}) {
    const Tokenizer tok = load_vocab(name);
    const std::string text = "h\xC3\xA9llo \xF0\x9F\x98\x80 w\xC3\xB6rld \xE1\x9E\x80\xE1\x9E\xB6 \xE4\xB8\xAD\xE6\x96\x87!";
    const auto ids = tok.tokenize(text, false);
    StreamDecoder dec(tok);
    std::string all;
    bool held_back = false;
    for (TokenId id : ids) {
      const std::string part = dec.push(id);
      EXPECT_TRUE(valid_utf8(part)) << name;
      held_back |= dec.pending_bytes() > 0;
      all += part;
    }
    all += dec.flush();
    std::string expect;
    for (TokenId id : ids) expect += tok.token_to_piece(id);
    EXPECT_EQ(all, expect) << name;
    if (std::string_view(name) != "llama-spm") {
      EXPECT_EQ(all, text);
    }
    // Byte-level BPE splits multi-byte characters across tokens.
    if (std::string_view(name) == "gpt-2") {
      EXPECT_TRUE(held_back);
    }
  }
}

}  // namespace
}  // namespace codey
