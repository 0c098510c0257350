// Jinja's built-in filters, tests and globals, and Hugging Face's additions
// (raise_exception, strftime_now, tojson with indent), with the reference's
// semantics and messages.
#include "chat/filters.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <unordered_map>

#include <fmt/core.h>

#include "chat/interpreter.h"
#include "chat/utf8.h"
#include "chat/builtins.h"
#include "chat/py_str.h"

namespace codey::jinja {

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
    if (b.has(1) && !b.get(1).is_none()) {
      sandbox_check_items(static_cast<size_t>(n));
      while (static_cast<int64_t>(cur.size()) < n) cur.push_back(b.get(1));
    }
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
  if (!width.is_string()) check_padding("", arg_int(width), U' ');
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
      sandbox_check_string(rv.size());
    }
  } else {
    rv = lines.empty() ? "" : lines[0];
    for (size_t i = 1; i < lines.size(); ++i) {
      rv += "\n";
      if (!lines[i].empty()) rv += indention + lines[i];
      sandbox_check_string(rv.size());
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
    sandbox_check_string(out.size());  // the same big string may come a million times
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
  sandbox_check_items(static_cast<size_t>(slices));
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
  sandbox_check_string(256 + f.size() * 8);
  std::string out(256 + f.size() * 8, '\0');
  size_t n = std::strftime(out.data(), out.size(), f.c_str(), &tm);
  out.resize(n);
  return Value::string(std::move(out));
}

class Cycler final : public Object {
 public:
  explicit Cycler(std::vector<Value> items) : items_(std::move(items)), depth_(nested_depth(items_)) {}
  std::string_view type_name() const override { return "Cycler"; }
  int depth() const override { return depth_; }
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
  int depth_;
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

