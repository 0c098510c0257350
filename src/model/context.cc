// Context: buffers sized once, and decode(): embeddings, the architecture's
// layers, final norm and logits for the tokens that asked for them.
#include <algorithm>
#include <cmath>

#include "codey/model.h"
#include "model/blocks.h"

namespace codey {

Forward::Forward(Context& c, const Batch& batch)
    : model(c.model_),
      hp(c.model_.hparams()),
      ctx(c),
      kt(c.model_.kernel_table()),
      pool(*c.pool_),
      n(static_cast<int64_t>(batch.size())),
      tokens(batch.tokens.data()),
      seq(batch.seq.data()),
      pos(c.pos_.data()),
      x(c.x_.data()),
      xn(c.xn_.data()),
      tmp(c.tmp_.data()) {}

Context::~Context() = default;

Result<std::unique_ptr<Context>> Context::create(const Model& model, const ContextParams& params) {
  const HParams& hp = model.hparams();
  std::unique_ptr<Context> c(new Context(model, params));
  ContextParams& p = c->params_;
  if (p.n_ctx <= 0) p.n_ctx = std::min<int64_t>(hp.n_ctx_train > 0 ? hp.n_ctx_train : 4096, 4096);
  if (p.n_ctx > hp.n_ctx_train && hp.n_ctx_train > 0)
    log_warn("context of {} positions is longer than the model was trained for ({})", p.n_ctx, hp.n_ctx_train);
  if (p.n_batch <= 0) return make_error(ErrorCode::kInvalidArgument, "batch size must be positive, got {}", p.n_batch);
  if (p.n_seq <= 0) return make_error(ErrorCode::kInvalidArgument, "sequence count must be positive, got {}", p.n_seq);
  if (p.pool) {
    c->pool_ = p.pool;
  } else {
    c->own_pool_ = std::make_unique<ThreadPool>(p.n_threads);
    c->pool_ = c->own_pool_.get();
  }

  KvCacheParams kvp;
  kvp.n_layer = hp.n_layer;
  kvp.n_head_kv = hp.n_head_kv;
  kvp.head_dim_k = hp.head_dim_k;
  kvp.head_dim_v = hp.head_dim_v;
  kvp.n_ctx = p.n_ctx;
  kvp.n_seq = p.n_seq;
  kvp.type = p.kv_type;
  auto kv = KvCache::create(kvp);
  if (!kv) return std::unexpected(std::move(kv.error()));
  c->kv_ = std::move(*kv);

  const auto B = static_cast<size_t>(p.n_batch);
  const auto E = static_cast<size_t>(hp.n_embd);
  c->x_.resize(B * E);
  c->xn_.resize(B * E);
  c->tmp_.resize(B * E);
  c->q_.resize(B * static_cast<size_t>(hp.n_head * hp.head_dim_k));
  c->k_.resize(B * static_cast<size_t>(hp.n_head_kv * hp.head_dim_k));
  c->v_.resize(B * static_cast<size_t>(hp.n_head_kv * hp.head_dim_v));
  c->attn_.resize(B * static_cast<size_t>(hp.n_head * hp.head_dim_v));
  // FFN branches: a dense FFN's [n_batch][n_ff], or a mixture's rows of
  // n_ff_exp for every (token, routed expert).
  bool dense_ffn = false;
  for (const auto& L : model.weights().layers) dense_ffn |= L.ffn_gate.data != nullptr;
  const auto ff = static_cast<size_t>(std::max(dense_ffn ? hp.n_ff : 0, hp.n_expert_used * hp.n_ff_exp));
  c->gate_.resize(B * ff);
  c->up_.resize(B * ff);
  if (hp.n_expert > 0) {
    const auto K = static_cast<size_t>(hp.n_expert_used);
    c->router_.resize(B * static_cast<size_t>(hp.n_expert));
    c->route_expert_.resize(B * K);
    c->route_weight_.resize(B * K);
    c->route_row_.resize(B * K);
    c->expert_rows_.resize(static_cast<size_t>(hp.n_expert) + 1);
    c->moe_x_.resize(B * K * E);
  }
  if (hp.precise_routing_inputs) {
    const auto q = static_cast<size_t>(hp.n_head * hp.head_dim_k), o = static_cast<size_t>(hp.n_head * hp.head_dim_v);
    c->precise_x_.resize(2 * B * std::max(E, o));
    c->precise_y_.resize(2 * B * std::max({E, q, static_cast<size_t>(hp.n_expert)}));
  }
  // Logits for one token per sequence (what generation and a prompt's last
  // token need); a decode that asks for more rows (codey eval) grows it. A
  // row per batch token up front would be n_batch x n_vocab floats: 311 MB
  // for a 151936-token vocabulary at batch 512.
  c->logits_.resize(std::min(B, static_cast<size_t>(std::max(p.n_seq, 1))) * static_cast<size_t>(hp.n_vocab));
  c->pos_.resize(B);
  c->out_rows_.resize(B);
  c->seq_added_.resize(static_cast<size_t>(p.n_seq));

  // Kernel scratch: the most any matmul of this model needs at this batch size.
  const auto& kt = model.kernel_table();
  const int nth = c->pool_->n_threads();
  size_t ws = 0;
  // An expert gets at most one row per token of the batch; linear_precise
  // multiplies two rows per token.
  for (const WeightMatrix& wm : model.weights().matrices())
    ws = std::max(ws, wm.expert ? kt.mul_mat_id_workspace(wm.matrix->type, p.n_batch, wm.matrix->cols, nth)
                                : kt.matmul_workspace(wm.matrix->type, (hp.precise_routing_inputs ? 2 : 1) * p.n_batch,
                                                      wm.matrix->cols, nth));
  c->workspace_.resize(ws);
  return c;
}

size_t Context::memory_bytes() const {
  size_t floats = x_.size() + xn_.size() + tmp_.size() + q_.size() + k_.size() + v_.size() + attn_.size() +
                  gate_.size() + up_.size() + logits_.size() + router_.size() + route_weight_.size() + moe_x_.size() +
                  precise_x_.size() + precise_y_.size();
  const size_t routing = (route_expert_.size() + route_row_.size()) * sizeof(int32_t) +
                         expert_rows_.size() * sizeof(int64_t);
  return kv_.bytes() + floats * sizeof(float) + routing + workspace_.size();
}

Result<std::span<const float>> Context::decode(const Batch& batch) {
  const HParams& hp = model_.hparams();
  const int64_t n = static_cast<int64_t>(batch.size());
  if (n == 0) return make_error(ErrorCode::kInvalidArgument, "empty batch");
  if (batch.seq.size() != batch.size() || batch.want_logits.size() != batch.size())
    return make_error(ErrorCode::kInvalidArgument, "batch arrays differ in length");
  if (n > params_.n_batch)
    return make_error(ErrorCode::kInvalidArgument, "batch of {} tokens exceeds the context's batch size {}", n,
                      params_.n_batch);
  // Validate everything before touching the cache: an error changes nothing.
  std::vector<int64_t>& added = seq_added_;  // tokens per sequence in this batch
  std::fill(added.begin(), added.end(), 0);
  for (int64_t i = 0; i < n; ++i) {
    const int32_t tok = batch.tokens[static_cast<size_t>(i)];
    const int32_t s = batch.seq[static_cast<size_t>(i)];
    if (tok < 0 || tok >= hp.n_vocab)
      return make_error(ErrorCode::kInvalidArgument, "token id {} is out of range (vocabulary of {})", tok, hp.n_vocab);
    if (s < 0 || s >= kv_.n_seq())
      return make_error(ErrorCode::kInvalidArgument, "sequence id {} is out of range (the context has {} sequences)",
                        s, kv_.n_seq());
    pos_[static_cast<size_t>(i)] = static_cast<int32_t>(kv_.seq_length(s) + added[static_cast<size_t>(s)]);
    ++added[static_cast<size_t>(s)];
  }
  for (int s = 0; s < kv_.n_seq(); ++s)
    if (added[static_cast<size_t>(s)] > 0) CODEY_TRY(kv_.check_room(s, added[static_cast<size_t>(s)]));

  Forward f(*this, batch);
  const auto& kt = f.kt;
  const int64_t d = hp.n_embd;
  // Embeddings: [n][n_embd].
  const TensorView& emb = model_.weights().token_embd;
  pool_->parallel_for(n, 8, [&](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t) {
      float* xt = f.x + t * d;
      kt.get_row(emb.type, emb.row(f.tokens[t]), xt, d);
      if (hp.embed_scale != 1.0f)
        for (int64_t i = 0; i < d; ++i) xt[i] *= hp.embed_scale;
    }
  });
  for (int64_t il = 0; il < hp.n_layer; ++il) model_.arch().layer(f, il);
  for (int s = 0; s < kv_.n_seq(); ++s)
    if (added[static_cast<size_t>(s)] > 0) kv_.set_seq_length(s, kv_.seq_length(s) + added[static_cast<size_t>(s)]);

