// API errors, field readers, error bodies and timestamps (see api.h).
#include "server/api.h"

#include <cmath>
#include <ctime>
#include <limits>

#include <fmt/format.h>

#include "codey/chat.h"

namespace codey::server {

std::unexpected<ApiError> bad_field(std::string_view param, std::string_view what) {
  ApiError e;
  e.status = 400;
  e.param = std::string(param);
  e.message = param.empty() ? std::string(what) : fmt::format("{}: {}", param, what);
  e.code = "invalid_request";
  return std::unexpected(std::move(e));
}

int http_status_of(RequestErrorCode code) {
  // 500 only for the operator's or codey's own faults, never for what a client sent.
  return suggested_http_status(code);
}

ApiError from_request_error(const RequestError& e) {
  ApiError out;
  out.status = http_status_of(e.code);
  out.message = e.message;
  out.retry_after = e.retry_after;
  switch (e.code) {
    case RequestErrorCode::kInvalidRequest: out.code = "invalid_request"; break;
    case RequestErrorCode::kModelNotFound: out.code = "model_not_found"; out.param = "model"; break;
    case RequestErrorCode::kPromptTooLong: out.code = "context_length_exceeded"; break;
    case RequestErrorCode::kBusy: out.code = "busy"; break;
    case RequestErrorCode::kInsufficientMemory: out.code = "insufficient_memory"; break;
    case RequestErrorCode::kShuttingDown: out.code = "shutting_down"; break;
    case RequestErrorCode::kLoadFailed: out.code = "load_failed"; break;
    case RequestErrorCode::kInternal: out.code = "internal_error"; break;
  }
  // Busy and shutting down are worth retrying; say when.
  if (!out.retry_after && (e.code == RequestErrorCode::kBusy || e.code == RequestErrorCode::kShuttingDown))
    out.retry_after = std::chrono::seconds(1);
  return out;
}

ApiResult<Json> parse_body(std::string_view body) {
  if (body.empty()) return bad_field("", "the request body is empty; expected a JSON object");
  auto j = parse_json<Json>(body, kRequestJsonLimits);
  if (!j) return bad_field("", fmt::format("the request body {}", j.error().message));
  if (!j->is_object()) return bad_field("", fmt::format("expected a JSON object as the request body, got {}", json_type_name(*j)));
  return std::move(*j);
}

std::string_view json_type_name(const Json& v) {
  switch (v.type()) {
    case Json::value_t::null: return "null";
    case Json::value_t::object: return "an object";
    case Json::value_t::array: return "an array";
    case Json::value_t::string: return "a string";
    case Json::value_t::boolean: return "a boolean";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
    case Json::value_t::number_float: return "a number";
    case Json::value_t::binary: return "binary data";
    case Json::value_t::discarded: return "nothing";
  }
  return "a value";
}

namespace {

const Json* field(const Json& obj, std::string_view key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string describe(const Json& v) {
  if (v.is_string()) {
    std::string s = v.get<std::string>();
    if (s.size() > 40) s = s.substr(0, 40) + "...";
    return fmt::format("the string \"{}\"", s);
  }
  if (v.is_number() || v.is_boolean()) return dump(v);
  return std::string(json_type_name(v));
}

}  // namespace

ApiResult<std::optional<double>> read_number(const Json& obj, std::string_view key, std::string_view path, double lo,
                                             double hi) {
  const Json* v = field(obj, key);
  if (!v) return std::nullopt;
  if (!v->is_number()) return bad_field(path, fmt::format("expected a number in [{}, {}], got {}", lo, hi, describe(*v)));
  const double x = v->get<double>();
  if (!std::isfinite(x) || x < lo || x > hi)
    return bad_field(path, fmt::format("expected a number in [{}, {}], got {}", lo, hi, dump(*v)));
  return x;
}

ApiResult<std::optional<int64_t>> read_int(const Json& obj, std::string_view key, std::string_view path, int64_t lo,
                                           int64_t hi) {
  const Json* v = field(obj, key);
  if (!v) return std::nullopt;
  auto bad = [&] { return bad_field(path, fmt::format("expected an integer in [{}, {}], got {}", lo, hi, describe(*v))); };
  if (v->is_number_unsigned()) {
    const uint64_t u = v->get<uint64_t>();
    if (u > static_cast<uint64_t>(hi) || (lo > 0 && u < static_cast<uint64_t>(lo))) return bad();
    return static_cast<int64_t>(u);
  }
  if (v->is_number_integer()) {
    const int64_t i = v->get<int64_t>();
    if (i < lo || i > hi) return bad();
    return i;
  }
  if (v->is_number_float()) {  // 16.0 is an integer to most clients
    const double d = v->get<double>();
    if (!std::isfinite(d) || d != std::floor(d) || d < static_cast<double>(lo) || d > static_cast<double>(hi)) return bad();
    return static_cast<int64_t>(d);
  }
  return bad();
}

ApiResult<std::optional<bool>> read_bool(const Json& obj, std::string_view key, std::string_view path) {
  const Json* v = field(obj, key);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) return bad_field(path, fmt::format("expected true or false, got {}", describe(*v)));
  return v->get<bool>();
}

ApiResult<std::optional<std::string>> read_string(const Json& obj, std::string_view key, std::string_view path) {
  const Json* v = field(obj, key);
  if (!v) return std::nullopt;
  if (!v->is_string()) return bad_field(path, fmt::format("expected a string, got {}", describe(*v)));
  return v->get<std::string>();
}

ApiResult<std::vector<std::string>> read_string_list(const Json& obj, std::string_view key, std::string_view path,
                                                     size_t max_count) {
  std::vector<std::string> out;
  const Json* v = field(obj, key);
  if (!v) return out;
  if (v->is_string()) {
    if (v->get_ref<const std::string&>().empty()) return bad_field(path, "expected a non-empty string");
    out.push_back(v->get<std::string>());
    return out;
  }
  if (!v->is_array())
    return bad_field(path, fmt::format("expected a string or an array of strings, got {}", describe(*v)));
  if (v->size() > max_count)
    return bad_field(path, fmt::format("at most {} strings are allowed, got {}", max_count, v->size()));
  for (size_t i = 0; i < v->size(); ++i) {
    const Json& s = (*v)[i];
    const std::string p = fmt::format("{}[{}]", path, i);
    if (!s.is_string()) return bad_field(p, fmt::format("expected a string, got {}", describe(s)));
    if (s.get_ref<const std::string&>().empty()) return bad_field(p, "expected a non-empty string");
    out.push_back(s.get<std::string>());
  }
  return out;
}

Json openai_error_body(const ApiError& e) {
  std::string_view type = "invalid_request_error";
  if (e.status == 401) type = "authentication_error";
  else if (e.status == 404) type = "invalid_request_error";
  else if (e.status == 429) type = "rate_limit_error";
  else if (e.status >= 500) type = "server_error";
  Json err = Json::object();
  err["message"] = e.message;
  err["type"] = type;
  err["param"] = e.param.empty() ? Json(nullptr) : Json(e.param);
  err["code"] = e.code.empty() ? Json(nullptr) : Json(e.code);
  return Json{{"error", err}};
}

Json ollama_error_body(const ApiError& e) { return Json{{"error", e.message}}; }

Json error_body(ApiKind api, const ApiError& e) {
  // codey's own routes use the richer OpenAI shape (message, code, param).
  return api == ApiKind::kOllama ? ollama_error_body(e) : openai_error_body(e);
}

std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

std::string rfc3339(std::chrono::system_clock::time_point t) {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ns / 1000000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:09d}Z", buf, ns % 1000000000);
}

int64_t unix_seconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

}  // namespace codey::server
