// Python str semantics for the Jinja interpreter (strip, split, replace,
// title, padding, str.format, printf-style %) and the str/dict/list methods
// the sandbox lets templates call, with the reference's semantics and messages.
#include "chat/py_str.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include <fmt/core.h>

#include "chat/interpreter.h"
#include "chat/utf8.h"
#include "chat/builtins.h"

namespace codey::jinja {

namespace {

std::u32string strip_set(std::u32string s, const Value& chars, bool left, bool right) {
  auto strip_it = [&](char32_t c) {
    if (chars.is_none() || chars.is_undefined()) return py_isspace(c);
    for (char32_t x : decode_utf8(chars.str()))
      if (x == c) return true;
    return false;
  };
  size_t b = 0, e = s.size();
  if (left)
    while (b < e && strip_it(s[b])) ++b;
  if (right)
    while (e > b && strip_it(s[e - 1])) --e;
  return s.substr(b, e - b);
}

}  // namespace

std::string py_strip(const std::string& s, const Value& chars, bool left, bool right) {
  if (!chars.is_none() && !chars.is_undefined() && !chars.is_string())
    raise_type_error(fmt::format("strip arg must be None or str"));
  if ((chars.is_none() || chars.is_undefined()) && is_ascii(s)) {
    auto ws = [](char c) { return c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f); };
    size_t b = 0, e = s.size();
    if (left)
      while (b < e && ws(s[b])) ++b;
    if (right)
      while (e > b && ws(s[e - 1])) --e;
    return s.substr(b, e - b);
  }
  return encode_utf8(strip_set(decode_utf8(s), chars, left, right));
}

std::vector<std::string> split_whitespace(const std::string& s, int64_t maxsplit) {
  std::vector<std::string> out;
  std::u32string cps = decode_utf8(s);
  size_t i = 0;
  while (i < cps.size()) {
    while (i < cps.size() && py_isspace(cps[i])) ++i;
    if (i >= cps.size()) break;
    if (maxsplit >= 0 && static_cast<int64_t>(out.size()) == maxsplit) {
      size_t e = cps.size();
      while (e > i && py_isspace(cps[e - 1])) --e;
      out.push_back(encode_utf8(cps.substr(i, e - i)));
      break;
    }
    size_t j = i;
    while (j < cps.size() && !py_isspace(cps[j])) ++j;
    out.push_back(encode_utf8(cps.substr(i, j - i)));
    i = j;
  }
  return out;
}

std::vector<std::string> split_sep(const std::string& s, const std::string& sep, int64_t maxsplit) {
  if (sep.empty()) raise("ValueError", "empty separator");
  std::vector<std::string> out;
  size_t start = 0;
  while (maxsplit < 0 || static_cast<int64_t>(out.size()) < maxsplit) {
    size_t p = s.find(sep, start);
    if (p == std::string::npos) break;
    out.push_back(s.substr(start, p - start));
    start = p + sep.size();
  }
  out.push_back(s.substr(start));
  return out;
}

std::vector<std::string> rsplit_sep(const std::string& s, const std::string& sep, int64_t maxsplit) {
  if (sep.empty()) raise("ValueError", "empty separator");
  std::vector<std::string> out;
  size_t end = s.size();
  while (maxsplit < 0 || static_cast<int64_t>(out.size()) < maxsplit) {
    if (end < sep.size()) break;
    size_t p = s.rfind(sep, end - sep.size());
    if (p == std::string::npos) break;
    out.push_back(s.substr(p + sep.size(), end - p - sep.size()));
    end = p;
  }
  out.push_back(s.substr(0, end));
  std::reverse(out.begin(), out.end());
  return out;
}

std::vector<std::string> rsplit_whitespace(const std::string& s, int64_t maxsplit) {
  std::vector<std::string> out;
  std::u32string cps = decode_utf8(s);
  size_t e = cps.size();
  while (e > 0) {
    while (e > 0 && py_isspace(cps[e - 1])) --e;
    if (e == 0) break;
    if (maxsplit >= 0 && static_cast<int64_t>(out.size()) == maxsplit) {
      size_t b = 0;
      while (b < e && py_isspace(cps[b])) ++b;
      out.push_back(encode_utf8(cps.substr(b, e - b)));
      break;
    }
    size_t b = e;
    while (b > 0 && !py_isspace(cps[b - 1])) --b;
    out.push_back(encode_utf8(cps.substr(b, e - b)));
    e = b;
  }
  std::reverse(out.begin(), out.end());
  return out;
}

namespace {

// Python's str.splitlines line boundaries.
bool is_line_break(char32_t c) {
  return c == '\n' || c == '\r' || c == 0x0b || c == 0x0c || c == 0x1c || c == 0x1d || c == 0x1e || c == 0x85 ||
         c == 0x2028 || c == 0x2029;
}

}  // namespace

