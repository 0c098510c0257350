// Pre-tokenizers: the reference-shaped splitters (hand-written GPT-2 and
// Llama-3 matchers, category-collapsed regexes) against an independent
// oracle - PCRE2 with UTF + UCP running the original patterns on the text.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <gtest/gtest.h>
#include <pcre2.h>

#include <random>

#include "tokenizer/pretokenizer.h"
#include "tokenizer/unicode.h"

namespace codey::tok {
namespace {

// Splits like std::regex_iterator + the reference's gap handling, with PCRE2
// in UTF+UCP mode directly on the UTF-8 text. Lengths in code points.
std::vector<uint32_t> oracle_split(const std::string& pattern, const std::string& text) {
  int err = 0;
  PCRE2_SIZE off = 0;
  pcre2_code* re = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                 PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY, &err, &off, nullptr);
  EXPECT_NE(re, nullptr) << pattern;
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(re, nullptr);
  auto cps_in = [&](size_t a, size_t b) {
    uint32_t n = 0;
    for (size_t i = a; i < b; ++i) n += (uint8_t(text[i]) & 0xC0) != 0x80;
    return n;
  };
  std::vector<uint32_t> out;
  size_t pos = 0, last = 0;
  uint32_t opts = 0;
  while (pos <= text.size()) {
    int rc = pcre2_match(re, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), pos, opts, md, nullptr);
    if (rc < 0) {
      if (opts) {
        opts = 0;
        ++pos;
        while (pos < text.size() && (uint8_t(text[pos]) & 0xC0) == 0x80) ++pos;
        continue;
      }
      break;
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    if (ov[0] > last) out.push_back(cps_in(last, ov[0]));
    if (ov[1] > ov[0]) out.push_back(cps_in(ov[0], ov[1]));
    last = ov[1];
    pos = ov[1];
    opts = ov[0] == ov[1] ? (PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED) : 0;
  }
  if (last < text.size()) out.push_back(cps_in(last, text.size()));
  pcre2_match_data_free(md);
  pcre2_code_free(re);
  return out;
}

std::vector<uint32_t> our_split(const std::vector<std::string>& regexes, const std::string& text) {
  auto pt = PreTokenizer::create(regexes);
  EXPECT_TRUE(pt.has_value()) << (pt ? "" : pt.error().message);
  std::vector<uint32_t> out;
  pt->split(decode_utf8(text), out);
  return out;
}

// Random texts over a pool that exercises every branch: letters (ASCII and
// not), digits (ASCII and not), marks, punctuation, symbols, white space of
// several kinds, apostrophe contractions, CR/LF, CJK.
std::string random_text(std::mt19937& rng, size_t n) {
  static const std::vector<std::string> pool = {
      "a", "b", "Z", "s", "t", "e", "l", "v", "d", "m", "r", "'", "'", "'s", "'ll", "'RE", "'Ve", " ", " ", " ", "  ",
      "\t", "\n", "\r\n", "\n\n", "\u00a0", "\u3000", "\u2009", "\u0085", "0", "7", "42", "\u0663", "\u00bd", "\u2167",
      "!", "?", ".", ",", "(", ")", "{", "}", "_", "-", "#", "$", "+", "<", "=", ">", "^", "`", "|", "~", "@", "*",
      "\u00e9", "\u00fc", "\u0416", "\u03a9", "\u05d0", "\u0915", "\u093f", "\u0301", "\u4e2d", "\u6587",
      "\ud55c", "\u3042", "\u30a2", "\U0001F600", "\u2014", "\u201c", "\u00a9", "\u20ac", "\u2211", "\u0000",
      "\u200b", "\u00ad", "\x1f", "\x7f"};
  std::string s;
  std::uniform_int_distribution<size_t> pick(0, pool.size() - 1);
  for (size_t i = 0; i < n; ++i) s += pool[pick(rng)];
  return s;
}

constexpr std::string_view kGpt2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
constexpr std::string_view kLlama3 =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr std::string_view kQwen2 =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

void expect_same_as_oracle(std::string_view pattern, int n_texts) {
  std::mt19937 rng(1234);
  for (int i = 0; i < n_texts; ++i) {
    const std::string text = random_text(rng, 1 + i % 40);
    ASSERT_EQ(our_split({std::string(pattern)}, text), oracle_split(std::string(pattern), text))
        << "pattern " << pattern << "\ntext '" << text << "'";
  }
}

TEST(PreTokenizer, Gpt2MatcherEqualsTheRegex) { expect_same_as_oracle(kGpt2, 3000); }
TEST(PreTokenizer, Llama3MatcherEqualsTheRegex) { expect_same_as_oracle(kLlama3, 3000); }
// Category-collapsed regexes (no hand-written matcher): same as UCP matching.
TEST(PreTokenizer, CollapsedRegexEqualsUcpRegex) {
  expect_same_as_oracle(kQwen2, 2000);
  expect_same_as_oracle("\\s?\\p{L}+", 1000);
  expect_same_as_oracle("\\s?\\p{P}+", 1000);
  expect_same_as_oracle("\\p{N}{1,3}", 1000);
  expect_same_as_oracle("[\\p{L}\\p{M}]+| ?[\\p{P}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+", 1000);
}
// Patterns without categories run on code points, where the reference first
// replaces non-ASCII white space by \v (so \s, which is ASCII-only there,
// still sees it); the oracle gets the same substitution.
std::string nonascii_space_to_vt(const std::string& text) {
  std::string out;
  for (uint32_t cp : decode_utf8(text)) append_utf8(out, cp > 0x7F && (cp_flags(cp) & kCpWhitespace) ? 0x0B : cp);
  return out;
}

TEST(PreTokenizer, CodepointRegexEqualsUtf8Regex) {
  for (std::string_view pattern :
       {"[\\x{4E00}-\\x{9FA5}\\x{800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+",
        " ?[^(\\s|.,!?\\x{2026}\\x{3002}\\x{FF0C}\\x{3001}\\x{964}\\x{6D4}\\x{60C})]+"}) {
    std::mt19937 rng(99);
    for (int i = 0; i < 1000; ++i) {
      const std::string text = random_text(rng, 1 + i % 40);
      ASSERT_EQ(our_split({std::string(pattern)}, text), oracle_split(std::string(pattern), nonascii_space_to_vt(text)))
          << pattern << "\ntext '" << text << "'";
    }
  }
  // U+3000 lies in U+0800..U+4E00 but is white space: not matched.
  EXPECT_EQ(our_split({"[\\x{800}-\\x{4E00}]+"}, "\u4e00\u3000\u4e00"), (std::vector<uint32_t>{1, 1, 1}));
}

// Where the reference's collapse differs from real Unicode matching, we follow
// the reference: ASCII '~' is not in \p{S} (its class lists $+<=>^`| only).
TEST(PreTokenizer, CollapsedSymbolClassLacksTildeLikeTheReference) {
  EXPECT_EQ(our_split({"\\p{S}+"}, "a~$+b"), (std::vector<uint32_t>{2, 2, 1}));
  EXPECT_EQ(oracle_split("\\p{S}+", "a~$+b"), (std::vector<uint32_t>{1, 3, 1}));
}

TEST(PreTokenizer, SequentialRegexesSplitThePiecesOfThePrevious) {
  // deepseek-coder: newlines alone, then letters with one leading space, then
  // punctuation runs, then CJK runs, then single digits.
  auto p = find_bpe_preset("deepseek-coder");
  ASSERT_TRUE(p.has_value());
  // "x = foo(12)\n" -> "x", " =", " foo", "(", "1", "2", ")", "\n": '=' is a
  // symbol (not \p{P}), so " =" stays one gap piece.
  EXPECT_EQ(our_split(p->regexes, "x = foo(12)\n"), (std::vector<uint32_t>{1, 2, 4, 1, 1, 1, 1, 1}));
}

TEST(PreTokenizer, EveryPresetCompilesAndCoversTheText) {
  const std::string text = "Hello, y'all! How are you \U0001F601 ?\u6211\u60f3\u5728apple\u5de5\u4f5c1314151\u5929\uff5e "
                           "------======= \u043d\u0435\u0449\u043e  3.3 3..3\t\n\n  x = 42\r\n";
  const size_t n_cps = decode_utf8(text).size();
  for (std::string_view name : supported_bpe_presets()) {
    auto p = find_bpe_preset(name);
    ASSERT_TRUE(p.has_value()) << name;
    auto pt = PreTokenizer::create(p->regexes);
    ASSERT_TRUE(pt.has_value()) << name << ": " << pt.error().message;
    std::vector<uint32_t> lengths;
    pt->split(decode_utf8(text), lengths);
    size_t sum = 0;
    for (uint32_t l : lengths) {
      EXPECT_GT(l, 0u) << name;
      sum += l;
    }
    EXPECT_EQ(sum, n_cps) << name;
  }
}

TEST(PreTokenizer, UnknownPresetIsAClearError) {
  auto p = find_bpe_preset("no-such-pre");
  ASSERT_FALSE(p.has_value());
  EXPECT_NE(p.error().message.find("no-such-pre"), std::string::npos);
  EXPECT_NE(p.error().message.find("deepseek-coder"), std::string::npos);  // lists what is supported
  // A missing pre is the reference's fallback, "default".
  auto d = find_bpe_preset("");
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->name, "default");
}

