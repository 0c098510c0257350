// Shared building blocks of a transformer layer (norm, self-attention, gated
// FFN, residual add) over a batch, and the per-pass state they work on. The
// architecture files in arch/ compose these; differences between them are data.
#pragma once

#include "codey/kernels.h"
#include "codey/model.h"

namespace codey {

// State of one forward pass over n tokens (rows). Buffers belong to the
// Context; shapes are in tokens x features.
struct Forward {
  Forward(Context& ctx, const Batch& batch);

  const Model& model;
  const HParams& hp;
  Context& ctx;
  const kernels::KernelTable& kt;
  ThreadPool& pool;
  int64_t n = 0;                  // tokens in this pass
  const int32_t* tokens = nullptr;  // [n]
  const int32_t* seq = nullptr;     // [n]
  const int32_t* pos = nullptr;     // [n]
  float* x;     // [n][n_embd] residual stream
  float* xn;    // [n][n_embd]
  float* tmp;   // [n][n_embd]

  // Context buffers (Forward is the Context's friend).
  float* q() { return ctx.q_.data(); }        // [n][n_head*dk]
  float* k() { return ctx.k_.data(); }        // [n][n_head_kv*dk]
  float* v() { return ctx.v_.data(); }        // [n][n_head_kv*dv]
  float* attn() { return ctx.attn_.data(); }  // [n][n_head*dv]
  float* gate() { return ctx.gate_.data(); }  // [n][n_ff] or [n*n_expert_used][n_ff_exp]
  float* up() { return ctx.up_.data(); }      // same
  // Mixture of experts (k = n_expert_used).
  float* router() { return ctx.router_.data(); }              // [n][n_expert]
  int32_t* route_expert() { return ctx.route_expert_.data(); }  // [n][k]
  float* route_weight() { return ctx.route_weight_.data(); }    // [n][k]
  int32_t* route_row() { return ctx.route_row_.data(); }        // [n][k]
  int64_t* expert_rows() { return ctx.expert_rows_.data(); }    // [n_expert + 1]
  float* moe_x() { return ctx.moe_x_.data(); }                  // [n*k][n_embd]
  float* precise_x() { return ctx.precise_x_.data(); }          // [2n][widest input]
  float* precise_y() { return ctx.precise_y_.data(); }          // [2n][widest output]
  std::span<uint8_t> ctx_workspace() { return ctx.workspace_; }
  KvCache& ctx_kv() { return ctx.kv_; }

  const LayerWeights& layer(int64_t il) const { return model.weights().layers[static_cast<size_t>(il)]; }
  kernels::RopeParams rope_params(int64_t il) const;
};

namespace blocks {

// out[t] = rms_norm(in[t]) * w for every token; rows of `dim` (in may equal out).
void norm(Forward& f, const float* in, const float* w, float* out, int64_t dim);
// x += y, rows of n_embd.
void add(Forward& f, float* x, const float* y);
// out [n][w.rows] = in [n][w.cols] · W^T (+ bias).
void linear(Forward& f, const kernels::Matrix& w, const float* bias, const float* in, float* out);
// linear with activations carried to ~16 bits: each row x and its remainder
// r = x - round8(x) (round8: the kernels' own 8-bit activation rounding for
// w's type) are multiplied as two rows of one matmul - the weights are read
// once - and summed, so the result is w·x up to round8's error on r (about
// 1/127 of it). Used where HParams::precise_routing_inputs asks for it.
void linear_precise(Forward& f, const kernels::Matrix& w, const float* bias, const float* in, float* out);
// Self-attention of layer il: projections (+biases), optional per-head q/k
// norms, rope, K/V stored to the cache, attention over it, output projection.
// in [n][n_embd] -> out [n][n_embd].
void self_attention(Forward& f, int64_t il, const float* in, float* out);
// Gated FFN: out = down(act(gate(in)) * up(in)), [n][n_embd] -> [n][n_embd].
void gated_ffn(Forward& f, int64_t il, const float* in, float* out);
// Mixture-of-experts FFN (qwen3moe): router logits = in · ffn_gate_inp^T,
// softmax, the n_expert_used most probable experts per token with their
// probabilities renormalised to sum 1; each routed expert's SwiGLU FFN on the
// tokens routed to it (rows grouped by expert, kernels' mul_mat_id: every
// expert streamed once per batch, unrouted experts not read); out = the
// weighted sum of the token's expert outputs. [n][n_embd] -> [n][n_embd].
void moe_ffn(Forward& f, int64_t il, const float* in, float* out);
// The routing of one token: probs [n_expert] (softmax applied, clobbered),
// the k most probable experts (highest first, ties to the lower index) and
// their probabilities divided by their sum.
void route_top_k(float* probs, int64_t n_expert, int64_t k, int32_t* experts, float* weights);
// The llama layer: x += attn(norm(x)); x += ffn(norm(x)).
void pre_norm_layer(Forward& f, int64_t il);

}  // namespace blocks

// Shared hyper-parameter readers for arch files.
namespace hparams {
// "<arch>.<suffix>" as float if present, else dflt.
Result<float> f32_or(const GgufFile& file, std::string_view suffix, float dflt);
}  // namespace hparams

}  // namespace codey
