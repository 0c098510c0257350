// BPE pre-tokenizers (see pretokenizer.h). Mirrors the reference's
// unicode_regex_split: hand-written matchers for the GPT-2 and Llama-3
// patterns, and for every other pattern a regex run over a "collapsed" text
// in which each non-ASCII code point is replaced by one byte standing for its
// category (so \p{L} etc. become byte classes), or - for patterns without
// categories - over the code points themselves. PCRE2 does the matching.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/pretokenizer.h"

#include <fmt/ranges.h>
#include <pcre2.h>

#include <algorithm>
#include <array>

#include "tokenizer/unicode.h"

namespace codey::tok {
namespace {

// ---- The regex lists, by pre-tokenizer (facts from the reference) ----------

constexpr std::string_view kGpt2Re =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
constexpr std::string_view kLlama3Re =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr std::string_view kLlama3ReCaseless =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr std::string_view kQwen2Re =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr std::string_view kQwen35Re =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| "
    "?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
// The cased letters of the reference's list, written as escapes so that no
// editor or normalizer can fold the compatibility characters (U+212A, U+2126...).
constexpr std::string_view kDeepseekLlmLetters =
    "\\s?["
    "A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}\\x{1BC}-\\x{1BF}\\x{1C4}-\\x{293}"
    "\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}-\\x{37D}\\x{37F}\\x{386}"
    "\\x{388}-\\x{38A}\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}\\x{3F7}-\\x{481}\\x{48A}-\\x{52F}"
    "\\x{531}-\\x{556}\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}\\x{13F8}-\\x{13FD}\\x{1C90}-\\x{1CBA}"
    "\\x{1CBD}-\\x{1CBF}\\x{1D00}-\\x{1D2B}\\x{1D6B}-\\x{1D77}\\x{1D79}-\\x{1D9A}\\x{1E00}-\\x{1F15}"
    "\\x{1F18}-\\x{1F1D}\\x{1F20}-\\x{1F45}\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}\\x{1F59}\\x{1F5B}"
    "\\x{1F5D}\\x{1F5F}-\\x{1F7D}\\x{1F80}-\\x{1FB4}\\x{1FB6}-\\x{1FBC}\\x{1FBE}\\x{1FC2}-\\x{1FC4}"
    "\\x{1FC6}-\\x{1FCC}\\x{1FD0}-\\x{1FD3}\\x{1FD6}-\\x{1FDB}\\x{1FE0}-\\x{1FEC}\\x{1FF2}-\\x{1FF4}"
    "\\x{1FF6}-\\x{1FFC}\\x{2102}\\x{2107}\\x{210A}-\\x{2113}\\x{2115}\\x{2119}-\\x{211D}\\x{2124}"
    "\\x{2126}\\x{2128}\\x{212A}-\\x{212D}\\x{212F}-\\x{2134}\\x{2139}\\x{213C}-\\x{213F}"
    "\\x{2145}-\\x{2149}\\x{214E}\\x{2183}\\x{2184}\\x{2C00}-\\x{2C7B}\\x{2C7E}-\\x{2CE4}"
    "\\x{2CEB}-\\x{2CEE}\\x{2CF2}\\x{2CF3}\\x{A640}-\\x{A66D}\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}"
    "\\x{A771}-\\x{A787}\\x{A78B}-\\x{A78E}\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}\\x{FB13}-\\x{FB17}"
    "\\x{FF21}-\\x{FF3A}\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}\\x{104B0}-\\x{104D3}"
    "\\x{104D8}-\\x{104FB}\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}\\x{118A0}-\\x{118DF}"
    "\\x{1E900}-\\x{1E943}"
    "]+";
constexpr std::string_view kDeepseekV3Main =
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| "
    "?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+";
constexpr std::string_view kTekkenRe =
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-"
    "z]))+((?=[\\p{L}])([^A-Z]))*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr std::string_view kGpt4oRe =
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'["
    "lL][lL]|'[dD])?|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'["
    "vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr std::string_view kBloomRe = " ?[^(\\s|.,!?\\x{2026}\\x{3002}\\x{FF0C}\\x{3001}\\x{964}\\x{6D4}\\x{60C})]+";

struct PresetFlags {
  bool clean_spaces = true;
  bool ignore_merges = false;
  bool add_bos = false;
  bool no_bos = false;
};

struct PresetDef {
  std::vector<std::string_view> names;  // first is canonical
  std::vector<std::string_view> regexes;
  PresetFlags flags;
};

const std::vector<PresetDef>& preset_defs() {
  static const std::vector<PresetDef> defs = {
      {{"default"},
       {"[\\p{P}\\$\\+<=>\\^~\\|]+", kGpt2Re, "\\p{N}+", "[0-9][0-9][0-9]"}},
      {{"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano"},
       {kLlama3Re}, {.ignore_merges = true, .add_bos = true}},
      {{"dbrx"}, {kLlama3Re}},
      {{"smaug-bpe"}, {kLlama3Re}},
      {{"chatglm-bpe", "glm4"}, {kLlama3Re}, {.no_bos = true}},
      {{"deepseek-llm"},
       {"[\r\n]", kDeepseekLlmLetters, "\\s?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}\\x{3000}-\\x{3002}]+", "\\s+$", "[\\x{4E00}-\\x{9FA5}\\x{800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+", "\\p{N}+"}, {.clean_spaces = false}},
      {{"deepseek-coder"},
       {"[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[\\x{4E00}-\\x{9FA5}\\x{800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+", "\\p{N}"}, {.clean_spaces = false}},
      {{"deepseek-v3", "hunyuan-dense", "joyai-llm", "hy_v4"},
       {"\\p{N}{1,3}", "[\\x{4E00}-\\x{9FA5}\\x{3040}-\\x{309F}\\x{30A0}-\\x{30FF}]+", kDeepseekV3Main}, {.clean_spaces = false}},
      {{"falcon"}, {"[\\p{P}\\$\\+<=>\\^~\\|`]+", kGpt2Re, "[0-9][0-9][0-9]"}},
      {{"starcoder", "refact", "codeshell", "exaone", "minerva-7b", "mellum2"}, {"\\p{N}", kGpt2Re}},
      {{"command-r", "smollm"}, {"\\p{N}", kGpt2Re}, {.clean_spaces = false}},
      {{"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0", "mellum",
        "modern-bert", "mpt", "olmo", "jais", "exaone4"},
       {kGpt2Re}},
      {{"trillion", "granite-docling"}, {kGpt2Re}, {.clean_spaces = false}},
      {{"qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "hunyuan", "solar-open", "grok-2"},
       {kQwen2Re}, {.clean_spaces = false}},
      {{"stablelm2", "megrez"}, {kQwen2Re}},
      {{"qwen35"}, {kQwen35Re}, {.clean_spaces = false}},
      {{"poro-chat"}, {kBloomRe}, {.clean_spaces = false}},
      {{"bloom", "gpt3-finnish"}, {kBloomRe}},
      {{"viking"}, {kBloomRe, "\\p{N}"}, {.clean_spaces = false}},
      {{"tekken"}, {kTekkenRe}, {.clean_spaces = false, .ignore_merges = true, .add_bos = true}},
      {{"chameleon"},
       {"<sentinel:[0-9]+>", "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z", "([\\t\\n]|    |  )", "\\p{N}",
        "[\\p{P}!-/:-@\\[-`{-~]", kGpt2Re}, {.clean_spaces = false, .add_bos = true}},
      {{"gpt-4o", "llama4", "kanana2", "talkie", "minimax-m2"}, {kGpt4oRe}, {.clean_spaces = false}},
      {{"seed-coder"},
       {"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| "
        "?[^\\s\\p{L}\\p{N}\\r\\n]+|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}, {.clean_spaces = false}},
      {{"bailingmoe", "bailingmoe2", "llada-moe"},
       {"'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
        "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+"}, {.clean_spaces = false}},
      {{"ufakzeka"},
       {"[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}, {.clean_spaces = false}},
  };
  return defs;
}

// ---- Category collapse (the reference's representation) --------------------

constexpr uint8_t kCollapsedNumber = 0xD1;
constexpr uint8_t kCollapsedLetter = 0xD2;
constexpr uint8_t kCollapsedPunct = 0xD3;
constexpr uint8_t kCollapsedMark = 0xD4;
constexpr uint8_t kCollapsedSymbol = 0xD5;
constexpr uint8_t kCollapsedOther = 0xD0;
constexpr uint8_t kCollapsedSpace = 0x0B;  // any non-ASCII whitespace

struct CategoryClass {
  std::string_view property;
  uint8_t byte;
  std::string_view ascii_members;  // the ASCII code points of the category, as a class body
};

// The ASCII members are the reference's; note '~' is absent from \p{S}.
constexpr std::array<CategoryClass, 10> kCategoryClasses = {{
    {"\\p{N}", kCollapsedNumber, "0-9"},
    {"\\p{L}", kCollapsedLetter, "A-Za-z"},
    {"\\p{P}", kCollapsedPunct, "!-#%-*,-/:-;?-@\\[-\\]_\\{\\}"},
    {"\\p{M}", kCollapsedMark, ""},
    {"\\p{S}", kCollapsedSymbol, "\\$\\+<->^`\\|"},
    {"\\p{Lu}", kCollapsedLetter, "A-Za-z"},
    {"\\p{Ll}", kCollapsedLetter, "A-Za-z"},
    {"\\p{Lt}", kCollapsedLetter, "A-Za-z"},
    {"\\p{Lm}", kCollapsedLetter, "A-Za-z"},
    {"\\p{Lo}", kCollapsedLetter, "A-Za-z"},
}};

bool uses_categories(std::string_view re) {
  for (const auto& c : kCategoryClasses)
    if (re.find(c.property) != std::string_view::npos) return true;
  return false;
}

// Rewrites \p{X} into a byte class over the collapsed text, tracking [...]
// the same (naive) way the reference does so the result is identical.
std::string collapse_regex(std::string_view re) {
  std::string out;
  bool inside = false;
  for (size_t i = 0; i < re.size(); ++i) {
    if (re[i] == '[' && (i == 0 || re[i - 1] != '\\')) {
      out += '[';
      inside = true;
      continue;
    }
    if (inside && re[i] == ']' && re[i - 1] != '\\') {
      out += ']';
      inside = false;
      continue;
    }
    if (re[i] == '\\' && i + 3 < re.size() && re[i + 1] == 'p' && re[i + 2] == '{') {
      size_t close = re.find('}', i + 3);
      if (close != std::string_view::npos && close <= i + 10) {
        std::string_view prop = re.substr(i, close - i + 1);
        const CategoryClass* cls = nullptr;
        for (const auto& c : kCategoryClasses)
          if (c.property == prop) cls = &c;
        if (cls) {
          if (!inside) out += '[';
          out += char(cls->byte);
          out += cls->ascii_members;
          if (!inside) out += ']';
          i = close;
          continue;
        }
      }
    }
    out += re[i];
  }
  return out;
}

uint8_t collapse_cp(uint32_t cp) {
  if (cp < 128) return uint8_t(cp);
  const uint16_t f = cp_flags(cp);
  if (f & kCpWhitespace) return kCollapsedSpace;
  switch (f & kCpCategoryMask) {
    case kCpNumber: return kCollapsedNumber;
    case kCpLetter: return kCollapsedLetter;
    case kCpPunctuation: return kCollapsedPunct;
    case kCpMark: return kCollapsedMark;
    case kCpSymbol: return kCollapsedSymbol;
    default: return kCollapsedOther;
  }
}

constexpr uint32_t kOutOfRange = 0xFFFFFFFF;

// Shared state of one split() call.
struct SplitInput {
  std::span<const uint32_t> cps;
  std::string collapsed;            // one byte per code point
  std::string utf8;                 // code points, non-ASCII whitespace as \v, surrogates as U+FFFD
  std::vector<uint32_t> utf8_off;   // byte offset of code point i in utf8 (size n + 1)
  pcre2_match_data* match_data = nullptr;  // one pair: only the whole match is used
};

// A matcher over one fragment [ini, end) that appends piece lengths.
class Pieces {
 public:
  Pieces(std::vector<uint32_t>& out, size_t ini) : out_(out), prev_end_(ini) {}
  // Emits [prev_end, end) if non-empty; returns its length.
  size_t add(size_t end) {
    const size_t len = end - prev_end_;
    if (len > 0) out_.push_back(uint32_t(len));
    prev_end_ = end;
    return len;
  }

 private:
  std::vector<uint32_t>& out_;
  size_t prev_end_;
};

inline bool is_ws(uint16_t f) { return f & kCpWhitespace; }
inline bool is_letter(uint16_t f) { return f & kCpLetter; }
inline bool is_number(uint16_t f) { return f & kCpNumber; }

// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
void split_gpt2(std::span<const uint32_t> cps, size_t ini, size_t end, std::vector<uint32_t>& out) {
  auto cpt_at = [&](size_t p) -> uint32_t { return p < end ? cps[p] : kOutOfRange; };
  auto flags_at = [&](size_t p) -> uint16_t { return p < end ? cp_flags(cps[p]) : 0; };
  Pieces pieces(out, ini);
  for (size_t pos = ini; pos < end;) {
    const uint32_t cpt = cps[pos];
    const uint16_t flags = flags_at(pos);
    if (cpt == '\'' && pos + 1 < end) {
      const uint32_t next = cps[pos + 1];
      if (next == 's' || next == 't' || next == 'm' || next == 'd') {
        pos += pieces.add(pos + 2);
        continue;
      }
      if (pos + 2 < end) {
        const uint32_t next2 = cps[pos + 2];
        if ((next == 'r' && next2 == 'e') || (next == 'v' && next2 == 'e') || (next == 'l' && next2 == 'l')) {
          pos += pieces.add(pos + 3);
          continue;
        }
      }
    }
    uint16_t flags2 = cpt == ' ' ? flags_at(pos + 1) : flags;
    if (is_letter(flags2)) {
      pos += cpt == ' ';
      while (is_letter(flags2)) flags2 = flags_at(++pos);
      pieces.add(pos);
      continue;
    }
    if (is_number(flags2)) {
      pos += cpt == ' ';
      while (is_number(flags2)) flags2 = flags_at(++pos);
      pieces.add(pos);
      continue;
    }
    auto other = [](uint16_t f) { return !(is_ws(f) || is_letter(f) || is_number(f)) && f != 0; };
    if (other(flags2)) {
      pos += cpt == ' ';
      while (other(flags2)) flags2 = flags_at(++pos);
      pieces.add(pos);
      continue;
    }
    size_t n_ws = 0;
    while (is_ws(flags_at(pos + n_ws))) ++n_ws;
    if (n_ws > 1 && cpt_at(pos + n_ws) != kOutOfRange) {  // \s+(?!\S): leave the last one
      pos += n_ws - 1;
      pieces.add(pos);
      continue;
    }
    if (n_ws > 0) {
      pos += n_ws;
      pieces.add(pos);
      continue;
    }
    pieces.add(++pos);
  }
}

inline uint32_t ascii_lower(uint32_t c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
void split_llama3(std::span<const uint32_t> cps, size_t ini, size_t end, std::vector<uint32_t>& out) {
  auto cpt_at = [&](size_t p) -> uint32_t { return p < end ? cps[p] : kOutOfRange; };
  auto flags_at = [&](size_t p) -> uint16_t { return p < end ? cp_flags(cps[p]) : 0; };
  Pieces pieces(out, ini);
  for (size_t pos = ini; pos < end;) {
    const uint32_t cpt = cps[pos];
    const uint16_t flags = flags_at(pos);
    if (cpt == '\'' && pos + 1 < end) {
      // No non-ASCII code point lowercases to one of these letters.
      const uint32_t next = ascii_lower(cps[pos + 1]);
      if (next == 's' || next == 't' || next == 'm' || next == 'd') {
        pos += pieces.add(pos + 2);
        continue;
      }
      if (pos + 2 < end) {
        const uint32_t next2 = ascii_lower(cps[pos + 2]);
        if ((next == 'r' && next2 == 'e') || (next == 'v' && next2 == 'e') || (next == 'l' && next2 == 'l')) {
          pos += pieces.add(pos + 3);
          continue;
        }
      }
    }
    if (!(cpt == '\r' || cpt == '\n' || is_number(flags))) {
      if (is_letter(flags) || is_letter(flags_at(pos + 1))) {
        ++pos;
        while (is_letter(flags_at(pos))) ++pos;
        pieces.add(pos);
        continue;
      }
    }
    if (is_number(flags)) {
      size_t run_start = pos;
      while (is_number(flags_at(pos))) {
        if (++pos - run_start >= 3) {
          pieces.add(pos);
          run_start = pos;
        }
      }
      pieces.add(pos);
      continue;
    }
    uint16_t flags2 = cpt == ' ' ? flags_at(pos + 1) : flags;
    // The reference tests `flags` (not flags2) for "defined" here.
    if (!(is_ws(flags2) || is_letter(flags2) || is_number(flags2)) && flags != 0) {
      pos += cpt == ' ';
      while (!(is_ws(flags2) || is_letter(flags2) || is_number(flags2)) && flags2 != 0) flags2 = flags_at(++pos);
      uint32_t c2 = cpt_at(pos);
      while (c2 == '\r' || c2 == '\n') c2 = cpt_at(++pos);
      pieces.add(pos);
      continue;
    }
    size_t n_ws = 0;
    size_t last_newline_end = 0;
    while (is_ws(flags_at(pos + n_ws))) {
      const uint32_t c2 = cpt_at(pos + n_ws);
      if (c2 == '\r' || c2 == '\n') last_newline_end = pos + n_ws + 1;
      ++n_ws;
    }
    if (last_newline_end > 0) {  // \s*[\r\n]+
      pos = last_newline_end;
      pieces.add(pos);
      continue;
    }
    if (n_ws > 1 && cpt_at(pos + n_ws) != kOutOfRange) {
      pos += n_ws - 1;
      pieces.add(pos);
      continue;
    }
    if (n_ws > 0) {
      pos += n_ws;
      pieces.add(pos);
      continue;
    }
    pieces.add(++pos);
  }
}

}  // namespace

// ---- Stages ----------------------------------------------------------------

struct PreTokenizer::Stage {
  enum class Kind { kGpt2, kLlama3, kCollapsed, kCodepoints };
  Kind kind = Kind::kGpt2;
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Stage() {
    if (code) pcre2_code_free(code);
  }

  // Appends the pieces of fragment [ini, end) (code point indices).
  void run(const SplitInput& in, size_t ini, size_t end, std::vector<uint32_t>& out) const {
    switch (kind) {
      case Kind::kGpt2: return split_gpt2(in.cps, ini, end, out);
      case Kind::kLlama3: return split_llama3(in.cps, ini, end, out);
      case Kind::kCollapsed: return run_regex(in, ini, end, out, /*utf8=*/false);
      case Kind::kCodepoints: return run_regex(in, ini, end, out, /*utf8=*/true);
    }
  }

  int match(const char* subject, size_t len, size_t pos, uint32_t opts, pcre2_match_data* md) const {
    if (jit && opts == 0)  // the JIT entry skips per-call checks; the anchored retry needs the interpreter
      return pcre2_jit_match(code, reinterpret_cast<PCRE2_SPTR>(subject), len, pos, 0, md, nullptr);
    return pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(subject), len, pos, opts | PCRE2_NO_UTF_CHECK, md,
                       nullptr);
  }

  // Like std::regex_iterator over the fragment: every match is a piece and so
  // is every gap between matches; empty matches advance by one character.
  void run_regex(const SplitInput& in, size_t ini, size_t end, std::vector<uint32_t>& out, bool utf8) const {
    const char* subject;
    size_t len;
    if (utf8) {
      subject = in.utf8.data() + in.utf8_off[ini];
      len = in.utf8_off[end] - in.utf8_off[ini];
    } else {
      subject = in.collapsed.data() + ini;
      len = end - ini;
    }
    // Converts a subject offset to a code point count from the fragment start.
    size_t conv_byte = 0, conv_cp = 0;
    auto to_cp = [&](size_t byte) {
      if (!utf8) return byte;
      CODEY_DASSERT(byte >= conv_byte);
      for (; conv_byte < byte; ++conv_byte)
        if ((uint8_t(subject[conv_byte]) & 0xC0) != 0x80) ++conv_cp;
      return conv_cp;
    };
    pcre2_match_data* md = in.match_data;
    size_t start_cp = 0;  // end of the last match, in code points
    size_t pos = 0;       // search start, in subject units
    uint32_t opts = 0;
    while (pos <= len) {
      const int rc = match(subject, len, pos, opts, md);  // rc 0: ovector too small, but matched
      if (rc < 0) {
        if (rc == PCRE2_ERROR_NOMATCH && opts != 0) {  // after an empty match: step one character
          opts = 0;
          ++pos;
          if (utf8)
            while (pos < len && (uint8_t(subject[pos]) & 0xC0) == 0x80) ++pos;
          continue;
        }
        break;  // no more matches (other errors, e.g. match limits, end the fragment likewise)
      }
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
      const size_t m_begin = to_cp(ov[0]);
      const size_t m_end = to_cp(ov[1]);
      if (m_begin > start_cp) out.push_back(uint32_t(m_begin - start_cp));
      if (m_end > m_begin) out.push_back(uint32_t(m_end - m_begin));
      start_cp = m_end;
      pos = ov[1];
      opts = ov[0] == ov[1] ? (PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED) : 0;
    }
    const size_t n = end - ini;
    if (start_cp < n) out.push_back(uint32_t(n - start_cp));
  }
};

PreTokenizer::PreTokenizer() = default;
PreTokenizer::PreTokenizer(PreTokenizer&&) noexcept = default;
PreTokenizer& PreTokenizer::operator=(PreTokenizer&&) noexcept = default;
PreTokenizer::~PreTokenizer() = default;

Result<PreTokenizer> PreTokenizer::create(const std::vector<std::string>& regexes) {
  PreTokenizer pt;
  for (const auto& re : regexes) {
    auto stage = std::make_unique<Stage>();
    if (re == kGpt2Re) {
      stage->kind = Stage::Kind::kGpt2;
    } else if (re == kLlama3Re || re == kLlama3ReCaseless) {
      stage->kind = Stage::Kind::kLlama3;
    } else {
      std::string pattern;
      uint32_t options = PCRE2_DOLLAR_ENDONLY;  // ECMAScript '$': end of input only
      if (uses_categories(re)) {
        for (unsigned char c : re)
          if (c >= 0x80)
            return make_error(ErrorCode::kUnsupported,
                              "pre-tokenizer regex mixes unicode categories and non-ASCII characters: {}", re);
        stage->kind = Stage::Kind::kCollapsed;
        pattern = collapse_regex(re);
        pt.need_collapsed_ = true;
      } else {
        stage->kind = Stage::Kind::kCodepoints;
        pattern = re;
        options |= PCRE2_UTF;
        pt.need_utf8_ = true;
      }
      int err = 0;
      PCRE2_SIZE err_off = 0;
      stage->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), options, &err,
                                  &err_off, nullptr);
      if (!stage->code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof(msg));
        return make_error(ErrorCode::kUnsupported, "pre-tokenizer regex '{}' does not compile at offset {}: {}", re,
                          err_off, reinterpret_cast<const char*>(msg));
      }
      // Best effort: without JIT the interpreter gives the same results, slower.
      stage->jit = pcre2_jit_compile(stage->code, PCRE2_JIT_COMPLETE) == 0;
    }
    pt.stages_.push_back(std::move(stage));
  }
  return pt;
}

void PreTokenizer::split(std::span<const uint32_t> cps, std::vector<uint32_t>& lengths) const {
  const size_t n = cps.size();
  if (n == 0) return;
  // Per-thread buffers keep their capacity across calls: fresh multi-MB
  // allocations for every long text cost more in page faults than the split.
  thread_local SplitInput in;
  thread_local std::vector<uint32_t> current, next;
  in.cps = cps;
  if (need_collapsed_) {
    in.collapsed.resize(n);
    for (size_t i = 0; i < n; ++i) in.collapsed[i] = char(collapse_cp(cps[i]));
  }
  if (need_utf8_) {
    in.utf8.clear();
    in.utf8.reserve(n);
    in.utf8_off.resize(n + 1);
    for (size_t i = 0; i < n; ++i) {
      in.utf8_off[i] = uint32_t(in.utf8.size());
      uint32_t cp = cps[i];
      if (cp > 0x7F && (cp_flags(cp) & kCpWhitespace)) cp = 0x0B;
      else if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > kMaxCodepoint) cp = kReplacementChar;
      append_utf8(in.utf8, cp);
    }
    in.utf8_off[n] = uint32_t(in.utf8.size());
  }
  struct MatchDataFree {
    void operator()(pcre2_match_data* md) const { pcre2_match_data_free(md); }
  };
  std::unique_ptr<pcre2_match_data, MatchDataFree> md;
  if (need_collapsed_ || need_utf8_) {
    md.reset(pcre2_match_data_create(1, nullptr));
    CODEY_ASSERT(md != nullptr);
    in.match_data = md.get();
  }
  current.assign(1, uint32_t(n));
  for (const auto& stage : stages_) {
    next.clear();
    next.reserve(current.size() * 2);
    size_t start = 0;
    for (uint32_t len : current) {
      stage->run(in, start, start + len, next);
      start += len;
    }
    std::swap(current, next);
  }
  lengths.insert(lengths.end(), current.begin(), current.end());
  in.match_data = nullptr;
  in.cps = {};
}

Result<BpePreset> find_bpe_preset(std::string_view pre) {
  const std::string_view key = pre.empty() ? std::string_view("default") : pre;
  for (const auto& def : preset_defs()) {
    if (std::find(def.names.begin(), def.names.end(), key) == def.names.end()) continue;
    BpePreset p;
    p.name = std::string(def.names.front() == "default" ? "default" : key);
    for (auto re : def.regexes) p.regexes.emplace_back(re);
    p.clean_spaces = def.flags.clean_spaces;
    p.ignore_merges = def.flags.ignore_merges;
    p.add_bos = def.flags.add_bos;
    p.no_bos = def.flags.no_bos;
    return p;
  }
  return make_error(ErrorCode::kUnsupported,
                    "unknown or unsupported pre-tokenizer '{}' (tokenizer.ggml.pre); supported: {}", pre,
                    fmt::join(supported_bpe_presets(), ", "));
}

std::vector<std::string_view> supported_bpe_presets() {
  std::vector<std::string_view> names;
  for (const auto& def : preset_defs()) names.insert(names.end(), def.names.begin(), def.names.end());
  return names;
}

}  // namespace codey::tok
