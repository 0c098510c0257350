// Elementwise kernels and fused attention for x86, written once over the
// vector wrappers in simd.h (Ymm / Zmm). Include only from
// src/kernels/x86/avx2*.cc / avx512*.cc (internal linkage).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

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
  // n may be 128 at the top clamp: split the power so 2^n never overflows the exponent field.
  const auto ni = S::cvtt(n);
  const F r2 = S::mul(S::mul(p, S::pow2i(S::shr32_1(ni))), S::pow2i(S::sub32(ni, S::shr32_1(ni))));
  return S::zero_below(r2, x_in, -87.33654f);
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

// One row of the KV cache to f32.
template <class S>
inline void decode_kv_row(TensorType type, const uint8_t* src, float* dst, int64_t n) {
  constexpr int R = S::R;
  if (type == TensorType::kF16 && n % R == 0) {
    for (int64_t i = 0; i < n; i += R) S::storef(dst + i, S::load_h(src + 2 * i));
    return;
  }
  if (type == TensorType::kQ8_0) {
    for (int64_t b = 0; b < n / 32; ++b) {
      const uint8_t* blk = src + 34 * b;
      uint16_t dh;
      std::memcpy(&dh, blk, 2);
      const auto d = S::fset1(_cvtsh_ss(dh));
      for (int j = 0; j < 32; j += R) S::storef(dst + 32 * b + j, S::mul(d, S::cvt(S::load_i8x(blk + 2 + j))));
    }
    return;
  }
  ref_decode_row(type, src, dst, n);
}

