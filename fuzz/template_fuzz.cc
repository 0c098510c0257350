// libFuzzer target: the chat template engine (src/chat: lexer, parser,
// interpreter) with the sandbox's limits on, as for a template inside a
// GGUF file. Any template text: parse or render errors are fine, a crash, a
// hang or unbounded memory is a finding. The limits are smaller than serve's
// so that one input stays quick; the output must respect max_string.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "codey/chat.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view source(reinterpret_cast<const char*>(data), size);
  auto t = codey::ChatTemplate::parse(source);
  if (!t) return 0;
  codey::ChatTemplateInputs in;
  in.messages = nlohmann::ordered_json::parse(
      R"([{"role":"system","content":"Be brief."},{"role":"user","content":"hi <b>"},)"
      R"({"role":"assistant","content":"","tool_calls":[{"type":"function","function":{"name":"f","arguments":{"a":[1,2,{"b":null}]}}}]},)"
      R"({"role":"tool","content":"42"}])");
  in.tools = nlohmann::ordered_json::parse(R"([{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}])");
  in.bos_token = "<s>";
  in.eos_token = "</s>";
  in.now = std::tm{};
  in.limits.max_steps = 200'000;
  in.limits.max_time = std::chrono::milliseconds(2000);
  in.limits.max_string = 1 << 20;
  in.limits.max_items = 1 << 14;
  in.limits.max_depth = 50;
  in.limits.max_memory = 64 << 20;
  auto out = t->render(in);
  if (out && out->size() > in.limits.max_string) __builtin_trap();
  return 0;
}
