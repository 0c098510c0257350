// Quantizers of the 256-element super-block formats: Q2_K..Q6_K and IQ4_XS.
// Per super-block: fit every sub-block alone (search.h), quantize the sub-block
// scales (and mins) against one f16 super-scale by the same least-squares
// search weighted by how much each sub-block's error depends on its scale,
// pick each sub-block's integer scale/min among the neighbours of the ideal
// by its actual error, refit the super-scales to the chosen integers, and
// finally round every code against the scales exactly as they decode.
#include "quant/quantize_k.h"

#include <cstring>
#include <limits>

#include "codey/quant_blocks.h"
#include "quant/search.h"

namespace codey::quant {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

struct Grid {
  float v[64];
  int n = 0;
  void add(float x) {
    CODEY_ASSERT(n < 64);
    v[n++] = x;
  }
  void range(float from, float to, int steps) {
    for (int s = 0; s < steps; ++s) add(from + (to - from) * static_cast<float>(s) / static_cast<float>(steps - 1));
  }
  std::span<const float> span() const { return {v, static_cast<size_t>(n)}; }
};

// ---- symmetric super-blocks: x = D * k_j * q (Q3_K, Q6_K, IQ4_XS) ----

struct SymmetricParams {
  int sub;                     // elements per sub-block
  int nsub;                    // sub-blocks per super-block
  float klo, khi;              // integer sub-scale range
  std::span<const float> sub_cands;
  std::span<const float> scale_cands;
};

struct SymmetricSuper {
  uint16_t d = 0;
  int k[16] = {};
  int code[kQK_K];
};

template <class Levels>
float symmetric_total_error(const float* x, const float* w, const Levels& lv, const SymmetricParams& p, float D,
                            const int* k) {
  float e = 0;
  for (int j = 0; j < p.nsub; ++j)
    e += symmetric_error(x + j * p.sub, w + j * p.sub, p.sub, lv, D * static_cast<float>(k[j]));
  return e;
}

template <class Levels>
void quantize_symmetric_super(const float* x, const float* w, const Levels& lv, const SymmetricParams& p,
                              SymmetricSuper& out) {
  float s[16], sw[16];
  for (int j = 0; j < p.nsub; ++j) {
    const SymmetricFit f = fit_symmetric(x + j * p.sub, w + j * p.sub, p.sub, lv, p.sub_cands);
    s[j] = f.d;
    sw[j] = f.sqq;
  }
  const UniformLevels kl{p.klo, p.khi};
  const SymmetricFit sf = fit_symmetric(s, sw, p.nsub, kl, p.scale_cands);
  out.d = to_scale_half(sf.d);
  float D = half_to_float(out.d);
  if (D == 0) {
    for (int j = 0; j < p.nsub; ++j) out.k[j] = 0;
    for (int i = 0; i < p.sub * p.nsub; ++i) out.code[i] = lv.code_of(0);
    return;
  }
  // Each sub-block's integer scale: the neighbours of the ideal, by error.
  float total = 0;
  for (int j = 0; j < p.nsub; ++j) {
    const int k0 = static_cast<int>(kl.value_of(s[j] / D));
    float best = kInf;
    int best_k = k0;
    for (int kk = std::max(k0 - 1, int(p.klo)); kk <= std::min(k0 + 1, int(p.khi)); ++kk) {
      const float e = symmetric_error(x + j * p.sub, w + j * p.sub, p.sub, lv, D * static_cast<float>(kk));
      if (e < best) {
        best = e;
        best_k = kk;
      }
    }
    out.k[j] = best_k;
    total += best;
  }
  // Refit D to the chosen integers and codes; keep it only if it helps.
  for (int it = 0; it < 2; ++it) {
    float num = 0, den = 0;
    for (int j = 0; j < p.nsub; ++j) {
      const float dj = D * static_cast<float>(out.k[j]);
      if (dj == 0) continue;
      const float idj = 1.0f / dj, kj = static_cast<float>(out.k[j]);
      const float* xj = x + j * p.sub;
      const float* wj = w + j * p.sub;
      for (int i = 0; i < p.sub; ++i) {
        const float q = lv.value_of(idj * xj[i]);
        num += wj[i] * xj[i] * q * kj;
        den += wj[i] * q * q * kj * kj;
      }
    }
    if (!(den > 0)) break;
    const uint16_t dh = to_scale_half(num / den);
    const float Dn = half_to_float(dh);
    if (Dn == D || Dn == 0) break;
    const float e = symmetric_total_error(x, w, lv, p, Dn, out.k);
    if (!(e < total)) break;
    total = e;
    D = Dn;
    out.d = dh;
  }
  for (int j = 0; j < p.nsub; ++j) {
    const float dj = D * static_cast<float>(out.k[j]);
    const float idj = dj != 0 ? 1.0f / dj : 0.0f;
    for (int i = 0; i < p.sub; ++i) out.code[j * p.sub + i] = lv.code_of(idj * x[j * p.sub + i]);
  }
}

// ---- affine super-blocks: x = D * ls_j * l - Dm * lm_j (Q2_K, Q4_K, Q5_K) ----

struct AffineParams {
  int sub, nsub, nmax;
  float kmax;  // integer scale/min range 0..kmax
  AffineSearch search;
  std::span<const float> scale_cands;
};

struct AffineSuper {
  uint16_t d = 0, dmin = 0;
  int ls[16] = {}, lm[16] = {};
  int l[kQK_K];
};

float affine_total_error(const float* x, const float* w, const AffineParams& p, float D, float Dm, const int* ls,
                         const int* lm) {
  float e = 0;
  for (int j = 0; j < p.nsub; ++j)
    e += affine_error(x + j * p.sub, w + j * p.sub, p.sub, p.nmax, D * static_cast<float>(ls[j]),
                      -Dm * static_cast<float>(lm[j]));
  return e;
}

// Integer candidates around v/D in 0..kmax: the nearest and its two
// neighbours (just 0 if D == 0).
int neighbours(float v, float D, float kmax, int* out) {
  if (!(D > 0)) {
    out[0] = 0;
    return 1;
  }
  const int r = round_i(clampf(v / D, 0, kmax));
  int k = 0;
  for (int c = r - 1; c <= r + 1; ++c)
    if (c >= 0 && c <= static_cast<int>(kmax)) out[k++] = c;
  return k;
}

void quantize_affine_super(const float* x, const float* w, const AffineParams& p, AffineSuper& out) {
  float s[16], mn[16], sws[16], swm[16];
  for (int j = 0; j < p.nsub; ++j) {
    const AffineFit f = fit_affine(x + j * p.sub, w + j * p.sub, p.sub, p.nmax, true, p.search);
    s[j] = f.d;
    mn[j] = -f.b;
    sws[j] = f.sll;
    swm[j] = f.sw;
  }
  const UniformLevels kl{0, p.kmax};
  out.d = to_scale_half(fit_symmetric(s, sws, p.nsub, kl, p.scale_cands).d);
  out.dmin = to_scale_half(fit_symmetric(mn, swm, p.nsub, kl, p.scale_cands).d);
  float D = half_to_float(out.d), Dm = half_to_float(out.dmin);
  float total = 0;
  for (int j = 0; j < p.nsub; ++j) {
    int cs[3], cm[3];
    const int ns = neighbours(s[j], D, p.kmax, cs), nm = neighbours(mn[j], Dm, p.kmax, cm);
    float best = kInf;
    for (int a = 0; a < ns; ++a)
      for (int b = 0; b < nm; ++b) {
        const float e = affine_error(x + j * p.sub, w + j * p.sub, p.sub, p.nmax, D * static_cast<float>(cs[a]),
                                     -Dm * static_cast<float>(cm[b]));
        if (e < best) {
          best = e;
          out.ls[j] = cs[a];
          out.lm[j] = cm[b];
        }
      }
    total += best;
  }
  // Refit (D, Dm) jointly to the chosen integers and codes: x ~ D*u - Dm*v
  // with u = ls_j*l, v = lm_j. Keep it only if the re-rounded error drops.
  for (int it = 0; it < 2; ++it) {
    float suu = 0, suv = 0, svv = 0, sxu = 0, sxv = 0;
    for (int j = 0; j < p.nsub; ++j) {
      const float dj = D * static_cast<float>(out.ls[j]), mj = Dm * static_cast<float>(out.lm[j]);
      const float idj = dj != 0 ? 1.0f / dj : 0.0f;
      const float lsj = static_cast<float>(out.ls[j]), v = static_cast<float>(out.lm[j]);
      const float* xj = x + j * p.sub;
      const float* wj = w + j * p.sub;
      for (int i = 0; i < p.sub; ++i) {
        const float l = round_f(clampf(idj * (xj[i] + mj), 0, static_cast<float>(p.nmax)));
        const float u = lsj * l;
        suu += wj[i] * u * u;
        suv += wj[i] * u * v;
        svv += wj[i] * v * v;
        sxu += wj[i] * xj[i] * u;
        sxv += wj[i] * xj[i] * v;
      }
    }
    const float det = suu * svv - suv * suv;
    float nd, nm;
    if (det > 0) {
      nd = (sxu * svv - sxv * suv) / det;
      nm = -(suu * sxv - suv * sxu) / det;
    } else if (suu > 0) {
      nd = sxu / suu;
      nm = Dm;
    } else {
      break;
    }
    if (!(nd >= 0) || !(nm >= 0)) break;
    const uint16_t dh = to_scale_half(nd), mh = to_scale_half(nm);
    const float Dn = half_to_float(dh), Dmn = half_to_float(mh);
    if (Dn == D && Dmn == Dm) break;
    const float e = affine_total_error(x, w, p, Dn, Dmn, out.ls, out.lm);
    if (!(e < total)) break;
    total = e;
    D = Dn;
    Dm = Dmn;
    out.d = dh;
    out.dmin = mh;
  }
  for (int j = 0; j < p.nsub; ++j) {
    const float dj = D * static_cast<float>(out.ls[j]), mj = Dm * static_cast<float>(out.lm[j]);
    const float idj = dj != 0 ? 1.0f / dj : 0.0f;
    for (int i = 0; i < p.sub; ++i)
      out.l[j * p.sub + i] = round_i(clampf(idj * (x[j * p.sub + i] + mj), 0, static_cast<float>(p.nmax)));
  }
}

// ---- the grids (units as in quantize.cc), chosen by measurement (notes/quant.md) ----

struct Grids {
  Grid q3_sub, q6_sub, iq4_sub, q2_deltas, q4_deltas, q5_deltas, scales63, scales15, signed32, signed128;
  Grids() {
    q3_sub.n = symmetric_cands(-4, 3, 1.2f, 1.2f, 9, q3_sub.v, 64);
    q6_sub.n = symmetric_cands(-32, 31, 4.0f, 2.0f, 11, q6_sub.v, 64);
    iq4_sub.n = iq4_cands(iq4_sub.v, 64);
    q2_deltas.range(-1.0f, 1.0f, 16);
    q4_deltas.range(-2.0f, 1.0f, 16);
    q5_deltas.range(-4.0f, 1.0f, 21);
    scales63.range(61.0f, 63.4f, 13);
    scales15.range(13.5f, 15.4f, 13);
    signed32.range(30.0f, 31.4f, 8);
    signed32.range(-30.6f, -32.4f, 10);
    signed128.range(126.0f, 127.4f, 8);
    signed128.range(-126.6f, -128.4f, 10);
  }
};
const Grids& grids() {
  static const Grids g;
  return g;
}

inline const float* offset(const float* imp, int64_t i) { return imp ? imp + i : nullptr; }

}  // namespace

