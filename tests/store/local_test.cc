// Tests of models on disk (src/store/local.cc): codey's store, and fake
// Ollama, LM Studio and Hugging Face cache trees in a temporary home, read in
// place; resolving references, listing, removing, and the messages when a
// model is missing or damaged.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "codey/net.h"
#include "codey/store.h"
#include "store/internal.h"
#include "testing/gguf_split.h"
#include "testing/testing.h"

namespace codey {
namespace {

namespace fs = std::filesystem;
using testing::testdata;

const std::string kModel = "models/tiny-llama-Q4_K_M.gguf";  // a real GGUF (architecture llama)

void put(const std::string& path, const std::string& content) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << content;
}

void copy(const std::string& from, const std::string& to) {
  fs::create_directories(fs::path(to).parent_path());
  fs::copy_file(from, to, fs::copy_options::overwrite_existing);
}

// A temporary home with every tool's folder (all empty).
struct Home {
  std::string dir = testing::temp_dir();
  StoreOptions o;
  Home() {
    o.models_dir = dir + "/.cache/codey/models";
    o.hf_cache = dir + "/.cache/huggingface/hub";
    o.ollama_dirs = {dir + "/.ollama/models"};
    o.lmstudio_dirs = {dir + "/.lmstudio/models", dir + "/.cache/lm-studio/models"};
    o.hf_endpoint = "http://127.0.0.1:9";  // never asked here
  }
  // An Ollama model: manifest + blob named by the content's sha256.
  std::string ollama(const std::string& manifest_rel, const std::string& content_file) {
    const std::string sha = *sha256_file(content_file);
    const std::string blob = o.ollama_dirs[0] + "/blobs/sha256-" + sha;
    copy(content_file, blob);
    nlohmann::json m = {{"schemaVersion", 2},
                        {"mediaType", "application/vnd.docker.distribution.manifest.v2+json"},
                        {"config", {{"mediaType", "application/vnd.docker.container.image.v1+json"},
                                    {"digest", "sha256:" + std::string(64, 'c')}, {"size", 485}}},
                        {"layers", {{{"mediaType", "application/vnd.ollama.image.template"},
                                     {"digest", "sha256:" + std::string(64, 'a')}, {"size", 1}},
                                    {{"mediaType", "application/vnd.ollama.image.model"},
                                     {"digest", "sha256:" + sha}, {"size", fs::file_size(content_file)}}}}};
    put(o.ollama_dirs[0] + "/manifests/" + manifest_rel, m.dump());
    return blob;
  }
  // A file in the HF cache: snapshots/REV/PATH -> ../../blobs/SHA.
  std::string hf_cache(const std::string& repo_dir, const std::string& rel, const std::string& content_file,
                       const std::string& rev = "0123456789abcdef0123456789abcdef01234567") {
    const std::string root = o.hf_cache + "/" + repo_dir;
    const std::string sha = *sha256_file(content_file);
    copy(content_file, root + "/blobs/" + sha);
    const std::string link = root + "/snapshots/" + rev + "/" + rel;
    fs::create_directories(fs::path(link).parent_path());
    fs::path target = fs::relative(root + "/blobs/" + sha, fs::path(link).parent_path());
    fs::create_symlink(target, link);
    put(root + "/refs/main", rev);
    return link;
  }
};

TEST(ResolveModel, ExistingFilesAndMissingOnes) {
  Home h;
  auto m = resolve_model(testdata(kModel), h.o);
  ASSERT_TRUE(m.has_value()) << m.error().message;
  EXPECT_EQ(m->source, ModelSource::kFile);
  EXPECT_EQ(m->path, testdata(kModel));
  EXPECT_EQ(m->serve_name(), "tiny-llama-Q4_K_M");
  EXPECT_EQ(m->quant, "Q4_K_M");
  auto missing = resolve_model(h.dir + "/nope.gguf", h.o);
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  EXPECT_NE(missing.error().message.find("cannot open " + h.dir + "/nope.gguf: model file not found"), std::string::npos);
  auto dir = resolve_model(h.dir, h.o);
  ASSERT_FALSE(dir.has_value());
  EXPECT_NE(dir.error().message.find("is a folder"), std::string::npos);
  auto bare = resolve_model("Qwen/Qwen2.5-Coder-GGUF:Q4_K_M", h.o);
  ASSERT_FALSE(bare.has_value());
  EXPECT_NE(bare.error().message.find("a Hugging Face model is named hf.co/Qwen/Qwen2.5-Coder-GGUF:Q4_K_M"),
            std::string::npos) << bare.error().message;
}

TEST(ResolveModel, NotPulledSaysWhatToRun) {
  Home h;
  auto r = resolve_model("hf.co/Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF:Q4_K_M", h.o);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(r.error().message,
            "hf.co/Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF:Q4_K_M is not pulled: run `codey pull "
            "hf.co/Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF:Q4_K_M`");
  auto o = resolve_model("ollama:qwen2.5-coder:7b", h.o);
  ASSERT_FALSE(o.has_value());
  EXPECT_NE(o.error().message.find("`ollama pull qwen2.5-coder:7b` fetches it"), std::string::npos)
      << o.error().message;
}

TEST(ResolveModel, CodeyStoreByQuantFileAndDefault) {
  Home h;
  const std::string dir = h.o.models_dir + "/hf.co/Org/Repo-GGUF";
  copy(testdata(kModel), dir + "/repo-Q4_K_M.gguf");
  copy(testdata("models/tiny-llama-Q8_0.gguf"), dir + "/repo-Q8_0.gguf");
  auto q = resolve_model("hf.co/org/repo-gguf:q8_0", h.o);  // names are case-insensitive on the Hub
  ASSERT_TRUE(q.has_value()) << q.error().message;
  EXPECT_EQ(q->source, ModelSource::kCodey);
  EXPECT_EQ(q->path, dir + "/repo-Q8_0.gguf");
  EXPECT_EQ(q->ref, "hf.co/Org/Repo-GGUF:Q8_0");
  auto f = resolve_model("hf.co/Org/Repo-GGUF/repo-Q4_K_M.gguf", h.o);
  ASSERT_TRUE(f.has_value()) << f.error().message;
  EXPECT_EQ(f->path, dir + "/repo-Q4_K_M.gguf");
  // hf.co/OWNER/REPO names what `codey pull hf.co/OWNER/REPO` chose: none yet.
  auto d = resolve_model("hf.co/Org/Repo-GGUF", h.o);
  ASSERT_FALSE(d.has_value());
  EXPECT_NE(d.error().message.find("is not pulled: run `codey pull hf.co/Org/Repo-GGUF`"), std::string::npos);
  EXPECT_NE(d.error().message.find("pulled from this repo: Q4_K_M, Q8_0"), std::string::npos) << d.error().message;
  nlohmann::json m = nlohmann::json::object();
  m["repo"] = "Org/Repo-GGUF";
  m["default"] = "repo-Q8_0.gguf";
  m["files"]["repo-Q8_0.gguf"]["size"] = fs::file_size(dir + "/repo-Q8_0.gguf");
  ASSERT_TRUE(store::write_manifest(dir, m).has_value());
  d = resolve_model("hf.co/Org/Repo-GGUF", h.o);
  ASSERT_TRUE(d.has_value()) << d.error().message;
  EXPECT_EQ(d->path, dir + "/repo-Q8_0.gguf");
  // A file whose size is not what was pulled is damaged, and says so.
  fs::resize_file(dir + "/repo-Q8_0.gguf", 1000);
  auto bad = resolve_model("hf.co/Org/Repo-GGUF:Q8_0", h.o);
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message.find("is damaged"), std::string::npos) << bad.error().message;
  EXPECT_NE(bad.error().message.find("run `codey pull hf.co/Org/Repo-GGUF:Q8_0`"), std::string::npos);
}

