// Kernel tables against naive versions written here: matmul of every weight
// type on awkward shapes (through every table this CPU supports), attention
// with windows/GQA/soft-capping over f16/q8_0 KV, rope styles and scaling,
// norms and activations, and the thread pool.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <random>

#include "codey/kernels.h"
#include "codey/quant.h"
#include "codey/thread_pool.h"

namespace codey::kernels {
namespace {

std::vector<float> randn(size_t n, uint64_t seed, float scale = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// sqrt(sum (a-b)^2 / sum b^2)
double nmse(const float* a, const float* b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += double(b[i]) * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

struct Quantized {
  std::vector<uint8_t> bytes;
  Matrix m;
};

Quantized make_matrix(TensorType type, int64_t rows, int64_t cols, uint64_t seed) {
  Quantized q;
  const auto w = randn(static_cast<size_t>(rows * cols), seed);
  const size_t rb = row_bytes(type, cols);
  q.bytes.resize(rb * static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) quantize_row(type, w.data() + r * cols, q.bytes.data() + r * rb, cols);
  q.m.type = type;
  q.m.rows = rows;
  q.m.cols = cols;
  q.m.data = q.bytes.data();
  q.m.row_bytes = rb;
  return q;
}

// Naive: whole matrix decoded, activations rounded through the activation
// format, double sums.
std::vector<float> naive_matmul(const Matrix& w, const std::vector<float>& x, int64_t m) {
  const int64_t k = w.cols;
  std::vector<float> wf(static_cast<size_t>(w.rows * k));
  for (int64_t r = 0; r < w.rows; ++r) dequantize_row(w.type, w.row(r), wf.data() + r * k, k);
  const TensorType at = activation_type(w.type);
  std::vector<float> xq(x.size());
  std::vector<uint8_t> enc(row_bytes(at, k));
  for (int64_t i = 0; i < m; ++i) {
    if (at == TensorType::kF32) {
      std::copy(x.begin() + i * k, x.begin() + (i + 1) * k, xq.begin() + i * k);
    } else {
      quantize_activation_row(at, x.data() + i * k, enc.data(), k);
      dequantize_row(at, enc.data(), xq.data() + i * k, k);
    }
  }
  std::vector<float> y(static_cast<size_t>(m * w.rows));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t r = 0; r < w.rows; ++r) {
      double acc = 0;
      for (int64_t j = 0; j < k; ++j) acc += double(wf[r * k + j]) * xq[i * k + j];
      y[i * w.rows + r] = static_cast<float>(acc);
    }
  return y;
}

struct MatmulCase {
  TensorType type;
  int64_t k;
};

class MatmulTest : public ::testing::TestWithParam<MatmulCase> {};

TEST_P(MatmulTest, EveryTableMatchesNaive) {
  const auto [type, k] = GetParam();
  for (auto isa : available_isas()) {
    const KernelTable* kt = kernel_table(isa);
    ASSERT_NE(kt, nullptr);
    for (int64_t rows : {1, 7, 33}) {
      for (int64_t m : {1, 3, 17}) {
        for (int threads : {1, 2, 3}) {
          ThreadPool pool(threads);
          const Quantized w = make_matrix(type, rows, k, static_cast<uint64_t>(rows * 31 + k));
          const auto x = randn(static_cast<size_t>(m * k), static_cast<uint64_t>(m + 100));
          std::vector<uint8_t> ws(kt->matmul_workspace(type, m, k, threads));
          // Output with a row stride wider than rows: columns past rows untouched.
          const int64_t ldy = rows + 3;
          std::vector<float> y(static_cast<size_t>(m * ldy), 12345.0f);
          kt->matmul(w.m, x.data(), m, k, y.data(), ldy, ws, pool);
          const auto ref = naive_matmul(w.m, x, m);
          std::vector<float> got(static_cast<size_t>(m * rows));
          for (int64_t i = 0; i < m; ++i) {
            for (int64_t r = 0; r < rows; ++r) got[i * rows + r] = y[i * ldy + r];
            for (int64_t r = rows; r < ldy; ++r) ASSERT_EQ(y[i * ldy + r], 12345.0f);
          }
          EXPECT_LT(nmse(got.data(), ref.data(), got.size()), 1e-5)
              << isa << " " << type_name(type) << " rows " << rows << " m " << m << " k " << k << " t" << threads;
        }
      }
    }
  }
}

std::vector<MatmulCase> matmul_cases() {
  std::vector<MatmulCase> c;
  for (TensorType t : {TensorType::kF32, TensorType::kF16, TensorType::kBF16})
    for (int64_t k : {1, 33, 96}) c.push_back({t, k});
  for (TensorType t : {TensorType::kQ4_0, TensorType::kQ4_1, TensorType::kQ5_0, TensorType::kQ5_1, TensorType::kQ8_0,
                       TensorType::kIQ4_NL})
    for (int64_t k : {32, 96, 160}) c.push_back({t, k});
  for (TensorType t : {TensorType::kQ2_K, TensorType::kQ3_K, TensorType::kQ4_K, TensorType::kQ5_K, TensorType::kQ6_K,
                       TensorType::kIQ4_XS})
    for (int64_t k : {256, 768}) c.push_back({t, k});
  return c;
}

INSTANTIATE_TEST_SUITE_P(Types, MatmulTest, ::testing::ValuesIn(matmul_cases()),
                         [](const ::testing::TestParamInfo<MatmulCase>& i) {
                           return std::string(type_name(i.param.type)) + "_k" + std::to_string(i.param.k);
                         });

TEST(MatmulTest, ResultsDoNotDependOnThreadCount) {
  const KernelTable& kt = kernels();
  const Quantized w = make_matrix(TensorType::kQ4_K, 67, 512, 1);
  const auto x = randn(5 * 512, 2);
  std::vector<float> y1(5 * 67), y3(5 * 67);
  ThreadPool p1(1), p3(3);
  std::vector<uint8_t> ws1(kt.matmul_workspace(w.m.type, 5, 512, 1)), ws3(kt.matmul_workspace(w.m.type, 5, 512, 3));
  kt.matmul(w.m, x.data(), 5, 512, y1.data(), 67, ws1, p1);
  kt.matmul(w.m, x.data(), 5, 512, y3.data(), 67, ws3, p3);
  EXPECT_EQ(y1, y3);
}

TEST(ActivationTest, Formats) {
  EXPECT_EQ(activation_type(TensorType::kQ4_K), TensorType::kQ8_K);
  EXPECT_EQ(activation_type(TensorType::kQ6_K), TensorType::kQ8_K);
  EXPECT_EQ(activation_type(TensorType::kQ4_0), TensorType::kQ8_0);
  EXPECT_EQ(activation_type(TensorType::kQ5_1), TensorType::kQ8_0);
  EXPECT_EQ(activation_type(TensorType::kF16), TensorType::kF16);
  // Q8_0 activation: scale amax/127, round to nearest, so amax maps to +-127.
  std::vector<float> x(32);
  for (int i = 0; i < 32; ++i) x[static_cast<size_t>(i)] = float(i - 16) * 0.25f;
  uint8_t enc[34];
  quantize_activation_row(TensorType::kQ8_0, x.data(), enc, 32);
  EXPECT_EQ(static_cast<int8_t>(enc[2]), -127);  // x[0] = -4 = -amax
  EXPECT_EQ(static_cast<int8_t>(enc[2 + 16]), 0);
  std::vector<float> back(32);
  dequantize_row(TensorType::kQ8_0, enc, back.data(), 32);
  for (int i = 0; i < 32; ++i) EXPECT_NEAR(back[static_cast<size_t>(i)], x[static_cast<size_t>(i)], 4.0f / 127 / 2 + 1e-3);
}

// --- attention -----------------------------------------------------------------

struct AttnCase {
  TensorType kv;
  int64_t n_head, n_head_kv, dk, dv;
  int32_t window;
  float softcap;
};

class AttentionTest : public ::testing::TestWithParam<AttnCase> {};

TEST_P(AttentionTest, MatchesNaiveSoftmax) {
  const AttnCase c = GetParam();
  const int n_seq = 2, n_ctx = 70, k_positions = 80;  // K in whole tiles
  const size_t kr = row_bytes(c.kv, c.dk), vr = row_bytes(c.kv, c.dv);
  std::vector<uint8_t> kbuf(kr * n_seq * c.n_head_kv * k_positions), vbuf(vr * n_seq * c.n_head_kv * n_ctx), enc(kr);
  KvView kview{c.kv, kbuf.data(), kr * c.n_head_kv * k_positions, kr * k_positions, kr, true};
  KvView vview{c.kv, vbuf.data(), vr * c.n_head_kv * n_ctx, vr * n_ctx, vr, false};
  // Decoded copies of what the cache holds, for the naive version.
  std::vector<float> kf(static_cast<size_t>(n_seq * c.n_head_kv * n_ctx * c.dk)),
      vf(static_cast<size_t>(n_seq * c.n_head_kv * n_ctx * c.dv));
  const auto kraw = randn(kf.size(), 1, 1.5f), vraw = randn(vf.size(), 2);
  const KernelTable& ref = ref_kernel_table();
  for (int s = 0; s < n_seq; ++s)
    for (int64_t h = 0; h < c.n_head_kv; ++h)
      for (int64_t p = 0; p < n_ctx; ++p) {
        const size_t row = static_cast<size_t>((s * c.n_head_kv + h) * n_ctx + p);
        auto* vd = const_cast<uint8_t*>(vview.row(s, h, p));
        ref.store_row(c.kv, kraw.data() + row * c.dk, enc.data(), c.dk);
        write_tile_row(c.kv, enc.data(), c.dk, const_cast<uint8_t*>(kview.tile(s, h, p)), p % kKvTile);
        ref.store_row(c.kv, vraw.data() + row * c.dv, vd, c.dv);
        dequantize_row(c.kv, enc.data(), kf.data() + row * c.dk, c.dk);
        dequantize_row(c.kv, vd, vf.data() + row * c.dv, c.dv);
      }
  // Tokens at various positions of both sequences, including 0 and the last.
  const std::vector<int32_t> seq = {0, 1, 0, 1, 1};
  const std::vector<int32_t> pos = {0, 69, 37, 5, 40};
  const int64_t n = static_cast<int64_t>(seq.size());
  const auto q = randn(static_cast<size_t>(n * c.n_head * c.dk), 3);
  const float scale = 1.0f / std::sqrt(float(c.dk));
  for (auto isa : available_isas()) {
    const KernelTable* kt = kernel_table(isa);
    std::vector<float> out(static_cast<size_t>(n * c.n_head * c.dv), -1.0f);
    AttentionArgs a;
    a.q = q.data();
    a.q_stride = c.n_head * c.dk;
    a.out = out.data();
    a.out_stride = c.n_head * c.dv;
    a.n_tokens = n;
    a.n_head = c.n_head;
    a.n_head_kv = c.n_head_kv;
    a.head_dim_k = c.dk;
    a.head_dim_v = c.dv;
    a.seq = seq.data();
    a.pos = pos.data();
    a.k = kview;
    a.v = vview;
    a.window = c.window;
    a.scale = scale;
    a.softcap = c.softcap;
    ThreadPool pool(2);
    kt->attention(a, pool);
    std::vector<float> want(out.size());
    for (int64_t t = 0; t < n; ++t)
      for (int64_t h = 0; h < c.n_head; ++h) {
        const int64_t hk = h / (c.n_head / c.n_head_kv);
        const int64_t lo = c.window > 0 ? std::max<int64_t>(0, pos[t] - c.window + 1) : 0;
        std::vector<double> w;
        double mx = -1e300;
        for (int64_t p = lo; p <= pos[t]; ++p) {
          const size_t row = static_cast<size_t>((seq[t] * c.n_head_kv + hk) * n_ctx + p);
          double d = 0;
          for (int64_t i = 0; i < c.dk; ++i) d += double(q[(t * c.n_head + h) * c.dk + i]) * kf[row * c.dk + i];
          d *= scale;
          if (c.softcap > 0) d = c.softcap * std::tanh(d / c.softcap);
          w.push_back(d);
          mx = std::max(mx, d);
        }
        double sum = 0;
        for (auto& x : w) sum += (x = std::exp(x - mx));
        for (int64_t i = 0; i < c.dv; ++i) {
          double acc = 0;
          for (int64_t p = lo; p <= pos[t]; ++p) {
            const size_t row = static_cast<size_t>((seq[t] * c.n_head_kv + hk) * n_ctx + p);
            acc += w[p - lo] / sum * vf[row * c.dv + i];
          }
          want[(t * c.n_head + h) * c.dv + i] = static_cast<float>(acc);
        }
      }
    EXPECT_LT(nmse(out.data(), want.data(), out.size()), 1e-5) << isa;
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, AttentionTest,
                         ::testing::Values(AttnCase{TensorType::kF16, 4, 2, 32, 32, 0, 0.0f},
                                           AttnCase{TensorType::kQ8_0, 6, 2, 64, 64, 0, 0.0f},
                                           AttnCase{TensorType::kF16, 3, 1, 64, 32, 8, 0.0f},
                                           AttnCase{TensorType::kF32, 2, 2, 16, 16, 1, 0.0f},
                                           AttnCase{TensorType::kBF16, 4, 4, 32, 32, 0, 5.0f},
                                           AttnCase{TensorType::kF16, 8, 1, 256, 256, 30, 0.0f}));

// --- rope --------------------------------------------------------------------

TEST(RopeTest, NormalNeoxPartialAndLinearScaling) {
  const int64_t n_head = 3, hd = 16;
  for (bool neox : {false, true})
    for (int32_t n_rot : {16, 8})
      for (float scale : {1.0f, 0.25f})
        for (int32_t pos : {0, 1, 17, 1000}) {
          const auto x = randn(static_cast<size_t>(n_head * hd), static_cast<uint64_t>(pos + n_rot));
          RopeParams p;
          p.n_rot = n_rot;
          p.neox = neox;
          p.freq_base = 10000.0f;
          p.freq_scale = scale;
          std::vector<float> got = x;
          ref_kernel_table().rope(got.data(), n_head, hd, pos, p);
          for (int64_t h = 0; h < n_head; ++h) {
            for (int i = 0; i < n_rot / 2; ++i) {
              const double theta = double(pos) * scale * std::pow(10000.0, -2.0 * i / n_rot);
              const int64_t a = h * hd + (neox ? i : 2 * i), b = h * hd + (neox ? i + n_rot / 2 : 2 * i + 1);
              const double ea = x[a] * std::cos(theta) - x[b] * std::sin(theta);
              const double eb = x[a] * std::sin(theta) + x[b] * std::cos(theta);
              EXPECT_NEAR(got[a], ea, 2e-3) << neox << " " << n_rot << " " << pos;
              EXPECT_NEAR(got[b], eb, 2e-3);
            }
            for (int64_t i = n_rot; i < hd; ++i) EXPECT_EQ(got[h * hd + i], x[h * hd + i]);  // not rotated
          }
        }
}

TEST(RopeTest, YarnInterpolatesLowFrequenciesOnly) {
  // With YaRN the fastest-rotating pairs keep their unscaled angle (scaled by
  // mscale), the slowest get the interpolated one.
  RopeParams p;
  p.n_rot = 64;
  p.neox = true;
  p.freq_base = 10000.0f;
  p.freq_scale = 0.25f;
  p.ext_factor = 1.0f;
  p.n_ctx_orig = 4096;
  const int32_t pos = 300;
  std::vector<float> x(64, 0.0f);
  for (int i = 0; i < 32; ++i) x[static_cast<size_t>(i)] = 1.0f;  // (1, 0) pairs: rotation reads cos/sin
  ref_kernel_table().rope(x.data(), 1, 64, pos, p);
  const double mscale = 1.0 + 0.1 * std::log(4.0);
  // pair 0: theta = pos (extrapolated), pair 31: theta = pos * 0.25 * base^(-62/64)
  EXPECT_NEAR(x[0], std::cos(300.0) * mscale, 1e-3);
  EXPECT_NEAR(x[32], std::sin(300.0) * mscale, 1e-3);
  const double slow = 300.0 * 0.25 * std::pow(10000.0, -62.0 / 64);
  EXPECT_NEAR(x[31], std::cos(slow) * mscale, 1e-3);
  EXPECT_NEAR(x[63], std::sin(slow) * mscale, 1e-3);
}

TEST(RopeTest, FreqFactorsDivideTheta) {
  RopeParams p;
  p.n_rot = 4;
  const float ff[2] = {1.0f, 4.0f};
  p.freq_factors = ff;
  std::vector<float> x = {1, 0, 1, 0};
  ref_kernel_table().rope(x.data(), 1, 4, 10, p);
  const double t1 = 10.0 * std::pow(10000.0, -0.5) / 4.0;
  EXPECT_NEAR(x[0], std::cos(10.0), 1e-4);
  EXPECT_NEAR(x[2], std::cos(t1), 1e-4);
  EXPECT_NEAR(x[3], std::sin(t1), 1e-4);
}

// --- small ops ---------------------------------------------------------------

TEST(OpsTest, RmsNormSoftmaxActivations) {
  const auto x = randn(37, 5);
  const auto w = randn(37, 6);
  std::vector<float> y(37);
  const KernelTable& kt = ref_kernel_table();
  kt.rms_norm(x.data(), w.data(), y.data(), 37, 1e-6f);
  double ss = 0;
  for (float v : x) ss += double(v) * v;
  const double sc = 1.0 / std::sqrt(ss / 37 + 1e-6);
  for (int i = 0; i < 37; ++i) EXPECT_NEAR(y[i], x[i] * sc * w[i], 1e-5);

  std::vector<float> s = {1000.0f, 1001.0f, -5.0f};
  kt.softmax(s.data(), 3);
  EXPECT_NEAR(s[0], 1.0 / (1.0 + std::exp(1.0)), 1e-6);
  EXPECT_NEAR(s[1], std::exp(1.0) / (1.0 + std::exp(1.0)), 1e-6);
  EXPECT_NEAR(s[2], 0.0, 1e-6);

  std::vector<float> g = {-3.0f, -0.5f, 0.0f, 0.7f, 4.0f}, u = {1, 2, 3, 4, 5}, out(5);
  kt.swiglu(g.data(), u.data(), out.data(), 5);
  for (int i = 0; i < 5; ++i) EXPECT_NEAR(out[i], g[i] / (1 + std::exp(-g[i])) * u[i], 1e-6);
  kt.geglu(g.data(), u.data(), out.data(), 5);
  for (int i = 0; i < 5; ++i) {
    const double gl = 0.5 * g[i] * (1 + std::tanh(std::sqrt(2 / M_PI) * (g[i] + 0.044715 * g[i] * g[i] * g[i])));
    EXPECT_NEAR(out[i], gl * u[i], 1e-5);
  }
  EXPECT_NEAR(gelu_tanh(1.0f), 0.841192f, 1e-5);
}

TEST(DispatchTest, RefIsAlwaysThere) {
  EXPECT_NE(kernel_table("ref"), nullptr);
  EXPECT_EQ(kernel_table("no-such-isa"), nullptr);
  EXPECT_EQ(available_isas().front(), "ref");
  EXPECT_TRUE(matmul_supports(TensorType::kQ4_K));
  EXPECT_FALSE(matmul_supports(TensorType::kIQ2_XXS));
}

// --- thread pool ---------------------------------------------------------------

TEST(ThreadPoolTest, EveryIndexExactlyOnce) {
  for (int n_threads : {1, 2, 4}) {
    ThreadPool pool(n_threads);
    EXPECT_EQ(pool.n_threads(), n_threads);
    for (int64_t n : {0, 1, 7, 1000}) {
      for (int64_t grain : {1, 3, 64}) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        pool.parallel_for(n, grain, [&](int64_t b, int64_t e, int ith) {
          EXPECT_GE(ith, 0);
          EXPECT_LT(ith, n_threads);
          for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;
        });
        for (auto& h : hits) ASSERT_EQ(h.load(), 1);
      }
    }
  }
}

TEST(ThreadPoolTest, ManyShortJobsAndRunOnAll) {
  ThreadPool pool(3);
  std::atomic<int64_t> total{0};
  for (int i = 0; i < 20000; ++i)
    pool.run([&](int ith, int nth) {
      EXPECT_EQ(nth, 3);
      total += ith + 1;
    });
  EXPECT_EQ(total.load(), 20000 * 6);
}

TEST(ThreadPoolTest, DefaultIsUsableCores) {
  ThreadPool pool;
  EXPECT_EQ(pool.n_threads(), usable_cores());  // what base says this process may use
  EXPECT_GE(pool.n_threads(), 1);
}

}  // namespace
}  // namespace codey::kernels