void quantize_q2_k(const float* x, void* dst, int64_t n, const float* importance) {
  const Grids& g = grids();
  const AffineParams p{16, 16, 3, 15, {g.q2_deltas.span()}, g.scales15.span()};
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    float w[kQK_K];
    block_weights(offset(importance, b * kQK_K), kQK_K, w);
    AffineSuper r;
    quantize_affine_super(x + b * kQK_K, w, p, r);
    BlockQ2_K blk;
    blk.d = r.d;
    blk.dmin = r.dmin;
    for (int j = 0; j < 16; ++j) blk.scales[j] = static_cast<uint8_t>(r.ls[j] | (r.lm[j] << 4));
    std::memset(blk.qs, 0, sizeof(blk.qs));
    for (int e = 0; e < kQK_K; ++e) {
      const int h = e / 128, k = (e % 128) / 32, l = e % 32;
      blk.qs[32 * h + l] |= static_cast<uint8_t>(r.l[e] << (2 * k));
    }
    store_block(dst, b, blk);
  }
}

void quantize_q3_k(const float* x, void* dst, int64_t n, const float* importance) {
  const Grids& g = grids();
  const SymmetricParams p{16, 16, -32, 31, g.q3_sub.span(), g.signed32.span()};
  const UniformLevels lv{-4, 3};
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    float w[kQK_K];
    block_weights(offset(importance, b * kQK_K), kQK_K, w);
    SymmetricSuper r;
    quantize_symmetric_super(x + b * kQK_K, w, lv, p, r);
    BlockQ3_K blk;
    blk.d = r.d;
    int sc[16];
    for (int j = 0; j < 16; ++j) sc[j] = r.k[j] + 32;
    pack_q3k_scales(sc, blk.scales);
    std::memset(blk.qs, 0, sizeof(blk.qs));
    std::memset(blk.hmask, 0, sizeof(blk.hmask));
    for (int e = 0; e < kQK_K; ++e) {
      const int h = e / 128, k = (e % 128) / 32, l = e % 32;
      const int c = r.code[e];  // q + 4, 0..7
      blk.qs[32 * h + l] |= static_cast<uint8_t>((c & 3) << (2 * k));
      blk.hmask[l] |= static_cast<uint8_t>((c >> 2) << (4 * h + k));
    }
    store_block(dst, b, blk);
  }
}

