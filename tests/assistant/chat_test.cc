// Tests of src/assistant/chat.cc: /command parsing, and a conversation on a
// scripted model (history, /route, /model, /clear, /write, cancellation).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "assistant_testing.h"

namespace codey {
namespace {

namespace fs = std::filesystem;
using K = ChatCommand::Kind;

TEST(ChatCommand, Parsing) {
  EXPECT_EQ(parse_chat_command("").kind, K::kEmpty);
  EXPECT_EQ(parse_chat_command("   ").kind, K::kEmpty);
  auto m = parse_chat_command("  hello there ");
  EXPECT_EQ(m.kind, K::kMessage);
  EXPECT_EQ(m.arg, "hello there");
  auto r = parse_chat_command("/route  algorithm ");
  EXPECT_EQ(r.kind, K::kRoute);
  EXPECT_EQ(r.arg, "algorithm");
  EXPECT_EQ(parse_chat_command("/route").arg, "");
  EXPECT_EQ(parse_chat_command("/model qwen").kind, K::kModel);
  EXPECT_EQ(parse_chat_command("/model qwen").arg, "qwen");
  EXPECT_EQ(parse_chat_command("/clear").kind, K::kClear);
  EXPECT_EQ(parse_chat_command("/help").kind, K::kHelp);
  EXPECT_EQ(parse_chat_command("/?").kind, K::kHelp);
  for (const char* q : {"/quit", "/exit", "/q"}) EXPECT_EQ(parse_chat_command(q).kind, K::kQuit) << q;
  EXPECT_EQ(parse_chat_command("/routes").kind, K::kRoutes);
  EXPECT_EQ(parse_chat_command("/models").kind, K::kModels);
  EXPECT_EQ(parse_chat_command("/write calc.py").arg, "calc.py");
  auto u = parse_chat_command("/frobnicate now");
  EXPECT_EQ(u.kind, K::kUnknown);
  EXPECT_EQ(u.arg, "frobnicate");
  auto esc = parse_chat_command("//usr/bin is a path");
  EXPECT_EQ(esc.kind, K::kMessage);
  EXPECT_EQ(esc.arg, "/usr/bin is a path");
  EXPECT_NE(chat_help().find("/route"), std::string::npos);
  EXPECT_NE(chat_help().find("Ctrl-C"), std::string::npos);
}

struct ChatFixture : ::testing::Test {
  void SetUp() override {
    backend = std::make_shared<testing::ScriptedBackend>([this](const std::string& model, const std::string& prompt) {
      ++turns;
      if (prompt.find("the calculator") != std::string::npos)
        return std::string("```python title=calc.py\ndef add(a, b):\n    return a + b\n```\n");
      return fmt::format("answer {} from {}", turns, model);
    });
    const std::string file = testing::synth_tiny("llama", 1);
    RuntimeConfig cfg;
    cfg.memory_budget = 1ull << 30;
    cfg.threads = 1;
    cfg.models.push_back(testing::model_config("coder", file));
    cfg.models.push_back(testing::model_config("other", file));
    cfg.routes = default_routes("coder");
    auto rt = Runtime::create(cfg, {.backend = backend});
    ASSERT_TRUE(rt.has_value());
    runtime = std::move(*rt);
    ws = testing::temp_dir();
    assistant = std::make_unique<Assistant>(*runtime, ws);
    session = std::make_unique<ChatSession>(*assistant, out);
  }
  std::string take() {
    std::string s = out.str();
    out.str("");
    return s;
  }
  std::string last_prompt() { return backend->prompts().back().second; }

