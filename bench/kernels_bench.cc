// Google Benchmark of the kernel tables on the shapes of a 1.3B llama
// (deepseek-coder-1.3b: n_embd 2048, n_ff 5504, vocab 32256): matmul per
// weight type for one token (weight GB/s: bandwidth bound) and for a 512-token
// batch (GOP/s: compute bound), attention at several context lengths, and the
// elementwise ops. Every ISA this CPU supports; `--benchmark_filter=avx512`.
// The machine's read bandwidth for the bench threads (codey/measure.h) is
// measured first, reported in the context and as the share of it each matmul
// streams (of_read_limit; the int8 peaks are the int8_peak/ISA benchmarks);
// CODEY_BENCH_LIMITS=0 skips it.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "codey/kernels.h"
#include "codey/measure.h"
#include "codey/quant.h"
#include "codey/thread_pool.h"

namespace codey::kernels {
namespace {

int bench_threads() {
  static const int n = [] {
    const char* e = std::getenv("CODEY_BENCH_THREADS");
    return e ? std::atoi(e) : 2;
  }();
  return n;
}

// Measured once before the benchmarks run (zero when skipped).
double g_read_gbps = 0;

ThreadPool& pool() {
  static ThreadPool p(bench_threads());
  return p;
}

struct Weights {
  std::vector<uint8_t> bytes, packed;
  Matrix m;
};

Weights make_weights(TensorType type, int64_t rows, int64_t cols, const KernelTable& kt) {
  Weights w;
  std::mt19937 rng(42);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const size_t rb = row_bytes(type, cols);
  w.bytes.resize(rb * static_cast<size_t>(rows));
  std::vector<float> row(static_cast<size_t>(cols));
  // Quantizing every row is slow for the K types: quantize 64 distinct rows
  // and repeat them (the kernels' speed does not depend on the values).
  for (int64_t r = 0; r < std::min<int64_t>(rows, 64); ++r) {
    for (auto& v : row) v = nd(rng);
    quantize_row(type, row.data(), w.bytes.data() + rb * static_cast<size_t>(r), cols);
  }
  for (int64_t r = 64; r < rows; ++r) std::memcpy(w.bytes.data() + rb * r, w.bytes.data() + rb * (r % 64), rb);
  w.m.type = type;
  w.m.rows = rows;
  w.m.cols = cols;
  w.m.data = w.bytes.data();
  w.m.row_bytes = rb;
  if (kt.repack) {
    w.packed = kt.repack(w.m);
    if (!w.packed.empty()) w.m.packed = w.packed.data();
  }
  return w;
}

void BM_Matmul(benchmark::State& state, std::string isa, TensorType type, int64_t rows, int64_t cols) {
  const KernelTable* kt = kernel_table(isa);
  if (!kt) {
    state.SkipWithError("ISA not supported");
    return;
  }
  const int64_t m = state.range(0);
  Weights w = make_weights(type, rows, cols, *kt);
  std::vector<float> x(static_cast<size_t>(m * cols));
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (auto& v : x) v = nd(rng);
  std::vector<float> y(static_cast<size_t>(m * rows));
  std::vector<uint8_t> ws(kt->matmul_workspace(type, m, cols, pool().n_threads()));
  for (auto _ : state) {
    kt->matmul(w.m, x.data(), m, cols, y.data(), rows, ws, pool());
    benchmark::ClobberMemory();
  }
  const double iters = static_cast<double>(state.iterations());
  state.counters["weight_GB/s"] =
      benchmark::Counter(iters * static_cast<double>(w.bytes.size()) / 1e9, benchmark::Counter::kIsRate);
  state.counters["GOP/s"] =
      benchmark::Counter(iters * 2.0 * static_cast<double>(rows * cols * m) / 1e9, benchmark::Counter::kIsRate);
  state.counters["tok/s"] = benchmark::Counter(iters * static_cast<double>(m), benchmark::Counter::kIsRate);
  if (g_read_gbps > 0)
    state.counters["of_read_limit"] = benchmark::Counter(
        iters * static_cast<double>(w.bytes.size()) / 1e9 / g_read_gbps, benchmark::Counter::kIsRate);
}

// The table's int8 multiply-accumulate peak on every pool thread
// (KernelTable::int8_peak): the matmuls' GOP/s divided by this is their
// share of what the instructions can do, measured in the same run.
void BM_Int8Peak(benchmark::State& state, std::string isa) {
  const KernelTable* kt = kernel_table(isa);
  if (!kt || !kt->int8_peak) {
    state.SkipWithError("no int8 peak for this ISA");
    return;
  }
  constexpr int64_t kIters = 1'000'000;
  double ops = 0.0;
  for (auto _ : state) {
    std::vector<double> per(static_cast<size_t>(pool().n_threads()));
    pool().parallel_for(pool().n_threads(), 1, [&](int64_t i0, int64_t, int) { per[static_cast<size_t>(i0)] = kt->int8_peak(kIters); });
    for (double o : per) ops += o;
  }
  state.counters["GOP/s"] = benchmark::Counter(ops / 1e9, benchmark::Counter::kIsRate);
}

void BM_Attention(benchmark::State& state, std::string isa, TensorType kv_type, int64_t n_head, int64_t n_head_kv,
                  int64_t dk, bool from_dram) {
  const KernelTable* kt = kernel_table(isa);
  if (!kt) {
    state.SkipWithError("ISA not supported");
    return;
  }
  const int64_t n_ctx = state.range(0), n_tokens = state.range(1);
  const size_t row = row_bytes(kv_type, dk);
  // K tiled, V plain rows (codey/kernels.h, KvView); n_ctx is a whole number of tiles here.
  std::vector<uint8_t> kc(static_cast<size_t>(n_head_kv * n_ctx) * row), vc(kc.size()), enc(row);
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> tmp(static_cast<size_t>(dk));
  for (int64_t i = 0; i < n_head_kv * n_ctx; ++i) {
    for (auto& v : tmp) v = nd(rng);
    kt->store_row(kv_type, tmp.data(), enc.data(), dk);
    write_tile_row(kv_type, enc.data(), dk, kc.data() + static_cast<size_t>(i / kKvTile * kKvTile) * row, i % kKvTile);
    for (auto& v : tmp) v = nd(rng);
    kt->store_row(kv_type, tmp.data(), vc.data() + static_cast<size_t>(i) * row, dk);
  }
  // Copies of the cache, one per "layer", used in turn: together larger than
  // the last-level cache, so that K/V stream from DRAM as they do in a model
  // at depth (24 layers of 8192 positions are 100 MB and more). The "hot"
  // variants reuse one copy: the arithmetic alone.
  const size_t layer_bytes = kc.size();
  const size_t n_layers = from_dram ? std::max<size_t>(1, (size_t{128} << 20) / (2 * layer_bytes)) : 1;
  kc.resize(n_layers * layer_bytes);
  vc.resize(kc.size());
  for (size_t l = 1; l < n_layers; ++l) {
    std::memcpy(kc.data() + l * layer_bytes, kc.data(), layer_bytes);
    std::memcpy(vc.data() + l * layer_bytes, vc.data(), layer_bytes);
  }
  // In 2 MiB pages, as the KV cache allocates them.
  HugePageArena arena;
  uint8_t* kh = arena.allocate(kc.size());
  uint8_t* vh = arena.allocate(vc.size());
  if (!kh || !vh) {
    state.SkipWithError("out of memory");
    return;
  }
  std::memcpy(kh, kc.data(), kc.size());
  std::memcpy(vh, vc.data(), vc.size());
  std::vector<float> q(static_cast<size_t>(n_tokens * n_head * dk)), out(q.size());
  for (auto& v : q) v = nd(rng);
  std::vector<int32_t> seq(static_cast<size_t>(n_tokens), 0), pos(static_cast<size_t>(n_tokens));
  for (int64_t t = 0; t < n_tokens; ++t) pos[static_cast<size_t>(t)] = static_cast<int32_t>(n_ctx - n_tokens + t);
  AttentionArgs a;
  a.q = q.data();
  a.q_stride = n_head * dk;
  a.out = out.data();
  a.out_stride = n_head * dk;
  a.n_tokens = n_tokens;
  a.n_head = n_head;
  a.n_head_kv = n_head_kv;
  a.head_dim_k = a.head_dim_v = dk;
  a.seq = seq.data();
  a.pos = pos.data();
  a.k = {kv_type, kh, 0, static_cast<size_t>(n_ctx) * row, row, true};
  a.v = {kv_type, vh, 0, static_cast<size_t>(n_ctx) * row, row, false};
  a.scale = 1.0f / std::sqrt(static_cast<float>(dk));
  size_t layer = 0;
  for (auto _ : state) {
    a.k.data = kh + layer * layer_bytes;
    a.v.data = vh + layer * layer_bytes;
    layer = (layer + 1) % n_layers;
    kt->attention(a, pool());
    benchmark::ClobberMemory();
  }
  state.counters["KV_GB/s"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * 2.0 * static_cast<double>(layer_bytes) / 1e9, benchmark::Counter::kIsRate);
}

void BM_Swiglu(benchmark::State& state, std::string isa) {
  const KernelTable* kt = kernel_table(isa);
  if (!kt) {
    state.SkipWithError("ISA not supported");
    return;
  }
  const int64_t n = 5504;
  std::vector<float> g(n, 0.3f), u(n, 1.1f), y(n);
  for (int64_t i = 0; i < n; ++i) g[static_cast<size_t>(i)] = std::sin(static_cast<float>(i)) * 4.0f;
  for (auto _ : state) {
    kt->swiglu(g.data(), u.data(), y.data(), n);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetItemsProcessed(state.iterations() * n);
}

void BM_RmsNorm(benchmark::State& state, std::string isa) {
  const KernelTable* kt = kernel_table(isa);
  if (!kt) {
    state.SkipWithError("ISA not supported");
    return;
  }
  const int64_t n = 2048;
  std::vector<float> x(n), w(n, 1.01f), y(n);
  for (int64_t i = 0; i < n; ++i) x[static_cast<size_t>(i)] = std::cos(static_cast<float>(i));
  for (auto _ : state) {
    kt->rms_norm(x.data(), w.data(), y.data(), n, 1e-6f);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetItemsProcessed(state.iterations() * n);
}

void register_all() {
  struct Shape {
    const char* name;
    TensorType type;
    int64_t rows, cols;
  };
  const Shape shapes[] = {
      {"attn_q.q4_K", TensorType::kQ4_K, 2048, 2048},   {"ffn_up.q4_K", TensorType::kQ4_K, 5504, 2048},
      {"attn_v.q6_K", TensorType::kQ6_K, 2048, 2048},   {"output.q6_K", TensorType::kQ6_K, 32256, 2048},
      {"ffn_down.q5_0", TensorType::kQ5_0, 2048, 5504}, {"ffn_down.q8_0", TensorType::kQ8_0, 2048, 5504},
      {"ffn_up.q8_0", TensorType::kQ8_0, 5504, 2048},   {"ffn_up.q4_0", TensorType::kQ4_0, 5504, 2048},
      {"ffn_up.q5_K", TensorType::kQ5_K, 5504, 2048},   {"ffn_up.q4_1", TensorType::kQ4_1, 5504, 2048},
      {"ffn_up.q5_1", TensorType::kQ5_1, 5504, 2048},   {"ffn_up.q3_K", TensorType::kQ3_K, 5504, 2048},
      {"ffn_up.q2_K", TensorType::kQ2_K, 5504, 2048},   {"ffn_up.iq4_nl", TensorType::kIQ4_NL, 5504, 2048},
      {"ffn_up.iq4_xs", TensorType::kIQ4_XS, 5504, 2048}, {"ffn_up.f16", TensorType::kF16, 5504, 2048},
  };
  for (auto isa : available_isas()) {
    const std::string is(isa);
    if (is != "ref") benchmark::RegisterBenchmark(("int8_peak/" + is).c_str(), BM_Int8Peak, is)->UseRealTime();
    for (const Shape& s : shapes) {
      auto* b = benchmark::RegisterBenchmark(("matmul/" + is + "/" + s.name).c_str(), BM_Matmul, is, s.type, s.rows,
                                             s.cols);
      b->Arg(1)->UseRealTime()->Unit(benchmark::kMicrosecond);
      if (is != "ref") b->Arg(512);
    }
    // Head shapes of deepseek-coder-1.3b (MHA), qwen2.5-coder-0.5b and -1.5b
    // (GQA) and gemma3-270m (one KV head).
    struct Heads {
      const char* name;
      int64_t n_head, n_head_kv, dk;
    };
    const Heads heads[] = {{"mha16_128", 16, 16, 128}, {"gqa14_2_64", 14, 2, 64}, {"gqa12_2_128", 12, 2, 128},
                           {"gqa4_1_256", 4, 1, 256}};
    for (TensorType kv : {TensorType::kF16, TensorType::kQ8_0})
      for (const Heads& h : heads) {
        const std::string name = "attention/" + is + "/" + std::string(type_name(kv)) + "/" + h.name;
        auto* b = benchmark::RegisterBenchmark(name.c_str(), BM_Attention, is, kv, h.n_head, h.n_head_kv, h.dk, true);
        b->Args({512, 1})->Args({8192, 1})->UseRealTime()->Unit(benchmark::kMicrosecond);
        if (h.n_head == h.n_head_kv) b->Args({512, 512});
        const std::string hot = "attention_hot/" + is + "/" + std::string(type_name(kv)) + "/" + h.name;
        benchmark::RegisterBenchmark(hot.c_str(), BM_Attention, is, kv, h.n_head, h.n_head_kv, h.dk, false)
            ->Args({512, 1})
            ->Args({8192, 1})
            ->UseRealTime()
            ->Unit(benchmark::kMicrosecond);
      }
    benchmark::RegisterBenchmark(("swiglu/" + is).c_str(), BM_Swiglu, is);
    benchmark::RegisterBenchmark(("rms_norm/" + is).c_str(), BM_RmsNorm, is);
  }
}

}  // namespace
}  // namespace codey::kernels

int main(int argc, char** argv) {
  const char* limits = std::getenv("CODEY_BENCH_LIMITS");
  if (!limits || std::string(limits) != "0") {
    using namespace codey;
    kernels::g_read_gbps = measure::read_bandwidth_gbps(kernels::bench_threads());
    benchmark::AddCustomContext("read_GB/s_limit", fmt::format("{:.1f}", kernels::g_read_gbps));
  }
  codey::kernels::register_all();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
