// Scalar decoders: one row of any supported ggml type to f32, following the
// block layouts in blocks.h. The reference the fast kernels are tested against.
#include <array>
#include <cstring>

#include "codey/quant.h"
#include "codey/quant_blocks.h"

namespace codey {
namespace quant {
namespace {

// f16 -> f32 for all 65536 bit patterns; built once (thread-safe static).
const float* half_table() {
  static const std::array<float, 65536>* table = [] {
    auto* t = new std::array<float, 65536>;
    for (uint32_t i = 0; i < 65536; ++i) (*t)[i] = fp16_to_fp32(static_cast<uint16_t>(i));
    return t;
  }();
  return table->data();
}

inline float h2f(uint16_t h) { return half_table()[h]; }

void dq_f32(const void* src, float* y, int64_t n) { std::memcpy(y, src, static_cast<size_t>(n) * 4); }

void dq_f16(const void* src, float* y, int64_t n) {
  const float* t = half_table();
  const auto* p = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, p + 2 * i, 2);
    y[i] = t[h];
  }
}

void dq_bf16(const void* src, float* y, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, p + 2 * i, 2);
    y[i] = bf16_to_fp32(h);
  }
}

void dq_q4_0(const void* src, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b, y += kQK) {
    const auto blk = load_block<BlockQ4_0>(src, b);
    const float d = h2f(blk.d);
    for (int j = 0; j < kQK / 2; ++j) {
      y[j] = d * static_cast<float>((blk.qs[j] & 0xF) - 8);
      y[j + 16] = d * static_cast<float>((blk.qs[j] >> 4) - 8);
    }
  }
}

void dq_q4_1(const void* src, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b, y += kQK) {
    const auto blk = load_block<BlockQ4_1>(src, b);
    const float d = h2f(blk.d), m = h2f(blk.m);
    for (int j = 0; j < kQK / 2; ++j) {
      y[j] = d * static_cast<float>(blk.qs[j] & 0xF) + m;
      y[j + 16] = d * static_cast<float>(blk.qs[j] >> 4) + m;
    }
  }
}

void dq_q5_0(const void* src, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b, y += kQK) {
    const auto blk = load_block<BlockQ5_0>(src, b);
    const float d = h2f(blk.d);
    uint32_t qh;
    std::memcpy(&qh, blk.qh, 4);
    for (int j = 0; j < kQK / 2; ++j) {
      const int q0 = (blk.qs[j] & 0xF) | static_cast<int>(((qh >> j) & 1) << 4);
      const int q1 = (blk.qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1) << 4);
      y[j] = d * static_cast<float>(q0 - 16);
      y[j + 16] = d * static_cast<float>(q1 - 16);
    }
  }
}

void dq_q5_1(const void* src, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b, y += kQK) {
    const auto blk = load_block<BlockQ5_1>(src, b);
    const float d = h2f(blk.d), m = h2f(blk.m);
    uint32_t qh;
    std::memcpy(&qh, blk.qh, 4);
    for (int j = 0; j < kQK / 2; ++j) {
      const int q0 = (blk.qs[j] & 0xF) | static_cast<int>(((qh >> j) & 1) << 4);
      const int q1 = (blk.qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1) << 4);
      y[j] = d * static_cast<float>(q0) + m;
      y[j + 16] = d * static_cast<float>(q1) + m;
    }
  }
}

void dq_q8_0(const void* src, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b, y += kQK) {
    const auto blk = load_block<BlockQ8_0>(src, b);
    const float d = h2f(blk.d);
    for (int j = 0; j < kQK; ++j) y[j] = d * static_cast<float>(blk.qs[j]);
  }
}

void dq_q2_k(const void* src, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK_K; ++b, y += kQK_K) {
    const auto blk = load_block<BlockQ2_K>(src, b);
    const float d = h2f(blk.d), dmin = h2f(blk.dmin);
    for (int e = 0; e < kQK_K; ++e) {
      const int h = e / 128, k = (e % 128) / 32, l = e % 32;
      const int q = (blk.qs[32 * h + l] >> (2 * k)) & 3;
      const uint8_t sc = blk.scales[e / 16];
      y[e] = d * static_cast<float>(sc & 0xF) * static_cast<float>(q) - dmin * static_cast<float>(sc >> 4);
    }
  }
}

void dq_q3_k(const void* src, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK_K; ++b, y += kQK_K) {
    const auto blk = load_block<BlockQ3_K>(src, b);
    const float d = h2f(blk.d);
    int sc[16];
    unpack_q3k_scales(blk.scales, sc);
    for (int e = 0; e < kQK_K; ++e) {
      const int h = e / 128, k = (e % 128) / 32, l = e % 32;
      const int low = (blk.qs[32 * h + l] >> (2 * k)) & 3;
      const int high = (blk.hmask[l] >> (4 * h + k)) & 1;
      const int q = (low | (high << 2)) - 4;
      y[e] = d * static_cast<float>(sc[e / 16] - 32) * static_cast<float>(q);
    }
  }
}

void dq_q4_k(const void* src, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK_K; ++b, y += kQK_K) {
    const auto blk = load_block<BlockQ4_K>(src, b);
    const float d = h2f(blk.d), dmin = h2f(blk.dmin);
    for (int p = 0; p < 4; ++p) {
      uint8_t sc0, m0, sc1, m1;
      get_scale_min(2 * p, blk.scales, &sc0, &m0);
      get_scale_min(2 * p + 1, blk.scales, &sc1, &m1);
      const float d0 = d * sc0, o0 = dmin * m0, d1 = d * sc1, o1 = dmin * m1;
      const uint8_t* q = blk.qs + 32 * p;
      for (int l = 0; l < 32; ++l) {
        y[64 * p + l] = d0 * static_cast<float>(q[l] & 0xF) - o0;
        y[64 * p + 32 + l] = d1 * static_cast<float>(q[l] >> 4) - o1;
      }
    }
  }
}

