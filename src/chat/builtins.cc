// Jinja built-in filters, tests and globals, Hugging Face's additions, and
// Python str/dict/list methods, with the reference's semantics and messages.
#include "chat/builtins.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <unordered_map>

#include <fmt/core.h>

#include "chat/interpreter.h"
#include "chat/utf8.h"

namespace codey::jinja {

// ---- argument binding

ArgBinder::ArgBinder(std::string_view fn, CallArgs& args, std::initializer_list<std::string_view> names,
                     bool allow_extra_positional)
    : values_(names.size()), present_(names.size(), false) {
  const size_t n = names.size();
  for (size_t i = 0; i < args.args.size(); ++i) {
    if (i < n) {
      values_[i] = args.args[i];
      present_[i] = true;
    } else if (allow_extra_positional) {
      extra_.push_back(args.args[i]);
    } else {
      raise_type_error(fmt::format("{}() takes at most {} argument{} ({} given)", fn, n, n == 1 ? "" : "s",
                                   args.args.size()));
    }
  }
  for (auto& [k, v] : args.kwargs) {
    size_t idx = 0;
    for (std::string_view name : names) {
      if (name == k) break;
      ++idx;
    }
    if (idx == n) raise_type_error(fmt::format("{}() got an unexpected keyword argument '{}'", fn, k));
    if (present_[idx]) raise_type_error(fmt::format("{}() got multiple values for argument '{}'", fn, k));
    values_[idx] = v;
    present_[idx] = true;
  }
}

namespace {

// ---- small helpers

int64_t arg_int(const Value& v) {
  if (v.is_undefined()) raise_undefined(v);
  if (v.is_integral()) return v.as_int();
  raise_type_error(fmt::format("'{}' object cannot be interpreted as an integer", type_name(v)));
}

const std::string& arg_str(const Value& v, std::string_view fn) {
  if (v.is_undefined()) raise_undefined(v);
  if (!v.is_string()) raise_type_error(fmt::format("{}() argument must be str, not {}", fn, type_name(v)));
  return v.str();
}

// Jinja's soft_str: strings (and Markup) stay, everything else becomes str().
Value soft_str(const Value& v) { return v.is_string() ? v : Value::string(to_str(v)); }

Value make_bool(bool b) { return Value::boolean(b); }

Value lower_if_string(const Value& v) { return v.is_string() ? Value::string(py_lower(v.str())) : v; }

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

// Python's str.splitlines line boundaries.
bool is_line_break(char32_t c) {
  return c == '\n' || c == '\r' || c == 0x0b || c == 0x0c || c == 0x1c || c == 0x1d || c == 0x1e || c == 0x85 ||
         c == 0x2028 || c == 0x2029;
}

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

std::string pad_string(const std::string& s, int64_t width, char32_t fill, char align) {
  auto len = static_cast<int64_t>(count_code_points(s));
  if (width <= len) return s;
  int64_t total = width - len;
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
  int64_t left = marg / 2 + (marg & width & 1);
  std::string out;
  for (int64_t i = 0; i < left; ++i) append_utf8(out, fill);
  out += s;
  for (int64_t i = 0; i < marg - left; ++i) append_utf8(out, fill);
  return out;
}

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

// ---- filters

namespace {

// Jinja's make_attrgetter: "a.b.0" walks items (getitem, digits as ints).
Value get_attribute_path(Interpreter& interp, Value item, const Value& attribute) {
  if (attribute.is_integral()) return interp.getitem(item, attribute);
  std::string path = to_str(attribute);
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    bool digits = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    item = interp.getitem(item, digits ? Value::integer(std::stoll(part)) : Value::string(part));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return item;
}

// Key function of sort/unique/min/max: attribute(s), lower-cased strings.
Value sort_key(Interpreter& interp, const Value& item, const Value& attribute, bool case_sensitive, bool multi) {
  auto post = [&](Value v) { return case_sensitive ? v : lower_if_string(v); };
  if (attribute.is_none() || attribute.is_undefined()) return post(item);
  if (multi && attribute.is_string() && attribute.str().find(',') != std::string::npos) {
    std::vector<Value> parts;
    for (const auto& a : split_sep(attribute.str(), ",", -1))
      parts.push_back(post(get_attribute_path(interp, item, Value::string(a))));
    return Value::list(std::move(parts));
  }
  return post(get_attribute_path(interp, item, attribute));
}

Value f_abs(Interpreter&, const Value& v, CallArgs& a) {
  ArgBinder b("abs", a, {});
  if (v.is_integral()) {
    if (v.as_int() == INT64_MIN) raise("OverflowError", "integer overflow");
    return Value::integer(std::llabs(v.as_int()));
  }
  if (v.is_float()) return Value::number(std::fabs(v.as_double()));
  raise_type_error(fmt::format("bad operand type for abs(): '{}'", type_name(v)));
}

Value f_attr(Interpreter&, const Value& v, CallArgs& a) {
  ArgBinder b("attr", a, {"name"});
  std::string name = to_str(b.get_or(0, Value::string("")));
  if (v.is_undefined()) raise_undefined(v);
  if (v.is_object()) {
    if (auto r = v.object().get_attr(name)) return *r;
  } else {
    switch (method_kind(v, name)) {
      case MethodKind::kSafe: return bound_method(v, name);
      case MethodKind::kUnsafe: return unsafe_attribute(v, name);
      case MethodKind::kNone: break;
    }
  }
  return Value::undefined(fmt::format("{} has no attribute {}", repr_string(object_type_repr(v)), repr_string(name)));
}

Value f_batch(Interpreter&, const Value& v, CallArgs& a) {
  ArgBinder b("batch", a, {"linecount", "fill_with"});
  int64_t n = arg_int(b.get_or(0, Value::none()));
  if (n <= 0) raise("ValueError", "batch size must be positive");
  std::vector<Value> out, cur;
  for (auto& item : iterate(v)) {
    cur.push_back(std::move(item));
    if (static_cast<int64_t>(cur.size()) == n) {
      out.push_back(Value::list(std::move(cur)));
      cur.clear();
    }
  }
  if (!cur.empty()) {
    if (b.has(1) && !b.get(1).is_none())
      while (static_cast<int64_t>(cur.size()) < n) cur.push_back(b.get(1));
    out.push_back(Value::list(std::move(cur)));
  }
  return Value::list(std::move(out));
}

Value f_capitalize(Interpreter&, const Value& v, CallArgs& a) {
  ArgBinder b("capitalize", a, {});
  return Value::string(py_capitalize(to_str(v)));
}

Value f_center(Interpreter&, const Value& v, CallArgs& a) {
  ArgBinder b("center", a, {"width"});
  return Value::string(py_center(to_str(v), arg_int(b.get_or(0, Value::integer(80))), U' '));
}

Value f_default(Interpreter&, const Value& v, CallArgs& a) {
  ArgBinder b("default", a, {"default_value", "boolean"});
  bool boolean = truthy(b.get_or(1, Value::boolean(false)));
  if (v.is_undefined() || (boolean && !truthy(v))) return b.get_or(0, Value::string(""));
  return v;
}

Value f_dictsort(Interpreter&, const Value& v, CallArgs& a) {
  ArgBinder b("dictsort", a, {"case_sensitive", "by", "reverse"});
  bool cs = truthy(b.get_or(0, Value::boolean(false)));
  std::string by = to_str(b.get_or(1, Value::string("key")));
  bool reverse = truthy(b.get_or(2, Value::boolean(false)));
  int pos;
  if (by == "key") pos = 0;
  else if (by == "value") pos = 1;
  else raise("FilterArgumentError", "You can only sort by either \"key\" or \"value\"");
  if (!v.is_dict()) {
    if (v.is_undefined()) raise_undefined(v);
    raise("AttributeError", fmt::format("'{}' object has no attribute 'items'", type_name(v)));
  }
  std::vector<std::pair<Value, Value>> items;  // (key, pair)
  for (const auto& [k, val] : v.dict().entries()) {
    Value key = pos == 0 ? k : val;
    items.emplace_back(cs ? key : lower_if_string(key), Value::list({k, val}, true));
  }
  std::stable_sort(items.begin(), items.end(), [&](const auto& x, const auto& y) {
    return reverse ? compare(y.first, x.first, "<") < 0 : compare(x.first, y.first, "<") < 0;
  });
  std::vector<Value> out;
  for (auto& [k, p] : items) out.push_back(std::move(p));
  return Value::list(std::move(out));
}

Value f_escape(Interpreter&, const Value& v, CallArgs& a) {
  ArgBinder b("escape", a, {});
  if (v.is_safe()) return v;
  return Value::string(html_escape(to_str(v)), true);
}

Value f_forceescape(Interpreter&, const Value& v, CallArgs& a) {
  ArgBinder b("forceescape", a, {});
  return Value::string(html_escape(to_str(v)), true);
}

Value f_first(Interpreter&, const Value& v, CallArgs& a) {
  ArgBinder b("first", a, {});
  std::vector<Value> items = iterate(v);
  if (items.empty()) return Value::undefined("No first item, sequence was empty.");
  return items.front();
}

Value f_last(Interpreter&, const Value& v, CallArgs& a) {
  ArgBinder b("last", a, {});
  if (!v.is_undefined() && !v.is_string() && !v.is_list() && !v.is_dict())
    raise_type_error(fmt::format("'{}' object is not reversible", type_name(v)));
  std::vector<Value> items = iterate(v);
  if (items.empty()) return Value::undefined("No last item, sequence was empty.");
  return items.back();
}

// Python float() of a string: strips whitespace, accepts inf/nan, underscores.
std::optional<double> parse_float(std::string s) {
  s = py_strip(s, Value::none(), true, true);
  std::string clean;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '_' && i > 0 && i + 1 < s.size() && std::isdigit(static_cast<unsigned char>(s[i - 1])) &&
        std::isdigit(static_cast<unsigned char>(s[i + 1])))
      continue;
    clean.push_back(s[i]);
  }
  if (clean.empty()) return std::nullopt;
  std::string lower = py_lower(clean);
  std::string body = lower;
  if (!body.empty() && (body[0] == '+' || body[0] == '-')) body = body.substr(1);
  if (body == "inf" || body == "infinity" || body == "nan") {
    double d = body == "nan" ? NAN : INFINITY;
    return lower[0] == '-' ? -d : d;
  }
  for (char c : body)
    if (!(std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == 'e' || c == '+' || c == '-'))
      return std::nullopt;
  char* end = nullptr;
  double d = std::strtod(clean.c_str(), &end);
  if (end != clean.c_str() + clean.size()) return std::nullopt;
  return d;
}

std::optional<int64_t> parse_int(std::string s, int base) {
  s = py_strip(s, Value::none(), true, true);
  std::string clean;
  for (char c : s)
    if (c != '_') clean.push_back(c);
  if (clean.empty()) return std::nullopt;
  bool neg = false;
  size_t i = 0;
  if (clean[0] == '+' || clean[0] == '-') {
    neg = clean[0] == '-';
    i = 1;
  }
  if (base == 0 || base == 16 || base == 8 || base == 2) {
    if (i + 1 < clean.size() && clean[i] == '0') {
      char p = static_cast<char>(clean[i + 1] | 0x20);
      int pb = p == 'x' ? 16 : p == 'o' ? 8 : p == 'b' ? 2 : 0;
      if (pb && (base == 0 || base == pb)) {
        base = pb;
        i += 2;
      }
    }
    if (base == 0) base = 10;
  }
  if (i >= clean.size()) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(clean.c_str() + i, &end, base);
  if (end != clean.c_str() + clean.size() || errno == ERANGE) return std::nullopt;
  if (clean[i] == '+' || clean[i] == '-') return std::nullopt;
  return neg ? -v : v;
}

Value f_float(Interpreter&, const Value& v, CallArgs& a) {
  ArgBinder b("float", a, {"default"});
  Value dflt = b.get_or(0, Value::number(0.0));
  if (v.is_undefined()) raise_undefined(v);  // float(Undefined) raises
  if (v.is_number()) return Value::number(v.as_double());
  if (v.is_string()) {
    if (auto d = parse_float(v.str())) return Value::number(*d);
  }
  return dflt;
}

Value f_int(Interpreter&, const Value& v, CallArgs& a) {
  ArgBinder b("int", a, {"default", "base"});
  Value dflt = b.get_or(0, Value::integer(0));
  int base = static_cast<int>(arg_int(b.get_or(1, Value::integer(10))));
  if (v.is_undefined()) raise_undefined(v);  // int(Undefined) raises
  if (v.is_integral()) return Value::integer(v.as_int());
  if (v.is_float()) {
    double d = v.as_double();
    if (std::isnan(d) || std::isinf(d)) return dflt;
    return Value::integer(static_cast<int64_t>(std::trunc(d)));
  }
  if (v.is_string()) {
    if (auto i = parse_int(v.str(), base)) return Value::integer(*i);
    if (auto d = parse_float(v.str())) {
      if (!std::isnan(*d) && !std::isinf(*d)) return Value::integer(static_cast<int64_t>(std::trunc(*d)));
    }
  }
  return dflt;
}

Value f_format(Interpreter&, const Value& v, CallArgs& a) {
  if (!a.args.empty() && !a.kwargs.empty())
    raise("FilterArgumentError", "can't handle positional and keyword arguments at the same time");
  Value args;
  if (!a.kwargs.empty()) {
    Dict d;
    for (auto& [k, val] : a.kwargs) d.set(Value::string(k), val);
    args = Value::dict(std::move(d));
  } else {
    args = Value::list(a.args, true);
  }
  return Value::string(printf_format(to_str(v), args));
}

Value f_indent(Interpreter&, const Value& v, CallArgs& a) {
  ArgBinder b("indent", a, {"width", "first", "blank"});
  Value width = b.get_or(0, Value::integer(4));
  bool first = truthy(b.get_or(1, Value::boolean(false)));
  bool blank = truthy(b.get_or(2, Value::boolean(false)));
  std::string indention = width.is_string() ? width.str() : std::string(static_cast<size_t>(std::max<int64_t>(0, arg_int(width))), ' ');
  // Jinja does `s += "\n"` on the value itself: only strings get through.
  if (v.is_undefined()) raise_undefined(v);
  if (v.is_list() && !v.is_tuple())  // list += str extends the list; then no splitlines
    raise("AttributeError", "'list' object has no attribute 'splitlines'");
  if (v.is_tuple()) raise_type_error("can only concatenate tuple (not \"str\") to tuple");
  if (!v.is_string())
    raise_type_error(fmt::format("unsupported operand type(s) for +=: '{}' and 'str'", type_name(v)));
  std::string s = v.str() + "\n";  // so splitlines keeps a trailing empty line
  std::vector<std::string> lines = splitlines(s, false);
  std::string rv;
  if (blank) {
    for (size_t i = 0; i < lines.size(); ++i) {
      if (i) rv += "\n" + indention;
      rv += lines[i];
    }
  } else {
    rv = lines.empty() ? "" : lines[0];
    for (size_t i = 1; i < lines.size(); ++i) {
      rv += "\n";
      if (!lines[i].empty()) rv += indention + lines[i];
    }
  }
  if (first) rv = indention + rv;
  return Value::string(std::move(rv), v.is_safe());
}

Value f_items(Interpreter&, const Value& v, CallArgs& a) {
  ArgBinder b("items", a, {});
  if (v.is_undefined()) return Value::list({});
  if (!v.is_dict()) raise_type_error("Can only get item pairs from a mapping.");
  std::vector<Value> items;
  for (const auto& [k, val] : v.dict().entries()) items.push_back(Value::list({k, val}, true));
  return Value::list(std::move(items));
}

Value f_join(Interpreter& interp, const Value& v, CallArgs& a) {
  ArgBinder b("join", a, {"d", "attribute"});
  std::string d = to_str(b.get_or(0, Value::string("")));
  Value attribute = b.get_or(1, Value::none());
  std::string out;
  size_t i = 0;
  for (const auto& item : iterate(v)) {
    if (i++) out += d;
    out += to_str(attribute.is_none() ? item : get_attribute_path(interp, item, attribute));
  }
  return Value::string(std::move(out));
}

Value f_length(Interpreter&, const Value& v, CallArgs& a) {
  ArgBinder b("length", a, {});
  return Value::integer(static_cast<int64_t>(length(v)));
}

Value f_list(Interpreter&, const Value& v, CallArgs& a) {
  ArgBinder b("list", a, {});
  return Value::list(iterate(v));
}

Value f_lower(Interpreter&, const Value& v, CallArgs& a) {
  ArgBinder b("lower", a, {});
  return Value::string(py_lower(to_str(v)));
}

Value f_upper(Interpreter&, const Value& v, CallArgs& a) {
  ArgBinder b("upper", a, {});
  return Value::string(py_upper(to_str(v)));
}

Value f_map(Interpreter& interp, const Value& v, CallArgs& a) {
  std::vector<Value> out;
  if (!truthy(v)) return Value::list({});  // Jinja: `if value:` before anything
  std::vector<Value> items = iterate(v);
  if (a.args.empty()) {
    Value attribute, dflt = Value::none();
    bool have_attr = false;
    for (auto& [k, val] : a.kwargs) {
      if (k == "attribute") {
        attribute = val;
        have_attr = true;
      } else if (k == "default") {
        dflt = val;
      } else {
        raise("FilterArgumentError", fmt::format("Unexpected keyword argument {}", repr_string(k)));
      }
    }
    if (!have_attr) raise("FilterArgumentError", "map requires a filter argument");
    for (const auto& item : items) {
      Value r = get_attribute_path(interp, item, attribute);
      if (r.is_undefined() && !dflt.is_none()) r = dflt;
      out.push_back(std::move(r));
    }
    return Value::list(std::move(out));
  }
  std::string name = to_str(a.args[0]);
  FilterFn fn = find_filter(name);
  if (!fn) raise("TemplateRuntimeError", fmt::format("No filter named {}.", repr_string(name)));
  for (const auto& item : items) {
    CallArgs rest;
    rest.args.assign(a.args.begin() + 1, a.args.end());
    rest.kwargs = a.kwargs;
    out.push_back(fn(interp, item, rest));
  }
  return Value::list(std::move(out));
}

Value min_max(Interpreter& interp, const Value& v, CallArgs& a, bool want_max) {
  ArgBinder b(want_max ? "max" : "min", a, {"case_sensitive", "attribute"});
  bool cs = truthy(b.get_or(0, Value::boolean(false)));
  Value attribute = b.get_or(1, Value::none());
  std::vector<Value> items = iterate(v);
  if (items.empty())
    return Value::undefined("No aggregated item, sequence was empty.");
  size_t best = 0;
  Value best_key = sort_key(interp, items[0], attribute, cs, false);
  for (size_t i = 1; i < items.size(); ++i) {
    Value k = sort_key(interp, items[i], attribute, cs, false);
    int c = compare(k, best_key, want_max ? ">" : "<");
    if (want_max ? c > 0 : c < 0) {
      best = i;
      best_key = std::move(k);
    }
  }
  return items[best];
}

Value f_max(Interpreter& interp, const Value& v, CallArgs& a) { return min_max(interp, v, a, true); }
Value f_min(Interpreter& interp, const Value& v, CallArgs& a) { return min_max(interp, v, a, false); }

Value f_pprint(Interpreter&, const Value& v, CallArgs& a) {
  ArgBinder b("pprint", a, {});
  return Value::string(repr(v));
}

Value select_impl(Interpreter& interp, const Value& v, CallArgs& a, bool attr_mode, bool keep) {
  if (!truthy(v)) return Value::list({});  // Jinja: `if value:` before anything
  size_t off = 0;
  Value attribute;
  if (attr_mode) {
    if (a.args.empty()) raise("FilterArgumentError", "Missing parameter for attribute name");
    attribute = a.args[0];
    off = 1;
  }
  TestFn test = nullptr;
  CallArgs test_args;
  if (a.args.size() > off) {
    std::string name = to_str(a.args[off]);
    test = find_test(name);
    if (!test) raise("TemplateRuntimeError", fmt::format("No test named {}.", repr_string(name)));
    test_args.args.assign(a.args.begin() + static_cast<std::ptrdiff_t>(off) + 1, a.args.end());
    test_args.kwargs = a.kwargs;
  }
  std::vector<Value> out;
  for (const auto& item : iterate(v)) {
    Value x = attr_mode ? get_attribute_path(interp, item, attribute) : item;
    bool r;
    if (test) {
      CallArgs ta = test_args;
      r = test(interp, x, ta);
    } else {
      r = truthy(x);
    }
    if (r == keep) out.push_back(item);
  }
  return Value::list(std::move(out));
}

Value f_select(Interpreter& i, const Value& v, CallArgs& a) { return select_impl(i, v, a, false, true); }
Value f_reject(Interpreter& i, const Value& v, CallArgs& a) { return select_impl(i, v, a, false, false); }
Value f_selectattr(Interpreter& i, const Value& v, CallArgs& a) { return select_impl(i, v, a, true, true); }
Value f_rejectattr(Interpreter& i, const Value& v, CallArgs& a) { return select_impl(i, v, a, true, false); }

Value f_replace(Interpreter&, const Value& v, CallArgs& a) {
  ArgBinder b("replace", a, {"old", "new", "count"});
  if (!b.has(0) || !b.has(1)) raise_type_error("do_replace() missing required arguments 'old' and 'new'");
  int64_t count = b.has(2) && !b.get(2).is_none() ? arg_int(b.get(2)) : -1;
  return Value::string(py_replace(to_str(v), to_str(b.get(0)), to_str(b.get(1)), count));
}

Value f_reverse(Interpreter&, const Value& v, CallArgs& a) {
  ArgBinder b("reverse", a, {});
  if (v.is_string()) {
    std::u32string cps = decode_utf8(v.str());
    std::reverse(cps.begin(), cps.end());
    return Value::string(encode_utf8(cps));
  }
  if (!v.is_undefined() && !v.is_list() && !v.is_dict())
    raise("FilterArgumentError", "argument must be iterable");
  std::vector<Value> items = iterate(v);
  std::reverse(items.begin(), items.end());
  return Value::list(std::move(items));
}

Value f_round(Interpreter&, const Value& v, CallArgs& a) {
  ArgBinder b("round", a, {"precision", "method"});
  int64_t precision = arg_int(b.get_or(0, Value::integer(0)));
  std::string method = to_str(b.get_or(1, Value::string("common")));
  if (method != "common" && method != "ceil" && method != "floor")
    raise("FilterArgumentError", "method must be common, ceil or floor");
  if (!v.is_number()) raise_type_error(fmt::format("type {} doesn't define __round__ method", type_name(v)));
  if (method == "common") {
    if (v.is_integral()) return Value::integer(v.as_int());  // round(int, n) stays int
    // Python's round() is correctly rounded on the decimal expansion (ties
    // to even on exact halves): printf with the precision does the same.
    double d = v.as_double();
    if (std::isnan(d) || std::isinf(d)) return v;
    if (precision >= 0) {
      char buf[512];
      std::snprintf(buf, sizeof buf, "%.*f", static_cast<int>(std::min<int64_t>(precision, 300)), d);
      return Value::number(std::strtod(buf, nullptr));
    }
    double p = std::pow(10.0, static_cast<double>(-precision));
    return Value::number(std::nearbyint(d / p) * p);
  }
  double p = std::pow(10.0, static_cast<double>(precision));
  double x = v.as_double() * p;
  return Value::number((method == "ceil" ? std::ceil(x) : std::floor(x)) / p);
}

Value f_safe(Interpreter&, const Value& v, CallArgs& a) {
  ArgBinder b("safe", a, {});
  return Value::string(to_str(v), true);
}

Value f_slice(Interpreter&, const Value& v, CallArgs& a) {
  ArgBinder b("slice", a, {"slices", "fill_with"});
  int64_t slices = arg_int(b.get_or(0, Value::none()));
  if (slices <= 0) raise("ValueError", "slices must be positive");
  std::vector<Value> seq = iterate(v);
  auto length = static_cast<int64_t>(seq.size());
  int64_t items_per_slice = length / slices;
  int64_t slices_with_extra = length % slices;
  int64_t offset = 0;
  std::vector<Value> out;
  for (int64_t i = 0; i < slices; ++i) {
    int64_t start = offset + i * items_per_slice;
    if (i < slices_with_extra) ++offset;
    int64_t end = offset + (i + 1) * items_per_slice;
    std::vector<Value> tmp(seq.begin() + start, seq.begin() + end);
    if (b.has(1) && !b.get(1).is_none() && i >= slices_with_extra) tmp.push_back(b.get(1));
    out.push_back(Value::list(std::move(tmp)));
  }
  return Value::list(std::move(out));
}

Value f_sort(Interpreter& interp, const Value& v, CallArgs& a) {
  ArgBinder b("sort", a, {"reverse", "case_sensitive", "attribute"});
  bool reverse = truthy(b.get_or(0, Value::boolean(false)));
  bool cs = truthy(b.get_or(1, Value::boolean(false)));
  Value attribute = b.get_or(2, Value::none());
  std::vector<Value> items = iterate(v);
  std::vector<std::pair<Value, Value>> keyed;
  keyed.reserve(items.size());
  for (auto& item : items) keyed.emplace_back(sort_key(interp, item, attribute, cs, true), std::move(item));
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& x, const auto& y) {
    return reverse ? compare(y.first, x.first, "<") < 0 : compare(x.first, y.first, "<") < 0;
  });
  std::vector<Value> out;
  for (auto& [k, item] : keyed) out.push_back(std::move(item));
  return Value::list(std::move(out));
}

