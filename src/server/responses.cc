// Response objects and stream framing for OpenAI and Ollama (see responses.h).
#include "server/responses.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace codey::server {
namespace {

int64_t ns(double seconds) { return static_cast<int64_t>(std::llround(seconds * 1e9)); }

}  // namespace

ResponseBuilder::ResponseBuilder(ResponseContext ctx)
    : ctx_(std::move(ctx)), tools_(ctx_.tool_format, ctx_.tools), rng_(std::random_device{}()) {}

Json ResponseBuilder::openai_chunk_base() const { return openai_base(/*chunk=*/true); }

Json ResponseBuilder::openai_base(bool chunk) const {
  Json j = Json::object();
  j["id"] = ctx_.id;
  j["object"] = ctx_.endpoint != Endpoint::kChat ? "text_completion" : chunk ? "chat.completion.chunk" : "chat.completion";
  j["created"] = unix_seconds(ctx_.created);
  j["model"] = ctx_.model;
  j["system_fingerprint"] = ctx_.fingerprint;
  return j;
}

std::string ResponseBuilder::finish_reason(const Event& done, bool tool_calls) const {
  if (tool_calls) return ctx_.api == ApiKind::kOpenAi ? "tool_calls" : "stop";
  switch (done.finish) {
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kDeadline: return "length";  // cut off by the server's per-request deadline
    case FinishReason::kCancelled: return "stop";
  }
  return "stop";
}

Json ResponseBuilder::usage(const Timings& t) const {
  return Json{{"prompt_tokens", t.prompt_tokens},
              {"completion_tokens", t.generated_tokens},
              {"total_tokens", t.prompt_tokens + t.generated_tokens}};
}

void ResponseBuilder::add_ollama_timings(Json& j, const Timings& t) const {
  j["total_duration"] = ns(t.total_s);
  j["load_duration"] = ns(t.load_s);
  j["prompt_eval_count"] = t.prompt_tokens;
  j["prompt_eval_duration"] = ns(t.prompt_s);
  j["eval_count"] = t.generated_tokens;
  j["eval_duration"] = ns(t.generation_s);
}

Json ResponseBuilder::openai_tool_calls(const std::vector<ToolCall>& calls, bool with_index) {
  Json out = Json::array();
  for (size_t i = 0; i < calls.size(); ++i) {
    Json c = Json::object();
    if (with_index) c["index"] = i;
    c["id"] = fmt::format("call_{:016x}", rng_());
    c["type"] = "function";
    c["function"] = Json{{"name", calls[i].name}, {"arguments", dump(calls[i].arguments)}};
    out.push_back(std::move(c));
  }
  return out;
}

Json ResponseBuilder::ollama_tool_calls(const std::vector<ToolCall>& calls) const {
  Json out = Json::array();
  for (const auto& call : calls)
    out.push_back(Json{{"function", Json{{"name", call.name}, {"arguments", call.arguments}}}});
  return out;
}

std::string ResponseBuilder::open() {
  if (!ctx_.stream || ctx_.api != ApiKind::kOpenAi || ctx_.endpoint != Endpoint::kChat) return {};
  Json j = openai_chunk_base();
  j["choices"] = Json::array({Json{{"index", 0},
                                   {"delta", Json{{"role", "assistant"}, {"content", ""}}},
                                   {"logprobs", nullptr},
                                   {"finish_reason", nullptr}}});
  if (ctx_.include_usage) j["usage"] = nullptr;
  return sse(j);
}

std::string ResponseBuilder::progress(const Event& e) {
  if (!ctx_.stream) return {};
  std::string status;
  Json extra = Json::object();
  if (e.type == EventType::kLoading) {
    const int pct = static_cast<int>(std::floor(std::clamp(e.progress, 0.0, 1.0) * 100));
    // Loading reports often; a line per 5 % is plenty.
    if (last_progress_pct_ >= 0 && pct < 100 && pct - last_progress_pct_ < 5) return {};
    last_progress_pct_ = pct;
    if (ctx_.api == ApiKind::kOpenAi) return fmt::format(": loading model {} {}%\n\n", ctx_.model, pct);
    status = "loading model";
    extra["progress"] = std::clamp(e.progress, 0.0, 1.0);
  } else if (e.type == EventType::kQueued) {
    if (e.queue_position == last_queue_pos_) return {};
    last_queue_pos_ = e.queue_position;
    if (ctx_.api == ApiKind::kOpenAi) return fmt::format(": queued, {} ahead\n\n", e.queue_position);
    status = "queued";
    extra["queue_position"] = e.queue_position;
  } else {
    return {};
  }
  // Ollama has no comment lines: a normal (empty) chunk that carries a status.
  Json j = Json::object();
  j["model"] = ctx_.model;
  j["created_at"] = rfc3339(std::chrono::system_clock::now());
  if (ctx_.endpoint == Endpoint::kChat) j["message"] = Json{{"role", "assistant"}, {"content", ""}};
  else j["response"] = "";
  j["done"] = false;
  j["status"] = status;
  for (auto& [k, v] : extra.items()) j[k] = v;
  return line(j);
}

std::string ResponseBuilder::openai_text_chunk(std::string_view piece) {
  Json j = openai_chunk_base();
  if (ctx_.endpoint == Endpoint::kChat)
    j["choices"] = Json::array(
        {Json{{"index", 0}, {"delta", Json{{"content", piece}}}, {"logprobs", nullptr}, {"finish_reason", nullptr}}});
  else
    j["choices"] =
        Json::array({Json{{"text", piece}, {"index", 0}, {"logprobs", nullptr}, {"finish_reason", nullptr}}});
  if (ctx_.include_usage) j["usage"] = nullptr;
  return sse(j);
}