void dq_q5_k(const void* src, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK_K; ++b, y += kQK_K) {
    const auto blk = load_block<BlockQ5_K>(src, b);
    const float d = h2f(blk.d), dmin = h2f(blk.dmin);
    for (int p = 0; p < 4; ++p) {
      uint8_t sc0, m0, sc1, m1;
      get_scale_min(2 * p, blk.scales, &sc0, &m0);
      get_scale_min(2 * p + 1, blk.scales, &sc1, &m1);
      const float d0 = d * sc0, o0 = dmin * m0, d1 = d * sc1, o1 = dmin * m1;
      const uint8_t* q = blk.qs + 32 * p;
      for (int l = 0; l < 32; ++l) {
        const int q0 = (q[l] & 0xF) | (((blk.qh[l] >> (2 * p)) & 1) << 4);
        const int q1 = (q[l] >> 4) | (((blk.qh[l] >> (2 * p + 1)) & 1) << 4);
        y[64 * p + l] = d0 * static_cast<float>(q0) - o0;
        y[64 * p + 32 + l] = d1 * static_cast<float>(q1) - o1;
      }
    }
  }
}

void dq_q6_k(const void* src, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK_K; ++b, y += kQK_K) {
    const auto blk = load_block<BlockQ6_K>(src, b);
    const float d = h2f(blk.d);
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = blk.ql + 64 * h;
      const uint8_t* qh = blk.qh + 32 * h;
      for (int l = 0; l < 32; ++l) {
        const int q[4] = {
            (ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4),
            (ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4),
            (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4),
            (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4),
        };
        for (int k = 0; k < 4; ++k) {
          const int e = 128 * h + 32 * k + l;
          y[e] = d * static_cast<float>(blk.scales[e / 16]) * static_cast<float>(q[k] - 32);
        }
      }
    }
  }
}

void dq_q8_k(const void* src, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK_K; ++b, y += kQK_K) {
    const auto blk = load_block<BlockQ8_K>(src, b);
    for (int j = 0; j < kQK_K; ++j) y[j] = blk.d * static_cast<float>(blk.qs[j]);
  }
}

void dq_iq4_nl(const void* src, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b, y += kQK) {
    const auto blk = load_block<BlockIQ4_NL>(src, b);
    const float d = h2f(blk.d);
    for (int j = 0; j < kQK / 2; ++j) {
      y[j] = d * static_cast<float>(kIq4nlValues[blk.qs[j] & 0xF]);
      y[j + 16] = d * static_cast<float>(kIq4nlValues[blk.qs[j] >> 4]);
    }
  }
}

void dq_iq4_xs(const void* src, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK_K; ++b, y += kQK_K) {
    const auto blk = load_block<BlockIQ4_XS>(src, b);
    const float d = h2f(blk.d);
    for (int j = 0; j < 8; ++j) {
      const int ls = ((blk.scales_l[j / 2] >> (4 * (j % 2))) & 0xF) | (((blk.scales_h >> (2 * j)) & 3) << 4);
      const float dl = d * static_cast<float>(ls - 32);
      const uint8_t* q = blk.qs + 16 * j;
      for (int l = 0; l < 16; ++l) {
        y[32 * j + l] = dl * static_cast<float>(kIq4nlValues[q[l] & 0xF]);
        y[32 * j + 16 + l] = dl * static_cast<float>(kIq4nlValues[q[l] >> 4]);
      }
    }
  }
}

}  // namespace

float half_to_float(uint16_t h) { return h2f(h); }

}  // namespace quant

void dequantize_row(TensorType type, const void* src, float* dst, int64_t n) {
  using namespace quant;
  const TypeTraits& tr = type_traits(type);
  CODEY_ASSERT(tr.dequantizable);
  CODEY_ASSERT(n % tr.block_size == 0);
  switch (type) {
    case TensorType::kF32: return dq_f32(src, dst, n);
    case TensorType::kF16: return dq_f16(src, dst, n);
    case TensorType::kBF16: return dq_bf16(src, dst, n);
    case TensorType::kQ4_0: return dq_q4_0(src, dst, n);
    case TensorType::kQ4_1: return dq_q4_1(src, dst, n);
    case TensorType::kQ5_0: return dq_q5_0(src, dst, n);
    case TensorType::kQ5_1: return dq_q5_1(src, dst, n);
    case TensorType::kQ8_0: return dq_q8_0(src, dst, n);
    case TensorType::kQ2_K: return dq_q2_k(src, dst, n);
    case TensorType::kQ3_K: return dq_q3_k(src, dst, n);
    case TensorType::kQ4_K: return dq_q4_k(src, dst, n);
    case TensorType::kQ5_K: return dq_q5_k(src, dst, n);
    case TensorType::kQ6_K: return dq_q6_k(src, dst, n);
    case TensorType::kQ8_K: return dq_q8_k(src, dst, n);
    case TensorType::kIQ4_NL: return dq_iq4_nl(src, dst, n);
    case TensorType::kIQ4_XS: return dq_iq4_xs(src, dst, n);
    default: break;
  }
  CODEY_ASSERT(!"dequantize_row: type marked dequantizable has no decoder");
}

}  // namespace codey
