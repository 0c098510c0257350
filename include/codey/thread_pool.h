// A persistent pool of worker threads for the compute kernels: one decode step
// is dozens of short parallel ops, so workers spin briefly then block.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace codey {

class ThreadPool {
 public:
  // n_threads <= 0 means usable_cores(). The calling thread is thread 0, so
  // n_threads - 1 workers are started.
  explicit ThreadPool(int n_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int n_threads() const { return n_threads_; }

  // Runs fn(thread_index, n_threads) once on every thread of the pool and
  // returns when all have finished. Thread-safe: concurrent callers are
  // serialized. Must not be called from inside fn (no nesting).
  template <class Fn>
  void run(Fn&& fn) {
    auto tramp = [](void* ctx, int ith, int nth) { (*static_cast<std::remove_reference_t<Fn>*>(ctx))(ith, nth); };
    run_impl(tramp, const_cast<void*>(static_cast<const void*>(&fn)));
  }

  // Splits [0, n) into chunks of `grain` (>= 1) handed out dynamically, so a
  // slow (shared) core does not hold the others back; fn(begin, end, ith).
  // Each index is processed exactly once, by one thread.
  template <class Fn>
  void parallel_for(int64_t n, int64_t grain, Fn&& fn) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    const int64_t n_chunks = (n + grain - 1) / grain;
    if (n_threads_ == 1 || n_chunks == 1) {
      for (int64_t b = 0; b < n; b += grain) fn(b, b + grain < n ? b + grain : n, 0);
      return;
    }
    std::atomic<int64_t> next{0};
    run([&](int ith, int) {
      for (;;) {
        int64_t c = next.fetch_add(1, std::memory_order_relaxed);
        if (c >= n_chunks) break;
        int64_t b = c * grain;
        fn(b, b + grain < n ? b + grain : n, ith);
      }
    });
  }

 private:
  using Trampoline = void (*)(void* ctx, int ith, int nth);
  void run_impl(Trampoline fn, void* ctx);
  void worker_loop(int ith);

  int n_threads_ = 1;
  std::vector<std::thread> workers_;
  std::mutex run_mutex_;
  // A job is published by bumping generation_; workers that saw the old value
  // run it once. pending_ counts workers still running the current job.
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  Trampoline job_fn_ = nullptr;
  void* job_ctx_ = nullptr;
};

}  // namespace codey
