// `codey inspect` as a user runs it: every shared fixture, JSON output, and
// clean failures (message, exit 1, no crash) on truncated and bit-flipped copies.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>

#include "testing/testing.h"

namespace codey {
namespace {
namespace fs = std::filesystem;
using testing::run_codey;

std::vector<std::string> fixture_files() {
  std::vector<std::string> files;
  for (const char* dir : {"models", "vocab", "next/models"})
    for (const auto& e : fs::directory_iterator(testing::testdata(dir)))
      if (e.path().extension() == ".gguf") files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  return files;
}

TEST(InspectCli, EveryFixtureText) {
  for (const auto& f : fixture_files()) {
    auto r = run_codey({"inspect", f});
    EXPECT_EQ(r.exit_code, 0) << f << ": " << r.err;
    EXPECT_NE(r.out.find("architecture"), std::string::npos) << f;
    EXPECT_NE(r.out.find("KV cache"), std::string::npos) << f;
  }
}

TEST(InspectCli, JsonHasHyperParametersAndMemory) {
  auto r = run_codey({"inspect", testing::testdata("models/tiny-llama-Q4_K_M.gguf"), "--json", "--ctx", "1024"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["architecture"], "llama");
  EXPECT_EQ(j["hparams"]["n_layer"], 4);
  EXPECT_EQ(j["hparams"]["n_embd"], 256);
  EXPECT_EQ(j["hparams"]["n_head"], 8);
  EXPECT_EQ(j["hparams"]["n_head_kv"], 4);
  EXPECT_EQ(j["hparams"]["head_dim"], 32);
  EXPECT_EQ(j["hparams"]["n_vocab"], 32256);
  EXPECT_EQ(j["tokenizer"]["pre"], "deepseek-coder");
  // KV: 4 layers x 1024 positions x 4 kv heads x 32 dims x 2 (K and V) x 2 bytes.
  EXPECT_EQ(j["memory"]["kv_cache"], 4 * 1024 * 4 * 32 * 2 * 2);
  EXPECT_EQ(j["tensor_types"]["q4_K"], 24);
  EXPECT_GT(j["n_params"].get<int64_t>(), 11000000);
  auto q8 = run_codey({"inspect", testing::testdata("models/tiny-llama-Q4_K_M.gguf"), "--json", "--ctx", "1024",
                       "--kv-type", "q8_0"});
  ASSERT_EQ(q8.exit_code, 0) << q8.err;
  // q8_0 stores 32 values in 34 bytes: 4 kv heads x 32 dims = 4 blocks per row.
  EXPECT_EQ(nlohmann::json::parse(q8.out)["memory"]["kv_cache"], 4 * 1024 * (4 * 32 / 32 * 34) * 2);
  // Tied embeddings (no output.weight; token_embd is Q6_K, 210 bytes per 256
  // values): the output matrix's repacked copy is counted, and the parts add up.
  const auto& m = j["memory"];
  EXPECT_EQ(m["tied_output_copy"], 32256u * 256 / 256 * 210);
  EXPECT_EQ(m["total"].get<uint64_t>(), m["weights"].get<uint64_t>() + m["tied_output_copy"].get<uint64_t>() +
                                            m["kv_cache"].get<uint64_t>() + m["scratch_estimate"].get<uint64_t>());
}

// A mixture of experts: the experts, and per token the parameters it computes
// with and the bytes it reads - computed here independently from the tensor
// shapes: all but the experts, 2 of each layer's 8 experts, one embedding row.
TEST(InspectCli, MixtureShowsActiveParametersAndBytesPerToken) {
  const std::string path = testing::testdata("next/models/tiny-qwen3moe-Q4_K_M.gguf");
  auto r = run_codey({"inspect", path, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["experts"]["n_expert"], 8);
  EXPECT_EQ(j["experts"]["n_expert_used"], 2);
  EXPECT_EQ(j["experts"]["n_ff_exp"], 256);
  auto full = run_codey({"inspect", path, "--json", "--tensors"});
  ASSERT_EQ(full.exit_code, 0) << full.err;
  uint64_t params = 0, expert_params = 0, bytes = 0, expert_bytes = 0, embd_row = 0;
  const auto tensors = nlohmann::json::parse(full.out)["tensors"];
  ASSERT_EQ(tensors.size(), 26u);
  for (const auto& t : tensors) {
    uint64_t n = 1;
    for (auto d : t["shape"]) n *= d.get<uint64_t>();
    params += n;
    const std::string name = t["name"];
    const uint64_t b = t["bytes"];
    if (name.find("_exps.") != std::string::npos) {
      expert_params += n;
      expert_bytes += b;
    } else if (name == "token_embd.weight") {
      embd_row = b / t["shape"][1].get<uint64_t>();
      bytes += b;  // tied: the output matrix reads all of it
    } else if (t["shape"].size() >= 2) {
      bytes += b;
    }
  }
  EXPECT_EQ(j["n_params"].get<uint64_t>(), params);
  EXPECT_EQ(j["n_active_params"].get<uint64_t>(), params - expert_params * 6 / 8);
  EXPECT_EQ(j["active_weight_bytes_per_token"].get<uint64_t>(), bytes + expert_bytes * 2 / 8 + embd_row);
  auto text = run_codey({"inspect", path});
  EXPECT_NE(text.out.find("8 per layer, 2 used per token"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("active parameters"), std::string::npos) << text.out;
}

// A synthesized tied model in Q8_0 (34 bytes per 32 values): the same, and
// a tied copy the size of token_embd.
TEST(InspectCli, TiedOutputCopyIsCounted) {
  const std::string path = testing::temp_dir() + "/tied.gguf";
  auto s = run_codey({"synth", "--arch", "qwen2", "--n-embd", "64", "--n-layer", "1", "--n-head", "2", "--n-head-kv", "1",
                      "--n-ff", "128", "--n-vocab", "512", "--type", "Q8_0", "-o", path});
  ASSERT_EQ(s.exit_code, 0) << s.err;
  auto r = run_codey({"inspect", path, "--json", "--ctx", "256"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto m = nlohmann::json::parse(r.out)["memory"];
  EXPECT_EQ(m["tied_output_copy"].get<uint64_t>(), 512u * 64 / 32 * 34);  // token_embd in Q8_0
  EXPECT_EQ(m["total"].get<uint64_t>(), m["weights"].get<uint64_t>() + m["tied_output_copy"].get<uint64_t>() +
                                            m["kv_cache"].get<uint64_t>() + m["scratch_estimate"].get<uint64_t>());
}

TEST(InspectCli, MissingFileAndBadFlags) {
  auto r = run_codey({"inspect", "/nonexistent/model.gguf"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("cannot open /nonexistent/model.gguf"), std::string::npos) << r.err;
  r = run_codey({"inspect", testing::testdata("models/tiny-llama-f16.gguf"), "--kv-type", "q4_0"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--kv-type"), std::string::npos);
}

TEST(InspectCli, TruncatedCopiesFailCleanly) {
  const std::string dir = testing::temp_dir();
  for (const auto& f : fixture_files()) {
    auto bytes = testing::read_file_bytes(f);
    for (double frac : {0.0001, 0.01, 0.3, 0.999}) {
      std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<long>(bytes.size() * frac));
      const std::string path = dir + "/cut.gguf";
      testing::write_file_bytes(path, cut);
      auto r = run_codey({"inspect", path});
      EXPECT_EQ(r.exit_code, 1) << f << " cut at " << frac;
      EXPECT_NE(r.err.find("cut.gguf"), std::string::npos) << r.err;
    }
  }
}

TEST(InspectCli, BitFlippedCopiesNeverCrash) {
  const std::string dir = testing::temp_dir();
  std::mt19937 rng(7);
  int failed_cleanly = 0;
  for (const auto& f : fixture_files()) {
    auto bytes = testing::read_file_bytes(f);
    for (int k = 0; k < 6; ++k) {
      auto copy = bytes;
      // Flip bits in the first 4 KiB: header, metadata, tensor infos.
      for (int b = 0; b < 3; ++b) copy[rng() % std::min<size_t>(4096, copy.size())] ^= uint8_t(1u << (rng() % 8));
      const std::string path = dir + "/flip.gguf";
      testing::write_file_bytes(path, copy);
      auto r = run_codey({"inspect", path});
      ASSERT_TRUE(r.exit_code == 0 || r.exit_code == 1) << f << " exit " << r.exit_code << " " << r.err;
      if (r.exit_code == 1) {
        ++failed_cleanly;
        EXPECT_NE(r.err.find("codey: "), std::string::npos);
      }
    }
  }
  EXPECT_GT(failed_cleanly, 0);
}

}  // namespace
}  // namespace codey