Value f_string(Interpreter&, const Value& v, CallArgs& a) {
  ArgBinder b("string", a, {});
  return soft_str(v);
}

Value f_striptags(Interpreter&, const Value& v, CallArgs& a) {
  ArgBinder b("striptags", a, {});
  std::string s = to_str(v);
  std::string no_tags;
  for (size_t i = 0; i < s.size();) {
    if (s.compare(i, 4, "<!--") == 0) {
      size_t e = s.find("-->", i + 4);
      if (e != std::string::npos) {
        i = e + 3;
        continue;
      }
    }
    if (s[i] == '<') {
      size_t e = s.find('>', i + 1);
      if (e != std::string::npos) {
        i = e + 1;
        continue;
      }
    }
    no_tags.push_back(s[i++]);
  }
  std::string joined;
  for (const auto& w : split_whitespace(no_tags, -1)) {
    if (!joined.empty()) joined.push_back(' ');
    joined += w;
  }
  static const std::pair<std::string_view, std::string_view> kEntities[] = {
      {"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&#34;", "\""}, {"&#39;", "'"}, {"&apos;", "'"}};
  std::string out;
  for (size_t i = 0; i < joined.size();) {
    bool done = false;
    if (joined[i] == '&') {
      for (auto [ent, rep] : kEntities) {
        if (joined.compare(i, ent.size(), ent) == 0) {
          out += rep;
          i += ent.size();
          done = true;
          break;
        }
      }
    }
    if (!done) out.push_back(joined[i++]);
  }
  return Value::string(std::move(out));
}

