// Response shapes and stream framing (src/server/responses.cc) and the
// Prometheus text (src/server/metrics.cc), fed with hand-made events.
#include "server/responses.h"

#include <cctype>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "server/metrics.h"
#include "testing/tool_call_cases.h"

namespace codey::server {
namespace {

Event done_event(FinishReason f = FinishReason::kStop) {
  Event e;
  e.type = EventType::kDone;
  e.finish = f;
  e.timings.prompt_tokens = 7;
  e.timings.generated_tokens = 3;
  e.timings.prompt_s = 0.5;
  e.timings.generation_s = 0.25;
  e.timings.total_s = 1.0;
  e.timings.load_s = 0.125;
  return e;
}

ResponseContext ctx(ApiKind api, Endpoint ep, bool stream) {
  ResponseContext c;
  c.api = api;
  c.endpoint = ep;
  c.stream = stream;
  c.model = "tiny";
  c.id = "chatcmpl-1";
  c.fingerprint = "codey-test";
  return c;
}

// "data: {...}\n\n" frames -> parsed objects ("[DONE]" as a string).
std::vector<Json> sse_frames(const std::string& s) {
  std::vector<Json> out;
  size_t pos = 0;
  while (pos < s.size()) {
    const size_t end = s.find("\n\n", pos);
    EXPECT_NE(end, std::string::npos) << s.substr(pos);
    if (end == std::string::npos) break;
    const std::string frame = s.substr(pos, end - pos);
    pos = end + 2;
    if (frame.starts_with(":")) continue;  // comment
    EXPECT_TRUE(frame.starts_with("data: ")) << frame;
    const std::string data = frame.substr(6);
    out.push_back(data == "[DONE]" ? Json("[DONE]") : Json::parse(data));
  }
  return out;
}

std::vector<Json> ndjson_lines(const std::string& s) {
  std::vector<Json> out;
  size_t pos = 0;
  while (pos < s.size()) {
    const size_t end = s.find('\n', pos);
    EXPECT_NE(end, std::string::npos);
    if (end == std::string::npos) break;
    out.push_back(Json::parse(s.substr(pos, end - pos)));
    pos = end + 1;
  }
  return out;
}

TEST(Responses, OpenAiChatStreamWithUsage) {
  auto c = ctx(ApiKind::kOpenAi, Endpoint::kChat, true);
  c.include_usage = true;
  ResponseBuilder b(c);
  std::string wire = b.open();
  Event loading;
  loading.type = EventType::kLoading;
  loading.progress = 0.5;
  wire += b.progress(loading);
  EXPECT_NE(wire.find(": loading model tiny 50%"), std::string::npos);
  wire += b.text("Hel");
  wire += b.text("");  // held back by a possible stop string: nothing to send
  wire += b.text("lo");
  wire += b.finish(done_event(FinishReason::kLength));
  auto frames = sse_frames(wire);
  ASSERT_EQ(frames.size(), 6u);
  EXPECT_EQ(frames[0]["object"], "chat.completion.chunk");
  EXPECT_EQ(frames[0]["choices"][0]["delta"]["role"], "assistant");
  EXPECT_TRUE(frames[0]["usage"].is_null());
  EXPECT_EQ(frames[1]["choices"][0]["delta"]["content"], "Hel");
  EXPECT_EQ(frames[2]["choices"][0]["delta"]["content"], "lo");
  EXPECT_EQ(frames[3]["choices"][0]["finish_reason"], "length");
  EXPECT_TRUE(frames[4]["choices"].empty());
  EXPECT_EQ(frames[4]["usage"]["prompt_tokens"], 7);
  EXPECT_EQ(frames[4]["usage"]["completion_tokens"], 3);
  EXPECT_EQ(frames[4]["usage"]["total_tokens"], 10);
  EXPECT_EQ(frames[5], "[DONE]");
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(frames[i]["id"], "chatcmpl-1");
}

TEST(Responses, OpenAiNonStreaming) {
  ResponseBuilder chat(ctx(ApiKind::kOpenAi, Endpoint::kChat, false));
  EXPECT_EQ(chat.text("Hi"), "");
  chat.text(" there");
  Json j = chat.body(done_event());
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["model"], "tiny");
  EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(j["choices"][0]["message"]["content"], "Hi there");
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(j["usage"]["total_tokens"], 10);

