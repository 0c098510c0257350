// Tests of src/runtime/config.cc: codey.yaml / JSON parsing, defaults,
// durations, and errors that name the key and the line.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "codey/runtime.h"
#include "testing/testing.h"

namespace codey {
namespace {

Result<RuntimeConfig> parse(std::string_view text) { return parse_config(text, "test.yaml", "/models"); }

// The error message of a parse that must fail.
std::string error_of(std::string_view text) {
  auto r = parse(text);
  EXPECT_FALSE(r.has_value()) << "parsed:\n" << text;
  return r ? std::string() : r.error().message;
}

TEST(Config, ParsesTheIssueSketch) {
  auto c = parse(R"(memory_budget: 8GiB
threads: auto
models:
  router:    { path: models/functiongemma-270m.gguf, pinned: true, ctx: 8192 }
  coder:     { path: models/qwen2.5-coder-7b-instruct-q4_k_m.gguf, ctx: auto,
               max_tokens: 1024, temperature: 0.3, top_p: 0.8, keep_alive: 5m }
  algorithm: { path: /abs/deepseek-coder-1.3b-instruct-q4_k_m.gguf, ctx: 16384 }
)");
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->memory_budget, 8ull << 30);
  EXPECT_FALSE(c->memory_budget_auto);
  EXPECT_EQ(c->threads, usable_cores());
  ASSERT_EQ(c->models.size(), 3u);
  const ModelConfig& router = c->models[0];
  EXPECT_EQ(router.name, "router");
  EXPECT_EQ(router.path, "/models/models/functiongemma-270m.gguf");
  EXPECT_TRUE(router.pinned);
  EXPECT_FALSE(router.ctx_auto);
  EXPECT_EQ(router.ctx, 8192);
  EXPECT_EQ(router.line, 4);
  const ModelConfig* coder = c->find_model("coder");
  ASSERT_NE(coder, nullptr);
  EXPECT_TRUE(coder->ctx_auto);
  EXPECT_EQ(coder->max_tokens, 1024);
  EXPECT_FLOAT_EQ(*coder->sampling.temperature, 0.3f);
  EXPECT_FLOAT_EQ(*coder->sampling.top_p, 0.8f);
  EXPECT_FALSE(coder->sampling.top_k.has_value());
  EXPECT_EQ(coder->keep_alive, Millis(5 * 60 * 1000));
  EXPECT_FALSE(coder->pinned);
  EXPECT_EQ(c->find_model("algorithm")->path, "/abs/deepseek-coder-1.3b-instruct-q4_k_m.gguf");
  EXPECT_EQ(c->find_model("nope"), nullptr);
}

TEST(Config, AllModelKeysDefaultsRoutesAndServer) {
  auto c = parse(R"(
memory_budget: 512MiB
threads: 3
defaults:
  keep_alive: -1
  deadline: 90s
  queue: 4
models:
  a:
    path: a.gguf
    ctx: auto
    ctx_max: 4096
    kv_type: q8_0
    batch: 256
    prompt_chunk: 32
    threads: 2
    parallel: 4
    mmap: false
    mlock: yes
    repack: false
    temperature: 0
    top_k: 20
    top_p: 0.9
    min_p: 0.1
    repeat_penalty: 1.1
    repeat_last_n: 32
    presence_penalty: 0.5
    frequency_penalty: 0.25
    seed: 7
    stop: ["</s>", "\n\n"]
    keep_alive: 0
    pinned: false
    max_tokens: 100
    deadline: 1h30m
    queue: 2
  b: b.gguf
router: a
routes:
  coder: { model: b, description: writes and edits code, system: "You write code.", temperature: 0.2, max_tokens: 512, stop: "```\n" }
server: { host: 0.0.0.0, port: 8080, api_key: "env:CODEY_KEY", max_body: 1MiB, shutdown_grace: 5s }
)");
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->memory_budget, 512ull << 20);
  EXPECT_EQ(c->threads, 3);
  const ModelConfig& a = c->models[0];
  EXPECT_TRUE(a.ctx_auto);
  EXPECT_EQ(a.ctx_max, 4096);
  EXPECT_EQ(a.kv_type, TensorType::kQ8_0);
  EXPECT_EQ(a.batch, 256);
  EXPECT_EQ(a.prompt_chunk, 32);
  EXPECT_EQ(a.threads, 2);
  EXPECT_EQ(a.parallel, 4);
  EXPECT_FALSE(a.mmap);
  EXPECT_TRUE(a.mlock);
  EXPECT_FALSE(a.repack);
  EXPECT_TRUE(c->models[1].repack);  // the default
  EXPECT_FLOAT_EQ(*a.sampling.temperature, 0.0f);
  EXPECT_EQ(*a.sampling.top_k, 20);
  EXPECT_FLOAT_EQ(*a.sampling.min_p, 0.1f);
  EXPECT_FLOAT_EQ(*a.sampling.repeat_penalty, 1.1f);
  EXPECT_EQ(*a.sampling.repeat_last_n, 32);
  EXPECT_FLOAT_EQ(*a.sampling.presence_penalty, 0.5f);
  EXPECT_FLOAT_EQ(*a.sampling.frequency_penalty, 0.25f);
  EXPECT_EQ(*a.sampling.seed, 7u);
  EXPECT_EQ(a.stop, (std::vector<std::string>{"</s>", "\n\n"}));
  EXPECT_EQ(a.keep_alive, Millis(0));
  EXPECT_EQ(a.max_tokens, 100);
  EXPECT_EQ(a.deadline, Millis(5400 * 1000));
  EXPECT_EQ(a.queue, 2);
  // b: only a path; the defaults apply.
  const ModelConfig& b = c->models[1];
  EXPECT_EQ(b.path, "/models/b.gguf");
  EXPECT_TRUE(b.ctx_auto);
  EXPECT_LT(b.keep_alive.count(), 0);
  EXPECT_EQ(b.deadline, Millis(90 * 1000));
  EXPECT_EQ(b.queue, 4);
  EXPECT_EQ(b.parallel, 1);
  EXPECT_EQ(c->router, "a");
  ASSERT_EQ(c->routes.size(), 1u);
  EXPECT_EQ(c->routes[0].model, "b");
  EXPECT_EQ(c->routes[0].description, "writes and edits code");
  EXPECT_EQ(c->routes[0].system, "You write code.");
  EXPECT_EQ(c->routes[0].max_tokens, 512);
  EXPECT_EQ(c->routes[0].stop, std::vector<std::string>{"```\n"});
  EXPECT_EQ(c->server.host, "0.0.0.0");
  EXPECT_EQ(c->server.port, 8080);
  EXPECT_EQ(c->server.api_key, "env:CODEY_KEY");
  EXPECT_EQ(c->server.max_body, 1ull << 20);
  EXPECT_EQ(c->server.shutdown_grace, Millis(5000));
}

