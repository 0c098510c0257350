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

// o[0..dv) += sum_j p[j] * v[j][0..dv): each vector of o is loaded and
// stored once per block, not once per position.
template <class S>
inline void accumulate_pv(const float* p, const float* v, int64_t nj, float* o, int64_t dv) {
  constexpr int R = S::R;
  int64_t c = 0;
  for (; c + 2 * R <= dv; c += 2 * R) {
    auto a0 = S::loadf(o + c), a1 = S::loadf(o + c + R);
    for (int64_t j = 0; j < nj; ++j) {
      const auto pj = S::fset1(p[j]);
      a0 = S::fma(pj, S::loadf(v + j * dv + c), a0);
      a1 = S::fma(pj, S::loadf(v + j * dv + c + R), a1);
    }
    S::storef(o + c, a0);
    S::storef(o + c + R, a1);
  }
  for (; c + R <= dv; c += R) {
    auto a0 = S::loadf(o + c);
    for (int64_t j = 0; j < nj; ++j) a0 = S::fma(S::fset1(p[j]), S::loadf(v + j * dv + c), a0);
    S::storef(o + c, a0);
  }
  for (; c < dv; ++c)
    for (int64_t j = 0; j < nj; ++j) o[c] += p[j] * v[j * dv + c];
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
// consecutive tokens of one sequence, KV head); the item's queries (tokens x
// the query heads sharing that KV head) walk the cache in blocks of kBlock
// positions. Each block is decoded to f32 once and used by every query of the
// item, with an online softmax per query (running max, sum, rescaled output):
// no n_ctx x n_ctx matrix, memory O(block).
constexpr int64_t kTileTokens = 16;
constexpr int64_t kBlock = 64;

struct AttnScratch {
  std::vector<float> kf, vf, out, scores;
  std::vector<float> m, l;
};

inline void prefetch_bytes(const uint8_t* p, size_t n) {
  for (size_t off = 0; off < n; off += 64) _mm_prefetch(reinterpret_cast<const char*>(p + off), _MM_HINT_T0);
}

template <class S>
void attention_impl(const AttentionArgs& a, ThreadPool& pool) {
  CODEY_ASSERT(a.head_dim_k <= kMaxHeadDim && a.head_dim_v <= kMaxHeadDim);
  CODEY_ASSERT(a.n_head_kv > 0 && a.n_head % a.n_head_kv == 0);
  const int64_t group = a.n_head / a.n_head_kv, dk = a.head_dim_k, dv = a.head_dim_v;
  const size_t k_row_bytes = row_bytes(a.k.type, dk), v_row_bytes = row_bytes(a.v.type, dv);
  // Tiles: runs of consecutive tokens of one sequence (a decode batch of many
  // sequences gives one-token tiles). Built without allocating per call.
  thread_local std::vector<int64_t> tile_start;
  tile_start.clear();
  for (int64_t t = 0; t < a.n_tokens; ++t)
    if (t == 0 || a.seq[t] != a.seq[t - 1] || t - tile_start.back() >= kTileTokens) tile_start.push_back(t);
  const auto n_tiles = static_cast<int64_t>(tile_start.size());
  tile_start.push_back(a.n_tokens);
  const int64_t* starts = tile_start.data();

  pool.parallel_for(n_tiles * a.n_head_kv, 1, [&](int64_t i0, int64_t i1, int) {
    thread_local AttnScratch sc;
    const int64_t max_q = kTileTokens * group;
    if (sc.kf.size() < static_cast<size_t>(kBlock * dk)) sc.kf.resize(static_cast<size_t>(kBlock * dk));
    if (sc.vf.size() < static_cast<size_t>(kBlock * dv)) sc.vf.resize(static_cast<size_t>(kBlock * dv));
    if (sc.out.size() < static_cast<size_t>(max_q * dv)) sc.out.resize(static_cast<size_t>(max_q * dv));
    if (sc.scores.size() < static_cast<size_t>(kBlock)) sc.scores.resize(static_cast<size_t>(kBlock));
    if (sc.m.size() < static_cast<size_t>(max_q)) {
      sc.m.resize(static_cast<size_t>(max_q));
      sc.l.resize(static_cast<size_t>(max_q));
    }
    float* kf = sc.kf.data();
    float* vf = sc.vf.data();
    float* sco = sc.scores.data();
    for (int64_t item = i0; item < i1; ++item) {
      const int64_t tile = item / a.n_head_kv, hkv = item % a.n_head_kv;
      const int64_t t0 = starts[tile], t1 = starts[tile + 1];
      const int32_t seq = a.seq[t0];
      const int64_t nq = (t1 - t0) * group;
      int64_t lo = INT64_MAX, hi = -1;
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t p = a.pos[t];
        lo = std::min(lo, a.window > 0 ? std::max<int64_t>(0, p - a.window + 1) : int64_t{0});
        hi = std::max(hi, p);
      }
      std::fill_n(sc.out.data(), nq * dv, 0.0f);
      std::fill_n(sc.m.data(), nq, -INFINITY);
      std::fill_n(sc.l.data(), nq, 0.0f);
      for (int64_t p0 = lo; p0 <= hi; p0 += kBlock) {
        const int64_t nb = std::min(kBlock, hi + 1 - p0);
        // The next block's rows, asked for while this one is computed: at
        // depth, generation streams the cache from DRAM, one strided row per
        // position and head, which the hardware prefetchers do not follow.
        const int64_t nb_next = std::min(kBlock, hi + 1 - (p0 + kBlock));
        for (int64_t j = 0; j < nb_next; ++j) {
          prefetch_bytes(a.k.row(seq, hkv, p0 + kBlock + j), k_row_bytes);
          prefetch_bytes(a.v.row(seq, hkv, p0 + kBlock + j), v_row_bytes);
        }
        for (int64_t j = 0; j < nb; ++j) {
          decode_kv_row<S>(a.k.type, a.k.row(seq, hkv, p0 + j), kf + j * dk, dk);
          decode_kv_row<S>(a.v.type, a.v.row(seq, hkv, p0 + j), vf + j * dv, dv);
        }
        for (int64_t qi = 0; qi < nq; ++qi) {
          const int64_t t = t0 + qi / group, h = hkv * group + qi % group;
          const int64_t pt = a.pos[t];
          const int64_t qlo = a.window > 0 ? std::max<int64_t>(0, pt - a.window + 1) : int64_t{0};
          const int64_t j0 = std::max<int64_t>(0, qlo - p0), j1 = std::min<int64_t>(nb, pt + 1 - p0);
          if (j0 >= j1) continue;
          const float* q = a.q + t * a.q_stride + h * dk;
          float bmax = -INFINITY;
          for (int64_t j = j0; j < j1; ++j) {
            float s = dot_f32<S>(q, kf + j * dk, dk) * a.scale;
            if (a.softcap > 0.0f) s = a.softcap * std::tanh(s / a.softcap);
            sco[j] = s;
            bmax = std::max(bmax, s);
          }
          float& mi = sc.m[static_cast<size_t>(qi)];
          float& li = sc.l[static_cast<size_t>(qi)];
          float* oi = sc.out.data() + qi * dv;
          if (bmax > mi) {
            const float c = std::exp(mi - bmax);  // 0 on the first block
            scale_row<S>(c, oi, dv);
            li *= c;
            mi = bmax;
          }
          // Probabilities of the block, vectorized exp.
          const auto vm = S::fset1(mi);
          auto vsum = S::fzero();
          int64_t j = j0;
          for (; j + S::R <= j1; j += S::R) {
            const auto e = vexp<S>(S::sub(S::loadf(sco + j), vm));
            S::storef(sco + j, e);
            vsum = S::add(vsum, e);
          }
          if (j < j1) {
            const int r = static_cast<int>(j1 - j);
            const auto e = vexp<S>(S::sub(S::load_partial(sco + j, r, -INFINITY), vm));
            S::store_partial(sco + j, e, r);
            vsum = S::add(vsum, e);
          }
          li += S::hsum(vsum);
          accumulate_pv<S>(sco + j0, vf + j0 * dv, j1 - j0, oi, dv);
        }
      }
      for (int64_t qi = 0; qi < nq; ++qi) {
        const int64_t t = t0 + qi / group, h = hkv * group + qi % group;
        const float inv = 1.0f / sc.l[static_cast<size_t>(qi)];
        float* out = a.out + t * a.out_stride + h * dv;
        const float* oi = sc.out.data() + qi * dv;
        for (int64_t d = 0; d < dv; ++d) out[d] = oi[d] * inv;
      }
    }
  });
}

}  // namespace
}  // namespace codey::kernels::x86
