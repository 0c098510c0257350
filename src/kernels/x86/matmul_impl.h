// Quantized matmul for x86, written once over the vector wrappers in simd.h
// (Ymm for AVX2, Zmm for AVX-512 VNNI). Weights stay in their 4..8-bit form
// (row-interleaved groups, packed.h); activations are quantized on the fly to
// 8 bits per block of 32 with an f32 scale; integer dot products (dpbusd or
// maddubs+madd) produce R rows at once; block scales are applied in f32.
// Include only from src/kernels/x86/avx2*.cc / avx512*.cc (internal linkage).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>

#include "codey/base.h"
#include "codey/kernels.h"
#include "kernels/ref/ref.h"
#include "kernels/x86/packed.h"
#include "kernels/x86/simd.h"
#include "codey/quant_blocks.h"

namespace codey::kernels::x86 {
namespace {

// ---------------------------------------------------------------------------
// Activations: each token row of K floats becomes, at a fixed stride:
//   qs   [K]     int8, x ~ d[b] * qs  (b = element / 32)
//   d    [K/32]  f32 scale
//   s32  [K/32]  int32 sum of qs over the block (offset terms: -beta * s32)
//   sa32 [K/32]  f32 d * s32 (min terms of asymmetric weight types)
//   s16  [K/16]  int32 sum over 16 elements, sa16 [K/16] f32 d * s16
// and for the AVX2 16-bit path (gemm_i16.h, act_extras_row):
//   bs16h [K/16], bs32h [K/32]  int16 sums over 16 / 32 elements
//   beta  [K/32 * 2]            int32: offset starting values per group
struct ActLayout {
  int64_t k = 0, nb = 0;
  size_t off_d = 0, off_s32 = 0, off_sa32 = 0, off_s16 = 0, off_sa16 = 0, stride = 0;
  size_t off_bs16h = 0, off_bs32h = 0, off_beta = 0;

  explicit ActLayout(int64_t k_) : k(k_), nb(k_ / 32) {
    const auto n = static_cast<size_t>(nb);
    off_d = (static_cast<size_t>(k) + 63) & ~size_t{63};
    off_s32 = off_d + 4 * n;
    off_sa32 = off_s32 + 4 * n;
    off_s16 = off_sa32 + 4 * n;
    off_sa16 = off_s16 + 8 * n;
    off_bs16h = off_sa16 + 8 * n;
    off_bs32h = off_bs16h + 4 * n;
    off_beta = off_bs32h + 2 * n;
    stride = (off_beta + 8 * n + 63) & ~size_t{63};
  }
};

inline int32_t hsum_epi32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

inline __m256 abs_ps(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }

inline float hmax_ps(__m256 m) {
  __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
  m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
  return _mm_cvtss_f32(m4);
}

// Round half away from zero (std::lround) for |v| < 2^23.
inline __m256i lround_ps(__m256 v) {
  const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __m256 f = _mm256_sub_ps(v, t);
  const __m256 one = _mm256_or_ps(_mm256_and_ps(v, _mm256_set1_ps(-0.0f)), _mm256_set1_ps(1.0f));
  const __m256 bump = _mm256_and_ps(_mm256_cmp_ps(abs_ps(f), _mm256_set1_ps(0.5f), _CMP_GE_OQ), one);
  return _mm256_cvttps_epi32(_mm256_add_ps(t, bump));
}

// Stores 32 int32 (4 vectors) as int8 and the block's sums.
inline void store_block32(const __m256i* i, int8_t* qs, int32_t* lo, int32_t* hi) {
  *lo = hsum_epi32(_mm256_add_epi32(i[0], i[1]));
  *hi = hsum_epi32(_mm256_add_epi32(i[2], i[3]));
  const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i[0], i[1]), _mm256_packs_epi32(i[2], i[3]));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(qs), _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
}

// Activation rounding follows the reference implementation's integer dot
// products exactly, so the fast kernels agree with ref (and with the
// reference's logits) to float summation order:
//  - 32-element weight types: Q8_0 (d = amax/127 kept as f16, q = lround(x/d)),
//  - 256-element (K) types: Q8_K (d = amax/127 in f32 per 256, q = round to
//    even of clamp(x/d, -127, 127)); every block of 32 repeats its d.
enum class ActMode { kQ8_0, kQ8_K };

