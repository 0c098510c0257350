// The reference-made fixture models as oracle: every tensor of every file in
// ../shared/testdata/models dequantizes to finite values close to its f16
// original (a wrong layout would be far off), and re-quantizing the f16
// original with codey is at least as close as the reference's own file,
// tensor by tensor (tests src/quant/ against files made by llama-quantize).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "codey/gguf.h"
#include "codey/quant.h"
#include "testing/testing.h"

namespace codey {
namespace {

std::vector<float> dequantize_tensor(const TensorView& v) {
  std::vector<float> out(static_cast<size_t>(v.n_elements()));
  for (int64_t r = 0; r < v.n_rows(); ++r) dequantize_row(v.type, v.row(r), out.data() + r * v.ne[0], v.ne[0]);
  return out;
}

std::vector<float> requantize(TensorType t, const std::vector<float>& x, int64_t row) {
  std::vector<float> y(x.size());
  std::vector<uint8_t> q(row_bytes(t, row));
  for (size_t r = 0; r < x.size() / static_cast<size_t>(row); ++r) {
    quantize_row(t, x.data() + r * row, q.data(), row);
    dequantize_row(t, q.data(), y.data() + r * row, row);
  }
  return y;
}

double rms(const std::vector<float>& a) {
  double s = 0;
  for (float v : a) s += double(v) * v;
  return std::sqrt(s / static_cast<double>(a.size()));
}
double rmse(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
  return std::sqrt(s / static_cast<double>(a.size()));
}

// Largest relative RMSE (vs the f16 original) a correct decoder of the
// reference's file can show, per type: ~1.3x the reference's figure on
// Gaussian data. A misread layout gives ~1 or more.
double max_relative_error(TensorType t) {
  switch (t) {
    case TensorType::kQ8_0: return 0.008;
    case TensorType::kQ6_K: return 0.025;
    case TensorType::kQ5_0: return 0.06;
    case TensorType::kQ5_K: return 0.05;
    case TensorType::kQ4_0: return 0.12;
    case TensorType::kQ4_K: return 0.1;
    case TensorType::kQ3_K: return 0.2;
    default: return 0;
  }
}

struct Pair {
  const char* quantized;
  const char* original;
};
const Pair kFiles[] = {
    {"tiny-llama-Q8_0.gguf", "tiny-llama-f16.gguf"},      {"tiny-llama-Q4_0.gguf", "tiny-llama-f16.gguf"},
    {"tiny-llama-Q4_K_M.gguf", "tiny-llama-f16.gguf"},    {"tiny-llama-Q5_K_M.gguf", "tiny-llama-f16.gguf"},
    {"tiny-llama-Q3_K_M.gguf", "tiny-llama-f16.gguf"},    {"micro-qwen2-Q8_0.gguf", "micro-qwen2-f16.gguf"},
    {"micro-qwen2-Q4_K_M.gguf", "micro-qwen2-f16.gguf"},
};

class Fixture : public ::testing::TestWithParam<Pair> {};

TEST_P(Fixture, DecodesCloseToOriginalAndCodeyIsAtLeastAsClose) {
  const Pair p = GetParam();
  auto q = GgufFile::open(testing::testdata(std::string("models/") + p.quantized));
  ASSERT_TRUE(q) << q.error().message;
  auto f = GgufFile::open(testing::testdata(std::string("models/") + p.original));
  ASSERT_TRUE(f) << f.error().message;
  std::map<TensorType, std::pair<double, double>> sums;  // type -> (ref, ours) squared error sums
  std::map<TensorType, double> counts;
  int compared = 0;
  for (const auto& info : q->tensors()) {
    const TensorView qv = q->view(info);
    const auto* orig_info = f->find_tensor(info.name);
    ASSERT_NE(orig_info, nullptr) << info.name;
    const TensorView fv = f->view(*orig_info);
    ASSERT_EQ(fv.n_elements(), qv.n_elements()) << info.name;
    const auto ref = dequantize_tensor(qv);
    const auto x = dequantize_tensor(fv);
    for (float v : ref) ASSERT_TRUE(std::isfinite(v)) << info.name;
    for (float v : x) ASSERT_TRUE(std::isfinite(v)) << info.name;
    if (qv.type == TensorType::kF32 || qv.type == TensorType::kF16) {
      EXPECT_EQ(ref, x) << info.name << ": unquantized tensors are copied";
      continue;
    }
    const double scale = rms(x);
    ASSERT_GT(scale, 0) << info.name;
    const double e_ref = rmse(ref, x);
    EXPECT_LE(e_ref / scale, max_relative_error(qv.type))
        << info.name << " " << type_name(qv.type) << ": the reference's file decodes far from the original";
    const auto ours = requantize(qv.type, x, qv.ne[0]);
    const double e_ours = rmse(ours, x);
    // Per tensor, a hair of slack for small tensors; overall (below) none.
    EXPECT_LE(e_ours, e_ref * 1.005) << info.name << " " << type_name(qv.type);
    const double n = static_cast<double>(x.size());
    sums[qv.type].first += e_ref * e_ref * n;
    sums[qv.type].second += e_ours * e_ours * n;
    counts[qv.type] += n;
    std::printf("  %-28s %-5s rel rmse ref %.5f codey %.5f (%.4f)\n", std::string(info.name).c_str(),
                std::string(type_name(qv.type)).c_str(), e_ref / scale, e_ours / scale, e_ours / e_ref);
    ++compared;
  }
  EXPECT_GT(compared, 0);
  for (const auto& [t, s] : sums) {
    const double ref = std::sqrt(s.first / counts[t]), ours = std::sqrt(s.second / counts[t]);
    std::printf("%s %s: rmse ref %.6f codey %.6f ratio %.4f\n", p.quantized, std::string(type_name(t)).c_str(), ref,
                ours, ours / ref);
    EXPECT_LE(ours, ref) << p.quantized << " " << type_name(t);
  }
}

INSTANTIATE_TEST_SUITE_P(Models, Fixture, ::testing::ValuesIn(kFiles), [](const auto& info) {
  std::string s = info.param.quantized;
  for (char& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return s;
});

TEST(FixtureFiles, EveryTensorOfEveryModelDecodesFinite) {
  for (const char* name : {"tiny-llama-f16.gguf", "micro-qwen2-f16.gguf"}) {
    auto g = GgufFile::open(testing::testdata(std::string("models/") + name));
    ASSERT_TRUE(g) << g.error().message;
    for (const auto& info : g->tensors()) {
      const auto v = dequantize_tensor(g->view(info));
      double mean = 0;
      for (float x : v) {
        ASSERT_TRUE(std::isfinite(x)) << name << " " << info.name;
        mean += x;
      }
      mean /= static_cast<double>(v.size());
      // Norm weights are ones; random weights and biases are centred: the
      // mean of n samples stays within 5 standard errors of 0.
      if (std::string(info.name).find("norm") != std::string::npos) {
        EXPECT_NEAR(mean, 1.0, 0.5) << info.name;
      } else {
        EXPECT_GT(rms(v), 0) << info.name;
        EXPECT_LT(std::fabs(mean), 5 * rms(v) / std::sqrt(double(v.size()))) << info.name;
      }
    }
  }
}

}  // namespace
}  // namespace codey
