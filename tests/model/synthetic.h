// Test-only (header-only: tests/<layer>/ compiles only *_test.cc): writes small GGUF models with random weights (the
// tensors of each architecture's own table) and runs a plain double-precision reference forward pass over the
// same weights, written from the published architectures, not from src/model.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <algorithm>
#include <cmath>
#include <random>

#include <gtest/gtest.h>

#include "codey/gguf.h"
#include "codey/model.h"
#include "codey/quant.h"
#include "codey/tensor.h"

namespace codey::testing {

struct SynthSpec {
  std::string arch = "llama";  // llama | qwen2 | gemma3
  int64_t n_embd = 64, n_layer = 2, n_head = 4, n_head_kv = 2, head_dim = 16, n_ff = 96, n_vocab = 256;
  int64_t n_expert = 0, n_expert_used = 0, n_ff_exp = 0;  // qwen3moe
  int64_t n_rot = 0;           // 0 = head_dim
  int64_t n_ctx_train = 4096;
  float rope_base = 10000.0f;
  float rope_linear_factor = 0.0f;  // > 1: rope.scaling.type linear
  int32_t sliding_window = 0;       // gemma3
  bool qkv_bias = false;
  bool tied = true;
  TensorType wtype = TensorType::kF32;  // type of the 2-D weights
  uint64_t seed = 1;
  // Error-path tests: a rope.scaling.type to write as is, and one tensor
  // written in another type (zero bytes when codey cannot quantize it).
  std::string rope_scaling_type;
  std::string override_tensor;
  TensorType override_type = TensorType::kF32;
};

// Logits [n_tokens][n_vocab] of a causal pass over `tokens`, from the weights
// in the GGUF at `path` (decoded to f32 once), all math in double.
struct ReferenceOptions {
  // For sensitivity checks: each leaves out or changes one detail.
  bool disable_sliding_window = false;
  bool swap_rope_style = false;
  bool skip_qk_norm = false;       // qwen3, gemma3: no per-head q/k RMSNorm
  bool skip_topk_renorm = false;   // qwen3moe: the chosen experts' raw probabilities as weights
};

namespace synth_detail {

struct TensorData {
  std::string name;
  TensorType type;
  std::vector<int64_t> ne;
  std::vector<float> values;
};

}  // namespace synth_detail
using namespace synth_detail;

// The architecture's own tensor table (ArchSpec::layer_tensors) at the
// spec's hyper-parameters.
inline std::vector<TensorDesc> synthetic_tensors(const SynthSpec& s) {
  const ArchSpec* arch = find_arch(s.arch);
  EXPECT_NE(arch, nullptr) << s.arch;
  if (!arch) return {};
  HParams hp;
  hp.arch = s.arch;
  hp.n_vocab = s.n_vocab;
  hp.n_embd = s.n_embd;
  hp.n_layer = s.n_layer;
  hp.n_head = s.n_head;
  hp.n_head_kv = s.n_head_kv;
  hp.head_dim_k = hp.head_dim_v = s.head_dim;
  hp.n_rot = static_cast<int32_t>(s.n_rot ? s.n_rot : s.head_dim);
  hp.n_ff = s.n_ff;
  hp.n_expert = s.n_expert;
  hp.n_expert_used = s.n_expert_used;
  hp.n_ff_exp = s.n_ff_exp;
  std::vector<TensorDesc> out;
  for (TensorDesc& d : model_tensors(*arch, hp, s.tied, /*include_optional=*/true))
    if (d.required || (s.qkv_bias && d.init == TensorInit::kBias)) out.push_back(std::move(d));
  return out;
}

inline void write_synthetic_model(const std::string& path, const SynthSpec& s) {
  std::mt19937_64 rng(s.seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<TensorData> tensors;
  const bool gemma = s.arch == "gemma3";
  for (const TensorDesc& d : synthetic_tensors(s)) {
    // Scales: the (gemma: sqrt(n_embd)-scaled) embeddings O(1); q and k
    // large enough that attention is peaked; the output layer large enough
    // that logits are peaked; norms near 1.
    const float fan_in = static_cast<float>(d.ne[0]);
    float mean = 0.0f, std = 1.0f / std::sqrt(fan_in);
    switch (d.init) {
      case TensorInit::kWeight:
        if (d.name.ends_with("attn_q.weight") || d.name.ends_with("attn_k.weight")) std *= 2.0f;
        // Experts' outputs comparable to the residual stream, so that how
        // they are weighted shows in the logits.
        if (d.name.ends_with("ffn_down_exps.weight")) std *= 4.0f;
        break;
      case TensorInit::kOutput:
        std = d.name == "token_embd.weight" ? (gemma ? 1.0f / std::sqrt(fan_in) : 1.0f) : 3.0f / std::sqrt(fan_in);
        break;
      case TensorInit::kNorm:
        mean = 1.0f;
        std = 0.1f;
        break;
      case TensorInit::kBias:
        std = d.name.ends_with("attn_v.bias") ? 0.1f : 0.5f;
        break;
    }
    TensorData t;
    t.name = d.name;
    // The router stays f32, as quantizers leave it.
    t.type = d.matrix() && !d.name.ends_with("ffn_gate_inp.weight") ? s.wtype : TensorType::kF32;
    t.ne = d.ne;
    int64_t n = 1;
    for (int64_t x : d.ne) n *= x;
    t.values.resize(static_cast<size_t>(n));
    for (auto& v : t.values) v = mean + std * normal(rng);
    tensors.push_back(std::move(t));
  }
  const int64_t dk = s.head_dim;

  GgufWriter w;
  auto key = [&](const char* suffix) { return s.arch + "." + suffix; };
  w.set("general.architecture", GgufValue::make_string(s.arch));
  w.set("general.name", GgufValue::make_string("synthetic-" + s.arch));
  w.set(key("block_count"), GgufValue::make_u32(static_cast<uint32_t>(s.n_layer)));
  w.set(key("context_length"), GgufValue::make_u32(static_cast<uint32_t>(s.n_ctx_train)));
  w.set(key("embedding_length"), GgufValue::make_u32(static_cast<uint32_t>(s.n_embd)));
  w.set(key("feed_forward_length"), GgufValue::make_u32(static_cast<uint32_t>(s.n_ff)));
  w.set(key("attention.head_count"), GgufValue::make_u32(static_cast<uint32_t>(s.n_head)));
  w.set(key("attention.head_count_kv"), GgufValue::make_u32(static_cast<uint32_t>(s.n_head_kv)));
  w.set(key("attention.key_length"), GgufValue::make_u32(static_cast<uint32_t>(dk)));
  w.set(key("attention.value_length"), GgufValue::make_u32(static_cast<uint32_t>(dk)));
  w.set(key("attention.layer_norm_rms_epsilon"), GgufValue::make_f32(1e-6f));
  w.set(key("rope.freq_base"), GgufValue::make_f32(s.rope_base));
  w.set(key("rope.dimension_count"), GgufValue::make_u32(static_cast<uint32_t>(s.n_rot ? s.n_rot : dk)));
  if (!s.rope_scaling_type.empty()) {
    w.set(key("rope.scaling.type"), GgufValue::make_string(s.rope_scaling_type));
    w.set(key("rope.scaling.factor"), GgufValue::make_f32(4.0f));
  } else if (s.rope_linear_factor > 1.0f) {
    w.set(key("rope.scaling.type"), GgufValue::make_string("linear"));
    w.set(key("rope.scaling.factor"), GgufValue::make_f32(s.rope_linear_factor));
  }
  if (s.n_expert > 0) {
    w.set(key("expert_count"), GgufValue::make_u32(static_cast<uint32_t>(s.n_expert)));
    w.set(key("expert_used_count"), GgufValue::make_u32(static_cast<uint32_t>(s.n_expert_used)));
    w.set(key("expert_feed_forward_length"), GgufValue::make_u32(static_cast<uint32_t>(s.n_ff_exp)));
  }
  if (gemma) w.set(key("attention.sliding_window"), GgufValue::make_u32(static_cast<uint32_t>(s.sliding_window)));
  for (auto& t : tensors)
    if (t.name == s.override_tensor) t.type = s.override_type;
  for (const auto& t : tensors) w.add_tensor(t.name, t.type, t.ne);
  ASSERT_TRUE(w.begin(path).has_value());
  for (const auto& t : tensors) {
    std::vector<uint8_t> bytes(row_bytes(t.type, t.ne[0]) * (t.values.size() / static_cast<size_t>(t.ne[0])));
    const int64_t rows = static_cast<int64_t>(t.values.size()) / t.ne[0];
    if (type_traits(t.type).quantizable)
    for (int64_t r = 0; r < rows; ++r)
      quantize_row(t.type, t.values.data() + r * t.ne[0], bytes.data() + static_cast<size_t>(r) * row_bytes(t.type, t.ne[0]),
                   t.ne[0]);
    ASSERT_TRUE(w.write_tensor_data(bytes).has_value()) << t.name;
  }
  ASSERT_TRUE(w.finish().has_value());
}

namespace synth_detail {

using Mat = std::vector<double>;  // row-major

struct RefWeights {
  const GgufFile* file;
  Mat get(const std::string& name) const {
    const GgufTensorInfo* info = file->find_tensor(name);
    if (!info) return {};
    TensorView v = file->view(*info);
    std::vector<float> row(static_cast<size_t>(v.ne[0]));
    Mat out;
    out.reserve(static_cast<size_t>(v.n_elements()));
    for (int64_t r = 0; r < v.n_rows(); ++r) {
      dequantize_row(v.type, v.row(r), row.data(), v.ne[0]);
      out.insert(out.end(), row.begin(), row.end());
    }
    return out;
  }
};

// y[n_out] = W[n_out][n_in] x[n_in]
inline std::vector<double> matvec(const Mat& w, const std::vector<double>& x, int64_t n_out) {
  const auto n_in = static_cast<int64_t>(x.size());
  std::vector<double> y(static_cast<size_t>(n_out), 0.0);
  for (int64_t o = 0; o < n_out; ++o) {
    double acc = 0.0;
    for (int64_t i = 0; i < n_in; ++i) acc += w[static_cast<size_t>(o * n_in + i)] * x[static_cast<size_t>(i)];
    y[static_cast<size_t>(o)] = acc;
  }
  return y;
}

inline void rms_norm(std::vector<double>& x, const Mat& w, size_t off, size_t n, double eps) {
  double ss = 0;
  for (size_t i = 0; i < n; ++i) ss += x[off + i] * x[off + i];
  const double scale = 1.0 / std::sqrt(ss / double(n) + eps);
  for (size_t i = 0; i < n; ++i) x[off + i] = x[off + i] * scale * w[i];
}

inline double gelu_tanh(double x) { return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x))); }
inline double silu(double x) { return x / (1.0 + std::exp(-x)); }

}  // namespace synth_detail
using namespace synth_detail;