template <class S>
inline float dot_f32(const float* a, const float* b, int64_t n) {
  constexpr int R = S::R;
  auto acc0 = S::fzero(), acc1 = S::fzero();
  int64_t i = 0;
  for (; i + 2 * R <= n; i += 2 * R) {
    acc0 = S::fma(S::loadf(a + i), S::loadf(b + i), acc0);
    acc1 = S::fma(S::loadf(a + i + R), S::loadf(b + i + R), acc1);
  }
  for (; i + R <= n; i += R) acc0 = S::fma(S::loadf(a + i), S::loadf(b + i), acc0);
  float s = S::hsum(S::add(acc0, acc1));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

// o[0, N*R) += sum_j p[j] * v[j][0, N*R) (row stride dv): N vectors of o
// held in registers for the whole block, and U accumulator sets taking turns
// over j so that N*U FMA chains are in flight (one chain of nj dependent FMAs
// per vector is latency-bound: 4 cycles each).
template <class S, int N, int U>
inline void pv_pass(const float* p, const float* v, int64_t nj, float* o, int64_t dv) {
  constexpr int R = S::R;
  using F = typename S::F;
  F acc[U][N];
  for (int i = 0; i < N; ++i) acc[0][i] = S::loadf(o + i * R);
  for (int u = 1; u < U; ++u)
    for (int i = 0; i < N; ++i) acc[u][i] = S::fzero();
  int64_t j = 0;
  for (; j + U <= nj; j += U)
    for (int u = 0; u < U; ++u) {
      const F pj = S::fset1(p[j + u]);
      const float* vj = v + (j + u) * dv;
      for (int i = 0; i < N; ++i) acc[u][i] = S::fma(pj, S::loadf(vj + i * R), acc[u][i]);
    }
  for (; j < nj; ++j) {
    const F pj = S::fset1(p[j]);
    for (int i = 0; i < N; ++i) acc[0][i] = S::fma(pj, S::loadf(v + j * dv + i * R), acc[0][i]);
  }
  for (int u = 1; u < U; ++u)
    for (int i = 0; i < N; ++i) acc[0][i] = S::add(acc[0][i], acc[u][i]);
  for (int i = 0; i < N; ++i) S::storef(o + i * R, acc[0][i]);
}

// o[0..dv) += sum_j p[j] * v[j][0..dv), in passes of as many vectors of o as
// the registers hold (16 accumulators on AVX-512, 8 on AVX2).
template <class S>
inline void accumulate_pv(const float* p, const float* v, int64_t nj, float* o, int64_t dv) {
  constexpr int R = S::R;
  int64_t c = 0;
  if constexpr (R == 16)
    for (; c + 8 * R <= dv; c += 8 * R) pv_pass<S, 8, 2>(p, v + c, nj, o + c, dv);
  for (; c + 4 * R <= dv; c += 4 * R) pv_pass<S, 4, R == 16 ? 4 : 2>(p, v + c, nj, o + c, dv);
  for (; c + 2 * R <= dv; c += 2 * R) pv_pass<S, 2, 4>(p, v + c, nj, o + c, dv);
  for (; c + R <= dv; c += R) pv_pass<S, 1, 8>(p, v + c, nj, o + c, dv);
  for (; c < dv; ++c)
    for (int64_t j = 0; j < nj; ++j) o[c] += p[j] * v[j * dv + c];
}

// The same for two queries over the same rows: each V vector is loaded once
// for both (loads, not FMAs, bound the single-query pass).
template <class S, int N, int U>
inline void pv_pass_pair(const float* p0, const float* p1, const float* v, int64_t nj, float* o0, float* o1,
                         int64_t dv) {
  constexpr int R = S::R;
  using F = typename S::F;
  F a0[U][N], a1[U][N];
  for (int i = 0; i < N; ++i) {
    a0[0][i] = S::loadf(o0 + i * R);
    a1[0][i] = S::loadf(o1 + i * R);
  }
  for (int u = 1; u < U; ++u)
    for (int i = 0; i < N; ++i) a0[u][i] = a1[u][i] = S::fzero();
  const auto step = [&](int u, int64_t j) {
    F vv[N];
    for (int i = 0; i < N; ++i) vv[i] = S::loadf(v + j * dv + i * R);
    const F b0 = S::fset1(p0[j]), b1 = S::fset1(p1[j]);
    for (int i = 0; i < N; ++i) {
      a0[u][i] = S::fma(b0, vv[i], a0[u][i]);
      a1[u][i] = S::fma(b1, vv[i], a1[u][i]);
    }
  };
  int64_t j = 0;
  for (; j + U <= nj; j += U)
    for (int u = 0; u < U; ++u) step(u, j + u);
  for (; j < nj; ++j) step(0, j);
  for (int u = 1; u < U; ++u)
    for (int i = 0; i < N; ++i) {
      a0[0][i] = S::add(a0[0][i], a0[u][i]);
      a1[0][i] = S::add(a1[0][i], a1[u][i]);
    }
  for (int i = 0; i < N; ++i) {
    S::storef(o0 + i * R, a0[0][i]);
    S::storef(o1 + i * R, a1[0][i]);
  }
}

template <class S>
inline void accumulate_pv_pair(const float* p0, const float* p1, const float* v, int64_t nj, float* o0, float* o1,
                               int64_t dv) {
  constexpr int R = S::R;
  int64_t c = 0;
  if constexpr (R == 16) {
    for (; c + 8 * R <= dv; c += 8 * R) pv_pass_pair<S, 8, 1>(p0, p1, v + c, nj, o0 + c, o1 + c, dv);
    for (; c + 4 * R <= dv; c += 4 * R) pv_pass_pair<S, 4, 2>(p0, p1, v + c, nj, o0 + c, o1 + c, dv);
  } else {
    for (; c + 4 * R <= dv; c += 4 * R) pv_pass_pair<S, 4, 1>(p0, p1, v + c, nj, o0 + c, o1 + c, dv);
  }
  for (; c + 2 * R <= dv; c += 2 * R) pv_pass_pair<S, 2, 2>(p0, p1, v + c, nj, o0 + c, o1 + c, dv);
  for (; c + R <= dv; c += R) pv_pass_pair<S, 1, 4>(p0, p1, v + c, nj, o0 + c, o1 + c, dv);
  for (; c < dv; ++c)
    for (int64_t j = 0; j < nj; ++j) {
      o0[c] += p0[j] * v[j * dv + c];
      o1[c] += p1[j] * v[j * dv + c];
    }
}

// Lane r = q · k_r for R consecutive rows k_r = k + r * DK: R dot products
// on independent FMA chains, reduced together by S::transpose_sum instead of
// one horizontal sum each. DK is a compile-time multiple of R, so every row
// is one base register plus a constant offset.
template <class S, int DK>
CODEY_ALWAYS_INLINE typename S::F dot_rows(const float* q, const float* k) {
  constexpr int R = S::R;
  static_assert(DK % R == 0);
  typename S::F acc[R];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) acc[r] = S::mul(S::loadf(q), S::loadf(k + r * DK));
#pragma GCC unroll 16
  for (int d = R; d < DK; d += R) {
    const auto qd = S::loadf(q + d);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) acc[r] = S::fma(qd, S::loadf(k + r * DK + d), acc[r]);
  }
  return S::transpose_sum(acc);
}

