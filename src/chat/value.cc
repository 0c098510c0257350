// Python data-model semantics of Jinja values: str(), repr(), equality,
// ordering, iteration, and json.dumps as Hugging Face's tojson calls it.
#include "chat/value.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "chat/sandbox.h"
#include "chat/utf8.h"

namespace codey::jinja {

namespace {

// A payload charged to the render's sandbox: its bytes come back when the
// last value sharing it goes. The Sandbox outlives every value of its render
// (Interpreter keeps it as its first member).
template <class T>
struct Charged {
  Charged(T&& v, Sandbox* s, size_t b) : value(std::move(v)), sandbox(s), bytes(b) {}
  Charged(const Charged&) = delete;
  Charged& operator=(const Charged&) = delete;
  ~Charged() { sandbox->sub_live(bytes); }
  T value;
  Sandbox* sandbox;
  size_t bytes;
};

template <class U>
std::shared_ptr<void> make_payload(U&& v, size_t bytes) {
  static_assert(!std::is_reference_v<U>, "takes its payload by move");
  Sandbox* sb = Sandbox::current();
  if (!sb) return std::make_shared<U>(std::move(v));
  sb->add_steps(1 + bytes / 128);  // copying what it holds is work too (~8 values, 128 bytes of text)
  sb->add_live(bytes);  // MemoryError beyond max_memory, before anything is held
  auto c = std::make_shared<Charged<U>>(std::move(v), sb, bytes);
  return std::shared_ptr<void>(c, &c->value);  // the payload is the value; the block owns the charge
}

// A recursion guard for the functions that walk values (str/repr, ==, <,
// json): values nest at most max_depth, but a namespace may hold itself.
struct WalkDepth {
  static thread_local int depth;
  WalkDepth() {
    if (++depth > 1000) {
      --depth;
      raise("RecursionError", "maximum recursion depth exceeded while walking a value", ErrorCode::kResourceExhausted);
    }
    sandbox_step();
  }
  ~WalkDepth() { --depth; }
};
thread_local int WalkDepth::depth = 0;

}  // namespace

void raise(std::string type, std::string message, ErrorCode code) {
  throw JinjaError(std::move(type), std::move(message), code);
}

void raise_type_error(std::string message) { raise("TypeError", std::move(message)); }

// ---- Dict

const Value* Dict::find(const Value& key) const {
  if (key.is_string()) return find(std::string_view(key.str()));
  for (const auto& [k, v] : entries_)
    if (equals(k, key)) return &v;
  return nullptr;
}

const Value* Dict::find(std::string_view key) const {
  for (const auto& [k, v] : entries_)
    if (k.is_string() && k.str() == key) return &v;
  return nullptr;
}

void Dict::set(Value key, Value value) {
  for (auto& [k, v] : entries_) {
    if (equals(k, key)) {
      v = std::move(value);
      return;
    }
  }
  entries_.emplace_back(std::move(key), std::move(value));
}

void Dict::append_new(Value key, Value value) { entries_.emplace_back(std::move(key), std::move(value)); }

// ---- Value

Value Value::undefined(std::string message, std::string exc_type) {
  Value v(Kind::kUndefined);
  v.ptr_ = std::make_shared<UndefinedInfo>(UndefinedInfo{std::move(message), std::move(exc_type)});
  return v;
}

Value Value::string(std::string s, bool safe) {
  Value v(Kind::kString);
  v.flag_ = safe;
  if (Sandbox* sb = Sandbox::current()) sb->check_string(s.size());
  const size_t bytes = sizeof(std::string) + s.capacity();
  v.ptr_ = make_payload(std::move(s), bytes);
  return v;
}

Value Value::list(std::vector<Value> items, bool is_tuple) {
  Value v(Kind::kList);
  sandbox_check_items(items.size());
  const int depth = nested_depth(items);
  const size_t bytes = sizeof(List) + items.capacity() * sizeof(Value);
  v.ptr_ = make_payload(List{std::move(items), is_tuple, depth}, bytes);
  return v;
}

Value Value::dict(Dict d) {
  Value v(Kind::kDict);
  sandbox_check_items(d.size());
  int deepest = 0;
  for (const auto& [k, val] : d.entries()) deepest = std::max({deepest, value_depth(k), value_depth(val)});
  d.depth = deepest + 1;
  if (Sandbox* sb = Sandbox::current()) sb->check_depth(d.depth);
  const size_t bytes = sizeof(Dict) + d.size() * sizeof(Dict::Entry);
  v.ptr_ = make_payload(std::move(d), bytes);
  return v;
}

int value_depth(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kList: return v.list().depth;
    case Value::Kind::kDict: return v.dict().depth;
    case Value::Kind::kObject: return v.object().depth();
    default: return 0;
  }
}

