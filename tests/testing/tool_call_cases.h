// One table of tool-call replies, each format's syntax as its models write
// it, and hostile ones: the chat layer's parser (tests/chat), `codey serve`'s
// responses (tests/server) and `codey task`'s router (tests/assistant) all run
// it, so the front ends cannot drift apart again.
#pragma once

#include <string>
#include <vector>

#include "codey/tool_calls.h"

namespace codey::testing {

struct ToolCallCase {
  const char* what;
  ToolCallFormat format;
  std::string chat_template;  // a template teaching the format (detect_tool_call_format)
  std::string reply;          // the model's text
  std::vector<ToolCall> calls;  // expected; empty: the whole reply is content
  std::string content;          // expected content (trimmed around calls)
};

inline nlohmann::ordered_json weather_tools() {
  return nlohmann::ordered_json::parse(R"([
    {"type": "function", "function": {"name": "get_weather", "description": "Weather of a city.",
      "parameters": {"type": "object", "properties": {
        "city": {"type": "string"}, "days": {"type": "integer"}, "metric": {"type": "boolean"},
        "hours": {"type": "array", "items": {"type": "integer"}}}}}},
    {"type": "function", "function": {"name": "read_file", "description": "Read a file.",
      "parameters": {"type": "object", "properties": {"path": {"type": "string"}}}}}])");
}