TEST(ResolveModel, SplitModelInCodeyStoreAndAMissingPart) {
  Home h;
  const std::string dir = h.o.models_dir + "/hf.co/o/r/Q4_K_M";
  fs::create_directories(dir);
  const auto parts = testing::split_gguf(testdata(kModel), dir + "/m-Q4_K_M", {.max_tensors = 16});
  ASSERT_EQ(parts.size(), 3u);
  auto m = resolve_model("hf.co/o/r:Q4_K_M", h.o);
  ASSERT_TRUE(m.has_value()) << m.error().message;
  EXPECT_EQ(m->path, parts[0]);
  EXPECT_EQ(m->files, parts);
  EXPECT_EQ(m->size, fs::file_size(parts[0]) + fs::file_size(parts[1]) + fs::file_size(parts[2]));
  fs::remove(parts[1]);
  auto gone = resolve_model("hf.co/o/r:Q4_K_M", h.o);
  ASSERT_FALSE(gone.has_value());
  EXPECT_NE(gone.error().message.find("is incomplete: " + parts[1] + " is missing"), std::string::npos)
      << gone.error().message;
}

TEST(OtherTools, OllamaStoreIsReadInPlace) {
  Home h;
  const std::string blob = h.ollama("registry.ollama.ai/library/qwen2.5-coder/7b", testdata(kModel));
  const std::string hf_blob = h.ollama("hf.co/bartowski/Coder-GGUF/Q8_0", testdata("models/tiny-llama-Q8_0.gguf"));
  auto m = resolve_model("ollama:qwen2.5-coder:7b", h.o);
  ASSERT_TRUE(m.has_value()) << m.error().message;
  EXPECT_EQ(m->source, ModelSource::kOllama);
  EXPECT_EQ(m->path, blob);
  EXPECT_EQ(m->serve_name(), "qwen2.5-coder:7b");
  auto upper = resolve_model("ollama:Qwen2.5-Coder:7b", h.o);
  ASSERT_TRUE(upper.has_value()) << upper.error().message;
  // Ollama's own pulls of hf.co models answer hf.co references.
  auto hf = resolve_model("hf.co/bartowski/Coder-GGUF:Q8_0", h.o);
  ASSERT_TRUE(hf.has_value()) << hf.error().message;
  EXPECT_EQ(hf->path, hf_blob);
  EXPECT_EQ(hf->ref, "ollama:hf.co/bartowski/Coder-GGUF:Q8_0");
  // A manifest whose blob is gone says how to get it back.
  fs::remove(blob);
  auto gone = resolve_model("ollama:qwen2.5-coder:7b", h.o);
  ASSERT_FALSE(gone.has_value());
  EXPECT_NE(gone.error().message.find("blob"), std::string::npos);
  EXPECT_NE(gone.error().message.find("ollama pull qwen2.5-coder:7b"), std::string::npos) << gone.error().message;
}