std::vector<std::string> splitlines(const std::string& s, bool keepends) {
  std::vector<std::string> out;
  std::u32string cps = decode_utf8(s);
  size_t i = 0, start = 0;
  while (i < cps.size()) {
    if (is_line_break(cps[i])) {
      size_t eol = i;
      size_t next = i + 1;
      if (cps[i] == '\r' && next < cps.size() && cps[next] == '\n') ++next;
      out.push_back(encode_utf8(cps.substr(start, (keepends ? next : eol) - start)));
      start = i = next;
    } else {
      ++i;
    }
  }
  if (start < cps.size()) out.push_back(encode_utf8(cps.substr(start)));
  return out;
}

std::string py_replace(const std::string& s, const std::string& old, const std::string& rep, int64_t count) {
  if (count == 0) return s;
  std::string out;
  if (old.empty()) {
    // Inserts `rep` before every code point and at the end (up to count).
    std::u32string cps = decode_utf8(s);
    int64_t done = 0;
    for (char32_t c : cps) {
      if (count < 0 || done < count) {
        out += rep;
        ++done;
        sandbox_check_string(out.size());
      }
      append_utf8(out, c);
    }
    if (count < 0 || done < count) out += rep;
    return out;
  }
  size_t start = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    size_t p = s.find(old, start);
    if (p == std::string::npos) break;
    out.append(s, start, p - start);
    out += rep;
    sandbox_check_string(out.size());
    start = p + old.size();
    ++done;
  }
  out.append(s, start, std::string::npos);
  return out;
}

std::string py_title(const std::string& s) {
  std::string out;
  bool prev_cased = false;
  for (char32_t c : decode_utf8(s)) {
    if (py_iscased(c)) {
      append_utf8(out, prev_cased ? py_lower(c) : py_upper(c));
      prev_cased = true;
    } else {
      append_utf8(out, c);
      prev_cased = false;
    }
  }
  return out;
}

std::string py_capitalize(const std::string& s) {
  std::u32string cps = decode_utf8(s);
  std::string out;
  for (size_t i = 0; i < cps.size(); ++i) append_utf8(out, i == 0 ? py_upper(cps[i]) : py_lower(cps[i]));
  return out;
}

// Code-point slice [start:end] with Python's clamping of None/negative bounds.
std::string py_substr(const std::string& s, const Value& start, const Value& end) {
  if ((start.is_none() || start.is_undefined()) && (end.is_none() || end.is_undefined())) return s;
  std::u32string cps = decode_utf8(s);
  auto len = static_cast<int64_t>(cps.size());
  auto clamp = [&](const Value& v, int64_t dflt) {
    if (v.is_none() || v.is_undefined()) return dflt;
    int64_t x = arg_int(v);
    if (x < 0) x = std::max<int64_t>(0, x + len);
    return std::min(x, len);
  };
  int64_t b = clamp(start, 0), e = clamp(end, len);
  if (e < b) return "";
  return encode_utf8(cps.substr(static_cast<size_t>(b), static_cast<size_t>(e - b)));
}

// Bytes of `n` fill characters: checked before a width of 3e9 is honoured.
void check_padding(const std::string& s, int64_t n, char32_t fill) {
  std::string one;
  append_utf8(one, fill);
  if (n > 0 && static_cast<uint64_t>(n) > (uint64_t(1) << 40) / one.size())
    raise("MemoryError", "a padding width that large", ErrorCode::kResourceExhausted);
  sandbox_check_string(s.size() + static_cast<size_t>(n) * one.size());
}

std::string pad_string(const std::string& s, int64_t width, char32_t fill, char align) {
  auto len = static_cast<int64_t>(count_code_points(s));
  if (width <= len) return s;
  int64_t total = width - len;
  check_padding(s, total, fill);
  int64_t left = 0;
  if (align == '>') left = total;
  else if (align == '^') left = total / 2;
  std::string out;
  for (int64_t i = 0; i < left; ++i) append_utf8(out, fill);
  out += s;
  for (int64_t i = 0; i < total - left; ++i) append_utf8(out, fill);
  return out;
}

// CPython's str.center puts the odd pad on the left when width is odd.
std::string py_center(const std::string& s, int64_t width, char32_t fill) {
  auto len = static_cast<int64_t>(count_code_points(s));
  if (width <= len) return s;
  int64_t marg = width - len;
  check_padding(s, marg, fill);
  int64_t left = marg / 2 + (marg & width & 1);
  std::string out;
  for (int64_t i = 0; i < left; ++i) append_utf8(out, fill);
  out += s;
  for (int64_t i = 0; i < marg - left; ++i) append_utf8(out, fill);
  return out;
}

