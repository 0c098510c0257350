// `codey bench` as a user runs it: the JSON report's timings per repetition,
// the CPU time beside them (what a run on a shared machine was given) and the
// int8 peak of the kernel table in use; `--lookup N / --draft FILE` repeat
// each generation test with speculative decoding, its acceptance, tokens per
// target pass and t/s beside plain decoding; clear refusals.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "codey/kernels.h"
#include "testing/testing.h"

namespace codey {
namespace {
using testing::run_codey;

std::vector<std::string> bench_args(std::vector<std::string> extra) {
  std::vector<std::string> a = {"bench", "-m", testing::testdata("models/tiny-llama-Q8_0.gguf"), "-p", "0", "-n", "48",
                                "-t",    "1",  "-r", "1", "--no-limits"};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

TEST(BenchCli, SpeculativeRunsBesidePlainGeneration) {
  auto r = run_codey(bench_args({"--lookup", "8", "--json"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j.size(), 2u) << r.out;
  EXPECT_FALSE(j[0].contains("spec"));
  EXPECT_EQ(j[1]["spec"], "lookup 8");
  EXPECT_EQ(j[1]["n_gen"], 48);
  EXPECT_GT(j[1]["draft_tokens"].get<int64_t>(), 0);
  EXPECT_LE(j[1]["draft_accepted"].get<int64_t>(), j[1]["draft_tokens"].get<int64_t>());
  EXPECT_EQ(j[1]["target_passes"].get<int64_t>() + j[1]["draft_accepted"].get<int64_t>(), 48);
  EXPECT_GT(j[1]["tokens_per_pass"].get<double>(), 1.0);

  r = run_codey(bench_args({"--draft", testing::testdata("models/tiny-llama-Q4_0.gguf")}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("| tg48 +draft llama"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("drafted tokens accepted"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tokens per target pass"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("t/s plain"), std::string::npos) << r.out;

  r = run_codey(bench_args({"--draft", testing::testdata("models/micro-qwen2-Q8_0.gguf")}));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("do not share a vocabulary"), std::string::npos) << r.err;
  r = run_codey(bench_args({"--draft", testing::testdata("models/tiny-llama-Q4_0.gguf"), "--lookup", "4"}));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("give one of --draft and --lookup"), std::string::npos) << r.err;
}

// --isa avx2 (also on a CPU with AVX-512) is compared with the AVX2 peak.
TEST(BenchCli, JsonHasWallAndCpuTimePerRepetitionAndThePeakOfTheTableInUse) {
  if (!kernels::kernel_table("avx2")) GTEST_SKIP() << "this CPU has no AVX2";
  for (std::string isa : {"avx2"}) {
    auto r = run_codey({"bench", "-m", testing::testdata("models/tiny-llama-Q8_0.gguf"), "-p", "16", "-n", "4", "-r",
                        "2", "-t", "1", "--isa", isa, "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    ASSERT_EQ(j.size(), 2u);
    for (const auto& rec : j) {
      EXPECT_EQ(rec["isa"], isa);
      ASSERT_EQ(rec["samples_ns"].size(), 2u);
      ASSERT_EQ(rec["samples_cpu_ns"].size(), 2u);
      for (const auto& c : rec["samples_cpu_ns"]) EXPECT_GT(c.get<double>(), 0.0);
      EXPECT_GT(rec["int8_peak_gops"].get<double>(), 0.0);
    }
    EXPECT_EQ(j[0]["n_prompt"], 16);
    EXPECT_GT(j[0]["limit_share"].get<double>(), 0.0);
  }
}

}  // namespace
}  // namespace codey
