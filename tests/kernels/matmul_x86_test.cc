// The x86 matmul kernels (src/kernels/x86/) against the scalar reference on
// every weight type with a fast path, awkward shapes
// (one row, odd rows, partial row groups, one block, many tokens), padded
// strides, with and without the load-time repack, on every ISA this CPU runs;
// a token's row alone gives the bits it gives in a batch.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "codey/kernels.h"
#include "codey/quant.h"
#include "codey/thread_pool.h"
#include "kernels/ref/ref.h"
#include "kernels/x86/packed.h"

namespace codey::kernels {
namespace {

std::vector<std::string_view> fast_isas() {
  std::vector<std::string_view> out;
  for (auto n : available_isas())
    if (n != "ref") out.push_back(n);
  return out;
}

struct Weights {
  Matrix m;
  std::vector<uint8_t> bytes;
};

// Random rows with a spread of magnitudes per block (scales matter), encoded
// with the real quantizer so every block is one a model file could hold.
Weights make_weights(TensorType type, int64_t rows, int64_t cols, std::mt19937& rng) {
  Weights w;
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::uniform_real_distribution<float> mag(0.05f, 3.0f);
  const size_t rb = row_bytes(type, cols);
  w.bytes.resize(rb * static_cast<size_t>(rows) + 64);
  std::vector<float> row(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < cols; ++i) {
      if (i % 16 == 0) row[static_cast<size_t>(i)] = 0.0f;
      const float s = (i / 16) % 3 == 0 ? mag(rng) : 1.0f;
      row[static_cast<size_t>(i)] = nd(rng) * s + (r % 5 == 0 ? 0.7f : 0.0f);  // some rows off-center (mins)
    }
    quantize_row(type, row.data(), w.bytes.data() + rb * static_cast<size_t>(r), cols);
  }
  w.m.type = type;
  w.m.rows = rows;
  w.m.cols = cols;
  w.m.data = w.bytes.data();
  w.m.row_bytes = rb;
  return w;
}

std::vector<float> run_matmul(const KernelTable& kt, const Matrix& w, const std::vector<float>& x, int64_t m, int64_t ldx,
                              int64_t ldy, ThreadPool& pool) {
  std::vector<uint8_t> ws(kt.matmul_workspace(w.type, m, w.cols, pool.n_threads()));
  std::vector<float> y(static_cast<size_t>(m * ldy), 12345.0f);  // sentinel in the padding
  kt.matmul(w, x.data(), m, ldx, y.data(), ldy, ws, pool);
  return y;
}

// ||a - b|| over ||sum_k |w_k x_k| ||: error relative to the size of the terms
// summed, so outputs where the terms cancel do not magnify rounding noise.
double rel_err(const std::vector<float>& a, const std::vector<double>& b, const std::vector<double>& mag, int64_t m,
               int64_t n, int64_t lda) {
  double num = 0.0, den = 0.0;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      const double d = double(a[static_cast<size_t>(i * lda + j)]) - b[static_cast<size_t>(i * n + j)];
      num += d * d;
      den += mag[static_cast<size_t>(i * n + j)] * mag[static_cast<size_t>(i * n + j)];
    }
  return std::sqrt(num / std::max(den, 1e-30));
}

struct Shape {
  int64_t rows, cols, m;
};

