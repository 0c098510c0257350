// Throughput of the reference quantizers and decoders per type (elements/s),
// on rows of N(0,1) data of a typical model width. `codey quantize` time is
// about n_params / (quantize rate * threads).
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "codey/quant.h"
#include "codey/tensor.h"

namespace {

constexpr int64_t kRow = 4096;
constexpr int kRows = 16;

const std::vector<float>& data() {
  static const std::vector<float> x = [] {
    std::mt19937 rng(1);
    std::normal_distribution<float> d(0.0f, 1.0f);
    std::vector<float> v(kRow * kRows);
    for (auto& e : v) e = d(rng);
    return v;
  }();
  return x;
}

void BM_Quantize(benchmark::State& state, codey::TensorType t) {
  const auto& x = data();
  std::vector<uint8_t> q(codey::row_bytes(t, kRow));
  int r = 0;
  for (auto _ : state) {
    codey::quantize_row(t, x.data() + (r++ % kRows) * kRow, q.data(), kRow);
    benchmark::DoNotOptimize(q.data());
  }
  state.SetItemsProcessed(state.iterations() * kRow);
}

void BM_Dequantize(benchmark::State& state, codey::TensorType t) {
  const auto& x = data();
  std::vector<uint8_t> q(codey::row_bytes(t, kRow));
  codey::quantize_row(t, x.data(), q.data(), kRow);
  std::vector<float> y(kRow);
  for (auto _ : state) {
    codey::dequantize_row(t, q.data(), y.data(), kRow);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetItemsProcessed(state.iterations() * kRow);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(q.size()));
}

#define CODEY_QUANT_BENCH(T)                                                       \
  BENCHMARK_CAPTURE(BM_Quantize, T, codey::TensorType::k##T)->Unit(benchmark::kMicrosecond); \
  BENCHMARK_CAPTURE(BM_Dequantize, T, codey::TensorType::k##T)->Unit(benchmark::kMicrosecond)

CODEY_QUANT_BENCH(F16);
CODEY_QUANT_BENCH(BF16);
CODEY_QUANT_BENCH(Q8_0);
CODEY_QUANT_BENCH(Q4_0);
CODEY_QUANT_BENCH(Q4_1);
CODEY_QUANT_BENCH(Q5_0);
CODEY_QUANT_BENCH(Q5_1);
CODEY_QUANT_BENCH(IQ4_NL);
CODEY_QUANT_BENCH(Q2_K);
CODEY_QUANT_BENCH(Q3_K);
CODEY_QUANT_BENCH(Q4_K);
CODEY_QUANT_BENCH(Q5_K);
CODEY_QUANT_BENCH(Q6_K);
CODEY_QUANT_BENCH(IQ4_XS);
CODEY_QUANT_BENCH(Q8_K);

}  // namespace

BENCHMARK_MAIN();
