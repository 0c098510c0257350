// Argument binding and argument conversions shared by the Jinja builtins:
// filters, tests and globals (filters.h) and the str/dict/list methods (py_str.h).
#pragma once

#include <string>
#include <string_view>

#include "chat/ast.h"
#include "chat/value.h"

namespace codey::jinja {

// Binds CallArgs against a Python-like signature for builtins: positional
// first, then keywords by name; TypeError for unknown or duplicate ones.
class ArgBinder {
 public:
  ArgBinder(std::string_view fn_name, CallArgs& args, std::initializer_list<std::string_view> names,
            bool allow_extra_positional = false);
  bool has(size_t i) const { return present_[i]; }
  const Value& get(size_t i) const { return values_[i]; }
  Value get_or(size_t i, Value dflt) const { return present_[i] ? values_[i] : std::move(dflt); }
  // Positional arguments beyond the named ones (for *args functions).
  const std::vector<Value>& extra() const { return extra_; }

 private:
  std::vector<Value> values_;
  std::vector<bool> present_;
  std::vector<Value> extra_;
};

// An integer argument (bools count); TypeError otherwise, UndefinedError for undefined.
int64_t arg_int(const Value& v);
// A str argument of `fn`; TypeError otherwise.
const std::string& arg_str(const Value& v, std::string_view fn);
// Jinja's soft_str: strings (and Markup) stay, everything else becomes str().
Value soft_str(const Value& v);
Value lower_if_string(const Value& v);

}  // namespace codey::jinja