inline void quantize_act_row(const float* x, const ActLayout& L, uint8_t* out, ActMode mode) {
  auto* qs = reinterpret_cast<int8_t*>(out);
  auto* d = reinterpret_cast<float*>(out + L.off_d);
  auto* s32 = reinterpret_cast<int32_t*>(out + L.off_s32);
  auto* sa32 = reinterpret_cast<float*>(out + L.off_sa32);
  auto* s16 = reinterpret_cast<int32_t*>(out + L.off_s16);
  auto* sa16 = reinterpret_cast<float*>(out + L.off_sa16);
  const int64_t per = mode == ActMode::kQ8_0 ? 1 : 8;  // blocks of 32 sharing a scale
  for (int64_t b0 = 0; b0 < L.nb; b0 += per) {
    __m256 m = _mm256_setzero_ps();
    for (int64_t i = 0; i < 32 * per; i += 8) m = _mm256_max_ps(abs_ps(_mm256_loadu_ps(x + 32 * b0 + i)), m);
    const float amax = hmax_ps(m);
    float dq, id;
    if (mode == ActMode::kQ8_0) {
      const float dd = amax / 127.0f;
      id = dd != 0.0f ? 1.0f / dd : 0.0f;
      dq = _cvtsh_ss(_cvtss_sh(dd, _MM_FROUND_TO_NEAREST_INT));
    } else {
      dq = amax > 0 && std::isfinite(amax) ? amax / 127.0f : 0.0f;
      id = dq != 0.0f ? 1.0f / dq : 0.0f;
    }
    const __m256 vid = _mm256_set1_ps(id);
    for (int64_t b = b0; b < b0 + per; ++b) {
      __m256i iv[4];
      for (int j = 0; j < 4; ++j) {
        const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + 32 * b + 8 * j), vid);
        if (mode == ActMode::kQ8_0) {
          iv[j] = lround_ps(v);
        } else {  // max(v, lo) maps NaN to lo, as the scalar clamp does
          const __m256 c = _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(-127.0f)), _mm256_set1_ps(127.0f));
          iv[j] = _mm256_cvtps_epi32(_mm256_round_ps(c, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        }
      }
      int32_t lo, hi;
      store_block32(iv, qs + 32 * b, &lo, &hi);
      d[b] = dq;
      s32[b] = lo + hi;
      sa32[b] = dq * static_cast<float>(lo + hi);
      s16[2 * b] = lo;
      s16[2 * b + 1] = hi;
      sa16[2 * b] = dq * static_cast<float>(lo);
      sa16[2 * b + 1] = dq * static_cast<float>(hi);
    }
  }
}

// Float weights: the reference rounds activations to the weight's type.
inline void round_act_row(const float* x, float* out, int64_t k, TensorType type) {
  int64_t i = 0;
  if (type == TensorType::kF16) {
    for (; i + 8 <= k; i += 8)
      _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT)));
    for (; i < k; ++i) out[i] = fp16_to_fp32(fp32_to_fp16(x[i]));
  } else if (type == TensorType::kBF16) {
    for (; i < k; ++i) out[i] = bf16_to_fp32(fp32_to_bf16(x[i]));
  } else {
    std::memcpy(out, x, static_cast<size_t>(k) * sizeof(float));
  }
}

// ---------------------------------------------------------------------------
// Weight types. Each describes one record (ggml block / super-block) of a
// packed group: w1(q, u, g) yields vector g (0..7) of unit u (32 elements),
// whose lane j holds elements 4g..4g+3 of the unit in row j as bytes; Meta gives the f32 scale per row (per 16 elements
// when kHalves) and the min term (kMin).
//   value = scale * (w - kBeta) [+ min]   (kSigned: w is the signed value)

template <class S>
inline typename S::I vec(const uint8_t* q, int v) {
  return S::load(q + static_cast<size_t>(v) * 4 * S::R);
}

// 16 quant bytes from vector v0 on: low nibbles are g 0..3, high nibbles 4..7.
template <class S>
CODEY_ALWAYS_INLINE typename S::I nib16(const uint8_t* q, int v0, int g) {
  const auto x = vec<S>(q, v0 + (g & 3));
  return S::and_(g < 4 ? x : S::template shr<4>(x), S::c8(0x0F));
}

template <class S>
struct MetaD {  // one f16 scale per row
  typename S::F d;
  explicit MetaD(const uint8_t* m) : d(S::load_h(m)) {}
  typename S::F scale(const uint8_t*, int) const { return d; }
};

template <class S>
struct MetaDM {  // f16 scale and min per row
  typename S::F d, mn;
  explicit MetaDM(const uint8_t* m) : d(S::load_h(m)), mn(S::load_h(m + 2 * S::R)) {}
  typename S::F scale(const uint8_t*, int) const { return d; }
  typename S::F min(const uint8_t*, int) const { return mn; }
};

struct PQ4_0 {
  static constexpr int kUnits = 1, kQsBytes = 16, kMetaBytes = 2, kBeta = 8;
  static constexpr bool kHalves = false, kMin = false, kSigned = false;
  template <class S>
  using Meta = MetaD<S>;
  template <class S>
  CODEY_ALWAYS_INLINE static typename S::I w1(const uint8_t* q, int, int g) { return nib16<S>(q, 0, g); }
};

