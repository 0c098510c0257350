// The shared layer blocks: what every architecture file is built from.
#include "model/blocks.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace codey {

kernels::RopeParams Forward::rope_params(int64_t il) const {
  kernels::RopeParams p;
  p.n_rot = hp.n_rot;
  p.neox = hp.rope_neox;
  const bool swa = hp.is_swa(il);
  p.freq_base = swa ? hp.rope_freq_base_swa : hp.rope_freq_base;
  p.freq_scale = swa ? hp.rope_freq_scale_swa : hp.rope_freq_scale;
  p.ext_factor = hp.yarn_ext_factor;
  p.attn_factor = hp.yarn_attn_factor;
  p.beta_fast = hp.yarn_beta_fast;
  p.beta_slow = hp.yarn_beta_slow;
  p.n_ctx_orig = hp.rope_n_ctx_orig;
  p.freq_factors = layer(il).rope_freqs;
  return p;
}

namespace blocks {

void norm(Forward& f, const float* in, const float* w, float* out, int64_t dim) {
  const auto rms_norm = f.kt.rms_norm;
  const float eps = f.hp.rms_eps;
  f.pool.parallel_for(f.n, 16, [&](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t) rms_norm(in + t * dim, w, out + t * dim, dim, eps);
  });
}

void add(Forward& f, float* x, const float* y) {
  const int64_t d = f.hp.n_embd;
  f.pool.parallel_for(f.n, 16, [&](int64_t t0, int64_t t1, int) {
    for (int64_t i = t0 * d; i < t1 * d; ++i) x[i] += y[i];
  });
}

void linear(Forward& f, const kernels::Matrix& w, const float* bias, const float* in, float* out) {
  f.kt.matmul(w, in, f.n, w.cols, out, w.rows, f.ctx_workspace(), f.pool);
  if (!bias) return;
  for (int64_t t = 0; t < f.n; ++t)
    for (int64_t i = 0; i < w.rows; ++i) out[t * w.rows + i] += bias[i];
}

void linear_precise(Forward& f, const kernels::Matrix& w, const float* bias, const float* in, float* out) {
  const TensorType at = kernels::activation_type(w.type);
  if (at == TensorType::kF32) return linear(f, w, bias, in, out);  // f32 weights: activations are not rounded
  const int64_t k = w.cols, n = w.rows;
  float* x2 = f.precise_x();  // [2n][k]: x, then its remainder
  float* y2 = f.precise_y();  // [2n][n]
  f.pool.parallel_for(f.n, 4, [&](int64_t t0, int64_t t1, int) {
    // 256 values at a time (one Q8_K block, 8 Q8_0 blocks, or 256 f16).
    constexpr int64_t kChunk = 256;
    alignas(64) uint8_t enc[kChunk * 4];
    for (int64_t t = t0; t < t1; ++t) {
      const float* x = in + t * k;
      float* hi = x2 + 2 * t * k;
      float* lo = hi + k;
      for (int64_t c0 = 0; c0 < k; c0 += kChunk) {
        const int64_t c = std::min(kChunk, k - c0);
        kernels::quantize_activation_row(at, x + c0, enc, c);
        kernels::ref_kernel_table().get_row(at, enc, lo + c0, c);
      }
      for (int64_t i = 0; i < k; ++i) {
        hi[i] = x[i];
        lo[i] = x[i] - lo[i];
      }
    }
  });
  f.kt.matmul(w, x2, 2 * f.n, k, y2, n, f.ctx_workspace(), f.pool);
  for (int64_t t = 0; t < f.n; ++t)
    for (int64_t i = 0; i < n; ++i) out[t * n + i] = y2[2 * t * n + i] + y2[(2 * t + 1) * n + i] + (bias ? bias[i] : 0.0f);
}