int nested_depth(const std::vector<Value>& items) {
  int deepest = 0;
  for (const auto& item : items) deepest = std::max(deepest, value_depth(item));
  if (Sandbox* sb = Sandbox::current()) sb->check_depth(deepest + 1);
  return deepest + 1;
}

Value Value::object(std::shared_ptr<Object> o) {
  Value v(Kind::kObject);
  v.ptr_ = std::move(o);
  return v;
}

std::string Value::undefined_message() const {
  if (ptr_) return static_cast<const UndefinedInfo*>(ptr_.get())->message;
  return "value is undefined";
}

std::string Value::undefined_exc_type() const {
  if (ptr_) return static_cast<const UndefinedInfo*>(ptr_.get())->exc_type;
  return "UndefinedError";
}

// ---- Object

std::optional<Value> Object::get_attr(std::string_view) const { return std::nullopt; }

Value Object::call(Interpreter&, CallArgs) const {
  raise_type_error(fmt::format("'{}' object is not callable", type_name()));
}

std::string Object::repr() const { return fmt::format("<{} object>", type_name()); }

std::optional<Value> Namespace::get_attr(std::string_view name) const {
  if (const Value* v = attrs_.find(name)) return *v;
  return std::nullopt;
}

// Python's repr guards a dict that contains itself ("{...}"); a namespace
// may hold itself through its attributes.
std::string Namespace::repr() const {
  static thread_local std::vector<const Namespace*> active;
  if (std::find(active.begin(), active.end(), this) != active.end()) return "<Namespace {...}>";
  active.push_back(this);
  struct Pop {
    ~Pop() { active.pop_back(); }
  } pop;
  return "<Namespace " + jinja::repr(Value::dict(attrs_)) + ">";
}

// ---- Python semantics

std::string_view type_name(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined: return "Undefined";
    case Value::Kind::kNone: return "NoneType";
    case Value::Kind::kBool: return "bool";
    case Value::Kind::kInt: return "int";
    case Value::Kind::kFloat: return "float";
    case Value::Kind::kString: return v.is_safe() ? "Markup" : "str";
    case Value::Kind::kList: return v.list().is_tuple ? "tuple" : "list";
    case Value::Kind::kDict: return "dict";
    case Value::Kind::kObject: return v.object().type_name();
  }
  return "object";
}

std::string object_type_repr(const Value& v) {
  if (v.is_none()) return "None";
  if (v.is_safe()) return "markupsafe.Markup object";
  if (v.is_object() && v.object().type_name() == "Namespace") return "jinja2.utils.Namespace object";
  return fmt::format("{} object", type_name(v));
}

bool truthy(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone: return false;
    case Value::Kind::kBool:
    case Value::Kind::kInt: return v.as_int() != 0;
    case Value::Kind::kFloat: return v.as_double() != 0.0;
    case Value::Kind::kString: return !v.str().empty();
    case Value::Kind::kList: return !v.list().items.empty();
    case Value::Kind::kDict: return !v.dict().empty();
    case Value::Kind::kObject: return true;
  }
  return false;
}

std::string float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
  // Shortest digits that round-trip, laid out the way Python's repr does.
  char buf[64];
  int prec = 1;
  for (; prec <= 17; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*e", prec - 1, d);
    if (std::strtod(buf, nullptr) == d) break;
  }
  std::string s = buf;
  bool neg = false;
  if (s[0] == '-') {
    neg = true;
    s.erase(0, 1);
  }
  size_t epos = s.find('e');
  int exp10 = std::atoi(s.c_str() + epos + 1);
  std::string digits;
  for (size_t i = 0; i < epos; ++i)
    if (s[i] != '.') digits.push_back(s[i]);
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  int decpt = exp10 + 1;  // value = 0.DIGITS * 10^decpt
  std::string out = neg ? "-" : "";
  if (digits == "0") return out + "0.0";
  if (decpt > -4 && decpt <= 16) {
    if (decpt <= 0) {
      out += "0." + std::string(static_cast<size_t>(-decpt), '0') + digits;
    } else if (static_cast<size_t>(decpt) >= digits.size()) {
      out += digits + std::string(decpt - digits.size(), '0') + ".0";
    } else {
      out += digits.substr(0, decpt) + "." + digits.substr(decpt);
    }
    return out;
  }
  out += digits.substr(0, 1);
  if (digits.size() > 1) out += "." + digits.substr(1);
  int e = decpt - 1;
  out += fmt::format("e{}{:02d}", e < 0 ? '-' : '+', e < 0 ? -e : e);
  return out;
}

