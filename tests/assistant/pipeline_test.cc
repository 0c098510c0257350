// Tests of src/assistant/pipeline.cc on a real Runtime: with a scripted
// model backend (extraction, safe writes, refusals, backups, dry run, the
// check and its bounded repair loop, routing by a router model, streaming,
// cancellation) and with synthesized random-weight models on codey's engine
// (routing constrained to valid calls always yields a configured route).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "assistant_testing.h"

namespace codey {
namespace {

namespace fs = std::filesystem;
using testing::ScriptedBackend;

const std::string kGood = "```python title=calculator.py\ndef add(a, b):\n    return a + b\n\n\ndef divide(a, b):\n"
                          "    if b == 0:\n        raise ZeroDivisionError(\"b is zero\")\n    return a / b\n```\n";
const std::string kBroken = "```python title=calculator.py\ndef add(a, b)\n    return a + b\n```\n";
const std::string kTask = "Create functions for add, subtract, multiply, and divide in calculator.py";

struct Fixture : ::testing::Test {
  // One scripted model file serves "coder" and "router" (the byte-level
  // tokenizer of a synthesized model, ChatML template).
  void make(ScriptedBackend::Responder responder, bool with_router = false) {
    backend = std::make_shared<ScriptedBackend>(std::move(responder));
    const std::string file = testing::synth_tiny("llama", 1);
    RuntimeConfig cfg;
    cfg.memory_budget = 1ull << 30;
    cfg.threads = 1;
    cfg.models.push_back(testing::model_config("coder", file));
    cfg.models.push_back(testing::model_config("helper", file));
    if (with_router) {
      cfg.models.push_back(testing::model_config("router", file));
      cfg.router = "router";
    }
    cfg.routes = default_routes("coder");
    auto rt = Runtime::create(cfg, {.backend = backend});
    ASSERT_TRUE(rt.has_value()) << rt.error().message;
    runtime = std::move(*rt);
    ws = testing::temp_dir() + "/ws";
    fs::create_directories(ws);
    assistant = std::make_unique<Assistant>(*runtime, ws);
    ASSERT_NE(assistant->workspace(), nullptr);
  }
  std::vector<std::string> prompts_to(const std::string& model) {
    std::vector<std::string> out;
    for (const auto& [m, p] : backend->prompts())
      if (m == model) out.push_back(p);
    return out;
  }
  std::string file(const std::string& rel) { return testing::read_file_text(ws + "/" + rel); }

