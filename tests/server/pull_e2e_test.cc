// `codey serve` and models on disk: POST /api/pull with Ollama's NDJSON
// progress against a stand-in Hub, /api/tags and /v1/models listing the
// store, DELETE /api/delete, a client that leaves mid-pull, the key, Ollama's
// own store, --allow-pull, and the real `ollama` npm client's pull.
#include <gtest/gtest.h>

#include "server/serve_testing.h"
#include "testing/stand_in_hub.h"

namespace codey {
namespace {

using namespace serve_testing;
using testing::StandInHub;

// A temporary home with the environment `codey serve` reads, set for the
// child processes this test starts.
struct PullHome {
  std::string home = temp_dir();
  std::string models = home + "/models";
  explicit PullHome(const StandInHub& hub) {
    ::setenv("HOME", home.c_str(), 1);
    ::setenv("CODEY_MODELS", models.c_str(), 1);
    ::setenv("HF_ENDPOINT", hub.endpoint().c_str(), 1);
    ::setenv("HF_HOME", (home + "/hf").c_str(), 1);
    ::setenv("OLLAMA_MODELS", (home + "/ollama").c_str(), 1);
    ::unsetenv("HF_TOKEN");
    ::unsetenv("HF_HUB_CACHE");
  }
  ~PullHome() {
    for (const char* v : {"CODEY_MODELS", "HF_ENDPOINT", "HF_HOME", "OLLAMA_MODELS"}) ::unsetenv(v);
  }
};

StandInHub::Repo tiny_repo() {
  StandInHub::Repo r;
  for (const char* q : {"Q4_K_M", "Q8_0"})
    r.files[fmt::format("Tiny-{}.gguf", q)] = {
        read_file_text(testing::testdata(fmt::format("models/tiny-llama-{}.gguf", q))), true, ""};
  return r;
}

std::vector<json> ndjson(const std::string& body) {
  std::vector<json> out;
  std::istringstream in(body);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(json::parse(line, nullptr, false));
  return out;
}

class ServePull : public ::testing::Test {
 protected:
  void SetUp() override {
    REQUIRE_CURL();
    hub_.add_repo("codey-test/Tiny-GGUF", tiny_repo());
    env_ = std::make_unique<PullHome>(hub_);
    server_ = std::make_unique<ServeProcess>(
        std::vector<std::string>{"--port", "0", "--api-key", kKey, "--memory-budget", "512MiB"},
        env_->home + "/serve.log");
    ASSERT_TRUE(server_->ok()) << server_->log();
  }
  std::string url() const { return server_->url(); }
  StandInHub hub_;
  std::unique_ptr<PullHome> env_;
  std::unique_ptr<ServeProcess> server_;
};

TEST_F(ServePull, PullStreamsProgressListsRunsAndDeletes) {
  const std::string model = "hf.co/codey-test/Tiny-GGUF:Q4_K_M";
  Http tags0 = curl("GET", url() + "/api/tags");
  ASSERT_EQ(tags0.status, 200) << tags0.body;
  EXPECT_TRUE(tags0.j()["models"].empty());
  Http p = curl("POST", url() + "/api/pull", json{{"model", model}}.dump());
  ASSERT_EQ(p.status, 200) << p.body;
  EXPECT_NE(p.headers.find("application/x-ndjson"), std::string::npos) << p.headers;
  const auto lines = ndjson(p.body);
  ASSERT_GE(lines.size(), 4u) << p.body;
  EXPECT_EQ(lines.front()["status"], "pulling manifest");
  EXPECT_EQ(lines.back()["status"], "success");
  EXPECT_EQ(lines[lines.size() - 2]["status"], "writing manifest");
  const std::string sha = StandInHub::sha256_of(read_file_text(testing::testdata("models/tiny-llama-Q4_K_M.gguf")));
  bool progress = false;
  for (const auto& l : lines) {
    ASSERT_TRUE(l.is_object()) << p.body;
    EXPECT_FALSE(l.contains("error")) << l.dump();
    if (!l.contains("digest")) continue;
    progress = true;
    EXPECT_EQ(l["digest"], "sha256:" + sha);
    EXPECT_EQ(l["status"], "pulling " + sha.substr(0, 12));
    EXPECT_LE(l["completed"].get<uint64_t>(), l["total"].get<uint64_t>());
  }
  EXPECT_TRUE(progress) << p.body;
  EXPECT_TRUE(fs::exists(env_->models + "/hf.co/codey-test/Tiny-GGUF/Tiny-Q4_K_M.gguf"));

  Http tags = curl("GET", url() + "/api/tags");
  ASSERT_EQ(tags.status, 200);
  ASSERT_EQ(tags.j()["models"].size(), 1u) << tags.body;
  EXPECT_EQ(tags.j()["models"][0]["name"], model);
  EXPECT_EQ(tags.j()["models"][0]["details"]["family"], "llama");
  Http v1 = curl("GET", url() + "/v1/models");
  ASSERT_EQ(v1.status, 200);
  EXPECT_EQ(v1.j()["data"][0]["id"], model);
  Http gen = curl("POST", url() + "/api/generate",
                  json{{"model", model}, {"prompt", "def f():"}, {"stream", false}, {"options", {{"num_predict", 3}}}}.dump());
  ASSERT_EQ(gen.status, 200) << gen.body;
  EXPECT_EQ(gen.j()["model"], model);
  // Another spelling of the same reference is the same model.
  Http gen2 = curl("POST", url() + "/v1/completions",
                   json{{"model", "hf.co/codey-test/tiny-gguf:q4_k_m"}, {"prompt", "x"}, {"max_tokens", 2}}.dump());
  ASSERT_EQ(gen2.status, 200) << gen2.body;
  EXPECT_EQ(gen2.j()["model"], model);

  Http again = curl("POST", url() + "/api/pull", json{{"model", model}, {"stream", false}}.dump());
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(again.j(), (json{{"status", "success"}}));
  EXPECT_EQ(hub_.count("cdn", "/blob/"), 1) << "up to date: nothing downloaded again";

  // The model is loaded: delete unloads it first.
  Http del = curl("DELETE", url() + "/api/delete", json{{"model", model}}.dump());
  ASSERT_EQ(del.status, 200) << del.body;
  EXPECT_FALSE(fs::exists(env_->models + "/hf.co/codey-test/Tiny-GGUF/Tiny-Q4_K_M.gguf"));
  EXPECT_TRUE(curl("GET", url() + "/api/tags").j()["models"].empty());
  Http del2 = curl("DELETE", url() + "/api/delete", json{{"model", model}}.dump());
  EXPECT_EQ(del2.status, 404) << del2.body;
  Http gone = curl("POST", url() + "/api/generate", json{{"model", model}, {"prompt", "x"}}.dump());
  EXPECT_EQ(gone.status, 404);
  EXPECT_NE(gone.j()["error"].get<std::string>().find("is not pulled"), std::string::npos) << gone.body;
  EXPECT_NE(gone.j()["error"].get<std::string>().find("POST /api/pull"), std::string::npos) << gone.body;
}

TEST_F(ServePull, ErrorsHaveTheirStatusAndTheKeyIsNeeded) {
  struct Case {
    json body;
    int status;
    const char* says;
  };
  for (const Case& c : std::initializer_list<Case>{
           {{{"model", "hf.co/codey-test/Tiny-GGUF:Q5_K_M"}}, 404, "has no Q5_K_M quantization; it has: Q4_K_M, Q8_0"},
           {{{"model", "hf.co/codey-test/Nope-GGUF"}}, 404, "no repository hf.co/codey-test/Nope-GGUF"},
           {{{"model", "hf.co/../x"}}, 400, "not a valid"},
           {{{"model", "/etc/passwd"}}, 404, "codey pulls from Hugging Face"},
           {{{"model", "qwen2.5-coder:7b"}}, 404, "ollama pull qwen2.5-coder:7b"},
           {{{"stream", false}}, 400, "model"},
           {{{"model", 5}}, 400, "model"},
       }) {
    for (bool stream : {true, false}) {
      json b = c.body;
      if (!b.contains("stream")) b["stream"] = stream;
      Http h = curl("POST", url() + "/api/pull", b.dump());
      EXPECT_EQ(h.status, c.status) << b.dump() << "\n" << h.body;
      ASSERT_TRUE(h.j().is_object()) << h.body;
      EXPECT_NE(h.j()["error"].get<std::string>().find(c.says), std::string::npos) << h.body;
    }
  }
  EXPECT_EQ(curl("POST", url() + "/api/pull", R"({"model":"hf.co/codey-test/Tiny-GGUF"})", "", false).status, 401);
  EXPECT_EQ(curl("DELETE", url() + "/api/delete", R"({"model":"x"})", "", false).status, 401);
  EXPECT_EQ(hub_.count("api", "/"), 4) << "unknown quant x2, unknown repo x2; nothing else reached the Hub";
  // A path is never opened on a client's word.
  Http path = curl("POST", url() + "/api/generate",
                   json{{"model", testing::testdata("models/tiny-llama-Q4_K_M.gguf")}, {"prompt", "x"}}.dump());
  EXPECT_EQ(path.status, 404) << path.body;
}

TEST_F(ServePull, AClientThatLeavesStopsThePullAndTheNextOneResumes) {
  hub_.set_faults({.throttle_ms = 20});
  const std::string model = "hf.co/codey-test/Tiny-GGUF:Q8_0";
  const std::string partial = env_->models + "/hf.co/codey-test/Tiny-GGUF/Tiny-Q8_0.gguf.partial";
  {
    BackgroundCurl c(url() + "/api/pull", json{{"model", model}}.dump());
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < until && (!fs::exists(partial) || fs::file_size(partial) < 200000))
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ASSERT_TRUE(fs::exists(partial));
    c.kill();
  }
  // The download stops soon after (the partial file stops growing and stays).
  uint64_t size = 0;
  for (int i = 0; i < 100; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const uint64_t now = fs::file_size(partial);
    if (now == size && i > 10) break;
    size = now;
  }
  EXPECT_LT(size, fs::file_size(testing::testdata("models/tiny-llama-Q8_0.gguf")));
  EXPECT_FALSE(fs::exists(env_->models + "/hf.co/codey-test/Tiny-GGUF/Tiny-Q8_0.gguf"));
  hub_.set_faults({});
  Http p = curl("POST", url() + "/api/pull", json{{"model", model}, {"stream", false}}.dump());
  ASSERT_EQ(p.status, 200) << p.body;
  bool resumed = false;
  for (const auto& r : hub_.seen())
    resumed = resumed || (r.server == "cdn" && r.headers.count("range") && r.headers.at("range") != "bytes=0-");
  EXPECT_TRUE(resumed) << "the second pull asked for the rest only";
}

TEST_F(ServePull, OllamaStoreModelsAreListedAndPullOfThemSucceeds) {
  const std::string src = testing::testdata("models/tiny-llama-Q4_K_M.gguf");
  const std::string sha = StandInHub::sha256_of(read_file_text(src));
  const std::string root = env_->home + "/ollama";
  fs::create_directories(root + "/blobs");
  fs::create_directories(root + "/manifests/registry.ollama.ai/library/tiny");
  fs::copy_file(src, root + "/blobs/sha256-" + sha);
  std::ofstream(root + "/manifests/registry.ollama.ai/library/tiny/latest")
      << json{{"schemaVersion", 2},
              {"layers", {{{"mediaType", "application/vnd.ollama.image.model"}, {"digest", "sha256:" + sha},
                           {"size", fs::file_size(src)}}}}}.dump();
  Http tags = curl("GET", url() + "/api/tags");
  ASSERT_EQ(tags.j()["models"].size(), 1u) << tags.body;
  EXPECT_EQ(tags.j()["models"][0]["name"], "tiny:latest");
  Http pull = curl("POST", url() + "/api/pull", R"({"model":"tiny","stream":false})");
  EXPECT_EQ(pull.status, 200) << pull.body;
  Http gen = curl("POST", url() + "/api/generate", R"({"model":"tiny","prompt":"x","stream":false,"options":{"num_predict":2}})");
  EXPECT_EQ(gen.status, 200) << gen.body;
  Http del = curl("DELETE", url() + "/api/delete", R"({"model":"tiny"})");
  EXPECT_EQ(del.status, 400) << del.body;
  EXPECT_NE(del.body.find("ollama rm"), std::string::npos) << del.body;
  EXPECT_TRUE(fs::exists(root + "/blobs/sha256-" + sha)) << "never removed";
}

TEST_F(ServePull, TheOllamaNpmClientPulls) {
  REQUIRE_NODE();
  Shell r = sh("node " + shell_quote(std::string(CODEY_SOURCE_DIR) + "/tests/e2e/ollama_pull.mjs") + " " + url() +
               " hf.co/codey-test/Tiny-GGUF:Q4_K_M " + kKey + " 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.out << "\n" << server_->log();
  EXPECT_NE(r.out.find("ok delete"), std::string::npos) << r.out;
}

TEST(ServeAllowPull, ReferencesArePulledBeforeServingOnlyWhenAllowed) {
  REQUIRE_CURL();
  StandInHub hub;
  hub.add_repo("codey-test/Tiny-GGUF", tiny_repo());
  PullHome env(hub);
  const std::string model = "hf.co/codey-test/Tiny-GGUF:Q8_0";
  Shell refused = sh(shell_quote(serve_binary()) + " serve --port 0 --model " + model + " 2>&1");
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.out.find("is not pulled: run `codey pull " + model + "` (or serve with --allow-pull)"),
            std::string::npos) << refused.out;
  ServeProcess s({"--port", "0", "--api-key", kKey, "--model", model, "--allow-pull"}, env.home + "/serve.log");
  ASSERT_TRUE(s.ok()) << s.log();
  EXPECT_NE(s.log().find("codey serve: pulling " + model), std::string::npos) << s.log();
  Http tags = curl("GET", s.url() + "/api/tags");
  ASSERT_EQ(tags.j()["models"].size(), 1u) << tags.body;
  EXPECT_EQ(tags.j()["models"][0]["name"], model);
}

}  // namespace
}  // namespace codey
