// Elementwise kernels for x86 (norms, activations, softmax, rope, KV row
// stores), written once over the vector wrappers in simd.h (Ymm / Zmm). Include
// only from src/kernels/x86/avx2*.cc / avx512*.cc (internal linkage). Attention
// is in attention_impl.h.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>

#include "codey/base.h"
#include "codey/kernels.h"
#include "kernels/ref/ref.h"
#include "kernels/x86/simd.h"

namespace codey::kernels::x86 {
namespace {

// e^x, about 1 ulp on [-87, 88] (Cephes polynomial after 2^n range
// reduction); 0 below -87.3 (so exp(-inf) = 0), saturates above 88.7.
template <class S>
inline typename S::F vexp(typename S::F x_in) {
  using F = typename S::F;
  const F x = S::fmin(S::fmax(x_in, S::fset1(-87.33654f)), S::fset1(88.72283f));
  const F n = S::round_near(S::mul(x, S::fset1(1.44269504088896341f)));
  F r = S::fnma(n, S::fset1(0.693359375f), x);  // ln2 split in two for exactness
  r = S::fnma(n, S::fset1(-2.12194440e-4f), r);
  F p = S::fset1(1.9875691500e-4f);
  p = S::fma(p, r, S::fset1(1.3981999507e-3f));
  p = S::fma(p, r, S::fset1(8.3334519073e-3f));
  p = S::fma(p, r, S::fset1(4.1665795894e-2f));
  p = S::fma(p, r, S::fset1(1.6666665459e-1f));
  p = S::fma(p, r, S::fset1(5.0000001201e-1f));
  p = S::fma(p, S::mul(r, r), S::add(r, S::fset1(1.0f)));
  return S::zero_below(S::ldexp(p, n), x_in, -87.33654f);
}

template <class S>
inline typename S::F vsilu(typename S::F x) {
  return S::div(x, S::add(S::fset1(1.0f), vexp<S>(S::neg(x))));
}

// tanh(y) = 1 - 2 / (e^(2y) + 1): exact enough away from 0; near 0 the
// cancellation costs a few ulp of an already tiny value, as in the reference.
template <class S>
inline typename S::F vtanh(typename S::F y) {
  const auto one = S::fset1(1.0f);
  return S::sub(one, S::div(S::fset1(2.0f), S::add(vexp<S>(S::add(y, y)), one)));
}

template <class S>
void rms_norm_impl(const float* x, const float* w, float* y, int64_t n, float eps) {
  constexpr int R = S::R;
  auto acc0 = S::fzero(), acc1 = S::fzero();
  int64_t i = 0;
  for (; i + 2 * R <= n; i += 2 * R) {
    const auto a = S::loadf(x + i), b = S::loadf(x + i + R);
    acc0 = S::fma(a, a, acc0);
    acc1 = S::fma(b, b, acc1);
  }
  double ss = S::hsum(S::add(acc0, acc1));
  for (; i < n; ++i) ss += double(x[i]) * double(x[i]);
  const float scale = 1.0f / std::sqrt(static_cast<float>(ss / double(n)) + eps);
  const auto vs = S::fset1(scale);
  i = 0;
  if (w) {
    for (; i + R <= n; i += R) S::storef(y + i, S::mul(S::mul(S::loadf(x + i), vs), S::loadf(w + i)));
    for (; i < n; ++i) y[i] = x[i] * scale * w[i];
  } else {
    for (; i + R <= n; i += R) S::storef(y + i, S::mul(S::loadf(x + i), vs));
    for (; i < n; ++i) y[i] = x[i] * scale;
  }
}

template <class S>
void swiglu_impl(const float* gate, const float* up, float* y, int64_t n) {
  constexpr int R = S::R;
  int64_t i = 0;
  for (; i + R <= n; i += R) S::storef(y + i, S::mul(vsilu<S>(S::loadf(gate + i)), S::loadf(up + i)));
  if (i < n) {
    const int r = static_cast<int>(n - i);
    S::store_partial(y + i, S::mul(vsilu<S>(S::load_partial(gate + i, r, 0.0f)), S::load_partial(up + i, r, 0.0f)), r);
  }
}

template <class S>
void geglu_impl(const float* gate, const float* up, float* y, int64_t n) {
  constexpr int R = S::R;
  const auto k0 = S::fset1(0.79788456080286535587989211986876f), k1 = S::fset1(0.044715f), half = S::fset1(0.5f);
  auto gelu = [&](typename S::F x) {
    const auto inner = S::mul(S::mul(k0, x), S::fma(S::mul(k1, x), x, S::fset1(1.0f)));
    return S::mul(S::mul(half, x), S::add(S::fset1(1.0f), vtanh<S>(inner)));
  };
  int64_t i = 0;
  for (; i + R <= n; i += R) S::storef(y + i, S::mul(gelu(S::loadf(gate + i)), S::loadf(up + i)));
  if (i < n) {
    const int r = static_cast<int>(n - i);
    S::store_partial(y + i, S::mul(gelu(S::load_partial(gate + i, r, 0.0f)), S::load_partial(up + i, r, 0.0f)), r);
  }
}

template <class S>
void softmax_impl(float* x, int64_t n) {
  constexpr int R = S::R;
  auto vm = S::fset1(-INFINITY);
  int64_t i = 0;
  for (; i + R <= n; i += R) vm = S::fmax(vm, S::loadf(x + i));
  float m = S::hmax(vm);
  for (; i < n; ++i) m = std::max(m, x[i]);
  const auto vmax = S::fset1(m);
  auto vs = S::fzero();
  double sum = 0.0;
  i = 0;
  for (; i + R <= n; i += R) {
    const auto e = vexp<S>(S::sub(S::loadf(x + i), vmax));
    S::storef(x + i, e);
    vs = S::add(vs, e);
  }
  sum += S::hsum(vs);
  for (; i < n; ++i) {
    x[i] = std::exp(x[i] - m);
    sum += x[i];
  }
  const auto inv = S::fset1(static_cast<float>(1.0 / sum));
  i = 0;
  for (; i + R <= n; i += R) S::storef(x + i, S::mul(S::loadf(x + i), inv));
  const float fi = static_cast<float>(1.0 / sum);
  for (; i < n; ++i) x[i] *= fi;
}

// Rope: the angles exactly as the reference computes them (its scalar code
// run once on a unit probe), the rotation of every head vectorized. Both
// pairings: neox (i, i + n_rot/2) and normal (2i, 2i + 1).
template <class S>
void rope_impl(float* x, int64_t n_head, int64_t head_dim, int32_t pos, const RopeParams& p) {
  constexpr int R = S::R;
  const int n_rot = p.n_rot, half = n_rot / 2;
  if (p.neox ? half % R != 0 : n_rot % R != 0) return ref_rope(x, n_head, head_dim, pos, p);
  alignas(64) float cs[kMaxHeadDim], sn[kMaxHeadDim];
  for (int i = 0; i < half; ++i) {  // probe: a = 1, b = 0 rotates to (cos, sin)
    cs[p.neox ? i : 2 * i] = 1.0f;
    cs[p.neox ? i + half : 2 * i + 1] = 0.0f;
  }
  ref_rope(cs, 1, n_rot, pos, p);
  if (p.neox) {
    for (int64_t h = 0; h < n_head; ++h) {
      float* v = x + h * head_dim;
      for (int i = 0; i < half; i += R) {
        const auto a = S::loadf(v + i), b = S::loadf(v + i + half);
        const auto c = S::loadf(cs + i), s = S::loadf(cs + half + i);
        S::storef(v + i, S::fnma(b, s, S::mul(a, c)));
        S::storef(v + i + half, S::fma(a, s, S::mul(b, c)));
      }
    }
    return;
  }
  // Normal: lanes (a0 b0 a1 b1 ..): out = x * (c0 c0 ..) + swap(x) * (-s0 s0 ..).
  for (int i = 0; i < half; ++i) {
    const float c = cs[2 * i], s = cs[2 * i + 1];
    cs[2 * i] = c;
    cs[2 * i + 1] = c;
    sn[2 * i] = -s;
    sn[2 * i + 1] = s;
  }
  for (int64_t h = 0; h < n_head; ++h) {
    float* v = x + h * head_dim;
    for (int i = 0; i < n_rot; i += R) {
      const auto a = S::loadf(v + i);
      S::storef(v + i, S::fma(S::swap_pairs(a), S::loadf(sn + i), S::mul(a, S::loadf(cs + i))));
    }
  }
}

// KV rows: f16 rows vectorized; q8_0 rounded like the reference's
// quantize_row_q8_0 (d = amax/127 as f16, q = lround(x / d)).
template <class S>
void store_row_impl(TensorType type, const float* src, void* dst, int64_t n) {
  constexpr int R = S::R;
  if (type == TensorType::kF16) {
    auto* out = static_cast<uint8_t*>(dst);
    int64_t i = 0;
    for (; i + R <= n; i += R) S::store_h(out + 2 * i, S::loadf(src + i));
    for (; i < n; ++i) {
      const uint16_t h = fp32_to_fp16(src[i]);
      std::memcpy(out + 2 * i, &h, 2);
    }
    return;
  }
  if (type == TensorType::kQ8_0) return quantize_activation_row(TensorType::kQ8_0, src, dst, n);
  ref_store_row(type, src, dst, n);
}

}  // namespace
}  // namespace codey::kernels::x86