  // Outputs: gather the rows that want logits, final norm, output matmul.
  int64_t n_out = 0;
  for (int64_t i = 0; i < n; ++i)
    if (batch.want_logits[static_cast<size_t>(i)]) out_rows_[static_cast<size_t>(n_out++)] = static_cast<int32_t>(i);
  if (n_out == 0) return std::span<const float>{};
  for (int64_t j = 0; j < n_out; ++j)
    kt.rms_norm(f.x + out_rows_[static_cast<size_t>(j)] * d, model_.weights().output_norm, f.xn + j * d, d, hp.rms_eps);
  const kernels::Matrix& out = model_.weights().output;
  if (static_cast<size_t>(n_out * hp.n_vocab) > logits_.size()) logits_.resize(static_cast<size_t>(n_out * hp.n_vocab));
  kt.matmul(out, f.xn, n_out, d, logits_.data(), hp.n_vocab, workspace_, *pool_);
  if (hp.final_softcap > 0.0f) {
    const float c = hp.final_softcap;
    for (int64_t i = 0; i < n_out * hp.n_vocab; ++i) logits_[static_cast<size_t>(i)] = c * std::tanh(logits_[static_cast<size_t>(i)] / c);
  }
  return std::span<const float>(logits_.data(), static_cast<size_t>(n_out * hp.n_vocab));
}

}  // namespace codey
