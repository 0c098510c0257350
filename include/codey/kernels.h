// Compute kernels for one transformer step: a table of function pointers filled
// once at start-up (cpuid; CODEY_ISA=ref|avx2|avx512 overrides). The table is
// the only seam between the model and per-ISA code: kernels/ref/ holds plain
// scalar versions that are obviously right; kernels/x86/ fills faster entries.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "codey/tensor.h"
#include "codey/thread_pool.h"

namespace codey::kernels {

// Largest head dimension the kernels accept (per-head scratch lives on the
// stack). Models with larger heads are refused at load.
constexpr int64_t kMaxHeadDim = 1024;

// A weight matrix W[rows][cols] (ggml ne[1] x ne[0]) in its file type, used in
// place from the mmap. Never converted to f32 as a whole.
struct Matrix {
  TensorType type = TensorType::kF32;
  int64_t rows = 0;        // N: output features
  int64_t cols = 0;        // K: input features (a multiple of the type's block)
  const uint8_t* data = nullptr;
  size_t row_bytes = 0;
  // Optional copy in a layout private to the ISA whose repack() made it (e.g.
  // rows interleaved for SIMD); owned by the model. nullptr = plain rows.
  const void* packed = nullptr;

  const uint8_t* row(int64_t i) const { return data + static_cast<size_t>(i) * row_bytes; }
  static Matrix from_view(const TensorView& view);
};

// Rotary position embedding of one layer (ggml's rope_ext semantics).
struct RopeParams {
  int32_t n_rot = 0;          // dimensions rotated (even, <= head_dim); the rest pass through
  bool neox = false;          // pairs (i, i + n_rot/2) instead of adjacent (2i, 2i+1)
  float freq_base = 10000.0f;
  float freq_scale = 1.0f;    // linear scaling: theta = pos * freq_scale * base^(-2i/n_rot)
  // YaRN (ext_factor 0 disables the ramp; attn_factor scales cos/sin).
  float ext_factor = 0.0f;
  float attn_factor = 1.0f;
  float beta_fast = 32.0f;
  float beta_slow = 1.0f;
  int32_t n_ctx_orig = 0;
  const float* freq_factors = nullptr;  // optional [n_rot/2]: theta_i /= freq_factors[i]
};

// One layer of the KV cache. Per (seq, head) the positions are contiguous,
// starting at data + seq*seq_stride + head*head_stride; pos_stride is the
// bytes of one encoded row (head_dim elements of `type`: kF16, kBF16, kF32 or
// kQ8_0, encoded as store_row writes them).
//  - Plain rows (V): row pos at base + pos*pos_stride.
//  - Tiled (K): positions grouped in tiles of kKvTile, the tile holding pos at
//    base + (pos / kKvTile) * kKvTile * pos_stride, each tile storing its rows
//    transposed so that one vector load holds one element of kKvTile
//    consecutive positions (scores of a query against a tile are then plain
//    FMAs, no horizontal sums):
//      f16 / bf16 / f32: element d of slot s at ((d * kKvTile) + s) * size;
//      q8_0: per block b of 32 elements, kKvTile f16 scales (slot order),
//            then 32 x kKvTile int8 (element-major): block b starts at
//            b * kKvTile * 34, scale of slot s at +2s, element d of slot s at
//            +2*kKvTile + (d % 32) * kKvTile + s.
//    A tile is kKvTile rows' worth of bytes; the owner rounds the positions
//    up to whole tiles.
constexpr int64_t kKvTile = 16;

struct KvView {
  TensorType type = TensorType::kF16;
  const uint8_t* data = nullptr;
  size_t seq_stride = 0, head_stride = 0, pos_stride = 0;
  bool tiled = false;

  const uint8_t* base(int32_t seq, int64_t head) const {
    return data + static_cast<size_t>(seq) * seq_stride + static_cast<size_t>(head) * head_stride;
  }
  // Plain rows only.
  const uint8_t* row(int32_t seq, int64_t head, int64_t pos) const {
    return base(seq, head) + static_cast<size_t>(pos) * pos_stride;
  }
  // Tiled only: the tile holding pos (its slot is pos % kKvTile).
  const uint8_t* tile(int32_t seq, int64_t head, int64_t pos) const {
    return base(seq, head) + static_cast<size_t>(pos / kKvTile) * static_cast<size_t>(kKvTile) * pos_stride;
  }
};

// Byte-level moves between one encoded row of n elements (as store_row
// writes it) and its slot of a tile (layout above). Types: kF16, kBF16, kF32,
// kQ8_0.
void write_tile_row(TensorType type, const uint8_t* row, int64_t n, uint8_t* tile, int64_t slot);
void read_tile_row(TensorType type, const uint8_t* tile, int64_t slot, int64_t n, uint8_t* row);
// Position pos of a view in either layout, as an encoded row (n elements).
void read_kv_row(const KvView& view, int32_t seq, int64_t head, int64_t pos, int64_t n, uint8_t* row);

// Causal attention of a batch of query tokens over the KV cache, which already
// holds every position up to each token's own (the batch's K/V included).
// Token t of sequence seq[t] at position pos[t] attends to positions
// [max(0, pos[t] - window + 1), pos[t]] of its sequence (window 0 = all).
// Grouped-query: query head h reads KV head h / (n_head / n_head_kv).
struct AttentionArgs {
  const float* q = nullptr;   // [n_tokens][n_head][head_dim_k], token stride q_stride floats
  int64_t q_stride = 0;
  float* out = nullptr;       // [n_tokens][n_head][head_dim_v], token stride out_stride floats
  int64_t out_stride = 0;
  int64_t n_tokens = 0, n_head = 0, n_head_kv = 0, head_dim_k = 0, head_dim_v = 0;
  const int32_t* seq = nullptr;  // [n_tokens]
  const int32_t* pos = nullptr;  // [n_tokens]
  KvView k, v;
  int32_t window = 0;
  float scale = 1.0f;        // applied to q·k before soft-capping
  float softcap = 0.0f;      // > 0: score = softcap * tanh(score / softcap)
};

struct KernelTable {
  const char* name = "ref";

