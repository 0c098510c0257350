// Tests of src/assistant/routes.cc: the keyword fallback router, built-in
// routes and prompts, and the assistant's configuration (codey.yaml routes,
// quick mode).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "codey/assistant.h"
#include "testing/testing.h"

namespace codey {
namespace {

namespace fs = std::filesystem;

TEST(FallbackRoute, DefaultRoutes) {
  const auto routes = default_routes("m");
  struct Case {
    const char* task;
    const char* route;
  } cases[] = {
      {"Create functions for add, subtract, multiply, and divide in calculator.py", "coder"},
      {"Fix the off-by-one bug in parser.c", "coder"},
      {"Write a script that renames every .txt file in a folder", "coder"},
      {"Find the longest palindromic substring in O(n^2) time", "algorithm"},
      {"Implement Dijkstra's shortest path algorithm", "algorithm"},
      {"What is the difference between a list and a tuple in Python?", "chat"},
      {"Explain how Python decorators work", "chat"},
      {"why does my loop never end?", "chat"},
  };
  for (const auto& c : cases) {
    const auto d = fallback_route(c.task, routes);
    EXPECT_EQ(d.route, c.route) << c.task << " -> " << d.reason;
    EXPECT_FALSE(d.by_model);
    EXPECT_NE(d.reason.find("keyword fallback"), std::string::npos);
    // Deterministic.
    EXPECT_EQ(fallback_route(c.task, routes).route, d.route);
  }
  const auto d = fallback_route(cases[0].task, routes);
  EXPECT_NE(d.reason.find("calculator.py"), std::string::npos) << d.reason;
}

TEST(FallbackRoute, UsesRouteDescriptionsAndTiesGoFirst) {
  std::vector<RouteConfig> routes(2);
  routes[0].name = "frontend";
  routes[0].description = "React components, CSS styling and browser layout";
  routes[0].model = "m";
  routes[1].name = "database";
  routes[1].description = "SQL queries, schema migrations, indexes";
  routes[1].model = "m";
  EXPECT_EQ(fallback_route("Add an index to speed up these SQL queries", routes).route, "database");
  EXPECT_EQ(fallback_route("Style the navbar component with CSS", routes).route, "frontend");
  const auto none = fallback_route("hello", routes);
  EXPECT_EQ(none.route, "frontend");
  EXPECT_NE(none.reason.find("nothing matched"), std::string::npos);
}

TEST(RoutePrompts, BuiltInAndConfigured) {
  auto routes = default_routes("m");
  for (const auto& r : routes) EXPECT_FALSE(route_system_prompt(r).empty());
  EXPECT_NE(route_system_prompt(routes[0]).find("title="), std::string::npos);
  routes[0].system = "Only Python.";
  EXPECT_EQ(route_system_prompt(routes[0]), "Only Python.");
  RouteConfig other;
  other.name = "docs";
  other.description = "Write docstrings.";
  EXPECT_NE(route_system_prompt(other).find("Write docstrings."), std::string::npos);
}

TEST(AssistantConfig, QuickModeAndErrors) {
  const auto dir = testing::temp_dir();
  const auto model = dir + "/qwen2.5-coder-7b-instruct-q4_k_m.gguf";
  std::ofstream(model) << "x";
  auto c = assistant_config({.model_file = model});
  ASSERT_TRUE(c.has_value()) << c.error().message;
  ASSERT_EQ(c->models.size(), 1u);
  EXPECT_EQ(c->models[0].name, "qwen2.5-coder-7b-instruct-q4_k_m");
  EXPECT_TRUE(c->router.empty());
  ASSERT_EQ(c->routes.size(), 3u);
  for (const auto& r : c->routes) EXPECT_EQ(r.model, "qwen2.5-coder-7b-instruct-q4_k_m");
  EXPECT_GT(c->threads, 0);
  EXPECT_GT(c->memory_budget, 0u);

  const auto router = dir + "/functiongemma-270m-it-Q8_0.gguf";
  std::ofstream(router) << "x";
  c = assistant_config({.model_file = model, .router_file = router});
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->router, "functiongemma-270m-it-Q8_0");
  ASSERT_EQ(c->models.size(), 2u);
  for (const auto& r : c->routes) EXPECT_NE(r.model, c->router);

