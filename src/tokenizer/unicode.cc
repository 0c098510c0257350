// Unicode facts for the tokenizers (see unicode.h). Categories come from
// PCRE2's Unicode database (UTF + UCP), derived lazily per 256 code points.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/unicode.h"

#include <pcre2.h>

#include <array>
#include <atomic>
#include <memory>
#include <mutex>

#include "codey/base.h"

namespace codey::tok {
namespace {

constexpr uint32_t kNumPages = (kMaxCodepoint + 1) >> 8;

// The White_Space property (PropList.txt): stable since Unicode 6.3.
bool is_white_space(uint32_t cp) {
  if (cp >= 0x09 && cp <= 0x0D) return true;
  if (cp >= 0x2000 && cp <= 0x200A) return true;
  switch (cp) {
    case 0x20: case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029:
    case 0x202F: case 0x205F: case 0x3000:
      return true;
    default:
      return false;
  }
}

// One compiled pattern whose capture group number tells the category.
class CategoryClassifier {
 public:
  CategoryClassifier() {
    static constexpr std::string_view kPattern =
        "(\\p{L})|(\\p{N})|(\\p{Z})|(\\p{M})|(\\p{P})|(\\p{S})|(\\p{Cc}|\\p{Cf}|\\p{Co})";
    int err = 0;
    PCRE2_SIZE err_off = 0;
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(kPattern.data()), kPattern.size(),
                          PCRE2_UTF | PCRE2_UCP | PCRE2_ANCHORED, &err, &err_off, nullptr);
    CODEY_ASSERT(code_ != nullptr);
    pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE);  // best effort; the interpreter works too
  }
  ~CategoryClassifier() { pcre2_code_free(code_); }

  // Fills flags for code points [base, base + 256).
  void classify_page(uint32_t base, uint16_t* out) const {
    static constexpr uint16_t kByGroup[] = {kCpUndefined, kCpLetter,      kCpNumber, kCpSeparator,
                                            kCpMark,      kCpPunctuation, kCpSymbol, kCpControl};
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(code_, nullptr);
    std::string utf8;
    for (uint32_t i = 0; i < 256; ++i) {
      const uint32_t cp = base + i;
      uint16_t flags = kCpUndefined;
      if (cp >= 0xD800 && cp <= 0xDFFF) {
        flags = kCpControl;  // Cs; not encodable in valid UTF-8, so not asked of PCRE2
      } else {
        utf8.clear();
        append_utf8(utf8, cp);
        int rc = pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(utf8.data()), utf8.size(), 0,
                             PCRE2_NO_UTF_CHECK, md, nullptr);
        if (rc > 1) flags = kByGroup[rc - 1];  // rc-1 = highest group set = the only one set
      }
      if (is_white_space(cp)) flags |= kCpWhitespace;
      out[i] = flags;
    }
    pcre2_match_data_free(md);
  }

 private:
  pcre2_code* code_ = nullptr;
};

const CategoryClassifier& classifier() {
  static const CategoryClassifier instance;
  return instance;
}

// Pages are published once with release/acquire and never freed.
std::array<std::atomic<const uint16_t*>, kNumPages>& pages() {
  static std::array<std::atomic<const uint16_t*>, kNumPages> table{};
  return table;
}

const uint16_t* load_page(uint32_t page) {
  auto& slot = pages()[page];
  const uint16_t* p = slot.load(std::memory_order_acquire);
  if (p) return p;
  auto fresh = std::make_unique<uint16_t[]>(256);
  classifier().classify_page(page << 8, fresh.get());
  const uint16_t* expected = nullptr;
  if (slot.compare_exchange_strong(expected, fresh.get(), std::memory_order_acq_rel)) return fresh.release();
  return expected;  // another thread won; ours is discarded
}

// GPT-2's map: printable bytes stand for themselves, the other 68 bytes for
// U+0100.. in byte order. Built at compile time (it is on the hot path).
struct ByteMap {
  std::array<std::array<char, 2>, 256> utf8{};  // 1 or 2 bytes
  std::array<uint8_t, 256> len{};
  std::array<int16_t, 0x144> from_cp{};  // every mapped code point is < 0x144
};

