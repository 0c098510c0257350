// What the OpenAI and Ollama front ends share: API errors with their HTTP
// status, typed reading of request fields (errors name the field and what
// was wrong), the bodies each API shapes its errors as, and timestamps.
#pragma once

#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "codey/chat.h"
#include "codey/runtime.h"

namespace codey::server {

// Key order is visible to clients (and to chat templates via tojson).
using Json = nlohmann::ordered_json;

enum class ApiKind { kOpenAi, kOllama, kCodey };

struct ApiError {
  int status = 400;
  std::string message;
  std::string param;  // the offending field ("messages[1].content"), if any
  std::string code;   // machine-readable ("invalid_request", "model_not_found", ...)
  std::optional<Millis> retry_after;
};
template <class T>
using ApiResult = std::expected<T, ApiError>;

// 400 naming the field: message reads "<param>: <what>".
std::unexpected<ApiError> bad_field(std::string_view param, std::string_view what);
// 400/404/413/429/503/500 for a runtime error.
ApiError from_request_error(const RequestError& e);
int http_status_of(RequestErrorCode code);

// Request bodies, and the JSON strings in them parsed again (tool-call
// arguments), nest at most this deep (the template engine and dump()
// recurse; a body cannot make them run out of stack) and hold at most this
// many values (a body of "[],[],..." would cost ~70 bytes per byte).
inline constexpr int kMaxJsonDepth = 64;
inline constexpr size_t kMaxJsonValues = size_t(1) << 18;
inline constexpr JsonLimits kRequestJsonLimits{kMaxJsonDepth, kMaxJsonValues};

// Parses a request body that must be a JSON object. Errors say where the
// JSON broke (byte offset), or that it is too deep or too large.
ApiResult<Json> parse_body(std::string_view body);

// "a string", "a number", ... for messages.
std::string_view json_type_name(const Json& v);

// Field readers over an object. Absent or null -> nullopt. A wrong type or
// a value out of [lo, hi] -> 400 naming `path` (e.g. "options.top_k").
ApiResult<std::optional<double>> read_number(const Json& obj, std::string_view key, std::string_view path,
                                             double lo, double hi);
ApiResult<std::optional<int64_t>> read_int(const Json& obj, std::string_view key, std::string_view path,
                                           int64_t lo, int64_t hi);
ApiResult<std::optional<bool>> read_bool(const Json& obj, std::string_view key, std::string_view path);
ApiResult<std::optional<std::string>> read_string(const Json& obj, std::string_view key, std::string_view path);
// A string or an array of strings (stop sequences); at most `max_count`, none empty.
ApiResult<std::vector<std::string>> read_string_list(const Json& obj, std::string_view key, std::string_view path,
                                                     size_t max_count);

// Error bodies: OpenAI's {"error": {"message", "type", "param", "code"}} and
// Ollama's {"error": "message"}.
Json openai_error_body(const ApiError& e);
Json ollama_error_body(const ApiError& e);
Json error_body(ApiKind api, const ApiError& e);

// JSON text for the wire: invalid UTF-8 (never expected; the stream decoder
// emits valid UTF-8) is replaced instead of throwing.
std::string dump(const Json& j);

// "2024-05-01T12:34:56.123456789Z" (Ollama's created_at / modified_at).
std::string rfc3339(std::chrono::system_clock::time_point t);
int64_t unix_seconds(std::chrono::system_clock::time_point t);

}  // namespace codey::server