namespace {

// Python's str.isprintable, approximately: controls, separators other than
// space, format characters, surrogates and private use are not printable.
bool py_isprintable(char32_t cp) {
  if (cp < 0x20 || cp == 0x7F) return false;
  if (cp >= 0x80 && cp <= 0xA0) return false;
  if (cp == 0xAD) return false;
  if (cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200F) || (cp >= 0x2028 && cp <= 0x202F)) return false;
  if ((cp >= 0x205F && cp <= 0x206F) || cp == 0x3000 || cp == 0xFEFF) return false;
  if ((cp >= 0xD800 && cp <= 0xDFFF) || (cp >= 0xE000 && cp <= 0xF8FF)) return false;
  if (cp >= 0xFFF9 && cp <= 0xFFFB) return false;
  if (cp >= 0xF0000) return false;
  return true;
}

}  // namespace

std::string repr_string(std::string_view s) {
  bool has_single = s.find('\'') != std::string_view::npos;
  bool has_double = s.find('"') != std::string_view::npos;
  char quote = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, quote);
  for (char32_t cp : decode_utf8(s)) {
    if (cp == static_cast<char32_t>(quote) || cp == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(cp));
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp == '\t') {
      out += "\\t";
    } else if (py_isprintable(cp)) {
      append_utf8(out, cp);
    } else if (cp <= 0xFF) {
      out += fmt::format("\\x{:02x}", static_cast<unsigned>(cp));
    } else if (cp <= 0xFFFF) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned>(cp));
    } else {
      out += fmt::format("\\U{:08x}", static_cast<unsigned>(cp));
    }
  }
  out.push_back(quote);
  return out;
}

namespace {

void append_str(std::string& out, const Value& v, bool as_repr);

void append_sequence(std::string& out, const List& l) {
  out += l.is_tuple ? "(" : "[";
  for (size_t i = 0; i < l.items.size(); ++i) {
    if (i) out += ", ";
    append_str(out, l.items[i], true);
  }
  if (l.is_tuple && l.items.size() == 1) out += ",";
  out += l.is_tuple ? ")" : "]";
}

void append_str(std::string& out, const Value& v, bool as_repr) {
  WalkDepth guard;
  // A list may hold the same big string a million times: the text is
  // checked as it grows, not after.
  sandbox_check_string(out.size());
  switch (v.kind()) {
    case Value::Kind::kUndefined: out += as_repr ? "Undefined" : ""; return;
    case Value::Kind::kNone: out += "None"; return;
    case Value::Kind::kBool: out += v.as_bool() ? "True" : "False"; return;
    case Value::Kind::kInt: out += std::to_string(v.as_int()); return;
    case Value::Kind::kFloat: out += float_repr(v.as_double()); return;
    case Value::Kind::kString:
      if (as_repr) {
        if (v.is_safe()) out += "Markup(";
        out += repr_string(v.str());
        if (v.is_safe()) out += ")";
      } else {
        out += v.str();
      }
      return;
    case Value::Kind::kList: append_sequence(out, v.list()); return;
    case Value::Kind::kDict: {
      out += "{";
      bool first = true;
      for (const auto& [k, val] : v.dict().entries()) {
        if (!first) out += ", ";
        first = false;
        append_str(out, k, true);
        out += ": ";
        append_str(out, val, true);
      }
      out += "}";
      return;
    }
    case Value::Kind::kObject: out += v.object().repr(); return;
  }
}

}  // namespace

std::string to_str(const Value& v) {
  if (v.is_string()) return v.str();
  std::string out;
  append_str(out, v, false);
  return out;
}

std::string repr(const Value& v) {
  std::string out;
  append_str(out, v, true);
  return out;
}