namespace {

Value make_bool(bool b) { return Value::boolean(b); }

char32_t fill_char(const Value& v, std::string_view fn) {
  std::u32string f = decode_utf8(arg_str(v, fn));
  if (f.size() != 1) raise_type_error("The fill character must be exactly one character long");
  return f[0];
}

// ---- number formatting shared by str.format and %

struct Spec {
  char32_t fill = ' ';
  char align = 0;  // < > ^ =
  char sign = '-';
  bool alt = false;
  bool zero = false;
  int64_t width = -1;
  int64_t precision = -1;
  char grouping = 0;
  char type = 0;
};

std::string group_digits(const std::string& digits, char sep) {
  std::string out;
  int n = static_cast<int>(digits.size());
  for (int i = 0; i < n; ++i) {
    if (i > 0 && (n - i) % 3 == 0) out.push_back(sep);
    out.push_back(digits[i]);
  }
  return out;
}

std::string apply_padding(const std::string& sign, const std::string& body, const Spec& sp, char default_align) {
  char align = sp.align ? sp.align : default_align;
  char32_t fill = sp.fill;
  if (sp.zero && !sp.align) {
    align = '=';
    fill = '0';
  }
  auto len = static_cast<int64_t>(count_code_points(sign) + count_code_points(body));
  if (sp.width <= len) return sign + body;
  if (align == '=') {
    std::string pad;
    for (int64_t i = 0; i < sp.width - len; ++i) append_utf8(pad, fill);
    return sign + pad + body;
  }
  return pad_string(sign + body, sp.width, fill, align);
}

std::string format_int(int64_t v, const Spec& sp) {
  bool neg = v < 0;
  uint64_t mag = neg ? 0 - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
  std::string digits;
  std::string prefix;
  switch (sp.type) {
    case 'x': digits = fmt::format("{:x}", mag); prefix = sp.alt ? "0x" : ""; break;
    case 'X': digits = fmt::format("{:X}", mag); prefix = sp.alt ? "0X" : ""; break;
    case 'o': digits = fmt::format("{:o}", mag); prefix = sp.alt ? "0o" : ""; break;
    case 'b': digits = fmt::format("{:b}", mag); prefix = sp.alt ? "0b" : ""; break;
    default: digits = std::to_string(mag); break;
  }
  if (sp.grouping) digits = group_digits(digits, sp.grouping);
  std::string sign = neg ? "-" : (sp.sign == '+' ? "+" : sp.sign == ' ' ? " " : "");
  return apply_padding(sign + prefix, digits, sp, '>');
}

std::string format_float(double v, Spec sp) {
  std::string sign;
  if (std::signbit(v) && !std::isnan(v)) sign = "-";
  else if (sp.sign == '+') sign = "+";
  else if (sp.sign == ' ') sign = " ";
  double mag = std::fabs(v);
  std::string body;
  char type = sp.type;
  if (std::isinf(mag) || std::isnan(mag)) {
    body = std::isnan(mag) ? "nan" : "inf";
    if (type == 'F' || type == 'E' || type == 'G') body = std::isnan(mag) ? "NAN" : "INF";
    return apply_padding(sign, body, sp, '>');
  }
  if (type == 0 && sp.precision < 0) {
    body = float_repr(mag);
  } else if (type == '%') {
    body = fmt::format("{:.{}f}%", mag * 100, sp.precision < 0 ? 6 : sp.precision);
  } else {
    int prec = static_cast<int>(sp.precision < 0 ? 6 : sp.precision);
    char t = type == 0 ? 'g' : type;
    if (t == 'n') t = 'g';
    char buf[512];
    std::string f = std::string("%") + (sp.alt ? "#" : "") + ".*" + t;
    std::snprintf(buf, sizeof buf, f.c_str(), prec, mag);
    body = buf;
    if (type == 0 && body.find_first_of(".eEn") == std::string::npos) body += ".0";
  }
  if (sp.grouping) {
    size_t dot = body.find_first_of(".eE%");
    std::string int_part = body.substr(0, dot);
    std::string rest = dot == std::string::npos ? "" : body.substr(dot);
    if (!int_part.empty() && std::all_of(int_part.begin(), int_part.end(), [](char c) { return c >= '0' && c <= '9'; }))
      body = group_digits(int_part, sp.grouping) + rest;
  }
  return apply_padding(sign, body, sp, '>');
}

std::string format_with_spec(const Value& v, const Spec& sp) {
  char t = sp.type;
  if (t == 's' || (t == 0 && !v.is_number())) {
    if (t == 's' && !v.is_string())
      raise("ValueError", fmt::format("Unknown format code 's' for object of type '{}'", type_name(v)));
    std::string s = to_str(v);
    if (sp.precision >= 0) {
      std::u32string cps = decode_utf8(s);
      if (static_cast<int64_t>(cps.size()) > sp.precision) s = encode_utf8(cps.substr(0, sp.precision));
    }
    return apply_padding("", s, sp, '<');
  }
  if (v.is_bool() && t == 0 && sp.width < 0 && sp.precision < 0) return to_str(v);
  if (t == 'c') {
    std::string s;
    append_utf8(s, static_cast<char32_t>(arg_int(v)));
    return apply_padding("", s, sp, '<');
  }
  if (t == 'd' || t == 'x' || t == 'X' || t == 'o' || t == 'b' || (t == 0 && v.is_integral()) ||
      (t == 'n' && v.is_integral())) {
    if (!v.is_integral())
      raise("ValueError", fmt::format("Unknown format code '{}' for object of type '{}'", t, type_name(v)));
    return format_int(v.as_int(), sp);
  }
  if (!v.is_number())
    raise("ValueError", fmt::format("Unknown format code '{}' for object of type '{}'", t, type_name(v)));
  return format_float(v.as_double(), sp);
}

Spec parse_format_spec(std::string_view spec) {
  Spec sp;
  std::u32string cps = decode_utf8(spec);
  size_t i = 0;
  auto is_align = [](char32_t c) { return c == '<' || c == '>' || c == '^' || c == '='; };
  if (cps.size() >= 2 && is_align(cps[1])) {
    sp.fill = cps[0];
    sp.align = static_cast<char>(cps[1]);
    i = 2;
  } else if (!cps.empty() && is_align(cps[0])) {
    sp.align = static_cast<char>(cps[0]);
    i = 1;
  }
  if (i < cps.size() && (cps[i] == '+' || cps[i] == '-' || cps[i] == ' ')) sp.sign = static_cast<char>(cps[i++]);
  if (i < cps.size() && cps[i] == 'z') ++i;
  if (i < cps.size() && cps[i] == '#') {
    sp.alt = true;
    ++i;
  }
  if (i < cps.size() && cps[i] == '0') {
    sp.zero = true;
    ++i;
  }
  if (i < cps.size() && cps[i] >= '0' && cps[i] <= '9') {
    sp.width = 0;
    while (i < cps.size() && cps[i] >= '0' && cps[i] <= '9') sp.width = sp.width * 10 + (cps[i++] - '0');
  }
  if (i < cps.size() && (cps[i] == ',' || cps[i] == '_')) sp.grouping = static_cast<char>(cps[i++]);
  if (i < cps.size() && cps[i] == '.') {
    ++i;
    sp.precision = 0;
    if (i >= cps.size() || cps[i] < '0' || cps[i] > '9') raise("ValueError", "Format specifier missing precision");
    while (i < cps.size() && cps[i] >= '0' && cps[i] <= '9') sp.precision = sp.precision * 10 + (cps[i++] - '0');
  }
  if (i < cps.size()) sp.type = static_cast<char>(cps[i++]);
  if (i < cps.size()) raise("ValueError", "Invalid format specifier");
  return sp;
}

// str.format(*args, **kwargs): {} {0} {name} {x.attr} {x[key]} {!r} {:spec}.
std::string str_format(Interpreter& interp, const std::string& fmt_str, const CallArgs& args) {
  std::string out;
  size_t auto_index = 0;
  size_t i = 0;
  const size_t n = fmt_str.size();
  while (i < n) {
    char c = fmt_str[i];
    if (c == '{' && i + 1 < n && fmt_str[i + 1] == '{') {
      out.push_back('{');
      i += 2;
      continue;
    }
    if (c == '}' && i + 1 < n && fmt_str[i + 1] == '}') {
      out.push_back('}');
      i += 2;
      continue;
    }
    if (c == '}') raise("ValueError", "Single '}' encountered in format string");
    if (c != '{') {
      out.push_back(c);
      ++i;
      continue;
    }
    size_t close = fmt_str.find('}', i);
    if (close == std::string::npos) raise("ValueError", "Single '{' encountered in format string");
    std::string field = fmt_str.substr(i + 1, close - i - 1);
    i = close + 1;
    std::string spec, conv;
    size_t colon = field.find(':');
    if (colon != std::string::npos) {
      spec = field.substr(colon + 1);
      field = field.substr(0, colon);
    }
    size_t bang = field.find('!');
    if (bang != std::string::npos) {
      conv = field.substr(bang + 1);
      field = field.substr(0, bang);
    }
    size_t name_end = field.find_first_of(".[");
    std::string head = field.substr(0, name_end);
    Value v;
    if (head.empty()) {
      if (auto_index >= args.args.size()) raise("IndexError", fmt::format("Replacement index {} out of range for positional args tuple", auto_index));
      v = args.args[auto_index++];
    } else if (std::all_of(head.begin(), head.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) {
      size_t idx = std::stoul(head);
      if (idx >= args.args.size()) raise("IndexError", fmt::format("Replacement index {} out of range for positional args tuple", idx));
      v = args.args[idx];
    } else {
      bool found = false;
      for (const auto& [k, val] : args.kwargs) {
        if (k == head) {
          v = val;
          found = true;
        }
      }
      if (!found) raise("KeyError", repr_string(head));
    }
    size_t p = name_end;
    while (p != std::string::npos && p < field.size()) {
      if (field[p] == '.') {
        size_t e = field.find_first_of(".[", p + 1);
        v = interp.getattr(v, field.substr(p + 1, e == std::string::npos ? std::string::npos : e - p - 1));
        p = e;
      } else {
        size_t e = field.find(']', p);
        if (e == std::string::npos) raise("ValueError", "Missing ']' in format string");
        std::string key = field.substr(p + 1, e - p - 1);
        Value k = !key.empty() && std::all_of(key.begin(), key.end(), [](char ch) { return ch >= '0' && ch <= '9'; })
                      ? Value::integer(std::stoll(key))
                      : Value::string(key);
        v = interp.getitem(v, k);
        p = e + 1;
      }
    }
    if (conv == "r" || conv == "a") v = Value::string(repr(v));
    else if (conv == "s") v = Value::string(to_str(v));
    out += format_with_spec(v, parse_format_spec(spec));
  }
  return out;
}


}  // namespace

std::string html_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

std::string printf_format(std::string_view f, const Value& args) {
  // CPython: a non-tuple argument with __getitem__ (dict, list) may go
  // unused without error; only dicts serve %(name)s lookups.
  std::vector<Value> positional;
  const Dict* mapping = nullptr;
  const bool mapping_like = args.is_dict() || (args.is_list() && !args.is_tuple()) || args.is_undefined();
  if (args.is_tuple()) positional = args.list().items;
  else positional.push_back(args);
  if (args.is_dict()) mapping = &args.dict();
  size_t next_arg = 0;
  bool used_mapping = false;
  auto take = [&]() -> Value {
    if (next_arg >= positional.size()) raise_type_error("not enough arguments for format string");
    return positional[next_arg++];
  };
  std::string out;
  size_t i = 0;
  while (i < f.size()) {
    if (f[i] != '%') {
      out.push_back(f[i++]);
      continue;
    }
    ++i;
    if (i >= f.size()) raise("ValueError", "incomplete format");
    Value v;
    bool have_value = false;
    if (f[i] == '(') {
      size_t close = f.find(')', i);
      if (close == std::string_view::npos) raise("ValueError", "incomplete format key");
      if (!mapping) raise_type_error("format requires a mapping");
      std::string key(f.substr(i + 1, close - i - 1));
      const Value* found = mapping->find(key);
      if (!found) raise("KeyError", repr_string(key));
      v = *found;
      have_value = true;
      used_mapping = true;
      i = close + 1;
    }
    Spec sp;
    bool left = false;
    while (i < f.size() && std::string_view("-+ #0").find(f[i]) != std::string_view::npos) {
      if (f[i] == '-') left = true;
      else if (f[i] == '+') sp.sign = '+';
      else if (f[i] == ' ' && sp.sign != '+') sp.sign = ' ';
      else if (f[i] == '#') sp.alt = true;
      else if (f[i] == '0') sp.zero = true;
      ++i;
    }
    if (i < f.size() && f[i] == '*') {
      sp.width = arg_int(take());
      if (sp.width < 0) {
        left = true;
        sp.width = -sp.width;
      }
      ++i;
    } else {
      while (i < f.size() && f[i] >= '0' && f[i] <= '9') sp.width = std::max<int64_t>(sp.width, 0) * 10 + (f[i++] - '0');
    }
    if (i < f.size() && f[i] == '.') {
      ++i;
      sp.precision = 0;
      if (i < f.size() && f[i] == '*') {
        sp.precision = arg_int(take());
        ++i;
      } else {
        while (i < f.size() && f[i] >= '0' && f[i] <= '9') sp.precision = sp.precision * 10 + (f[i++] - '0');
      }
    }
    while (i < f.size() && (f[i] == 'h' || f[i] == 'l' || f[i] == 'L')) ++i;
    if (i >= f.size()) raise("ValueError", "incomplete format");
    char type = f[i++];
    if (type == '%') {
      out.push_back('%');
      continue;
    }
    if (!have_value) v = take();
    if (left) {
      sp.align = '<';
      sp.zero = false;
    } else if (!sp.zero) {
      sp.align = '>';
    }
    switch (type) {
      case 's':
      case 'r':
      case 'a': {
        std::string s = type == 's' ? to_str(v) : repr(v);
        if (sp.precision >= 0) {
          std::u32string cps = decode_utf8(s);
          if (static_cast<int64_t>(cps.size()) > sp.precision) s = encode_utf8(cps.substr(0, sp.precision));
        }
        sp.zero = false;
        out += apply_padding("", s, sp, '>');
        break;
      }
      case 'd':
      case 'i':
      case 'u': {
        if (v.is_undefined()) raise_undefined(v);
        if (!v.is_number())
          raise_type_error(fmt::format("%{} format: a real number is required, not {}", type, type_name(v)));
        int64_t iv = v.is_integral() ? v.as_int() : static_cast<int64_t>(std::trunc(v.as_double()));
        sp.type = 'd';
        std::string body = format_int(iv, Spec{.sign = sp.sign});
        std::string sign;
        if (!body.empty() && (body[0] == '-' || body[0] == '+' || body[0] == ' ')) {
          sign = body.substr(0, 1);
          body = body.substr(1);
        }
        if (sp.precision > static_cast<int64_t>(body.size()))
          body = std::string(sp.precision - body.size(), '0') + body;
        out += apply_padding(sign, body, sp, '>');
        break;
      }
      case 'x':
      case 'X':
      case 'o': {
        if (!v.is_integral())
          raise_type_error(fmt::format("%{} format: an integer is required, not {}", type, type_name(v)));
        sp.type = type;
        out += format_int(v.as_int(), sp);
        break;
      }
      case 'e':
      case 'E':
      case 'f':
      case 'F':
      case 'g':
      case 'G': {
        if (v.is_undefined()) raise_undefined(v);
        if (!v.is_number()) raise_type_error(fmt::format("must be real number, not {}", type_name(v)));
        sp.type = type;
        if (sp.precision < 0) sp.precision = 6;
        out += format_float(v.as_double(), sp);
        break;
      }
      case 'c': {
        std::string s;
        if (v.is_string() && count_code_points(v.str()) == 1) s = v.str();
        else append_utf8(s, static_cast<char32_t>(arg_int(v)));
        out += apply_padding("", s, sp, '>');
        break;
      }
      default:
        raise("ValueError", fmt::format("unsupported format character '{}' (0x{:x}) at index {}", type,
                                        static_cast<unsigned>(static_cast<unsigned char>(type)), i - 1));
    }
  }
  if (!used_mapping && !mapping_like && next_arg < positional.size())
    raise_type_error("not all arguments converted during string formatting");
  return out;
}

// ---- methods

namespace {

template <size_t N>
bool is_one_of(std::string_view name, const std::string_view (&names)[N]) {
  return std::find(std::begin(names), std::end(names), name) != std::end(names);
}

constexpr std::string_view kStrMethods[] = {
    "capitalize", "casefold", "center", "count", "endswith", "find", "format", "index", "isalnum", "isalpha",
    "isdecimal", "isdigit", "islower", "isnumeric", "isspace", "istitle", "isupper", "join", "ljust", "lower",
    "lstrip", "partition", "removeprefix", "removesuffix", "replace", "rfind", "rindex", "rjust", "rpartition",
    "rsplit", "rstrip", "split", "splitlines", "startswith", "strip", "swapcase", "title", "upper", "zfill"};
constexpr std::string_view kDictMethods[] = {"get", "items", "keys", "values", "copy"};
constexpr std::string_view kDictUnsafe[] = {"clear", "pop", "popitem", "setdefault", "update"};
constexpr std::string_view kListMethods[] = {"count", "index", "copy"};
constexpr std::string_view kListUnsafe[] = {"append", "clear", "extend", "insert",
                                                                 "pop",    "remove", "reverse", "sort"};

bool prefix_match(const std::string& s, const Value& prefixes, bool at_end, std::string_view fn) {
  auto one = [&](const Value& p) {
    if (!p.is_string())
      raise_type_error(fmt::format("{} first arg must be str or a tuple of str, not {}", fn, type_name(p)));
    const std::string& x = p.str();
    if (x.size() > s.size()) return false;
    return at_end ? s.compare(s.size() - x.size(), x.size(), x) == 0 : s.compare(0, x.size(), x) == 0;
  };
  if (prefixes.is_tuple()) {
    for (const auto& p : prefixes.list().items)
      if (one(p)) return true;
    return false;
  }
  return one(prefixes);
}

Value list_of_strings(const std::vector<std::string>& parts) {
  std::vector<Value> items;
  items.reserve(parts.size());
  for (const auto& p : parts) items.push_back(Value::string(p));
  return Value::list(std::move(items));
}

// find/rfind/index/rindex/count over [start:end], returning code point indices.
int64_t find_impl(const std::string& s, const std::string& sub, const Value& start, const Value& end, bool reverse) {
  std::u32string cps = decode_utf8(s);
  auto len = static_cast<int64_t>(cps.size());
  auto clamp = [&](const Value& v, int64_t dflt) {
    if (v.is_none() || v.is_undefined()) return dflt;
    int64_t x = arg_int(v);
    if (x < 0) x = std::max<int64_t>(0, x + len);
    return std::min(x, len);
  };
  int64_t b = clamp(start, 0), e = clamp(end, len);
  if (e < b) return -1;
  std::u32string hay = cps.substr(static_cast<size_t>(b), static_cast<size_t>(e - b));
  std::u32string needle = decode_utf8(sub);
  size_t p = reverse ? hay.rfind(needle) : hay.find(needle);
  if (p == std::u32string::npos) return -1;
  return b + static_cast<int64_t>(p);
}

Value str_method(Interpreter& interp, const Value& self, std::string_view name, CallArgs& args) {
  const std::string& s = self.str();
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    ArgBinder b(name, args, {"chars"});
    Value chars = b.get_or(0, Value::none());
    return Value::string(py_strip(s, chars, name != "rstrip", name != "lstrip"));
  }
  if (name == "upper" || name == "lower" || name == "casefold") {
    ArgBinder b(name, args, {});
    return Value::string(name == "upper" ? py_upper(s) : py_lower(s));
  }
  if (name == "title") {
    ArgBinder b(name, args, {});
    return Value::string(py_title(s));
  }
  if (name == "capitalize") {
    ArgBinder b(name, args, {});
    return Value::string(py_capitalize(s));
  }
  if (name == "swapcase") {
    ArgBinder b(name, args, {});
    std::string out;
    for (char32_t c : decode_utf8(s)) {
      char32_t u = py_upper(c);
      append_utf8(out, u != c ? u : py_lower(c));
    }
    return Value::string(std::move(out));
  }
  if (name == "startswith" || name == "endswith") {
    ArgBinder b(name, args, {"prefix", "start", "end"});
    if (!b.has(0)) raise_type_error(fmt::format("{}() takes at least 1 argument (0 given)", name));
    std::string sub = py_substr(s, b.get_or(1, Value::none()), b.get_or(2, Value::none()));
    return make_bool(prefix_match(sub, b.get(0), name == "endswith", name));
  }
  if (name == "split" || name == "rsplit") {
    ArgBinder b(name, args, {"sep", "maxsplit"});
    Value sep = b.get_or(0, Value::none());
    int64_t maxsplit = b.has(1) ? arg_int(b.get(1)) : -1;
    if (sep.is_none()) return list_of_strings(name == "split" ? split_whitespace(s, maxsplit) : rsplit_whitespace(s, maxsplit));
    const std::string& sp = arg_str(sep, name);
    return list_of_strings(name == "split" ? split_sep(s, sp, maxsplit) : rsplit_sep(s, sp, maxsplit));
  }
  if (name == "splitlines") {
    ArgBinder b(name, args, {"keepends"});
    return list_of_strings(splitlines(s, truthy(b.get_or(0, Value::boolean(false)))));
  }
  if (name == "replace") {
    ArgBinder b(name, args, {"old", "new", "count"});
    if (!b.has(0) || !b.has(1)) raise_type_error("replace expected at least 2 arguments");
    int64_t count = b.has(2) ? arg_int(b.get(2)) : -1;
    return Value::string(py_replace(s, arg_str(b.get(0), "replace"), arg_str(b.get(1), "replace"), count));
  }
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex") {
    ArgBinder b(name, args, {"sub", "start", "end"});
    if (!b.has(0)) raise_type_error(fmt::format("{}() takes at least 1 argument (0 given)", name));
    int64_t r = find_impl(s, arg_str(b.get(0), name), b.get_or(1, Value::none()), b.get_or(2, Value::none()),
                          name[0] == 'r');
    if (r < 0 && (name == "index" || name == "rindex")) raise("ValueError", "substring not found");
    return Value::integer(r);
  }
  if (name == "count") {
    ArgBinder b(name, args, {"sub", "start", "end"});
    if (!b.has(0)) raise_type_error("count() takes at least 1 argument (0 given)");
    std::string hay = py_substr(s, b.get_or(1, Value::none()), b.get_or(2, Value::none()));
    const std::string& sub = arg_str(b.get(0), "count");
    if (sub.empty()) return Value::integer(static_cast<int64_t>(count_code_points(hay)) + 1);
    int64_t n = 0;
    for (size_t p = hay.find(sub); p != std::string::npos; p = hay.find(sub, p + sub.size())) ++n;
    return Value::integer(n);
  }
  if (name == "join") {
    ArgBinder b(name, args, {"iterable"});
    if (!b.has(0)) raise_type_error("join() takes exactly one argument (0 given)");
    std::string out;
    size_t i = 0;
    for (const auto& item : iterate(b.get(0))) {
      if (!item.is_string())
        raise_type_error(fmt::format("sequence item {}: expected str instance, {} found", i, type_name(item)));
      if (i++) out += s;
      out += item.str();
      sandbox_check_string(out.size());  // the same big string may come a million times
    }
    return Value::string(std::move(out));
  }
  if (name == "center" || name == "ljust" || name == "rjust") {
    ArgBinder b(name, args, {"width", "fillchar"});
    if (!b.has(0)) raise_type_error(fmt::format("{}() takes at least 1 argument (0 given)", name));
    int64_t width = arg_int(b.get(0));
    char32_t fill = b.has(1) ? fill_char(b.get(1), name) : U' ';
    if (name == "center") return Value::string(py_center(s, width, fill));
    return Value::string(pad_string(s, width, fill, name == "ljust" ? '<' : '>'));
  }
  if (name == "zfill") {
    ArgBinder b(name, args, {"width"});
    int64_t width = arg_int(b.get_or(0, Value::integer(0)));
    auto len = static_cast<int64_t>(count_code_points(s));
    if (width <= len) return self;
    check_padding(s, width - len, U'0');
    std::string sign;
    std::string rest = s;
    if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
      sign = s.substr(0, 1);
      rest = s.substr(1);
    }
    return Value::string(sign + std::string(width - len, '0') + rest);
  }
  if (name == "partition" || name == "rpartition") {
    ArgBinder b(name, args, {"sep"});
    const std::string& sep = arg_str(b.get_or(0, Value::none()), name);
    if (sep.empty()) raise("ValueError", "empty separator");
    size_t p = name == "partition" ? s.find(sep) : s.rfind(sep);
    if (p == std::string::npos) {
      if (name == "partition")
        return Value::list({Value::string(s), Value::string(""), Value::string("")}, true);
      return Value::list({Value::string(""), Value::string(""), Value::string(s)}, true);
    }
    return Value::list({Value::string(s.substr(0, p)), Value::string(sep), Value::string(s.substr(p + sep.size()))},
                       true);
  }
  if (name == "removeprefix" || name == "removesuffix") {
    ArgBinder b(name, args, {"affix"});
    const std::string& a = arg_str(b.get_or(0, Value::none()), name);
    if (name == "removeprefix" && s.compare(0, a.size(), a) == 0 && a.size() <= s.size())
      return Value::string(s.substr(a.size()));
    if (name == "removesuffix" && !a.empty() && a.size() <= s.size() &&
        s.compare(s.size() - a.size(), a.size(), a) == 0)
      return Value::string(s.substr(0, s.size() - a.size()));
    return Value::string(s);
  }
  if (name == "format") return Value::string(str_format(interp, s, args));
  if (name.starts_with("is")) {
    ArgBinder b(name, args, {});
    std::u32string cps = decode_utf8(s);
    if (name == "islower" || name == "isupper") {
      bool cased = false;
      for (char32_t c : cps) {
        if (!py_iscased(c)) continue;
        cased = true;
        if (name == "islower" ? py_lower(c) != c : py_upper(c) != c) return make_bool(false);
      }
      return make_bool(cased);
    }
    if (name == "istitle") return make_bool(!cps.empty() && py_title(s) == s && py_lower(s) != s);
    if (cps.empty()) return make_bool(false);
    for (char32_t c : cps) {
      bool ok = name == "isspace"   ? py_isspace(c)
                : name == "isalpha" ? py_isalpha(c)
                : name == "isalnum" ? py_isalnum(c)
                                    : py_isdigit(c);  // isdigit / isdecimal / isnumeric
      if (!ok) return make_bool(false);
    }
    return make_bool(true);
  }
  raise("AttributeError", fmt::format("'str' object has no attribute '{}'", name));
}

