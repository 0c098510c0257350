// `codey run` as a user runs it with speculative decoding: greedy text byte
// for byte the same with and without --draft / --lookup, the acceptance
// report, and clear refusals (a draft with another vocabulary, both kinds).
#include <fmt/ranges.h>
#include <gtest/gtest.h>

#include "testing/testing.h"

namespace codey {
namespace {
using testing::run_codey;

std::vector<std::string> run_args(std::vector<std::string> extra) {
  std::vector<std::string> a = {"run",    "--model", testing::testdata("models/tiny-llama-Q8_0.gguf"),
                                "--temp", "0",       "--prompt",
                                "def fibonacci(n):\n    if n < 2:\n        return n\n", "-n", "200", "--threads", "1"};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

TEST(RunCli, GreedyTextIsByteIdenticalWithDraftsAndLookup) {
  const auto plain = run_codey(run_args({}));
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  ASSERT_GT(plain.out.size(), 200u);
  EXPECT_EQ(plain.err.find("speculative"), std::string::npos);
  const std::string q4 = testing::testdata("models/tiny-llama-Q4_0.gguf");
  const std::vector<std::vector<std::string>> variants = {
      {"--lookup", "8"},
      {"--lookup", "3"},
      {"--draft", q4},
      {"--draft", q4, "--draft-p-min", "0", "--draft-max", "5"},
      {"--draft", testing::testdata("models/tiny-llama-Q5_K_M.gguf"), "--draft-p-min", "0"},
  };
  for (const auto& v : variants) {
    SCOPED_TRACE(fmt::format("{}", fmt::join(v, " ")));
    const auto r = run_codey(run_args(v));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, plain.out);
    EXPECT_NE(r.err.find("speculative: "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("drafted tokens accepted"), std::string::npos) << r.err;
  }
  // A context that fills up mid-generation: drafts are cut to the room left,
  // rejected ones are rolled back, and the text stops at the same byte.
  const auto full = run_codey(run_args({"--ctx", "48"}));
  ASSERT_EQ(full.exit_code, 0) << full.err;
  EXPECT_NE(full.err.find("context full"), std::string::npos) << full.err;
  ASSERT_LT(full.out.size(), plain.out.size());
  for (const auto& v : variants) {
    SCOPED_TRACE(fmt::format("--ctx 48 {}", fmt::join(v, " ")));
    auto a = v;
    a.insert(a.end(), {"--ctx", "48"});
    const auto r = run_codey(run_args(a));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, full.out);
    EXPECT_NE(r.err.find("context full"), std::string::npos) << r.err;
  }
  // The repeating continuation of a random-weight model: lookup drafts
  // nearly everything.
  const auto l = run_codey(run_args({"--lookup", "8"}));
  EXPECT_NE(l.err.find("n-gram lookup"), std::string::npos) << l.err;
}

TEST(RunCli, RefusesADraftWithAnotherVocabularyAndBothKinds) {
  auto r = run_codey(run_args({"--draft", testing::testdata("models/micro-qwen2-Q8_0.gguf")}));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("cannot draft for"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("do not share a vocabulary: token"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty());
  r = run_codey(run_args({"--draft", testing::testdata("models/tiny-llama-Q4_0.gguf"), "--lookup", "4"}));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("give one of --draft and --lookup"), std::string::npos) << r.err;
  r = run_codey(run_args({"--draft", "/nonexistent/draft.gguf"}));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--draft"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace codey