TEST(OtherTools, LmStudioAndTheHfCacheAnswerHubReferences) {
  Home h;
  const std::string lms = h.o.lmstudio_dirs[1] + "/lmstudio-community/Coder-GGUF/Coder-Q4_K_M.gguf";
  copy(testdata(kModel), lms);
  put(h.o.lmstudio_dirs[1] + "/lmstudio-community/Coder-GGUF/mmproj-Coder-f16.gguf", "not a model");
  auto m = resolve_model("hf.co/lmstudio-community/Coder-GGUF:Q4_K_M", h.o);
  ASSERT_TRUE(m.has_value()) << m.error().message;
  EXPECT_EQ(m->source, ModelSource::kLmStudio);
  EXPECT_EQ(m->path, lms);
  auto by_file = resolve_model("lmstudio-community/Coder-GGUF/Coder-Q4_K_M.gguf", h.o);
  ASSERT_TRUE(by_file.has_value()) << by_file.error().message;
  EXPECT_EQ(by_file->path, lms);
  auto dflt = resolve_model("hf.co/lmstudio-community/Coder-GGUF", h.o);
  ASSERT_TRUE(dflt.has_value()) << "LM Studio has no manifest: the default rule picks among its files";

  const std::string link = h.hf_cache("models--Qwen--Coder-GGUF", "coder-q8_0.gguf", testdata("models/tiny-llama-Q8_0.gguf"));
  // An unfinished download: a snapshot link to a blob that is not there yet.
  fs::create_symlink("../../blobs/" + std::string(64, 'e') + ".incomplete",
                     fs::path(link).parent_path() / "coder-q4_k_m.gguf");
  auto c = resolve_model("hf.co/Qwen/Coder-GGUF:Q8_0", h.o);
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->source, ModelSource::kHuggingFaceCache);
  EXPECT_EQ(c->path, link);
  EXPECT_EQ(c->sha256, *sha256_file(testdata("models/tiny-llama-Q8_0.gguf")));
  auto missing = resolve_model("hf.co/Qwen/Coder-GGUF:Q4_K_M", h.o);
  ASSERT_FALSE(missing.has_value()) << "a broken link is not a model";
  // codey's own store comes first.
  const std::string own = h.o.models_dir + "/hf.co/Qwen/Coder-GGUF/coder-q8_0.gguf";
  copy(testdata("models/tiny-llama-Q8_0.gguf"), own);
  EXPECT_EQ(resolve_model("hf.co/Qwen/Coder-GGUF:Q8_0", h.o)->path, own);
}