bool equals(const Value& a, const Value& b) {
  WalkDepth guard;
  if (a.is_number() && b.is_number()) {
    if (a.is_integral() && b.is_integral()) return a.as_int() == b.as_int();
    return a.as_double() == b.as_double();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone: return true;
    case Value::Kind::kString: return a.str() == b.str();
    case Value::Kind::kList: {
      const List& x = a.list();
      const List& y = b.list();
      if (x.is_tuple != y.is_tuple || x.items.size() != y.items.size()) return false;
      for (size_t i = 0; i < x.items.size(); ++i)
        if (!equals(x.items[i], y.items[i])) return false;
      return true;
    }
    case Value::Kind::kDict: {
      const Dict& x = a.dict();
      const Dict& y = b.dict();
      if (x.size() != y.size()) return false;
      for (const auto& [k, v] : x.entries()) {
        const Value* other = y.find(k);
        if (!other || !equals(v, *other)) return false;
      }
      return true;
    }
    case Value::Kind::kObject: return a.identity() == b.identity();
    default: return false;
  }
}

void raise_undefined(const Value& v) { raise(v.undefined_exc_type(), v.undefined_message()); }

int compare(const Value& a, const Value& b, std::string_view op) {
  WalkDepth guard;
  if (a.is_undefined()) raise_undefined(a);
  if (b.is_undefined()) raise_undefined(b);
  if (a.is_number() && b.is_number()) {
    if (a.is_integral() && b.is_integral()) return a.as_int() < b.as_int() ? -1 : (a.as_int() > b.as_int() ? 1 : 0);
    double x = a.as_double(), y = b.as_double();
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  if (a.is_string() && b.is_string()) {
    int c = a.str().compare(b.str());
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  if (a.is_list() && b.is_list() && a.list().is_tuple == b.list().is_tuple) {
    const auto& x = a.list().items;
    const auto& y = b.list().items;
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (equals(x[i], y[i])) continue;
      return compare(x[i], y[i], op);
    }
    return x.size() < y.size() ? -1 : (x.size() > y.size() ? 1 : 0);
  }
  raise_type_error(fmt::format("'{}' not supported between instances of '{}' and '{}'", op, type_name(a),
                               type_name(b)));
}

std::vector<Value> iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined: return {};
    case Value::Kind::kList: return v.list().items;
    case Value::Kind::kDict: {
      std::vector<Value> keys;
      keys.reserve(v.dict().size());
      for (const auto& [k, val] : v.dict().entries()) keys.push_back(k);
      return keys;
    }
    case Value::Kind::kString: {
      std::vector<Value> chars;
      const std::string& s = v.str();
      sandbox_check_items(s.size() > (size_t(1) << 20) ? count_code_points(s) : 0);
      if (is_ascii(s)) {
        for (char c : s) chars.push_back(Value::string(std::string(1, c)));  // Markup iterates as str
      } else {
        for (char32_t cp : decode_utf8(s)) {
          std::string one;
          append_utf8(one, cp);
          chars.push_back(Value::string(std::move(one)));
        }
      }
      return chars;
    }
    default: raise_type_error(fmt::format("'{}' object is not iterable", type_name(v)));
  }
}

size_t length(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined: return 0;
    case Value::Kind::kString: return count_code_points(v.str());
    case Value::Kind::kList: return v.list().items.size();
    case Value::Kind::kDict: return v.dict().size();
    default: raise_type_error(fmt::format("object of type '{}' has no len()", type_name(v)));
  }
}

Value from_json(const nlohmann::ordered_json& j) {
  using T = nlohmann::ordered_json::value_t;
  // JSON from outside comes within parse_json's limits; this guards the
  // recursion for any other caller.
  WalkDepth guard;
  switch (j.type()) {
    case T::null:
    case T::discarded: return Value::none();
    case T::boolean: return Value::boolean(j.get<bool>());
    case T::number_integer: return Value::integer(j.get<int64_t>());
    case T::number_unsigned: {
      auto u = j.get<uint64_t>();
      if (u <= static_cast<uint64_t>(INT64_MAX)) return Value::integer(static_cast<int64_t>(u));
      return Value::number(static_cast<double>(u));
    }
    case T::number_float: return Value::number(j.get<double>());
    case T::string: return Value::string(j.get<std::string>());
    case T::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (const auto& e : j) items.push_back(from_json(e));
      return Value::list(std::move(items));
    }
    case T::object: {
      Dict d;
      d.reserve(j.size());
      for (const auto& [k, v] : j.items()) d.append_new(Value::string(k), from_json(v));
      return Value::dict(std::move(d));
    }
    case T::binary: {
      std::vector<Value> items;
      for (uint8_t b : j.get_binary()) items.push_back(Value::integer(b));
      return Value::list(std::move(items));
    }
  }
  return Value::none();
}