  auto cc = ctx(ApiKind::kOpenAi, Endpoint::kCompletion, false);
  cc.id = "cmpl-1";
  ResponseBuilder comp(cc);
  comp.text("x = 1");
  Json k = comp.body(done_event(FinishReason::kDeadline));
  EXPECT_EQ(k["object"], "text_completion");
  EXPECT_EQ(k["choices"][0]["text"], "x = 1");
  EXPECT_EQ(k["choices"][0]["finish_reason"], "length");
}

TEST(Responses, OpenAiToolCalls) {
  auto c = ctx(ApiKind::kOpenAi, Endpoint::kChat, false);
  c.tool_format = ToolCallFormat::kHermes;
  ResponseBuilder b(c);
  b.text("<tool_call>{\"name\":\"get\",\"arguments\":{\"q\":\"x\"}}</tool_call>");
  Json j = b.body(done_event());
  EXPECT_TRUE(j["choices"][0]["message"]["content"].is_null());
  EXPECT_EQ(j["choices"][0]["finish_reason"], "tool_calls");
  const Json& call = j["choices"][0]["message"]["tool_calls"][0];
  EXPECT_EQ(call["type"], "function");
  EXPECT_EQ(call["function"]["name"], "get");
  EXPECT_EQ(Json::parse(call["function"]["arguments"].get<std::string>())["q"], "x");  // a JSON string, as OpenAI
  EXPECT_TRUE(call["id"].get<std::string>().starts_with("call_"));

  auto s = c;
  s.stream = true;
  ResponseBuilder st(s);
  std::string wire = st.open();  // one statement each: the order of operands of + is unspecified
  wire += st.text("ok <tool_call>{\"name\":\"f\",\"arguments\":{}}");
  wire += st.text("</tool_call>");
  wire += st.finish(done_event());
  auto frames = sse_frames(wire);
  ASSERT_EQ(frames.size(), 5u) << wire;
  EXPECT_EQ(frames[1]["choices"][0]["delta"]["content"], "ok ");
  EXPECT_EQ(frames[2]["choices"][0]["delta"]["tool_calls"][0]["index"], 0);
  EXPECT_EQ(frames[2]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"], "f");
  EXPECT_EQ(frames[3]["choices"][0]["finish_reason"], "tool_calls");
}

// `codey serve`'s side of the shared table (tests/testing/tool_call_cases.h;
// tests/assistant runs it through `codey task`'s router): every format, both
// APIs, streamed in small pieces and whole. The calls come out as the API
// writes them (OpenAI: arguments a JSON string; Ollama: an object) and a reply
// that is not a call is all content.
TEST(Responses, SharedToolCallTableThroughBothApis) {
  auto trimmed = [](std::string s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.erase(0, 1);
    return s;
  };
  for (const auto& c : testing::tool_call_cases()) {
    SCOPED_TRACE(c.what);
    for (ApiKind api : {ApiKind::kOpenAi, ApiKind::kOllama}) {
      for (bool stream : {false, true}) {
        SCOPED_TRACE(fmt::format("{} stream={}", api == ApiKind::kOpenAi ? "openai" : "ollama", stream));
        auto cx = ctx(api, Endpoint::kChat, stream);
        cx.tool_format = detect_tool_call_format(c.chat_template);  // as the catalog does
        cx.tools = testing::weather_tools();
        ResponseBuilder b(cx);
        std::string wire = b.open();
        for (size_t i = 0; i < c.reply.size(); i += 3) wire += b.text(std::string_view(c.reply).substr(i, 3));
        std::vector<Json> messages;  // the message objects / deltas, in order
        std::string finish;
        if (!stream) {
          Json body = b.body(done_event());
          if (api == ApiKind::kOpenAi) {
            messages.push_back(body["choices"][0]["message"]);
            finish = body["choices"][0]["finish_reason"];
          } else {
            messages.push_back(body["message"]);
          }
        } else {
          wire += b.finish(done_event());
          if (api == ApiKind::kOpenAi) {
            for (const auto& f : sse_frames(wire)) {
              if (!f.is_object() || f["choices"].empty()) continue;
              messages.push_back(f["choices"][0]["delta"]);
              if (!f["choices"][0]["finish_reason"].is_null()) finish = f["choices"][0]["finish_reason"];
            }
          } else {
            for (const auto& l : ndjson_lines(wire)) messages.push_back(l["message"]);
          }
        }
        std::string content;
        std::vector<ToolCall> calls;
        for (const auto& m : messages) {
          if (m.contains("content") && m["content"].is_string()) content += m["content"].get<std::string>();
          if (!m.contains("tool_calls")) continue;
          for (const auto& tc : m["tool_calls"]) {
            const Json& args = tc["function"]["arguments"];
            if (api == ApiKind::kOpenAi) {
              EXPECT_TRUE(args.is_string());
              EXPECT_TRUE(tc["id"].get<std::string>().starts_with("call_"));
            } else {
              EXPECT_TRUE(args.is_object());
            }
            calls.push_back(ToolCall{tc["function"]["name"], args.is_string() ? Json::parse(args.get<std::string>()) : args});
          }
        }
        EXPECT_EQ(calls, c.calls);
        EXPECT_EQ(trimmed(content), c.content);
        if (c.calls.empty()) {
          EXPECT_EQ(content, c.reply);
        }
        if (api == ApiKind::kOpenAi) {
          EXPECT_EQ(finish, c.calls.empty() ? "stop" : "tool_calls");
        }
      }
    }
  }
}

TEST(Responses, OllamaStreamAndBody) {
  ResponseBuilder b(ctx(ApiKind::kOllama, Endpoint::kChat, true));
  EXPECT_EQ(b.open(), "");
  Event q;
  q.type = EventType::kQueued;
  q.queue_position = 2;
  std::string wire = b.progress(q);
  wire += b.progress(q);  // unchanged position: no line
  wire += b.text("a");
  wire += b.finish(done_event());
  auto lines = ndjson_lines(wire);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0]["status"], "queued");
  EXPECT_EQ(lines[0]["queue_position"], 2);
  EXPECT_EQ(lines[0]["message"]["content"], "");
  EXPECT_EQ(lines[0]["done"], false);
  EXPECT_EQ(lines[1]["message"]["content"], "a");
  EXPECT_EQ(lines[2]["done"], true);
  EXPECT_EQ(lines[2]["done_reason"], "stop");
  EXPECT_EQ(lines[2]["prompt_eval_count"], 7);
  EXPECT_EQ(lines[2]["eval_count"], 3);
  EXPECT_EQ(lines[2]["eval_duration"], 250000000);
  EXPECT_EQ(lines[2]["load_duration"], 125000000);
  EXPECT_EQ(lines[2]["model"], "tiny");
  EXPECT_TRUE(lines[2]["created_at"].get<std::string>().ends_with("Z"));

