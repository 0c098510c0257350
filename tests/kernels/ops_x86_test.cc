// The x86 elementwise kernels and fused attention (src/kernels/x86/ops_impl.h)
// against the scalar reference on every ISA this CPU runs: tails shorter than
// a vector, extreme inputs, every rope style, attention across block edges
// with windows, GQA, soft-capping, several sequences and f16/q8_0 caches, and
// batch invariance (a token alone gets the bits it gets among others).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "codey/kernels.h"
#include "codey/thread_pool.h"

namespace codey::kernels {
namespace {

std::vector<const KernelTable*> fast_tables() {
  std::vector<const KernelTable*> out;
  for (auto n : available_isas())
    if (n != "ref") out.push_back(kernel_table(n));
  return out;
}

std::vector<float> randn(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// max |a - b| / max(1, |b|) elementwise.
double max_rel(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0.0;
  for (size_t i = 0; i < a.size(); ++i)
    m = std::max(m, std::fabs(double(a[i]) - b[i]) / std::max(1.0, std::fabs(double(b[i]))));
  return m;
}

// Every test here compares the SIMD tables with ref: on a CPU without one
// there is nothing to compare, and the test says so.
class OpsX86 : public ::testing::Test {
 protected:
  void SetUp() override {
    if (fast_tables().empty()) GTEST_SKIP() << "no x86 SIMD kernel table on this CPU (nothing to compare with ref)";
  }
};

TEST_F(OpsX86, RmsNormWithAndWithoutWeights) {
  for (const KernelTable* kt : fast_tables())
    for (int64_t n : {1, 7, 16, 33, 896, 2048, 2051}) {
      SCOPED_TRACE(fmt::format("{} n {}", kt->name, n));
      const auto x = randn(static_cast<size_t>(n), 1, 3.0f);
      const auto w = randn(static_cast<size_t>(n), 2);
      for (const float* wp : {w.data(), static_cast<const float*>(nullptr)}) {
        std::vector<float> got(x.size()), want(x.size());
        kt->rms_norm(x.data(), wp, got.data(), n, 1e-6f);
        ref_kernel_table().rms_norm(x.data(), wp, want.data(), n, 1e-6f);
        EXPECT_LT(max_rel(got, want), 1e-5);
        // In place (x == y) as the model calls it.
        std::vector<float> inplace = x;
        kt->rms_norm(inplace.data(), wp, inplace.data(), n, 1e-6f);
        EXPECT_EQ(inplace, got);
      }
    }
}

TEST_F(OpsX86, ActivationsAndSoftmax) {
  for (const KernelTable* kt : fast_tables())
    for (int64_t n : {1, 5, 8, 17, 64, 5504, 4867}) {
      SCOPED_TRACE(fmt::format("{} n {}", kt->name, n));
      auto g = randn(static_cast<size_t>(n), 3, 4.0f);
      const auto u = randn(static_cast<size_t>(n), 4, 2.0f);
      // Extremes: saturating exp on both sides, zero.
      g[0] = -120.0f;
      if (n > 2) g[1] = 95.0f;
      if (n > 3) g[2] = 0.0f;
      for (int which = 0; which < 2; ++which) {
        std::vector<float> got(g.size()), want(g.size());
        auto fast = which == 0 ? kt->swiglu : kt->geglu;
        auto ref = which == 0 ? ref_kernel_table().swiglu : ref_kernel_table().geglu;
        fast(g.data(), u.data(), got.data(), n);
        ref(g.data(), u.data(), want.data(), n);
        EXPECT_LT(max_rel(got, want), 2e-6) << (which == 0 ? "swiglu" : "geglu");
        std::vector<float> alias = g;  // y aliases gate
        fast(alias.data(), u.data(), alias.data(), n);
        EXPECT_EQ(alias, got);
      }
      std::vector<float> got = g, want = g;
      if (n > 1) got[0] = want[0] = -INFINITY;  // a masked entry
      kt->softmax(got.data(), n);
      ref_kernel_table().softmax(want.data(), n);
      EXPECT_LT(max_rel(got, want), 1e-6);
      double sum = 0;
      for (float v : got) sum += v;
      EXPECT_NEAR(sum, 1.0, 1e-5);
      if (n > 1) {
        EXPECT_EQ(got[0], 0.0f);
      }
    }
}

TEST_F(OpsX86, RopeEveryStyle) {
  std::vector<RopeParams> styles;
  for (bool neox : {false, true})
    for (int n_rot : {128, 64, 32, 6}) {  // full, partial, one vector, tail
      RopeParams p;
      p.n_rot = n_rot;
      p.neox = neox;
      p.freq_base = 100000.0f;
      styles.push_back(p);
    }
  RopeParams linear;
  linear.n_rot = 128;
  linear.freq_scale = 0.25f;
  styles.push_back(linear);
  RopeParams yarn;
  yarn.n_rot = 64;
  yarn.neox = true;
  yarn.freq_scale = 0.125f;
  yarn.ext_factor = 1.0f;
  yarn.n_ctx_orig = 4096;
  styles.push_back(yarn);
  std::vector<float> factors(64);
  for (int i = 0; i < 64; ++i) factors[static_cast<size_t>(i)] = 1.0f + 0.1f * static_cast<float>(i);
  RopeParams ff;
  ff.n_rot = 128;
  ff.freq_factors = factors.data();
  styles.push_back(ff);
  for (const KernelTable* kt : fast_tables())
    for (const RopeParams& p : styles)
      for (int32_t pos : {0, 1, 17, 4095, 16383}) {
        SCOPED_TRACE(fmt::format("{} n_rot {} neox {} pos {}", kt->name, p.n_rot, p.neox, pos));
        const int64_t n_head = 3, hd = 128;
        auto got = randn(static_cast<size_t>(n_head * hd), static_cast<uint32_t>(pos + 5));
        auto want = got;
        kt->rope(got.data(), n_head, hd, pos, p);
        ref_kernel_table().rope(want.data(), n_head, hd, pos, p);
        EXPECT_LT(max_rel(got, want), 1e-6);
      }
}

TEST_F(OpsX86, StoreRowRoundTrips) {
  for (const KernelTable* kt : fast_tables())
    for (TensorType t : {TensorType::kF16, TensorType::kQ8_0, TensorType::kF32})
      for (int64_t n : {32, 64, 128, 96}) {
        SCOPED_TRACE(fmt::format("{} {} n {}", kt->name, type_name(t), n));
        auto x = randn(static_cast<size_t>(n), 9, 2.0f);
        x[3] = 300.0f;  // an outlier block
        std::vector<uint8_t> a(row_bytes(t, n)), b(row_bytes(t, n));
        kt->store_row(t, x.data(), a.data(), n);
        ref_kernel_table().store_row(t, x.data(), b.data(), n);
        if (t == TensorType::kF16 || t == TensorType::kF32) {
          EXPECT_EQ(a, b);  // exact conversions
          continue;
        }
        // The reference searches the q8_0 scale; the fast path rounds like the
        // reference implementation's KV cache (d = amax/127 as f16, q =
        // round(x/d)): every value within about half a step of its block's d.
        std::vector<float> da(static_cast<size_t>(n));
        ref_kernel_table().get_row(t, a.data(), da.data(), n);
        for (int64_t i = 0; i < n; ++i) {
          uint16_t dh;
          std::memcpy(&dh, a.data() + 34 * (i / 32), 2);
          float amax = 0.0f;
          for (int64_t j = i / 32 * 32; j < i / 32 * 32 + 32; ++j) amax = std::max(amax, std::fabs(x[static_cast<size_t>(j)]));
          EXPECT_NEAR(fp16_to_fp32(dh), amax / 127.0f, amax / 127.0f * 1e-3);
          EXPECT_LE(std::fabs(da[static_cast<size_t>(i)] - x[static_cast<size_t>(i)]), 0.56f * fp16_to_fp32(dh)) << i;
        }
      }
}

struct AttnCase {
  TensorType kv;
  int64_t n_head, n_head_kv, dk, n_ctx, n_tokens;
  int n_seq;
  int32_t window;
  float softcap;
  int64_t dv = 0;     // 0: dk
  int64_t slack = 0;  // sequence s holds n_ctx - slack - s positions; the rest of the cache is NaN bytes
};

TEST_F(OpsX86, AttentionMatchesReference) {
  const AttnCase cases[] = {
      {TensorType::kF16, 4, 4, 64, 7, 1, 1, 0, 0.0f},         // decode, tiny context
      {TensorType::kF16, 16, 16, 128, 300, 1, 1, 0, 0.0f},    // decode across blocks
      {TensorType::kQ8_0, 14, 2, 64, 200, 1, 1, 0, 0.0f},     // GQA decode, q8_0 cache
      {TensorType::kF16, 6, 2, 32, 130, 130, 1, 0, 0.0f},     // prefill from 0, tiles of tokens
      {TensorType::kF16, 4, 1, 256, 100, 37, 1, 0, 30.0f},    // soft-capping, big heads
      {TensorType::kQ8_0, 8, 4, 128, 150, 40, 1, 33, 0.0f},   // sliding window inside a block
      {TensorType::kF16, 4, 2, 64, 90, 6, 3, 0, 0.0f},        // several sequences in one batch
      {TensorType::kF16, 2, 2, 40, 77, 5, 1, 1, 0.0f},        // window 1, dims not a multiple of 16 (ref on AVX-512)
      // Generation deep in the cache: one token's positions split into spans
      // of 1024, merged afterwards.
      {TensorType::kF16, 14, 2, 64, 2500, 1, 1, 0, 0.0f},     // GQA, 3 spans, the last short
      {TensorType::kQ8_0, 4, 4, 128, 1500, 1, 1, 1100, 0.0f}, // window across a span edge
      {TensorType::kF16, 4, 2, 64, 1300, 3, 3, 0, 0.0f},      // a decode batch of 3 sequences
      {TensorType::kF16, 2, 1, 80, 1100, 1, 1, 0, 0.0f},      // dk 80 (5 vectors of 16, 10 of 8)
      {TensorType::kF16, 4, 1, 256, 2049, 1, 1, 0, 30.0f},    // soft-capping, 1024 + 1024 + 1
      // Query chunks: 7 heads per KV head (one chunk of 7 on AVX-512, 4 + 3 on
      // AVX2), in generation and over a prefill's tiles of 16 tokens (112
      // queries: chunks of 8 / 4); 10 and 5 heads give chunks of 5 and 3.
      {TensorType::kF16, 28, 4, 128, 1030, 1, 1, 0, 0.0f},
      {TensorType::kF16, 14, 2, 64, 300, 35, 1, 0, 0.0f},
      {TensorType::kF16, 10, 1, 64, 200, 1, 1, 0, 0.0f},
      {TensorType::kF16, 10, 2, 64, 200, 3, 1, 0, 0.0f},
      {TensorType::kBF16, 8, 2, 64, 70, 3, 1, 0, 0.0f},       // the other cache types
      {TensorType::kF32, 8, 8, 32, 45, 2, 1, 0, 0.0f},
      {TensorType::kQ8_0, 12, 2, 128, 3000, 2, 2, 0, 0.0f},   // two sequences deep in the cache
      {TensorType::kF16, 4, 2, 64, 16, 16, 1, 0, 0.0f},       // exactly one tile, prefill
      // K and V head sizes differ (MLA-style 192/128, and the other way).
      {TensorType::kF16, 8, 2, 192, 300, 4, 1, 0, 0.0f, 128},
      {TensorType::kQ8_0, 6, 3, 64, 1100, 1, 1, 0, 0.0f, 128},
      // Caches longer than what the sequences hold, the rest NaN bytes: rows
      // past a sequence's end (K tiles and V rows) must never be read.
      {TensorType::kF16, 14, 2, 64, 1200, 1, 2, 0, 0.0f, 0, 37},
      {TensorType::kQ8_0, 8, 2, 128, 400, 20, 2, 50, 0.0f, 0, 5},
      {TensorType::kF16, 4, 4, 128, 100, 3, 3, 0, 0.0f, 0, 1},
      // Drafted tokens verified in one pass (speculative decoding), across
      // the span edges where a lone token's positions are split.
      {TensorType::kF16, 14, 2, 64, 1030, 9, 1, 0, 0.0f},
      {TensorType::kQ8_0, 8, 2, 128, 2060, 5, 1, 0, 0.0f},
      {TensorType::kF16, 4, 2, 64, 1500, 6, 2, 1100, 0.0f},
      {TensorType::kF16, 4, 1, 256, 2051, 17, 1, 0, 30.0f},
  };
  for (const KernelTable* kt : fast_tables())
    for (const AttnCase& c : cases) {
      const int64_t dk = c.dk, dv = c.dv ? c.dv : c.dk;
      SCOPED_TRACE(fmt::format("{} {} heads {}/{} dk {} dv {} ctx {} slack {} tokens {} seqs {} window {} softcap {}",
                               kt->name, type_name(c.kv), c.n_head, c.n_head_kv, dk, dv, c.n_ctx, c.slack, c.n_tokens,
                               c.n_seq, c.window, c.softcap));
      // V plain rows; K tiled (codey/kernels.h), its positions rounded up to
      // whole tiles. Every byte no sequence wrote is 0xFF (NaN in every
      // type): it must never reach a result.
      const size_t k_row = row_bytes(c.kv, dk), v_row = row_bytes(c.kv, dv);
      const int64_t k_positions = (c.n_ctx + kKvTile - 1) / kKvTile * kKvTile;
      const size_t v_head = v_row * static_cast<size_t>(c.n_ctx), k_head = k_row * static_cast<size_t>(k_positions);
      const auto n_heads = static_cast<size_t>(c.n_head_kv * c.n_seq);
      std::vector<uint8_t> kc(k_head * n_heads, 0xFF), vc(v_head * n_heads, 0xFF), enc(k_row);
      const auto length = [&](int s) { return c.n_ctx - c.slack - s * (c.slack > 0 ? 3 : 0); };
      const auto vals = randn(n_heads * static_cast<size_t>(c.n_ctx * (dk + dv)), 11, 1.5f);
      for (size_t head = 0; head < n_heads; ++head) {
        const int s = static_cast<int>(head / static_cast<size_t>(c.n_head_kv));
        for (int64_t pos = 0; pos < length(s); ++pos) {
          const float* x = vals.data() + (head * static_cast<size_t>(c.n_ctx) + static_cast<size_t>(pos)) *
                                             static_cast<size_t>(dk + dv);
          ref_kernel_table().store_row(c.kv, x, enc.data(), dk);
          write_tile_row(c.kv, enc.data(), dk, kc.data() + head * k_head + static_cast<size_t>(pos / kKvTile * kKvTile) * k_row,
                         pos % kKvTile);
          ref_kernel_table().store_row(c.kv, x + dk, vc.data() + head * v_head + static_cast<size_t>(pos) * v_row, dv);
        }
      }
      const auto q = randn(static_cast<size_t>(c.n_tokens * c.n_head * dk), 12, 2.0f);
      std::vector<int32_t> seq(static_cast<size_t>(c.n_tokens)), pos(static_cast<size_t>(c.n_tokens));
      for (int64_t t = 0; t < c.n_tokens; ++t) {
        // Tokens of a sequence are consecutive and end at its last position.
        const int s = static_cast<int>(t * c.n_seq / c.n_tokens);
        seq[static_cast<size_t>(t)] = s;
        int64_t last_of_s = t;
        while (last_of_s + 1 < c.n_tokens && (last_of_s + 1) * c.n_seq / c.n_tokens == s) ++last_of_s;
        pos[static_cast<size_t>(t)] = static_cast<int32_t>(length(s) - 1 - (last_of_s - t));
      }
      AttentionArgs a;
      a.q = q.data();
      a.q_stride = c.n_head * dk;
      a.out_stride = c.n_head * dv + 5;
      a.n_tokens = c.n_tokens;
      a.n_head = c.n_head;
      a.n_head_kv = c.n_head_kv;
      a.head_dim_k = dk;
      a.head_dim_v = dv;
      a.seq = seq.data();
      a.pos = pos.data();
      a.k = {c.kv, kc.data(), k_head * static_cast<size_t>(c.n_head_kv), k_head, k_row, true};
      a.v = {c.kv, vc.data(), v_head * static_cast<size_t>(c.n_head_kv), v_head, v_row, false};
      a.window = c.window;
      a.scale = 1.0f / std::sqrt(static_cast<float>(dk));
      a.softcap = c.softcap;
      std::vector<float> one_thread;
      for (int threads : {1, 2, 3}) {
        ThreadPool pool(threads);
        std::vector<float> got(static_cast<size_t>(c.n_tokens * a.out_stride), 7.0f), want = got;
        a.out = got.data();
        kt->attention(a, pool);
        a.out = want.data();
        ref_kernel_table().attention(a, pool);
        EXPECT_LT(max_rel(got, want), 2e-5);
        if (threads == 1)
          one_thread = got;
        else
          EXPECT_EQ(got, one_thread) << "result depends on the thread count (" << threads << ")";
        for (int64_t t = 0; t < c.n_tokens; ++t)  // the padding after each token's heads is untouched
          for (int64_t i = c.n_head * dv; i < a.out_stride; ++i)
            ASSERT_EQ(got[static_cast<size_t>(t * a.out_stride + i)], 7.0f);
      }
      // Batch invariance: each token alone gets exactly the bits it got in
      // the batch (speculative decoding verifies drafted tokens in one pass
      // and must reproduce token-by-token decoding; continuous batching must
      // not make a sequence's output depend on the others).
      ThreadPool pool(2);
      for (int64_t t = 0; t < c.n_tokens; ++t) {
        AttentionArgs one = a;
        one.q = q.data() + t * a.q_stride;
        one.n_tokens = 1;
        one.seq = seq.data() + t;
        one.pos = pos.data() + t;
        std::vector<float> alone(static_cast<size_t>(a.out_stride));
        one.out = alone.data();
        kt->attention(one, pool);
        for (int64_t i = 0; i < c.n_head * dv; ++i)
          ASSERT_EQ(alone[static_cast<size_t>(i)], one_thread[static_cast<size_t>(t * a.out_stride + i)])
              << "token " << t << " (position " << pos[static_cast<size_t>(t)] << ") alone differs from the batch at "
              << i;
      }
    }
}

}  // namespace
}  // namespace codey::kernels