constexpr ByteMap make_byte_map() {
  ByteMap m;
  for (auto& v : m.from_cp) v = -1;
  uint32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    const uint32_t cp = printable ? uint32_t(b) : next++;
    if (cp < 0x80) {
      m.utf8[b] = {char(cp), 0};
      m.len[b] = 1;
    } else {
      m.utf8[b] = {char(0xC0 | (cp >> 6)), char(0x80 | (cp & 0x3F))};
      m.len[b] = 2;
    }
    m.from_cp[cp] = int16_t(b);
  }
  return m;
}

constexpr ByteMap kByteMap = make_byte_map();

}  // namespace

uint16_t cp_flags(uint32_t cp) {
  if (cp > kMaxCodepoint) return kCpUndefined;
  return load_page(cp >> 8)[cp & 0xFF];
}

std::vector<uint32_t> decode_utf8(std::string_view s) {
  std::vector<uint32_t> out;
  decode_utf8(s, out);
  return out;
}

void decode_utf8(std::string_view s, std::vector<uint32_t>& out) {
  out.clear();
  out.reserve(s.size());
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  auto cont = [&](size_t k) { return (p[k] & 0xC0) == 0x80; };
  while (i < n) {
    const uint8_t b0 = p[i];
    if (b0 < 0x80) {
      out.push_back(b0);
      i += 1;
    } else if (!(b0 & 0x40)) {
      out.push_back(kReplacementChar);
      i += 1;
    } else if (!(b0 & 0x20)) {
      if (i + 1 < n && cont(i + 1)) {
        out.push_back((uint32_t(b0 & 0x1F) << 6) | (p[i + 1] & 0x3F));
        i += 2;
      } else {
        out.push_back(kReplacementChar);
        i += 1;
      }
    } else if (!(b0 & 0x10)) {
      if (i + 2 < n && cont(i + 1) && cont(i + 2)) {
        out.push_back((uint32_t(b0 & 0x0F) << 12) | (uint32_t(p[i + 1] & 0x3F) << 6) | (p[i + 2] & 0x3F));
        i += 3;
      } else {
        out.push_back(kReplacementChar);
        i += 1;
      }
    } else if (!(b0 & 0x08)) {
      if (i + 3 < n && cont(i + 1) && cont(i + 2) && cont(i + 3)) {
        out.push_back((uint32_t(b0 & 0x07) << 18) | (uint32_t(p[i + 1] & 0x3F) << 12) |
                      (uint32_t(p[i + 2] & 0x3F) << 6) | (p[i + 3] & 0x3F));
        i += 4;
      } else {
        out.push_back(kReplacementChar);
        i += 1;
      }
    } else {
      out.push_back(kReplacementChar);
      i += 1;
    }
  }
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp <= 0x7F) {
    out.push_back(char(cp));
  } else if (cp <= 0x7FF) {
    out.push_back(char(0xC0 | (cp >> 6)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  } else if (cp <= 0xFFFF) {
    out.push_back(char(0xE0 | (cp >> 12)));
    out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  } else if (cp <= kMaxCodepoint) {
    out.push_back(char(0xF0 | (cp >> 18)));
    out.push_back(char(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  } else {
    append_utf8(out, kReplacementChar);
  }
}

size_t utf8_valid_prefix(std::string_view s, size_t* bad) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  *bad = 0;
  while (i < n) {
    const uint8_t b0 = p[i];
    if (b0 < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (b0 >= 0xC2 && b0 <= 0xDF) {
      len = 2;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      len = 3;
      if (b0 == 0xE0) lo = 0xA0;       // no overlongs
      else if (b0 == 0xED) hi = 0x9F;  // no surrogates
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      len = 4;
      if (b0 == 0xF0) lo = 0x90;
      else if (b0 == 0xF4) hi = 0x8F;  // <= U+10FFFF
    } else {
      *bad = 1;
      return i;
    }
    for (size_t k = 1; k < len; ++k) {
      if (i + k >= n) return i;  // incomplete but valid so far
      const uint8_t b = p[i + k];
      const bool ok = k == 1 ? (b >= lo && b <= hi) : (b & 0xC0) == 0x80;
      if (!ok) {
        *bad = k;  // the lead and the continuation bytes before the bad one
        return i;
      }
    }
    i += len;
  }
  return i;
}

std::string_view byte_to_unicode(uint8_t byte) { return {kByteMap.utf8[byte].data(), kByteMap.len[byte]}; }

int unicode_to_byte(uint32_t cp) { return cp < kByteMap.from_cp.size() ? kByteMap.from_cp[cp] : -1; }

}  // namespace codey::tok