void quantize_q4_k(const float* x, void* dst, int64_t n, const float* importance) {
  const Grids& g = grids();
  const AffineParams p{32, 8, 15, 63, {g.q4_deltas.span()}, g.scales63.span()};
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    float w[kQK_K];
    block_weights(offset(importance, b * kQK_K), kQK_K, w);
    AffineSuper r;
    quantize_affine_super(x + b * kQK_K, w, p, r);
    BlockQ4_K blk;
    blk.d = r.d;
    blk.dmin = r.dmin;
    uint8_t ls[8], lm[8];
    for (int j = 0; j < 8; ++j) {
      ls[j] = static_cast<uint8_t>(r.ls[j]);
      lm[j] = static_cast<uint8_t>(r.lm[j]);
    }
    pack_scale_min(ls, lm, blk.scales);
    for (int q = 0; q < 4; ++q)
      for (int l = 0; l < 32; ++l)
        blk.qs[32 * q + l] = static_cast<uint8_t>(r.l[64 * q + l] | (r.l[64 * q + 32 + l] << 4));
    store_block(dst, b, blk);
  }
}

void quantize_q5_k(const float* x, void* dst, int64_t n, const float* importance) {
  const Grids& g = grids();
  const AffineParams p{32, 8, 31, 63, {g.q5_deltas.span()}, g.scales63.span()};
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    float w[kQK_K];
    block_weights(offset(importance, b * kQK_K), kQK_K, w);
    AffineSuper r;
    quantize_affine_super(x + b * kQK_K, w, p, r);
    BlockQ5_K blk;
    blk.d = r.d;
    blk.dmin = r.dmin;
    uint8_t ls[8], lm[8];
    for (int j = 0; j < 8; ++j) {
      ls[j] = static_cast<uint8_t>(r.ls[j]);
      lm[j] = static_cast<uint8_t>(r.lm[j]);
    }
    pack_scale_min(ls, lm, blk.scales);
    std::memset(blk.qh, 0, sizeof(blk.qh));
    for (int q = 0; q < 4; ++q)
      for (int l = 0; l < 32; ++l) {
        const int a = r.l[64 * q + l], c = r.l[64 * q + 32 + l];
        blk.qs[32 * q + l] = static_cast<uint8_t>((a & 0xF) | ((c & 0xF) << 4));
        blk.qh[l] |= static_cast<uint8_t>(((a >> 4) << (2 * q)) | ((c >> 4) << (2 * q + 1)));
      }
    store_block(dst, b, blk);
  }
}

