// Four-float vectors (GCC/Clang vector extensions, SSE2 on x86-64) for the
// quantizers' search loops: their float reductions do not auto-vectorize
// without -ffast-math, and they are most of the time a quantizer spends.
#pragma once

#include <cstring>

namespace codey::quant {

typedef float F4 __attribute__((vector_size(16)));
typedef int I4 __attribute__((vector_size(16)));

inline F4 splat(float v) { return F4{v, v, v, v}; }
inline F4 load4(const float* p) {
  F4 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
inline float hsum(F4 v) { return (v[0] + v[2]) + (v[1] + v[3]); }
// min(hi, max(lo, v)) lane-wise; NaN lanes become lo.
inline F4 clamp4(F4 v, F4 lo, F4 hi) {
  v = lo < v ? v : lo;
  return hi < v ? hi : v;
}
// Round to nearest (ties to even) for |v| < 2^22, as round_f.
inline F4 round4(F4 v) {
  const F4 magic = splat(12582912.0f);
  return (v + magic) - magic;
}

}  // namespace codey::quant