void self_attention(Forward& f, int64_t il, const float* in, float* out) {
  const HParams& hp = f.hp;
  const LayerWeights& L = f.layer(il);
  const int64_t dk = hp.head_dim_k, dv = hp.head_dim_v;
  const int64_t q_dim = hp.n_head * dk, k_dim = hp.n_head_kv * dk, v_dim = hp.n_head_kv * dv;
  float* q = f.q();  // [n][n_head*dk]
  float* k = f.k();  // [n][n_head_kv*dk]
  float* v = f.v();  // [n][n_head_kv*dv]
  const auto proj = hp.precise_routing_inputs ? linear_precise : linear;
  proj(f, L.wq, L.bq, in, q);
  proj(f, L.wk, L.bk, in, k);
  proj(f, L.wv, L.bv, in, v);

  const kernels::RopeParams rope = f.rope_params(il);
  KvCache& kv = f.ctx_kv();
  const auto& kt = f.kt;
  f.pool.parallel_for(f.n, 1, [&](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t) {
      float* qt = q + t * q_dim;
      float* kt_row = k + t * k_dim;
      if (L.q_norm)
        for (int64_t h = 0; h < hp.n_head; ++h) kt.rms_norm(qt + h * dk, L.q_norm, qt + h * dk, dk, hp.rms_eps);
      if (L.k_norm)
        for (int64_t h = 0; h < hp.n_head_kv; ++h)
          kt.rms_norm(kt_row + h * dk, L.k_norm, kt_row + h * dk, dk, hp.rms_eps);
      kt.rope(qt, hp.n_head, dk, f.pos[t], rope);
      kt.rope(kt_row, hp.n_head_kv, dk, f.pos[t], rope);
      for (int64_t h = 0; h < hp.n_head_kv; ++h)
        kv.store(kt, il, f.seq[t], h, f.pos[t], kt_row + h * dk, v + t * v_dim + h * dv);
    }
  });

  kernels::AttentionArgs a;
  a.q = q;
  a.q_stride = q_dim;
  a.out = f.attn();
  a.out_stride = hp.n_head * dv;
  a.n_tokens = f.n;
  a.n_head = hp.n_head;
  a.n_head_kv = hp.n_head_kv;
  a.head_dim_k = dk;
  a.head_dim_v = dv;
  a.seq = f.seq;
  a.pos = f.pos;
  a.k = kv.k_view(il);
  a.v = kv.v_view(il);
  a.window = hp.is_swa(il) ? hp.sliding_window : 0;
  a.scale = hp.attn_scale;
  a.softcap = hp.attn_softcap;
  kt.attention(a, f.pool);

  proj(f, L.wo, L.bo, f.attn(), out);
}

void gated_ffn(Forward& f, int64_t il, const float* in, float* out) {
  const LayerWeights& L = f.layer(il);
  const int64_t n_ff = f.hp.n_ff;
  float* gate = f.gate();  // [n][n_ff]
  float* up = f.up();      // [n][n_ff]
  linear(f, L.ffn_gate, nullptr, in, gate);
  linear(f, L.ffn_up, nullptr, in, up);
  const auto act = f.hp.ffn_act == FfnActivation::kSilu ? f.kt.swiglu : f.kt.geglu;
  f.pool.parallel_for(f.n, 4, [&](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t) act(gate + t * n_ff, up + t * n_ff, gate + t * n_ff, n_ff);
  });
  linear(f, L.ffn_down, nullptr, gate, out);
}

void route_top_k(float* probs, int64_t n_expert, int64_t k, int32_t* experts, float* weights) {
  float sum = 0.0f;
  for (int64_t j = 0; j < k; ++j) {
    int64_t best = 0;
    for (int64_t e = 1; e < n_expert; ++e)
      if (probs[e] > probs[best]) best = e;
    experts[j] = static_cast<int32_t>(best);
    weights[j] = probs[best];
    sum += probs[best];
    probs[best] = -1.0f;  // below every probability: not chosen again
  }
  for (int64_t j = 0; j < k; ++j) weights[j] /= sum;
}

