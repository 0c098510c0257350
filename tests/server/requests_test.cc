// Request parsing of the OpenAI and Ollama APIs (src/server/requests.cc):
// fields land in the GenerateRequest, wrong fields are 400s naming them.
#include "server/requests.h"

#include <gtest/gtest.h>

namespace codey::server {
namespace {

Json body(const char* text) { return Json::parse(text); }

// The error of a parse expected to fail.
template <class R>
ApiError err(const R& r) {
  EXPECT_FALSE(r.has_value());
  return r ? ApiError{} : r.error();
}

TEST(ParseBody, RejectsWhatIsNotAJsonObject) {
  EXPECT_EQ(parse_body("").error().status, 400);
  EXPECT_NE(parse_body("{\"a\":").error().message.find("not valid JSON"), std::string::npos);
  EXPECT_NE(parse_body("[1,2]").error().message.find("JSON object"), std::string::npos);
  EXPECT_NE(parse_body("\"x\"").error().message.find("JSON object"), std::string::npos);
  // Invalid UTF-8 inside a string is a parse error, not a crash later.
  EXPECT_FALSE(parse_body("{\"a\":\"\xff\"}").has_value());
  ASSERT_TRUE(parse_body("{\"model\":\"m\"}").has_value());
}

TEST(ParseBody, LimitsNesting) {
  std::string deep = "{\"a\":";
  for (int i = 0; i < 10000; ++i) deep += "[";
  for (int i = 0; i < 10000; ++i) deep += "]";
  deep += "}";
  auto r = parse_body(deep);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("deeper than"), std::string::npos);
  std::string ok = "{\"a\":[[[[1]]]]}";
  EXPECT_TRUE(parse_body(ok).has_value());
}

TEST(ParseBody, LimitsTheNumberOfValues) {
  // 8 MiB of "[]," cost ~195 MiB as a document; the count stops it early.
  std::string flood = "{\"a\":[";
  for (size_t i = 0; i < kMaxJsonValues + 10; ++i) flood += "[],";
  flood += "[]]}";
  auto r = parse_body(flood);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().status, 400);
  EXPECT_NE(r.error().message.find("more than 262144 values"), std::string::npos) << r.error().message;
  std::string fine = "{\"a\":[";
  for (size_t i = 0; i < 1000; ++i) fine += "1,";
  fine += "1]}";
  EXPECT_TRUE(parse_body(fine).has_value());
}

// Finding 1 of issue #16: the arguments string of a tool call is parsed again;
// it was parsed without limits, then copied and converted recursively until
// the stack ran out. Now it is a document of its own within the limits.
TEST(ToolCallArguments, AStringParsedAgainIsBounded) {
  std::string deep = "{\"a\":";
  for (int i = 0; i < 20000; ++i) deep += "[";
  for (int i = 0; i < 20000; ++i) deep += "]";
  deep += "}";
  Json call = {{"id", "c1"}, {"type", "function"}, {"function", {{"name", "f"}, {"arguments", deep}}}};
  Json openai = {{"model", "m"},
                 {"messages", Json::array({{{"role", "user"}, {"content", "x"}},
                                           {{"role", "assistant"}, {"content", ""}, {"tool_calls", Json::array({call})}}})}};
  ApiError e = err(parse_openai_chat(openai));
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(e.param, "messages[1].tool_calls[0].function.arguments");
  EXPECT_NE(e.message.find("nests deeper than 64 levels"), std::string::npos) << e.message;
  Json ollama = openai;
  ollama["stream"] = false;
  e = err(parse_ollama_chat(ollama));
  EXPECT_EQ(e.param, "messages[1].tool_calls[0].function.arguments");
  // Too many values in the string, too.
  std::string wide = "{\"a\":[";
  for (size_t i = 0; i < kMaxJsonValues + 1; ++i) wide += "0,";
  wide += "0]}";
  openai["messages"][1]["tool_calls"][0]["function"]["arguments"] = wide;
  EXPECT_NE(err(parse_openai_chat(openai)).message.find("more than"), std::string::npos);
  // A string that is not JSON stays a string; one that is becomes an object.
  openai["messages"][1]["tool_calls"][0]["function"]["arguments"] = "not json {";
  auto kept = parse_openai_chat(openai);
  ASSERT_TRUE(kept.has_value());
  EXPECT_EQ(kept->gen.messages[1]["tool_calls"][0]["function"]["arguments"], "not json {");
  openai["messages"][1]["tool_calls"][0]["function"]["arguments"] = R"({"x":[1,{"y":2}]})";
  auto parsed = parse_openai_chat(openai);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->gen.messages[1]["tool_calls"][0]["function"]["arguments"]["x"][1]["y"], 2);
}

