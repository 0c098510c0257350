// Plain scalar kernels: the obviously-right versions every fast kernel is
// tested against. Per-row dequantization only; no ISA assumptions.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

#include "codey/base.h"
#include "codey/kernels.h"
#include "codey/quant.h"
#include "kernels/ref/ref.h"

namespace codey::kernels {
namespace {

// Rows of W decoded together, so each decoded row is reused for every token.
constexpr int64_t kRowGroup = 4;

const float* f16_table() {
  static const std::vector<float> table = [] {
    std::vector<float> t(65536);
    for (uint32_t i = 0; i < 65536; ++i) t[i] = fp16_to_fp32(static_cast<uint16_t>(i));
    return t;
  }();
  return table.data();
}

float dot_f32(const float* a, const float* b, int64_t n) {
  // Eight partial sums: a fixed summation order the compiler may vectorize.
  float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) s[j] += a[i + j] * b[i + j];
  float r = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
  for (; i < n; ++i) r += a[i] * b[i];
  return r;
}

}  // namespace

void ref_decode_row(TensorType type, const void* src, float* dst, int64_t n) {
  switch (type) {
    case TensorType::kF32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case TensorType::kF16: {
      const float* t = f16_table();
      const auto* h = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = t[h[i]];
      return;
    }
    default:
      dequantize_row(type, src, dst, n);
  }
}

TensorType activation_type(TensorType weight_type) {
  switch (weight_type) {
    case TensorType::kF32:
    case TensorType::kF16:
    case TensorType::kBF16:
      return weight_type;
    default:
      return type_traits(weight_type).block_size == 256 ? TensorType::kQ8_K : TensorType::kQ8_0;
  }
}

