// `codey pull`, `codey models`, `codey rm` and `--model REF` as a user runs
// them (the built binary, a temporary HOME, a stand-in Hub on loopback): the
// two commands from nothing to a running model, the messages of failures,
// two processes pulling one file, and models other tools keep.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "codey/net.h"
#include "testing/stand_in_hub.h"
#include "testing/testing.h"

namespace codey {
namespace {

namespace fs = std::filesystem;
using testing::CommandResult;
using testing::shell_quote;
using testing::StandInHub;

struct Cli {
  StandInHub hub;
  std::string home = testing::temp_dir();
  std::string env() const {
    return fmt::format("env -i PATH=/usr/bin:/bin HOME={} HF_ENDPOINT={} CODEY_LOG=warn ", shell_quote(home),
                       shell_quote(hub.endpoint()));
  }
  CommandResult run(const std::string& args, const std::string& extra_env = "") const {
    return testing::run_shell(env() + extra_env + " " + shell_quote(CODEY_BINARY) + " " + args + " 2>&1");
  }
  std::string models() const { return home + "/.cache/codey/models"; }
};

StandInHub::Repo tiny_repo() {
  StandInHub::Repo r;
  for (const char* q : {"Q4_K_M", "Q8_0"})
    r.files[fmt::format("tiny-coder-{}.gguf", q)] = {
        testing::read_file_text(testing::testdata(fmt::format("models/tiny-llama-{}.gguf", q))), true, ""};
  r.files["README.md"] = {"# tiny\n", false, ""};
  return r;
}

TEST(PullCli, FromNothingToARunningModelInTwoCommands) {
  Cli cli;
  cli.hub.add_repo("codey-test/Tiny-Coder-GGUF", tiny_repo());
  auto pulled = cli.run("pull hf.co/codey-test/Tiny-Coder-GGUF:Q4_K_M");
  ASSERT_EQ(pulled.exit_code, 0) << pulled.out;
  const std::string path = cli.models() + "/hf.co/codey-test/Tiny-Coder-GGUF/tiny-coder-Q4_K_M.gguf";
  EXPECT_NE(pulled.out.find(path), std::string::npos) << pulled.out;
  EXPECT_NE(pulled.out.find("pulled hf.co/codey-test/Tiny-Coder-GGUF:Q4_K_M"), std::string::npos) << pulled.out;
  EXPECT_EQ(pulled.out.find("\r"), std::string::npos) << "no progress bar when stderr is not a terminal";
  EXPECT_EQ(*sha256_file(path), *sha256_file(testing::testdata("models/tiny-llama-Q4_K_M.gguf")));
  auto ran = cli.run("run --model hf.co/codey-test/Tiny-Coder-GGUF:Q4_K_M --prompt 'def add(a, b):' -n 4 --threads 1");
  ASSERT_EQ(ran.exit_code, 0) << ran.out;
  EXPECT_NE(ran.out.find("generation:"), std::string::npos) << ran.out;
  // Other front ends take the reference too.
  auto inspected = cli.run("inspect hf.co/codey-test/Tiny-Coder-GGUF:Q4_K_M");
  ASSERT_EQ(inspected.exit_code, 0) << inspected.out;
  EXPECT_NE(inspected.out.find("llama"), std::string::npos);
  auto listed = cli.run("models --json");
  ASSERT_EQ(listed.exit_code, 0) << listed.out;
  auto j = nlohmann::json::parse(listed.out);
  ASSERT_EQ(j["models"].size(), 1u);
  EXPECT_EQ(j["models"][0]["ref"], "hf.co/codey-test/Tiny-Coder-GGUF:Q4_K_M");
  EXPECT_EQ(j["models"][0]["architecture"], "llama");
  EXPECT_EQ(j["models"][0]["quant"], "Q4_K_M");
  EXPECT_EQ(j["models"][0]["source"], "codey");
  auto table = cli.run("models");
  EXPECT_NE(table.out.find("hf.co/codey-test/Tiny-Coder-GGUF:Q4_K_M  Q4_K_M  llama"), std::string::npos) << table.out;
  auto removed = cli.run("rm hf.co/codey-test/Tiny-Coder-GGUF:Q4_K_M");
  ASSERT_EQ(removed.exit_code, 0) << removed.out;
  EXPECT_FALSE(fs::exists(path));
  auto gone = cli.run("run --model hf.co/codey-test/Tiny-Coder-GGUF:Q4_K_M --prompt x -n 1");
  EXPECT_EQ(gone.exit_code, 1);
  EXPECT_NE(gone.out.find("is not pulled: run `codey pull hf.co/codey-test/Tiny-Coder-GGUF:Q4_K_M`"), std::string::npos)
      << gone.out;
}

TEST(PullCli, FailuresSayWhatToDoAndLeaveNoHalfFile) {
  Cli cli;
  cli.hub.add_repo("o/Tiny-GGUF", tiny_repo());
  auto quant = cli.run("pull hf.co/o/Tiny-GGUF:Q5_K_M");
  EXPECT_EQ(quant.exit_code, 1);
  EXPECT_NE(quant.out.find("codey: hf.co/o/Tiny-GGUF has no Q5_K_M quantization; it has: Q4_K_M, Q8_0"),
            std::string::npos) << quant.out;
  auto repo = cli.run("pull hf.co/o/Nope-GGUF");
  EXPECT_EQ(repo.exit_code, 1);
  EXPECT_NE(repo.out.find("no repository hf.co/o/Nope-GGUF"), std::string::npos) << repo.out;
  auto bad = cli.run("pull hf.co/o/../x");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.out.find("not a valid"), std::string::npos) << bad.out;
  cli.hub.set_faults({.corrupt_times = 1});
  auto corrupt = cli.run("pull hf.co/o/Tiny-GGUF:Q8_0");
  EXPECT_EQ(corrupt.exit_code, 1);
  EXPECT_NE(corrupt.out.find("the download was deleted: run the same command again"), std::string::npos) << corrupt.out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(cli.models(), ec); !ec && it != fs::recursive_directory_iterator(); ++it)
    EXPECT_FALSE(it->path().string().ends_with(".gguf") || it->path().string().ends_with(".partial")) << it->path();
  auto offline = testing::run_shell(fmt::format("env -i PATH=/usr/bin:/bin HOME={} HF_ENDPOINT=http://127.0.0.1:9 {} pull "
                                                "hf.co/o/Tiny-GGUF 2>&1", shell_quote(cli.home), shell_quote(CODEY_BINARY)));
  EXPECT_EQ(offline.exit_code, 1);
  EXPECT_NE(offline.out.find("127.0.0.1:9"), std::string::npos) << offline.out;
}