inline std::vector<ToolCallCase> tool_call_cases() {
  using J = nlohmann::ordered_json;
  const ToolCall oslo{"get_weather", J{{"city", "Oslo"}, {"days", 3}}};
  const ToolCall readme{"read_file", J{{"path", "README.md"}}};
  const std::string hermes = "{%- if tools %}<tool_call>{{ tools | tojson }}</tool_call>{% endif %}";
  const std::string qwen3_coder = "{%- if tools %}<tool_call>\n<function=example_function_name>{% endif %}";
  const std::string llama3 = "{%- if tools %}{{ tools | tojson }}{% endif %}<|python_tag|>";
  const std::string json = "{%- if tools is not none %}{{ tools | tojson }}{% endif %}";
  const std::string mistral = "{%- if tools %}[AVAILABLE_TOOLS]{{ tools | tojson }}{% endif %}[TOOL_CALLS]";
  const std::string gemma = "{% if tools %}<start_function_declaration>{% endif %}<start_function_call>";
  return {
      {"json", ToolCallFormat::kJson, json, R"({"name": "get_weather", "arguments": {"city": "Oslo", "days": 3}})",
       {oslo}, ""},
      {"json array, arguments as a string", ToolCallFormat::kJson, json,
       R"( [{"name": "get_weather", "arguments": "{\"city\": \"Oslo\", \"days\": 3}"}, {"name": "read_file", "arguments": {"path": "README.md"}}])",
       {oslo, readme}, ""},
      {"json prose", ToolCallFormat::kJson, json, "It is sunny in {Oslo}.", {}, "It is sunny in {Oslo}."},
      {"json truncated", ToolCallFormat::kJson, json, R"({"name": "get_weather", "arguments": {"city":)", {},
       R"({"name": "get_weather", "arguments": {"city":)"},
      {"hermes", ToolCallFormat::kHermes, hermes,
       "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\", \"days\": 3}}\n"
       "</tool_call>\n<tool_call>\n{\"name\": \"read_file\", \"arguments\": {\"path\": \"README.md\"}}\n</tool_call>",
       {oslo, readme}, "Let me check."},
      {"hermes unclosed at the end", ToolCallFormat::kHermes, hermes,
       "<tool_call>{\"name\": \"read_file\", \"arguments\": {\"path\": \"README.md\"}}", {readme}, ""},
      {"hermes broken json", ToolCallFormat::kHermes, hermes, "Sure <tool_call>{\"name\": oops}</tool_call>", {},
       "Sure <tool_call>{\"name\": oops}</tool_call>"},
      {"qwen3-coder", ToolCallFormat::kQwen3Coder, qwen3_coder,
       "I will look it up.\n<tool_call>\n<function=get_weather>\n<parameter=city>\nOslo\n</parameter>\n"
       "<parameter=days>\n3\n</parameter>\n</function>\n</tool_call>",
       {oslo}, "I will look it up."},
      {"qwen3-coder typed values, two calls", ToolCallFormat::kQwen3Coder, qwen3_coder,
       "<tool_call>\n<function=get_weather>\n<parameter=city>\nNew\nYork\n</parameter>\n<parameter=metric>\ntrue\n"
       "</parameter>\n<parameter=hours>\n[6, 18]\n</parameter>\n</function>\n</tool_call>\n<tool_call>\n"
       "<function=read_file>\n<parameter=path>\n42\n</parameter>\n</function>\n</tool_call>",
       {ToolCall{"get_weather", J{{"city", "New\nYork"}, {"metric", true}, {"hours", J::array({6, 18})}}},
        ToolCall{"read_file", J{{"path", "42"}}}},
       ""},
      {"qwen3-coder answering in json", ToolCallFormat::kQwen3Coder, qwen3_coder,
       "<tool_call>\n{\"name\": \"read_file\", \"arguments\": {\"path\": \"README.md\"}}\n</tool_call>", {readme}, ""},
      {"qwen3-coder no function", ToolCallFormat::kQwen3Coder, qwen3_coder,
       "<tool_call>\n<parameter=city>\nOslo\n</parameter>\n</tool_call>", {},
       "<tool_call>\n<parameter=city>\nOslo\n</parameter>\n</tool_call>"},
      {"qwen3-coder unterminated name", ToolCallFormat::kQwen3Coder, qwen3_coder, "<tool_call>\n<function=get_weather",
       {}, "<tool_call>\n<function=get_weather"},
      {"llama3", ToolCallFormat::kLlama3, llama3,
       R"(<|python_tag|>{"name": "get_weather", "parameters": {"city": "Oslo", "days": 3}})", {oslo}, ""},
      {"llama3 two calls", ToolCallFormat::kLlama3, llama3,
       R"({"name": "get_weather", "parameters": {"city": "Oslo", "days": 3}}; {"name": "read_file", "parameters": {"path": "README.md"}})",
       {oslo, readme}, ""},
      {"llama3 built-in tool", ToolCallFormat::kLlama3, llama3, R"(<|python_tag|>brave_search.call(query="oslo"))", {},
       R"(<|python_tag|>brave_search.call(query="oslo"))"},
      {"mistral", ToolCallFormat::kMistral, mistral,
       R"([TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Oslo", "days": 3}, "id": "abc123def"}])", {oslo},
       ""},
      {"mistral v11", ToolCallFormat::kMistral, mistral,
       R"([TOOL_CALLS]get_weather[ARGS]{"city": "Oslo", "days": 3}[TOOL_CALLS]read_file[ARGS]{"path": "README.md"})",
       {oslo, readme}, ""},
      {"mistral not a call", ToolCallFormat::kMistral, mistral, "[TOOL_CALLS] maybe later", {},
       "[TOOL_CALLS] maybe later"},
      {"functiongemma", ToolCallFormat::kFunctionGemma, gemma,
       "<start_function_call>call:get_weather{city:<escape>Oslo<escape>,days:3}<end_function_call>", {oslo}, ""},
      {"functiongemma nested", ToolCallFormat::kFunctionGemma, gemma,
       "Checking. <start_function_call>call:get_weather{city:<escape>a, b: {c}<escape>,hours:[6,18],opts:{metric:true}}"
       "<end_function_call>",
       {ToolCall{"get_weather",
                 J{{"city", "a, b: {c}"}, {"hours", J::array({6, 18})}, {"opts", J{{"metric", true}}}}}},
       "Checking."},
      {"functiongemma unclosed escape", ToolCallFormat::kFunctionGemma, gemma,
       "<start_function_call>call:get_weather{city:<escape>Oslo}<end_function_call>", {},
       "<start_function_call>call:get_weather{city:<escape>Oslo}<end_function_call>"},
  };
}

}  // namespace codey::testing
