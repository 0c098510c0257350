// Scale searches shared by the quantizers (see search.h).
#include "quant/search.h"

#include "codey/quant_blocks.h"

namespace codey::quant {

namespace {
constexpr int kIq4Steps = 10;
constexpr float kIq4PosFrom = 96.0f, kIq4NegFrom = -108.0f, kIq4Step = 4.0f;
}  // namespace

Iq4Levels::Iq4Levels() {
  for (int i = 0; i < 16; ++i) values[i] = kIq4nlValues[i];
  // Entry k is the nearest level to k/2: level i wins while 2v < v_i + v_{i+1}.
  for (int k = -kOffset; k <= kOffset; ++k) {
    int idx = 0;
    while (idx < 15 && k >= kIq4nlValues[idx] + kIq4nlValues[idx + 1]) ++idx;
    index_table[k + kOffset] = static_cast<int8_t>(idx);
  }
}

const Iq4Levels& iq4_levels() {
  static const Iq4Levels levels;
  return levels;
}

namespace {

// Least-squares (d, b) for fixed levels l given the weighted sums; b clamped
// to <= 0 when required. Returns false when the fit is degenerate.
bool solve_affine(float sw, float sx, float sxx, float sl, float sll, float sxl, bool nonpositive_offset,
                  AffineFit& out) {
  const float det = sw * sll - sl * sl;
  float d, b;
  if (det > 0) {
    d = (sw * sxl - sx * sl) / det;
    b = (sll * sx - sl * sxl) / det;
  } else {  // every code equal (e.g. a constant block with b pinned to 0)
    if (!(sll > 0)) return false;
    d = sxl / sll;
    b = 0;
  }
  if (nonpositive_offset && b > 0) {
    b = 0;
    d = sxl / sll;
  }
  if (!(d > 0)) return false;
  out.d = d;
  out.b = b;
  out.err = sxx - 2 * d * sxl - 2 * b * sx + d * d * sll + 2 * d * b * sl + b * b * sw;
  out.sll = sll;
  out.sw = sw;
  return true;
}

}  // namespace

AffineFit fit_affine(const float* x, const float* w, int n, int nmax, bool nonpositive_offset,
                     const AffineSearch& search) {
  CODEY_DASSERT(n % 4 == 0);
  float mn = x[0], mx = x[0], sw = 0, sx = 0, sxx = 0;
  for (int i = 0; i < n; ++i) {
    mn = std::min(mn, x[i]);
    mx = std::max(mx, x[i]);
    sw += w[i];
    sx += w[i] * x[i];
    sxx += w[i] * x[i] * x[i];
  }
  if (nonpositive_offset && mn > 0) mn = 0;
  AffineFit best;
  best.b = mn;
  best.sw = sw;
  if (!(mx - mn > 0)) {  // constant block (or NaN): offset alone
    best.err = affine_error(x, w, n, nmax, 0, mn);
    return best;
  }
  best.err = std::numeric_limits<float>::infinity();
  const float fmax = static_cast<float>(nmax);
  const F4 zero = splat(0), top = splat(fmax);
  auto try_rounding = [&](float t, float b0) {
    const F4 vt = splat(t), vb = splat(b0);
    F4 vl = zero, vll = zero, vxl = zero;
    for (int i = 0; i < n; i += 4) {
      const F4 xv = load4(x + i);
      const F4 l = round4(clamp4(vt * (xv - vb), zero, top));
      const F4 wl = load4(w + i) * l;
      vl += wl;
      vll += wl * l;
      vxl += wl * xv;
    }
    const float sl = hsum(vl), sll = hsum(vll), sxl = hsum(vxl);
    AffineFit f;
    if (solve_affine(sw, sx, sxx, sl, sll, sxl, nonpositive_offset, f) && f.err < best.err) {
      best = f;
      return true;
    }
    return false;
  };
  float best_delta = 0;
  for (float delta : search.coarse)
    if (try_rounding((fmax + delta) / (mx - mn), mn)) best_delta = delta;
  const float coarse_best = best_delta;
  for (int k = -search.fine_half; k <= search.fine_half; ++k) {
    const float delta = coarse_best + search.fine_step * static_cast<float>(k);
    if (k != 0 && fmax + delta > 0) try_rounding((fmax + delta) / (mx - mn), mn);
  }
  if (!(best.err < std::numeric_limits<float>::infinity())) {  // every rounding degenerate (NaN input)
    best = AffineFit{0, mn, 0, 0, sw};
    best.err = affine_error(x, w, n, nmax, 0, mn);
    return best;
  }
  for (int it = 0; it < search.refine_iters; ++it)
    if (!try_rounding(1.0f / best.d, best.b)) break;
  return best;
}

float affine_error(const float* x, const float* w, int n, int nmax, float d, float b) {
  CODEY_DASSERT(n % 4 == 0);
  const F4 vb = splat(b);
  F4 e = splat(0);
  if (d == 0) {
    for (int i = 0; i < n; i += 4) {
      const F4 r = load4(x + i) - vb;
      e += load4(w + i) * r * r;
    }
    return hsum(e);
  }
  const F4 vd = splat(d), vid = splat(1.0f / d), zero = splat(0), top = splat(static_cast<float>(nmax));
  for (int i = 0; i < n; i += 4) {
    const F4 xv = load4(x + i);
    const F4 l = round4(clamp4(vid * (xv - vb), zero, top));
    const F4 r = xv - (vd * l + vb);
    e += load4(w + i) * r * r;
  }
  return hsum(e);
}

void block_weights(const float* importance, int n, float* w) {
  if (importance) {
    float s = 0;
    for (int i = 0; i < n; ++i) {
      const float v = importance[i];
      w[i] = v > 0 ? v : 0.0f;  // negative or NaN importance counts as none
      s += w[i];
    }
    // A small floor keeps every element in the fit (a column the
    // importance never saw still gets a sane value, not an arbitrary one).
    if (s > 0 && std::isfinite(s)) {
      const float floor = 0.01f * s / static_cast<float>(n);
      for (int i = 0; i < n; ++i) w[i] += floor;
      return;
    }
  }
  for (int i = 0; i < n; ++i) w[i] = 1.0f;
}

int symmetric_cands(float lo, float hi, float below, float above, int steps, float* out, int capacity) {
  int k = 0;
  for (int s = 0; s < steps && k + 2 <= capacity; ++s) {
    const float f = steps > 1 ? static_cast<float>(s) / static_cast<float>(steps - 1) : 0.0f;
    out[k++] = hi - below + f * (below + above);
    if (lo < 0) out[k++] = lo + below - f * (below + above);
  }
  return k;
}

int iq4_cands(float* out, int capacity) {
  // The largest element maps near the top level (113) or the bottom (-127),
  // from ~20% inside to ~15% beyond it (clipping).
  int k = 0;
  for (int s = 0; s < kIq4Steps && k + 2 <= capacity; ++s) {
    out[k++] = kIq4PosFrom + kIq4Step * static_cast<float>(s);
    out[k++] = kIq4NegFrom - kIq4Step * static_cast<float>(s);
  }
  return k;
}

}  // namespace codey::quant