// Activations are rounded the way the reference's integer kernels round them
// (Q8_0 / Q8_K, f16/bf16 for float weights), so the fast kernels must agree
// with ref up to float summation order; the repacked and plain layouts and
// every thread count give bit-identical results.
void check_type(TensorType type, std::string_view isa, const std::vector<Shape>& shapes) {
  const KernelTable* kt = kernel_table(isa);
  ASSERT_NE(kt, nullptr);
  std::mt19937 rng(1234 + static_cast<int>(type));
  std::normal_distribution<float> nd(0.0f, 1.0f);
  ThreadPool pool1(1), pool2(2), pool3(3);
  for (const Shape& s : shapes) {
    SCOPED_TRACE(fmt::format("{} {} rows {} cols {} m {}", isa, type_name(type), s.rows, s.cols, s.m));
    Weights w = make_weights(type, s.rows, s.cols, rng);
    const int64_t ldx = s.cols + 32, ldy = s.rows + 3;
    std::vector<float> x(static_cast<size_t>(s.m * ldx));
    for (int64_t i = 0; i < s.m; ++i)
      for (int64_t k = 0; k < s.cols; ++k) {
        float v = nd(rng);
        if (k % 97 == 5) v *= 20.0f;  // outliers, as activations have
        x[static_cast<size_t>(i * ldx + k)] = v;
      }
    std::vector<float> wf(static_cast<size_t>(s.cols));
    std::vector<double> mag(static_cast<size_t>(s.m * s.rows));
    for (int64_t r = 0; r < s.rows; ++r) {
      ref_decode_row(type, w.m.row(r), wf.data(), s.cols);
      for (int64_t i = 0; i < s.m; ++i) {
        double acc = 0.0;
        for (int64_t k = 0; k < s.cols; ++k) acc += std::fabs(double(wf[static_cast<size_t>(k)]) * x[static_cast<size_t>(i * ldx + k)]);
        mag[static_cast<size_t>(i * s.rows + r)] = acc;
      }
    }
    const auto ref = run_matmul(ref_kernel_table(), w.m, x, s.m, ldx, ldy, pool2);
    std::vector<double> ref_d(static_cast<size_t>(s.m * s.rows));
    for (int64_t i = 0; i < s.m; ++i)
      for (int64_t r = 0; r < s.rows; ++r) ref_d[static_cast<size_t>(i * s.rows + r)] = ref[static_cast<size_t>(i * ldy + r)];

    std::vector<float> first;
    for (bool repack : {false, true}) {
      std::vector<uint8_t> packed;
      Matrix wm = w.m;
      if (repack && kt->repack) {
        packed = kt->repack(w.m);
        if (x86::packable(type)) {
          ASSERT_FALSE(packed.empty());
        }
        wm.packed = packed.empty() ? nullptr : packed.data();
      }
      for (ThreadPool* pool : {&pool1, &pool2, &pool3}) {
        SCOPED_TRACE(fmt::format("{}, {} threads", repack ? "repacked" : "plain layout", pool->n_threads()));
        const auto y = run_matmul(*kt, wm, x, s.m, ldx, ldy, *pool);
        EXPECT_LT(rel_err(y, ref_d, mag, s.m, s.rows, ldy), 1e-6);
        for (int64_t i = 0; i < s.m; ++i)  // the padding between rows of y is untouched
          for (int64_t j = s.rows; j < ldy; ++j) ASSERT_EQ(y[static_cast<size_t>(i * ldy + j)], 12345.0f);
        if (first.empty())
          first = y;
        else
          ASSERT_EQ(y, first) << "result depends on layout or thread count";
      }
      // Batch invariance: a token's row alone gets exactly the bits it got
      // among the others (speculative decoding verifies drafted tokens in
      // one pass and must reproduce token-by-token decoding).
      for (int64_t i = 0; i < s.m; ++i) {
        const std::vector<float> xi(x.begin() + i * ldx, x.begin() + (i + 1) * ldx);
        const auto yi = run_matmul(*kt, wm, xi, 1, ldx, ldy, pool2);
        for (int64_t j = 0; j < s.rows; ++j)
          ASSERT_EQ(yi[static_cast<size_t>(j)], first[static_cast<size_t>(i * ldy + j)])
              << "row " << i << " alone differs from the batch of " << s.m << " at output " << j;
      }
    }
  }
}