// Two queries over R/2 rows: lanes [0, R/2) = q0 · k_r, lanes [R/2, R) =
// q1 · k_r; each K vector loaded once for both.
template <class S, int DK>
CODEY_ALWAYS_INLINE typename S::F dot_rows_pair(const float* q0, const float* q1, const float* k) {
  constexpr int R = S::R, P = R / 2;
  static_assert(DK % R == 0);
  typename S::F acc[R];
  {
    const auto a = S::loadf(q0), b = S::loadf(q1);
#pragma GCC unroll 8
    for (int r = 0; r < P; ++r) {
      const auto kv = S::loadf(k + r * DK);
      acc[r] = S::mul(a, kv);
      acc[P + r] = S::mul(b, kv);
    }
  }
#pragma GCC unroll 16
  for (int d = R; d < DK; d += R) {
    const auto a = S::loadf(q0 + d), b = S::loadf(q1 + d);
#pragma GCC unroll 8
    for (int r = 0; r < P; ++r) {
      const auto kv = S::loadf(k + r * DK + d);
      acc[r] = S::fma(a, kv, acc[r]);
      acc[P + r] = S::fma(b, kv, acc[P + r]);
    }
  }
  return S::transpose_sum(acc);
}

inline void prefetch_bytes(const uint8_t* p, size_t n) {
  for (size_t off = 0; off < n; off += 64) _mm_prefetch(reinterpret_cast<const char*>(p + off), _MM_HINT_T0);
}

// The next block's K and V rows (contiguous spans), prefetched a few lines
// at a time between the arithmetic of the current block. At depth,
// generation streams the cache from DRAM; asked for all at once at the start
// of a block, the lines did not arrive any sooner (measured: loads and
// arithmetic did not overlap at all).
struct SpreadPrefetch {
  const uint8_t* k = nullptr;
  const uint8_t* v = nullptr;
  size_t k_bytes = 0, v_bytes = 0, off = 0, lines_per_step = 0;

  void step() {
    for (size_t n = 0; n < lines_per_step && (off < k_bytes || off < v_bytes); ++n, off += 64) {
      if (off < k_bytes) _mm_prefetch(reinterpret_cast<const char*>(k + off), _MM_HINT_T0);
      if (off < v_bytes) _mm_prefetch(reinterpret_cast<const char*>(v + off), _MM_HINT_T0);
    }
  }
};

// Scores sco[j] = q · k_j for j in [jb, je) (multiples of R) of the f32 block
// kf (row stride dk). Head sizes of the models codey runs get a fixed-size
// kernel; others one dot product per row.
template <class S, int DK>
void block_scores_fixed(const float* q, const float* kf, int64_t jb, int64_t je, float* sco, SpreadPrefetch& pf) {
  for (int64_t j = jb; j < je; j += S::R) {
    pf.step();
    S::storef(sco + j, dot_rows<S, DK>(q, kf + j * DK));
  }
}

template <class S>
inline void block_scores(const float* q, const float* kf, int64_t dk, int64_t jb, int64_t je, float* sco,
                         SpreadPrefetch& pf) {
  switch (dk) {
    case 64: return block_scores_fixed<S, 64>(q, kf, jb, je, sco, pf);
    case 128: return block_scores_fixed<S, 128>(q, kf, jb, je, sco, pf);
    case 256: return block_scores_fixed<S, 256>(q, kf, jb, je, sco, pf);
    default:
      for (int64_t j = jb; j < je; ++j) {
        if (j % S::R == 0) pf.step();
        sco[j] = dot_f32<S>(q, kf + j * dk, dk);
      }
  }
}

