// parse_json (include/codey/chat.h): nlohmann's parser with a callback that
// counts depth and values as they are read and stops at the first excess.
#include <fmt/format.h>

#include "codey/chat.h"

namespace codey {
namespace {

struct LimitHit {
  bool depth;
};

}  // namespace

template <class J>
Result<J> parse_json(std::string_view text, const JsonLimits& limits) {
  size_t values = 0;
  try {
    using Event = typename J::parse_event_t;
    J j = J::parse(text.begin(), text.end(), [&](int depth, Event ev, J&) {
      if (depth > limits.max_depth) throw LimitHit{true};
      if ((ev == Event::value || ev == Event::object_start || ev == Event::array_start) && ++values > limits.max_values)
        throw LimitHit{false};
      return true;
    });
    return j;
  } catch (const LimitHit& hit) {
    if (hit.depth) return make_error(ErrorCode::kResourceExhausted, "nests deeper than {} levels", limits.max_depth);
    return make_error(ErrorCode::kResourceExhausted, "has more than {} values", limits.max_values);
  } catch (const nlohmann::json::parse_error& e) {
    // e.what() reads "[json.exception.parse_error.101] parse error at line 1, column 5: ..."; keep the part after the id.
    std::string what = e.what();
    if (auto p = what.find("] "); p != std::string::npos) what = what.substr(p + 2);
    return make_error(ErrorCode::kInvalidArgument, "is not valid JSON: {}", what);
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kInvalidArgument, "is not valid JSON: {}", e.what());
  }
}

template Result<nlohmann::ordered_json> parse_json<nlohmann::ordered_json>(std::string_view, const JsonLimits&);
template Result<nlohmann::json> parse_json<nlohmann::json>(std::string_view, const JsonLimits&);

}  // namespace codey
