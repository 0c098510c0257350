// libFuzzer target: the OpenAI and Ollama request parsers of `codey serve`
// (src/server/requests.cc over parse_body's JSON with its depth and value
// limits). Any body: a clean 4xx error or a parsed request, never a crash,
// never a status outside 400-499 for what the client sent. The first byte
// picks the endpoint.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "server/api.h"
#include "server/requests.h"

using namespace codey::server;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  auto json = parse_body(body);
  if (!json) {
    if (json.error().status < 400 || json.error().status > 499) __builtin_trap();
    return 0;
  }
  ApiResult<ParsedRequest> r = [&] {
    switch (data[0] % 4) {
      case 0: return parse_openai_chat(*json);
      case 1: return parse_openai_completion(*json);
      case 2: return parse_ollama_chat(*json);
      default: return parse_ollama_generate(*json);
    }
  }();
  if (!r && (r.error().status < 400 || r.error().status > 499)) __builtin_trap();
  return 0;
}