TEST(OpenAiChat, MapsFields) {
  auto r = parse_openai_chat(body(R"({
    "model": "m", "stream": true, "stream_options": {"include_usage": true},
    "messages": [{"role": "developer", "content": "be brief"},
                 {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}],
    "max_tokens": 10, "max_completion_tokens": 12, "temperature": 0.5, "top_p": 0.9, "seed": 7,
    "presence_penalty": 0.5, "frequency_penalty": -0.5, "stop": ["x", "y"], "n": 1,
    "logit_bias": {"42": -100, "7": 5.5}, "top_k": 3, "user": "ignored", "response_format": {"type": "json_object"}})"));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->gen.model, "m");
  EXPECT_TRUE(r->stream);
  EXPECT_TRUE(r->include_usage);
  EXPECT_TRUE(r->json_mode);
  ASSERT_EQ(r->gen.messages.size(), 2u);
  EXPECT_EQ(r->gen.messages[0]["role"], "system");
  EXPECT_EQ(r->gen.messages[1]["content"], "a\nb");
  EXPECT_EQ(r->gen.max_tokens, 12);  // max_completion_tokens wins
  EXPECT_FLOAT_EQ(*r->gen.sampling.temperature, 0.5f);
  EXPECT_FLOAT_EQ(*r->gen.sampling.top_p, 0.9f);
  EXPECT_EQ(*r->gen.sampling.seed, 7u);
  EXPECT_FLOAT_EQ(*r->gen.sampling.presence_penalty, 0.5f);
  EXPECT_FLOAT_EQ(*r->gen.sampling.frequency_penalty, -0.5f);
  EXPECT_EQ(*r->gen.sampling.top_k, 3);
  EXPECT_EQ(r->gen.stop, (std::vector<std::string>{"x", "y"}));
  EXPECT_FLOAT_EQ(r->gen.logit_bias.at(42), -100.0f);
  EXPECT_FLOAT_EQ(r->gen.logit_bias.at(7), 5.5f);
}

