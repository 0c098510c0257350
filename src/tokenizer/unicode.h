// Unicode facts the tokenizers need: UTF-8 decoding with the reference's
// error handling, per-code-point category flags (from PCRE2's Unicode
// database), and GPT-2's byte <-> printable-character mapping.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace codey::tok {

inline constexpr uint32_t kReplacementChar = 0xFFFD;
inline constexpr uint32_t kMaxCodepoint = 0x10FFFF;

// Category flags of one code point: exactly one category bit (General
// Category major class; unassigned = kUndefined) plus kWhitespace
// (the Unicode White_Space property).
enum CpFlag : uint16_t {
  kCpUndefined = 1u << 0,    // Cn
  kCpNumber = 1u << 1,       // \p{N}
  kCpLetter = 1u << 2,       // \p{L}
  kCpSeparator = 1u << 3,    // \p{Z}
  kCpMark = 1u << 4,         // \p{M}
  kCpPunctuation = 1u << 5,  // \p{P}
  kCpSymbol = 1u << 6,       // \p{S}
  kCpControl = 1u << 7,      // Cc, Cf, Co, Cs
  kCpCategoryMask = 0xFF,
  kCpWhitespace = 1u << 8,
};

// Flags of `cp`; code points above U+10FFFF are kCpUndefined. Thread-safe;
// tables are filled lazily, 256 code points at a time.
uint16_t cp_flags(uint32_t cp);

// Length of a UTF-8 sequence from its first byte, as the reference computes
// it (no validation: continuation bytes count as 1).
inline size_t utf8_len(uint8_t lead) {
  static constexpr uint8_t kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLen[lead >> 4];
}

// Decodes UTF-8 exactly like the reference: structurally bad bytes become
// U+FFFD one byte at a time; overlong forms and surrogates are accepted
// (and come back canonical when re-encoded).
std::vector<uint32_t> decode_utf8(std::string_view text);
void decode_utf8(std::string_view text, std::vector<uint32_t>& out);  // replaces out's contents
// Appends the UTF-8 of `cp`; values above U+10FFFF are written as U+FFFD.
void append_utf8(std::string& out, uint32_t cp);

// Strict validation (RFC 3629: no overlongs, no surrogates, <= U+10FFFF).
// Returns the length of the valid prefix; at `*bad` the byte count of the
// first invalid sequence (>= 1), or 0 if the rest is only an incomplete but
// so-far valid character.
size_t utf8_valid_prefix(std::string_view bytes, size_t* bad);

// GPT-2 byte-level BPE: every byte is written as one printable character.
// The UTF-8 of the character that stands for `byte`.
std::string_view byte_to_unicode(uint8_t byte);
// The byte a character (code point) stands for, or -1.
int unicode_to_byte(uint32_t cp);

}  // namespace codey::tok
