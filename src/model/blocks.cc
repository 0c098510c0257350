// The shared layer blocks: what every architecture file is built from.
#include "model/blocks.h"

#include <cmath>

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

void self_attention(Forward& f, int64_t il, const float* in, float* out) {
  const HParams& hp = f.hp;
  const LayerWeights& L = f.layer(il);
  const int64_t dk = hp.head_dim_k, dv = hp.head_dim_v;
  const int64_t q_dim = hp.n_head * dk, k_dim = hp.n_head_kv * dk, v_dim = hp.n_head_kv * dv;
  float* q = f.q();  // [n][n_head*dk]
  float* k = f.k();  // [n][n_head_kv*dk]
  float* v = f.v();  // [n][n_head_kv*dv]
  linear(f, L.wq, L.bq, in, q);
  linear(f, L.wk, L.bk, in, k);
  linear(f, L.wv, L.bv, in, v);

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

  linear(f, L.wo, L.bo, f.attn(), out);
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
