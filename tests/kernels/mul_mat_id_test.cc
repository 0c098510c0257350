// mul_mat_id (the mixture-of-experts matmul over rows grouped by expert) on
// every ISA this CPU runs: experts as slices of one 3-D tensor, uneven row
// counts (none, one, more than a thread's share, all experts with one row as
// in generation), plain and repacked, 1-3 threads. Each expert's block must
// be exactly what the table's own matmul gives for it (same bits), and close
// to the scalar reference; experts without rows are never read.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "codey/kernels.h"
#include "codey/quant.h"
#include "codey/thread_pool.h"
#include "kernels/ref/ref.h"

namespace codey::kernels {
namespace {

// n_expert matrices [rows][cols] stored back to back like a GGUF 3-D tensor.
struct Experts {
  std::vector<uint8_t> bytes;
  std::vector<Matrix> m;
  std::vector<std::vector<uint8_t>> packed;
};

Experts make_experts(TensorType type, int64_t n_expert, int64_t rows, int64_t cols, std::mt19937& rng) {
  Experts e;
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const size_t rb = row_bytes(type, cols);
  e.bytes.resize(rb * static_cast<size_t>(rows * n_expert));
  std::vector<float> row(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows * n_expert; ++r) {
    for (auto& v : row) v = nd(rng) * (r % 3 == 0 ? 2.5f : 1.0f) + (r % 5 == 0 ? 0.5f : 0.0f);
    quantize_row(type, row.data(), e.bytes.data() + rb * static_cast<size_t>(r), cols);
  }
  for (int64_t x = 0; x < n_expert; ++x) {
    Matrix m;
    m.type = type;
    m.rows = rows;
    m.cols = cols;
    m.data = e.bytes.data() + rb * static_cast<size_t>(rows * x);
    m.row_bytes = rb;
    e.m.push_back(m);
  }
  return e;
}

void repack(const KernelTable& kt, Experts& e) {
  if (!kt.repack) return;
  for (Matrix& m : e.m) {
    e.packed.push_back(kt.repack(m));
    m.packed = e.packed.back().empty() ? nullptr : e.packed.back().data();
  }
}

std::vector<int64_t> offsets_of(const std::vector<int64_t>& counts) {
  std::vector<int64_t> off(counts.size() + 1, 0);
  for (size_t e = 0; e < counts.size(); ++e) off[e + 1] = off[e] + counts[e];
  return off;
}

std::vector<float> run(const KernelTable& kt, const std::vector<Matrix>& experts, const std::vector<int64_t>& off,
                       const std::vector<float>& x, int64_t ldx, int64_t ldy, ThreadPool& pool) {
  int64_t max_rows = 0;
  for (size_t e = 0; e + 1 < off.size(); ++e) max_rows = std::max(max_rows, off[e + 1] - off[e]);
  std::vector<uint8_t> ws(kt.mul_mat_id_workspace(experts[0].type, std::max<int64_t>(max_rows, 1), experts[0].cols,
                                                  pool.n_threads()));
  std::vector<float> y(static_cast<size_t>(off.back() * ldy), 12345.0f);
  kt.mul_mat_id(experts, off.data(), x.data(), ldx, y.data(), ldy, ws, pool);
  return y;
}

void check(TensorType type, int64_t cols) {
  std::mt19937 rng(99 + static_cast<int>(type));
  std::normal_distribution<float> nd(0.0f, 1.0f);
  constexpr int64_t kExperts = 6, kRows = 40;  // 40: partial row groups of 16 and 8
  Experts plain = make_experts(type, kExperts, kRows, cols, rng);
  const std::vector<std::vector<int64_t>> distributions = {
      {0, 1, 3, 0, 17, 2},   // mixed, some experts unused
      {1, 1, 1, 1, 1, 1},    // generation: one row per routed expert
      {0, 0, 70, 0, 0, 5},   // one expert with many rows (split across the pool)
      {0, 0, 0, 1, 0, 0},
  };
  ThreadPool pool1(1), pool2(2), pool3(3);
  for (auto isa : available_isas()) {
    const KernelTable& kt = *kernel_table(isa);
    Experts packed = plain;
    for (Matrix& m : packed.m) m.data = packed.bytes.data() + (m.data - plain.bytes.data());
    repack(kt, packed);
    for (const auto& counts : distributions) {
      const auto off = offsets_of(counts);
      const int64_t n = off.back(), ldx = cols + 16, ldy = kRows + 5;
      SCOPED_TRACE(fmt::format("{} {} cols {} rows {}", isa, type_name(type), cols, n));
      std::vector<float> x(static_cast<size_t>(n * ldx));
      for (auto& v : x) v = nd(rng);
      // Expected: each expert's block through the same table's matmul.
      std::vector<float> expected(static_cast<size_t>(n * ldy), 12345.0f);
      for (int64_t e = 0; e < kExperts; ++e) {
        const int64_t rows = counts[static_cast<size_t>(e)];
        if (rows == 0) continue;
        std::vector<uint8_t> ws(kt.matmul_workspace(type, rows, cols, 2));
        kt.matmul(packed.m[static_cast<size_t>(e)], x.data() + off[static_cast<size_t>(e)] * ldx, rows, ldx,
                  expected.data() + off[static_cast<size_t>(e)] * ldy, ldy, ws, pool2);
      }
      const auto ref = run(ref_kernel_table(), plain.m, off, x, ldx, ldy, pool2);
      for (bool repacked : {false, true}) {
        const std::vector<Matrix>& experts = repacked ? packed.m : plain.m;
        for (ThreadPool* pool : {&pool1, &pool2, &pool3}) {
          SCOPED_TRACE(fmt::format("{}, {} threads", repacked ? "repacked" : "plain", pool->n_threads()));
          const auto y = run(kt, experts, off, x, ldx, ldy, *pool);
          ASSERT_EQ(y, expected) << "differs from the per-expert matmul (or wrote the padding)";
          double num = 0, den = 0;
          for (size_t i = 0; i < y.size(); ++i) {
            if (i % static_cast<size_t>(ldy) >= static_cast<size_t>(kRows)) continue;
            num += (double(y[i]) - ref[i]) * (double(y[i]) - ref[i]);
            den += double(ref[i]) * ref[i];
          }
          EXPECT_LT(std::sqrt(num / std::max(den, 1e-30)), 1e-5);
        }
      }
    }
    // Experts without rows are not read: their data may be anything, even absent.
    Experts holes = plain;
    for (int64_t e : {0, 3, 4}) holes.m[static_cast<size_t>(e)].data = nullptr;
    const auto off = offsets_of({0, 2, 1, 0, 0, 1});
    std::vector<float> x(static_cast<size_t>(4 * cols), 0.25f);
    const auto a = run(kt, holes.m, off, x, cols, kRows, pool2), b = run(kt, plain.m, off, x, cols, kRows, pool2);
    EXPECT_EQ(a, b);
  }
}

class MulMatId : public ::testing::TestWithParam<TensorType> {};

TEST_P(MulMatId, GroupedRowsMatchPerExpertMatmulOnEveryIsa) {
  const TensorType type = GetParam();
  const int64_t block = type_traits(type).block_size;
  check(type, block == 256 ? 512 : block == 32 ? 96 : 40);
}

INSTANTIATE_TEST_SUITE_P(Types, MulMatId,
                         ::testing::Values(TensorType::kQ4_K, TensorType::kQ6_K, TensorType::kQ5_K, TensorType::kQ8_0,
                                           TensorType::kQ4_0, TensorType::kF16, TensorType::kF32),
                         [](const auto& info) { return std::string(type_name(info.param)); });

}  // namespace
}  // namespace codey::kernels