  ResponseBuilder g(ctx(ApiKind::kOllama, Endpoint::kCompletion, false));
  g.text("xyz");
  Json j = g.body(done_event(FinishReason::kLength));
  EXPECT_EQ(j["response"], "xyz");
  EXPECT_EQ(j["done_reason"], "length");
  EXPECT_EQ(j["total_duration"], 1000000000);

  auto tc = ctx(ApiKind::kOllama, Endpoint::kChat, false);
  tc.tool_format = ToolCallFormat::kHermes;
  ResponseBuilder t(tc);
  t.text("<tool_call>{\"name\":\"f\",\"arguments\":{\"a\":1}}</tool_call>");
  Json tj = t.body(done_event());
  EXPECT_EQ(tj["message"]["tool_calls"][0]["function"]["arguments"]["a"], 1);  // an object, as Ollama
}

TEST(Responses, InStreamErrors) {
  ApiError e;
  e.status = 413;
  e.message = "too long";
  ResponseBuilder o(ctx(ApiKind::kOpenAi, Endpoint::kChat, true));
  auto frames = sse_frames(o.error(e));
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0]["error"]["message"], "too long");
  ResponseBuilder l(ctx(ApiKind::kOllama, Endpoint::kChat, true));
  EXPECT_EQ(ndjson_lines(l.error(e))[0]["error"], "too long");
}