  int turns = 0;
  std::shared_ptr<testing::ScriptedBackend> backend;
  std::unique_ptr<Runtime> runtime;
  std::unique_ptr<Assistant> assistant;
  std::ostringstream out;
  std::unique_ptr<ChatSession> session;
  std::string ws;
};

TEST_F(ChatFixture, ConversationKeepsHistory) {
  std::vector<RouteDecision> routed;
  TaskEvents ev;
  ev.on_route = [&](const RouteDecision& d) { routed.push_back(d); };
  EXPECT_TRUE(session->handle("Explain what a closure is?", {}, ev));
  EXPECT_EQ(take(), "answer 1 from coder\n");
  ASSERT_EQ(routed.size(), 1u);
  EXPECT_EQ(routed[0].route, "chat");
  EXPECT_NE(last_prompt().find("You answer programming questions"), std::string::npos);
  EXPECT_TRUE(session->handle("And in C++?", {}, ev));
  EXPECT_EQ(take(), "answer 2 from coder\n");
  // The second prompt carries the first exchange.
  const std::string p = last_prompt();
  EXPECT_NE(p.find("Explain what a closure is?"), std::string::npos);
  EXPECT_NE(p.find("<|im_start|>assistant\nanswer 1 from coder<|im_end|>"), std::string::npos) << p;
  EXPECT_EQ(session->history().size(), 4u);
  EXPECT_TRUE(session->handle("/clear", {}));
  EXPECT_EQ(session->history().size(), 0u);
  take();
  EXPECT_TRUE(session->handle("fresh start", {}));
  EXPECT_EQ(last_prompt().find("closure"), std::string::npos);
  EXPECT_FALSE(session->handle("/quit", {}));
}

TEST_F(ChatFixture, RouteAndModelCommands) {
  session->handle("/route algorithm", {});
  EXPECT_EQ(take(), "route: algorithm\n");
  EXPECT_EQ(session->route(), "algorithm");
  session->handle("hello", {});
  EXPECT_NE(last_prompt().find("You solve algorithmic problems"), std::string::npos);
  session->handle("/route nope", {});
  EXPECT_NE(take().find("no route 'nope'"), std::string::npos);
  EXPECT_EQ(session->route(), "algorithm");
  session->handle("/model other", {});
  EXPECT_EQ(take(), "model: other\n");
  session->handle("hi", {});
  EXPECT_EQ(take(), "answer 2 from other\n");
  session->handle("/model nope", {});
  EXPECT_NE(take().find("no model 'nope'"), std::string::npos);
  session->handle("/model auto", {});
  session->handle("/route auto", {});
  take();
  session->handle("hi again", {});
  EXPECT_EQ(take(), "answer 3 from coder\n");
  session->handle("/routes", {});
  const std::string routes = take();
  EXPECT_NE(routes.find("coder -> coder"), std::string::npos);
  EXPECT_NE(routes.find("keyword fallback"), std::string::npos);
  session->handle("/models", {});
  EXPECT_NE(take().find("other:"), std::string::npos);
  session->handle("/bogus", {});
  EXPECT_NE(take().find("unknown command /bogus"), std::string::npos);
  session->handle("/help", {});
  EXPECT_EQ(take(), chat_help());
}

TEST_F(ChatFixture, WriteSavesTheLastAnswersCode) {
  session->handle("/write", {});
  EXPECT_EQ(take(), "nothing to write yet\n");
  session->handle("write the calculator", {});
  take();
  session->handle("/write", {});
  const std::string w = take();
  EXPECT_NE(w.find("wrote calc.py"), std::string::npos) << w;
  EXPECT_EQ(testing::read_file_text(ws + "/calc.py"), "def add(a, b):\n    return a + b\n");
  // Again: same contents, nothing to do; changed contents need a yes.
  session->handle("/write", {});
  EXPECT_NE(take().find("unchanged calc.py"), std::string::npos);
  std::ofstream(ws + "/calc.py") << "mine\n";
  session->handle("/write", {});
  EXPECT_NE(take().find("not written calc.py"), std::string::npos);
  session->confirm_overwrite = [](const std::string&) { return true; };
  session->handle("/write", {});
  EXPECT_NE(take().find("old version kept as calc.py.bak"), std::string::npos);
  // An explicit name for an answer that names a different file.
  session->handle("/write ../escape.py", {});
  EXPECT_NE(take().find("not written"), std::string::npos);
  EXPECT_FALSE(fs::exists(fs::path(ws).parent_path() / "escape.py"));
}

TEST_F(ChatFixture, CancelledAnswerStaysInHistory) {
  backend->set_token_delay(Millis(30));
  std::stop_source stop;
  TaskEvents ev;
  std::string got;
  ev.on_text = [&](std::string_view t) {
    got += t;
    if (got.size() >= 3) stop.request_stop();
  };
  EXPECT_TRUE(session->handle("tell me something long", stop.get_token(), ev));
  EXPECT_NE(take().find("(stopped)"), std::string::npos);
  ASSERT_EQ(session->history().size(), 2u);
  EXPECT_LT(session->history()[1]["content"].get<std::string>().size(), std::string("answer 1 from coder").size());
  // The session goes on.
  backend->set_token_delay(Millis(0));
  EXPECT_TRUE(session->handle("next", {}));
  EXPECT_EQ(take(), "answer 2 from coder\n");
}

}  // namespace
}  // namespace codey
