// Jinja lexer (see lexer.h). Mirrors jinja2/lexer.py: the same newline
// normalization, strip rules, end-of-tag handling and literal decoding.
#include "chat/lexer.h"

#include <cerrno>
#include <cstdlib>

#include <fmt/core.h>

#include "chat/utf8.h"
#include "chat/value.h"

namespace codey::jinja {
namespace {

[[noreturn]] void syntax_error(std::string message, int line) {
  JinjaError e("TemplateSyntaxError", std::move(message));
  e.line = line;
  throw e;
}

// \r\n and \r become \n; one trailing newline goes unless kept (Jinja 3).
std::string normalize_newlines(std::string_view src, bool keep_trailing_newline) {
  std::string out;
  out.reserve(src.size());
  for (size_t i = 0; i < src.size(); ++i) {
    if (src[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < src.size() && src[i + 1] == '\n') ++i;
    } else {
      out.push_back(src[i]);
    }
  }
  if (!keep_trailing_newline && !out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

bool is_ascii_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// Length of the whitespace run (Python \s, Unicode-aware) starting at pos.
size_t whitespace_run(std::string_view s, size_t pos) {
  size_t i = pos;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if (!is_ascii_space(static_cast<char>(c)) && !(c >= 0x1c && c <= 0x1f)) break;
      ++i;
      continue;
    }
    // Decode one multi-byte code point.
    size_t len = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
    if (i + len > s.size()) break;
    std::u32string cp = decode_utf8(s.substr(i, len));
    if (cp.size() != 1 || !py_isspace(cp[0])) break;
    i += len;
  }
  return i - pos;
}

// Python str.rstrip() with no arguments.
std::string_view rstrip_ws(std::string_view s) {
  if (is_ascii(s)) {
    size_t end = s.size();
    while (end > 0 && (is_ascii_space(s[end - 1]) || (s[end - 1] >= 0x1c && s[end - 1] <= 0x1f))) --end;
    return s.substr(0, end);
  }
  std::u32string cps = decode_utf8(s);
  size_t n = cps.size();
  size_t bytes = s.size();
  while (n > 0 && py_isspace(cps[n - 1])) {
    std::string one;
    append_utf8(one, cps[n - 1]);
    bytes -= one.size();
    --n;
  }
  return s.substr(0, bytes);
}

int count_newlines(std::string_view s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

bool is_name_start(unsigned char c) { return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80; }
bool is_name_char(unsigned char c) { return is_name_start(c) || (c >= '0' && c <= '9'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Python's "unicode-escape" decoding of a string literal body (Jinja decodes
// literals with it after escaping non-ASCII, so non-ASCII text passes as is).
std::string decode_string_literal(std::string_view body, int line) {
  std::string out;
  out.reserve(body.size());
  char32_t pending_high = 0;  // a \uD83D waiting for its low surrogate
  auto put = [&](char32_t cp) {
    if (pending_high) {
      if (cp >= 0xDC00 && cp <= 0xDFFF) {
        append_utf8(out, 0x10000 + ((pending_high - 0xD800) << 10) + (cp - 0xDC00));
        pending_high = 0;
        return;
      }
      append_utf8(out, 0xFFFD);
      pending_high = 0;
    }
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      pending_high = cp;
      return;
    }
    if (cp >= 0xDC00 && cp <= 0xDFFF) cp = 0xFFFD;
    append_utf8(out, cp);
  };
  auto flush = [&] {
    if (pending_high) append_utf8(out, 0xFFFD);
    pending_high = 0;
  };
  for (size_t i = 0; i < body.size(); ++i) {
    char c = body[i];
    if (c != '\\' || i + 1 >= body.size()) {
      flush();
      out.push_back(c);
      continue;
    }
    char e = body[++i];
    switch (e) {
      case '\n': break;  // line continuation
      case '\\': flush(); out.push_back('\\'); break;
      case '\'': flush(); out.push_back('\''); break;
      case '"': flush(); out.push_back('"'); break;
      case 'a': flush(); out.push_back('\a'); break;
      case 'b': flush(); out.push_back('\b'); break;
      case 'f': flush(); out.push_back('\f'); break;
      case 'n': flush(); out.push_back('\n'); break;
      case 'r': flush(); out.push_back('\r'); break;
      case 't': flush(); out.push_back('\t'); break;
      case 'v': flush(); out.push_back('\v'); break;
      case 'x':
      case 'u':
      case 'U': {
        int digits = e == 'x' ? 2 : e == 'u' ? 4 : 8;
        char32_t cp = 0;
        for (int k = 0; k < digits; ++k) {
          int h = i + 1 + k < body.size() ? hex_value(body[i + 1 + k]) : -1;
          if (h < 0) {
            syntax_error(fmt::format("truncated \\{}{} escape", e, std::string(digits, 'X')), line);
          }
          cp = cp * 16 + static_cast<char32_t>(h);
        }
        i += digits;
        if (cp > 0x10FFFF) syntax_error("illegal Unicode character", line);
        put(cp);
        break;
      }
      case 'N': syntax_error("\\N{...} escapes are not supported in codey's Jinja", line);
      default:
        if (e >= '0' && e <= '7') {
          char32_t cp = static_cast<char32_t>(e - '0');
          for (int k = 0; k < 2 && i + 1 < body.size() && body[i + 1] >= '0' && body[i + 1] <= '7'; ++k)
            cp = cp * 8 + static_cast<char32_t>(body[++i] - '0');
          put(cp);
        } else {
          flush();
          out.push_back('\\');
          out.push_back(e);
        }
    }
  }
  flush();
  return out;
}

class Lexer {
 public:
  Lexer(std::string source, const LexerOptions& options) : src_(std::move(source)), opt_(options) {}

  std::vector<Token> run() {
    const size_t n = src_.size();
    while (pos_ < n) {
      size_t start = find_tag_start(pos_);
      if (start == std::string::npos) {
        emit_data(std::string_view(src_).substr(pos_), line_);
        line_ += count_newlines(std::string_view(src_).substr(pos_));
        pos_ = n;
        break;
      }
      char kind = src_[start + 1];
      size_t p = start + 2;
      char sign = 0;
      if (p < n && (src_[p] == '-' || src_[p] == '+')) sign = src_[p++];
      size_t raw_end = kind == '%' ? match_raw_begin(p) : std::string::npos;

      std::string_view text = std::string_view(src_).substr(pos_, start - pos_);
      int text_line = line_;
      line_ += count_newlines(text);
      emit_data(strip_before_tag(text, sign, kind != '{'), text_line);

      pos_ = start;
      if (raw_end != std::string::npos) {
        advance_to(raw_end);
        lex_raw_body();
      } else if (kind == '#') {
        lex_comment(p);
      } else {
        lex_tag(kind, p);
      }
    }
    Token eof;
    eof.type = TokenType::kEof;
    eof.line = line_;
    tokens_.push_back(std::move(eof));
    return std::move(tokens_);
  }

 private:
  size_t find_tag_start(size_t from) const {
    for (size_t i = src_.find('{', from); i != std::string::npos; i = src_.find('{', i + 1)) {
      if (i + 1 < src_.size() && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
    }
    return std::string::npos;
  }

  // `{% raw %}` (p is past "{%" and the sign): end of the tag, or npos.
  size_t match_raw_begin(size_t p) const {
    p += whitespace_run(src_, p);
    if (src_.compare(p, 3, "raw") != 0) return std::string::npos;
    p += 3;
    p += whitespace_run(src_, p);
    if (src_.compare(p, 3, "-%}") == 0) {
      p += 3;
      return p + whitespace_run(src_, p);
    }
    if (src_.compare(p, 2, "%}") == 0) return p + 2;
    return std::string::npos;
  }

  // Text before a tag: "-" strips all trailing whitespace; otherwise
  // lstrip_blocks removes spaces/tabs between the line start and a block or
  // comment tag ("+" opts out).
  std::string_view strip_before_tag(std::string_view text, char sign, bool lstrip_applies) const {
    if (sign == '-') return rstrip_ws(text);
    if (sign != '+' && opt_.lstrip_blocks && lstrip_applies) {
      size_t nl = text.rfind('\n');
      size_t l_pos = nl == std::string_view::npos ? 0 : nl + 1;
      if (l_pos > 0 || line_starting_) {
        bool only_blank = true;
        for (size_t i = l_pos; i < text.size(); ++i)
          if (text[i] != ' ' && text[i] != '\t') only_blank = false;
        if (only_blank) return text.substr(0, l_pos);
      }
    }
    return text;
  }

  void emit_data(std::string_view text, int line) {
    if (text.empty()) return;
    Token t;
    t.type = TokenType::kData;
    t.value = std::string(text);
    t.line = line;
    tokens_.push_back(std::move(t));
  }

  void emit(TokenType type, std::string value = {}) {
    Token t;
    t.type = type;
    t.value = std::move(value);
    t.line = line_;
    tokens_.push_back(std::move(t));
  }

  // After a block/comment end: "-" eats all whitespace, "+" keeps the
  // newline, plain ends drop one newline when trim_blocks.
  size_t after_block_end(size_t end, char end_sign) const {
    if (end_sign == '-') return end + whitespace_run(src_, end);
    if (end_sign == '+') return end;
    if (opt_.trim_blocks && end < src_.size() && src_[end] == '\n') return end + 1;
    return end;
  }

  void advance_to(size_t new_pos) {
    line_ += count_newlines(std::string_view(src_).substr(pos_, new_pos - pos_));
    line_starting_ = new_pos > 0 && src_[new_pos - 1] == '\n';
    pos_ = new_pos;
  }

  void lex_comment(size_t p) {
    size_t idx = src_.find("#}", p);
    if (idx == std::string::npos) syntax_error("Missing end of comment tag", line_);
    char end_sign = 0;
    if (idx > p && (src_[idx - 1] == '-' || src_[idx - 1] == '+')) end_sign = src_[idx - 1];
    advance_to(after_block_end(idx + 2, end_sign));
  }

  void lex_raw_body() {
    // Find "{%[-+]? endraw [+-]?%}".
    size_t search = pos_;
    while (true) {
      size_t s = src_.find("{%", search);
      if (s == std::string::npos) syntax_error("Missing end of raw directive", line_);
      size_t p = s + 2;
      char sign = 0;
      if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) sign = src_[p++];
      p += whitespace_run(src_, p);
      if (src_.compare(p, 6, "endraw") != 0) {
        search = s + 2;
        continue;
      }
      p += 6;
      p += whitespace_run(src_, p);
      char end_sign = 0;
      if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) end_sign = src_[p++];
      if (src_.compare(p, 2, "%}") != 0) {
        search = s + 2;
        continue;
      }
      std::string_view body = std::string_view(src_).substr(pos_, s - pos_);
      emit_data(strip_before_tag(body, sign, true), line_);
      advance_to(after_block_end(p + 2, end_sign));
      return;
    }
  }

  // Expression tokens up to the matching "}}" or "%}".
  void lex_tag(char kind, size_t p) {
    const bool block = kind == '%';
    emit(block ? TokenType::kBlockBegin : TokenType::kVariableBegin);
    advance_to(p);
    std::vector<char> balance;
    const size_t n = src_.size();
    while (pos_ < n) {
      if (balance.empty()) {
        if (block) {
          if (src_.compare(pos_, 3, "+%}") == 0 || src_.compare(pos_, 3, "-%}") == 0) {
            char s = src_[pos_];
            emit(TokenType::kBlockEnd);
            advance_to(after_block_end(pos_ + 3, s));
            return;
          }
          if (src_.compare(pos_, 2, "%}") == 0) {
            emit(TokenType::kBlockEnd);
            advance_to(after_block_end(pos_ + 2, 0));
            return;
          }
        } else {
          if (src_.compare(pos_, 3, "-}}") == 0) {
            emit(TokenType::kVariableEnd);
            advance_to(pos_ + 3 + whitespace_run(src_, pos_ + 3));
            return;
          }
          if (src_.compare(pos_, 2, "}}") == 0) {
            emit(TokenType::kVariableEnd);
            advance_to(pos_ + 2);
            return;
          }
        }
      }
      size_t ws = whitespace_run(src_, pos_);
      if (ws > 0) {
        advance_to(pos_ + ws);
        continue;
      }
      if (lex_number()) continue;
      auto c = static_cast<unsigned char>(src_[pos_]);
      if (is_name_start(c)) {
        size_t e = pos_ + 1;
        while (e < n && is_name_char(static_cast<unsigned char>(src_[e]))) ++e;
        emit(TokenType::kName, src_.substr(pos_, e - pos_));
        advance_to(e);
        continue;
      }
      if (c == '\'' || c == '"') {
        lex_string();
        continue;
      }
      lex_operator(balance);
    }
    // Unterminated tag: the parser reports what it expected at the end.
  }

  bool lex_number() {
    const size_t n = src_.size();
    size_t i = pos_;
    if (!is_digit(src_[i])) return false;
    auto digits = [&](size_t& j) {  // (\d+_)*\d+
      size_t s = j;
      while (j < n && is_digit(src_[j])) {
        ++j;
        if (j + 1 < n && src_[j] == '_' && is_digit(src_[j + 1])) ++j;
      }
      return j > s;
    };
    // Float (not directly after a '.', so `a.0.1` is two subscripts).
    if (pos_ == 0 || src_[pos_ - 1] != '.') {
      size_t j = i;
      digits(j);
      bool is_float = false;
      size_t k = j;
      if (k + 1 < n && src_[k] == '.' && is_digit(src_[k + 1])) {
        ++k;
        digits(k);
        is_float = true;
      }
      if (k < n && (src_[k] == 'e' || src_[k] == 'E')) {
        size_t m = k + 1;
        if (m < n && (src_[m] == '+' || src_[m] == '-')) ++m;
        if (m < n && is_digit(src_[m])) {
          digits(m);
          k = m;
          is_float = true;
        }
      }
      if (is_float) {
        std::string text;
        for (size_t q = i; q < k; ++q)
          if (src_[q] != '_') text.push_back(src_[q]);
        Token t;
        t.type = TokenType::kFloat;
        t.float_value = std::strtod(text.c_str(), nullptr);
        t.value = src_.substr(i, k - i);
        t.line = line_;
        tokens_.push_back(std::move(t));
        advance_to(k);
        return true;
      }
    }
    // Integer: 0b / 0o / 0x prefixes, or decimal.
    int base = 10;
    size_t j = i;
    if (src_[i] == '0' && i + 2 < n) {
      char p = static_cast<char>(src_[i + 1] | 0x20);
      if (p == 'b' || p == 'o' || p == 'x') {
        int b = p == 'b' ? 2 : p == 'o' ? 8 : 16;
        size_t m = i + 2;
        if (m < n && src_[m] == '_') ++m;
        if (m < n && hex_value(src_[m]) >= 0 && hex_value(src_[m]) < b) {
          base = b;
          j = m;
          while (j < n && ((hex_value(src_[j]) >= 0 && hex_value(src_[j]) < b) ||
                           (src_[j] == '_' && j + 1 < n && hex_value(src_[j + 1]) >= 0 &&
                            hex_value(src_[j + 1]) < b)))
            ++j;
        }
      }
    }
    if (base == 10) {
      if (src_[i] == '0') {  // 0(_?0)*
        j = i + 1;
        while (j < n && (src_[j] == '0' || (src_[j] == '_' && j + 1 < n && src_[j + 1] == '0'))) ++j;
      } else {
        digits(j);
      }
    }
    std::string text;
    for (size_t q = (base == 10 ? i : i + 2); q < j; ++q)
      if (src_[q] != '_') text.push_back(src_[q]);
    errno = 0;
    char* endp = nullptr;
    long long v = std::strtoll(text.c_str(), &endp, base);
    if (errno == ERANGE) syntax_error("integer literal too large for codey's Jinja (64-bit ints)", line_);
    Token t;
    t.type = TokenType::kInteger;
    t.int_value = v;
    t.value = src_.substr(i, j - i);
    t.line = line_;
    tokens_.push_back(std::move(t));
    advance_to(j);
    return true;
  }

  void lex_string() {
    const char q = src_[pos_];
    size_t i = pos_ + 1;
    while (i < src_.size() && src_[i] != q) {
      if (src_[i] == '\\') ++i;
      ++i;
    }
    if (i >= src_.size()) syntax_error(fmt::format("unexpected char {} at {}", repr_string(std::string(1, q)), pos_), line_);
    Token t;
    t.type = TokenType::kString;
    t.line = line_;
    t.value = decode_string_literal(std::string_view(src_).substr(pos_ + 1, i - pos_ - 1), line_);
    tokens_.push_back(std::move(t));
    advance_to(i + 1);
  }

  void lex_operator(std::vector<char>& balance) {
    static constexpr std::string_view kTwo[] = {"//", "**", "==", "!=", ">=", "<="};
    for (std::string_view op : kTwo) {
      if (src_.compare(pos_, 2, op) == 0) {
        emit(TokenType::kOperator, std::string(op));
        advance_to(pos_ + 2);
        return;
      }
    }
    char c = src_[pos_];
    static constexpr std::string_view kOne = "+-/*%~[](){}><=.:|,;";
    if (kOne.find(c) == std::string_view::npos) {
      syntax_error(fmt::format("unexpected char {} at {}", repr_string(std::string(1, c)), pos_), line_);
    }
    if (c == '(' || c == '[' || c == '{') {
      balance.push_back(c == '(' ? ')' : c == '[' ? ']' : '}');
    } else if (c == ')' || c == ']' || c == '}') {
      if (balance.empty()) syntax_error(fmt::format("unexpected '{}'", c), line_);
      char expected = balance.back();
      balance.pop_back();
      if (expected != c) syntax_error(fmt::format("unexpected '{}', expected '{}'", c, expected), line_);
    }
    emit(TokenType::kOperator, std::string(1, c));
    advance_to(pos_ + 1);
  }

  std::string src_;
  LexerOptions opt_;
  size_t pos_ = 0;
  int line_ = 1;
  bool line_starting_ = true;
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> tokenize(std::string_view source, const LexerOptions& options) {
  return Lexer(normalize_newlines(source, options.keep_trailing_newline), options).run();
}

}  // namespace codey::jinja
