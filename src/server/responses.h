// A request's events -> the bytes of its response, in the shape of the API it
// came in by: OpenAI chat/completion objects and SSE chunks ("data: {...}",
// "data: [DONE]"), Ollama objects and NDJSON lines. Holds back text that may
// be a tool call and emits the calls at the end.
#pragma once

#include <chrono>
#include <random>
#include <string>

#include "server/api.h"
#include "server/requests.h"
#include "codey/tool_calls.h"

namespace codey::server {

struct ResponseContext {
  ApiKind api = ApiKind::kOpenAi;
  Endpoint endpoint = Endpoint::kChat;
  bool stream = false;
  bool include_usage = false;
  std::string model;  // the configured model name
  std::string id;     // OpenAI object id ("chatcmpl-...", "cmpl-...")
  std::chrono::system_clock::time_point created = std::chrono::system_clock::now();
  ToolCallFormat tool_format = ToolCallFormat::kNone;  // kNone unless the request had tools
  Json tools;  // the request's tool schemas: they type the arguments of some formats
  std::string fingerprint = "codey";
};

// Not thread-safe; one per request.
class ResponseBuilder {
 public:
  explicit ResponseBuilder(ResponseContext ctx);

  // Streaming: bytes to write (possibly empty) at each step.
  std::string open();                        // the response was committed (OpenAI chat: the role chunk)
  std::string progress(const Event& e);      // kQueued / kLoading: SSE comment or Ollama status line
  std::string text(std::string_view piece);  // also accumulates for body() when not streaming
  std::string finish(const Event& done);     // held text, tool calls, the final chunk, usage, [DONE]
  std::string error(const ApiError& e);      // an error after the response was committed

  // Non-streaming: the whole response object.
  Json body(const Event& done);

  const ResponseContext& context() const { return ctx_; }
  const std::string& content() const { return content_; }  // all content text so far

 private:
  // id, object, created, model, system_fingerprint of a response (or chunk).
  Json openai_base(bool chunk) const;
  Json openai_chunk_base() const;
  std::string sse(const Json& j) const { return "data: " + dump(j) + "\n\n"; }
  std::string line(const Json& j) const { return dump(j) + "\n"; }
  std::string finish_reason(const Event& done, bool tool_calls) const;
  Json usage(const Timings& t) const;
  void add_ollama_timings(Json& j, const Timings& t) const;
  Json openai_tool_calls(const std::vector<ToolCall>& calls, bool with_index);
  Json ollama_tool_calls(const std::vector<ToolCall>& calls) const;
  std::string openai_text_chunk(std::string_view piece);
  std::string ollama_text_line(std::string_view piece, bool done);

  ResponseContext ctx_;
  ToolCallParser tools_;
  std::string content_;
  int last_progress_pct_ = -1;
  int last_queue_pos_ = -1;
  std::mt19937_64 rng_;
};

}  // namespace codey::server
