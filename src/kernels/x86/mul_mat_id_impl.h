// Mixture-of-experts matmul (ggml's mul_mat_id) for x86, built on the ISA's
// matmul: rows arrive grouped by expert, and each expert's block of rows is
// one call of the tiled GEMM / matvec on that expert's matrix (repacked or
// plain), so every routed expert is streamed once per batch and experts
// without rows are not read at all.
// Include only from src/kernels/x86/avx2*.cc / avx512*.cc (internal linkage).
#pragma once

#include <algorithm>

#include "kernels/x86/matmul_impl.h"

namespace codey::kernels::x86 {
namespace {

// Experts with at most this many rows (generation: one row each; a few
// sequences decoded together) run whole on one thread each, several experts
// in parallel: no barrier per expert, and each thread streams whole matrices
// with the matvec's prefetch. Experts with more rows (prompt processing) are
// split across the pool by the GEMM itself.
constexpr int64_t kExpertPerThreadMaxRows = 16;

inline size_t round_up64(size_t n) { return (n + 63) & ~size_t{63}; }

template <class S>
size_t mul_mat_id_workspace_impl(TensorType type, int64_t max_rows, int64_t k, int n_threads) {
  const size_t pooled = matmul_workspace_impl<S>(type, max_rows, k, n_threads);
  const size_t per_thread = round_up64(matmul_workspace_impl<S>(type, std::min(max_rows, kExpertPerThreadMaxRows), k, 1));
  return std::max(pooled, per_thread * static_cast<size_t>(n_threads)) + 64;
}

template <class S>
void mul_mat_id_impl(std::span<const Matrix> experts, const int64_t* offsets, const float* x, int64_t ldx, float* y,
                     int64_t ldy, std::span<uint8_t> workspace, ThreadPool& pool) {
  const auto n_expert = static_cast<int64_t>(experts.size());
  if (n_expert == 0) return;
  const int nth = pool.n_threads();
  int64_t max_rows = 0, n_small = 0;
  for (int64_t e = 0; e < n_expert; ++e) {
    const int64_t rows = offsets[e + 1] - offsets[e];
    max_rows = std::max(max_rows, rows);
    n_small += rows > 0 && rows <= kExpertPerThreadMaxRows;
  }
  if (max_rows == 0) return;
  CODEY_ASSERT(workspace.size() >= mul_mat_id_workspace_impl<S>(experts[0].type, max_rows, experts[0].cols, nth));
  // Whole experts per thread only when there are enough of them to share out.
  const bool per_thread = n_small >= 2 * nth || nth == 1;
  if (per_thread && n_small > 0) {
    const size_t slice =
        round_up64(matmul_workspace_impl<S>(experts[0].type, std::min(max_rows, kExpertPerThreadMaxRows), experts[0].cols, 1));
    uint8_t* base = align64(workspace.data());
    pool.parallel_for(n_expert, 1, [&](int64_t e0, int64_t e1, int ith) {
      static thread_local ThreadPool serial(1);  // runs inline on the calling thread
      const std::span<uint8_t> ws(base + static_cast<size_t>(ith) * slice, slice);
      for (int64_t e = e0; e < e1; ++e) {
        const int64_t r0 = offsets[e], rows = offsets[e + 1] - r0;
        if (rows == 0 || rows > kExpertPerThreadMaxRows) continue;
        matmul_impl<S>(experts[static_cast<size_t>(e)], x + r0 * ldx, rows, ldx, y + r0 * ldy, ldy, ws, serial);
      }
    });
  }
  for (int64_t e = 0; e < n_expert; ++e) {
    const int64_t r0 = offsets[e], rows = offsets[e + 1] - r0;
    if (rows == 0 || (per_thread && rows <= kExpertPerThreadMaxRows)) continue;
    matmul_impl<S>(experts[static_cast<size_t>(e)], x + r0 * ldx, rows, ldx, y + r0 * ldy, ldy, workspace, pool);
  }
}

}  // namespace
}  // namespace codey::kernels::x86