std::vector<Shape> shapes_for(TensorType type) {
  const int64_t b = type_traits(type).block_size;
  if (b == 256)
    return {{1, 256, 1}, {17, 256, 3}, {16, 512, 1}, {33, 768, 9}, {7, 256, 17}, {40, 512, 2}, {5, 1024, 5}, {24, 512, 40}};
  if (b == 32)
    return {{1, 32, 1}, {17, 96, 3}, {16, 64, 1}, {33, 320, 9}, {7, 32, 17}, {40, 160, 2}, {5, 2048, 5}, {24, 160, 40}};
  return {{1, 1, 1}, {17, 13, 3}, {16, 64, 1}, {33, 37, 9}, {7, 200, 17}, {40, 16, 2}, {24, 64, 40}};
}

class MatmulX86 : public ::testing::TestWithParam<TensorType> {};

TEST_P(MatmulX86, MatchesReferenceOnAwkwardShapes) {
  const TensorType type = GetParam();
  const auto isas = fast_isas();
  if (isas.empty()) GTEST_SKIP() << "no x86 kernel table on this CPU";
  for (auto isa : isas) check_type(type, isa, shapes_for(type));
}

// Blocks of extreme quants (every byte the same: 0x00, 0xFF, 0x80, ...) and
// activations that quantize to +-127: the largest partial sums the integer
// kernels can meet (the AVX2 path sums products in 16 bits; its bounds are
// exact, so any overflow shows as a wrong result here).
TEST_P(MatmulX86, ExtremeQuantsMatchReference) {
  const TensorType type = GetParam();
  if (!x86::packable(type)) GTEST_SKIP() << "no integer path";
  const auto isas = fast_isas();
  if (isas.empty()) GTEST_SKIP() << "no x86 kernel table on this CPU";
  const auto& tt = type_traits(type);
  // Byte offsets of the f16 fields per block: set to 1.0 / 0.5 so the
  // scales are finite; every other byte is the pattern.
  std::vector<int> f16_fields;
  switch (type) {
    case TensorType::kQ4_1: case TensorType::kQ5_1: case TensorType::kQ4_K: case TensorType::kQ5_K:
      f16_fields = {0, 2}; break;
    case TensorType::kQ2_K: f16_fields = {80, 82}; break;
    case TensorType::kQ3_K: f16_fields = {108}; break;
    case TensorType::kQ6_K: f16_fields = {208}; break;
    default: f16_fields = {0};
  }
  const int64_t rows = 9, cols = tt.block_size * 2, m = 12;
  const size_t rb = row_bytes(type, cols);
  std::vector<uint8_t> bytes(rb * rows);
  const uint8_t patterns[] = {0x00, 0xFF, 0x80, 0x7F, 0x55, 0xAA, 0x11, 0xEE, 0x08, 0xF7};
  for (int64_t r = 0; r < rows; ++r) {
    uint8_t* row = bytes.data() + rb * static_cast<size_t>(r);
    for (int64_t blk = 0; blk < cols / tt.block_size; ++blk) {
      uint8_t* p = row + static_cast<size_t>(blk) * tt.block_bytes;
      std::memset(p, patterns[(r + blk) % std::size(patterns)], tt.block_bytes);
      for (size_t f = 0; f < f16_fields.size(); ++f) {
        const uint16_t h = fp32_to_fp16(f == 0 ? 1.0f : 0.5f);
        std::memcpy(p + f16_fields[f], &h, 2);
      }
    }
  }
  Matrix w{type, rows, cols, bytes.data(), rb, nullptr};
  // Activations at full scale: every element +-1 (so it quantizes to +-127),
  // signs per token: all +, all -, alternating pairs, random.
  std::mt19937 rng(5);
  std::vector<float> x(static_cast<size_t>(m * cols));
  for (int64_t t = 0; t < m; ++t)
    for (int64_t k = 0; k < cols; ++k) {
      float s = 1.0f;
      switch (t % 4) {
        case 1: s = -1.0f; break;
        case 2: s = (k / 2) % 2 ? -1.0f : 1.0f; break;
        case 3: s = rng() % 2 ? -1.0f : 1.0f; break;
      }
      x[static_cast<size_t>(t * cols + k)] = s;
    }
  ThreadPool pool(2);
  const auto ref = run_matmul(ref_kernel_table(), w, x, m, cols, rows, pool);
  std::vector<double> ref_d(ref.begin(), ref.end()), mag(ref.size());
  std::vector<float> wf(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    ref_decode_row(type, w.row(r), wf.data(), cols);
    for (int64_t t = 0; t < m; ++t) {
      double a = 0.0;
      for (int64_t k = 0; k < cols; ++k) a += std::fabs(double(wf[static_cast<size_t>(k)]) * x[static_cast<size_t>(t * cols + k)]);
      mag[static_cast<size_t>(t * rows + r)] = a;
    }
  }
  for (auto isa : isas) {
    SCOPED_TRACE(std::string(isa));
    const KernelTable* kt = kernel_table(isa);
    const auto packed = kt->repack(w);
    Matrix wm = w;
    wm.packed = packed.data();
    for (int64_t n : {int64_t{1}, m}) {  // generation and GEMM paths
      const std::vector<float> xs(x.begin(), x.begin() + n * cols);
      const auto y = run_matmul(*kt, wm, xs, n, cols, rows, pool);
      EXPECT_LT(rel_err(y, std::vector<double>(ref_d.begin(), ref_d.begin() + n * rows), mag, n, rows, rows), 1e-6)
          << n << " tokens";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Types, MatmulX86,
                         ::testing::Values(TensorType::kQ4_0, TensorType::kQ4_1, TensorType::kQ5_0, TensorType::kQ5_1,
                                           TensorType::kQ8_0, TensorType::kIQ4_NL, TensorType::kQ2_K,
                                           TensorType::kQ3_K, TensorType::kQ4_K, TensorType::kQ5_K,
                                           TensorType::kQ6_K, TensorType::kIQ4_XS, TensorType::kF32,
                                           TensorType::kF16, TensorType::kBF16),
                         [](const auto& info) { return std::string(type_name(info.param)); });

TEST(MatmulX86, RepackMadeForAnotherShapeIsIgnored) {
  const auto isas = fast_isas();
  if (isas.empty()) GTEST_SKIP();
  std::mt19937 rng(7);
  Weights a = make_weights(TensorType::kQ4_0, 16, 64, rng);
  Weights b = make_weights(TensorType::kQ4_0, 32, 64, rng);
  ThreadPool pool(1);
  std::vector<float> x(64, 0.5f);
  for (auto isa : isas) {
    const KernelTable* kt = kernel_table(isa);
    auto packed_b = kt->repack(b.m);
    Matrix wa = a.m;
    wa.packed = packed_b.data();  // wrong matrix: must not be read as a's
    EXPECT_EQ(x86::packed_groups(wa, isa == "avx512" ? 16 : 8), nullptr);
    const auto y = run_matmul(*kt, wa, x, 1, 64, 16, pool);
    const auto y_ref = run_matmul(*kt, a.m, x, 1, 64, 16, pool);
    EXPECT_EQ(y, y_ref);
  }
}

// The int8 peak loop (KernelTable::int8_peak, what `codey bench` sets prompt
// processing against) counts the products it runs: 2 ops per byte product.
TEST(Int8Peak, CountsTheProductsItRuns) {
  for (auto isa : available_isas()) {
    const KernelTable* kt = kernel_table(isa);
    ASSERT_NE(kt, nullptr);
    if (isa == "ref") {
      EXPECT_EQ(kt->int8_peak, nullptr);
      continue;
    }
    ASSERT_NE(kt->int8_peak, nullptr) << isa;
    // avx2: 8 vpmaddubsw ymm (32 products) per iteration; avx512: 12 vpdpbusd zmm (64).
    const double per_iter = isa == "avx2" ? 8 * 32 * 2 : 12 * 64 * 2;
    EXPECT_EQ(kt->int8_peak(1000), 1000 * per_iter) << isa;
  }
}

}  // namespace
}  // namespace codey::kernels