TEST(OpenAiChat, ToolsAndToolCallsReachTheTemplate) {
  auto r = parse_openai_chat(body(R"({
    "model": "m",
    "messages": [{"role": "user", "content": "weather?"},
                 {"role": "assistant", "content": null, "tool_calls": [
                   {"id": "call_1", "type": "function", "function": {"name": "get", "arguments": "{\"city\":\"Oslo\"}"}}]},
                 {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}],
    "tools": [{"type": "function", "function": {"name": "get", "description": "d",
               "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]})"));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_TRUE(r->has_tools);
  ASSERT_EQ(r->gen.tools.size(), 1u);
  EXPECT_EQ(r->gen.tools[0]["function"]["name"], "get");
  const Json& call = r->gen.messages[1]["tool_calls"][0];
  EXPECT_EQ(call["function"]["arguments"]["city"], "Oslo");  // parsed from the JSON string for the template
  EXPECT_EQ(r->gen.messages[1]["content"], "");
  EXPECT_EQ(r->gen.messages[2]["tool_call_id"], "call_1");
  // tool_choice none drops the tools; required is not supported.
  auto none = parse_openai_chat(body(R"({"model":"m","messages":[{"role":"user","content":"x"}],
    "tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"none"})"));
  ASSERT_TRUE(none.has_value());
  EXPECT_FALSE(none->has_tools);
  EXPECT_EQ(err(parse_openai_chat(body(R"({"model":"m","messages":[{"role":"user","content":"x"}],
    "tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"required"})"))).param, "tool_choice");
}

TEST(OpenAiChat, WrongFieldsAreNamed) {
  struct Case {
    const char* body;
    const char* param;
  };
  const Case cases[] = {
      {R"({"messages":[{"role":"user","content":"x"}]})", "model"},
      {R"({"model":"","messages":[{"role":"user","content":"x"}]})", "model"},
      {R"({"model":5,"messages":[{"role":"user","content":"x"}]})", "model"},
      {R"({"model":"m"})", "messages"},
      {R"({"model":"m","messages":[]})", "messages"},
      {R"({"model":"m","messages":"hi"})", "messages"},
      {R"({"model":"m","messages":[5]})", "messages[0]"},
      {R"({"model":"m","messages":[{"content":"x"}]})", "messages[0].role"},
      {R"({"model":"m","messages":[{"role":"wizard","content":"x"}]})", "messages[0].role"},
      {R"({"model":"m","messages":[{"role":"user"}]})", "messages[0].content"},
      {R"({"model":"m","messages":[{"role":"user","content":7}]})", "messages[0].content"},
      {R"({"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]})",
       "messages[0].content[0].type"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"temperature":3})", "temperature"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"temperature":"hot"})", "temperature"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"top_p":-0.1})", "top_p"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":0})", "max_tokens"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":1.5})", "max_tokens"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":1e300})", "max_tokens"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"n":2})", "n"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"stop":[1]})", "stop[0]"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"stop":[""]})", "stop[0]"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"stream":"yes"})", "stream"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"seed":"x"})", "seed"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"logit_bias":{"abc":1}})", "logit_bias.abc"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"logit_bias":{"5":1000}})", "logit_bias.5"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"logprobs":true})", "logprobs"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema"}})",
       "response_format.type"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"response_format":"json"})", "response_format"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function"}]})", "tools[0].function"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"tools":{"a":1}})", "tools"},
  };
  for (const auto& c : cases) {
    auto r = parse_openai_chat(body(c.body));
    ASSERT_FALSE(r.has_value()) << c.body;
    EXPECT_EQ(r.error().status, 400) << c.body;
    EXPECT_EQ(r.error().param, c.param) << c.body << " -> " << r.error().message;
    EXPECT_TRUE(r.error().message.starts_with(c.param)) << r.error().message;
  }
}

TEST(OpenAiCompletion, PromptShapesAndSuffix) {
  auto text = parse_openai_completion(body(R"({"model":"m","prompt":"def f(","suffix":"\n  return x"})"));
  ASSERT_TRUE(text.has_value());
  EXPECT_EQ(text->gen.prompt, "def f(");
  EXPECT_EQ(*text->gen.suffix, "\n  return x");
  auto one = parse_openai_completion(body(R"({"model":"m","prompt":["x"]})"));
  ASSERT_TRUE(one.has_value());
  EXPECT_EQ(one->gen.prompt, "x");
  auto toks = parse_openai_completion(body(R"({"model":"m","prompt":[1,2,3]})"));
  ASSERT_TRUE(toks.has_value());
  EXPECT_EQ(toks->gen.tokens, (std::vector<TokenId>{1, 2, 3}));
  auto nested = parse_openai_completion(body(R"({"model":"m","prompt":[[4,5]]})"));
  ASSERT_TRUE(nested.has_value());
  EXPECT_EQ(nested->gen.tokens, (std::vector<TokenId>{4, 5}));
  EXPECT_EQ(err(parse_openai_completion(body(R"({"model":"m","prompt":["a","b"]})"))).param, "prompt");
  EXPECT_EQ(err(parse_openai_completion(body(R"({"model":"m","prompt":[1,-2]})"))).param, "prompt[1]");
  EXPECT_EQ(err(parse_openai_completion(body(R"({"model":"m"})"))).param, "prompt");
  EXPECT_EQ(err(parse_openai_completion(body(R"({"model":"m","prompt":"x","echo":true})"))).param, "echo");
  EXPECT_EQ(err(parse_openai_completion(body(R"({"model":"m","prompt":"x","best_of":3})"))).param, "best_of");
  EXPECT_EQ(err(parse_openai_completion(body(R"({"model":"m","prompt":[1],"suffix":"x"})"))).param, "suffix");
}

TEST(Ollama, GenerateUsesTheTemplateUnlessRaw) {
  auto chat = parse_ollama_generate(body(R"({"model":"m","prompt":"hi","system":"sys","options":{"num_predict":5,
    "temperature":0,"top_k":10,"seed":3,"stop":["\n"],"num_ctx":2048,"num_thread":4,"mirostat":0}})"));
  ASSERT_TRUE(chat.has_value()) << chat.error().message;
  EXPECT_TRUE(chat->stream);  // Ollama streams by default
  ASSERT_EQ(chat->gen.messages.size(), 2u);
  EXPECT_EQ(chat->gen.messages[0]["role"], "system");
  EXPECT_EQ(chat->gen.messages[1]["content"], "hi");
  EXPECT_EQ(chat->gen.max_tokens, 5);
  EXPECT_FLOAT_EQ(*chat->gen.sampling.temperature, 0.0f);
  EXPECT_EQ(*chat->gen.sampling.top_k, 10);
  EXPECT_EQ(*chat->gen.sampling.seed, 3u);
  EXPECT_EQ(chat->gen.stop, std::vector<std::string>{"\n"});
  auto raw = parse_ollama_generate(body(R"({"model":"m","prompt":"hi","raw":true,"stream":false})"));
  ASSERT_TRUE(raw.has_value());
  EXPECT_FALSE(raw->stream);
  EXPECT_TRUE(raw->gen.messages.is_null());
  EXPECT_EQ(raw->gen.prompt, "hi");
  auto fim = parse_ollama_generate(body(R"({"model":"m","prompt":"a","suffix":"b"})"));
  ASSERT_TRUE(fim.has_value());
  EXPECT_EQ(*fim->gen.suffix, "b");
  auto unlimited = parse_ollama_generate(body(R"({"model":"m","prompt":"a","options":{"num_predict":-1,"seed":-1}})"));
  ASSERT_TRUE(unlimited.has_value());
  EXPECT_FALSE(unlimited->gen.max_tokens.has_value());
  EXPECT_FALSE(unlimited->gen.sampling.seed.has_value());
}

