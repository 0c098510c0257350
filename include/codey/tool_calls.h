// Tool calls in model text: which syntax a chat template teaches its model,
// the text of a call in that syntax (render) and the calls in a model's reply
// (parse, whole or while it streams). One home for both front ends: `codey
// serve` turns the calls into OpenAI/Ollama tool_calls, `codey task`'s router
// is constrained to a rendered call and parses it back.
//
// Model output is hostile: parsing is bounded (kMaxToolCallBytes of held text,
// kMaxToolCallDepth of nesting) and whatever does not parse as calls is plain
// content, never an error and never a partial call.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace codey {

enum class ToolCallFormat {
  kNone,           // the template never renders `tools`: it cannot take them
  kJson,           // the whole reply is {"name": ..., "arguments": {...}} (or an array of them)
  kHermes,         // <tool_call>{"name": ..., "arguments": {...}}</tool_call> (Qwen2.5, Hermes, SmolLM3)
  kQwen3Coder,     // <tool_call><function=NAME><parameter=P>value</parameter></function></tool_call>
  kLlama3,         // [<|python_tag|>]{"name": ..., "parameters": {...}}, several joined by ';'
  kMistral,        // [TOOL_CALLS][{"name": ..., "arguments": {...}}] or [TOOL_CALLS]NAME[ARGS]{...}
  kFunctionGemma,  // <start_function_call>call:NAME{key:<escape>text<escape>,n:1}<end_function_call>
};
inline constexpr ToolCallFormat kToolCallFormats[] = {
    ToolCallFormat::kJson,    ToolCallFormat::kHermes,  ToolCallFormat::kQwen3Coder,   ToolCallFormat::kLlama3,
    ToolCallFormat::kMistral, ToolCallFormat::kFunctionGemma};

std::string_view tool_call_format_name(ToolCallFormat f);
// The syntax `chat_template` teaches; kNone when it never mentions `tools`
// (as a whole word), kJson when it takes tools without a marker of its own.
ToolCallFormat detect_tool_call_format(std::string_view chat_template);

// Bounds on what a parser holds back and how deep a value may nest.
inline constexpr size_t kMaxToolCallBytes = 256 * 1024;
inline constexpr int kMaxToolCallDepth = 64;

struct ToolCall {
  std::string name;
  nlohmann::ordered_json arguments = nlohmann::ordered_json::object();  // an object
  bool operator==(const ToolCall&) const = default;
};

// The text a model writes for `calls` in format f (as the template teaches
// it; kNone renders as kJson). JSON is written with ", " and ": ".
std::string render_tool_calls(ToolCallFormat f, std::span<const ToolCall> calls);

// One call object {"name": s, "arguments"|"parameters": object or JSON
// string}; {"type": "function", "function": {...}} is accepted too.
std::optional<ToolCall> parse_tool_call_object(const nlohmann::ordered_json& j);

// Not thread-safe; one per reply. `tools` (OpenAI tool schemas or null)
// types the values of formats that write them as text (Qwen3-Coder).
class ToolCallParser {
 public:
  explicit ToolCallParser(ToolCallFormat format, nlohmann::ordered_json tools = nullptr)
      : format_(format), tools_(std::move(tools)) {}
  // Content that can be shown now; text that may be (the start of) a call is
  // held back until finish(), at most kMaxToolCallBytes of it (beyond that it
  // is content and the parser passes the rest through).
  std::string push(std::string_view text);
  struct Output {
    std::string content;  // what was held back and is content after all
    std::vector<ToolCall> calls;
  };
  // End of the reply. If the held text does not parse as calls, it is content.
  Output finish();

 private:
  Output give_up();

  ToolCallFormat format_;
  nlohmann::ordered_json tools_;
  std::string pending_;  // content not emitted yet (may be a marker's prefix)
  std::string held_;     // text from the marker / first brace on
  bool holding_ = false;
  bool decided_ = false;  // whole-reply formats: the reply's first non-space character was seen
  bool passthrough_ = false;  // held text overflowed: the rest is content
};

// A whole reply at once (push + finish).
ToolCallParser::Output parse_tool_calls(ToolCallFormat f, std::string_view text,
                                        const nlohmann::ordered_json& tools = nullptr);

}  // namespace codey
