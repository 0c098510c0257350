// Jinja's static scope analysis (jinja2/idtracking.py): which names each
// scope treats as its own local starting out undefined.
#pragma once

#include <string>
#include <vector>

#include "chat/ast.h"

namespace codey::jinja {

// Fills Stmt::undefined_locals for every scope in `body`; returns the
// template root's list.
std::vector<std::string> analyze_scopes(Body& body);

}  // namespace codey::jinja