void quantize_q6_k(const float* x, void* dst, int64_t n, const float* importance) {
  const Grids& g = grids();
  const SymmetricParams p{16, 16, -128, 127, g.q6_sub.span(), g.signed128.span()};
  const UniformLevels lv{-32, 31};
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    float w[kQK_K];
    block_weights(offset(importance, b * kQK_K), kQK_K, w);
    SymmetricSuper r;
    quantize_symmetric_super(x + b * kQK_K, w, lv, p, r);
    BlockQ6_K blk;
    blk.d = r.d;
    for (int j = 0; j < 16; ++j) blk.scales[j] = static_cast<int8_t>(r.k[j]);
    const int* c = r.code;  // q + 32, 0..63
    for (int h = 0; h < 2; ++h)
      for (int l = 0; l < 32; ++l) {
        const int e = 128 * h + l;
        blk.ql[64 * h + l] = static_cast<uint8_t>((c[e] & 0xF) | ((c[e + 64] & 0xF) << 4));
        blk.ql[64 * h + 32 + l] = static_cast<uint8_t>((c[e + 32] & 0xF) | ((c[e + 96] & 0xF) << 4));
        blk.qh[32 * h + l] = static_cast<uint8_t>((c[e] >> 4) | ((c[e + 32] >> 4) << 2) | ((c[e + 64] >> 4) << 4) |
                                                  ((c[e + 96] >> 4) << 6));
      }
    store_block(dst, b, blk);
  }
}

