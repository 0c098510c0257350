// Tokenizer throughput: MB/s of Python source tokenized single-threaded, with
// the deepseek-coder vocabulary (and gpt-2 / llama-spm for comparison).
// Corpus: $CODEY_BENCH_PYTHON (a .py file or a directory of them), else a fixed
// set of standard-library modules of the system Python. Vocabularies from
// $CODEY_TESTDATA or ../shared/testdata next to the source tree.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "codey/gguf.h"
#include "codey/tokenizer.h"

namespace {

namespace fs = std::filesystem;

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

fs::path testdata_dir() {
  if (const char* env = std::getenv("CODEY_TESTDATA")) return env;
  return fs::path(__FILE__).parent_path().parent_path().parent_path() / "shared" / "testdata";
}

// ~0.6 MB of real-world Python.
const std::string& python_corpus() {
  static const std::string corpus = [] {
    std::string text;
    if (const char* env = std::getenv("CODEY_BENCH_PYTHON")) {
      fs::path p(env);
      if (fs::is_directory(p)) {
        std::vector<fs::path> files;
        for (const auto& e : fs::recursive_directory_iterator(p))
          if (e.path().extension() == ".py") files.push_back(e.path());
        std::sort(files.begin(), files.end());
        for (const auto& f : files) text += read_file(f);
      } else {
        text = read_file(p);
      }
      return text;
    }
    for (const char* dir : {"/usr/lib/python3.11", "/usr/lib/python3.12", "/usr/lib/python3.13"}) {
      if (!fs::exists(fs::path(dir) / "typing.py")) continue;
      for (const char* f : {"argparse.py", "ast.py", "dataclasses.py", "inspect.py", "subprocess.py", "typing.py"})
        text += read_file(fs::path(dir) / f);
      break;
    }
    return text;
  }();
  return corpus;
}

codey::Tokenizer load(const std::string& vocab) {
  auto f = codey::GgufFile::open((testdata_dir() / "vocab" / vocab).string());
  if (!f) {
    std::fprintf(stderr, "tokenizer_bench: %s\n", f.error().message.c_str());
    std::exit(1);
  }
  auto t = codey::Tokenizer::from_gguf(*f);
  if (!t) {
    std::fprintf(stderr, "tokenizer_bench: %s\n", t.error().message.c_str());
    std::exit(1);
  }
  return std::move(*t);
}

// Same tokenizer across iterations: its word cache is warm after the first.
void BM_TokenizePython(benchmark::State& state, const std::string& vocab) {
  const std::string& text = python_corpus();
  if (text.empty()) {
    state.SkipWithError("no Python corpus found (set CODEY_BENCH_PYTHON)");
    return;
  }
  const codey::Tokenizer tok = load(vocab);
  size_t n_tokens = 0;
  for (auto _ : state) {
    auto ids = tok.tokenize(text, false, false);
    n_tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(text.size()));
  state.counters["tokens"] = double(n_tokens);
  state.counters["bytes/token"] = double(text.size()) / double(n_tokens);
}

// A fresh tokenizer (empty word cache) for every iteration; loading untimed.
void BM_TokenizePythonColdCache(benchmark::State& state, const std::string& vocab) {
  const std::string& text = python_corpus();
  if (text.empty()) {
    state.SkipWithError("no Python corpus found (set CODEY_BENCH_PYTHON)");
    return;
  }
  for (auto _ : state) {
    state.PauseTiming();
    codey::Tokenizer tok = load(vocab);
    state.ResumeTiming();
    auto ids = tok.tokenize(text, false, false);
    benchmark::DoNotOptimize(ids.data());
    state.PauseTiming();
    { codey::Tokenizer drop = std::move(tok); }
    state.ResumeTiming();
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(text.size()));
}

void BM_DetokenizePython(benchmark::State& state, const std::string& vocab) {
  const std::string& text = python_corpus();
  const codey::Tokenizer tok = load(vocab);
  const auto ids = tok.tokenize(text, false, false);
  for (auto _ : state) {
    std::string back = tok.detokenize(ids);
    benchmark::DoNotOptimize(back.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(text.size()));
}

BENCHMARK_CAPTURE(BM_TokenizePython, deepseek_coder, std::string("ggml-vocab-deepseek-coder.gguf"))
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_TokenizePythonColdCache, deepseek_coder, std::string("ggml-vocab-deepseek-coder.gguf"))
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_TokenizePython, gpt2, std::string("ggml-vocab-gpt-2.gguf"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_TokenizePython, llama_spm, std::string("ggml-vocab-llama-spm.gguf"))
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_DetokenizePython, deepseek_coder, std::string("ggml-vocab-deepseek-coder.gguf"))
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