  auto missing = assistant_config({.model_file = dir + "/nope.gguf"});
  ASSERT_FALSE(missing.has_value());
  EXPECT_NE(missing.error().message.find("nope.gguf"), std::string::npos);
}

TEST(AssistantConfig, QuickModeSpeculativeDecoding) {
  const auto dir = testing::temp_dir();
  const auto model = dir + "/qwen2.5-coder-7b-q4_k_m.gguf", draft = dir + "/qwen2.5-coder-0.5b-q8_0.gguf";
  std::ofstream(model) << "x";
  std::ofstream(draft) << "x";
  auto c = assistant_config({.model_file = model, .draft_file = draft});
  ASSERT_TRUE(c.has_value()) << c.error().message;
  ASSERT_EQ(c->models.size(), 2u);
  const ModelConfig* m = c->find_model("qwen2.5-coder-7b-q4_k_m");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->draft, "qwen2.5-coder-0.5b-q8_0");
  ASSERT_NE(m->draft_model, nullptr);
  EXPECT_EQ(m->draft_model->path, c->find_model("qwen2.5-coder-0.5b-q8_0")->path);
  for (const auto& r : c->routes) EXPECT_EQ(r.model, m->name);  // the draft serves no route

  c = assistant_config({.model_file = model, .lookup = 8});
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->models[0].lookup, 8);
  EXPECT_EQ(c->models[0].draft_model, nullptr);

  auto e = assistant_config({.model_file = model, .draft_file = draft, .lookup = 8});
  ASSERT_FALSE(e.has_value());
  EXPECT_NE(e.error().message.find("one of --draft and --lookup"), std::string::npos);
  e = assistant_config({.config_path = dir + "/none.yaml", .draft_file = draft});
  ASSERT_FALSE(e.has_value());
  e = assistant_config({.draft_file = draft});
  ASSERT_FALSE(e.has_value());
  EXPECT_NE(e.error().message.find("--draft and --lookup go with --model FILE"), std::string::npos) << e.error().message;
  e = assistant_config({.model_file = model, .draft_file = dir + "/missing.gguf"});
  ASSERT_FALSE(e.has_value());
  EXPECT_NE(e.error().message.find("missing.gguf"), std::string::npos);
}

TEST(AssistantConfig, RoutesFromTheFileAndModelOverride) {
  const auto dir = testing::temp_dir();
  std::ofstream(dir + "/coder.gguf") << "x";
  std::ofstream(dir + "/router.gguf") << "x";
  std::ofstream(dir + "/codey.yaml") << R"(models:
  coder: coder.gguf
  router: router.gguf
router: router
routes:
  code:
    model: coder
    description: write code
    temperature: 0.2
  talk:
    model: coder
    description: answer questions
    system: Be brief.
)";
  auto c = assistant_config({.config_path = dir + "/codey.yaml"});
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->router, "router");
  ASSERT_EQ(c->routes.size(), 2u);
  EXPECT_EQ(c->routes[0].name, "code");
  EXPECT_EQ(c->routes[0].sampling.temperature, std::optional<float>(0.2f));
  EXPECT_EQ(c->routes[1].system, "Be brief.");
  // --model with a config: that file serves every route, the router stays.
  std::ofstream(dir + "/other.gguf") << "x";
  c = assistant_config({.config_path = dir + "/codey.yaml", .model_file = dir + "/other.gguf"});
  ASSERT_TRUE(c.has_value());
  for (const auto& r : c->routes) EXPECT_EQ(r.model, "other");
  EXPECT_EQ(c->router, "router");
  // A config with models but no routes gets the built-in ones on a non-router model.
  std::ofstream(dir + "/bare.yaml") << "models:\n  router: router.gguf\n  coder: coder.gguf\nrouter: router\n";
  c = assistant_config({.config_path = dir + "/bare.yaml"});
  ASSERT_TRUE(c.has_value()) << c.error().message;
  ASSERT_EQ(c->routes.size(), 3u);
  EXPECT_EQ(c->routes[0].model, "coder");
}

TEST(AssistantConfig, NoModelAtAllSaysWhatToPass) {
  const auto cwd = fs::current_path();
  fs::current_path(testing::temp_dir());
  auto c = assistant_config({});
  fs::current_path(cwd);
  ASSERT_FALSE(c.has_value());
  EXPECT_NE(c.error().message.find("--model"), std::string::npos);
}

}  // namespace
}  // namespace codey