TEST(Unicode, CategoriesFromPcre2) {
  EXPECT_EQ(cp_flags('a') & kCpCategoryMask, kCpLetter);
  EXPECT_EQ(cp_flags(0x4E2D) & kCpCategoryMask, kCpLetter);  // CJK
  EXPECT_EQ(cp_flags('7') & kCpCategoryMask, kCpNumber);
  EXPECT_EQ(cp_flags(0x2167) & kCpCategoryMask, kCpNumber);  // Roman numeral eight (Nl)
  EXPECT_EQ(cp_flags(0x0301) & kCpCategoryMask, kCpMark);
  EXPECT_EQ(cp_flags('!') & kCpCategoryMask, kCpPunctuation);
  EXPECT_EQ(cp_flags('~') & kCpCategoryMask, kCpSymbol);
  EXPECT_EQ(cp_flags(0x1F600) & kCpCategoryMask, kCpSymbol);
  EXPECT_EQ(cp_flags(0x00A0), kCpSeparator | kCpWhitespace);
  EXPECT_EQ(cp_flags('\n'), kCpControl | kCpWhitespace);
  EXPECT_EQ(cp_flags(0x0085) & kCpWhitespace, kCpWhitespace);
  EXPECT_EQ(cp_flags(0x200B) & kCpCategoryMask, kCpControl);  // Cf
  EXPECT_EQ(cp_flags(0xD800) & kCpCategoryMask, kCpControl);  // Cs
  EXPECT_EQ(cp_flags(0x0378), kCpUndefined);                  // unassigned
  EXPECT_EQ(cp_flags(0x110000), kCpUndefined);
  EXPECT_EQ(cp_flags(0x1C) & kCpWhitespace, 0);  // not White_Space, although Python's isspace says so
}