TEST(Metrics, PrometheusText) {
  Metrics m;
  m.count_request("/v1/chat/completions", 200);
  m.count_request("/v1/chat/completions", 200);
  m.count_request("/v1/chat/completions", 429);
  m.observe_ttft("tiny", 0.07);
  m.observe_ttft("tiny", 3.0);
  RuntimeStatus st;
  st.memory_budget = 1000;
  st.used_bytes = 400;
  ModelStatus ms;
  ms.name = "tiny";
  ms.state = ModelState::kBusy;
  ms.slots = 1;
  ms.active = 1;
  ms.queued = 2;
  ms.queue_limit = 4;
  st.models.push_back(ms);
  server::HttpStats http;
  http.connections_open = 3;
  http.connections_evicted = 5;
  http.body_bytes_read = 1234;
  const std::string text = m.render(st, http, /*draining=*/false);
  auto has = [&](const std::string& line) { return text.find(line + "\n") != std::string::npos; };
  EXPECT_TRUE(has("codey_http_requests_total{route=\"/v1/chat/completions\",status=\"200\"} 2")) << text;
  EXPECT_TRUE(has("codey_http_requests_total{route=\"/v1/chat/completions\",status=\"429\"} 1"));
  EXPECT_TRUE(has("codey_time_to_first_token_seconds_bucket{model=\"tiny\",le=\"0.05\"} 0"));
  EXPECT_TRUE(has("codey_time_to_first_token_seconds_bucket{model=\"tiny\",le=\"0.1\"} 1"));
  EXPECT_TRUE(has("codey_time_to_first_token_seconds_bucket{model=\"tiny\",le=\"5\"} 2"));
  EXPECT_TRUE(has("codey_time_to_first_token_seconds_bucket{model=\"tiny\",le=\"+Inf\"} 2"));
  EXPECT_TRUE(has("codey_time_to_first_token_seconds_count{model=\"tiny\"} 2"));
  EXPECT_TRUE(has("codey_queue_depth{model=\"tiny\"} 2"));
  EXPECT_TRUE(has("codey_http_connections_open 3"));
  EXPECT_TRUE(has("codey_http_connections_total{outcome=\"evicted\"} 5"));
  EXPECT_TRUE(has("codey_http_request_body_bytes_total 1234"));
  EXPECT_TRUE(has("codey_model_loaded{model=\"tiny\"} 1"));
  EXPECT_TRUE(has("codey_memory_budget_bytes 1000"));
  EXPECT_TRUE(has("codey_memory_used_bytes 400"));
  EXPECT_TRUE(has("# TYPE codey_time_to_first_token_seconds histogram"));
  EXPECT_TRUE(has("codey_queue_limit{model=\"tiny\"} 4"));
  EXPECT_TRUE(has("codey_ready 1"));
  EXPECT_TRUE(has("codey_draining 0"));
  // Nothing names the instance: the scraper's labels tell servers apart, so
  // the same series from N servers sum.
  for (const char* l : {"instance=", "host=", "port=", "pod=", "pid="}) EXPECT_EQ(text.find(l), std::string::npos) << l;
  const std::string draining = m.render(st, http, /*draining=*/true);
  EXPECT_NE(draining.find("codey_ready 0\n"), std::string::npos);
  EXPECT_NE(draining.find("codey_draining 1\n"), std::string::npos);
}

}  // namespace
}  // namespace codey::server