Value dict_method(const Value& self, std::string_view name, CallArgs& args) {
  const Dict& d = self.dict();
  if (name == "get") {
    ArgBinder b("get", args, {"key", "default"});
    if (!b.has(0)) raise_type_error("get expected at least 1 argument, got 0");
    const Value& key = b.get(0);
    if ((key.is_list() && !key.list().is_tuple) || key.is_dict())
      raise_type_error(fmt::format("unhashable type: '{}'", type_name(key)));
    if (const Value* v = d.find(key)) return *v;
    return b.get_or(1, Value::none());
  }
  ArgBinder b(name, args, {});
  if (name == "items") {
    std::vector<Value> items;
    items.reserve(d.size());
    for (const auto& [k, v] : d.entries()) items.push_back(Value::list({k, v}, true));
    return Value::list(std::move(items));
  }
  if (name == "keys" || name == "values") {
    std::vector<Value> items;
    items.reserve(d.size());
    for (const auto& [k, v] : d.entries()) items.push_back(name == "keys" ? k : v);
    return Value::list(std::move(items));
  }
  if (name == "copy") return self;
  raise("AttributeError", fmt::format("'dict' object has no attribute '{}'", name));
}

Value list_method(const Value& self, std::string_view name, CallArgs& args) {
  const auto& items = self.list().items;
  if (name == "copy") {
    ArgBinder b(name, args, {});
    return Value::list(items, self.list().is_tuple);
  }
  ArgBinder b(name, args, {"value", "start", "stop"});
  if (!b.has(0)) raise_type_error(fmt::format("{}() takes at least 1 argument (0 given)", name));
  if (name == "count") {
    int64_t n = 0;
    for (const auto& v : items) n += equals(v, b.get(0));
    return Value::integer(n);
  }
  for (size_t i = 0; i < items.size(); ++i)
    if (equals(items[i], b.get(0))) return Value::integer(static_cast<int64_t>(i));
  raise("ValueError", fmt::format("{} is not in {}", repr(b.get(0)), type_name(self)));
}

}  // namespace