std::string ResponseBuilder::ollama_text_line(std::string_view piece, bool done) {
  Json j = Json::object();
  j["model"] = ctx_.model;
  j["created_at"] = rfc3339(std::chrono::system_clock::now());
  if (ctx_.endpoint == Endpoint::kChat) j["message"] = Json{{"role", "assistant"}, {"content", piece}};
  else j["response"] = piece;
  j["done"] = done;
  return line(j);
}

std::string ResponseBuilder::text(std::string_view piece) {
  const std::string shown = tools_.push(piece);
  content_ += shown;
  if (!ctx_.stream || shown.empty()) return {};
  return ctx_.api == ApiKind::kOpenAi ? openai_text_chunk(shown) : ollama_text_line(shown, false);
}

std::string ResponseBuilder::finish(const Event& done) {
  ToolCallParser::Output held = tools_.finish();
  content_ += held.content;
  const bool calls = !held.calls.empty();
  std::string out;
  if (ctx_.api == ApiKind::kOpenAi) {
    if (!held.content.empty()) out += openai_text_chunk(held.content);
    if (calls) {
      Json j = openai_chunk_base();
      j["choices"] = Json::array({Json{{"index", 0},
                                       {"delta", Json{{"tool_calls", openai_tool_calls(held.calls, true)}}},
                                       {"logprobs", nullptr},
                                       {"finish_reason", nullptr}}});
      if (ctx_.include_usage) j["usage"] = nullptr;
      out += sse(j);
    }
    Json last = openai_chunk_base();
    if (ctx_.endpoint == Endpoint::kChat)
      last["choices"] = Json::array({Json{{"index", 0},
                                          {"delta", Json::object()},
                                          {"logprobs", nullptr},
                                          {"finish_reason", finish_reason(done, calls)}}});
    else
      last["choices"] = Json::array(
          {Json{{"text", ""}, {"index", 0}, {"logprobs", nullptr}, {"finish_reason", finish_reason(done, calls)}}});
    if (ctx_.include_usage) last["usage"] = nullptr;
    out += sse(last);
    if (ctx_.include_usage) {
      Json u = openai_chunk_base();
      u["choices"] = Json::array();
      u["usage"] = usage(done.timings);
      out += sse(u);
    }
    out += "data: [DONE]\n\n";
    return out;
  }
  // Ollama: held content and tool calls in one more chunk, then the final one.
  if (!held.content.empty() || calls) {
    Json j = Json::object();
    j["model"] = ctx_.model;
    j["created_at"] = rfc3339(std::chrono::system_clock::now());
    if (ctx_.endpoint == Endpoint::kChat) {
      Json msg = Json{{"role", "assistant"}, {"content", held.content}};
      if (calls) msg["tool_calls"] = ollama_tool_calls(held.calls);
      j["message"] = std::move(msg);
    } else {
      j["response"] = held.content;
    }
    j["done"] = false;
    out += line(j);
  }
  Json last = Json::object();
  last["model"] = ctx_.model;
  last["created_at"] = rfc3339(std::chrono::system_clock::now());
  if (ctx_.endpoint == Endpoint::kChat) last["message"] = Json{{"role", "assistant"}, {"content", ""}};
  else last["response"] = "";
  last["done"] = true;
  last["done_reason"] = finish_reason(done, calls);
  add_ollama_timings(last, done.timings);
  out += line(last);
  return out;
}

std::string ResponseBuilder::error(const ApiError& e) {
  if (ctx_.api == ApiKind::kOpenAi) return sse(openai_error_body(e)) + "data: [DONE]\n\n";
  return line(ollama_error_body(e));
}

Json ResponseBuilder::body(const Event& done) {
  ToolCallParser::Output held = tools_.finish();
  content_ += held.content;
  const bool calls = !held.calls.empty();
  if (ctx_.api == ApiKind::kOpenAi) {
    Json j = openai_base(/*chunk=*/false);
    Json choice = Json::object();
    if (ctx_.endpoint == Endpoint::kChat) {
      choice["index"] = 0;
      Json msg = Json{{"role", "assistant"}};
      msg["content"] = (calls && content_.empty()) ? Json(nullptr) : Json(content_);
      if (calls) msg["tool_calls"] = openai_tool_calls(held.calls, false);
      choice["message"] = std::move(msg);
    } else {
      choice["text"] = content_;
      choice["index"] = 0;
    }
    choice["logprobs"] = nullptr;
    choice["finish_reason"] = finish_reason(done, calls);
    j["choices"] = Json::array({std::move(choice)});
    j["usage"] = usage(done.timings);
    return j;
  }
  Json j = Json::object();
  j["model"] = ctx_.model;
  j["created_at"] = rfc3339(std::chrono::system_clock::now());
  if (ctx_.endpoint == Endpoint::kChat) {
    Json msg = Json{{"role", "assistant"}, {"content", content_}};
    if (calls) msg["tool_calls"] = ollama_tool_calls(held.calls);
    j["message"] = std::move(msg);
  } else {
    j["response"] = content_;
  }
  j["done"] = true;
  j["done_reason"] = finish_reason(done, calls);
  add_ollama_timings(j, done.timings);
  return j;
}

}  // namespace codey::server