  std::shared_ptr<ScriptedBackend> backend;
  std::unique_ptr<Runtime> runtime;
  std::unique_ptr<Assistant> assistant;
  std::string ws;
};

TEST_F(Fixture, WritesTheExtractedFileAndChecksIt) {
  make([](const std::string&, const std::string&) { return "Here it is.\n\n" + kGood + "\nDone."; });
  std::string streamed;
  int progress_calls = 0;
  int64_t last_tokens = 0;
  TaskEvents ev;
  ev.on_text = [&](std::string_view t) { streamed += t; };
  ev.on_progress = [&](const GenerationProgress& p) {
    ++progress_calls;
    EXPECT_GE(p.tokens, last_tokens);
    last_tokens = p.tokens;
    EXPECT_EQ(p.model, "coder");
  };
  auto r = assistant->run_task(kTask, {}, ev);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->route.route, "coder");
  EXPECT_FALSE(r->route.by_model);
  EXPECT_EQ(r->model, "coder");
  EXPECT_EQ(streamed, r->answer);
  EXPECT_EQ(r->answer, "Here it is.\n\n" + kGood + "\nDone.");
  EXPECT_GT(progress_calls, 10);
  EXPECT_GT(last_tokens, 50);
  ASSERT_EQ(r->writes.size(), 1u);
  EXPECT_EQ(r->writes[0].action, WriteAction::kCreated);
  EXPECT_EQ(file("calculator.py"), kGood.substr(kGood.find('\n') + 1, kGood.rfind("```") - kGood.find('\n') - 1));
  if (!find_program("python3").empty()) {
    ASSERT_EQ(r->checks.size(), 1u);
    EXPECT_EQ(r->checks[0].status, CheckStatus::kPassed) << r->checks[0].output;
    EXPECT_NE(r->summary().find("check: calculator.py passed python3 -I compile"), std::string::npos) << r->summary();
  }
  EXPECT_NE(r->summary().find("wrote calculator.py"), std::string::npos);
  EXPECT_EQ(r->repairs, 0);
  // The prompt: the route's system prompt, the task, the file to answer with,
  // rendered with the model's chat template.
  auto p = prompts_to("coder");
  ASSERT_EQ(p.size(), 1u);
  EXPECT_NE(p[0].find("<|im_start|>system\nYou are an expert programmer"), std::string::npos) << p[0];
  EXPECT_NE(p[0].find(kTask), std::string::npos);
  EXPECT_NE(p[0].find("```python title=calculator.py"), std::string::npos);
  EXPECT_TRUE(p[0].ends_with("<|im_start|>assistant\n")) << p[0];
}

TEST_F(Fixture, RepairLoopSendsTheErrorBackAndFixes) {
  if (find_program("python3").empty()) GTEST_SKIP() << "python3 not on PATH";
  make([](const std::string&, const std::string& prompt) {
    return prompt.find("does not pass its check") != std::string::npos ? kGood : kBroken;
  });
  std::vector<std::string> notes;
  TaskEvents ev;
  ev.on_note = [&](std::string_view n) { notes.emplace_back(n); };
  auto r = assistant->run_task(kTask, {}, ev);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->repairs, 1);
  ASSERT_EQ(r->checks.size(), 1u);
  EXPECT_EQ(r->checks[0].status, CheckStatus::kPassed);
  EXPECT_NE(file("calculator.py").find("raise ZeroDivisionError"), std::string::npos);
  auto p = prompts_to("coder");
  ASSERT_EQ(p.size(), 2u);
  // The second request carries the broken answer and the checker's error.
  EXPECT_NE(p[1].find("def add(a, b)\n"), std::string::npos);
  EXPECT_NE(p[1].find("SyntaxError"), std::string::npos) << p[1];
  EXPECT_NE(p[1].find("python3 -I compile calculator.py"), std::string::npos) << p[1];
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("repair 1/2"), std::string::npos);
  EXPECT_NE(r->summary().find("passed python3 -I compile after 1 repair"), std::string::npos) << r->summary();
}

TEST_F(Fixture, RepairLoopIsBounded) {
  if (find_program("python3").empty()) GTEST_SKIP() << "python3 not on PATH";
  make([](const std::string&, const std::string&) { return kBroken; });
  TaskOptions o;
  o.max_repairs = 3;
  auto r = assistant->run_task(kTask, o);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->repairs, 3);
  EXPECT_EQ(prompts_to("coder").size(), 4u);
  EXPECT_FALSE(r->checks_passed());
  EXPECT_NE(r->summary().find("FAILED"), std::string::npos);
  // What there is gets written, and the result says it fails.
  EXPECT_EQ(r->writes[0].action, WriteAction::kCreated);
  o.max_repairs = 0;
  o.force = true;
  r = assistant->run_task(kTask, o);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->repairs, 0);
  EXPECT_EQ(prompts_to("coder").size(), 5u);
}

TEST_F(Fixture, RefusesPathsOutsideTheWorkspace) {
  fs::create_directories(testing::temp_dir() + "/outside");
  make([](const std::string&, const std::string&) {
    return std::string("```python title=../evil.py\nx = 1\n```\n```python title=/tmp/codey-abs-evil.py\nx = 2\n```\n"
                       "```python title=sub/../../evil2.py\nx = 3\n```\n```python title=link/evil3.py\nx = 4\n```\n");
  });
  fs::create_directory_symlink(fs::path(ws).parent_path(), fs::path(ws) / "link");
  auto r = assistant->run_task("write some files", {.force = true});
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->writes.size(), 4u);
  for (const auto& w : r->writes) EXPECT_EQ(w.action, WriteAction::kRefused) << w.path;
  EXPECT_FALSE(fs::exists(fs::path(ws).parent_path() / "evil.py"));
  EXPECT_FALSE(fs::exists("/tmp/codey-abs-evil.py"));
  EXPECT_FALSE(fs::exists(fs::path(ws).parent_path() / "evil2.py"));
  EXPECT_FALSE(fs::exists(fs::path(ws).parent_path() / "evil3.py"));
  EXPECT_NE(r->summary().find("not written"), std::string::npos);
}