void quantize_iq4_xs(const float* x, void* dst, int64_t n, const float* importance) {
  const Grids& g = grids();
  const SymmetricParams p{32, 8, -32, 31, g.iq4_sub.span(), g.signed32.span()};
  const Iq4Levels& lv = iq4_levels();
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    float w[kQK_K];
    block_weights(offset(importance, b * kQK_K), kQK_K, w);
    SymmetricSuper r;
    quantize_symmetric_super(x + b * kQK_K, w, lv, p, r);
    BlockIQ4_XS blk;
    blk.d = r.d;
    blk.scales_h = 0;
    std::memset(blk.scales_l, 0, sizeof(blk.scales_l));
    for (int j = 0; j < 8; ++j) {
      const int ls = r.k[j] + 32;
      blk.scales_l[j / 2] |= static_cast<uint8_t>((ls & 0xF) << (4 * (j % 2)));
      blk.scales_h |= static_cast<uint16_t>((ls >> 4) << (2 * j));
    }
    for (int j = 0; j < 8; ++j)
      for (int l = 0; l < 16; ++l)
        blk.qs[16 * j + l] = static_cast<uint8_t>(r.code[32 * j + l] | (r.code[32 * j + 16 + l] << 4));
    store_block(dst, b, blk);
  }
}

}  // namespace codey::quant