  // y[m][n] = sum_k x[m][k] * W[n][k]: activations x [m][ldx] (f32, first
  // w.cols used), output y [m][ldy] (first w.rows written). Uses the pool;
  // `workspace` has at least matmul_workspace(w.type, m, w.cols, n_threads)
  // bytes (fast versions quantize x there, e.g. to Q8_0/Q8_K). Every output is
  // computed by one thread in a fixed order: results do not depend on the
  // thread count.
  size_t (*matmul_workspace)(TensorType type, int64_t m, int64_t k, int n_threads) = nullptr;
  void (*matmul)(const Matrix& w, const float* x, int64_t m, int64_t ldx, float* y, int64_t ldy,
                 std::span<uint8_t> workspace, ThreadPool& pool) = nullptr;

  // Mixture of experts (ggml's mul_mat_id, on rows grouped by expert): rows
  // [offsets[e], offsets[e + 1]) of x are multiplied by experts[e],
  // y[r][n] = sum_k x[r][k] * experts[e][n][k], for every expert e; x
  // [offsets[n_expert]][ldx], y [...][ldy]. Each expert with rows is read
  // once for all of them (its repacked copy when it has one); experts
  // without rows are not read. All experts share one type and shape.
  // `workspace` has at least mul_mat_id_workspace(type, max_rows, cols,
  // n_threads) bytes, max_rows being the most rows any expert gets.
  // Results do not depend on the thread count.
  size_t (*mul_mat_id_workspace)(TensorType type, int64_t max_rows, int64_t k, int n_threads) = nullptr;
  void (*mul_mat_id)(std::span<const Matrix> experts, const int64_t* offsets, const float* x, int64_t ldx, float* y,
                     int64_t ldy, std::span<uint8_t> workspace, ThreadPool& pool) = nullptr;

  // Optional: a repacked copy of w for this ISA's matmul (empty = keep plain).
  std::vector<uint8_t> (*repack)(const Matrix& w) = nullptr;

  void (*attention)(const AttentionArgs& args, ThreadPool& pool) = nullptr;

  // y[n] = x[n] / sqrt(mean(x^2) + eps) * w[n] (w may be null). x may equal y.
  void (*rms_norm)(const float* x, const float* w, float* y, int64_t n, float eps) = nullptr;
  // Rotates x [n_head][head_dim] (one token) in place for position pos.
  void (*rope)(float* x, int64_t n_head, int64_t head_dim, int32_t pos, const RopeParams& p) = nullptr;
  // y = silu(gate) * up, y = gelu_tanh(gate) * up. y may alias gate.
  void (*swiglu)(const float* gate, const float* up, float* y, int64_t n) = nullptr;
  void (*geglu)(const float* gate, const float* up, float* y, int64_t n) = nullptr;
  // In place, numerically stable (max subtracted).
  void (*softmax)(float* x, int64_t n) = nullptr;
  // Decodes one row of a tensor (embedding lookup): n elements of `type`.
  void (*get_row)(TensorType type, const void* src, float* dst, int64_t n) = nullptr;
  // Encodes one row into the KV cache's type (kF16 or kQ8_0).
  void (*store_row)(TensorType type, const float* src, void* dst, int64_t n) = nullptr;

  // Optional (benchmarks): runs `iters` iterations of the table's widest int8
  // multiply-accumulate in independent chains on the calling thread and
  // returns the ops done (2 per byte product): time it for the int8 peak the
  // matmuls are compared with. nullptr for tables without one (ref).
  double (*int8_peak)(int64_t iters) = nullptr;
};

// The plain scalar table (always available).
const KernelTable& ref_kernel_table();
// The table chosen at start-up: CODEY_ISA if set (error message and fallback
// to the best supported one if the CPU lacks it), else the best the CPU runs.
const KernelTable& kernels();
// A table by name ("ref", "avx2", "avx512") if compiled in and supported by
// this CPU, else nullptr. For tests that compare every ISA against ref.
const KernelTable* kernel_table(std::string_view name);
// The CPU features (CpuFeatures::names()) table `name` needs; a superset of
// the -m flags its units are compiled with. Empty for ref and unknown names.
std::vector<std::string_view> isa_requirements(std::string_view name);
// Names of every table this CPU supports, ref first.
std::vector<std::string_view> available_isas();

// Whether a weight type can be multiplied (its rows decode to f32).
bool matmul_supports(TensorType type);

// The format activations are rounded to for dot products with a weight type
// (ggml's vec_dot_type): f32/f16/bf16 for those weights, Q8_K for 256-element
// K-quant blocks, Q8_0 for the 32-element formats.
TensorType activation_type(TensorType weight_type);
// Encodes one activation row of k values in `type` (round to nearest, scale
// amax/127 per block for Q8_0/Q8_K), as the reference implementation does.
void quantize_activation_row(TensorType type, const float* x, void* dst, int64_t k);

// Scalar helpers shared by kernels and tests.
float gelu_tanh(float x);
float silu(float x);

}  // namespace codey::kernels
