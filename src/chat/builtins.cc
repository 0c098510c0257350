// Argument binding and argument conversions shared by the Jinja builtins
// (filters.cc: filters, tests, globals; py_str.cc: str/dict/list methods).
#include "chat/builtins.h"

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

Value lower_if_string(const Value& v) { return v.is_string() ? Value::string(py_lower(v.str())) : v; }

}  // namespace codey::jinja