TEST_F(Fixture, OverwritesOnlyWithForceOrYesAndKeepsBackups) {
  make([](const std::string&, const std::string&) { return kGood; });
  std::ofstream(ws + "/calculator.py") << "# my old calculator\n";
  auto r = assistant->run_task(kTask, {});
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->writes[0].action, WriteAction::kRefused);
  EXPECT_EQ(file("calculator.py"), "# my old calculator\n");
  // The model saw the current contents (it edits rather than rewrites).
  EXPECT_NE(prompts_to("coder")[0].find("Current contents of calculator.py:\n```python\n# my old calculator\n```"),
            std::string::npos);
  TaskOptions yes;
  int asked = 0;
  yes.confirm_overwrite = [&](const std::string& f) {
    EXPECT_EQ(f, "calculator.py");
    ++asked;
    return true;
  };
  r = assistant->run_task(kTask, yes);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(asked, 1);
  EXPECT_EQ(r->writes[0].action, WriteAction::kOverwritten);
  EXPECT_EQ(r->writes[0].backup, "calculator.py.bak");
  EXPECT_EQ(file("calculator.py.bak"), "# my old calculator\n");
  EXPECT_NE(r->summary().find("old version kept as calculator.py.bak"), std::string::npos);
  std::ofstream(ws + "/calculator.py") << "# edited again\n";
  r = assistant->run_task(kTask, {.force = true});
  EXPECT_EQ(r->writes[0].backup, "calculator.py.bak.1");
  EXPECT_EQ(file("calculator.py.bak.1"), "# edited again\n");
}

TEST_F(Fixture, DryRunShowsAndWritesNothing) {
  make([](const std::string&, const std::string&) { return kGood; });
  auto r = assistant->run_task(kTask, {.dry_run = true});
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->writes.size(), 1u);
  EXPECT_EQ(r->writes[0].action, WriteAction::kWouldCreate);
  EXPECT_FALSE(fs::exists(ws + "/calculator.py"));
  EXPECT_NE(r->summary().find("dry run: would create calculator.py"), std::string::npos);
  EXPECT_FALSE(r->checks.empty());  // checked all the same
}

TEST_F(Fixture, PlainCodeAnswerGoesToTheTaskFile) {
  make([](const std::string&, const std::string&) {
    return std::string("def add(a, b):\n    return a + b\n\n\ndef subtract(a, b):\n    return a - b\n");
  });
  auto r = assistant->run_task(kTask, {});
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->writes.size(), 1u);
  EXPECT_EQ(r->writes[0].path, "calculator.py");
  EXPECT_EQ(file("calculator.py"), "def add(a, b):\n    return a + b\n\n\ndef subtract(a, b):\n    return a - b\n");
}

TEST_F(Fixture, NoFileNamedMeansNothingWritten) {
  make([](const std::string&, const std::string&) { return std::string("```python\nprint(1)\n```\n"); });
  auto r = assistant->run_task("Show me how to print in Python", {});
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->writes.empty());
  EXPECT_EQ(r->unwritten.size(), 1u);
  EXPECT_NE(r->summary().find("nothing written"), std::string::npos);
  EXPECT_TRUE(fs::is_empty(ws));
}

