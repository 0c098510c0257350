// Scale searches shared by the quantizers: least-squares fits of a block of
// values to a scaled set of levels (x ~ d*q) or to an affine grid (x ~ d*l + b),
// minimizing sum w*(x - x')^2 for per-element weights w.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>

#include "codey/base.h"
#include "quant/simd.h"

namespace codey::quant {

// f16 bits -> f32 by table (dequantize.cc).
float half_to_float(uint16_t h);

// The largest finite half; scales beyond it would decode as inf.
constexpr float kMaxHalf = 65504.0f;

// f32 -> f16 bits, saturating to the largest finite half (never inf for
// finite input) so that huge inputs give large but finite outputs.
inline uint16_t to_half(float v) {
  if (!(std::fabs(v) <= kMaxHalf)) v = std::isnan(v) ? 0.0f : std::copysign(kMaxHalf, v);
  return fp32_to_fp16(v);
}
// The smallest positive (subnormal) half, 2^-24.
constexpr float kMinHalf = 5.9604644775390625e-8f;
// A scale to f16: as to_half, but a non-zero scale below the half range
// becomes the smallest half instead of 0, so tiny data keeps some resolution
// (codes are rounded against the stored scale, so this is never worse).
inline uint16_t to_scale_half(float v) {
  if (v != 0 && std::fabs(v) < kMinHalf) v = std::copysign(kMinHalf, v);
  return to_half(v);
}

// Round to nearest integer (ties to even) as a float, for |v| < 2^22; a plain
// add/subtract of 1.5*2^23 so loops over it vectorize with SSE2.
inline float round_f(float v) {
  constexpr float kMagic = 12582912.0f;
  return (v + kMagic) - kMagic;
}
inline int round_i(float v) { return static_cast<int>(round_f(v)); }

// clamp that maps NaN to lo (max(lo, NaN) is lo with this argument order).
inline float clampf(float v, float lo, float hi) { return std::min(hi, std::max(lo, v)); }

// Uniform integer levels lo..hi (lo <= 0 <= hi).
struct UniformLevels {
  float lo, hi;
  float value_of(float v) const { return round_f(clampf(v, lo, hi)); }
  // The stored code: the level minus lo (0..hi-lo).
  int code_of(float v) const { return static_cast<int>(value_of(v) - lo); }
};

// The 16 IQ4_NL levels: nearest level of v via a table over round(2v), which
// puts every midpoint between two levels on an integer.
struct Iq4Levels {
  static constexpr int kOffset = 256;
  int8_t index_table[2 * kOffset + 1];
  float values[16];
  Iq4Levels();
  int index_of(float v) const {
    const int k = static_cast<int>(round_f(clampf(2.0f * v, -kOffset, kOffset)));
    return index_table[k + kOffset];
  }
  float value_of(float v) const { return values[index_of(v)]; }
  int code_of(float v) const { return index_of(v); }
  float lo() const { return values[0]; }
  float hi() const { return values[15]; }
};
const Iq4Levels& iq4_levels();

// sum w*x*q and sum w*q^2 for q = the level nearest t*x.
template <class Levels>
void symmetric_sums(const Levels& levels, const float* x, const float* w, int n, float t, float& sxq, float& sqq) {
  float a = 0, b = 0;
  for (int i = 0; i < n; ++i) {
    const float q = levels.value_of(t * x[i]);
    a += w[i] * x[i] * q;
    b += w[i] * q * q;
  }
  sxq = a;
  sqq = b;
}
// Uniform levels, n a multiple of 4: vectorized.
inline void symmetric_sums(const UniformLevels& levels, const float* x, const float* w, int n, float t, float& sxq,
                           float& sqq) {
  CODEY_DASSERT(n % 4 == 0);
  const F4 vt = splat(t), lo = splat(levels.lo), hi = splat(levels.hi);
  F4 a = splat(0), b = splat(0);
  for (int i = 0; i < n; i += 4) {
    const F4 xv = load4(x + i);
    const F4 q = round4(clamp4(vt * xv, lo, hi));
    const F4 wq = load4(w + i) * q;
    a += wq * xv;
    b += wq * q;
  }
  sxq = hsum(a);
  sqq = hsum(b);
}

struct SymmetricFit {
  float d = 0;    // best scale (unrounded)
  float sqq = 0;  // sum w*q^2 of the assignment it fits (sensitivity of the error to d)
  float sxq = 0;
};

// x ~ d*q with q from `levels`. Tries inverse scales t = c/max for each c in
// `cands` (max = the element of largest magnitude, with its sign, so c < 0
// maps it to the negative end), refits d by least squares for each, keeps the
// best, then alternates re-rounding and refitting while the error drops.
// The error of a fit is sum w*x^2 - sxq^2/sqq, so the best has largest sxq^2/sqq.
template <class Levels>
SymmetricFit fit_symmetric(const float* x, const float* w, int n, const Levels& levels, std::span<const float> cands,
                           int refine_iters = 3) {
  float amax = 0, max = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  SymmetricFit best;
  if (!(amax > 1e-30f)) return best;  // all zero (or NaN): d = 0 decodes to 0
  float best_score = 0;               // sxq^2/sqq of the best so far
  auto eval = [&](float t, float& sxq, float& sqq) { symmetric_sums(levels, x, w, n, t, sxq, sqq); };
  auto consider = [&](float sxq, float sqq) {
    if (sqq > 0 && sxq * sxq > best_score * sqq) {
      best_score = sxq * sxq / sqq;
      best.d = sxq / sqq;
      best.sqq = sqq;
      best.sxq = sxq;
      return true;
    }
    return false;
  };
  for (float c : cands) {
    float sxq, sqq;
    eval(c / max, sxq, sqq);
    consider(sxq, sqq);
  }
  for (int it = 0; it < refine_iters && best.d != 0; ++it) {
    float sxq, sqq;
    eval(1.0f / best.d, sxq, sqq);
    if (!consider(sxq, sqq)) break;
  }
  return best;
}

struct AffineFit {
  float d = 0;    // step (>= 0)
  float b = 0;    // offset: x ~ d*l + b
  float err = 0;  // weighted squared error
  float sll = 0;  // sum w*l^2 (sensitivity of the error to d)
  float sw = 0;   // sum w (sensitivity to b)
};

// Where fit_affine looks: inverse steps t = (nmax + delta)/(max - b0) for
// each coarse delta, then deltas fine_step apart (fine_half each side)
// around the best coarse one, then up to refine_iters alternations.
struct AffineSearch {
  std::span<const float> coarse;
  float fine_step = 0;
  int fine_half = 0;
  int refine_iters = 3;
};

// x ~ d*l + b with integer l in 0..nmax; with `nonpositive_offset` b <= 0
// (the K-quant formats store -b as an unsigned min). Starts from b0 = min(x)
// and the inverse steps of `search`, fits (d, b) by least squares to each
// rounding, keeps the best, then alternates re-rounding with (d, b) and
// refitting while the error drops.
AffineFit fit_affine(const float* x, const float* w, int n, int nmax, bool nonpositive_offset,
                     const AffineSearch& search);

// Weighted squared error of x against d*q(x/d) for the given levels.
template <class Levels>
float symmetric_error(const float* x, const float* w, int n, const Levels& levels, float d) {
  float e = 0;
  if (d == 0) {
    for (int i = 0; i < n; ++i) e += w[i] * x[i] * x[i];
    return e;
  }
  const float id = 1.0f / d;
  for (int i = 0; i < n; ++i) {
    const float r = x[i] - d * levels.value_of(id * x[i]);
    e += w[i] * r * r;
  }
  return e;
}
inline float symmetric_error(const float* x, const float* w, int n, const UniformLevels& levels, float d) {
  CODEY_DASSERT(n % 4 == 0);
  F4 e = splat(0);
  if (d == 0) {
    for (int i = 0; i < n; i += 4) {
      const F4 xv = load4(x + i);
      e += load4(w + i) * xv * xv;
    }
    return hsum(e);
  }
  const F4 vd = splat(d), vid = splat(1.0f / d), lo = splat(levels.lo), hi = splat(levels.hi);
  for (int i = 0; i < n; i += 4) {
    const F4 xv = load4(x + i);
    const F4 r = xv - vd * round4(clamp4(vid * xv, lo, hi));
    e += load4(w + i) * r * r;
  }
  return hsum(e);
}

// Weighted squared error of x against d*l + b with l = round((x-b)/d) in 0..nmax.
float affine_error(const float* x, const float* w, int n, int nmax, float d, float b);

// Per-element weights of one block: the caller's importance (if given and
// not all zero in the block) or 1.
void block_weights(const float* importance, int n, float* w);

// Candidate grids: c values for fit_symmetric around the two ends of
// uniform levels lo..hi: hi + [-below, above] and lo + [-above, below] in
// `steps` steps each. Returns the count written (<= capacity).
int symmetric_cands(float lo, float hi, float below, float above, int steps, float* out, int capacity);

// The candidate grid for fit_symmetric with Iq4Levels; returns the count.
int iq4_cands(float* out, int capacity);

}  // namespace codey::quant