void quantize_activation_row(TensorType type, const float* x, void* dst, int64_t k) {
  switch (type) {
    case TensorType::kQ8_0: {
      // ggml's quantize_row_q8_0: d = amax/127 stored as f16, q = round(x / d)
      // with the unrounded d.
      auto* out = static_cast<uint8_t*>(dst);
      for (int64_t b = 0; b < k / 32; ++b) {
        const float* xb = x + b * 32;
        float amax = 0.0f;
        for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(xb[i]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        const uint16_t dh = fp32_to_fp16(d);
        uint8_t* blk = out + b * 34;
        std::memcpy(blk, &dh, 2);
        for (int i = 0; i < 32; ++i) blk[2 + i] = static_cast<uint8_t>(static_cast<int8_t>(std::lround(xb[i] * id)));
      }
      return;
    }
    case TensorType::kQ8_K:
      quantize_row(TensorType::kQ8_K, x, dst, k);
      return;
    default:
      ref_store_row(type, x, dst, k);
  }
}

namespace {

size_t align_up(size_t n) { return (n + 63) / 64 * 64; }

}  // namespace

// Workspace: the activations as the dot products see them (rounded through
// the weight type's activation format) [m][k] f32, then per thread one
// encoded activation row and kRowGroup decoded weight rows.
size_t ref_matmul_workspace(TensorType type, int64_t m, int64_t k, int n_threads) {
  const size_t xq = align_up(static_cast<size_t>(m * k) * sizeof(float));
  const size_t enc = align_up(row_bytes(activation_type(type), k));
  const size_t rows = align_up(static_cast<size_t>(kRowGroup * k) * sizeof(float));
  return 64 + xq + static_cast<size_t>(n_threads) * (enc + rows);
}

void ref_matmul(const Matrix& w, const float* x, int64_t m, int64_t ldx, float* y, int64_t ldy,
                std::span<uint8_t> workspace, ThreadPool& pool) {
  const int64_t k = w.cols;
  CODEY_ASSERT(workspace.size() >= ref_matmul_workspace(w.type, m, k, pool.n_threads()));
  const TensorType at = activation_type(w.type);
  uint8_t* base = reinterpret_cast<uint8_t*>(align_up(reinterpret_cast<uintptr_t>(workspace.data())));
  float* xq = reinterpret_cast<float*>(base);  // [m][k]
  const size_t enc_bytes = align_up(row_bytes(at, k));
  const size_t per_thread = enc_bytes + align_up(static_cast<size_t>(kRowGroup * k) * sizeof(float));
  uint8_t* thread_base = base + align_up(static_cast<size_t>(m * k) * sizeof(float));

  // Round the activations the way the integer kernels (and the reference
  // implementation) see them, so ref and fast paths agree closely.
  pool.parallel_for(m, 1, [&](int64_t i0, int64_t i1, int ith) {
    uint8_t* enc = thread_base + static_cast<size_t>(ith) * per_thread;
    for (int64_t i = i0; i < i1; ++i) {
      if (at == TensorType::kF32) {
        std::memcpy(xq + i * k, x + i * ldx, static_cast<size_t>(k) * sizeof(float));
      } else {
        quantize_activation_row(at, x + i * ldx, enc, k);
        ref_decode_row(at, enc, xq + i * k, k);
      }
    }
  });

  const int64_t n_groups = (w.rows + kRowGroup - 1) / kRowGroup;
  // Enough chunks for dynamic balancing, few enough that the atomic is cheap.
  const int64_t grain = std::max<int64_t>(1, n_groups / (8 * pool.n_threads()));
  pool.parallel_for(n_groups, grain, [&](int64_t g0, int64_t g1, int ith) {
    float* rows = reinterpret_cast<float*>(thread_base + static_cast<size_t>(ith) * per_thread + enc_bytes);  // [kRowGroup][k]
    for (int64_t g = g0; g < g1; ++g) {
      const int64_t r0 = g * kRowGroup;
      const int64_t nr = std::min(kRowGroup, w.rows - r0);
      for (int64_t r = 0; r < nr; ++r) ref_decode_row(w.type, w.row(r0 + r), rows + r * k, k);
      for (int64_t i = 0; i < m; ++i) {
        const float* xi = xq + i * k;
        for (int64_t r = 0; r < nr; ++r) y[i * ldy + r0 + r] = dot_f32(rows + r * k, xi, k);
      }
    }
  });
}

size_t ref_mul_mat_id_workspace(TensorType type, int64_t max_rows, int64_t k, int n_threads) {
  return ref_matmul_workspace(type, max_rows, k, n_threads);
}

// Each expert's block of rows through ref_matmul.
void ref_mul_mat_id(std::span<const Matrix> experts, const int64_t* offsets, const float* x, int64_t ldx, float* y,
                    int64_t ldy, std::span<uint8_t> workspace, ThreadPool& pool) {
  for (size_t e = 0; e < experts.size(); ++e) {
    const int64_t r0 = offsets[e], rows = offsets[e + 1] - r0;
    if (rows > 0) ref_matmul(experts[e], x + r0 * ldx, rows, ldx, y + r0 * ldy, ldy, workspace, pool);
  }
}

void ref_attention(const AttentionArgs& a, ThreadPool& pool) {
  CODEY_ASSERT(a.head_dim_k <= kMaxHeadDim && a.head_dim_v <= kMaxHeadDim);
  CODEY_ASSERT(a.n_head_kv > 0 && a.n_head % a.n_head_kv == 0);
  const int64_t group = a.n_head / a.n_head_kv;
  const int64_t n_items = a.n_tokens * a.n_head;
  const int64_t grain = std::max<int64_t>(1, n_items / (4 * pool.n_threads()));
  pool.parallel_for(n_items, grain, [&](int64_t i0, int64_t i1, int) {
    std::array<float, kMaxHeadDim> kbuf, vbuf, acc;
    std::array<uint8_t, kMaxHeadDim * sizeof(float)> enc;  // one encoded row
    for (int64_t item = i0; item < i1; ++item) {
      const int64_t t = item / a.n_head, h = item % a.n_head, hkv = h / group;
      const float* q = a.q + t * a.q_stride + h * a.head_dim_k;
      float* out = a.out + t * a.out_stride + h * a.head_dim_v;
      const int32_t seq = a.seq[t];
      const int64_t hi = a.pos[t];
      const int64_t lo = a.window > 0 ? std::max<int64_t>(0, hi - a.window + 1) : 0;
      // Online softmax (flash-attention style): running max m, sum s, and the
      // weighted sum of V rows rescaled whenever the max grows.
      float m = -INFINITY, s = 0.0f;
      std::fill_n(acc.begin(), a.head_dim_v, 0.0f);
      for (int64_t p = lo; p <= hi; ++p) {
        read_kv_row(a.k, seq, hkv, p, a.head_dim_k, enc.data());
        ref_decode_row(a.k.type, enc.data(), kbuf.data(), a.head_dim_k);
        float score = dot_f32(q, kbuf.data(), a.head_dim_k) * a.scale;
        if (a.softcap > 0.0f) score = a.softcap * std::tanh(score / a.softcap);
        if (score > m) {
          const float c = std::exp(m - score);  // exp(-inf) = 0 on the first row
          for (int64_t d = 0; d < a.head_dim_v; ++d) acc[d] *= c;
          s *= c;
          m = score;
        }
        const float wgt = std::exp(score - m);
        s += wgt;
        read_kv_row(a.v, seq, hkv, p, a.head_dim_v, enc.data());
        ref_decode_row(a.v.type, enc.data(), vbuf.data(), a.head_dim_v);
        for (int64_t d = 0; d < a.head_dim_v; ++d) acc[d] += wgt * vbuf[d];
      }
      const float inv = 1.0f / s;
      for (int64_t d = 0; d < a.head_dim_v; ++d) out[d] = acc[d] * inv;
    }
  });
}

void ref_rms_norm(const float* x, const float* w, float* y, int64_t n, float eps) {
  double ss = 0.0;  // ggml sums in double too (ggml_float)
  for (int64_t i = 0; i < n; ++i) ss += double(x[i]) * double(x[i]);
  const float scale = 1.0f / std::sqrt(static_cast<float>(ss / double(n)) + eps);
  if (w) {
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale * w[i];
  } else {
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale;
  }
}

namespace {

float yarn_corr_dim(int n_dims, int n_ctx_orig, float n_rot, float base) {
  return n_dims * std::log(n_ctx_orig / (n_rot * 2.0f * static_cast<float>(M_PI))) / (2.0f * std::log(base));
}

}  // namespace

void ref_rope(float* x, int64_t n_head, int64_t head_dim, int32_t pos, const RopeParams& p) {
  const int n_rot = p.n_rot;
  CODEY_ASSERT(n_rot % 2 == 0 && n_rot <= head_dim && n_rot <= kMaxHeadDim);
  std::array<float, kMaxHeadDim / 2> cs, sn;
  const float theta_scale = std::pow(p.freq_base, -2.0f / static_cast<float>(n_rot));
  float corr0 = 0.0f, corr1 = 0.0f;
  if (p.ext_factor != 0.0f) {
    corr0 = std::max(0.0f, std::floor(yarn_corr_dim(n_rot, p.n_ctx_orig, p.beta_fast, p.freq_base)));
    corr1 = std::min(static_cast<float>(n_rot - 1),
                     std::ceil(yarn_corr_dim(n_rot, p.n_ctx_orig, p.beta_slow, p.freq_base)));
  }
  // theta_i = pos * base^(-2i/n_rot), accumulated by repeated multiplication
  // in f32 as ggml does, so positions round the way the reference rounds them.
  float theta = static_cast<float>(pos);
  for (int i = 0; i < n_rot / 2; ++i) {
    const float theta_extrap = p.freq_factors ? theta / p.freq_factors[i] : theta;
    const float theta_interp = p.freq_scale * theta_extrap;
    float th = theta_interp, mscale = p.attn_factor;
    if (p.ext_factor != 0.0f) {
      const float y = (static_cast<float>(i) - corr0) / std::max(0.001f, corr1 - corr0);
      const float ramp_mix = (1.0f - std::min(1.0f, std::max(0.0f, y))) * p.ext_factor;
      th = theta_interp * (1.0f - ramp_mix) + theta_extrap * ramp_mix;
      mscale *= 1.0f + 0.1f * std::log(1.0f / p.freq_scale);
    }
    cs[i] = std::cos(th) * mscale;
    sn[i] = std::sin(th) * mscale;
    theta *= theta_scale;
  }
  const int half = n_rot / 2;
  for (int64_t h = 0; h < n_head; ++h) {
    float* v = x + h * head_dim;
    for (int i = 0; i < half; ++i) {
      const int i0 = p.neox ? i : 2 * i;
      const int i1 = p.neox ? i + half : 2 * i + 1;
      const float a = v[i0], b = v[i1];
      v[i0] = a * cs[i] - b * sn[i];
      v[i1] = a * sn[i] + b * cs[i];
    }
  }
}

float silu(float x) { return x / (1.0f + std::exp(-x)); }

float gelu_tanh(float x) {
  constexpr float kSqrt2OverPi = 0.79788456080286535587989211986876f;
  constexpr float kCoefA = 0.044715f;
  return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * x * (1.0f + kCoefA * x * x)));
}