namespace {

void json_string(std::string& out, std::string_view s, bool ensure_ascii) {
  out.push_back('"');
  auto escape_cp = [&](char32_t cp) {
    switch (cp) {
      case '"': out += "\\\""; return;
      case '\\': out += "\\\\"; return;
      case '\n': out += "\\n"; return;
      case '\r': out += "\\r"; return;
      case '\t': out += "\\t"; return;
      case '\b': out += "\\b"; return;
      case '\f': out += "\\f"; return;
      default: break;
    }
    if (cp < 0x20) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned>(cp));
    } else if (ensure_ascii && cp >= 0x80) {
      if (cp >= 0x10000) {
        char32_t v = cp - 0x10000;
        out += fmt::format("\\u{:04x}\\u{:04x}", static_cast<unsigned>(0xD800 + (v >> 10)),
                           static_cast<unsigned>(0xDC00 + (v & 0x3FF)));
      } else {
        out += fmt::format("\\u{:04x}", static_cast<unsigned>(cp));
      }
    } else {
      append_utf8(out, cp);
    }
  };
  if (is_ascii(s)) {
    for (char c : s) escape_cp(static_cast<unsigned char>(c));
  } else {
    for (char32_t cp : decode_utf8(s)) escape_cp(cp);
  }
  out.push_back('"');
}

std::string json_key(const Value& k) {
  switch (k.kind()) {
    case Value::Kind::kString: return k.str();
    case Value::Kind::kInt: return std::to_string(k.as_int());
    case Value::Kind::kBool: return k.as_bool() ? "true" : "false";
    case Value::Kind::kNone: return "null";
    case Value::Kind::kFloat: {
      double d = k.as_double();
      if (std::isnan(d)) return "NaN";
      if (std::isinf(d)) return d < 0 ? "-Infinity" : "Infinity";
      return float_repr(d);
    }
    default:
      raise_type_error(fmt::format("keys must be str, int, float, bool or None, not {}", type_name(k)));
  }
}

void json_value(std::string& out, const Value& v, const JsonOptions& o, int level) {
  WalkDepth guard;
  sandbox_check_string(out.size());
  auto newline = [&](int lvl) {
    if (!o.indent) return;
    out.push_back('\n');
    for (int i = 0; i < lvl; ++i) out += *o.indent;
  };
  switch (v.kind()) {
    case Value::Kind::kNone: out += "null"; return;
    case Value::Kind::kBool: out += v.as_bool() ? "true" : "false"; return;
    case Value::Kind::kInt: out += std::to_string(v.as_int()); return;
    case Value::Kind::kFloat: {
      double d = v.as_double();
      if (std::isnan(d)) out += "NaN";
      else if (std::isinf(d)) out += d < 0 ? "-Infinity" : "Infinity";
      else out += float_repr(d);
      return;
    }
    case Value::Kind::kString: json_string(out, v.str(), o.ensure_ascii); return;
    case Value::Kind::kList: {
      const auto& items = v.list().items;
      if (items.empty()) {
        out += "[]";
        return;
      }
      out.push_back('[');
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += o.item_separator;
        newline(level + 1);
        json_value(out, items[i], o, level + 1);
      }
      newline(level);
      out.push_back(']');
      return;
    }
    case Value::Kind::kDict: {
      const Dict& d = v.dict();
      if (d.empty()) {
        out += "{}";
        return;
      }
      std::vector<const Dict::Entry*> entries;
      entries.reserve(d.size());
      for (const auto& e : d.entries()) entries.push_back(&e);
      if (o.sort_keys) {
        std::stable_sort(entries.begin(), entries.end(), [](const Dict::Entry* a, const Dict::Entry* b) {
          return compare(a->first, b->first, "<") < 0;
        });
      }
      out.push_back('{');
      bool first = true;
      for (const Dict::Entry* e : entries) {
        if (!first) out += o.item_separator;
        first = false;
        newline(level + 1);
        json_string(out, json_key(e->first), o.ensure_ascii);
        out += o.key_separator;
        json_value(out, e->second, o, level + 1);
      }
      newline(level);
      out.push_back('}');
      return;
    }
    case Value::Kind::kUndefined:
    case Value::Kind::kObject:
      raise_type_error(fmt::format("Object of type {} is not JSON serializable", type_name(v)));
  }
}

}  // namespace

std::string to_json(const Value& v, const JsonOptions& options) {
  std::string out;
  json_value(out, v, options, 0);
  return out;
}

}  // namespace codey::jinja