TEST_F(Fixture, ForcedRouteModelOverrideAndErrors) {
  make([](const std::string&, const std::string&) { return std::string("ok"); });
  auto r = assistant->run_task("anything", {.route = "algorithm", .model = "helper"});
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->route.route, "algorithm");
  EXPECT_TRUE(r->route.forced);
  EXPECT_EQ(r->model, "helper");
  ASSERT_EQ(prompts_to("helper").size(), 1u);
  EXPECT_NE(prompts_to("helper")[0].find("You solve algorithmic problems"), std::string::npos);
  auto bad = assistant->run_task("anything", {.route = "nope"});
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message.find("coder, algorithm, chat"), std::string::npos);
  bad = assistant->run_task("anything", {.model = "nope"});
  ASSERT_FALSE(bad.has_value());
}

TEST_F(Fixture, RouterModelChoosesTheRoute) {
  make(
      [](const std::string& model, const std::string&) {
        if (model == "router") return std::string(R"({"name": "algorithm", "arguments": {}})");
        return std::string("ok");
      },
      true);
  auto r = assistant->run_task("Create calculator.py", {});  // the keywords would say coder
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->route.route, "algorithm");
  EXPECT_TRUE(r->route.by_model);
  EXPECT_EQ(r->route.router_model, "router");
  EXPECT_GT(r->route.seconds, 0);
  EXPECT_NE(r->route.reason.find("router router called algorithm"), std::string::npos) << r->route.reason;
  EXPECT_NE(r->summary().find("router: "), std::string::npos);
  // ChatML renders no tools: the routes are listed in the router's prompt.
  auto p = prompts_to("router");
  ASSERT_EQ(p.size(), 1u);
  EXPECT_NE(p[0].find("- coder: Write, edit or fix code"), std::string::npos) << p[0];
  EXPECT_NE(p[0].find("Create calculator.py"), std::string::npos);
}

TEST_F(Fixture, RouterCannotProduceAnInvalidRoute) {
  for (const std::string script : {std::string("I think coding"), std::string(R"({"name": "writer", "arguments": {}})"),
                                   std::string("")}) {
    SCOPED_TRACE(script);
    make([&](const std::string& model, const std::string&) { return model == "router" ? script : "ok"; }, true);
    const RouteDecision d = assistant->route("Create calculator.py");
    EXPECT_TRUE(d.by_model) << d.reason;
    EXPECT_TRUE(d.route == "coder" || d.route == "algorithm" || d.route == "chat") << d.route;
    EXPECT_TRUE(parse_tool_choice(ToolCallFormat::kJson, d.raw, std::vector<std::string>{"coder", "algorithm", "chat"}))
        << d.raw;
  }
}

TEST_F(Fixture, CancelStopsTheAnswerAndWritesNothing) {
  make([](const std::string&, const std::string&) { return kGood + kGood + kGood; });
  backend->set_token_delay(Millis(20));
  std::stop_source stop;
  TaskOptions o;
  o.cancel = stop.get_token();
  std::string streamed;
  TaskEvents ev;
  ev.on_text = [&](std::string_view t) {
    streamed += t;
    if (streamed.size() > 20) stop.request_stop();
  };
  auto r = assistant->run_task(kTask, o, ev);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_TRUE(r->cancelled);
  EXPECT_LT(r->answer.size(), kGood.size());
  EXPECT_TRUE(r->writes.empty());
  EXPECT_FALSE(fs::exists(ws + "/calculator.py"));
  EXPECT_NE(r->summary().find("cancelled"), std::string::npos);
}

// ------------------------------------------------- synthesized models --

constexpr const char* kFunctionGemmaLikeTemplate =
    "{{ bos_token }}{% if tools %}<start_of_turn>developer\n{% for t in tools %}<start_function_declaration>"
    "declaration:{{ t.function.name }}{description:<escape>{{ t.function.description }}<escape>}"
    "<end_function_declaration>{% endfor %}<end_of_turn>\n{% endif %}{% for m in messages %}<start_of_turn>"
    "{{ 'model' if m.role == 'assistant' else 'user' }}\n{% if m.tool_calls %}{% for c in m.tool_calls %}"
    "<start_function_call>call:{{ c.function.name }}{}<end_function_call>{% endfor %}{% else %}{{ m.content }}"
    "{% endif %}<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}";

