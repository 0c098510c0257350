// Tests of src/assistant/grammar.cc and tool_calls.cc: the byte grammar, JSON
// schemas compiled into it (every sentence it generates parses and conforms),
// the vocabulary prefix walk against a brute-force oracle, and the token
// constraint under random logits on real vocabularies.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <set>

#include "codey/assistant.h"
#include "codey/chat.h"
#include "codey/gguf.h"
#include "testing/testing.h"
#include "testing/tool_call_cases.h"

namespace codey {
namespace {

using ojson = nlohmann::ordered_json;

Grammar schema_grammar(const ojson& schema) {
  auto g = json_schema_grammar(schema);
  EXPECT_TRUE(g.has_value()) << (g ? "" : g.error().message);
  return std::move(*g);
}

// A random sentence: random live bytes until an accepting state, preferring
// to stop (and to move on) as the walk gets long so it terminates.
std::string random_sentence(Grammar& g, std::mt19937& rng, size_t soft_max = 200) {
  std::string out;
  int32_t s = g.dfa_start();
  while (true) {
    if (g.accepting(s) && (!g.can_continue(s) || rng() % 4 == 0 || out.size() > soft_max)) return out;
    std::vector<int> live;
    for (int b = 0; b < 256; ++b)
      if (g.step(s, static_cast<uint8_t>(b)) != Grammar::kDead) live.push_back(b);
    EXPECT_FALSE(live.empty()) << "stuck after '" << out << "'";
    if (live.empty()) return out;
    // Past the soft limit, prefer bytes that close structures.
    int b = live[rng() % live.size()];
    if (out.size() > soft_max)
      for (int c : {'"', '}', ']', 'e', 'l'})
        if (std::find(live.begin(), live.end(), c) != live.end()) {
          b = c;
          break;
        }
    out.push_back(static_cast<char>(b));
    s = g.step(s, static_cast<uint8_t>(b));
    if (out.size() > 20000) {
      ADD_FAILURE() << "runaway sentence";
      return out;
    }
  }
}

TEST(Grammar, LiteralsAndAlternatives) {
  Grammar g;
  std::vector<std::string> names{"coder", "code", "chat"};
  auto e = g.literal(g.one_of(g.literal(g.start(), "<"), names), ">");
  g.accept(e);
  EXPECT_TRUE(g.matches("<coder>"));
  EXPECT_TRUE(g.matches("<code>"));
  EXPECT_TRUE(g.matches("<chat>"));
  EXPECT_FALSE(g.matches("<cod>"));
  EXPECT_FALSE(g.matches("<coder"));
  EXPECT_TRUE(g.is_prefix("<cod"));
  EXPECT_TRUE(g.is_prefix(""));
  EXPECT_FALSE(g.is_prefix("<x"));
  EXPECT_FALSE(g.is_prefix("<chat>>"));
  const int32_t s = g.step(g.dfa_start(), "<chat>");
  EXPECT_TRUE(g.accepting(s));
  EXPECT_FALSE(g.can_continue(s));
}

TEST(JsonSchema, RouterCallShapes) {
  ojson schema = {{"type", "object"},
                  {"properties", {{"name", {{"enum", {"coder", "algorithm", "chat"}}}}, {"arguments", {{"type", "object"}}}}},
                  {"required", {"name", "arguments"}}};
  Grammar g = schema_grammar(schema);
  EXPECT_TRUE(g.matches(R"({"name": "coder", "arguments": {}})"));
  EXPECT_TRUE(g.matches(R"({"name":"chat","arguments":{}})"));
  EXPECT_TRUE(g.matches(R"({ "name" : "algorithm" , "arguments" : { } })"));
  EXPECT_FALSE(g.matches(R"({"name": "coders", "arguments": {}})"));
  EXPECT_FALSE(g.matches(R"({"arguments": {}, "name": "coder"})"));  // declared order
  EXPECT_FALSE(g.matches(R"({"name": "coder"})"));                    // required
  EXPECT_FALSE(g.matches(R"({"name":  "coder", "arguments": {}})"));   // at most one space
  EXPECT_TRUE(g.is_prefix(R"({"name": "al)"));
  EXPECT_FALSE(g.is_prefix(R"({"name": "x)"));
}

TEST(JsonSchema, OptionalPropertiesAndCommas) {
  ojson schema = {{"type", "object"},
                  {"properties", {{"a", {{"type", "integer"}}}, {"b", {{"type", "boolean"}}}, {"c", {{"type", "null"}}}}},
                  {"required", {"a"}}};
  Grammar g = schema_grammar(schema);
  EXPECT_TRUE(g.matches(R"({"a": 1})"));
  EXPECT_TRUE(g.matches(R"({"a": -20, "c": null})"));
  EXPECT_TRUE(g.matches(R"({"a": 0, "b": true, "c": null})"));
  EXPECT_FALSE(g.matches(R"({"a": 1,})"));
  EXPECT_FALSE(g.matches(R"({"c": null})"));
  EXPECT_FALSE(g.matches(R"({"a": 01})"));
  EXPECT_FALSE(g.matches(R"({"a": 1 "b": true})"));
  ojson none = {{"type", "object"}, {"properties", {{"x", {{"type", "string"}}}}}};
  Grammar g2 = schema_grammar(none);
  EXPECT_TRUE(g2.matches("{}"));
  EXPECT_TRUE(g2.matches(R"({"x": ""})"));
}

TEST(JsonSchema, StringsNumbersArrays) {
  Grammar s = schema_grammar({{"type", "string"}, {"minLength", 1}, {"maxLength", 3}});
  EXPECT_TRUE(s.matches(R"("abc")"));
  EXPECT_TRUE(s.matches(R"("\n\"x")"));
  EXPECT_TRUE(s.matches("\"\xc3\xa9\xe2\x82\xac\""));  // é€: characters, not bytes
  EXPECT_FALSE(s.matches(R"("")"));
  EXPECT_FALSE(s.matches(R"("abcd")"));
  EXPECT_FALSE(s.matches("\"\xc3\""));    // truncated UTF-8
  EXPECT_FALSE(s.matches("\"\xed\xa0\x80\""));  // surrogate
  EXPECT_FALSE(s.matches("\"a\tb\""));    // raw control character
  EXPECT_TRUE(s.matches(R"("\u00e9")"));
  Grammar n = schema_grammar({{"type", "number"}});
  for (const char* ok : {"0", "-1", "3.25", "1e5", "-0.5E-3", "12345678901234"}) EXPECT_TRUE(n.matches(ok)) << ok;
  for (const char* bad : {"01", "1.", ".5", "+1", "1e", "--1", "1.2.3"}) EXPECT_FALSE(n.matches(bad)) << bad;
  Grammar a = schema_grammar({{"type", "array"}, {"items", {{"type", "integer"}}}, {"minItems", 1}, {"maxItems", 3}});
  EXPECT_TRUE(a.matches("[1]"));
  EXPECT_TRUE(a.matches("[1, 2, 3]"));
  EXPECT_FALSE(a.matches("[]"));
  EXPECT_FALSE(a.matches("[1, 2, 3, 4]"));
  EXPECT_FALSE(a.matches("[1,]"));
  Grammar u = schema_grammar({{"type", "array"}, {"items", {{"enum", {"x", 2, true}}}}});
  EXPECT_TRUE(u.matches("[]"));
  EXPECT_TRUE(u.matches(R"(["x", 2, true, "x", 2, 2, 2])"));
  EXPECT_FALSE(u.matches(R"(["y"])"));
  Grammar t = schema_grammar({{"type", {"string", "null"}}});
  EXPECT_TRUE(t.matches("null"));
  EXPECT_TRUE(t.matches(R"("q")"));
  EXPECT_FALSE(t.matches("1"));
}

TEST(JsonSchema, UnsupportedKeywordsAreErrors) {
  auto g = json_schema_grammar({{"type", "string"}, {"pattern", "^a+$"}});
  ASSERT_FALSE(g.has_value());
  EXPECT_EQ(g.error().code, ErrorCode::kUnsupported);
  EXPECT_NE(g.error().message.find("pattern"), std::string::npos);
  auto any = json_schema_grammar(ojson::object());
  ASSERT_FALSE(any.has_value());
  auto bad_type = json_schema_grammar({{"type", "strin"}});
  ASSERT_FALSE(bad_type.has_value());
  EXPECT_NE(bad_type.error().message.find("strin"), std::string::npos);
}

// Every sentence the grammar can produce is JSON that satisfies the schema.
TEST(JsonSchema, RandomSentencesParseAndConform) {
  ojson schema = {
      {"type", "object"},
      {"properties",
       {{"route", {{"enum", {"coder", "algorithm", "chat"}}}},
        {"reason", {{"type", "string"}, {"maxLength", 12}}},
        {"confidence", {{"type", "number"}}},
        {"files", {{"type", "array"}, {"items", {{"type", "string"}, {"maxLength", 8}}}, {"maxItems", 3}}},
        {"urgent", {{"type", "boolean"}}},
        {"meta", {{"type", "object"}, {"properties", {{"n", {{"type", "integer"}}}}}, {"required", {"n"}}}}}},
      {"required", {"route", "files"}}};
  Grammar g = schema_grammar(schema);
  std::mt19937 rng(7);
  for (int trial = 0; trial < 400; ++trial) {
    const std::string s = random_sentence(g, rng);
    auto j = nlohmann::ordered_json::parse(s, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << s;
    ASSERT_TRUE(j.is_object()) << s;
    ASSERT_TRUE(j.contains("route") && j.contains("files")) << s;
    const auto route = j["route"].get<std::string>();
    EXPECT_TRUE(route == "coder" || route == "algorithm" || route == "chat") << s;
    ASSERT_TRUE(j["files"].is_array()) << s;
    EXPECT_LE(j["files"].size(), 3u) << s;
    for (const auto& f : j["files"]) {
      ASSERT_TRUE(f.is_string()) << s;
      // maxLength counts characters (code points), as JSON schema does.
      const auto str = f.get<std::string>();
      size_t cps = 0;
      for (unsigned char c : str) cps += (c & 0xc0) != 0x80;
      EXPECT_LE(cps, 8u) << s;
    }
    if (j.contains("reason")) {
      EXPECT_TRUE(j["reason"].is_string()) << s;
    }
    if (j.contains("confidence")) {
      EXPECT_TRUE(j["confidence"].is_number()) << s;
    }
    if (j.contains("urgent")) {
      EXPECT_TRUE(j["urgent"].is_boolean()) << s;
    }
    if (j.contains("meta")) {
      EXPECT_TRUE(j["meta"]["n"].is_number_integer()) << s;
    }
    // And the property order is the schema's.
    std::vector<std::string> keys;
    for (const auto& [k, v] : j.items()) keys.push_back(k);
    std::vector<std::string> order{"route", "reason", "confidence", "files", "urgent", "meta"};
    size_t pos = 0;
    for (const auto& k : keys) {
      while (pos < order.size() && order[pos] != k) ++pos;
      EXPECT_LT(pos, order.size()) << "key out of order in " << s;
    }
  }
}

// ------------------------------------------------------- vocabulary walks --

Tokenizer load_vocab(const std::string& name) {
  auto f = GgufFile::open(testing::testdata("vocab/" + name));
  EXPECT_TRUE(f.has_value());
  auto t = Tokenizer::from_gguf(*f);
  EXPECT_TRUE(t.has_value()) << (t ? "" : t.error().message);
  return std::move(*t);
}

// Brute force: a token is allowed iff its whole piece keeps the state alive.
std::vector<TokenId> oracle_allowed(const VocabIndex& v, Grammar& g, int32_t state) {
  std::vector<TokenId> out;
  for (TokenId id = 0; id < v.n_tokens(); ++id) {
    if (v.is_eog(id) || v.piece(id).empty()) continue;
    if (g.step(state, v.piece(id)) != Grammar::kDead) out.push_back(id);
  }
  return out;
}

TEST(VocabIndex, PrefixWalkMatchesBruteForce) {
  for (const char* file : {"ggml-vocab-gpt-2.gguf", "ggml-vocab-llama-spm.gguf", "ggml-vocab-deepseek-coder.gguf"}) {
    SCOPED_TRACE(file);
    Tokenizer tok = load_vocab(file);
    auto index = VocabIndex::build(tok);
    std::vector<std::string> names{"coder", "algorithm", "chat"};
    Grammar g = tool_choice_grammar(ToolCallFormat::kHermes, names);
    // States along a valid sentence, plus the start.
    const std::string sentence = "<tool_call>\n{\"name\": \"algorithm\", \"arguments\": {}}\n</tool_call>";
    int32_t s = g.dfa_start();
    for (size_t i = 0; i <= sentence.size(); i += 3) {
      const int32_t state = g.step(g.dfa_start(), std::string_view(sentence).substr(0, i));
      ASSERT_NE(state, Grammar::kDead);
      std::vector<TokenId> got;
      index->allowed(g, state, got);
      auto want = oracle_allowed(*index, g, state);
      // The oracle also admits unused/unknown tokens the index leaves out.
      std::erase_if(want, [&](TokenId id) { return (tok.token_attr(id) & (kAttrUnused | kAttrUnknown)) != 0; });
      std::sort(got.begin(), got.end());
      EXPECT_EQ(got, want) << "at offset " << i;
    }
    (void)s;
  }
}

// Picks tokens by random logits (a stand-in for random weights) through the
// constraint, like the runtime's sampler does: the output is always a
// complete, parseable call to a configured route.
std::string constrained_run(const std::shared_ptr<const VocabIndex>& index, Grammar g, std::mt19937& rng,
                            int n_vocab, int max_tokens, bool* complete) {
  GrammarConstraint c(index, std::move(g));
  std::vector<float> logits(static_cast<size_t>(n_vocab));
  uint64_t x = rng() | 1;
  for (int t = 0; t < max_tokens && !c.done(); ++t) {
    for (auto& l : logits) {  // xorshift: cheap uniform noise
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      l = static_cast<float>(x >> 40) * 0x1p-24f * 8.f;
    }
    c.apply(logits);
    const auto best = std::max_element(logits.begin(), logits.end()) - logits.begin();
    EXPECT_TRUE(std::isfinite(logits[static_cast<size_t>(best)]));
    c.accept(static_cast<TokenId>(best));
    EXPECT_FALSE(c.violated());
  }
  *complete = c.complete();
  return c.text();
}

TEST(GrammarConstraint, RandomLogitsAlwaysGiveAValidRoute) {
  Tokenizer tok = load_vocab("ggml-vocab-gpt-2.gguf");
  auto index = VocabIndex::build(tok);
  std::vector<std::string> names{"coder", "algorithm", "chat", "code-review"};
  std::mt19937 rng(1234);
  for (auto f : kToolCallFormats) {
    SCOPED_TRACE(std::string(tool_call_format_name(f)));
    std::map<std::string, int> seen;
    for (int trial = 0; trial < 40; ++trial) {
      bool complete = false;
      const std::string text = constrained_run(index, tool_choice_grammar(f, names), rng, tok.n_tokens(), 200, &complete);
      ASSERT_TRUE(complete) << text;
      auto name = parse_tool_choice(f, text, names);
      ASSERT_TRUE(name.has_value()) << text;
      ++seen[*name];
    }
    EXPECT_GE(seen.size(), 2u);  // random logits pick different routes
  }
}

TEST(GrammarConstraint, EndOfGenerationOnlyWhereTheSentenceMayEnd) {
  Tokenizer tok = load_vocab("ggml-vocab-llama-spm.gguf");
  auto index = VocabIndex::build(tok);
  ASSERT_FALSE(index->eog().empty());
  // "a" or "ab": after "a" both EOG and "b" are allowed; at the start EOG is not.
  Grammar g;
  auto a = g.literal(g.start(), "a");
  g.accept(a);
  g.accept(g.literal(a, "b"));
  GrammarConstraint c(index, std::move(g));
  std::vector<float> logits(static_cast<size_t>(tok.n_tokens()), 0.f);
  c.apply(logits);
  for (TokenId e : index->eog()) EXPECT_TRUE(std::isinf(logits[static_cast<size_t>(e)]));
  auto ta = tok.find_token("a");
  ASSERT_TRUE(ta.has_value());
  EXPECT_FALSE(std::isinf(logits[static_cast<size_t>(*ta)]));
  c.accept(*ta);
  EXPECT_FALSE(c.done());
  std::fill(logits.begin(), logits.end(), 0.f);
  c.apply(logits);
  for (TokenId e : index->eog()) EXPECT_FALSE(std::isinf(logits[static_cast<size_t>(e)]));
  c.accept(index->eog()[0]);
  EXPECT_TRUE(c.done());
  EXPECT_TRUE(c.complete());
  EXPECT_FALSE(c.violated());
  EXPECT_EQ(c.text(), "a");
}

TEST(GrammarConstraint, ATokenOutsideTheGrammarIsReported) {
  Tokenizer tok = load_vocab("ggml-vocab-gpt-2.gguf");
  auto index = VocabIndex::build(tok);
  std::vector<std::string> names{"coder"};
  GrammarConstraint c(index, tool_choice_grammar(ToolCallFormat::kJson, names));
  auto x = tok.find_token("x");
  ASSERT_TRUE(x.has_value());
  c.accept(*x);
  EXPECT_TRUE(c.violated());
  EXPECT_TRUE(c.done());
}

// A 262k-token vocabulary (FunctionGemma's size) of random pieces: build
// time and per-step masking time, reported; the result is still checked.
TEST(GrammarConstraint, LargeVocabularyCost) {
  VocabData vd;
  vd.model = "gpt2";
  vd.pre = "default";
  std::mt19937 rng(99);
  const std::string alphabet = "abcdefghijklmnopqrstuvwxyz_{}\":,<>=ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::set<std::string> seen;
  for (int b = 33; b < 127; ++b) seen.insert(std::string(1, static_cast<char>(b)));
  while (seen.size() < 262144) {
    std::string s;
    const int len = 2 + static_cast<int>(rng() % 9);
    for (int i = 0; i < len; ++i) s.push_back(alphabet[rng() % alphabet.size()]);
    seen.insert(s);
  }
  vd.tokens.assign(seen.begin(), seen.end());
  vd.tokens.push_back("<eos>");
  vd.token_types.assign(vd.tokens.size(), 1);
  vd.token_types.back() = 3;
  vd.eos = static_cast<TokenId>(vd.tokens.size() - 1);
  auto tok = Tokenizer::from_vocab(std::move(vd));
  ASSERT_TRUE(tok.has_value()) << tok.error().message;
  const auto t0 = Clock::now();
  auto index = VocabIndex::build(*tok);
  const double build_s = seconds_since(t0);
  std::vector<std::string> names{"coder", "algorithm", "chat"};
  {
    // The prefix walk alone, at every state of a valid sentence (no memo).
    Grammar g = tool_choice_grammar(ToolCallFormat::kJson, names);
    const std::string sentence = R"({"name": "algorithm", "arguments": {}})";
    std::vector<TokenId> ids;
    const auto tw = Clock::now();
    size_t total = 0;
    for (size_t i = 0; i < sentence.size(); ++i) {
      ids.clear();
      index->allowed(g, g.step(g.dfa_start(), std::string_view(sentence).substr(0, i)), ids);
      total += ids.size();
    }
    std::printf("[ measure  ] 262k vocab: prefix walk %.3f ms/state (%zu states, %.1f allowed tokens/state)\n",
                1e3 * seconds_since(tw) / sentence.size(), sentence.size(), double(total) / sentence.size());
  }
  GrammarConstraint c(index, tool_choice_grammar(ToolCallFormat::kJson, names));
  std::vector<float> logits(static_cast<size_t>(tok->n_tokens()));
  int steps = 0;
  uint64_t x = 88172645463325252ull;
  double fill_s = 0;
  const auto t1 = Clock::now();
  while (!c.done() && steps < 100) {
    const auto tf = Clock::now();
    for (auto& l : logits) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      l = static_cast<float>(x >> 40) * 0x1p-24f;
    }
    fill_s += seconds_since(tf);
    c.apply(logits);
    c.accept(static_cast<TokenId>(std::max_element(logits.begin(), logits.end()) - logits.begin()));
    ++steps;
  }
  const double run_s = seconds_since(t1);
  EXPECT_TRUE(c.complete()) << c.text();
  EXPECT_TRUE(parse_tool_choice(ToolCallFormat::kJson, c.text(), names).has_value());
  std::printf("[ measure  ] 262k vocab: index %.3f s; %d constrained steps, masking %.3f ms/step, sampling "
              "(argmax) %.3f ms/step, %zu DFA states\n",
              build_s, steps, 1e3 * c.mask_seconds() / steps, 1e3 * (run_s - fill_s - c.mask_seconds()) / steps,
              c.dfa_states());
}

TEST(ToolCalls, FormatsDetectedFromTemplates) {
  auto read = [](const std::string& f) { return testing::read_file_text(testing::testdata("templates/" + f)); };
  EXPECT_EQ(detect_tool_call_format(read("Qwen-Qwen2.5-7B-Instruct.jinja")), ToolCallFormat::kHermes);
  EXPECT_EQ(detect_tool_call_format(read("meta-llama-Llama-3.1-8B-Instruct.jinja")), ToolCallFormat::kLlama3);
  EXPECT_EQ(detect_tool_call_format(read("mistralai-Mistral-Nemo-Instruct-2407.jinja")), ToolCallFormat::kMistral);
  EXPECT_EQ(detect_tool_call_format(read("Qwen3-Coder.jinja")), ToolCallFormat::kQwen3Coder);
  // ChatML takes no tools: the router writes JSON, the routes in its prompt.
  EXPECT_EQ(detect_tool_call_format(std::string(kChatMlTemplate)), ToolCallFormat::kNone);
  EXPECT_EQ(router_call_format(std::string(kChatMlTemplate)), ToolCallFormat::kJson);
  EXPECT_EQ(router_call_format(read("Qwen3-Coder.jinja")), ToolCallFormat::kQwen3Coder);
  EXPECT_EQ(detect_tool_call_format("{{ '<start_function_call>' }}"), ToolCallFormat::kFunctionGemma);
}

// `codey task`'s side of the shared table (tests/testing/tool_call_cases.h;
// tests/server runs it through `codey serve`'s responses): the router reads
// the first call's name from every format's replies and nothing from the
// malformed ones, and its grammar admits exactly the rendered calls.
TEST(ToolCalls, SharedTableThroughTheRouter) {
  for (const auto& c : testing::tool_call_cases()) {
    SCOPED_TRACE(c.what);
    EXPECT_EQ(router_call_format(c.chat_template), c.format);
    const std::vector<std::string> names{"get_weather", "read_file"};
    const auto name = parse_tool_choice(c.format, c.reply, names);
    if (c.calls.empty()) {
      EXPECT_FALSE(name.has_value());
    } else {
      EXPECT_EQ(name, std::optional<std::string>(c.calls.front().name));
    }
    EXPECT_FALSE(parse_tool_choice(c.format, c.reply, std::vector<std::string>{"other"}).has_value());
    Grammar g = tool_choice_grammar(c.format, names);
    for (const auto& n : names) {
      const std::string call = render_tool_calls(c.format, std::vector<ToolCall>{{n}});
      EXPECT_TRUE(g.matches(call)) << call;
      std::string tight = call;  // JSON without the optional spaces: still a call, still parsed
      for (size_t p; (p = tight.find(": ")) != std::string::npos || (p = tight.find(", ")) != std::string::npos;)
        tight.erase(p + 1, 1);
      EXPECT_TRUE(g.matches(tight)) << tight;
      EXPECT_EQ(parse_tool_choice(c.format, tight, names), std::optional<std::string>(n)) << tight;
      EXPECT_FALSE(g.matches(call + " ")) << call;
    }
  }
}

TEST(ToolCalls, CanonicalCallsMatchAndParse) {
  std::vector<std::string> names{"coder", "chat"};
  struct Case {
    ToolCallFormat f;
    std::string text;
  } cases[] = {
      {ToolCallFormat::kJson, R"({"name": "chat", "arguments": {}})"},
      {ToolCallFormat::kHermes, "<tool_call>\n{\"name\": \"chat\", \"arguments\": {}}\n</tool_call>"},
      {ToolCallFormat::kLlama3, R"({"name": "chat", "parameters": {}})"},
      {ToolCallFormat::kMistral, R"([TOOL_CALLS][{"name": "chat", "arguments": {}}])"},
      {ToolCallFormat::kFunctionGemma, "<start_function_call>call:chat{}<end_function_call>"},
      {ToolCallFormat::kQwen3Coder, "<tool_call>\n<function=chat>\n</function>\n</tool_call>"},
  };
  for (const auto& c : cases) {
    Grammar g = tool_choice_grammar(c.f, names);
    EXPECT_TRUE(g.matches(c.text)) << c.text;
    EXPECT_EQ(parse_tool_choice(c.f, c.text, names), std::optional<std::string>("chat"));
  }
  EXPECT_FALSE(parse_tool_choice(ToolCallFormat::kJson, R"({"name": "other"})", names).has_value());
  EXPECT_FALSE(parse_tool_choice(ToolCallFormat::kJson, "not json", names).has_value());
  auto tools = route_tools(default_routes("m"));
  ASSERT_EQ(tools.size(), 3u);
  EXPECT_EQ(tools[0]["type"], "function");
  EXPECT_EQ(tools[0]["function"]["name"], "coder");
  EXPECT_FALSE(tools[0]["function"]["description"].get<std::string>().empty());
}

}  // namespace
}  // namespace codey
