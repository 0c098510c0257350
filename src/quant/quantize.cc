// Quantizers of the 32-element formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL),
// the float formats and the Q8_K activation format, and quantize_row dispatch.
// Each block's scale comes from a least-squares search (search.h); codes are
// then rounded against the scale as stored in f16, so they fit what decodes.
#include <cstring>

#include "codey/quant.h"
#include "codey/quant_blocks.h"
#include "quant/quantize_k.h"
#include "quant/search.h"

namespace codey {
namespace quant {
namespace {

// Candidate grids (units: the level the largest element maps to; deltas:
// levels beyond nmax). Chosen by measurement on Gaussian data: the error as a
// function of the scale is rough, so wide coarse grids beat narrow fine ones;
// denser grids still gain ~1% at many times the cost (notes/quant.md).
struct Grids {
  float q4_0[64];
  int n_q4_0;
  float q5_0[64];
  int n_q5_0;
  float q8_0[16];
  int n_q8_0;
  float iq4[64];
  int n_iq4;
  float affine4[32];
  int n_affine4;
  float affine5[32];
  int n_affine5;
  Grids() {
    n_q4_0 = symmetric_cands(-8, 7, 1.0f, 1.0f, 17, q4_0, 64);
    n_q5_0 = symmetric_cands(-16, 15, 1.0f, 1.0f, 13, q5_0, 64);
    n_q8_0 = symmetric_cands(-128, 127, 1.0f, 1.0f, 5, q8_0, 16);
    n_iq4 = iq4_cands(iq4, 64);
    n_affine4 = 0;
    for (int s = 0; s <= 15; ++s) affine4[n_affine4++] = -2.0f + 0.2f * s;
    n_affine5 = 0;
    for (int s = 0; s <= 20; ++s) affine5[n_affine5++] = -4.0f + 0.25f * s;
  }
};
const Grids& grids() {
  static const Grids g;
  return g;
}

// One 32-element block to a symmetric integer format: the stored scale and
// codes q in lo..hi.
void quantize_symmetric_block(const float* x, const float* imp, float lo, float hi, std::span<const float> cands,
                              uint16_t* d_out, int* q) {
  float w[kQK];
  block_weights(imp, kQK, w);
  const UniformLevels levels{lo, hi};
  const SymmetricFit fit = fit_symmetric(x, w, kQK, levels, cands);
  *d_out = to_scale_half(fit.d);
  const float d = half_to_float(*d_out);
  const float id = d != 0 ? 1.0f / d : 0.0f;
  for (int i = 0; i < kQK; ++i) q[i] = static_cast<int>(levels.value_of(id * x[i]));
}

// One 32-element block to an affine format: stored d and m, codes 0..nmax.
void quantize_affine_block(const float* x, const float* imp, int nmax, const AffineSearch& search, uint16_t* d_out,
                           uint16_t* m_out, int* q) {
  float w[kQK];
  block_weights(imp, kQK, w);
  const AffineFit fit = fit_affine(x, w, kQK, nmax, false, search);
  *d_out = to_scale_half(fit.d);
  *m_out = to_half(fit.b);
  const float d = half_to_float(*d_out), b = half_to_float(*m_out);
  const float id = d != 0 ? 1.0f / d : 0.0f;
  for (int i = 0; i < kQK; ++i) q[i] = static_cast<int>(round_f(clampf(id * (x[i] - b), 0.0f, float(nmax))));
}

inline const float* offset(const float* imp, int64_t i) { return imp ? imp + i : nullptr; }

void q_q4_0(const float* x, void* dst, int64_t n, const float* imp) {
  const Grids& g = grids();
  for (int64_t b = 0; b < n / kQK; ++b) {
    BlockQ4_0 blk;
    int q[kQK];
    quantize_symmetric_block(x + b * kQK, offset(imp, b * kQK), -8, 7, {g.q4_0, size_t(g.n_q4_0)}, &blk.d, q);
    for (int j = 0; j < 16; ++j) blk.qs[j] = static_cast<uint8_t>((q[j] + 8) | ((q[j + 16] + 8) << 4));
    store_block(dst, b, blk);
  }
}

void q_q5_0(const float* x, void* dst, int64_t n, const float* imp) {
  const Grids& g = grids();
  for (int64_t b = 0; b < n / kQK; ++b) {
    BlockQ5_0 blk;
    int q[kQK];
    quantize_symmetric_block(x + b * kQK, offset(imp, b * kQK), -16, 15, {g.q5_0, size_t(g.n_q5_0)}, &blk.d, q);
    uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
      const int a = q[j] + 16, c = q[j + 16] + 16;
      blk.qs[j] = static_cast<uint8_t>((a & 0xF) | ((c & 0xF) << 4));
      qh |= static_cast<uint32_t>(a >> 4) << j;
      qh |= static_cast<uint32_t>(c >> 4) << (j + 16);
    }
    std::memcpy(blk.qh, &qh, 4);
    store_block(dst, b, blk);
  }
}

void q_q8_0(const float* x, void* dst, int64_t n, const float* imp) {
  const Grids& g = grids();
  for (int64_t b = 0; b < n / kQK; ++b) {
    BlockQ8_0 blk;
    int q[kQK];
    quantize_symmetric_block(x + b * kQK, offset(imp, b * kQK), -128, 127, {g.q8_0, size_t(g.n_q8_0)}, &blk.d, q);
    for (int j = 0; j < kQK; ++j) blk.qs[j] = static_cast<int8_t>(q[j]);
    store_block(dst, b, blk);
  }
}

void q_q4_1(const float* x, void* dst, int64_t n, const float* imp) {
  const Grids& g = grids();
  for (int64_t b = 0; b < n / kQK; ++b) {
    BlockQ4_1 blk;
    int q[kQK];
    quantize_affine_block(x + b * kQK, offset(imp, b * kQK), 15, AffineSearch{{g.affine4, size_t(g.n_affine4)}}, &blk.d,
                          &blk.m, q);
    for (int j = 0; j < 16; ++j) blk.qs[j] = static_cast<uint8_t>(q[j] | (q[j + 16] << 4));
    store_block(dst, b, blk);
  }
}

void q_q5_1(const float* x, void* dst, int64_t n, const float* imp) {
  const Grids& g = grids();
  for (int64_t b = 0; b < n / kQK; ++b) {
    BlockQ5_1 blk;
    int q[kQK];
    quantize_affine_block(x + b * kQK, offset(imp, b * kQK), 31, AffineSearch{{g.affine5, size_t(g.n_affine5)}}, &blk.d,
                          &blk.m, q);
    uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
      blk.qs[j] = static_cast<uint8_t>((q[j] & 0xF) | ((q[j + 16] & 0xF) << 4));
      qh |= static_cast<uint32_t>(q[j] >> 4) << j;
      qh |= static_cast<uint32_t>(q[j + 16] >> 4) << (j + 16);
    }
    std::memcpy(blk.qh, &qh, 4);
    store_block(dst, b, blk);
  }
}

void q_iq4_nl(const float* x, void* dst, int64_t n, const float* imp) {
  const Grids& g = grids();
  const Iq4Levels& levels = iq4_levels();
  for (int64_t b = 0; b < n / kQK; ++b) {
    const float* xb = x + b * kQK;
    float w[kQK];
    block_weights(offset(imp, b * kQK), kQK, w);
    const SymmetricFit fit = fit_symmetric(xb, w, kQK, levels, {g.iq4, size_t(g.n_iq4)});
    BlockIQ4_NL blk;
    blk.d = to_scale_half(fit.d);
    const float d = half_to_float(blk.d);
    const float id = d != 0 ? 1.0f / d : 0.0f;
    int q[kQK];
    for (int i = 0; i < kQK; ++i) q[i] = d != 0 ? levels.index_of(id * xb[i]) : 8;  // level 1 ~ 0
    for (int j = 0; j < 16; ++j) blk.qs[j] = static_cast<uint8_t>(q[j] | (q[j + 16] << 4));
    store_block(dst, b, blk);
  }
}

// Q8_K is an activation format for dot products: plain round-to-nearest with
// |q| <= 127 (kernels rely on it), d = amax/127, and the 16-element sums.
void q_q8_k(const float* x, void* dst, int64_t n) {
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const float* xb = x + b * kQK_K;
    BlockQ8_K blk;
    float amax = 0;
    for (int i = 0; i < kQK_K; ++i) amax = std::max(amax, std::fabs(xb[i]));
    blk.d = amax > 0 && std::isfinite(amax) ? amax / 127.0f : 0.0f;
    const float id = blk.d != 0 ? 1.0f / blk.d : 0.0f;
    for (int i = 0; i < kQK_K; ++i) blk.qs[i] = static_cast<int8_t>(round_i(clampf(id * xb[i], -127, 127)));
    for (int j = 0; j < kQK_K / 16; ++j) {
      int s = 0;
      for (int i = 0; i < 16; ++i) s += blk.qs[16 * j + i];
      blk.bsums[j] = static_cast<int16_t>(s);
    }
    store_block(dst, b, blk);
  }
}

