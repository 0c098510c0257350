// Request bodies of the OpenAI and Ollama APIs -> a runtime GenerateRequest
// plus what the response needs to know (stream, usage, JSON mode, tools).
// Pure functions of the JSON body: every wrong field is a 400 naming it.
#pragma once

#include "server/api.h"

namespace codey::server {

enum class Endpoint { kChat, kCompletion };

// Ollama's empty prompt / empty messages: load the model (or unload it with keep_alive 0).
enum class Special { kNone, kLoad, kUnload };

struct ParsedRequest {
  ApiKind api = ApiKind::kOpenAi;
  Endpoint endpoint = Endpoint::kChat;
  GenerateRequest gen;         // gen.model as the client wrote it (resolved by the server)
  bool stream = false;
  bool include_usage = false;  // OpenAI stream_options.include_usage
  bool json_mode = false;      // output constrained to one JSON object
  bool has_tools = false;      // gen.tools set: tool calls are parsed from the output
  Special special = Special::kNone;
};

ApiResult<ParsedRequest> parse_openai_chat(const Json& body);
ApiResult<ParsedRequest> parse_openai_completion(const Json& body);
ApiResult<ParsedRequest> parse_ollama_generate(const Json& body);
ApiResult<ParsedRequest> parse_ollama_chat(const Json& body);

// Ollama keep_alive: "5m", "-1", 300 (seconds), -1 (forever), 0 (unload after).
ApiResult<std::optional<Millis>> read_keep_alive(const Json& obj, std::string_view key);

// Bounds a client may ask for (beyond them, a request is a mistake).
inline constexpr int64_t kMaxRequestTokens = int64_t(1) << 24;
inline constexpr size_t kMaxStopStrings = 16;

}  // namespace codey::server