struct PQ4_1 : PQ4_0 {
  static constexpr int kQsBytes = 16, kMetaBytes = 4, kBeta = 0;
  static constexpr bool kMin = true;
  template <class S>
  using Meta = MetaDM<S>;
};

// Q5_0 / Q5_1: nibbles, and the 5th bit of element e at bit e of the row's
// qh (vector 4, lane j = row j's 4 qh bytes).
template <class S>
CODEY_ALWAYS_INLINE typename S::I q5_32(const uint8_t* q, int g) {
  const auto h = vec<S>(q, 4);
  const int b = g >> 1;  // byte of qh holding elements 4g..4g+3
  const auto idx = S::bcast128(_mm_setr_epi8(b, b, b, b, 4 + b, 4 + b, 4 + b, 4 + b, 8 + b, 8 + b, 8 + b, 8 + b, 12 + b,
                                             12 + b, 12 + b, 12 + b));
  const auto pat = S::set1((g & 1) ? static_cast<int32_t>(0x80402010u) : 0x08040201);
  return S::or_if(nib16<S>(q, 0, g), S::shuffle8(h, idx), pat, S::c8(0x10));
}

struct PQ5_0 {
  static constexpr int kUnits = 1, kQsBytes = 20, kMetaBytes = 2, kBeta = 16;
  static constexpr bool kHalves = false, kMin = false, kSigned = false;
  template <class S>
  using Meta = MetaD<S>;
  template <class S>
  CODEY_ALWAYS_INLINE static typename S::I w1(const uint8_t* q, int, int g) { return q5_32<S>(q, g); }
};

struct PQ5_1 : PQ5_0 {
  static constexpr int kMetaBytes = 4, kBeta = 0;
  static constexpr bool kMin = true;
  template <class S>
  using Meta = MetaDM<S>;
};

struct PQ8_0 {
  static constexpr int kUnits = 1, kQsBytes = 32, kMetaBytes = 2, kBeta = 0;
  static constexpr bool kHalves = false, kMin = false, kSigned = true;
  template <class S>
  using Meta = MetaD<S>;
  template <class S>
  CODEY_ALWAYS_INLINE static typename S::I w1(const uint8_t* q, int, int g) { return vec<S>(q, g); }
};

template <class S>
inline typename S::I iq4_table() {
  return S::bcast128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(quant::kIq4nlValues)));
}

struct PIQ4_NL {
  static constexpr int kUnits = 1, kQsBytes = 16, kMetaBytes = 2, kBeta = 0;
  static constexpr bool kHalves = false, kMin = false, kSigned = true;
  template <class S>
  using Meta = MetaD<S>;
  template <class S>
  CODEY_ALWAYS_INLINE static typename S::I w1(const uint8_t* q, int, int g) {
    return S::shuffle8(iq4_table<S>(), nib16<S>(q, 0, g));
  }
};

template <class S>
struct MetaK45 {  // Q4_K / Q5_K: d, dmin per row; 6-bit sc, m per sub-block (unpacked u8)
  typename S::F d, nd;
  explicit MetaK45(const uint8_t* m) : d(S::load_h(m)), nd(S::neg(S::load_h(m + 2 * S::R))) {}
  typename S::F scale(const uint8_t* m, int u) const { return S::mul(d, S::cvt(S::load_u8x(m + (4 + u) * S::R))); }
  typename S::F min(const uint8_t* m, int u) const { return S::mul(nd, S::cvt(S::load_u8x(m + (12 + u) * S::R))); }
};

struct PQ4_K {
  static constexpr int kUnits = 8, kQsBytes = 128, kMetaBytes = 20, kBeta = 0;
  static constexpr bool kHalves = false, kMin = true, kSigned = false;
  template <class S>
  using Meta = MetaK45<S>;
  // Bytes 32p + l: element 64p + l (low nibble), 64p + 32 + l (high).
  template <class S>
  CODEY_ALWAYS_INLINE static typename S::I w1(const uint8_t* q, int u, int g) {
    const auto x = vec<S>(q, 8 * (u >> 1) + g);
    return S::and_((u & 1) ? S::template shr<4>(x) : x, S::c8(0x0F));
  }
};

struct PQ5_K : PQ4_K {
  static constexpr int kQsBytes = 160;
  // As Q4_K; the 5th bit of element 32u + l is bit u of qh[l] (vectors 32..39).
  template <class S>
  CODEY_ALWAYS_INLINE static typename S::I w1(const uint8_t* q, int u, int g) {
    return S::or_masked(PQ4_K::template w1<S>(q, u, g), S::template shl<4>(S::shr_var(vec<S>(q, 32 + g), u)), S::c8(0x10));
  }
};