void moe_ffn(Forward& f, int64_t il, const float* in, float* out) {
  const HParams& hp = f.hp;
  const LayerWeights& L = f.layer(il);
  const auto& kt = f.kt;
  const int64_t n = f.n, d = hp.n_embd, n_expert = hp.n_expert, k = hp.n_expert_used, ff = hp.n_ff_exp;
  float* probs = f.router();  // [n][n_expert]
  (hp.precise_routing_inputs ? linear_precise : linear)(f, L.ffn_gate_inp, nullptr, in, probs);
  int32_t* expert = f.route_expert();  // [n][k]
  float* weight = f.route_weight();    // [n][k]
  f.pool.parallel_for(n, 8, [&](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t) {
      kt.softmax(probs + t * n_expert, n_expert);
      route_top_k(probs + t * n_expert, n_expert, k, expert + t * k, weight + t * k);
    }
  });

  // Group the (token, slot) pairs by expert, tokens in batch order within
  // an expert: rows [first[e], first[e + 1]) go to expert e.
  int64_t* first = f.expert_rows();  // [n_expert + 1]
  int32_t* row = f.route_row();      // [n][k]
  std::fill(first, first + n_expert + 1, 0);
  for (int64_t i = 0; i < n * k; ++i) ++first[expert[i] + 1];
  for (int64_t e = 0; e < n_expert; ++e) first[e + 1] += first[e];
  for (int64_t i = 0; i < n * k; ++i) row[i] = static_cast<int32_t>(first[expert[i]]++);
  for (int64_t e = n_expert; e > 0; --e) first[e] = first[e - 1];  // the fill advanced each start to the next
  first[0] = 0;

  float* xg = f.moe_x();  // [n*k][d]: inputs, grouped
  f.pool.parallel_for(n * k, 16, [&](int64_t i0, int64_t i1, int) {
    for (int64_t i = i0; i < i1; ++i) std::memcpy(xg + row[i] * d, in + (i / k) * d, static_cast<size_t>(d) * sizeof(float));
  });
  float* gate = f.gate();  // [n*k][ff]
  float* up = f.up();      // [n*k][ff]
  const std::span<const kernels::Matrix> gate_exps(L.ffn_gate_exps), up_exps(L.ffn_up_exps), down_exps(L.ffn_down_exps);
  kt.mul_mat_id(gate_exps, first, xg, d, gate, ff, f.ctx_workspace(), f.pool);
  kt.mul_mat_id(up_exps, first, xg, d, up, ff, f.ctx_workspace(), f.pool);
  f.pool.parallel_for(n * k, 4, [&](int64_t r0, int64_t r1, int) {
    for (int64_t r = r0; r < r1; ++r) kt.swiglu(gate + r * ff, up + r * ff, gate + r * ff, ff);
  });
  kt.mul_mat_id(down_exps, first, gate, ff, xg, d, f.ctx_workspace(), f.pool);  // xg: [n*k][d] outputs

  f.pool.parallel_for(n, 4, [&](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t) {
      float* o = out + t * d;
      const float* y0 = xg + row[t * k] * d;
      const float w0 = weight[t * k];
      for (int64_t i = 0; i < d; ++i) o[i] = w0 * y0[i];
      for (int64_t j = 1; j < k; ++j) {
        const float* y = xg + row[t * k + j] * d;
        const float w = weight[t * k + j];
        for (int64_t i = 0; i < d; ++i) o[i] += w * y[i];
      }
    }
  });
}

void pre_norm_layer(Forward& f, int64_t il) {
  const LayerWeights& L = f.layer(il);
  const int64_t d = f.hp.n_embd;
  norm(f, f.x, L.attn_norm, f.xn, d);
  self_attention(f, il, f.xn, f.tmp);
  add(f, f.x, f.tmp);
  norm(f, f.x, L.ffn_norm, f.xn, d);
  gated_ffn(f, il, f.xn, f.tmp);
  add(f, f.x, f.tmp);
}

}  // namespace blocks

namespace hparams {

Result<float> f32_or(const GgufFile& file, std::string_view suffix, float dflt) {
  return file.get_f32_or(file.arch_key(suffix), dflt);
}

}  // namespace hparams

}  // namespace codey
