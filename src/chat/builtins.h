// Jinja's built-in filters, tests and globals, Hugging Face's additions
// (raise_exception, strftime_now, tojson with indent), and the Python str /
// dict / list methods the sandbox lets templates call.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "chat/ast.h"
#include "chat/value.h"

namespace codey::jinja {

// nullptr when there is no such filter/test.
FilterFn find_filter(std::string_view name);
TestFn find_test(std::string_view name);
// Jinja has it but codey does not (so the error says "unsupported").
bool is_unsupported_jinja_filter(std::string_view name);

// range, dict, namespace, cycler, joiner, raise_exception, strftime_now.
std::optional<Value> find_global(std::string_view name);

// Methods on str / dict / list values.
enum class MethodKind { kNone, kSafe, kUnsafe };
MethodKind method_kind(const Value& self, std::string_view name);
// The bound method as a value (for `x.method` without a call).
Value bound_method(const Value& self, std::string_view name);
Value call_method(Interpreter& interp, const Value& self, std::string_view name, CallArgs& args);
// The undefined value the sandbox returns for list.append & co.
Value unsafe_attribute(const Value& self, std::string_view name);

// Python's `fmt % args` (str % tuple / dict / value).
std::string printf_format(std::string_view fmt, const Value& args);
std::string html_escape(std::string_view s);

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

}  // namespace codey::jinja
