// Tool calls in model output: which syntax a chat template teaches its model
// (Hermes/Qwen <tool_call>{json}</tool_call>, Mistral [TOOL_CALLS][...], or a
// bare JSON object as Llama 3.1 uses), and a parser that separates calls from
// content while the text streams in.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "server/api.h"

namespace codey::server {

enum class ToolFormat {
  kNone,    // the template never mentions tools: requests with tools are refused
  kHermes,  // <tool_call>{"name": ..., "arguments": {...}}</tool_call> (Qwen, Hermes, SmolLM3)
  kMistral, // [TOOL_CALLS] [{"name": ..., "arguments": {...}}]
  kJson,    // the whole reply is {"name": ..., "arguments"|"parameters": {...}} (Llama 3.1, others)
};
ToolFormat detect_tool_format(std::string_view template_source);
std::string_view tool_format_name(ToolFormat f);

struct ToolCall {
  std::string name;
  Json arguments = Json::object();  // an object
};

// Not thread-safe; one per response.
class ToolCallParser {
 public:
  explicit ToolCallParser(ToolFormat format) : format_(format) {}
  // Content that can be shown now; text that may be (the start of) a tool
  // call is held back until finish().
  std::string push(std::string_view text);
  struct Output {
    std::string content;  // what was held back and is content after all
    std::vector<ToolCall> calls;
  };
  // End of output. If the held text does not parse as calls, it is content.
  Output finish();

 private:
  ToolFormat format_;
  std::string pending_;  // content not emitted yet (may be a marker's prefix)
  std::string held_;     // text from the marker / first brace on
  bool holding_ = false;
  bool decided_ = false;  // kJson: the reply's first non-space character was seen
};

// Parses one call object {"name": s, "arguments"|"parameters": object or JSON string}.
std::optional<ToolCall> parse_tool_call_object(const Json& j);

}  // namespace codey::server
