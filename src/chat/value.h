// Values of codey's Jinja interpreter: Python's data model as chat templates
// see it (None, bool, int, float, str, list/tuple, dict, Undefined, objects),
// with Python's str()/repr()/==/< and json.dumps semantics.
#pragma once

#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "codey/base.h"

namespace codey::jinja {

// A template failure. `type` is the Python exception class the reference
// (Jinja under Hugging Face) raises - "TemplateError" for raise_exception(),
// "UndefinedError", "TypeError", ... - so messages read the same.
struct JinjaError : std::exception {
  std::string type;
  std::string message;
  ErrorCode code = ErrorCode::kInvalidArgument;
  int line = 0;  // template line, 0 when unknown
  JinjaError(std::string t, std::string m, ErrorCode c = ErrorCode::kInvalidArgument)
      : type(std::move(t)), message(std::move(m)), code(c) {}
  const char* what() const noexcept override { return message.c_str(); }
};
[[noreturn]] void raise(std::string type, std::string message,
                        ErrorCode code = ErrorCode::kInvalidArgument);
[[noreturn]] void raise_type_error(std::string message);

class Value;
class Object;
class Interpreter;

struct List {
  std::vector<Value> items;
  bool is_tuple = false;
  int depth = 1;  // nesting levels, this one included (set by Value::list)
};

// Insertion-ordered mapping with Python key equality (1 == 1.0 == True).
// Linear lookup: template dicts (messages, tool schemas) are small.
class Dict {
 public:
  using Entry = std::pair<Value, Value>;
  const Value* find(const Value& key) const;
  const Value* find(std::string_view key) const;
  // Replaces the value of an equal key in place, else appends.
  void set(Value key, Value value);
  // Appends without the duplicate check; the caller knows `key` is new.
  void append_new(Value key, Value value);
  const std::vector<Entry>& entries() const { return entries_; }
  // Defined below Value: Value is incomplete here (clang refuses them inline).
  size_t size() const;
  bool empty() const;
  void reserve(size_t n);
  int depth = 1;  // nesting levels, this one included (set by Value::dict)

 private:
  std::vector<Entry> entries_;
};

// Why a value is undefined, for the error raised when it is used.
struct UndefinedInfo {
  std::string message;                  // "'x' is undefined", ...
  std::string exc_type = "UndefinedError";
};

// Immutable once built (lists and dicts are shared, copies are cheap); only
// Namespace objects change, through their own interface. Inside a render,
// making a string, list or dict is checked against the render's sandbox
// (size, nesting, live memory: chat/sandbox.h) and charged to it.
class Value {
 public:
  enum class Kind : uint8_t { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kObject };

