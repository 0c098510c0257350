// `codey bench [--model FILE[,FILE]] [-p 512] [-n 128] [-d 0] [-t N] [-r 3]
// [--ctx N] [-b N] [--kv-type f16] [--isa NAME] [--json]`: llama-bench style
// prompt-processing (pp) and generation (tg) throughput, mean +- stddev over
// repetitions, time to first token, load time, peak memory, and how close the
// run is to the machine: GB/s against the read bandwidth measured here (tg is
// bandwidth bound) and GOP/s against the measured int8 dot-product peak (pp is
// compute bound). List arguments sweep (`-t 1,2 -p 128,512`). Without --model
// it benchmarks a synthesized model (cached under $XDG_CACHE_HOME/codey).
#include <immintrin.h>
#include <sys/mman.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <map>
#include <random>
#include <sstream>
#include <thread>

#include "cli/command.h"
#include "codey/convert.h"
#include "codey/model.h"

namespace codey::cli {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct BenchOptions {
  std::string models;
  std::string prompts = "512";
  std::string gens = "128";
  std::string depths = "0";
  std::string threads;
  int reps = 3;
  int64_t ctx = 0;
  int64_t batch = 512;
  std::string kv_type = "f16";
  std::string isa;
  std::string synth = "qwen2.5-coder-0.5b:Q4_K_M";
  bool json = false;
  bool no_limits = false;
};

template <class T>
Result<std::vector<T>> parse_list(const std::string& text, const char* what) {
  std::vector<T> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    char* end = nullptr;
    const long long v = std::strtoll(item.c_str(), &end, 10);
    if (*end != '\0' || v < 0) return make_error(ErrorCode::kInvalidArgument, "{}: '{}' is not a non-negative integer", what, item);
    out.push_back(static_cast<T>(v));
  }
  if (out.empty()) return make_error(ErrorCode::kInvalidArgument, "{}: empty list", what);
  return out;
}

// ---- machine limits ---------------------------------------------------------

// Runs fn(ith) on n threads started together; returns the wall time of the
// slowest (the aggregate rate is total work / that time).
template <class Fn>
double run_threads(int n, Fn&& fn) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> ts;
  std::vector<double> secs(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i)
    ts.emplace_back([&, i] {
      ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      const auto t0 = Clock::now();
      fn(i);
      secs[static_cast<size_t>(i)] = seconds_since(t0);
    });
  while (ready.load() < n) std::this_thread::yield();
  go.store(true, std::memory_order_release);
  for (auto& t : ts) t.join();
  return *std::max_element(secs.begin(), secs.end());
}