template <class S>
struct MetaS8 {  // d per row; int8 scale per sub-block at meta + 2R
  typename S::F d;
  explicit MetaS8(const uint8_t* m) : d(S::load_h(m)) {}
  typename S::F scale(const uint8_t* m, int s) const { return S::mul(d, S::cvt(S::load_i8x(m + (2 + s) * S::R))); }
};

struct PQ6_K {
  static constexpr int kUnits = 8, kQsBytes = 192, kMetaBytes = 18, kBeta = 32;
  static constexpr bool kHalves = true, kMin = false, kSigned = false;
  template <class S>
  using Meta = MetaS8<S>;
  // Unit u = 4h + k holds elements 128h + 32k + l: nibble from ql[64h + l]
  // (k = 0 low, 2 high) or ql[64h + 32 + l] (k = 1 low, 3 high); top 2 bits
  // at bit 2k of qh[32h + l] (qh vectors start at 32).
  template <class S>
  CODEY_ALWAYS_INLINE static typename S::I w1(const uint8_t* q, int u, int g) {
    const int h = u >> 2, k = u & 3;
    const auto x = vec<S>(q, 16 * h + 8 * (k & 1) + g);
    const auto nib = S::and_(k < 2 ? x : S::template shr<4>(x), S::c8(0x0F));
    const auto hb = S::template shl<4>(S::shr_var(vec<S>(q, 32 + 8 * h + g), 2 * k));
    return S::or_masked(nib, hb, S::c8(0x30));
  }
};

struct PQ3_K {
  static constexpr int kUnits = 8, kQsBytes = 96, kMetaBytes = 18, kBeta = 4;
  static constexpr bool kHalves = true, kMin = false, kSigned = false;
  template <class S>
  using Meta = MetaS8<S>;
  // Unit u = 4h + k: 2 low bits at bit 2k of qs[32h + l] (vectors 8..23),
  // 3rd bit at bit u of hmask[l] (vectors 0..7); value = q - 4.
  template <class S>
  CODEY_ALWAYS_INLINE static typename S::I w1(const uint8_t* q, int u, int g) {
    const int h = u >> 2, k = u & 3;
    const auto lo = S::and_(S::shr_var(vec<S>(q, 8 + 8 * h + g), 2 * k), S::c8(0x03));
    return S::or_masked(lo, S::template shl<2>(S::shr_var(vec<S>(q, g), u)), S::c8(0x04));
  }
};

template <class S>
struct MetaQ2 {  // d, dmin per row; per 16 elements a byte: scale (low nibble), min (high)
  typename S::F d, nd;
  explicit MetaQ2(const uint8_t* m) : d(S::load_h(m)), nd(S::neg(S::load_h(m + 2 * S::R))) {}
  typename S::F scale(const uint8_t* m, int s) const {
    return S::mul(d, S::cvt(S::and32(S::load_u8x(m + (4 + s) * S::R), 0xF)));
  }
  typename S::F min(const uint8_t* m, int s) const {
    return S::mul(nd, S::cvt(S::shr32_4(S::load_u8x(m + (4 + s) * S::R))));
  }
};

struct PQ2_K {
  static constexpr int kUnits = 8, kQsBytes = 64, kMetaBytes = 20, kBeta = 0;
  static constexpr bool kHalves = true, kMin = true, kSigned = false;
  template <class S>
  using Meta = MetaQ2<S>;
  template <class S>
  CODEY_ALWAYS_INLINE static typename S::I w1(const uint8_t* q, int u, int g) {
    const int h = u >> 2, k = u & 3;
    return S::and_(S::shr_var(vec<S>(q, 8 * h + g), 2 * k), S::c8(0x03));
  }
};

struct PIQ4_XS {
  static constexpr int kUnits = 8, kQsBytes = 128, kMetaBytes = 10, kBeta = 0;
  static constexpr bool kHalves = false, kMin = false, kSigned = true;
  template <class S>
  using Meta = MetaS8<S>;
  template <class S>
  CODEY_ALWAYS_INLINE static typename S::I w1(const uint8_t* q, int u, int g) {
    return S::shuffle8(iq4_table<S>(), nib16<S>(q, 4 * u, g));
  }
};