  Value() = default;  // Undefined without a hint
  static Value undefined(std::string message, std::string exc_type = "UndefinedError");
  static Value none() { return Value(Kind::kNone); }
  static Value boolean(bool b) {
    Value v(Kind::kBool);
    v.i_ = b ? 1 : 0;
    return v;
  }
  static Value integer(int64_t i) {
    Value v(Kind::kInt);
    v.i_ = i;
    return v;
  }
  static Value number(double f) {
    Value v(Kind::kFloat);
    v.f_ = f;
    return v;
  }
  // `safe`: a markupsafe.Markup string (from |safe, |escape).
  static Value string(std::string s, bool safe = false);
  static Value list(std::vector<Value> items, bool is_tuple = false);
  static Value dict(Dict d);
  static Value object(std::shared_ptr<Object> o);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::kUndefined; }
  bool is_none() const { return kind_ == Kind::kNone; }
  bool is_bool() const { return kind_ == Kind::kBool; }
  bool is_int() const { return kind_ == Kind::kInt; }
  bool is_float() const { return kind_ == Kind::kFloat; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_list() const { return kind_ == Kind::kList; }  // list or tuple
  bool is_tuple() const { return kind_ == Kind::kList && list().is_tuple; }
  bool is_dict() const { return kind_ == Kind::kDict; }
  bool is_object() const { return kind_ == Kind::kObject; }
  // Python numbers.Number: bool, int, float.
  bool is_number() const { return kind_ == Kind::kBool || kind_ == Kind::kInt || kind_ == Kind::kFloat; }
  // bool or int (Python's int, of which bool is a subclass).
  bool is_integral() const { return kind_ == Kind::kBool || kind_ == Kind::kInt; }

  bool as_bool() const { return i_ != 0; }
  int64_t as_int() const { return i_; }  // bool or int
  double as_double() const { return kind_ == Kind::kFloat ? f_ : static_cast<double>(i_); }
  const std::string& str() const { return *static_cast<const std::string*>(ptr_.get()); }
  bool is_safe() const { return kind_ == Kind::kString && flag_; }
  const List& list() const { return *static_cast<const List*>(ptr_.get()); }
  const Dict& dict() const { return *static_cast<const Dict*>(ptr_.get()); }
  Object& object() const { return *static_cast<Object*>(ptr_.get()); }
  std::shared_ptr<Object> object_ptr() const { return std::static_pointer_cast<Object>(ptr_); }
  // Message and exception type raised when this undefined value is used.
  std::string undefined_message() const;
  std::string undefined_exc_type() const;
  // Identity (Python `is`) for shared values.
  const void* identity() const { return ptr_.get(); }

 private:
  explicit Value(Kind k) : kind_(k) {}
  Kind kind_ = Kind::kUndefined;
  bool flag_ = false;
  union {
    int64_t i_ = 0;
    double f_;
  };
  std::shared_ptr<void> ptr_;
};

inline size_t Dict::size() const { return entries_.size(); }
inline bool Dict::empty() const { return entries_.empty(); }
inline void Dict::reserve(size_t n) { entries_.reserve(n); }

struct CallArgs {
  std::vector<Value> args;
  std::vector<std::pair<std::string, Value>> kwargs;
};

// Callables and other objects (macros, namespace(), loop, bound methods).
class Object {
 public:
  virtual ~Object() = default;
  // Python class name, for messages ("Namespace", "Macro", ...).
  virtual std::string_view type_name() const = 0;
  // `obj.name`; nullopt when the object has no such attribute.
  virtual std::optional<Value> get_attr(std::string_view name) const;
  virtual bool callable() const { return false; }
  virtual Value call(Interpreter& interp, CallArgs args) const;
  virtual std::string repr() const;
  // Nesting levels of the values it holds, itself included (lists and dicts
  // count theirs the same way), so that no chain of values gets deeper than
  // the sandbox allows (its destruction would recurse as deep).
  virtual int depth() const { return 1; }
};

// namespace(): the one mutable object, so loops can carry state out.
class Namespace final : public Object {
 public:
  std::string_view type_name() const override { return "Namespace"; }
  std::optional<Value> get_attr(std::string_view name) const override;
  std::string repr() const override;
  void set_attr(std::string name, Value v) { attrs_.set(Value::string(std::move(name)), std::move(v)); }
  const Dict& attrs() const { return attrs_; }
  void clear() { attrs_ = Dict(); }

 private:
  Dict attrs_;
};

// A builtin callable (range, namespace, bound str methods, loop.cycle, ...).
class NativeFunction final : public Object {
 public:
  using Fn = std::function<Value(Interpreter& interp, CallArgs& args)>;
  NativeFunction(std::string name, Fn fn, std::string type = "builtin_function_or_method")
      : name_(std::move(name)), type_(std::move(type)), fn_(std::move(fn)) {}
  std::string_view type_name() const override { return type_; }
  bool callable() const override { return true; }
  Value call(Interpreter& interp, CallArgs args) const override { return fn_(interp, args); }
  std::string repr() const override { return "<built-in function " + name_ + ">"; }

 private:
  std::string name_;
  std::string type_;
  Fn fn_;
};

// Nesting levels: 0 for scalars, 1 + the deepest item for lists and dicts.
int value_depth(const Value& v);
// max(value_depth) over `items`, + 1; MemoryError beyond the sandbox's limit.
int nested_depth(const std::vector<Value>& items);

// Python semantics.
std::string_view type_name(const Value& v);
bool truthy(const Value& v);
std::string to_str(const Value& v);  // str(v); Undefined -> ""
std::string repr(const Value& v);
std::string repr_string(std::string_view s);
std::string float_repr(double d);
bool equals(const Value& a, const Value& b);
// Three-way compare for <, <=, >, >=; TypeError when Python cannot order them.
int compare(const Value& a, const Value& b, std::string_view op);
// Iterating: list items, dict keys, string characters; Undefined is empty.
std::vector<Value> iterate(const Value& v);
size_t length(const Value& v);
[[noreturn]] void raise_undefined(const Value& v);
// Python's `"Undefined"`-style description: "'dict object'" for messages.
std::string object_type_repr(const Value& v);

Value from_json(const nlohmann::ordered_json& j);

// json.dumps(v, ensure_ascii, indent, separators, sort_keys) as Hugging Face's
// tojson filter calls it. indent: nullopt = single line; a string is used as
// the indent unit (Python accepts an int or a str).
struct JsonOptions {
  std::optional<std::string> indent;
  std::string item_separator = ", ";
  std::string key_separator = ": ";
  bool ensure_ascii = false;
  bool sort_keys = false;
};
std::string to_json(const Value& v, const JsonOptions& options);

}  // namespace codey::jinja
