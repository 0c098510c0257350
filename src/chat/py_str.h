// Python str semantics for the Jinja interpreter (strings are sequences of
// code points; see utf8.h) and the str / dict / list methods the sandbox lets
// templates call.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "chat/ast.h"
#include "chat/value.h"

namespace codey::jinja {

// str.strip / lstrip / rstrip with Python's `chars` argument (None: whitespace).
std::string py_strip(const std::string& s, const Value& chars, bool left, bool right);
// str.split() / str.split(sep) / str.rsplit(...); maxsplit < 0: no limit.
std::vector<std::string> split_whitespace(const std::string& s, int64_t maxsplit);
std::vector<std::string> split_sep(const std::string& s, const std::string& sep, int64_t maxsplit);
std::vector<std::string> rsplit_sep(const std::string& s, const std::string& sep, int64_t maxsplit);
std::vector<std::string> rsplit_whitespace(const std::string& s, int64_t maxsplit);
std::vector<std::string> splitlines(const std::string& s, bool keepends);
// count < 0: replace all.
std::string py_replace(const std::string& s, const std::string& old, const std::string& rep, int64_t count);
std::string py_title(const std::string& s);
std::string py_capitalize(const std::string& s);
// s[start:end] in code points (None / undefined: open end).
std::string py_substr(const std::string& s, const Value& start, const Value& end);
// MemoryError (in a render: chat/sandbox.h) before padding `s` with `n`
// `fill` characters would make too long a string.
void check_padding(const std::string& s, int64_t n, char32_t fill);
// Pads to `width` code points: align '<' (ljust), '>' (rjust), '^' (centre).
std::string pad_string(const std::string& s, int64_t width, char32_t fill, char align);
std::string py_center(const std::string& s, int64_t width, char32_t fill);

// Python's `fmt % args` (str % tuple / dict / value).
std::string printf_format(std::string_view fmt, const Value& args);
std::string html_escape(std::string_view s);

// Methods on str / dict / list values.
enum class MethodKind { kNone, kSafe, kUnsafe };
MethodKind method_kind(const Value& self, std::string_view name);
// The bound method as a value (for `x.method` without a call).
Value bound_method(const Value& self, std::string_view name);
Value call_method(Interpreter& interp, const Value& self, std::string_view name, CallArgs& args);
// The undefined value the sandbox returns for list.append & co.
Value unsafe_attribute(const Value& self, std::string_view name);

}  // namespace codey::jinja