// ---------------------------------------------------------------------------
// The VNNI micro-kernel (the AVX-512 table; AVX2 has its own, gemm_i16.h):
// R rows (one packed group) x T tokens over all of K. The 8 unpacked weight
// vectors of a unit are reused for the T tokens; per token and unit: 8
// dpbusd, then one convert and two f32 ops.
#ifndef CODEY_PF
#define CODEY_PF 16384
#endif
// How far ahead generation prefetches the weights. Measured on Zen 5 with
// `codey bench -p 0 -n 64 -t 1,2` on deepseek-coder-1.3b Q4_K_M (1 / 2
// threads, tok/s): none 16.1 / 25.1, 8 KiB 22.6 / 39.7, 16 KiB 30.0 / 39.0,
// 32 KiB 30.5 / 39.7.
constexpr int64_t kPrefetchBytes = CODEY_PF;
constexpr int64_t kPrefetchMaxTokens = 8;
template <class S, class P, int T>
void tile(const uint8_t* grp, int64_t n_rec, const ActLayout& L, const uint8_t* const* act, float* const* out,
          int n_out, int n_rows, bool prefetch) {
  using I = typename S::I;
  using F = typename S::F;
  constexpr int R = S::R;
  static_assert(S::kVnni, "dpbusd: u8 x s8 into int32");
  constexpr int kBeta = P::kSigned ? 128 : P::kBeta;  // signed weights are biased by +128
  const uint8_t* qs_region = grp;
  const uint8_t* meta_region = grp + static_cast<size_t>(n_rec) * R * P::kQsBytes;
  F acc[T];
  for (int t = 0; t < T; ++t) acc[t] = S::fzero();
  for (int64_t b = 0; b < n_rec; ++b) {
    const uint8_t* q = qs_region + static_cast<size_t>(b) * R * P::kQsBytes;
    const uint8_t* m = meta_region + static_cast<size_t>(b) * R * P::kMetaBytes;
    const typename P::template Meta<S> meta(m);
    for (int u = 0; u < P::kUnits; ++u) {
      if (prefetch) {
        // Generation streams the weights from DRAM once: ask for the bytes
        // kPrefetchBytes ahead (a unit's share of a block at a time), so the
        // loads are in flight while this block is computed.
        constexpr int kLine = 64, kPerUnit = (R * P::kQsBytes + P::kUnits - 1) / P::kUnits;
        const uint8_t* pf = q + kPrefetchBytes + u * kPerUnit;
        for (int off = 0; off < kPerUnit; off += kLine) _mm_prefetch(reinterpret_cast<const char*>(pf + off), _MM_HINT_T0);
      }
      I w[8];
      for (int g = 0; g < 8; ++g) w[g] = P::template w1<S>(q, u, g);
      if constexpr (P::kSigned)
        for (int g = 0; g < 8; ++g) w[g] = S::xor_(w[g], S::c8(0x80));
      const int64_t ab = b * P::kUnits + u;  // activation block of 32
      auto dot = [&](I s, int g, const int8_t* x) { return S::dpbusd(s, w[g], S::bcast(x + 4 * g)); };
      if constexpr (!P::kHalves) {
        const F dw = meta.scale(m, u);
        F mn;
        if constexpr (P::kMin) mn = meta.min(m, u);
        for (int t = 0; t < T; ++t) {
          const uint8_t* a = act[t];
          const auto* x = reinterpret_cast<const int8_t*>(a) + 32 * ab;
          I s = kBeta ? S::set1(-kBeta * reinterpret_cast<const int32_t*>(a + L.off_s32)[ab]) : S::zero();
          for (int g = 0; g < 8; ++g) s = dot(s, g, x);
          const float da = reinterpret_cast<const float*>(a + L.off_d)[ab];
          acc[t] = S::fma(S::cvt(s), S::mul(dw, S::fset1(da)), acc[t]);
          if constexpr (P::kMin) acc[t] = S::fma(mn, S::fset1(reinterpret_cast<const float*>(a + L.off_sa32)[ab]), acc[t]);
        }
      } else {
        const F dw0 = meta.scale(m, 2 * u), dw1 = meta.scale(m, 2 * u + 1);
        F mn0, mn1;
        if constexpr (P::kMin) {
          mn0 = meta.min(m, 2 * u);
          mn1 = meta.min(m, 2 * u + 1);
        }
        for (int t = 0; t < T; ++t) {
          const uint8_t* a = act[t];
          const auto* x = reinterpret_cast<const int8_t*>(a) + 32 * ab;
          const auto* s16 = reinterpret_cast<const int32_t*>(a + L.off_s16) + 2 * ab;
          I s0 = kBeta ? S::set1(-kBeta * s16[0]) : S::zero();
          I s1 = kBeta ? S::set1(-kBeta * s16[1]) : S::zero();
          for (int g = 0; g < 4; ++g) s0 = dot(s0, g, x);
          for (int g = 4; g < 8; ++g) s1 = dot(s1, g, x);
          const float da = reinterpret_cast<const float*>(a + L.off_d)[ab];
          const F v = S::fma(S::cvt(s1), dw1, S::mul(S::cvt(s0), dw0));
          acc[t] = S::fma(v, S::fset1(da), acc[t]);
          if constexpr (P::kMin) {
            const auto* sa16 = reinterpret_cast<const float*>(a + L.off_sa16) + 2 * ab;
            acc[t] = S::fma(mn0, S::fset1(sa16[0]), acc[t]);
            acc[t] = S::fma(mn1, S::fset1(sa16[1]), acc[t]);
          }
        }
      }
    }
  }
  for (int t = 0; t < n_out; ++t) S::store(out[t], acc[t], n_rows);
}