Value f_sum(Interpreter& interp, const Value& v, CallArgs& a) {
  ArgBinder b("sum", a, {"attribute", "start"});
  Value attribute = b.get_or(0, Value::none());
  Value total = b.get_or(1, Value::integer(0));
  for (const auto& item : iterate(v))
    total = binary_op(BinOp::kAdd, total, attribute.is_none() ? item : get_attribute_path(interp, item, attribute));
  return total;
}

Value f_title(Interpreter&, const Value& v, CallArgs& a) {
  ArgBinder b("title", a, {});
  // Jinja splits on runs of [-\s({\[<] and capitalizes each piece.
  std::u32string cps = decode_utf8(to_str(v));
  auto is_sep = [](char32_t c) { return py_isspace(c) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<'; };
  std::string out;
  size_t i = 0;
  while (i < cps.size()) {
    size_t j = i;
    bool sep = is_sep(cps[i]);
    while (j < cps.size() && is_sep(cps[j]) == sep) ++j;
    if (sep) {
      out += encode_utf8(cps.substr(i, j - i));
    } else {
      append_utf8(out, py_upper(cps[i]));
      for (size_t k = i + 1; k < j; ++k) append_utf8(out, py_lower(cps[k]));
    }
    i = j;
  }
  return Value::string(std::move(out));
}

// Hugging Face's tojson: json.dumps(x, ensure_ascii=False, indent=None,
// separators=None, sort_keys=False) - no HTML escaping, insertion order.
Value f_tojson(Interpreter&, const Value& v, CallArgs& a) {
  ArgBinder b("tojson", a, {"ensure_ascii", "indent", "separators", "sort_keys"});
  JsonOptions o;
  o.ensure_ascii = truthy(b.get_or(0, Value::boolean(false)));
  Value indent = b.get_or(1, Value::none());
  if (indent.is_string()) o.indent = indent.str();
  else if (indent.is_integral()) o.indent = std::string(static_cast<size_t>(std::max<int64_t>(0, indent.as_int())), ' ');
  else if (!indent.is_none()) raise_type_error(fmt::format("indent must be int or str, not {}", type_name(indent)));
  Value seps = b.get_or(2, Value::none());
  if (seps.is_list() && seps.list().items.size() == 2 && seps.list().items[0].is_string() &&
      seps.list().items[1].is_string()) {
    o.item_separator = seps.list().items[0].str();
    o.key_separator = seps.list().items[1].str();
  } else if (!seps.is_none()) {
    raise("ValueError", "separators must be a (item_separator, key_separator) pair of strings");
  } else if (o.indent) {
    o.item_separator = ",";
  }
  o.sort_keys = truthy(b.get_or(3, Value::boolean(false)));
  return Value::string(to_json(v, o));
}

Value f_trim(Interpreter&, const Value& v, CallArgs& a) {
  ArgBinder b("trim", a, {"chars"});
  return Value::string(py_strip(to_str(v), b.get_or(0, Value::none()), true, true));
}

Value f_truncate(Interpreter&, const Value& v, CallArgs& a) {
  ArgBinder b("truncate", a, {"length", "killwords", "end", "leeway"});
  int64_t len = arg_int(b.get_or(0, Value::integer(255)));
  bool killwords = truthy(b.get_or(1, Value::boolean(false)));
  std::string end = to_str(b.get_or(2, Value::string("...")));
  int64_t leeway = b.has(3) && !b.get(3).is_none() ? arg_int(b.get(3)) : 5;
  auto end_len = static_cast<int64_t>(count_code_points(end));
  if (len < end_len) raise("AssertionError", fmt::format("expected length >= {}, got {}", end_len, len));
  if (leeway < 0) raise("AssertionError", fmt::format("expected leeway >= 0, got {}", leeway));
  std::u32string cps = decode_utf8(to_str(v));
  if (static_cast<int64_t>(cps.size()) <= len + leeway) return Value::string(to_str(v));
  std::u32string head = cps.substr(0, static_cast<size_t>(len - end_len));
  if (killwords) return Value::string(encode_utf8(head) + end);
  size_t sp = head.rfind(U' ');
  if (sp != std::u32string::npos) head = head.substr(0, sp);
  return Value::string(encode_utf8(head) + end);
}

Value f_unique(Interpreter& interp, const Value& v, CallArgs& a) {
  ArgBinder b("unique", a, {"case_sensitive", "attribute"});
  bool cs = truthy(b.get_or(0, Value::boolean(false)));
  Value attribute = b.get_or(1, Value::none());
  std::vector<Value> seen, out;
  for (const auto& item : iterate(v)) {
    Value key = sort_key(interp, item, attribute, cs, false);
    bool dup = false;
    for (const auto& s : seen)
      if (equals(s, key)) dup = true;
    if (!dup) {
      seen.push_back(std::move(key));
      out.push_back(item);
    }
  }
  return Value::list(std::move(out));
}

std::string url_quote(const std::string& s, bool for_qs) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '_' || c == '.' || c == '-' || c == '~' || (!for_qs && c == '/')) {
      out.push_back(static_cast<char>(c));
    } else if (for_qs && c == ' ') {
      out.push_back('+');
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

Value f_urlencode(Interpreter&, const Value& v, CallArgs& a) {
  ArgBinder b("urlencode", a, {});
  if (v.is_string()) return Value::string(url_quote(v.str(), false));
  std::vector<std::pair<Value, Value>> pairs;
  if (v.is_dict()) {
    for (const auto& e : v.dict().entries()) pairs.push_back(e);
  } else {
    for (const auto& item : iterate(v)) {
      std::vector<Value> kv = iterate(item);
      if (kv.size() != 2) raise("ValueError", "urlencode expects pairs");
      pairs.emplace_back(kv[0], kv[1]);
    }
  }
  std::string out;
  for (const auto& [k, val] : pairs) {
    if (!out.empty()) out.push_back('&');
    out += url_quote(to_str(k), true) + "=" + url_quote(to_str(val), true);
  }
  return Value::string(std::move(out));
}

Value f_wordcount(Interpreter&, const Value& v, CallArgs& a) {
  ArgBinder b("wordcount", a, {});
  int64_t n = 0;
  bool in_word = false;
  for (char32_t c : decode_utf8(to_str(v))) {
    bool w = py_isword(c);
    if (w && !in_word) ++n;
    in_word = w;
  }
  return Value::integer(n);
}

Value f_filesizeformat(Interpreter&, const Value& v, CallArgs& a) {
  ArgBinder b("filesizeformat", a, {"binary"});
  bool binary = truthy(b.get_or(0, Value::boolean(false)));
  double bytes = v.is_number() ? v.as_double() : parse_float(to_str(v)).value_or(0.0);
  double base = binary ? 1024 : 1000;
  static const char* kBin[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"};
  static const char* kDec[] = {"kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"};
  if (bytes == 1) return Value::string("1 Byte");
  if (bytes < base) return Value::string(fmt::format("{} Bytes", static_cast<int64_t>(bytes)));
  double unit = base;
  for (int i = 0; i < 8; ++i) {
    unit = std::pow(base, i + 2);
    if (bytes < unit || i == 7) return Value::string(fmt::format("{:.1f} {}", base * bytes / unit, binary ? kBin[i] : kDec[i]));
  }
  return Value::string("");
}

Value f_xmlattr(Interpreter&, const Value& v, CallArgs& a) {
  ArgBinder b("xmlattr", a, {"autospace"});
  bool autospace = truthy(b.get_or(0, Value::boolean(true)));
  if (!v.is_dict()) raise_type_error("xmlattr expects a mapping");
  std::string out;
  for (const auto& [k, val] : v.dict().entries()) {
    if (val.is_none() || val.is_undefined()) continue;
    std::string key = to_str(k);
    for (char c : key)
      if (c == ' ' || c == '/' || c == '>' || c == '=' || c == '\t' || c == '\n')
        raise("ValueError", fmt::format("Invalid character in attribute name: {}", repr_string(key)));
    if (!out.empty()) out.push_back(' ');
    out += html_escape(key) + "=\"" + html_escape(to_str(val)) + "\"";
  }
  if (autospace && !out.empty()) out = " " + out;
  return Value::string(std::move(out), true);
}

const std::unordered_map<std::string_view, FilterFn>& filter_table() {
  static const std::unordered_map<std::string_view, FilterFn> table = {
      {"abs", f_abs},
      {"attr", f_attr},
      {"batch", f_batch},
      {"capitalize", f_capitalize},
      {"center", f_center},
      {"count", f_length},
      {"d", f_default},
      {"default", f_default},
      {"dictsort", f_dictsort},
      {"e", f_escape},
      {"escape", f_escape},
      {"filesizeformat", f_filesizeformat},
      {"first", f_first},
      {"float", f_float},
      {"forceescape", f_forceescape},
      {"format", f_format},
      {"indent", f_indent},
      {"int", f_int},
      {"items", f_items},
      {"join", f_join},
      {"last", f_last},
      {"length", f_length},
      {"list", f_list},
      {"lower", f_lower},
      {"map", f_map},
      {"max", f_max},
      {"min", f_min},
      {"pprint", f_pprint},
      {"reject", f_reject},
      {"rejectattr", f_rejectattr},
      {"replace", f_replace},
      {"reverse", f_reverse},
      {"round", f_round},
      {"safe", f_safe},
      {"select", f_select},
      {"selectattr", f_selectattr},
      {"slice", f_slice},
      {"sort", f_sort},
      {"string", f_string},
      {"striptags", f_striptags},
      {"sum", f_sum},
      {"title", f_title},
      {"tojson", f_tojson},
      {"trim", f_trim},
      {"truncate", f_truncate},
      {"unique", f_unique},
      {"upper", f_upper},
      {"urlencode", f_urlencode},
      {"wordcount", f_wordcount},
      {"xmlattr", f_xmlattr},
  };
  return table;
}

// ---- tests

bool t_defined(Interpreter&, const Value& v, CallArgs&) { return !v.is_undefined(); }
bool t_undefined(Interpreter&, const Value& v, CallArgs&) { return v.is_undefined(); }
bool t_none(Interpreter&, const Value& v, CallArgs&) { return v.is_none(); }
bool t_boolean(Interpreter&, const Value& v, CallArgs&) { return v.is_bool(); }
bool t_true(Interpreter&, const Value& v, CallArgs&) { return v.is_bool() && v.as_bool(); }
bool t_false(Interpreter&, const Value& v, CallArgs&) { return v.is_bool() && !v.as_bool(); }
bool t_integer(Interpreter&, const Value& v, CallArgs&) { return v.is_int(); }
bool t_float(Interpreter&, const Value& v, CallArgs&) { return v.is_float(); }
bool t_number(Interpreter&, const Value& v, CallArgs&) { return v.is_number(); }
bool t_string(Interpreter&, const Value& v, CallArgs&) { return v.is_string(); }
bool t_mapping(Interpreter&, const Value& v, CallArgs&) { return v.is_dict(); }
// Jinja: anything with len() and __getitem__ (dicts and Undefined included).
bool t_sequence(Interpreter&, const Value& v, CallArgs&) {
  return v.is_string() || v.is_list() || v.is_dict() || v.is_undefined();
}
bool t_iterable(Interpreter&, const Value& v, CallArgs&) {
  return v.is_string() || v.is_list() || v.is_dict() || v.is_undefined();
}
bool t_callable(Interpreter&, const Value& v, CallArgs&) { return v.is_object() && v.object().callable(); }
bool t_escaped(Interpreter&, const Value& v, CallArgs&) { return v.is_safe(); }

const Value& test_arg(CallArgs& a, std::string_view name) {
  if (a.args.empty()) {
    for (auto& [k, v] : a.kwargs)
      if (k == "other" || k == "value" || k == "num" || k == "seq") return v;
    raise_type_error(fmt::format("test '{}' missing 1 required positional argument", name));
  }
  return a.args[0];
}

bool t_eq(Interpreter&, const Value& v, CallArgs& a) { return equals(v, test_arg(a, "eq")); }
bool t_ne(Interpreter&, const Value& v, CallArgs& a) { return !equals(v, test_arg(a, "ne")); }
bool t_lt(Interpreter&, const Value& v, CallArgs& a) { return compare(v, test_arg(a, "lt"), "<") < 0; }
bool t_le(Interpreter&, const Value& v, CallArgs& a) { return compare(v, test_arg(a, "le"), "<=") <= 0; }
bool t_gt(Interpreter&, const Value& v, CallArgs& a) { return compare(v, test_arg(a, "gt"), ">") > 0; }
bool t_ge(Interpreter&, const Value& v, CallArgs& a) { return compare(v, test_arg(a, "ge"), ">=") >= 0; }
bool t_in(Interpreter&, const Value& v, CallArgs& a) { return contains(test_arg(a, "in"), v); }

bool t_sameas(Interpreter&, const Value& v, CallArgs& a) {
  const Value& o = test_arg(a, "sameas");
  if (v.kind() != o.kind()) return false;
  switch (v.kind()) {
    case Value::Kind::kNone:
    case Value::Kind::kUndefined: return v.kind() == Value::Kind::kNone || v.identity() == o.identity();
    case Value::Kind::kBool:
    case Value::Kind::kInt: return v.as_int() == o.as_int();
    case Value::Kind::kFloat: return false;
    default: return v.identity() == o.identity();
  }
}

bool t_odd(Interpreter&, const Value& v, CallArgs&) {
  return equals(binary_op(BinOp::kMod, v, Value::integer(2)), Value::integer(1));
}
bool t_even(Interpreter&, const Value& v, CallArgs&) {
  return equals(binary_op(BinOp::kMod, v, Value::integer(2)), Value::integer(0));
}
bool t_divisibleby(Interpreter&, const Value& v, CallArgs& a) {
  return equals(binary_op(BinOp::kMod, v, test_arg(a, "divisibleby")), Value::integer(0));
}

// Jinja: str(value).islower() / .isupper().
bool t_lower(Interpreter& in, const Value& v, CallArgs&) {
  CallArgs none;
  return truthy(call_method(in, Value::string(to_str(v)), "islower", none));
}
bool t_upper(Interpreter& in, const Value& v, CallArgs&) {
  CallArgs none;
  return truthy(call_method(in, Value::string(to_str(v)), "isupper", none));
}
bool t_filter(Interpreter&, const Value& v, CallArgs&) { return v.is_string() && find_filter(v.str()) != nullptr; }
bool t_test(Interpreter&, const Value& v, CallArgs&) { return v.is_string() && find_test(v.str()) != nullptr; }

// Tests that take only the value: extra arguments are Python's arity error.
template <TestFn F>
bool no_args(Interpreter& in, const Value& v, CallArgs& a) {
  if (!a.args.empty() || !a.kwargs.empty()) {
    std::string_view name;
    for (const auto& [n, fn] : std::initializer_list<std::pair<std::string_view, TestFn>>{
             {"defined", t_defined}, {"undefined", t_undefined}, {"none", t_none}, {"boolean", t_boolean},
             {"true", t_true}, {"false", t_false}, {"integer", t_integer}, {"float", t_float},
             {"number", t_number}, {"string", t_string}, {"mapping", t_mapping}, {"sequence", t_sequence},
             {"iterable", t_iterable}, {"escaped", t_escaped}, {"odd", t_odd}, {"even", t_even},
             {"lower", t_lower}, {"upper", t_upper}, {"filter", t_filter}, {"test", t_test}})
      if (fn == F) name = n;
    if (!a.kwargs.empty())
      raise_type_error(fmt::format("test_{}() got an unexpected keyword argument '{}'", name, a.kwargs[0].first));
    raise_type_error(fmt::format("test_{}() takes 1 positional argument but {} were given", name, a.args.size() + 1));
  }
  return F(in, v, a);
}

const std::unordered_map<std::string_view, TestFn>& test_table() {
  static const std::unordered_map<std::string_view, TestFn> table = {
      {"!=", t_ne},          {"<", t_lt},
      {"<=", t_le},          {"==", t_eq},
      {">", t_gt},           {">=", t_ge},
      {"boolean", no_args<t_boolean>}, {"callable", t_callable},
      {"defined", no_args<t_defined>}, {"divisibleby", t_divisibleby},
      {"eq", t_eq},          {"equalto", t_eq},
      {"escaped", no_args<t_escaped>}, {"even", no_args<t_even>},
      {"false", no_args<t_false>},    {"filter", no_args<t_filter>},
      {"float", no_args<t_float>},    {"ge", t_ge},
      {"greaterthan", t_gt}, {"gt", t_gt},
      {"in", t_in},          {"integer", no_args<t_integer>},
      {"iterable", no_args<t_iterable>}, {"le", t_le},
      {"lessthan", t_lt},    {"lower", no_args<t_lower>},
      {"lt", t_lt},          {"mapping", no_args<t_mapping>},
      {"ne", t_ne},          {"none", no_args<t_none>},
      {"number", no_args<t_number>},  {"odd", no_args<t_odd>},
      {"sameas", t_sameas},  {"sequence", no_args<t_sequence>},
      {"string", no_args<t_string>},  {"test", no_args<t_test>},
      {"true", no_args<t_true>},      {"undefined", no_args<t_undefined>},
      {"upper", no_args<t_upper>},
  };
  return table;
}

// ---- globals

Value g_range(Interpreter&, CallArgs& a) {
  if (!a.kwargs.empty()) raise_type_error("range() takes no keyword arguments");
  if (a.args.empty() || a.args.size() > 3)
    raise_type_error(fmt::format("range expected at most 3 arguments, got {}", a.args.size()));
  int64_t start = 0, stop, step = 1;
  if (a.args.size() == 1) {
    stop = arg_int(a.args[0]);
  } else {
    start = arg_int(a.args[0]);
    stop = arg_int(a.args[1]);
    if (a.args.size() == 3) step = arg_int(a.args[2]);
  }
  if (step == 0) raise("ValueError", "range() arg 3 must not be zero");
  int64_t n = 0;
  if (step > 0 && stop > start) n = (stop - start + step - 1) / step;
  if (step < 0 && stop < start) n = (start - stop - step - 1) / (-step);
  if (n > 100000)
    raise("OverflowError", "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
  std::vector<Value> out;
  out.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out.push_back(Value::integer(start + i * step));
  return Value::list(std::move(out));
}

// dict(*args, **kwargs) semantics, shared by dict() and namespace().
Dict build_dict(CallArgs& a, std::string_view fn) {
  Dict d;
  if (a.args.size() > 1) raise_type_error(fmt::format("{} expected at most 1 argument, got {}", fn, a.args.size()));
  if (!a.args.empty()) {
    const Value& src = a.args[0];
    if (src.is_dict()) {
      d = src.dict();
    } else if (src.is_object() && src.object().type_name() == "Namespace") {
      d = static_cast<const Namespace&>(src.object()).attrs();
    } else {
      for (const auto& item : iterate(src)) {
        std::vector<Value> kv = iterate(item);
        if (kv.size() != 2)
          raise("ValueError", fmt::format("dictionary update sequence element has length {}; 2 is required", kv.size()));
        d.set(kv[0], kv[1]);
      }
    }
  }
  for (auto& [k, v] : a.kwargs) d.set(Value::string(k), v);
  return d;
}

Value g_dict(Interpreter&, CallArgs& a) { return Value::dict(build_dict(a, "dict")); }

Value g_namespace(Interpreter& interp, CallArgs& a) {
  Dict d = build_dict(a, "namespace");
  auto ns = std::make_shared<Namespace>();
  for (const auto& [k, v] : d.entries()) ns->set_attr(to_str(k), v);
  interp.track(ns);
  return Value::object(ns);
}

// raise_exception(msg) from Hugging Face: fails the render with `msg`.
Value g_raise_exception(Interpreter&, CallArgs& a) {
  std::string msg = a.args.empty() ? "" : to_str(a.args[0]);
  raise("TemplateError", msg);
}

// strftime_now(fmt): the render's clock (RenderOptions::now), else local time.
Value g_strftime_now(Interpreter& interp, CallArgs& a) {
  ArgBinder b("strftime_now", a, {"format"});
  std::string f = to_str(b.get_or(0, Value::string("")));
  std::tm tm{};
  if (interp.options().now) {
    tm = *interp.options().now;
  } else {
    std::time_t t = std::time(nullptr);
    localtime_r(&t, &tm);
  }
  if (f.empty()) return Value::string("");
  std::string out(256 + f.size() * 8, '\0');
  size_t n = std::strftime(out.data(), out.size(), f.c_str(), &tm);
  out.resize(n);
  return Value::string(std::move(out));
}

class Cycler final : public Object {
 public:
  explicit Cycler(std::vector<Value> items) : items_(std::move(items)) {}
  std::string_view type_name() const override { return "Cycler"; }
  std::optional<Value> get_attr(std::string_view name) const override {
    auto self = std::static_pointer_cast<const Cycler>(self_.lock());
    if (name == "current") return items_[pos_];
    if (name == "next") {
      return Value::object(std::make_shared<NativeFunction>("next", [self](Interpreter&, CallArgs&) {
        Value v = self->items_[self->pos_];
        self->pos_ = (self->pos_ + 1) % self->items_.size();
        return v;
      }, "method"));
    }
    if (name == "reset") {
      return Value::object(std::make_shared<NativeFunction>("reset", [self](Interpreter&, CallArgs&) {
        self->pos_ = 0;
        return Value::none();
      }, "method"));
    }
    return std::nullopt;
  }
  std::weak_ptr<Cycler> self_;

 private:
  std::vector<Value> items_;
  mutable size_t pos_ = 0;
};

Value g_cycler(Interpreter&, CallArgs& a) {
  if (a.args.empty()) raise_type_error("at least one item has to be provided");
  auto c = std::make_shared<Cycler>(a.args);
  c->self_ = c;
  return Value::object(c);
}

Value g_joiner(Interpreter&, CallArgs& a) {
  ArgBinder b("joiner", a, {"sep"});
  std::string sep = to_str(b.get_or(0, Value::string(", ")));
  auto used = std::make_shared<bool>(false);
  return Value::object(std::make_shared<NativeFunction>("joiner", [sep, used](Interpreter&, CallArgs&) {
    if (!*used) {
      *used = true;
      return Value::string("");
    }
    return Value::string(sep);
  }, "Joiner"));
}

}  // namespace

FilterFn find_filter(std::string_view name) {
  const auto& t = filter_table();
  auto it = t.find(name);
  return it == t.end() ? nullptr : it->second;
}

TestFn find_test(std::string_view name) {
  const auto& t = test_table();
  auto it = t.find(name);
  return it == t.end() ? nullptr : it->second;
}

bool is_unsupported_jinja_filter(std::string_view name) {
  return name == "groupby" || name == "random" || name == "urlize" || name == "wordwrap";
}

std::optional<Value> find_global(std::string_view name) {
  static const std::unordered_map<std::string_view, Value> globals = [] {
    std::unordered_map<std::string_view, Value> g;
    auto add = [&](std::string_view n, NativeFunction::Fn fn) {
      g.emplace(n, Value::object(std::make_shared<NativeFunction>(std::string(n), std::move(fn))));
    };
    add("range", g_range);
    add("dict", g_dict);
    add("namespace", g_namespace);
    add("raise_exception", g_raise_exception);
    add("strftime_now", g_strftime_now);
    add("cycler", g_cycler);
    add("joiner", g_joiner);
    return g;
  }();
  auto it = globals.find(name);
  if (it == globals.end()) return std::nullopt;
  return it->second;
}

}  // namespace codey::jinja
