// The machine's limits, measured: read bandwidth (generation is bound by it;
// AVX2 loads from measure/x86/ where dispatch offers the AVX2 table) and the
// int8 dot-product peak (prompt processing is bound by it; the kernel table's
// own loop, KernelTable::int8_peak).
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include "codey/kernels.h"
#include "codey/measure.h"
#include "measure/x86/limits.h"

namespace codey::measure {
namespace {

// Runs fn(i) on n threads started together; returns the wall time of the
// slowest (the aggregate rate is total work / that time), or with thread_cpu
// the largest CPU time a thread took (the rate the cores reach when they run
// it, also while other processes share them).
template <class Fn>
double run_threads(int n, Fn&& fn, bool thread_cpu = false) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> ts;
  std::vector<double> secs(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i)
    ts.emplace_back([&, i] {
      ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      const auto t0 = Clock::now();
      const double c0 = thread_cpu_seconds();
      fn(i);
      secs[static_cast<size_t>(i)] = thread_cpu ? thread_cpu_seconds() - c0 : seconds_since(t0);
    });
  while (ready.load() < n) std::this_thread::yield();
  go.store(true, std::memory_order_release);
  for (auto& t : ts) t.join();
  return *std::max_element(secs.begin(), secs.end());
}

uint64_t read_sum_plain(const uint8_t* p, size_t n) {
  uint64_t s[4] = {0, 0, 0, 0};
  for (size_t i = 0; i + 32 <= n; i += 32)
    for (int j = 0; j < 4; ++j) {
      uint64_t v;
      std::memcpy(&v, p + i + 8 * j, 8);
      s[j] += v;
    }
  return s[0] + s[1] + s[2] + s[3];
}

}  // namespace

double read_bandwidth_gbps(int n_threads) {
  if (n_threads < 1) return 0.0;
  const size_t bytes = size_t{1} << 30;
  void* mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return 0.0;
  madvise(mem, bytes, MADV_HUGEPAGE);
  auto* p = static_cast<uint8_t*>(mem);
  const size_t slice = bytes / static_cast<size_t>(n_threads) / 4096 * 4096;
  run_threads(n_threads, [&](int i) { std::memset(p + slice * static_cast<size_t>(i), i + 1, slice); });
  // The AVX2 file is compiled with the AVX2 table's flags: it runs where
  // dispatch offers that table (it checked the CPU for all of them).
  const bool simd = kernels::kernel_table("avx2") != nullptr;
  std::atomic<uint64_t> sink{0};
  double best = 0.0;
  for (int pass = 0; pass < 5; ++pass) {
    const double s = run_threads(n_threads, [&](int i) {
      const uint8_t* q = p + slice * static_cast<size_t>(i);
      sink.fetch_add(simd ? x86::read_sum_avx2(q, slice) : read_sum_plain(q, slice));
    });
    best = std::max(best, static_cast<double>(slice) * n_threads / s / 1e9);
  }
  munmap(mem, bytes);
  return best;
}

double int8_peak_gops(int n_threads) {
  if (n_threads < 1) return 0.0;
  // The table in use (CODEY_ISA=avx2 on an AVX-512 CPU is compared with what
  // AVX2 can do); the ref table with the best table the CPU has.
  const kernels::KernelTable* kt = &kernels::kernels();
  if (!kt->int8_peak) kt = kernels::kernel_table(kernels::available_isas().back());
  if (!kt || !kt->int8_peak) return 0.0;
  constexpr int64_t kIters = 4'000'000;
  double best = 0.0;
  for (int pass = 0; pass < 3; ++pass) {
    std::atomic<double> ops{0.0};
    const double s = run_threads(
        n_threads,
        [&](int) {
          const double o = kt->int8_peak(kIters);
          double cur = ops.load();
          while (!ops.compare_exchange_weak(cur, cur + o)) {
          }
        },
        /*thread_cpu=*/true);
    best = std::max(best, ops.load() / s / 1e9);
  }
  return best;
}

Limits measure_limits(int n_threads) {
  Limits l;
  l.read_gbps = read_bandwidth_gbps(n_threads);
  l.int8_gops = int8_peak_gops(n_threads);
  return l;
}

}  // namespace codey::measure