void ref_swiglu(const float* gate, const float* up, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = silu(gate[i]) * up[i];
}

void ref_geglu(const float* gate, const float* up, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = gelu_tanh(gate[i]) * up[i];
}

void ref_softmax(float* x, int64_t n) {
  float m = -INFINITY;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, x[i]);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - m);
    sum += x[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void ref_store_row(TensorType type, const float* src, void* dst, int64_t n) {
  switch (type) {
    case TensorType::kF32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case TensorType::kF16: {
      auto* h = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) h[i] = fp32_to_fp16(src[i]);
      return;
    }
    case TensorType::kBF16: {
      auto* h = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) h[i] = fp32_to_bf16(src[i]);
      return;
    }
    default:
      quantize_row(type, src, dst, n);
  }
}

const KernelTable& ref_kernel_table() {
  static const KernelTable table = [] {
    KernelTable t;
    t.name = "ref";
    t.matmul_workspace = ref_matmul_workspace;
    t.matmul = ref_matmul;
    t.mul_mat_id_workspace = ref_mul_mat_id_workspace;
    t.mul_mat_id = ref_mul_mat_id;
    t.repack = nullptr;
    t.attention = ref_attention;
    t.rms_norm = ref_rms_norm;
    t.rope = ref_rope;
    t.swiglu = ref_swiglu;
    t.geglu = ref_geglu;
    t.softmax = ref_softmax;
    t.get_row = ref_decode_row;
    t.store_row = ref_store_row;
    return t;
  }();
  return table;
}

}  // namespace codey::kernels