// ---------------------------------------------------------------------------
// Driver: quantize the activations, then split the row groups into chunks
// handed out dynamically; a chunk runs every token tile over its groups, so a
// token tile stays in L1 while the chunk's weights stay in L2.

constexpr int kMaxTile = 16;             // most tokens per micro-kernel call (S::kTile)
constexpr int64_t kMaxChunkGroups = 16;  // bound on groups packed on the fly
constexpr size_t kChunkBytes = 192 * 1024;
// AVX2 prompts: bytes of expanded records per chunk (gemm_i16.h; a chunk is
// expanded once and read by every token tile, so it should stay in L2).
constexpr size_t kU8ChunkBytes = 256 * 1024;

inline size_t act_bytes(int64_t m, int64_t k) { return static_cast<size_t>(m) * ActLayout(k).stride; }

template <class S>
size_t q_workspace(TensorType type, int64_t m, int64_t k, int n_threads);

inline uint8_t* align64(uint8_t* p) {
  return reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(p) + 63) & ~uintptr_t{63});
}

inline void quantize_acts(const float* x, int64_t m, int64_t ldx, const ActLayout& L, uint8_t* act, ActMode mode,
                          ThreadPool& pool) {
  if (m < 4) {
    for (int64_t i = 0; i < m; ++i) quantize_act_row(x + i * ldx, L, act + static_cast<size_t>(i) * L.stride, mode);
    return;
  }
  pool.parallel_for(m, std::max<int64_t>(1, m / (4 * pool.n_threads())), [&](int64_t i0, int64_t i1, int) {
    for (int64_t i = i0; i < i1; ++i) quantize_act_row(x + i * ldx, L, act + static_cast<size_t>(i) * L.stride, mode);
  });
}

}  // namespace
}  // namespace codey::kernels::x86

#include "kernels/x86/gemm_i16.h"  // the AVX2 path, built on the definitions above