inline std::vector<std::vector<float>> reference_forward(const std::string& path, const SynthSpec& s,
                                                  const std::vector<int32_t>& tokens, const ReferenceOptions& opt = {}) {
  auto file = GgufFile::open(path);
  EXPECT_TRUE(file.has_value());
  RefWeights W{&*file};
  const bool gemma = s.arch == "gemma3";
  const bool neox = (s.arch != "llama") != opt.swap_rope_style;
  const int64_t T = static_cast<int64_t>(tokens.size()), E = s.n_embd, dk = s.head_dim;
  const int64_t n_rot = s.n_rot ? s.n_rot : dk;
  const double eps = 1e-6;
  const Mat emb = W.get("token_embd.weight");
  std::vector<std::vector<double>> x(static_cast<size_t>(T), std::vector<double>(static_cast<size_t>(E)));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < E; ++i)
      x[t][i] = emb[static_cast<size_t>(tokens[t] * E + i)] * (gemma ? std::sqrt(double(E)) : 1.0);

  for (int64_t il = 0; il < s.n_layer; ++il) {
    const std::string p = "blk." + std::to_string(il) + ".";
    // gemma3: every 6th layer (5, 11, ...) global, the others local with rope base 10000.
    const bool local = gemma && (il % 6) < 5 && !opt.disable_sliding_window;
    const double base = gemma && (il % 6) < 5 ? 10000.0 : s.rope_base;
    const double scale = gemma && (il % 6) < 5 ? 1.0 : (s.rope_linear_factor > 1.0f ? 1.0 / s.rope_linear_factor : 1.0);
    const Mat wq = W.get(p + "attn_q.weight"), wk = W.get(p + "attn_k.weight"), wv = W.get(p + "attn_v.weight");
    const Mat wo = W.get(p + "attn_output.weight");
    const Mat bq = W.get(p + "attn_q.bias"), bk = W.get(p + "attn_k.bias"), bv = W.get(p + "attn_v.bias");
    const Mat qn = W.get(p + "attn_q_norm.weight"), kn = W.get(p + "attn_k_norm.weight");
    std::vector<std::vector<double>> Q(T), K(T), V(T);
    for (int64_t t = 0; t < T; ++t) {
      std::vector<double> h = x[t];
      rms_norm(h, W.get(p + "attn_norm.weight"), 0, static_cast<size_t>(E), eps);
      Q[t] = matvec(wq, h, s.n_head * dk);
      K[t] = matvec(wk, h, s.n_head_kv * dk);
      V[t] = matvec(wv, h, s.n_head_kv * dk);
      for (size_t i = 0; i < bq.size(); ++i) Q[t][i] += bq[i];
      for (size_t i = 0; i < bk.size(); ++i) K[t][i] += bk[i];
      for (size_t i = 0; i < bv.size(); ++i) V[t][i] += bv[i];
      auto rope = [&](std::vector<double>& v, int64_t n_heads) {
        for (int64_t h = 0; h < n_heads; ++h)
          for (int64_t i = 0; i < n_rot / 2; ++i) {
            const double theta = double(t) * scale * std::pow(base, -2.0 * double(i) / double(n_rot));
            const size_t a = static_cast<size_t>(h * dk + (neox ? i : 2 * i));
            const size_t b = static_cast<size_t>(h * dk + (neox ? i + n_rot / 2 : 2 * i + 1));
            const double x0 = v[a], x1 = v[b];
            v[a] = x0 * std::cos(theta) - x1 * std::sin(theta);
            v[b] = x0 * std::sin(theta) + x1 * std::cos(theta);
          }
      };
      if (!qn.empty() && !opt.skip_qk_norm)
        for (int64_t h = 0; h < s.n_head; ++h) rms_norm(Q[t], qn, static_cast<size_t>(h * dk), static_cast<size_t>(dk), eps);
      if (!kn.empty() && !opt.skip_qk_norm)
        for (int64_t h = 0; h < s.n_head_kv; ++h) rms_norm(K[t], kn, static_cast<size_t>(h * dk), static_cast<size_t>(dk), eps);
      rope(Q[t], s.n_head);
      rope(K[t], s.n_head_kv);
    }
    for (int64_t t = 0; t < T; ++t) {
      std::vector<double> attn(static_cast<size_t>(s.n_head * dk), 0.0);
      for (int64_t h = 0; h < s.n_head; ++h) {
        const int64_t hk = h / (s.n_head / s.n_head_kv);
        const int64_t lo = local ? std::max<int64_t>(0, t - s.sliding_window + 1) : 0;
        std::vector<double> sc;
        double mx = -1e300;
        for (int64_t j = lo; j <= t; ++j) {
          double d = 0;
          for (int64_t i = 0; i < dk; ++i) d += Q[t][h * dk + i] * K[j][hk * dk + i];
          sc.push_back(d / std::sqrt(double(dk)));
          mx = std::max(mx, sc.back());
        }
        double sum = 0;
        for (auto& v : sc) sum += (v = std::exp(v - mx));
        for (int64_t j = lo; j <= t; ++j)
          for (int64_t i = 0; i < dk; ++i) attn[h * dk + i] += sc[j - lo] / sum * V[j][hk * dk + i];
      }
      std::vector<double> o = matvec(wo, attn, E);
      if (gemma) rms_norm(o, W.get(p + "post_attention_norm.weight"), 0, static_cast<size_t>(E), eps);
      for (int64_t i = 0; i < E; ++i) x[t][i] += o[i];
    }
    const Mat router = W.get(p + "ffn_gate_inp.weight");
    if (!router.empty()) {
      // Mixture of experts: softmax over the router's logits, the
      // n_expert_used most probable experts, their probabilities divided by
      // their sum; each a SwiGLU FFN whose matrices are slices of 3-D tensors
      // [n_expert][rows][cols].
      const Mat g_all = W.get(p + "ffn_gate_exps.weight"), u_all = W.get(p + "ffn_up_exps.weight");
      const Mat d_all = W.get(p + "ffn_down_exps.weight");
      const int64_t F = s.n_ff_exp;
      auto slice = [](const Mat& all, int64_t e, int64_t rows, int64_t cols) {
        return Mat(all.begin() + e * rows * cols, all.begin() + (e + 1) * rows * cols);
      };
      for (int64_t t = 0; t < T; ++t) {
        std::vector<double> h = x[t];
        rms_norm(h, W.get(p + "ffn_norm.weight"), 0, static_cast<size_t>(E), eps);
        std::vector<double> prob = matvec(router, h, s.n_expert);
        const double mx = *std::max_element(prob.begin(), prob.end());
        double z = 0;
        for (auto& v : prob) z += (v = std::exp(v - mx));
        for (auto& v : prob) v /= z;
        std::vector<int64_t> order(static_cast<size_t>(s.n_expert));
        for (int64_t e = 0; e < s.n_expert; ++e) order[e] = e;
        std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return prob[a] > prob[b]; });
        double chosen = 0;
        for (int64_t j = 0; j < s.n_expert_used; ++j) chosen += prob[order[j]];
        std::vector<double> y(static_cast<size_t>(E), 0.0);
        for (int64_t j = 0; j < s.n_expert_used; ++j) {
          const int64_t e = order[j];
          const double wgt = opt.skip_topk_renorm ? prob[e] : prob[e] / chosen;
          std::vector<double> g = matvec(slice(g_all, e, F, E), h, F), u = matvec(slice(u_all, e, F, E), h, F);
          for (int64_t i = 0; i < F; ++i) g[i] = silu(g[i]) * u[i];
          const std::vector<double> d = matvec(slice(d_all, e, E, F), g, E);
          for (int64_t i = 0; i < E; ++i) y[i] += wgt * d[i];
        }
        for (int64_t i = 0; i < E; ++i) x[t][i] += y[i];
      }
      continue;
    }
    const Mat wg = W.get(p + "ffn_gate.weight"), wu = W.get(p + "ffn_up.weight"), wd = W.get(p + "ffn_down.weight");
    for (int64_t t = 0; t < T; ++t) {
      std::vector<double> h = x[t];
      rms_norm(h, W.get(p + "ffn_norm.weight"), 0, static_cast<size_t>(E), eps);
      std::vector<double> g = matvec(wg, h, s.n_ff), u = matvec(wu, h, s.n_ff);
      for (int64_t i = 0; i < s.n_ff; ++i) g[i] = (gemma ? gelu_tanh(g[i]) : silu(g[i])) * u[i];
      std::vector<double> d = matvec(wd, g, E);
      if (gemma) rms_norm(d, W.get(p + "post_ffw_norm.weight"), 0, static_cast<size_t>(E), eps);
      for (int64_t i = 0; i < E; ++i) x[t][i] += d[i];
    }
  }
  const Mat out_norm = W.get("output_norm.weight");
  Mat out = W.get("output.weight");
  if (out.empty()) out = emb;
  std::vector<std::vector<float>> logits;
  for (int64_t t = 0; t < T; ++t) {
    std::vector<double> h = x[t];
    rms_norm(h, out_norm, 0, static_cast<size_t>(E), eps);
    std::vector<double> l = matvec(out, h, s.n_vocab);
    logits.emplace_back(l.begin(), l.end());
  }
  return logits;
}

inline double kl_divergence(const float* p, const float* q, int64_t n) {
  double mp = -1e300, mq = -1e300;
  for (int64_t i = 0; i < n; ++i) {
    mp = std::max(mp, double(p[i]));
    mq = std::max(mq, double(q[i]));
  }
  double sp = 0, sq = 0;
  for (int64_t i = 0; i < n; ++i) {
    sp += std::exp(double(p[i]) - mp);
    sq += std::exp(double(q[i]) - mq);
  }
  const double lp = std::log(sp), lq = std::log(sq);
  double kl = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double a = double(p[i]) - mp - lp, b = double(q[i]) - mq - lq;
    kl += std::exp(a) * (a - b);
  }
  return kl;
}

inline int64_t argmax(const float* x, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i)
    if (x[i] > x[best]) best = i;
  return best;
}

}  // namespace codey::testing
