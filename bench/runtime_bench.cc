// Runtime benchmarks: aggregate generation tokens/s of 1, 2 and 4 concurrent
// streams on one model (continuous batching: one forward pass per step for
// all of them), and the cost of a model switch (evict one ~1 GB model, load
// another) with the file in the page cache (warm) and dropped from it (cold).
//
// Models: $CODEY_BENCH_MODEL (streams; default /work/models/deepseek-coder-1.3b-q4_k_m.gguf)
// and $CODEY_BENCH_SWITCH_MODELS="a.gguf:b.gguf" (default: the streams model
// and a copy-by-seed next to it, .../deepseek-coder-1.3b-q4_k_m-b.gguf). Make them with
//   codey synth --shape deepseek-coder-1.3b --type Q4_K_M -o /work/models/deepseek-coder-1.3b-q4_k_m.gguf
//   codey synth --shape deepseek-coder-1.3b --type Q4_K_M --seed 7 -o /work/models/deepseek-coder-1.3b-q4_k_m-b.gguf
// $CODEY_BENCH_TOKENS: tokens per stream (default 32). $CODEY_BENCH_THREADS (default: usable cores).
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <thread>

#include "codey/runtime.h"

namespace {

using namespace codey;

std::string env_or(const char* name, std::string dflt) {
  const char* v = std::getenv(name);
  return v && *v ? v : dflt;
}

const std::string kModel = env_or("CODEY_BENCH_MODEL", "/work/models/deepseek-coder-1.3b-q4_k_m.gguf");

int bench_tokens() { return std::atoi(env_or("CODEY_BENCH_TOKENS", "32").c_str()); }
int bench_threads() {
  const int t = std::atoi(env_or("CODEY_BENCH_THREADS", "0").c_str());
  return t > 0 ? t : usable_cores();
}

ModelConfig model_config(std::string name, std::string path, int parallel) {
  ModelConfig m;
  m.name = std::move(name);
  m.path = std::move(path);
  m.ctx_auto = false;
  m.ctx = 512;
  m.parallel = parallel;
  m.batch = 256;
  m.keep_alive = Millis(-1);
  m.sampling.temperature = 0.0f;
  return m;
}

// One runtime with the streams model loaded, 4 slots, reused by every run.
Runtime* streams_runtime() {
  static std::unique_ptr<Runtime> rt = [] {
    RuntimeConfig c;
    c.memory_budget = auto_memory_budget();
    c.threads = bench_threads();
    c.models.push_back(model_config("m", kModel, 4));
    auto r = Runtime::create(std::move(c));
    if (!r) return std::unique_ptr<Runtime>();
    if (auto l = (*r)->load("m"); !l) {
      std::fprintf(stderr, "runtime_bench: %s\n", l.error().message.c_str());
      return std::unique_ptr<Runtime>();
    }
    return std::move(*r);
  }();
  return rt.get();
}

void BM_AggregateGeneration(benchmark::State& state) {
  if (!std::filesystem::exists(kModel)) return state.SkipWithError(("no model at " + kModel).c_str());
  Runtime* rt = streams_runtime();
  if (!rt) return state.SkipWithError("the runtime did not start");
  const int streams = static_cast<int>(state.range(0));
  const int tokens = bench_tokens();
  double total_tokens = 0, total_s = 0, gen_only_tps = 0;
  int runs = 0;
  for (auto _ : state) {
    std::vector<std::thread> threads;
    std::vector<Timings> timings(static_cast<size_t>(streams));
    std::atomic<bool> failed{false};
    // Distinct prompts so no stream reuses another's cache.
    const auto t0 = Clock::now();
    for (int s = 0; s < streams; ++s)
      threads.emplace_back([&, s] {
        GenerateRequest q;
        q.model = "m";
        q.prompt = fmt::format("// stream {} run {}\nint main() {{", s, runs);
        q.max_tokens = tokens;
        q.ignore_eog = true;
        auto r = rt->generate(q);
        if (!r) failed = true;
        else timings[static_cast<size_t>(s)] = r->timings;
      });
    for (auto& t : threads) t.join();
    const double wall = seconds_since(t0);
    if (failed) return state.SkipWithError("a request failed");
    state.SetIterationTime(wall);
    double gen = 0, first_to_last = 0;
    for (const auto& t : timings) {
      gen += double(t.generated_tokens);
      first_to_last = std::max(first_to_last, t.generation_s);
    }
    total_tokens += gen;
    total_s += wall;
    // Steady-state: tokens after each stream's first over the longest first-to-last span.
    gen_only_tps += first_to_last > 0 ? (gen - streams) / first_to_last : 0;
    ++runs;
  }
  state.counters["streams"] = streams;
  state.counters["agg_tok/s"] = total_tokens / total_s;
  state.counters["agg_gen_tok/s"] = gen_only_tps / runs;
  state.counters["per_stream_tok/s"] = gen_only_tps / runs / streams;
}
BENCHMARK(BM_AggregateGeneration)->Arg(1)->Arg(2)->Arg(4)->Iterations(3)->UseManualTime()->Unit(benchmark::kSecond);

std::pair<std::string, std::string> switch_models() {
  const std::string spec = env_or("CODEY_BENCH_SWITCH_MODELS", "");
  if (auto colon = spec.find(':'); colon != std::string::npos) return {spec.substr(0, colon), spec.substr(colon + 1)};
  std::string b = kModel;
  b.insert(b.size() - 5, "-b");
  return {kModel, b};
}

// Drops a file's pages from the page cache (clean pages; no root needed), so
// the next load reads it from disk.
void drop_from_page_cache(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return;
  ::fdatasync(fd);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
}

void BM_ModelSwitch(benchmark::State& state) {
  const bool cold = state.range(0) != 0;
  auto [a, b] = switch_models();
  for (const auto& p : {a, b})
    if (!std::filesystem::exists(p)) return state.SkipWithError(("no model at " + p).c_str());
  RuntimeConfig c;
  c.threads = bench_threads();
  c.models.push_back(model_config("a", a, 1));
  c.models.push_back(model_config("b", b, 1));
  // A budget that holds one of them, not both.
  auto rt0 = Runtime::create(c);
  if (!rt0) return state.SkipWithError(rt0.error().message.c_str());
  auto fa = (*rt0)->model_facts("a");
  auto fb = (*rt0)->model_facts("b");
  if (!fa || !fb) return state.SkipWithError("cannot inspect the models");
  rt0->reset();
  const uint64_t one = std::max(fa->bytes_at(512, 1), fb->bytes_at(512, 1));
  c.memory_budget = one + one / 2;
  auto rt = Runtime::create(c);
  if (!rt) return state.SkipWithError(rt.error().message.c_str());
  if (!(*rt)->load("a")) return state.SkipWithError("loading a failed");
  std::string next = "b";
  double load_s = 0, first_token_s = 0;
  int n = 0;
  for (auto _ : state) {
    state.PauseTiming();
    if (cold) drop_from_page_cache(next == "a" ? a : b);
    state.ResumeTiming();
    // A one-token request to the model not loaded: evict + load + prompt + first token.
    GenerateRequest q;
    q.model = next;
    q.prompt = "x";
    q.max_tokens = 1;
    q.ignore_eog = true;
    const auto t0 = Clock::now();
    auto r = (*rt)->generate(q);
    const double wall = seconds_since(t0);
    if (!r) return state.SkipWithError(r.error().message.c_str());
    state.SetIterationTime(wall);
    load_s += r->timings.load_s;
    first_token_s += wall;
    ++n;
    next = next == "a" ? "b" : "a";
  }
  const RuntimeStatus st = (*rt)->status();
  uint64_t evictions = 0;
  for (const auto& m : st.models) evictions += m.evictions;
  state.counters["load_s"] = load_s / n;
  state.counters["switch_to_first_token_s"] = first_token_s / n;
  state.counters["evictions"] = static_cast<double>(evictions);
  state.counters["model_bytes"] = static_cast<double>(fa->file_bytes);
  state.counters["load_GB/s"] = static_cast<double>(fa->file_bytes) / 1e9 / (load_s / n);
}
BENCHMARK(BM_ModelSwitch)->ArgName("cold")->Arg(0)->Arg(1)->Iterations(4)->UseManualTime()->Unit(benchmark::kSecond);

}  // namespace

BENCHMARK_MAIN();