// Scores of two queries over the same positions (dot_rows_pair).
template <class S, int DK>
void block_scores_pair_fixed(const float* q0, const float* q1, const float* kf, int64_t jb, int64_t je, float* sco0,
                             float* sco1, SpreadPrefetch& pf) {
  constexpr int64_t P = S::R / 2;
  for (int64_t j = jb; j < je; j += P) {
    pf.step();
    S::store_halves(sco0 + j, sco1 + j, dot_rows_pair<S, DK>(q0, q1, kf + j * DK));
  }
}

template <class S>
inline void block_scores_pair(const float* q0, const float* q1, const float* kf, int64_t dk, int64_t jb, int64_t je,
                              float* sco0, float* sco1, SpreadPrefetch& pf) {
  switch (dk) {
    case 64: return block_scores_pair_fixed<S, 64>(q0, q1, kf, jb, je, sco0, sco1, pf);
    case 128: return block_scores_pair_fixed<S, 128>(q0, q1, kf, jb, je, sco0, sco1, pf);
    case 256: return block_scores_pair_fixed<S, 256>(q0, q1, kf, jb, je, sco0, sco1, pf);
    default:
      block_scores<S>(q0, kf, dk, jb, je, sco0, pf);
      block_scores<S>(q1, kf, dk, jb, je, sco1, pf);
  }
}

template <class S>
inline void scale_row(float c, float* y, int64_t n) {
  constexpr int R = S::R;
  const auto vc = S::fset1(c);
  int64_t i = 0;
  for (; i + R <= n; i += R) S::storef(y + i, S::mul(vc, S::loadf(y + i)));
  for (; i < n; ++i) y[i] *= c;
}

// Flash-style attention: work items are (tile of up to kTileTokens
// consecutive tokens of one sequence, KV head, span of positions); the item's
// queries (tokens x the query heads sharing that KV head) walk the cache in
// blocks of kBlock positions. Each block is decoded to f32 once and used by
// every query of the item, with an online softmax per query (running max,
// sum, rescaled output): no n_ctx x n_ctx matrix, memory O(block). Scores come
// R positions at a time (dot_rows), exponentials R at a time.
//
// Generation has one-token tiles and, with grouped-query attention, as few
// items as KV heads (2 for Qwen2.5-Coder): too few for the threads, so such a
// tile's positions are split into spans of kSplitPositions, each an item with
// its own partial softmax, merged in a second pass. The split depends on the
// shape only, never on the thread count: results do not change with threads.
constexpr int64_t kTileTokens = 16;
constexpr int64_t kBlock = 16;  // a multiple of every R; larger blocks measured slower from DRAM
constexpr int64_t kSplitPositions = 1024;

struct AttnScratch {
  std::vector<float> kf, vf, q, out, scores;
  std::vector<float> m, l;
};

struct AttnItem {
  int64_t tile, hkv;
  int64_t p_lo, p_hi;  // cache positions [p_lo, p_hi] this item reads
  int64_t part;        // first partial-result slot (one per query), -1: writes a.out itself
};

// Queries' attention window [lo, hi] of token t.
inline int64_t window_lo(const AttentionArgs& a, int64_t t) {
  return a.window > 0 ? std::max<int64_t>(0, a.pos[t] - a.window + 1) : int64_t{0};
}

// One query's online-softmax step over a block: scores sco[jb, je) (whole
// vectors; only [j0, j1) are valid, the rest is masked), running max m and
// sum l, output o rescaled when the max grows. Leaves p = exp(s - m) in sco.
template <class S>
inline void softmax_block(float* sco, int64_t j0, int64_t j1, float softcap, float& m, float& l, float* o,
                          int64_t dv) {
  constexpr int64_t R = S::R;
  const int64_t jb = j0 / R * R, je = (j1 + R - 1) / R * R;
  if (softcap > 0.0f)
    for (int64_t j = j0; j < j1; ++j) sco[j] = softcap * std::tanh(sco[j] / softcap);
  for (int64_t j = jb; j < j0; ++j) sco[j] = -INFINITY;
  for (int64_t j = j1; j < je; ++j) sco[j] = -INFINITY;
  auto vmax = S::loadf(sco + jb);
  for (int64_t j = jb + R; j < je; j += R) vmax = S::fmax(vmax, S::loadf(sco + j));
  const float bmax = S::hmax(vmax);
  if (bmax > m) {
    const float c = std::exp(m - bmax);  // 0 on the first block
    scale_row<S>(c, o, dv);
    l *= c;
    m = bmax;
  }
  const auto vm = S::fset1(m);
  auto vsum = S::fzero();
  for (int64_t j = jb; j < je; j += R) {  // masked lanes give exp(-inf) = 0
    const auto e = vexp<S>(S::sub(S::loadf(sco + j), vm));
    S::storef(sco + j, e);
    vsum = S::add(vsum, e);
  }
  l += S::hsum(vsum);
}