TEST(Ollama, EmptyPromptLoadsOrUnloads) {
  auto load = parse_ollama_generate(body(R"({"model":"m"})"));
  ASSERT_TRUE(load.has_value());
  EXPECT_EQ(load->special, Special::kLoad);
  auto unload = parse_ollama_generate(body(R"({"model":"m","keep_alive":0})"));
  ASSERT_TRUE(unload.has_value());
  EXPECT_EQ(unload->special, Special::kUnload);
  auto chat_load = parse_ollama_chat(body(R"({"model":"m","messages":[],"keep_alive":"10m"})"));
  ASSERT_TRUE(chat_load.has_value());
  EXPECT_EQ(chat_load->special, Special::kLoad);
  EXPECT_EQ(*chat_load->gen.keep_alive, std::chrono::minutes(10));
}

TEST(Ollama, KeepAliveForms) {
  EXPECT_EQ(**read_keep_alive(body(R"({"k":"5m"})"), "k"), std::chrono::minutes(5));
  EXPECT_EQ(**read_keep_alive(body(R"({"k":300})"), "k"), std::chrono::seconds(300));
  EXPECT_LT((**read_keep_alive(body(R"({"k":-1})"), "k")).count(), 0);
  EXPECT_LT((**read_keep_alive(body(R"({"k":"-1"})"), "k")).count(), 0);
  EXPECT_FALSE(read_keep_alive(body(R"({"k":"soon"})"), "k").has_value());
  EXPECT_FALSE(read_keep_alive(body(R"({"k":[1]})"), "k").has_value());
  EXPECT_FALSE((*read_keep_alive(body(R"({})"), "k")).has_value());
}

TEST(Ollama, ChatMessagesAndToolCalls) {
  auto r = parse_ollama_chat(body(R"({"model":"m","format":"json","messages":[
    {"role":"user","content":"x"},
    {"role":"assistant","content":"","tool_calls":[{"function":{"name":"f","arguments":{"a":1}}}]},
    {"role":"tool","content":"ok","tool_name":"f"}]})"));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_TRUE(r->json_mode);
  EXPECT_EQ(r->gen.messages[1]["tool_calls"][0]["function"]["arguments"]["a"], 1);
  EXPECT_EQ(r->gen.messages[2]["name"], "f");
}

