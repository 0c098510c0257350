// Jinja's built-in filters, tests and globals, and Hugging Face's additions
// (raise_exception, strftime_now, tojson with indent).
#pragma once

#include <optional>
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

}  // namespace codey::jinja