// Runs one work item: out rows (normalized) or partial slots of
// [m, l, o[dv]] per query.
template <class S>
void attend_item(const AttentionArgs& a, const AttnItem& it, int64_t t0, int64_t t1, AttnScratch& sc, float* parts) {
  constexpr int64_t R = S::R;
  static_assert(kBlock % R == 0, "scores are computed in whole vectors inside a block");
  const int64_t group = a.n_head / a.n_head_kv, dk = a.head_dim_k, dv = a.head_dim_v;
  const size_t k_row_bytes = row_bytes(a.k.type, dk), v_row_bytes = row_bytes(a.v.type, dv);
  const int32_t seq = a.seq[t0];
  const int64_t nq = (t1 - t0) * group, hkv = it.hkv;
  float* kf = sc.kf.data();
  float* vf = sc.vf.data();
  float* sco = sc.scores.data();
  // The item's queries, pre-multiplied by the scale.
  for (int64_t qi = 0; qi < nq; ++qi) {
    const int64_t t = t0 + qi / group, h = hkv * group + qi % group;
    const float* q = a.q + t * a.q_stride + h * dk;
    float* qs = sc.q.data() + qi * dk;
    for (int64_t d = 0; d < dk; ++d) qs[d] = q[d] * a.scale;
  }
  std::fill_n(sc.out.data(), nq * dv, 0.0f);
  std::fill_n(sc.m.data(), nq, -INFINITY);
  std::fill_n(sc.l.data(), nq, 0.0f);
  for (int64_t p0 = it.p_lo; p0 <= it.p_hi; p0 += kBlock) {
    const int64_t nb = std::min(kBlock, it.p_hi + 1 - p0);
    // The next block's rows, asked for while this one is computed: spread
    // over the score steps when rows are contiguous, else row by row now.
    const int64_t nb_next = std::min(kBlock, it.p_hi + 1 - (p0 + kBlock));
    SpreadPrefetch pf;
    if (nb_next > 0 && a.k.pos_stride == k_row_bytes && a.v.pos_stride == v_row_bytes) {
      pf.k = a.k.row(seq, hkv, p0 + kBlock);
      pf.v = a.v.row(seq, hkv, p0 + kBlock);
      pf.k_bytes = static_cast<size_t>(nb_next) * k_row_bytes;
      pf.v_bytes = static_cast<size_t>(nb_next) * v_row_bytes;
      const size_t steps = static_cast<size_t>(nq * ((nb + R - 1) / R));
      pf.lines_per_step = (std::max(pf.k_bytes, pf.v_bytes) / 64 + steps - 1) / steps;
    } else {
      for (int64_t j = 0; j < nb_next; ++j) {
        prefetch_bytes(a.k.row(seq, hkv, p0 + kBlock + j), k_row_bytes);
        prefetch_bytes(a.v.row(seq, hkv, p0 + kBlock + j), v_row_bytes);
      }
    }
    for (int64_t j = 0; j < nb; ++j) {
      decode_kv_row<S>(a.k.type, a.k.row(seq, hkv, p0 + j), kf + j * dk, dk);
      decode_kv_row<S>(a.v.type, a.v.row(seq, hkv, p0 + j), vf + j * dv, dv);
    }
    // Queries two at a time when they see the same positions of this block
    // (the heads of one token, or of two tokens both past the block): K and V
    // rows are loaded once for both.
    const auto range = [&](int64_t qi, int64_t& j0, int64_t& j1) {
      const int64_t t = t0 + qi / group;
      j0 = std::max<int64_t>(0, window_lo(a, t) - p0);
      j1 = std::min<int64_t>(nb, a.pos[t] + 1 - p0);
    };
    for (int64_t qi = 0; qi < nq;) {
      int64_t j0, j1;
      range(qi, j0, j1);
      if (j0 >= j1) {
        ++qi;
        continue;
      }
      // Scores of [jb, je): whole vectors (rows past nb hold stale values,
      // masked; kf has kBlock rows).
      const int64_t jb = j0 / R * R, je = (j1 + R - 1) / R * R;
      const auto q = [&](int64_t i) { return sc.q.data() + i * dk; };
      const auto o = [&](int64_t i) { return sc.out.data() + i * dv; };
      const auto m = [&](int64_t i) -> float& { return sc.m[static_cast<size_t>(i)]; };
      const auto l = [&](int64_t i) -> float& { return sc.l[static_cast<size_t>(i)]; };
      int64_t k0 = -1, k1 = -1;
      if (qi + 1 < nq) range(qi + 1, k0, k1);
      if (k0 == j0 && k1 == j1) {
        float* sco1 = sco + kBlock;
        block_scores_pair<S>(q(qi), q(qi + 1), kf, dk, jb, je, sco, sco1, pf);
        softmax_block<S>(sco, j0, j1, a.softcap, m(qi), l(qi), o(qi), dv);
        softmax_block<S>(sco1, j0, j1, a.softcap, m(qi + 1), l(qi + 1), o(qi + 1), dv);
        // Exactly [j0, j1): stale rows of vf are never touched.
        accumulate_pv_pair<S>(sco + j0, sco1 + j0, vf + j0 * dv, j1 - j0, o(qi), o(qi + 1), dv);
        qi += 2;
        continue;
      }
      block_scores<S>(q(qi), kf, dk, jb, je, sco, pf);
      softmax_block<S>(sco, j0, j1, a.softcap, m(qi), l(qi), o(qi), dv);
      accumulate_pv<S>(sco + j0, vf + j0 * dv, j1 - j0, o(qi), dv);
      ++qi;
    }
  }
  for (int64_t qi = 0; qi < nq; ++qi) {
    const float* oi = sc.out.data() + qi * dv;
    if (parts) {
      float* slot = parts + (it.part + qi) * (dv + 2);
      slot[0] = sc.m[static_cast<size_t>(qi)];
      slot[1] = sc.l[static_cast<size_t>(qi)];
      std::memcpy(slot + 2, oi, static_cast<size_t>(dv) * sizeof(float));
      continue;
    }
    const int64_t t = t0 + qi / group, h = hkv * group + qi % group;
    const float inv = 1.0f / sc.l[static_cast<size_t>(qi)];
    float* out = a.out + t * a.out_stride + h * dv;
    for (int64_t d = 0; d < dv; ++d) out[d] = oi[d] * inv;
  }
}

