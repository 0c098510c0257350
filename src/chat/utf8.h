// UTF-8 and Python str helpers for the Jinja interpreter: Python strings are
// sequences of code points, so lengths, indices and case maps work on those.
#pragma once

#include <string>
#include <string_view>

namespace codey::jinja {

// Invalid bytes decode to U+DC80+byte (Python's surrogateescape) and encode
// back to the same byte, so no input is ever lost or altered by a round trip.
std::u32string decode_utf8(std::string_view s);
void append_utf8(std::string& out, char32_t cp);
std::string encode_utf8(std::u32string_view s);
size_t count_code_points(std::string_view s);
bool is_ascii(std::string_view s);
// Byte offset -> code point index (for str.find), and the inverse.
size_t code_point_index(std::string_view s, size_t byte_offset);

// Python's str.isspace for one code point.
bool py_isspace(char32_t cp);
char32_t py_upper(char32_t cp);
char32_t py_lower(char32_t cp);
bool py_isalpha(char32_t cp);
bool py_isdigit(char32_t cp);
bool py_isalnum(char32_t cp);
// A letter that has case (Python's "cased" characters).
bool py_iscased(char32_t cp);
// \w in Python's re: letters, digits and underscore.
bool py_isword(char32_t cp);

std::string py_upper(std::string_view s);
std::string py_lower(std::string_view s);

}  // namespace codey::jinja