namespace codey::kernels::x86 {
namespace {

// VNNI: dpbusd accumulates bytes into int32 directly.
template <class S, class P>
void matmul_dpbusd(const Matrix& w, const float* x, int64_t m, int64_t ldx, float* y, int64_t ldy,
                   std::span<uint8_t> workspace, ThreadPool& pool) {
  constexpr int R = S::R;
  const int64_t k = w.cols;
  const PackedFormat fmt = packed_format(w.type);
  const int64_t n_rec = k / fmt.block;
  const ActLayout L(k);
  const int nth = pool.n_threads();
  CODEY_ASSERT(workspace.size() >= q_workspace<S>(w.type, m, k, nth));
  uint8_t* act = align64(workspace.data());
  uint8_t* scratch = act + act_bytes(m, k);
  quantize_acts(x, m, ldx, L, act, fmt.block == 256 ? ActMode::kQ8_K : ActMode::kQ8_0, pool);

  const size_t gb = packed_group_bytes(w.type, k, R);
  const uint8_t* packed = packed_groups(w, R);
  const int64_t n_groups = (w.rows + R - 1) / R;
  int64_t per_chunk;
  if (m <= 2) {  // bandwidth bound: only balance matters
    per_chunk = std::max<int64_t>(1, n_groups / (8 * nth));
  } else {
    per_chunk = std::max<int64_t>(1, static_cast<int64_t>(kChunkBytes / gb));
    per_chunk = std::min(per_chunk, std::max<int64_t>(1, n_groups / (4 * nth)));
  }
  if (!packed) per_chunk = std::min(per_chunk, kMaxChunkGroups);
  // A few tokens (generation, also of several sequences batched together)
  // read each weight byte from DRAM about once: prefetch ahead. More tokens
  // reuse a chunk from L2 across token tiles.
  const bool prefetch = packed && m <= kPrefetchMaxTokens;  // on-the-fly groups sit in L1/L2 scratch
  const int64_t n_chunks = (n_groups + per_chunk - 1) / per_chunk;

  pool.parallel_for(n_chunks, 1, [&](int64_t c0, int64_t c1, int ith) {
    uint8_t* my_scratch = scratch + static_cast<size_t>(ith) * kMaxChunkGroups * gb;
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t g0 = c * per_chunk, g1 = std::min(n_groups, g0 + per_chunk);
      if (!packed)
        for (int64_t g = g0; g < g1; ++g) pack_group(w, g * R, R, my_scratch + static_cast<size_t>(g - g0) * gb);
      for (int64_t t0 = 0; t0 < m; t0 += S::kTile) {
        const int nt = static_cast<int>(std::min<int64_t>(S::kTile, m - t0));
        const uint8_t* a[kMaxTile];
        for (int t = 0; t < S::kTile; ++t)  // past the end: repeat the last token, results dropped
          a[t] = act + static_cast<size_t>(t0 + std::min(t, nt - 1)) * L.stride;
        for (int64_t g = g0; g < g1; ++g) {
          const uint8_t* grp = packed ? packed + static_cast<size_t>(g) * gb : my_scratch + static_cast<size_t>(g - g0) * gb;
          const int n_rows = static_cast<int>(std::min<int64_t>(R, w.rows - g * R));
          float* out[kMaxTile];
          for (int t = 0; t < nt; ++t) out[t] = y + (t0 + t) * ldy + g * R;
          if (nt == 1)
            tile<S, P, 1>(grp, n_rec, L, a, out, nt, n_rows, prefetch);
          else if (nt == 2)
            tile<S, P, 2>(grp, n_rec, L, a, out, nt, n_rows, prefetch);
          else if (nt <= 4 || S::kTile <= 4)
            tile<S, P, 4>(grp, n_rec, L, a, out, nt, n_rows, prefetch);
          else if (nt <= 8 || S::kTile <= 8)
            tile<S, P, std::min(8, S::kTile)>(grp, n_rec, L, a, out, nt, n_rows, prefetch);
          else
            tile<S, P, S::kTile>(grp, n_rec, L, a, out, nt, n_rows, prefetch);
        }
      }
    }
  });
}

// Calls fn(P{}) with the packed weight type of `type` (which must be packable).
template <class Fn>
decltype(auto) with_packed_type(TensorType type, Fn&& fn) {
  switch (type) {
    case TensorType::kQ4_0: return fn(PQ4_0{});
    case TensorType::kQ4_1: return fn(PQ4_1{});
    case TensorType::kQ5_0: return fn(PQ5_0{});
    case TensorType::kQ5_1: return fn(PQ5_1{});
    case TensorType::kQ8_0: return fn(PQ8_0{});
    case TensorType::kIQ4_NL: return fn(PIQ4_NL{});
    case TensorType::kQ2_K: return fn(PQ2_K{});
    case TensorType::kQ3_K: return fn(PQ3_K{});
    case TensorType::kQ4_K: return fn(PQ4_K{});
    case TensorType::kQ5_K: return fn(PQ5_K{});
    case TensorType::kQ6_K: return fn(PQ6_K{});
    case TensorType::kIQ4_XS: return fn(PIQ4_XS{});
    default: CODEY_ASSERT(!"with_packed_type: type has no packed format");
  }
  return fn(PQ4_0{});
}

template <class S>
size_t q_workspace(TensorType type, int64_t m, int64_t k, int n_threads) {
  if (!packable(type)) return 64;
  if (k % packed_format(type).block != 0) return 64;
  if constexpr (!S::kVnni)
    return with_packed_type(type, [&](auto p) { return i16_workspace<decltype(p)>(type, m, k, n_threads); });
  return act_bytes(m, k) + static_cast<size_t>(n_threads) * kMaxChunkGroups * packed_group_bytes(type, k, S::R) + 128;
}

template <class S, class P>
void matmul_typed(const Matrix& w, const float* x, int64_t m, int64_t ldx, float* y, int64_t ldy,
                  std::span<uint8_t> workspace, ThreadPool& pool) {
  if constexpr (S::kVnni)
    matmul_dpbusd<S, P>(w, x, m, ldx, y, ldy, workspace, pool);
  else  // AVX2: int16 sums (gemm_i16.h)
    matmul_i16<P>(w, x, m, ldx, y, ldy, workspace, pool);
}

// F32 / F16 / BF16 weights: f32 FMA over rows, up to 4 tokens per pass so
// each converted weight vector serves several tokens.
template <class S, TensorType kType>
typename S::F load_wf(const uint8_t* row, int64_t i) {
  if constexpr (kType == TensorType::kF32)
    return S::loadf(reinterpret_cast<const float*>(row) + i);
  else if constexpr (kType == TensorType::kF16)
    return S::load_h(row + 2 * i);
  else
    return S::load_bf16(row + 2 * i);
}

template <class S, TensorType kType>
void matmul_float(const Matrix& w, const float* x, int64_t m, int64_t ldx, float* y, int64_t ldy,
                  std::span<uint8_t> workspace, ThreadPool& pool) {
  constexpr int R = S::R;
  constexpr int kT = 4;
  const int64_t k = w.cols, k_main = k / R * R;
  CODEY_ASSERT(workspace.size() >= static_cast<size_t>(m * k) * sizeof(float) + 64);
  auto* xr = reinterpret_cast<float*>(align64(workspace.data()));  // [m][k] rounded like the weights
  for (int64_t i = 0; i < m; ++i) round_act_row(x + i * ldx, xr + i * k, k, kType);
  const int64_t grain = std::max<int64_t>(1, w.rows / (8 * pool.n_threads()));
  pool.parallel_for(w.rows, grain, [&](int64_t r0, int64_t r1, int) {
    float tail[S::R];
    for (int64_t r = r0; r < r1; ++r) {
      const uint8_t* row = w.row(r);
      if (k_main < k) ref_decode_row(kType, row + row_bytes(kType, k_main), tail, k - k_main);
      for (int64_t t0 = 0; t0 < m; t0 += kT) {
        const int nt = static_cast<int>(std::min<int64_t>(kT, m - t0));
        typename S::F acc[kT];
        for (int t = 0; t < kT; ++t) acc[t] = S::fzero();
        for (int64_t i = 0; i < k_main; i += R) {
          const auto wv = load_wf<S, kType>(row, i);
          for (int t = 0; t < nt; ++t) acc[t] = S::fma(wv, S::loadf(xr + (t0 + t) * k + i), acc[t]);
        }
        for (int t = 0; t < nt; ++t) {
          float s = S::hsum(acc[t]);
          const float* xt = xr + (t0 + t) * k;
          for (int64_t i = k_main; i < k; ++i) s += tail[i - k_main] * xt[i];
          y[(t0 + t) * ldy + r] = s;
        }
      }
    }
  });
}

template <class S>
size_t matmul_workspace_impl(TensorType type, int64_t m, int64_t k, int n_threads) {
  const size_t floats = static_cast<size_t>(m * k) * sizeof(float) + 128;
  return std::max({q_workspace<S>(type, m, k, n_threads), ref_matmul_workspace(type, m, k, n_threads), floats});
}

template <class S>
void matmul_impl(const Matrix& w, const float* x, int64_t m, int64_t ldx, float* y, int64_t ldy,
                 std::span<uint8_t> ws, ThreadPool& pool) {
  if (m <= 0 || w.rows <= 0) return;
  switch (w.type) {
    case TensorType::kQ4_0: return matmul_typed<S, PQ4_0>(w, x, m, ldx, y, ldy, ws, pool);
    case TensorType::kQ4_1: return matmul_typed<S, PQ4_1>(w, x, m, ldx, y, ldy, ws, pool);
    case TensorType::kQ5_0: return matmul_typed<S, PQ5_0>(w, x, m, ldx, y, ldy, ws, pool);
    case TensorType::kQ5_1: return matmul_typed<S, PQ5_1>(w, x, m, ldx, y, ldy, ws, pool);
    case TensorType::kQ8_0: return matmul_typed<S, PQ8_0>(w, x, m, ldx, y, ldy, ws, pool);
    case TensorType::kIQ4_NL: return matmul_typed<S, PIQ4_NL>(w, x, m, ldx, y, ldy, ws, pool);
    case TensorType::kQ2_K: return matmul_typed<S, PQ2_K>(w, x, m, ldx, y, ldy, ws, pool);
    case TensorType::kQ3_K: return matmul_typed<S, PQ3_K>(w, x, m, ldx, y, ldy, ws, pool);
    case TensorType::kQ4_K: return matmul_typed<S, PQ4_K>(w, x, m, ldx, y, ldy, ws, pool);
    case TensorType::kQ5_K: return matmul_typed<S, PQ5_K>(w, x, m, ldx, y, ldy, ws, pool);
    case TensorType::kQ6_K: return matmul_typed<S, PQ6_K>(w, x, m, ldx, y, ldy, ws, pool);
    case TensorType::kIQ4_XS: return matmul_typed<S, PIQ4_XS>(w, x, m, ldx, y, ldy, ws, pool);
    case TensorType::kF32: return matmul_float<S, TensorType::kF32>(w, x, m, ldx, y, ldy, ws, pool);
    case TensorType::kF16: return matmul_float<S, TensorType::kF16>(w, x, m, ldx, y, ldy, ws, pool);
    case TensorType::kBF16: return matmul_float<S, TensorType::kBF16>(w, x, m, ldx, y, ldy, ws, pool);
    default: return ref_matmul(w, x, m, ldx, y, ldy, ws, pool);
  }
}

template <class S>
std::vector<uint8_t> repack_impl(const Matrix& w) {
  return pack_matrix(w, S::R);
}

}  // namespace
}  // namespace codey::kernels::x86
