// Round trips quantize -> dequantize: error per type against the reference
// quantizer's figures on the same kind of data, edge cases (zero, constant,
// huge, tiny blocks), importance weighting, Q8_K invariants (tests src/quant/).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "codey/quant.h"
#include "codey/quant_blocks.h"
#include "codey/tensor.h"

namespace codey {
namespace {

std::vector<float> gaussian(size_t n, uint32_t seed, float sigma = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, sigma);
  std::vector<float> x(n);
  for (auto& v : x) v = dist(rng);
  return x;
}

std::vector<float> round_trip(TensorType t, const std::vector<float>& x, int64_t row, const float* imp = nullptr) {
  std::vector<float> y(x.size());
  std::vector<uint8_t> q(row_bytes(t, row));
  for (size_t r = 0; r < x.size() / static_cast<size_t>(row); ++r) {
    std::memset(q.data(), 0xAB, q.size());  // every byte must be written
    EXPECT_EQ(quantize_row(t, x.data() + r * row, q.data(), row, imp), q.size());
    dequantize_row(t, q.data(), y.data() + r * row, row);
  }
  return y;
}

double rmse(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
  return std::sqrt(s / static_cast<double>(a.size()));
}

struct Case {
  TensorType type;
  double reference_rmse;  // the reference quantizer's RMSE on N(0,1), see below
};

// RMSE of the reference (ggml) quantization algorithms on N(0,1) data,
// 2^20 samples (notes/quant.md: how measured, and codey's own figures). The
// K-quant figures agree with the reference-made fixture files (fixture_test).
// Sampling noise of an estimate from 2^17 samples is ~0.3%; codey's margins
// below the reference are 2.2% (Q4_K) to 12% (Q5_1).
const Case kCases[] = {
    {TensorType::kQ8_0, 0.005361}, {TensorType::kQ4_0, 0.08596}, {TensorType::kQ5_0, 0.04274},
    {TensorType::kQ4_1, 0.07830},  {TensorType::kQ5_1, 0.03790}, {TensorType::kIQ4_NL, 0.07619},
    {TensorType::kQ2_K, 0.2966},   {TensorType::kQ3_K, 0.1510},  {TensorType::kQ4_K, 0.07139},
    {TensorType::kQ5_K, 0.03615},  {TensorType::kQ6_K, 0.01774}, {TensorType::kIQ4_XS, 0.07676},
};

class RoundTrip : public ::testing::TestWithParam<Case> {};

TEST_P(RoundTrip, GaussianRmseAtMostReference) {
  const Case c = GetParam();
  const int64_t row = 4096;
  for (uint32_t seed : {1u, 2u}) {
    const auto x = gaussian(32 * row, seed);
    const double e = rmse(x, round_trip(c.type, x, row));
    EXPECT_LE(e, c.reference_rmse) << type_name(c.type) << " seed " << seed;
    // The same relative error at any scale (the f16 scales stay normal here).
    const auto xs = gaussian(8 * row, seed, 0.02f);
    const double es = rmse(xs, round_trip(c.type, xs, row));
    EXPECT_LE(es, 0.02 * c.reference_rmse * 1.01) << type_name(c.type) << " sigma 0.02";
  }
}

TEST_P(RoundTrip, Deterministic) {
  const Case c = GetParam();
  const int64_t row = 512;
  const auto x = gaussian(row, 7);
  std::vector<uint8_t> a(row_bytes(c.type, row)), b(a.size(), 0x55);
  quantize_row(c.type, x.data(), a.data(), row);
  quantize_row(c.type, x.data(), b.data(), row);
  EXPECT_EQ(a, b);
}

TEST_P(RoundTrip, ZeroBlocksDecodeToZero) {
  const Case c = GetParam();
  const int64_t row = 512;
  std::vector<float> x(row, 0.0f);
  for (float v : round_trip(c.type, x, row)) ASSERT_EQ(v, 0.0f) << type_name(c.type);
  // Signed zeros and a zero block next to a non-zero one.
  for (int i = 0; i < 256; ++i) x[256 + i] = (i % 3) - 1.0f;
  x[3] = -0.0f;
  const auto y = round_trip(c.type, x, row);
  for (int i = 0; i < 256; ++i) ASSERT_EQ(y[i], 0.0f) << type_name(c.type) << " at " << i;
}

TEST_P(RoundTrip, ConstantBlocks) {
  const Case c = GetParam();
  const int64_t row = 256;
  for (float v : {1.0f, -1.0f, 0.37f, -123.0f}) {
    const std::vector<float> x(row, v);
    const auto y = round_trip(c.type, x, row);
    for (float yi : y) {
      ASSERT_TRUE(std::isfinite(yi));
      // One level carries the constant; error only from the f16 scale.
      ASSERT_NEAR(yi, v, std::fabs(v) * 2e-3) << type_name(c.type) << " constant " << v;
    }
  }
}

TEST_P(RoundTrip, HugeAndTinyMagnitudesStayFinite) {
  const Case c = GetParam();
  const int64_t row = 512;
  for (float sigma : {1e4f, 1e-6f}) {
    const auto x = gaussian(row, 3, sigma);
    const auto y = round_trip(c.type, x, row);
    for (float v : y) ASSERT_TRUE(std::isfinite(v)) << type_name(c.type) << " sigma " << sigma;
    const double e = rmse(x, y);
    std::printf("%s sigma %g: relative rmse %.4f\n", std::string(type_name(c.type)).c_str(), sigma, e / sigma);
    if (sigma > 1) {
      // At 1e4 the f16 scales are still normal: the usual relative error.
      EXPECT_LE(e, sigma * c.reference_rmse * 1.2) << type_name(c.type);
    } else {
      // At 1e-6 the f16 scales are subnormal: coarser, but well below the data.
      EXPECT_LE(e, sigma * 0.5) << type_name(c.type);
    }
  }
  // Beyond the f16 range the scale saturates: finite output, not inf/NaN.
  std::vector<float> big(row);
  for (int64_t i = 0; i < row; ++i) big[i] = (i % 2 ? 1.0f : -1.0f) * 3e9f;
  for (float v : round_trip(c.type, big, row)) ASSERT_TRUE(std::isfinite(v)) << type_name(c.type);
}

TEST_P(RoundTrip, ImportanceLowersWeightedError) {
  const Case c = GetParam();
  const int64_t row = 4096;
  const auto x = gaussian(8 * row, 11);
  // Importance like an imatrix: a few columns dominate.
  std::vector<float> imp(row);
  std::mt19937 rng(5);
  std::exponential_distribution<float> ex(1.0f);
  for (auto& v : imp) v = std::pow(ex(rng), 3.0f);
  const auto plain = round_trip(c.type, x, row);
  const auto weighted = round_trip(c.type, x, row, imp.data());
  auto werr = [&](const std::vector<float>& y) {
    double s = 0;
    for (size_t i = 0; i < x.size(); ++i) s += imp[i % row] * (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
    return s;
  };
  EXPECT_LT(werr(weighted), werr(plain) * 0.97) << type_name(c.type);
  // All-zero importance falls back to plain weighting.
  std::vector<float> zero(row, 0.0f);
  EXPECT_EQ(rmse(x, round_trip(c.type, x, row, zero.data())), rmse(x, plain));
}

INSTANTIATE_TEST_SUITE_P(Types, RoundTrip, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return std::string(type_name(info.param.type)); });

TEST(Quantize, BitsOrderErrors) {
  // More bits, less error: a check on the table of figures itself.
  const auto x = gaussian(16 * 4096, 9);
  auto e = [&](TensorType t) { return rmse(x, round_trip(t, x, 4096)); };
  EXPECT_LT(e(TensorType::kQ8_0), e(TensorType::kQ6_K));
  EXPECT_LT(e(TensorType::kQ6_K), e(TensorType::kQ5_K));
  EXPECT_LT(e(TensorType::kQ5_K), e(TensorType::kQ4_K));
  EXPECT_LT(e(TensorType::kQ4_K), e(TensorType::kQ3_K));
  EXPECT_LT(e(TensorType::kQ3_K), e(TensorType::kQ2_K));
}

TEST(Quantize, FloatFormats) {
  const std::vector<float> x = {1.0f, -2.5f, 65504.0f, 1e-8f, 3.14159f, 0.0f, -0.0f, 1e6f};
  std::vector<float> y(x.size());
  std::vector<uint8_t> q(x.size() * 4);
  quantize_row(TensorType::kF32, x.data(), q.data(), 8);
  dequantize_row(TensorType::kF32, q.data(), y.data(), 8);
  EXPECT_EQ(x, y);
  EXPECT_EQ(quantize_row(TensorType::kF16, x.data(), q.data(), 8), 16u);
  dequantize_row(TensorType::kF16, q.data(), y.data(), 8);
  EXPECT_EQ(y[0], 1.0f);
  EXPECT_EQ(y[1], -2.5f);
  EXPECT_EQ(y[2], 65504.0f);
  EXPECT_NEAR(y[3], 1e-8f, 3e-8f);  // subnormal half
  EXPECT_NEAR(y[4], 3.14159f, 2e-3f);
  EXPECT_TRUE(std::isinf(y[7]));  // beyond the half range, as IEEE conversion says
  EXPECT_EQ(quantize_row(TensorType::kBF16, x.data(), q.data(), 8), 16u);
  dequantize_row(TensorType::kBF16, q.data(), y.data(), 8);
  EXPECT_EQ(y[1], -2.5f);
  EXPECT_NEAR(y[4], 3.14159f, 0.02f);
  EXPECT_NEAR(y[7], 1e6f, 1e6f / 128);
}

TEST(Quantize, Q8KActivationFormat) {
  const int64_t n = 512;
  const auto x = gaussian(n, 21, 3.0f);
  std::vector<quant::BlockQ8_K> blocks(2);
  EXPECT_EQ(quantize_row(TensorType::kQ8_K, x.data(), blocks.data(), n), 2 * sizeof(quant::BlockQ8_K));
  for (int b = 0; b < 2; ++b) {
    const auto& blk = blocks[b];
    float amax = 0;
    for (int i = 0; i < 256; ++i) amax = std::max(amax, std::fabs(x[b * 256 + i]));
    EXPECT_FLOAT_EQ(blk.d, amax / 127);
    for (int j = 0; j < 16; ++j) {
      int s = 0;
      for (int i = 0; i < 16; ++i) {
        const int q = blk.qs[16 * j + i];
        ASSERT_GE(q, -127);
        ASSERT_LE(q, 127);
        // Round to nearest: within half a step.
        ASSERT_LE(std::fabs(blk.d * q - x[b * 256 + 16 * j + i]), blk.d * 0.5f * 1.0001f);
        s += q;
      }
      EXPECT_EQ(blk.bsums[j], s);
    }
  }
  std::vector<float> y(n);
  dequantize_row(TensorType::kQ8_K, blocks.data(), y.data(), n);
  EXPECT_LT(rmse(x, y), 3.0 * 0.0085);  // ~amax/127/sqrt(12), amax ~3 sigma
  // A zero block: d = 0, codes and sums 0.
  std::vector<float> z(256, 0.0f);
  quantize_row(TensorType::kQ8_K, z.data(), blocks.data(), 256);
  EXPECT_EQ(blocks[0].d, 0.0f);
  for (int j = 0; j < 16; ++j) EXPECT_EQ(blocks[0].bsums[j], 0);
}

TEST(Quantize, KQuantScalesInRange) {
  // The packed 6-bit scales/mins decode to what the quantizer chose: every
  // element's reconstruction stays within the block's data range (plus a step).
  const int64_t n = 256;
  const auto x = gaussian(n, 4);
  std::vector<uint8_t> q(row_bytes(TensorType::kQ4_K, n));
  quantize_row(TensorType::kQ4_K, x.data(), q.data(), n);
  const auto blk = quant::load_block<quant::BlockQ4_K>(q.data(), 0);
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    quant::get_scale_min(j, blk.scales, &sc, &m);
    EXPECT_GT(sc, 0) << j;  // Gaussian sub-blocks all need a step
    EXPECT_LE(sc, 63);
    EXPECT_LE(m, 63);
  }
}

}  // namespace
}  // namespace codey