__attribute__((target("avx2"))) uint64_t read_avx2(const uint8_t* p, size_t n) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 128 <= n; i += 128) {
    a0 = _mm256_add_epi64(a0, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i)));
    a1 = _mm256_add_epi64(a1, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
    a2 = _mm256_add_epi64(a2, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
    a3 = _mm256_add_epi64(a3, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
  }
  const __m256i s = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
  return static_cast<uint64_t>(_mm256_extract_epi64(s, 0) + _mm256_extract_epi64(s, 3));
}

uint64_t read_plain(const uint8_t* p, size_t n) {
  uint64_t s[4] = {0, 0, 0, 0};
  for (size_t i = 0; i + 32 <= n; i += 32)
    for (int j = 0; j < 4; ++j) {
      uint64_t v;
      std::memcpy(&v, p + i + 8 * j, 8);
      s[j] += v;
    }
  return s[0] + s[1] + s[2] + s[3];
}

// Read bandwidth of n threads streaming disjoint slices of a buffer far larger
// than the caches (transparent huge pages requested): best of 5 passes.
double measure_read_gbps(int n_threads) {
  const size_t bytes = size_t{1} << 30;
  void* mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return 0.0;
  madvise(mem, bytes, MADV_HUGEPAGE);
  auto* p = static_cast<uint8_t*>(mem);
  const size_t slice = bytes / static_cast<size_t>(n_threads) / 4096 * 4096;
  run_threads(n_threads, [&](int i) { std::memset(p + slice * static_cast<size_t>(i), i + 1, slice); });
  const bool avx2 = cpu_features().avx2;
  std::atomic<uint64_t> sink{0};
  double best = 0.0;
  for (int pass = 0; pass < 5; ++pass) {
    const double s = run_threads(n_threads, [&](int i) {
      const uint8_t* q = p + slice * static_cast<size_t>(i);
      sink.fetch_add(avx2 ? read_avx2(q, slice) : read_plain(q, slice));
    });
    best = std::max(best, static_cast<double>(slice) * n_threads / s / 1e9);
  }
  munmap(mem, bytes);
  return best;
}

// int8 dot-product peak of n threads for the kernel table in use (its
// widest multiply-accumulate, KernelTable::int8_peak: vpdpbusd zmm for
// avx512, vpmaddubsw ymm + vpaddw for avx2, so that CODEY_ISA=avx2 on an
// AVX-512 CPU is compared with what AVX2 can do); the ref table is compared
// with the best table the CPU has.
double measure_int8_gops(int n_threads) {
  const kernels::KernelTable* kt = &kernels::kernels();
  if (!kt->int8_peak) kt = kernels::kernel_table(kernels::available_isas().back());
  if (!kt || !kt->int8_peak) return 0.0;
  constexpr int64_t kIters = 4'000'000;
  double best = 0.0;
  for (int pass = 0; pass < 3; ++pass) {
    std::atomic<double> ops{0.0};
    const double s = run_threads(n_threads, [&](int) {
      const double o = kt->int8_peak(kIters);
      double cur = ops.load();
      while (!ops.compare_exchange_weak(cur, cur + o)) {
      }
    });
    best = std::max(best, ops.load() / s / 1e9);
  }
  return best;
}

struct Limits {
  double read_gbps = 0, int8_gops = 0;
};

// ---- the benchmark -----------------------------------------------------------

struct Stats {
  double mean = 0, stddev = 0;
};

Stats stats(const std::vector<double>& v) {
  Stats s;
  for (double x : v) s.mean += x;
  s.mean /= static_cast<double>(v.size());
  if (v.size() > 1) {
    double ss = 0;
    for (double x : v) ss += (x - s.mean) * (x - s.mean);
    s.stddev = std::sqrt(ss / static_cast<double>(v.size() - 1));
  }
  return s;
}

struct Record {
  std::string model_path, model_type;
  uint64_t model_size = 0, n_params = 0;
  int n_threads = 0;
  int64_t n_prompt = 0, n_gen = 0, n_depth = 0, n_batch = 0;
  std::string kv_type, isa;
  std::vector<double> samples_s;  // seconds per repetition
  double load_s = 0;
  uint64_t peak_rss = 0;
  double ops_per_rep = 0;    // pp: integer/float ops of one repetition
  double bytes_per_rep = 0;  // tg: bytes read from memory in one repetition
  Limits lim;

  int64_t tokens() const { return n_prompt > 0 ? n_prompt : n_gen; }
  std::string test_name() const {
    std::string t = n_prompt > 0 ? fmt::format("pp{}", n_prompt) : fmt::format("tg{}", n_gen);
    if (n_depth > 0) t += fmt::format(" @ d{}", n_depth);
    return t;
  }
};

std::string model_type(const Model& m) {
  static const char* kFtypes[] = {"F32",    "F16",     "Q4_0",   "Q4_1",   "", "",      "",       "Q8_0",
                                  "Q5_0",   "Q5_1",    "Q2_K",   "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_K_S", "Q4_K_M",
                                  "Q5_K_S", "Q5_K_M",  "Q6_K",   "IQ2_XXS", "IQ2_XS", "Q2_K_S", "IQ3_XS", "IQ3_XXS",
                                  "IQ1_S",  "IQ4_NL",  "IQ3_S",  "IQ3_M",  "IQ2_S",  "IQ2_M",  "IQ4_XS", "IQ1_M",
                                  "BF16"};
  std::string ft;
  auto v = m.gguf().get_u64_or("general.file_type", 1000);
  if (v && *v < std::size(kFtypes)) ft = kFtypes[*v];
  if (ft.empty()) ft = "?";
  const double p = static_cast<double>(m.n_params());
  const std::string size = p >= 1e9 ? fmt::format("{:.1f}B", p / 1e9) : fmt::format("{:.0f}M", p / 1e6);
  return fmt::format("{} {} {}", m.hparams().arch, size, ft);
}

// Bytes one generation step reads: every matrix (of a mixture, the routed
// experts), one embedding row, plus the K and V rows of the positions
// attended to (kv_bytes_per_position).
double step_weight_bytes(const Model& m) { return static_cast<double>(m.active_weight_bytes()); }

double kv_bytes_per_position(const Model& m, TensorType kv) {
  const HParams& hp = m.hparams();
  return static_cast<double>(hp.n_layer * hp.n_head_kv) *
         static_cast<double>(row_bytes(kv, hp.head_dim_k) + row_bytes(kv, hp.head_dim_v));
}

// Ops of processing tokens at positions [d, d + p): 2 per multiply-add of
// every matrix, attention's q.k and p.v, and the output layer for the last.
double prompt_ops(const Model& m, int64_t d, int64_t p) {
  const HParams& hp = m.hparams();
  const ModelWeights& w = m.weights();
  // A token multiplies by n_expert_used of each layer's n_expert experts.
  const double expert_share =
      hp.n_expert > 0 ? static_cast<double>(hp.n_expert_used) / static_cast<double>(hp.n_expert) : 1.0;
  double per_token = 0;
  for (const WeightMatrix& x : w.matrices())
    if (x.layer >= 0)
      per_token += 2.0 * static_cast<double>(x.matrix->rows) * static_cast<double>(x.matrix->cols) *
                   (x.expert ? expert_share : 1.0);
  const double attended = static_cast<double>(p) * static_cast<double>(d) + static_cast<double>(p) * static_cast<double>(p + 1) / 2;
  const double attn = 2.0 * static_cast<double>(hp.n_layer * hp.n_head * (hp.head_dim_k + hp.head_dim_v)) * attended;
  return per_token * static_cast<double>(p) + attn + 2.0 * static_cast<double>(w.output.rows * w.output.cols);
}

int32_t argmax(std::span<const float> v) {
  return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

// Runs `n` tokens of sequence 0 in batches of n_batch; the last token asks for
// logits and is "sampled" (argmax), as the first token of an answer would be.
Result<int32_t> prefill(Context& ctx, const std::vector<int32_t>& toks, int64_t n_batch) {
  Batch b;
  int32_t next = 0;
  for (size_t i = 0; i < toks.size(); i += static_cast<size_t>(n_batch)) {
    b.clear();
    const size_t end = std::min(toks.size(), i + static_cast<size_t>(n_batch));
    for (size_t j = i; j < end; ++j) b.add(toks[j], 0, j + 1 == toks.size());
    auto logits = ctx.decode(b);
    if (!logits) return std::unexpected(std::move(logits.error()));
    if (end == toks.size()) next = argmax(*logits);
  }
  return next;
}

Result<void> generate(Context& ctx, int32_t first, int64_t n) {
  Batch b;
  int32_t tok = first;
  for (int64_t i = 0; i < n; ++i) {
    b.clear();
    b.add(tok, 0, true);
    auto logits = ctx.decode(b);
    if (!logits) return std::unexpected(std::move(logits.error()));
    tok = argmax(*logits);
  }
  return {};
}

std::vector<int32_t> random_tokens(int64_t n, int64_t n_vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> d(0, static_cast<int32_t>(n_vocab - 1));
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& x : t) x = d(rng);
  return t;
}

std::string default_model_path(const std::string& spec, bool quiet) {
  const auto colon = spec.find(':');
  const std::string shape = spec.substr(0, colon), type = colon == std::string::npos ? "Q4_K_M" : spec.substr(colon + 1);
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  const char* home = std::getenv("HOME");
  const std::filesystem::path dir = xdg && *xdg ? std::filesystem::path(xdg) / "codey"
                                    : home && *home ? std::filesystem::path(home) / ".cache" / "codey"
                                                    : std::filesystem::temp_directory_path() / "codey";
  const auto path = dir / fmt::format("bench-{}-{}.gguf", shape, type);
  if (std::filesystem::exists(path)) return path.string();
  const ModelShape* s = find_model_shape(shape);
  if (!s) return {};
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (!quiet) std::fprintf(stderr, "codey bench: no --model given; synthesizing %s %s into %s\n", shape.c_str(), type.c_str(), path.string().c_str());
  SynthOptions so;
  so.shape = *s;
  so.target = type;
  so.output = path.string() + ".tmp";
  auto r = synth_model(so);
  if (!r) {
    std::fprintf(stderr, "codey bench: %s\n", r.error().message.c_str());
    return {};
  }
  std::filesystem::rename(so.output, path, ec);
  return ec ? std::string{} : path.string();
}

void print_markdown(const std::vector<Record>& recs) {
  std::printf("| model | size | params | isa | threads | test | t/s | TTFT ms | achieved | of limit |\n");
  std::printf("|---|---:|---:|---|---:|---|---:|---:|---:|---:|\n");
  for (const Record& r : recs) {
    std::vector<double> ts;
    for (double s : r.samples_s) ts.push_back(static_cast<double>(r.tokens()) / s);
    const Stats st = stats(ts);
    const Stats sec = stats(r.samples_s);
    std::string ttft = "", achieved, share;
    if (r.n_prompt > 0) {
      ttft = fmt::format("{:.0f}", sec.mean * 1e3);
      const double gops = r.ops_per_rep / sec.mean / 1e9;
      achieved = fmt::format("{:.0f} GOP/s", gops);
      share = r.lim.int8_gops > 0 ? fmt::format("{:.0f}% of {:.0f}", 100 * gops / r.lim.int8_gops, r.lim.int8_gops) : "-";
    } else {
      const double gbps = r.bytes_per_rep / sec.mean / 1e9;
      achieved = fmt::format("{:.1f} GB/s", gbps);
      share = r.lim.read_gbps > 0 ? fmt::format("{:.0f}% of {:.1f}", 100 * gbps / r.lim.read_gbps, r.lim.read_gbps) : "-";
    }
    std::printf("| %s | %s | %s | %s | %d | %s | %.2f ± %.2f | %s | %s | %s |\n", r.model_type.c_str(),
                format_bytes(r.model_size).c_str(), fmt::format("{:.2f} B", static_cast<double>(r.n_params) / 1e9).c_str(),
                r.isa.c_str(), r.n_threads, r.test_name().c_str(), st.mean, st.stddev, ttft.c_str(), achieved.c_str(),
                share.c_str());
  }
  std::map<std::string, std::pair<double, uint64_t>> per_model;
  for (const Record& r : recs) per_model[r.model_path] = {r.load_s, r.peak_rss};
  for (const auto& [path, lp] : per_model)
    std::printf("\n%s: load %.2f s, peak memory %s", path.c_str(), lp.first, format_bytes(lp.second).c_str());
  if (!recs.empty())
    std::printf("\nlimits: pp against the measured int8 dot-product peak (GOP/s), tg against the measured read bandwidth "
                "(GB/s; bytes = weights + KV rows read per token)\n");
}

nlohmann::json to_json(const std::vector<Record>& recs) {
  nlohmann::json arr = nlohmann::json::array();
  char now[32];
  const std::time_t t = std::time(nullptr);
  std::strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  for (const Record& r : recs) {
    std::vector<double> ns, ts;
    for (double s : r.samples_s) {
      ns.push_back(s * 1e9);
      ts.push_back(static_cast<double>(r.tokens()) / s);
    }
    const Stats sn = stats(ns), st = stats(ts);
    nlohmann::json j;
    j["build_commit"] = CODEY_VERSION;
    j["build_number"] = 0;
    j["cpu_info"] = cpu_features().brand;
    j["gpu_info"] = "";
    j["backends"] = "CPU";
    j["model_filename"] = r.model_path;
    j["model_type"] = r.model_type;
    j["model_size"] = r.model_size;
    j["model_n_params"] = r.n_params;
    j["n_batch"] = r.n_batch;
    j["n_ubatch"] = r.n_batch;
    j["n_threads"] = r.n_threads;
    j["type_k"] = r.kv_type;
    j["type_v"] = r.kv_type;
    j["n_gpu_layers"] = 0;
    j["flash_attn"] = true;
    j["use_mmap"] = true;
    j["embeddings"] = false;
    j["n_prompt"] = r.n_prompt;
    j["n_gen"] = r.n_gen;
    j["n_depth"] = r.n_depth;
    j["test_time"] = now;
    j["avg_ns"] = static_cast<uint64_t>(sn.mean);
    j["stddev_ns"] = static_cast<uint64_t>(sn.stddev);
    j["avg_ts"] = st.mean;
    j["stddev_ts"] = st.stddev;
    j["samples_ns"] = ns;
    j["samples_ts"] = ts;
    // codey's additions
    j["isa"] = r.isa;
    j["load_ms"] = r.load_s * 1e3;
    j["peak_rss_bytes"] = r.peak_rss;
    j["mem_read_gbps"] = r.lim.read_gbps;
    j["int8_peak_gops"] = r.lim.int8_gops;
    if (r.n_prompt > 0) {
      const double gops = r.ops_per_rep / (sn.mean / 1e9) / 1e9;
      j["ttft_ms"] = sn.mean / 1e6;
      j["gops"] = gops;
      j["limit_share"] = r.lim.int8_gops > 0 ? gops / r.lim.int8_gops : 0.0;
    } else {
      const double gbps = r.bytes_per_rep / (sn.mean / 1e9) / 1e9;
      j["gbps"] = gbps;
      j["limit_share"] = r.lim.read_gbps > 0 ? gbps / r.lim.read_gbps : 0.0;
    }
    arr.push_back(j);
  }
  return arr;
}

int run_bench(const BenchOptions& o) {
  if (!o.isa.empty()) setenv("CODEY_ISA", o.isa.c_str(), 1);  // before the kernel table is first chosen
  auto prompts = parse_list<int64_t>(o.prompts, "-p");
  auto gens = parse_list<int64_t>(o.gens, "-n");
  auto depths = parse_list<int64_t>(o.depths, "-d");
  auto threads = parse_list<int>(o.threads.empty() ? std::to_string(usable_cores()) : o.threads, "-t");
  if (!prompts) return fail(prompts.error().message);
  if (!gens) return fail(gens.error().message);
  if (!depths) return fail(depths.error().message);
  if (!threads) return fail(threads.error().message);
  for (int t : *threads)
    if (t < 1) return fail("-t: thread counts must be at least 1");
  if (o.reps < 1) return fail("-r must be at least 1");
  if (o.batch < 1) return fail("-b must be at least 1");
  auto kv = type_from_name(o.kv_type);
  if (!kv || (*kv != TensorType::kF16 && *kv != TensorType::kQ8_0 && *kv != TensorType::kF32 && *kv != TensorType::kBF16))
    return fail(fmt::format("--kv-type must be f16, q8_0, bf16 or f32, not '{}'", o.kv_type));

  std::vector<std::string> paths;
  if (o.models.empty()) {
    const std::string p = default_model_path(o.synth, o.json);
    if (p.empty()) return fail(fmt::format("--synth {}: cannot synthesize a model to benchmark", o.synth));
    paths.push_back(p);
  } else {
    std::stringstream ss(o.models);
    std::string item;
    while (std::getline(ss, item, ','))
      if (!item.empty()) paths.push_back(item);
  }

  std::vector<Record> recs;
  std::map<int, Limits> limits;
  for (const std::string& path : paths) {
    const auto t_load = Clock::now();
    auto model = Model::load(path);
    if (!model) return fail(model.error().message);
    const double load_s = seconds_since(t_load);
    const Model& m = **model;
    const double wbytes = step_weight_bytes(m);
    const double kv_pos = kv_bytes_per_position(m, *kv);
    const size_t first_rec = recs.size();
    for (int nt : *threads) {
      int64_t need = 1;
      for (int64_t d : *depths)
        for (int64_t p : *prompts) need = std::max(need, d + p);
      for (int64_t d : *depths)
        for (int64_t g : *gens) need = std::max(need, d + g + 1);
      ContextParams cp;
      cp.n_ctx = o.ctx > 0 ? o.ctx : need;
      cp.n_batch = o.batch;
      cp.n_threads = nt;
      cp.kv_type = *kv;
      if (cp.n_ctx < need)
        return fail(fmt::format("--ctx {} is too small for the tests (they need {} positions)", cp.n_ctx, need));
      auto ctx = Context::create(m, cp);
      if (!ctx) return fail(ctx.error().message);
      Context& c = **ctx;
      for (int64_t d : *depths) {
        // The depth's tokens are evaluated once; each repetition truncates back to them.
        c.kv().clear(0);
        const auto ctx_toks = random_tokens(d, m.hparams().n_vocab, 7);
        if (d > 0) {
          if (!o.json) std::fprintf(stderr, "codey bench: filling %lld positions of context...\n", static_cast<long long>(d));
          auto r = prefill(c, ctx_toks, o.batch);
          if (!r) return fail(r.error().message);
        }
        auto base = [&](int64_t p, int64_t g) {
          Record r;
          r.model_path = path;
          r.model_type = model_type(m);
          r.model_size = m.weight_bytes();
          r.n_params = m.n_params();
          r.n_threads = nt;
          r.n_prompt = p;
          r.n_gen = g;
          r.n_depth = d;
          r.n_batch = o.batch;
          r.kv_type = std::string(type_name(*kv));
          r.isa = kernels::kernels().name;
          r.load_s = load_s;
          return r;
        };
        for (int64_t p : *prompts) {
          if (p == 0) continue;
          Record r = base(p, 0);
          r.ops_per_rep = prompt_ops(m, d, p);
          const auto toks = random_tokens(p, m.hparams().n_vocab, 11);
          for (int rep = -1; rep < o.reps; ++rep) {  // rep -1: warm-up
            if (auto s = c.kv().truncate(0, d); !s) return fail(s.error().message);
            const auto t0 = Clock::now();
            auto first = prefill(c, toks, o.batch);
            const double s = seconds_since(t0);
            if (!first) return fail(first.error().message);
            if (rep >= 0) r.samples_s.push_back(s);
          }
          recs.push_back(std::move(r));
        }
        for (int64_t g : *gens) {
          if (g == 0) continue;
          Record r = base(0, g);
          // Weights every step, plus the KV rows of positions d+1 .. d+g.
          r.bytes_per_rep = wbytes * static_cast<double>(g) +
                            kv_pos * (static_cast<double>(g) * static_cast<double>(d) + static_cast<double>(g) * static_cast<double>(g + 1) / 2);
          for (int rep = -1; rep < o.reps; ++rep) {
            if (auto s = c.kv().truncate(0, d); !s) return fail(s.error().message);
            const auto t0 = Clock::now();
            auto ok = generate(c, static_cast<int32_t>(rep + 2), rep < 0 ? std::min<int64_t>(g, 8) : g);
            const double s = seconds_since(t0);
            if (!ok) return fail(ok.error().message);
            if (rep >= 0) r.samples_s.push_back(s);
          }
          recs.push_back(std::move(r));
        }
      }
    }
    const uint64_t peak = peak_rss_bytes();
    for (size_t i = first_rec; i < recs.size(); ++i) recs[i].peak_rss = peak;
  }
  // Machine limits last, so the model's peak memory does not include the
  // bandwidth test's buffer.
  if (!o.no_limits)
    for (Record& r : recs) {
      auto it = limits.find(r.n_threads);
      if (it == limits.end()) {
        Limits l;
        l.read_gbps = measure_read_gbps(r.n_threads);
        l.int8_gops = measure_int8_gops(r.n_threads);
        it = limits.emplace(r.n_threads, l).first;
      }
      r.lim = it->second;
    }
  if (o.json)
    std::printf("%s\n", to_json(recs).dump(2).c_str());
  else
    print_markdown(recs);
  return 0;
}

CommandRunner setup(CLI::App& root) {
  auto o = std::make_shared<BenchOptions>();
  auto* cmd = root.add_subcommand("bench", "Measure prompt processing and generation speed (llama-bench style)");
  cmd->add_option("--model,-m", o->models, "GGUF model file(s), comma-separated (default: a synthesized model)");
  cmd->add_option("--n-prompt,-p", o->prompts, "Prompt lengths to process, comma-separated (default 512; 0 = none)");
  cmd->add_option("--n-gen,-n", o->gens, "Tokens to generate, comma-separated (default 128; 0 = none)");
  cmd->add_option("--n-depth,-d", o->depths, "Context already filled before each test, comma-separated (default 0)");
  cmd->add_option("--threads,-t", o->threads, "Thread counts, comma-separated (default: usable cores)");
  cmd->add_option("--repetitions,-r", o->reps, "Repetitions of each test (default 3)");
  cmd->add_option("--ctx,-c", o->ctx, "Context size (default: what the tests need)");
  cmd->add_option("--batch-size,-b", o->batch, "Tokens per forward pass when processing a prompt (default 512)");
  cmd->add_option("--kv-type", o->kv_type, "KV cache type: f16 (default), q8_0, bf16, f32");
  cmd->add_option("--isa", o->isa, "Kernel table: ref, avx2, avx512 (default: the best this CPU runs)");
  cmd->add_option("--synth", o->synth, "Shape[:type] synthesized when no --model is given (default qwen2.5-coder-0.5b:Q4_K_M)");
  cmd->add_flag("--json", o->json, "JSON array of records (llama-bench field names) instead of a Markdown table");
  cmd->add_flag("--no-limits", o->no_limits, "Skip measuring the machine's bandwidth and int8 peak");
  return [o] { return run_bench(*o); };
}

CODEY_REGISTER_COMMAND(bench, setup);

}  // namespace
}  // namespace codey::cli
