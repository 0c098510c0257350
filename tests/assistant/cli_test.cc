// Tests of src/cli/cmd_task.cc and cmd_chat.cc: the built codey binary on a
// synthesized model (quick mode), flags, errors, and chat /commands from a pipe.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "assistant_testing.h"

namespace codey {
namespace {

namespace fs = std::filesystem;

// Runs `input | codey args...`, stdout and stderr together.
testing::CommandResult run_with_input(const std::string& input, const std::vector<std::string>& args) {
  std::string cmd = "printf '%s' " + testing::shell_quote(input) + " | " + testing::shell_quote(CODEY_BINARY);
  for (const auto& arg : args) cmd += " " + testing::shell_quote(arg);
  return testing::run_shell(cmd);
}

bool have_binary() { return fs::exists(CODEY_BINARY); }

TEST(TaskCli, QuickModeDryRunRoutesAndWritesNothing) {
  if (!have_binary()) GTEST_SKIP() << "codey binary not built";
  const std::string model = testing::synth_tiny("llama", 31);
  const std::string ws = testing::temp_dir();
  auto r = testing::run_codey({"task", "Create functions for add and divide in calculator.py", "--model", model,
                               "--workspace", ws, "--dry-run", "--max-repairs", "0", "--quiet"});
  EXPECT_TRUE(r.exit_code == 0 || r.exit_code == 3) << r.err;
  EXPECT_NE(r.err.find("route: coder (keyword fallback"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("model: llama-31-"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("tokens"), std::string::npos) << r.err;
  EXPECT_TRUE(fs::is_empty(ws));
}

TEST(TaskCli, Errors) {
  if (!have_binary()) GTEST_SKIP() << "codey binary not built";
  auto r = testing::run_codey({"task"});
  EXPECT_NE(r.exit_code, 0);
  r = testing::run_codey({"task", "x", "--model", "/nonexistent/model.gguf"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("/nonexistent/model.gguf"), std::string::npos) << r.err;
  const std::string model = testing::synth_tiny("llama", 31);
  r = testing::run_codey({"task", "x", "--model", model, "--route", "nope"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("no route named 'nope'"), std::string::npos) << r.err;
  r = testing::run_codey({"task", "x", "--model", model, "--workspace", "/nonexistent/ws"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("workspace"), std::string::npos) << r.err;
}

TEST(ChatCli, CommandsFromAPipe) {
  if (!have_binary()) GTEST_SKIP() << "codey binary not built";
  const std::string model = testing::synth_tiny("llama", 31);
  auto r = run_with_input("/route algorithm\n/routes\n/model nope\n/bogus\n/quit\nnot reached\n",
                          {"chat", "--model", model, "--workspace", testing::temp_dir()});
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("codey chat · routes: coder, algorithm, chat · router: keywords"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("route: algorithm"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("algorithm * ->"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("no model 'nope'"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("unknown command /bogus"), std::string::npos) << r.out;
  // End of input ends the session too.
  r = run_with_input("", {"chat", "--model", model});
  EXPECT_EQ(r.exit_code, 0) << r.out;
}

}  // namespace
}  // namespace codey