// Random weights, real engine: the router's text is noise, yet every
// decision is a call to a configured route, in each tool-call syntax.
TEST(SynthRouter, RandomWeightsAlwaysGiveAConfiguredRoute) {
  struct Case {
    std::string arch, vocab;
    ToolCallFormat format;
  } cases[] = {
      {"qwen2", "", ToolCallFormat::kJson},  // byte-level vocab, ChatML: routes in the prompt
      {"qwen2", testing::vocab_with_template("Qwen-Qwen2.5-7B-Instruct.jinja"), ToolCallFormat::kHermes},
      {"llama", testing::vocab_with_template("functiongemma-like", kFunctionGemmaLikeTemplate),
       ToolCallFormat::kFunctionGemma},
      {"qwen2", testing::vocab_with_template("Qwen3-Coder.jinja"), ToolCallFormat::kQwen3Coder},
  };
  const std::vector<std::string> tasks = {kTask, "What is a closure?", "Find the shortest path in a grid",
                                          "Fix the bug in parser.c"};
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(tool_call_format_name(c.format)));
    std::set<std::string> seen;
    for (uint64_t seed : {11, 12}) {
      const std::string path = testing::synth_tiny(c.arch, seed, c.vocab);
      RuntimeConfig cfg;
      cfg.memory_budget = 1ull << 30;
      cfg.threads = 1;
      cfg.models.push_back(testing::model_config("router", path));
      cfg.router = "router";
      cfg.routes = default_routes("router");
      cfg.routes.push_back(cfg.routes[0]);
      cfg.routes.back().name = "code-review";
      cfg.routes.back().description = "Review code for bugs and style.";
      auto rt = Runtime::create(cfg);
      ASSERT_TRUE(rt.has_value()) << rt.error().message;
      Assistant a(**rt, testing::temp_dir());
      auto mt = a.model_text("router");
      ASSERT_TRUE(mt.has_value());
      EXPECT_EQ(router_call_format((*mt)->chat_template.value_or("")), c.format);
      for (const auto& t : tasks) {
        const RouteDecision d = a.route(t);
        ASSERT_TRUE(d.by_model) << d.reason;
        EXPECT_TRUE(cfg.find_route(d.route) != nullptr) << d.route;
        EXPECT_GT(d.generated_tokens, 0);
        EXPECT_NE(d.reason.find(std::string(tool_call_format_name(c.format))), std::string::npos) << d.reason;
        seen.insert(d.route);
      }
    }
    std::printf("[ measure  ] %s router: routes chosen %zu of 4\n", std::string(tool_call_format_name(c.format)).c_str(),
                seen.size());
  }
}

// The whole task on a random-weight coder: whatever it says, the mechanism
// holds (bounded tokens and repairs, nothing outside the workspace).
TEST(SynthTask, RandomCoderEndToEnd) {
  const std::string path = testing::synth_tiny("llama", 21);
  RuntimeConfig cfg;
  cfg.memory_budget = 1ull << 30;
  cfg.threads = 1;
  cfg.models.push_back(testing::model_config("coder", path));
  cfg.routes = default_routes("coder");
  for (auto& r : cfg.routes) r.max_tokens = 24;
  auto rt = Runtime::create(cfg);
  ASSERT_TRUE(rt.has_value());
  const std::string base = testing::temp_dir();
  const std::string ws = base + "/ws";
  fs::create_directories(ws);
  Assistant a(**rt, ws);
  std::string streamed;
  TaskEvents ev;
  ev.on_text = [&](std::string_view t) { streamed += t; };
  auto r = a.run_task(kTask, {.max_repairs = 1}, ev);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->route.route, "coder");
  EXPECT_EQ(streamed, r->answer);
  EXPECT_GT(r->generated_tokens, 0);
  EXPECT_LE(r->generated_tokens, 24 * 2);
  EXPECT_LE(r->repairs, 1);
  for (const auto& e : fs::recursive_directory_iterator(base))
    EXPECT_TRUE(e.path().string().starts_with(ws) || e.path() == fs::path(ws)) << e.path();
  EXPECT_FALSE(r->summary().empty());
}

}  // namespace
}  // namespace codey