TEST(Config, JsonIsAccepted) {
  auto c = parse(R"({
  "memory_budget": "2GiB",
  "threads": 2,
  "models": {
    "coder": {"path": "c.gguf", "ctx": 4096, "pinned": true, "stop": ["<|im_end|>"]}
  }
})");
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->memory_budget, 2ull << 30);
  EXPECT_EQ(c->models[0].ctx, 4096);
  EXPECT_TRUE(c->models[0].pinned);
  auto bad = parse("{\n  \"models\": {\n    \"coder\": {\"path\": \"c.gguf\", \"ctxx\": 4096}\n  }\n}");
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message.find("test.yaml:3"), std::string::npos) << bad.error().message;
  EXPECT_NE(bad.error().message.find("models.coder.ctxx"), std::string::npos) << bad.error().message;
}

TEST(Config, AutoBudgetIsBelowWhatIsAvailable) {
  auto c = parse("memory_budget: auto\nmodels: {}\n");
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_TRUE(c->memory_budget_auto);
  EXPECT_GT(c->memory_budget, 0u);
  EXPECT_LT(c->memory_budget, usable_memory_bytes());
}

TEST(Config, UnknownKeysNameTheKeyAndLine) {
  std::string e = error_of("memory_budget: 1GiB\nmodels:\n  coder:\n    path: x.gguf\n    temprature: 0.3\n");
  EXPECT_NE(e.find("test.yaml:5"), std::string::npos) << e;
  EXPECT_NE(e.find("models.coder.temprature"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown key"), std::string::npos) << e;
  EXPECT_NE(e.find("temperature"), std::string::npos) << e;  // the known keys are listed

  e = error_of("memory_budget: 1GiB\nmodel:\n  coder: x.gguf\n");
  EXPECT_NE(e.find("test.yaml:2"), std::string::npos) << e;
  EXPECT_NE(e.find("model: unknown key"), std::string::npos) << e;

  e = error_of("models: {a: a.gguf}\nserver:\n  prot: 80\n");
  EXPECT_NE(e.find("test.yaml:3: server.prot"), std::string::npos) << e;

  e = error_of("models:\n  a: {path: a.gguf}\nroutes:\n  chat: {model: a, temp: 1}\n");
  EXPECT_NE(e.find("test.yaml:4: routes.chat.temp"), std::string::npos) << e;
}

TEST(Config, BadValuesNameTheKeyLineAndWhatWasExpected) {
  struct Case {
    const char* text;
    const char* where;
    const char* what;
  };
  const Case cases[] = {
      {"memory_budget: lots\n", "test.yaml:1: memory_budget", "'lots'"},
      {"threads: 0\n", "test.yaml:1: threads", "thread count"},
      {"models:\n  a:\n    path: a.gguf\n    ctx: big\n", "test.yaml:4: models.a.ctx", "'auto' or a number"},
      {"models:\n  a:\n    path: a.gguf\n    ctx: 8\n", "test.yaml:4: models.a.ctx", "[16,"},
      {"models:\n  a:\n    path: a.gguf\n    kv_type: q4_0\n", "test.yaml:4: models.a.kv_type", "f16, bf16, q8_0 or f32"},
      {"models:\n  a:\n    path: a.gguf\n    temperature: hot\n", "test.yaml:4: models.a.temperature", "'hot'"},
      {"models:\n  a:\n    path: a.gguf\n    top_p: 1.5\n", "test.yaml:4: models.a.top_p", "[0, 1]"},
      {"models:\n  a:\n    path: a.gguf\n    keep_alive: 5 minutes\n", "test.yaml:4: models.a.keep_alive", "duration"},
      {"models:\n  a:\n    path: a.gguf\n    deadline: -1\n", "test.yaml:4: models.a.deadline", ">= 0"},
      {"models:\n  a:\n    path: a.gguf\n    pinned: maybe\n", "test.yaml:4: models.a.pinned", "true or false"},
      {"models:\n  a:\n    path: a.gguf\n    parallel: 0\n", "test.yaml:4: models.a.parallel", "[1, 256]"},
      {"models:\n  a:\n    path: a.gguf\n    stop: [\"\"]\n", "test.yaml:4: models.a.stop", "non-empty"},
      {"models:\n  a:\n    ctx: 512\n", "test.yaml:2: models.a", "missing 'path'"},
      {"models:\n  a:\n    path: a.gguf\n    ctx: 512\n    ctx_max: 1024\n", "test.yaml:2: models.a", "only with ctx: auto"},
      {"models: [a, b]\n", "test.yaml:1: models", "map of model name"},
      {"models:\n  a: a.gguf\nrouter: b\n", "test.yaml:3: router", "no model named 'b'"},
      {"models:\n  a: a.gguf\nroutes:\n  chat: {description: x}\n", "test.yaml:4: routes.chat", "missing 'model'"},
      {"models:\n  a: a.gguf\nroutes:\n  chat: {model: z}\n", "test.yaml:4: routes.chat.model", "no model named 'z'"},
      {"models:\n  a: a.gguf\n  a: b.gguf\n", "test.yaml:", "twice"},
      {"server: {port: 70000}\n", "test.yaml:1: server.port", "[0, 65535]"},
      {"models:\n  a: {path: a.gguf\n", "test.yaml:", "not valid YAML"},
  };
  for (const auto& c : cases) {
    const std::string e = error_of(c.text);
    EXPECT_NE(e.find(c.where), std::string::npos) << c.text << " -> " << e;
    EXPECT_NE(e.find(c.what), std::string::npos) << c.text << " -> " << e;
  }
  EXPECT_NE(error_of("").find("empty"), std::string::npos);
  EXPECT_NE(error_of("- a\n- b\n").find("expected a map"), std::string::npos);
}

TEST(Config, SpeculativeDecodingKeys) {
  auto c = parse(
      "models:\n"
      "  coder:\n"
      "    path: c.gguf\n"
      "    draft: small\n"
      "    draft_max: 6\n"
      "    draft_p_min: 0.5\n"
      "  small: s.gguf\n"
      "  fast:\n"
      "    path: f.gguf\n"
      "    lookup: 10\n");
  ASSERT_TRUE(c.has_value()) << c.error().message;
  const ModelConfig* coder = c->find_model("coder");
  ASSERT_NE(coder, nullptr);
  EXPECT_EQ(coder->draft, "small");
  EXPECT_EQ(coder->draft_max, 6);
  EXPECT_FLOAT_EQ(coder->draft_p_min, 0.5f);
  ASSERT_NE(coder->draft_model, nullptr);
  EXPECT_EQ(coder->draft_model->path, "/models/s.gguf");
  EXPECT_EQ(coder->draft_model->name, "small");
  EXPECT_EQ(c->find_model("fast")->lookup, 10);
  EXPECT_EQ(c->find_model("fast")->draft_model, nullptr);
  EXPECT_EQ(c->find_model("small")->draft_model, nullptr);
  // lookup and the draft settings may be defaults; a draft model may not.
  c = parse("defaults: {lookup: 4, draft_max: 3}\nmodels:\n  a: a.gguf\n");
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->models[0].lookup, 4);
  EXPECT_EQ(c->models[0].draft_max, 3);
  EXPECT_NE(error_of("defaults: {draft: a}\nmodels:\n  a: a.gguf\n").find("defaults.draft: unknown key"),
            std::string::npos);

  struct Case {
    const char* text;
    const char* where;
    const char* what;
  };
  const Case cases[] = {
      {"models:\n  a:\n    path: a.gguf\n    draft: nope\n", "test.yaml:2: models.a.draft", "no model named 'nope'"},
      {"models:\n  a:\n    path: a.gguf\n    draft: a\n", "test.yaml:2: models.a.draft", "cannot draft for itself"},
      {"models:\n  b: b.gguf\n  a:\n    path: a.gguf\n    draft: b\n    lookup: 4\n", "test.yaml:3: models.a.draft",
       "one of draft and lookup"},
      {"models:\n  a:\n    path: a.gguf\n    draft_max: 0\n", "test.yaml:4: models.a.draft_max", "[1, 64]"},
      {"models:\n  a:\n    path: a.gguf\n    lookup: 100\n", "test.yaml:4: models.a.lookup", "[0, 64]"},
      {"models:\n  a:\n    path: a.gguf\n    draft_p_min: 2\n", "test.yaml:4: models.a.draft_p_min", "[0, 1]"},
      {"models:\n  a:\n    path: a.gguf\n    draft: [x]\n", "test.yaml:4: models.a.draft", "a string"},
  };
  for (const auto& cs : cases) {
    const std::string e = error_of(cs.text);
    EXPECT_NE(e.find(cs.where), std::string::npos) << cs.text << " -> " << e;
    EXPECT_NE(e.find(cs.what), std::string::npos) << cs.text << " -> " << e;
  }
}

TEST(Config, Durations) {
  EXPECT_EQ(*parse_duration("5m"), Millis(300000));
  EXPECT_EQ(*parse_duration("30s"), Millis(30000));
  EXPECT_EQ(*parse_duration("1h30m"), Millis(5400000));
  EXPECT_EQ(*parse_duration("250ms"), Millis(250));
  EXPECT_EQ(*parse_duration("1.5s"), Millis(1500));
  EXPECT_EQ(*parse_duration("300"), Millis(300000));  // bare numbers are seconds (Ollama's keep_alive)
  EXPECT_EQ(*parse_duration("0"), Millis(0));
  EXPECT_EQ(*parse_duration("-1"), Millis(-1000));
  EXPECT_EQ(*parse_duration("-5m"), Millis(-300000));
  for (const char* bad : {"", "m", "5 m", "5x", "1h5", "--1", "5m-", "1e3"})
    EXPECT_FALSE(parse_duration(bad).has_value()) << bad;
  EXPECT_EQ(format_duration(Millis(5400000)), "1h30m");
  EXPECT_EQ(format_duration(Millis(250)), "250ms");
  EXPECT_EQ(format_duration(Millis(-1)), "forever");
  EXPECT_EQ(format_duration(Millis(0)), "0s");
}

TEST(Config, LoadConfigResolvesPathsAgainstTheFilesDirectory) {
  const std::string dir = testing::temp_dir();
  {
    std::ofstream out(dir + "/codey.yaml");
    out << "memory_budget: 1GiB\nmodels:\n  a: sub/a.gguf\n  b: {path: ../b.gguf}\n";
  }
  auto c = load_config(dir + "/codey.yaml");
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->models[0].path, dir + "/sub/a.gguf");
  EXPECT_EQ(c->models[1].path, std::filesystem::path(dir).parent_path().string() + "/b.gguf");
  auto missing = load_config(dir + "/nope.yaml");
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
}