// On a terminal (util-linux `script` gives the command a pty) the pull draws
// a progress bar in place: bytes, percent, speed and time left. The Hub sends
// the file in 64 KiB chunks 10 ms apart, so the pull takes over a second and
// the bar is redrawn (every 100 ms) while the speed is known.
TEST(PullCli, OnATerminalAProgressBarShowsBytesSpeedAndTimeLeft) {
  if (testing::run_shell("command -v script >/dev/null").exit_code != 0) GTEST_SKIP() << "no script(1) for a pty";
  Cli cli;
  cli.hub.add_repo("o/Tiny-GGUF", tiny_repo());
  cli.hub.set_faults({.throttle_ms = 10});
  const std::string cmd = cli.env() + " " + shell_quote(CODEY_BINARY) + " pull hf.co/o/Tiny-GGUF:Q4_K_M";
  auto r = testing::run_shell("script -qec " + shell_quote(cmd) + " /dev/null");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("\r\033[K[#"), std::string::npos) << "drawn in place";
  EXPECT_NE(r.out.find("] 100% 9.4 MiB / 9.4 MiB"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("/s ETA "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("pulled hf.co/o/Tiny-GGUF:Q4_K_M"), std::string::npos) << r.out;
}

TEST(PullCli, TwoProcessesPullingOneFileShareTheTransfer) {
  Cli cli;
  cli.hub.add_repo("o/Tiny-GGUF", tiny_repo());
  cli.hub.set_faults({.throttle_ms = 2});
  const std::string cmd = cli.env() + " " + shell_quote(CODEY_BINARY) + " pull -q hf.co/o/Tiny-GGUF:Q8_0";
  auto both = testing::run_shell("(" + cmd + " > " + cli.home + "/a.out 2>&1; echo $? >> " + cli.home + "/a.out) & " +
                                 cmd + " > " + cli.home + "/b.out 2>&1; echo $? >> " + cli.home + "/b.out; wait");
  const std::string a = testing::read_file_text(cli.home + "/a.out"), b = testing::read_file_text(cli.home + "/b.out");
  const std::string path = cli.models() + "/hf.co/o/Tiny-GGUF/tiny-coder-Q8_0.gguf";
  EXPECT_EQ(a, path + "\n0\n");
  EXPECT_EQ(b, path + "\n0\n");
  EXPECT_EQ(cli.hub.count("cdn", "/blob/"), 1) << "the second process waited for the first one's download";
  EXPECT_EQ(*sha256_file(path), *sha256_file(testing::testdata("models/tiny-llama-Q8_0.gguf")));
}

TEST(PullCli, ModelsListsOtherToolsAndServeTakesTheirNames) {
  Cli cli;
  // An Ollama model and an LM Studio model in the temporary home.
  const std::string model = testing::testdata("models/tiny-llama-Q4_K_M.gguf");
  const std::string sha = *sha256_file(model);
  const std::string ollama = cli.home + "/.ollama/models";
  fs::create_directories(ollama + "/blobs");
  fs::copy_file(model, ollama + "/blobs/sha256-" + sha);
  fs::create_directories(ollama + "/manifests/registry.ollama.ai/library/tiny");
  std::ofstream(ollama + "/manifests/registry.ollama.ai/library/tiny/latest")
      << nlohmann::json{{"schemaVersion", 2},
                        {"layers", {{{"mediaType", "application/vnd.ollama.image.model"}, {"digest", "sha256:" + sha},
                                     {"size", fs::file_size(model)}}}}}.dump();
  fs::create_directories(cli.home + "/.lmstudio/models/pub/Tiny-GGUF");
  fs::copy_file(model, cli.home + "/.lmstudio/models/pub/Tiny-GGUF/tiny-Q4_K_M.gguf");
  auto listed = cli.run("models");
  ASSERT_EQ(listed.exit_code, 0) << listed.out;
  EXPECT_NE(listed.out.find("ollama:tiny:latest"), std::string::npos) << listed.out;
  EXPECT_NE(listed.out.find("hf.co/pub/Tiny-GGUF:Q4_K_M"), std::string::npos) << listed.out;
  EXPECT_NE(listed.out.find("~/.lmstudio/models/pub/Tiny-GGUF/tiny-Q4_K_M.gguf"), std::string::npos) << listed.out;
  auto ran = cli.run("run --model ollama:tiny --prompt hi -n 2 --threads 1");
  EXPECT_EQ(ran.exit_code, 0) << ran.out;
  auto rm = cli.run("rm ollama:tiny");
  EXPECT_EQ(rm.exit_code, 1);
  EXPECT_NE(rm.out.find("ollama rm tiny:latest"), std::string::npos) << rm.out;
  auto none = testing::run_shell(fmt::format("env -i PATH=/usr/bin:/bin HOME={} {} models 2>&1",
                                             shell_quote(testing::temp_dir()), shell_quote(CODEY_BINARY)));
  EXPECT_NE(none.out.find("no models yet: `codey pull hf.co/OWNER/REPO:QUANT`"), std::string::npos) << none.out;
}

TEST(PullCli, ConfigPathTakesAReference) {
  Cli cli;
  cli.hub.add_repo("o/Tiny-GGUF", tiny_repo());
  const std::string cfg = cli.home + "/codey.yaml";
  std::ofstream(cfg) << "memory_budget: 2GiB\nmodels:\n  coder:\n    path: hf.co/o/Tiny-GGUF:Q8_0\n    ctx: 256\n";
  auto before = cli.run("list --config " + cfg);
  EXPECT_NE(before.out.find("is not pulled: run `codey pull hf.co/o/Tiny-GGUF:Q8_0`"), std::string::npos) << before.out;
  ASSERT_EQ(cli.run("pull -q hf.co/o/Tiny-GGUF:Q8_0").exit_code, 0);
  auto after = cli.run("list --config " + cfg + " --json");
  ASSERT_EQ(after.exit_code, 0) << after.out;
  auto j = nlohmann::json::parse(after.out.substr(after.out.find('{')));
  EXPECT_FALSE(j["models"][0].contains("error")) << after.out;
  EXPECT_EQ(j["models"][0]["path"], cli.models() + "/hf.co/o/Tiny-GGUF/tiny-coder-Q8_0.gguf");
}

}  // namespace
}  // namespace codey