void q_f32(const float* x, void* dst, int64_t n) { std::memcpy(dst, x, static_cast<size_t>(n) * 4); }

void q_f16(const float* x, void* dst, int64_t n) {
  auto* p = static_cast<uint8_t*>(dst);
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t h = fp32_to_fp16(x[i]);
    std::memcpy(p + 2 * i, &h, 2);
  }
}

void q_bf16(const float* x, void* dst, int64_t n) {
  auto* p = static_cast<uint8_t*>(dst);
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t h = fp32_to_bf16(x[i]);
    std::memcpy(p + 2 * i, &h, 2);
  }
}

}  // namespace
}  // namespace quant

size_t quantize_row(TensorType type, const float* src, void* dst, int64_t n, const float* importance) {
  using namespace quant;
  const TypeTraits& tr = type_traits(type);
  CODEY_ASSERT(tr.quantizable);
  CODEY_ASSERT(n % tr.block_size == 0);
  switch (type) {
    case TensorType::kF32: q_f32(src, dst, n); break;
    case TensorType::kF16: q_f16(src, dst, n); break;
    case TensorType::kBF16: q_bf16(src, dst, n); break;
    case TensorType::kQ4_0: q_q4_0(src, dst, n, importance); break;
    case TensorType::kQ4_1: q_q4_1(src, dst, n, importance); break;
    case TensorType::kQ5_0: q_q5_0(src, dst, n, importance); break;
    case TensorType::kQ5_1: q_q5_1(src, dst, n, importance); break;
    case TensorType::kQ8_0: q_q8_0(src, dst, n, importance); break;
    case TensorType::kIQ4_NL: q_iq4_nl(src, dst, n, importance); break;
    case TensorType::kQ8_K: q_q8_k(src, dst, n); break;
    case TensorType::kQ2_K: quantize_q2_k(src, dst, n, importance); break;
    case TensorType::kQ3_K: quantize_q3_k(src, dst, n, importance); break;
    case TensorType::kQ4_K: quantize_q4_k(src, dst, n, importance); break;
    case TensorType::kQ5_K: quantize_q5_k(src, dst, n, importance); break;
    case TensorType::kQ6_K: quantize_q6_k(src, dst, n, importance); break;
    case TensorType::kIQ4_XS: quantize_iq4_xs(src, dst, n, importance); break;
    default: CODEY_ASSERT(!"quantize_row: type marked quantizable has no encoder");
  }
  return row_bytes(type, n);
}

}  // namespace codey