// path: takes a model reference; it resolves through the model store now
// when it is on disk, and again when used (a model pulled later is found).
TEST(Config, PathTakesAModelReference) {
  const std::string home = testing::temp_dir();
  const std::string models = home + "/models";
  ::setenv("CODEY_MODELS", models.c_str(), 1);
  ::setenv("HF_HUB_CACHE", (home + "/hf").c_str(), 1);
  ::setenv("OLLAMA_MODELS", (home + "/ollama").c_str(), 1);
  auto c = parse("models:\n  a: hf.co/o/r:Q4_K_M\n  b: {path: ollama:qwen2.5-coder:7b}\n  c: {path: sub/x.gguf}\n");
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->models[0].ref, "hf.co/o/r:Q4_K_M");
  EXPECT_EQ(c->models[0].path, "hf.co/o/r:Q4_K_M") << "not pulled yet";
  EXPECT_EQ(c->models[1].ref, "ollama:qwen2.5-coder:7b");
  EXPECT_EQ(c->models[2].ref, "");
  EXPECT_EQ(c->models[2].path, "/models/sub/x.gguf");
  auto missing = model_file(c->models[0]);
  ASSERT_FALSE(missing.has_value());
  EXPECT_NE(missing.error().message.find("is not pulled: run `codey pull hf.co/o/r:Q4_K_M`"), std::string::npos)
      << missing.error().message;
  // Pulled after the config was read: found when used.
  std::filesystem::create_directories(models + "/hf.co/o/r");
  std::ofstream(models + "/hf.co/o/r/r-Q4_K_M.gguf") << "GGUF";
  auto found = model_file(c->models[0]);
  ASSERT_TRUE(found.has_value()) << found.error().message;
  EXPECT_EQ(*found, models + "/hf.co/o/r/r-Q4_K_M.gguf");
  c = parse("models:\n  a: hf.co/o/r:Q4_K_M\n");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->models[0].path, models + "/hf.co/o/r/r-Q4_K_M.gguf") << "resolved when read";
  auto bad = parse("models:\n  a:\n    path: hf.co/o/..:Q4\n");
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message.find("test.yaml:3"), std::string::npos) << bad.error().message;
  EXPECT_NE(bad.error().message.find("not a valid repository name"), std::string::npos) << bad.error().message;
  ::unsetenv("CODEY_MODELS");
  ::unsetenv("HF_HUB_CACHE");
  ::unsetenv("OLLAMA_MODELS");
}

TEST(Config, TheShippedExampleParses) {
  auto c = load_config(std::string(CODEY_SOURCE_DIR) + "/examples/codey.yaml");
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_GE(c->models.size(), 3u);
  EXPECT_FALSE(c->routes.empty());
}

}  // namespace
}  // namespace codey