template <class S>
void attention_impl(const AttentionArgs& a, ThreadPool& pool) {
  CODEY_ASSERT(a.head_dim_k <= kMaxHeadDim && a.head_dim_v <= kMaxHeadDim);
  CODEY_ASSERT(a.n_head_kv > 0 && a.n_head % a.n_head_kv == 0);
  const int64_t group = a.n_head / a.n_head_kv, dk = a.head_dim_k, dv = a.head_dim_v;
  // Tiles: runs of consecutive tokens of one sequence (a decode batch of many
  // sequences gives one-token tiles), then the work items. Built without
  // allocating per call.
  thread_local std::vector<int64_t> tile_start;
  thread_local std::vector<AttnItem> items;
  thread_local std::vector<float> parts;
  tile_start.clear();
  items.clear();
  for (int64_t t = 0; t < a.n_tokens; ++t)
    if (t == 0 || a.seq[t] != a.seq[t - 1] || t - tile_start.back() >= kTileTokens) tile_start.push_back(t);
  const auto n_tiles = static_cast<int64_t>(tile_start.size());
  tile_start.push_back(a.n_tokens);
  int64_t n_slots = 0;
  bool any_split = false;
  for (int64_t tile = 0; tile < n_tiles; ++tile) {
    const int64_t t0 = tile_start[static_cast<size_t>(tile)], t1 = tile_start[static_cast<size_t>(tile) + 1];
    int64_t lo = INT64_MAX, hi = -1;
    for (int64_t t = t0; t < t1; ++t) {
      lo = std::min(lo, window_lo(a, t));
      hi = std::max<int64_t>(hi, a.pos[t]);
    }
    const bool split = t1 - t0 == 1 && hi + 1 - lo > kSplitPositions;
    any_split = any_split || split;
    for (int64_t hkv = 0; hkv < a.n_head_kv; ++hkv) {
      if (!split) {
        items.push_back({tile, hkv, lo, hi, -1});
        continue;
      }
      for (int64_t p = lo; p <= hi; p += kSplitPositions) {
        items.push_back({tile, hkv, p, std::min(hi, p + kSplitPositions - 1), n_slots});
        n_slots += group;
      }
    }
  }
  if (parts.size() < static_cast<size_t>(n_slots * (dv + 2))) parts.resize(static_cast<size_t>(n_slots * (dv + 2)));
  // Plain pointers for the workers: inside the lambdas the thread_local
  // names would be each worker's own.
  const int64_t* starts = tile_start.data();
  const AttnItem* item_list = items.data();
  const auto n_items = static_cast<int64_t>(items.size());
  float* part_data = parts.data();

  pool.parallel_for(n_items, 1, [&](int64_t i0, int64_t i1, int) {
    thread_local AttnScratch sc;
    const int64_t max_q = kTileTokens * group;
    if (sc.kf.size() < static_cast<size_t>(kBlock * dk)) sc.kf.resize(static_cast<size_t>(kBlock * dk));
    if (sc.vf.size() < static_cast<size_t>(kBlock * dv)) sc.vf.resize(static_cast<size_t>(kBlock * dv));
    if (sc.q.size() < static_cast<size_t>(max_q * dk)) sc.q.resize(static_cast<size_t>(max_q * dk));
    if (sc.out.size() < static_cast<size_t>(max_q * dv)) sc.out.resize(static_cast<size_t>(max_q * dv));
    if (sc.scores.size() < static_cast<size_t>(2 * kBlock)) sc.scores.resize(static_cast<size_t>(2 * kBlock));
    if (sc.m.size() < static_cast<size_t>(max_q)) {
      sc.m.resize(static_cast<size_t>(max_q));
      sc.l.resize(static_cast<size_t>(max_q));
    }
    for (int64_t i = i0; i < i1; ++i) {
      const AttnItem& it = item_list[i];
      attend_item<S>(a, it, starts[it.tile], starts[it.tile + 1], sc, it.part >= 0 ? part_data : nullptr);
    }
  });
  if (!any_split) return;

  // Merge the spans of each split (tile, KV head), in span order.
  pool.parallel_for(n_items, 1, [&](int64_t i0, int64_t i1, int) {
    for (int64_t i = i0; i < i1; ++i) {
      const AttnItem& first = item_list[i];
      // One merge per run of spans: the run's first item does it.
      if (first.part < 0 || (i > 0 && item_list[i - 1].part >= 0 && item_list[i - 1].tile == first.tile &&
                             item_list[i - 1].hkv == first.hkv))
        continue;
      int64_t n_spans = 1;
      while (i + n_spans < n_items && item_list[i + n_spans].tile == first.tile &&
             item_list[i + n_spans].hkv == first.hkv)
        ++n_spans;
      const int64_t t = starts[first.tile];
      for (int64_t g = 0; g < group; ++g) {
        const auto slot = [&](int64_t span) { return part_data + (first.part + span * group + g) * (dv + 2); };
        float mx = -INFINITY;
        for (int64_t s = 0; s < n_spans; ++s) mx = std::max(mx, slot(s)[0]);
        float* out = a.out + t * a.out_stride + (first.hkv * group + g) * dv;
        std::fill_n(out, dv, 0.0f);
        float l = 0.0f;
        for (int64_t s = 0; s < n_spans; ++s) {
          const float* sl = slot(s);
          const float w = sl[0] == -INFINITY ? 0.0f : std::exp(sl[0] - mx);
          l += w * sl[1];
          for (int64_t d = 0; d < dv; ++d) out[d] += w * sl[2 + d];
        }
        const float inv = 1.0f / l;
        for (int64_t d = 0; d < dv; ++d) out[d] *= inv;
      }
    }
  });
}

}  // namespace
}  // namespace codey::kernels::x86
