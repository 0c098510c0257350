// Tool-call formats (src/chat/tool_calls.cc): the shared table parsed whole
// and streamed in pieces, render -> parse round trips, the reference's own
// template renderings, and hostile model output.
#include <cctype>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "codey/chat.h"
#include "codey/tool_calls.h"
#include "testing/testing.h"
#include "testing/tool_call_cases.h"

namespace codey {
namespace {

using J = nlohmann::ordered_json;

std::string trimmed(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t b = 0;
  while (b < s.size() && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  return s.substr(b);
}

// The reply fed to a parser in pieces of `step` bytes.
ToolCallParser::Output streamed(ToolCallFormat f, const std::string& reply, size_t step) {
  ToolCallParser p(f, testing::weather_tools());
  std::string content;
  for (size_t i = 0; i < reply.size(); i += step) content += p.push(std::string_view(reply).substr(i, step));
  auto out = p.finish();
  out.content = content + out.content;
  return out;
}

TEST(ToolCallFormats, EachCaseParsesWholeAndStreamed) {
  for (const auto& c : testing::tool_call_cases()) {
    SCOPED_TRACE(c.what);
    EXPECT_EQ(detect_tool_call_format(c.chat_template), c.format);
    for (size_t step : {c.reply.size() + 1, size_t{1}, size_t{2}, size_t{7}}) {
      SCOPED_TRACE(step);
      const auto out = streamed(c.format, c.reply, step);
      EXPECT_EQ(out.calls, c.calls);
      EXPECT_EQ(trimmed(out.content), c.content);
      if (c.calls.empty()) {
        EXPECT_EQ(out.content, c.reply);  // nothing lost, nothing added
      }
    }
  }
}

TEST(ToolCallFormats, ContentBeforeAMarkerStreamsAtOnce) {
  ToolCallParser p(ToolCallFormat::kQwen3Coder);
  EXPECT_EQ(p.push("Let me look. <tool"), "Let me look. ");  // "<tool" may start a call: held
  EXPECT_EQ(p.push("box> is fine"), "<toolbox> is fine");   // it did not
  EXPECT_EQ(p.push(" <tool_call>\n<function=read_file>"), " ");
  EXPECT_EQ(p.push("\n<parameter=path>\na.c\n</parameter>\n</function>\n</tool_call>"), "");
  const auto out = p.finish();
  ASSERT_EQ(out.calls.size(), 1u);
  EXPECT_EQ(out.calls[0].arguments, (J{{"path", "a.c"}}));

  ToolCallParser plain(ToolCallFormat::kNone);
  EXPECT_EQ(plain.push("<tool_call>{}"), "<tool_call>{}");
  EXPECT_TRUE(plain.finish().calls.empty());
}

TEST(ToolCallFormats, RenderThenParseRoundTrips) {
  const std::vector<ToolCall> calls = {
      {"get_weather", J{{"city", "Oslo"}, {"days", 3}, {"hours", J::array({6, 18})}, {"metric", true}}},
      {"read_file", J{{"path", "src/a b.c"}}},
      {"no_args", J::object()},
  };
  for (ToolCallFormat f : kToolCallFormats) {
    SCOPED_TRACE(std::string(tool_call_format_name(f)));
    for (size_t n : {size_t{1}, calls.size()}) {
      const std::span<const ToolCall> some(calls.data(), n);
      const std::string text = render_tool_calls(f, some);
      const auto out = parse_tool_calls(f, text, testing::weather_tools());
      EXPECT_EQ(out.calls, std::vector<ToolCall>(some.begin(), some.end())) << text;
      EXPECT_EQ(trimmed(out.content), "") << text;
    }
  }
}

// What codey renders for a call is what the reference's renderings of the
// published templates show their models (expected/*.tools.txt).
TEST(ToolCallFormats, RenderingMatchesThePublishedTemplates) {
  const J cases = J::parse(testing::read_file_text(testing::testdata("templates/cases.json")));
  const J* tools_case = nullptr;
  for (const auto& c : cases)
    if (c["name"] == "tools") tools_case = &c;
  ASSERT_NE(tools_case, nullptr);
  std::vector<ToolCall> calls;
  for (const auto& m : (*tools_case)["messages"])
    if (m.contains("tool_calls"))
      for (const auto& tc : m["tool_calls"]) calls.push_back(*parse_tool_call_object(tc));
  ASSERT_EQ(calls.size(), 1u);
  const struct {
    const char* name;
    ToolCallFormat format;
  } templates[] = {
      {"Qwen3-Coder", ToolCallFormat::kQwen3Coder},
      {"Qwen-Qwen2.5-7B-Instruct", ToolCallFormat::kHermes},
      {"NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use", ToolCallFormat::kHermes},
      {"meta-llama-Llama-3.1-8B-Instruct", ToolCallFormat::kLlama3},
  };
  for (const auto& t : templates) {
    SCOPED_TRACE(t.name);
    const std::string source = testing::read_file_text(testing::testdata(std::string("templates/") + t.name + ".jinja"));
    EXPECT_EQ(detect_tool_call_format(source), t.format);
    const std::string expected =
        testing::read_file_text(testing::testdata(std::string("templates/expected/") + t.name + ".tools.txt"));
    const std::string call = render_tool_calls(t.format, calls);
    EXPECT_NE(expected.find(call), std::string::npos) << call;
    // codey's renderer of the template agrees (the conformance test checks
    // the whole text), and the call parses back from it.
    auto tmpl = ChatTemplate::parse(source);
    ASSERT_TRUE(tmpl.has_value());
    ChatTemplateInputs in;
    in.messages = (*tools_case)["messages"];
    in.tools = (*tools_case)["tools"];
    in.bos_token = "<s>";
    in.eos_token = "</s>";
    auto text = tmpl->render(in);
    ASSERT_TRUE(text.has_value()) << text.error().message;
    const size_t at = text->find(call);
    ASSERT_NE(at, std::string::npos);
    EXPECT_EQ(parse_tool_calls(t.format, text->substr(at, call.size()), (*tools_case)["tools"]).calls, calls);
  }
  // Mistral Nemo's rendering of this case is an error (its call ids must be
  // 9 characters), so only its detection is checked here.
  EXPECT_EQ(detect_tool_call_format(
                testing::read_file_text(testing::testdata("templates/mistralai-Mistral-Nemo-Instruct-2407.jinja"))),
            ToolCallFormat::kMistral);
  EXPECT_EQ(detect_tool_call_format(testing::read_file_text(testing::testdata("templates/Qwen-Qwen3-0.6B.jinja"))),
            ToolCallFormat::kHermes);
  EXPECT_EQ(detect_tool_call_format(kChatMlTemplate), ToolCallFormat::kNone);
  EXPECT_EQ(detect_tool_call_format("{{ mytools }}"), ToolCallFormat::kNone);  // a word containing "tools" is not it
}

TEST(ToolCallFormats, HeldTextIsBounded) {
  for (ToolCallFormat f : kToolCallFormats) {
    SCOPED_TRACE(std::string(tool_call_format_name(f)));
    ToolCallParser p(f);
    const std::string start = f == ToolCallFormat::kJson || f == ToolCallFormat::kLlama3
                                  ? "{\"name\": \"x\", \"arguments\": {\"a\": \""
                                  : render_tool_calls(f, std::vector<ToolCall>{{"x", J::object()}}).substr(0, 24);
    std::string shown = p.push(start);
    const std::string chunk(4096, 'a');
    size_t fed = start.size();
    while (fed <= kMaxToolCallBytes + chunk.size()) {
      shown += p.push(chunk);
      fed += chunk.size();
    }
    EXPECT_GE(shown.size(), kMaxToolCallBytes);  // the held text came out as content
    EXPECT_EQ(p.push("tail"), "tail");          // and the rest passes through
    const auto out = p.finish();
    EXPECT_TRUE(out.calls.empty());
    EXPECT_EQ(shown.size() + 4 + out.content.size(), fed + 4);
  }
}

TEST(ToolCallFormats, HostileNestingAndBytesAreContent) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  const std::string deep_gemma = std::string(100000, '[');
  const std::string bad_utf8 = "\xff\xfe";
  const std::vector<std::pair<ToolCallFormat, std::string>> replies = {
      {ToolCallFormat::kJson, "{\"name\": \"x\", \"arguments\": {\"a\": " + deep + "}}"},
      {ToolCallFormat::kHermes, "<tool_call>{\"name\": \"x\", \"arguments\": " + deep + "}</tool_call>"},
      {ToolCallFormat::kMistral, "[TOOL_CALLS]" + deep},
      {ToolCallFormat::kFunctionGemma, "<start_function_call>call:x{a:" + deep_gemma + "<end_function_call>"},
      {ToolCallFormat::kQwen3Coder, "<tool_call><function=x" + bad_utf8 + "></function></tool_call>"},
      {ToolCallFormat::kQwen3Coder,
       "<tool_call><function=x><parameter=a>" + bad_utf8 + "</parameter></function></tool_call>"},
      {ToolCallFormat::kFunctionGemma, "<start_function_call>call:x{a:<escape>" + bad_utf8 + "<escape>}<end_function_call>"},
      {ToolCallFormat::kQwen3Coder,
       "<tool_call><function=x><parameter=a>1</parameter><parameter=a>2</parameter></function></tool_call>"},
  };
  for (const auto& [f, reply] : replies) {
    SCOPED_TRACE(reply.substr(0, 60));
    const auto out = parse_tool_calls(f, reply);
    EXPECT_TRUE(out.calls.empty());
    EXPECT_EQ(out.content, reply);
  }
}

// Random splices of every format's markers and fragments: never a crash, and
// either calls or the reply back unchanged.
TEST(ToolCallFormats, RandomFragmentsNeverCrash) {
  const std::vector<std::string> bits = {
      "<tool_call>", "</tool_call>", "<function=", "</function>", "<parameter=", "</parameter>", "[TOOL_CALLS]",
      "[ARGS]", "<|python_tag|>", "<start_function_call>", "<end_function_call>", "call:", "<escape>", "{", "}", "[",
      "]", "\"", ":", ",", ";", "\n", "name", "arguments", "x", "1", "true", "\\", ">", "<", "\xc3", "\xa9"};
  std::mt19937 rng(7);
  for (int i = 0; i < 3000; ++i) {
    std::string reply;
    const int n = static_cast<int>(rng() % 24);
    for (int k = 0; k < n; ++k) reply += bits[rng() % bits.size()];
    for (ToolCallFormat f : kToolCallFormats) {
      const auto out = streamed(f, reply, 1 + rng() % 5);
      if (out.calls.empty()) {
        EXPECT_EQ(out.content, reply);
      }
      for (const auto& c : out.calls) {
        EXPECT_FALSE(c.name.empty());
        EXPECT_TRUE(c.arguments.is_object());
      }
    }
  }
}

// The server parser's earlier cases, kept.
TEST(ToolCallParser, DetectedFromTheTemplate) {
  EXPECT_EQ(detect_tool_call_format("{% for m in messages %}{{ m.content }}{% endfor %}"), ToolCallFormat::kNone);
  EXPECT_EQ(detect_tool_call_format("{%- if tools %}<tool_call>{% endif %}"), ToolCallFormat::kHermes);
  EXPECT_EQ(detect_tool_call_format("{%- if tools %}[TOOL_CALLS]{% endif %}"), ToolCallFormat::kMistral);
  EXPECT_EQ(detect_tool_call_format("{%- if tools is not none %}{{ tools | tojson }}{% endif %}"), ToolCallFormat::kJson);
  EXPECT_EQ(detect_tool_call_format("{{ mytools }}"), ToolCallFormat::kNone);  // a word containing "tools" is not it
}

TEST(ToolCallParser, HermesSplitsContentAndCalls) {
  ToolCallParser p(ToolCallFormat::kHermes);
  std::string shown;
  for (std::string_view piece : {"Let me check", ". <tool", "_call>\n{\"name\": \"get\", ", "\"arguments\": {\"city\": \"Oslo\"}}",
                                 "\n</tool_call>\n<tool_call>{\"name\":\"t\",\"arguments\":\"{\\\"x\\\":1}\"}</tool_call>"})
    shown += p.push(piece);
  EXPECT_EQ(shown, "Let me check. ");
  auto out = p.finish();
  EXPECT_EQ(out.content, "");
  ASSERT_EQ(out.calls.size(), 2u);
  EXPECT_EQ(out.calls[0].name, "get");
  EXPECT_EQ(out.calls[0].arguments["city"], "Oslo");
  EXPECT_EQ(out.calls[1].name, "t");
  EXPECT_EQ(out.calls[1].arguments["x"], 1);
}

TEST(ToolCallParser, HermesHoldsOnlyWhatMayBeAMarker) {
  ToolCallParser p(ToolCallFormat::kHermes);
  EXPECT_EQ(p.push("a <to"), "a ");
  EXPECT_EQ(p.push("p> b"), "<top> b");
  auto out = p.finish();
  EXPECT_EQ(out.content, "");
  EXPECT_TRUE(out.calls.empty());
  ToolCallParser q(ToolCallFormat::kHermes);
  EXPECT_EQ(q.push("x <"), "x ");
  auto end = q.finish();
  EXPECT_EQ(end.content, "<");  // held text comes out at the end
}

TEST(ToolCallParser, BrokenCallsAreContent) {
  ToolCallParser p(ToolCallFormat::kHermes);
  p.push("<tool_call>{\"name\": oops}</tool_call>");
  auto out = p.finish();
  EXPECT_TRUE(out.calls.empty());
  EXPECT_EQ(out.content, "<tool_call>{\"name\": oops}</tool_call>");
}

// A model can write nesting as deep as it likes; its output is parsed within
// the request limits, and a call nested beyond them is content, not a crash.
TEST(ToolCallParser, DeepModelOutputIsContent) {
  std::string deep = "{\"a\":" + std::string(100000, '[') + std::string(100000, ']') + "}";
  ToolCallParser p(ToolCallFormat::kHermes);
  p.push("<tool_call>{\"name\": \"f\", \"arguments\": " + deep + "}</tool_call>");
  auto out = p.finish();
  EXPECT_TRUE(out.calls.empty());
  std::string args = "\"{\\\"a\\\":" + std::string(100000, '[') + std::string(100000, ']') + "}\"";
  ToolCallParser q(ToolCallFormat::kHermes);
  q.push("<tool_call>{\"name\": \"f\", \"arguments\": " + args + "}</tool_call>");
  auto out2 = q.finish();  // the arguments string is parsed again, within the limits: not a call
  EXPECT_TRUE(out2.calls.empty());
  EXPECT_NE(out2.content.find("<tool_call>"), std::string::npos);
}

TEST(ToolCallParser, JsonAndMistralFormats) {
  ToolCallParser j(ToolCallFormat::kJson);
  EXPECT_EQ(j.push("  {\"name\": \"f\", "), "");
  EXPECT_EQ(j.push("\"parameters\": {\"a\": [1]}}"), "");
  auto out = j.finish();
  ASSERT_EQ(out.calls.size(), 1u);
  EXPECT_EQ(out.calls[0].arguments["a"][0], 1);

  ToolCallParser text(ToolCallFormat::kJson);
  EXPECT_EQ(text.push(" Hello"), " Hello");
  EXPECT_EQ(text.push(" {\"name\":\"f\"}"), " {\"name\":\"f\"}");  // a reply that began as text stays text
  EXPECT_TRUE(text.finish().calls.empty());

  ToolCallParser tag(ToolCallFormat::kJson);
  EXPECT_EQ(tag.push("<|python"), "");
  EXPECT_EQ(tag.push("_tag|>{\"name\":\"g\",\"parameters\":{}}"), "");
  ASSERT_EQ(tag.finish().calls.size(), 1u);

  ToolCallParser m(ToolCallFormat::kMistral);
  EXPECT_EQ(m.push("[TOOL_CALLS] [{\"name\":\"a\",\"arguments\":{}},{\"name\":\"b\",\"arguments\":{\"z\":2}}]"), "");
  auto mo = m.finish();
  ASSERT_EQ(mo.calls.size(), 2u);
  EXPECT_EQ(mo.calls[1].arguments["z"], 2);
}

}  // namespace
}  // namespace codey