MethodKind method_kind(const Value& self, std::string_view name) {
  switch (self.kind()) {
    case Value::Kind::kString: return is_one_of(name, kStrMethods) ? MethodKind::kSafe : MethodKind::kNone;
    case Value::Kind::kDict:
      if (is_one_of(name, kDictMethods)) return MethodKind::kSafe;
      return is_one_of(name, kDictUnsafe) ? MethodKind::kUnsafe : MethodKind::kNone;
    case Value::Kind::kList:
      if (is_one_of(name, kListMethods) && !(self.list().is_tuple && name == "copy")) return MethodKind::kSafe;
      if (!self.list().is_tuple && is_one_of(name, kListUnsafe)) return MethodKind::kUnsafe;
      return MethodKind::kNone;
    default: return MethodKind::kNone;
  }
}

Value call_method(Interpreter& interp, const Value& self, std::string_view name, CallArgs& args) {
  switch (self.kind()) {
    case Value::Kind::kString: return str_method(interp, self, name, args);
    case Value::Kind::kDict: return dict_method(self, name, args);
    case Value::Kind::kList: return list_method(self, name, args);
    default: raise("AttributeError", fmt::format("'{}' object has no attribute '{}'", type_name(self), name));
  }
}

Value bound_method(const Value& self, std::string_view name) {
  std::string n(name);
  return Value::object(std::make_shared<NativeFunction>(
      n, [self, n](Interpreter& interp, CallArgs& args) { return call_method(interp, self, n, args); },
      "builtin_function_or_method"));
}

Value unsafe_attribute(const Value& self, std::string_view name) {
  return Value::undefined(
      fmt::format("access to attribute {} of {} object is unsafe.", repr_string(name), repr_string(type_name(self))),
      "SecurityError");
}

}  // namespace codey::jinja