TEST(Ollama, WrongFieldsAreNamed) {
  struct Case {
    const char* body;
    const char* param;
  };
  const Case cases[] = {
      {R"({"prompt":"x"})", "model"},
      {R"({"model":"m","prompt":5})", "prompt"},
      {R"({"model":"m","prompt":"x","options":[]})", "options"},
      {R"({"model":"m","prompt":"x","options":{"temperature":"hot"}})", "options.temperature"},
      {R"({"model":"m","prompt":"x","options":{"top_k":-1}})", "options.top_k"},
      {R"({"model":"m","prompt":"x","options":{"num_predict":-3}})", "options.num_predict"},
      {R"({"model":"m","prompt":"x","options":{"mirostat":2}})", "options.mirostat"},
      {R"({"model":"m","prompt":"x","options":{"typical_p":0.5}})", "options.typical_p"},
      {R"({"model":"m","prompt":"x","format":"yaml"})", "format"},
      {R"({"model":"m","prompt":"x","format":{"type":"object"}})", "format"},
      {R"({"model":"m","prompt":"x","images":["aGk="]})", "images"},
      {R"({"model":"m","prompt":"x","template":"{{ .Prompt }}"})", "template"},
      {R"({"model":"m","prompt":"x","context":[1,2]})", "context"},
      {R"({"model":"m","prompt":"x","keep_alive":"later"})", "keep_alive"},
      {R"({"model":"m","prompt":"x","stream":1})", "stream"},
  };
  for (const auto& c : cases) {
    auto r = parse_ollama_generate(body(c.body));
    ASSERT_FALSE(r.has_value()) << c.body;
    EXPECT_EQ(r.error().status, 400);
    EXPECT_EQ(r.error().param, c.param) << c.body << " -> " << r.error().message;
  }
  EXPECT_EQ(err(parse_ollama_chat(body(R"({"model":"m","messages":{"role":"user"}})"))).param, "messages");
  EXPECT_EQ(err(parse_ollama_chat(body(R"({"model":"m","messages":[{"role":"user","content":"x","images":["a"]}]})"))).param,
            "messages[0].images");
  EXPECT_EQ(err(parse_ollama_chat(body(R"({"model":"m","messages":[{"role":"bot","content":"x"}]})"))).param,
            "messages[0].role");
}

TEST(Errors, Shapes) {
  ApiError e;
  e.status = 400;
  e.message = "temperature: bad";
  e.param = "temperature";
  e.code = "invalid_request";
  const Json o = openai_error_body(e);
  EXPECT_EQ(o["error"]["message"], "temperature: bad");
  EXPECT_EQ(o["error"]["type"], "invalid_request_error");
  EXPECT_EQ(o["error"]["param"], "temperature");
  EXPECT_EQ(ollama_error_body(e)["error"], "temperature: bad");
  RequestError busy{RequestErrorCode::kBusy, "queue full", std::nullopt};
  ApiError b = from_request_error(busy);
  EXPECT_EQ(b.status, 429);
  ASSERT_TRUE(b.retry_after.has_value());
  EXPECT_EQ(from_request_error({RequestErrorCode::kPromptTooLong, "long", std::nullopt}).status, 413);
  EXPECT_EQ(from_request_error({RequestErrorCode::kModelNotFound, "x", std::nullopt}).status, 404);
  EXPECT_EQ(from_request_error({RequestErrorCode::kInsufficientMemory, "x", std::nullopt}).status, 503);
  EXPECT_EQ(from_request_error({RequestErrorCode::kInvalidRequest, "x", std::nullopt}).status, 400);
  EXPECT_EQ(from_request_error({RequestErrorCode::kShuttingDown, "x", std::nullopt}).status, 503);
  EXPECT_EQ(from_request_error({RequestErrorCode::kLoadFailed, "x", std::nullopt}).status, 500);
}

TEST(Time, Rfc3339) {
  const auto t = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000) + std::chrono::nanoseconds(5));
  EXPECT_EQ(rfc3339(t), "2023-11-14T22:13:20.000000005Z");
  EXPECT_EQ(unix_seconds(t), 1700000000);
}

}  // namespace
}  // namespace codey::server