TEST(Unicode, DecodeLikeTheReference) {
  // Bad bytes become U+FFFD one at a time; overlongs and surrogates decode.
  EXPECT_EQ(decode_utf8("a\xff" "b"), (std::vector<uint32_t>{'a', 0xFFFD, 'b'}));
  EXPECT_EQ(decode_utf8("\xc3"), (std::vector<uint32_t>{0xFFFD}));
  EXPECT_EQ(decode_utf8("\xe2\x82"), (std::vector<uint32_t>{0xFFFD, 0xFFFD}));
  EXPECT_EQ(decode_utf8("\xc0\x80"), (std::vector<uint32_t>{0}));
  EXPECT_EQ(decode_utf8("\xed\xa0\x80"), (std::vector<uint32_t>{0xD800}));
  EXPECT_EQ(decode_utf8("\xf0\x9f\x98\x80"), (std::vector<uint32_t>{0x1F600}));
}

TEST(Unicode, Gpt2ByteMap) {
  EXPECT_EQ(byte_to_unicode('a'), "a");
  EXPECT_EQ(byte_to_unicode(' '), "\u0120");  // Ġ
  EXPECT_EQ(byte_to_unicode('\n'), "\u010a");  // Ċ
  for (int b = 0; b < 256; ++b) {
    const auto cps = decode_utf8(byte_to_unicode(uint8_t(b)));
    ASSERT_EQ(cps.size(), 1u);
    EXPECT_EQ(unicode_to_byte(cps[0]), b);
  }
  EXPECT_EQ(unicode_to_byte(0x4E2D), -1);
}

}  // namespace
}  // namespace codey::tok