TEST(ListModels, EverySourceWithHeaderFactsAndPartialDownloads) {
  Home h;
  copy(testdata(kModel), h.o.models_dir + "/hf.co/o/r/r-Q4_K_M.gguf");
  put(h.o.models_dir + "/hf.co/o/r/r-Q8_0.gguf.partial", std::string(1234, 'x'));
  h.ollama("registry.ollama.ai/library/tiny/latest", testdata("models/micro-qwen2-Q8_0.gguf"));
  copy(testdata("models/tiny-llama-Q5_K_M.gguf"), h.o.lmstudio_dirs[0] + "/pub/rep/rep-Q5_K_M.gguf");
  h.hf_cache("models--a--b", "b.gguf", testdata("models/micro-qwen2-f16.gguf"));
  put(h.o.lmstudio_dirs[0] + "/pub/rep/broken-Q2_K.gguf", "GGUF but not really");
  const ModelList l = list_models(h.o, true);
  std::map<std::string, LocalModel> by_ref;
  for (const auto& m : l.models) by_ref[m.ref] = m;
  ASSERT_EQ(l.models.size(), 5u);
  EXPECT_EQ(l.models.front().source, ModelSource::kCodey) << "codey's store first";
  const LocalModel& own = by_ref.at("hf.co/o/r:Q4_K_M");
  EXPECT_EQ(own.architecture, "llama");
  EXPECT_GT(own.n_params, 0u);
  EXPECT_EQ(own.size, fs::file_size(testdata(kModel)));
  const LocalModel& oll = by_ref.at("ollama:tiny:latest");
  EXPECT_EQ(oll.architecture, "qwen2");
  EXPECT_EQ(oll.quant, "Q8_0") << "from general.file_type when the name has none";
  EXPECT_EQ(by_ref.at("hf.co/pub/rep:Q5_K_M").source, ModelSource::kLmStudio);
  const LocalModel& cache = by_ref.at("hf.co/a/b/b.gguf");
  EXPECT_EQ(cache.source, ModelSource::kHuggingFaceCache);
  EXPECT_EQ(cache.quant, "F16");
  EXPECT_FALSE(by_ref.at("hf.co/pub/rep:Q2_K").error.empty()) << "an unreadable file is listed with its error";
  ASSERT_EQ(l.partials.size(), 1u);
  EXPECT_EQ(l.partials[0].ref, "hf.co/o/r/r-Q8_0.gguf");
  EXPECT_EQ(l.partials[0].size, 1234u);
}

TEST(RemoveModel, RemovesPulledFilesOnlyAndSaysWhoOwnsTheRest) {
  Home h;
  const std::string dir = h.o.models_dir + "/hf.co/o/r";
  copy(testdata(kModel), dir + "/r-Q4_K_M.gguf");
  copy(testdata(kModel), dir + "/r-Q8_0.gguf");
  put(dir + "/r-Q8_0.gguf.partial", "xx");
  nlohmann::json m = nlohmann::json::object();
  m["repo"] = "o/r";
  m["default"] = "r-Q4_K_M.gguf";
  m["files"]["r-Q4_K_M.gguf"]["size"] = fs::file_size(dir + "/r-Q4_K_M.gguf");
  ASSERT_TRUE(store::write_manifest(dir, m).has_value());
  auto r = remove_model("hf.co/o/r:Q4_K_M", h.o);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(*r, (std::vector<std::string>{dir + "/r-Q4_K_M.gguf"}));
  EXPECT_FALSE(fs::exists(dir + "/r-Q4_K_M.gguf"));
  auto manifest = store::read_manifest(dir);
  EXPECT_FALSE(manifest["files"].contains("r-Q4_K_M.gguf"));
  EXPECT_FALSE(manifest.contains("default"));
  auto again = remove_model("hf.co/o/r:Q4_K_M", h.o);
  ASSERT_FALSE(again.has_value());
  EXPECT_NE(again.error().message.find("is not pulled"), std::string::npos) << again.error().message;
  r = remove_model("hf.co/o/r:Q8_0", h.o);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->size(), 2u) << "the model and its unfinished download";
  EXPECT_FALSE(fs::exists(dir)) << "an empty repo folder goes too";

  h.ollama("registry.ollama.ai/library/tiny/latest", testdata(kModel));
  auto o = remove_model("ollama:tiny", h.o);
  ASSERT_FALSE(o.has_value());
  EXPECT_NE(o.error().message.find("ollama rm tiny:latest"), std::string::npos) << o.error().message;
  copy(testdata(kModel), h.o.lmstudio_dirs[0] + "/p/q/q-Q4_K_M.gguf");
  auto l = remove_model("hf.co/p/q:Q4_K_M", h.o);
  ASSERT_FALSE(l.has_value());
  EXPECT_NE(l.error().message.find("LM Studio"), std::string::npos) << l.error().message;
  EXPECT_TRUE(fs::exists(h.o.lmstudio_dirs[0] + "/p/q/q-Q4_K_M.gguf")) << "never removed";
  auto p = remove_model(testdata(kModel), h.o);
  ASSERT_FALSE(p.has_value());
  EXPECT_TRUE(fs::exists(testdata(kModel)));
}

}  // namespace
}  // namespace codey
