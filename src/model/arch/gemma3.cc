// gemma3 (Gemma 3, FunctionGemma): embeddings scaled by sqrt(n_embd), norms
// before and after attention and FFN, per-head q/k norms, GeGLU (tanh GELU),
// 5 sliding-window layers with rope base 10000 per global layer.
#include <cmath>

#include "model/blocks.h"
#include "model/tensors.h"

namespace codey {
namespace {

using namespace tensors;
using LW = LayerWeights;

constexpr LayerTensor kTensors[] = {
    norm("attn_norm.weight", Dim::kEmbd, &LW::attn_norm),
    matrix("attn_q.weight", Dim::kEmbd, Dim::kQ, &LW::wq),
    matrix("attn_k.weight", Dim::kEmbd, Dim::kK, &LW::wk),
    matrix("attn_v.weight", Dim::kEmbd, Dim::kV, &LW::wv),
    norm("attn_q_norm.weight", Dim::kHeadK, &LW::q_norm),
    norm("attn_k_norm.weight", Dim::kHeadK, &LW::k_norm),
    matrix("attn_output.weight", Dim::kAttnOut, Dim::kEmbd, &LW::wo),
    norm("post_attention_norm.weight", Dim::kEmbd, &LW::attn_post_norm),
    norm("ffn_norm.weight", Dim::kEmbd, &LW::ffn_norm),
    matrix("ffn_gate.weight", Dim::kEmbd, Dim::kFf, &LW::ffn_gate),
    matrix("ffn_up.weight", Dim::kEmbd, Dim::kFf, &LW::ffn_up),
    matrix("ffn_down.weight", Dim::kFf, Dim::kEmbd, &LW::ffn_down),
    norm("post_ffw_norm.weight", Dim::kEmbd, &LW::ffn_post_norm),
};

// Layer il is local unless (il + 1) is a multiple of the pattern: with the
// default 6, layers 5, 11, 17, ... are global (llama.cpp set_swa_pattern(6)).
constexpr int64_t kDefaultSwaPattern = 6;
// Local layers' rope (llama.cpp rope_freq_base_train_swa for gemma3); global
// layers use the file's rope.freq_base and scaling.
constexpr float kSwaRopeBase = 10000.0f;

Status load_gemma3(const GgufFile& file, HParams& hp) {
  hp.rope_neox = true;
  hp.ffn_act = FfnActivation::kGeluTanh;
  hp.embed_scale = std::sqrt(static_cast<float>(hp.n_embd));

  auto window = file.get_u64(file.arch_key("attention.sliding_window"));
  if (!window) return std::unexpected(std::move(window.error()));
  hp.sliding_window = static_cast<int32_t>(*window);
  auto pattern = file.get_u64_or(file.arch_key("attention.sliding_window_pattern"), kDefaultSwaPattern);
  if (!pattern) return std::unexpected(std::move(pattern.error()));
  if (*pattern == 0) return make_error(ErrorCode::kCorrupt, "gemma3 sliding_window_pattern must be positive");
  hp.swa_layers.assign(static_cast<size_t>(hp.n_layer), false);
  for (int64_t il = 0; il < hp.n_layer; ++il)
    hp.swa_layers[static_cast<size_t>(il)] = (il % static_cast<int64_t>(*pattern)) < static_cast<int64_t>(*pattern) - 1;
  hp.rope_freq_base_swa = kSwaRopeBase;
  hp.rope_freq_scale_swa = 1.0f;

  // query_pre_attn_scalar: head_dim, except Gemma 3 27B (62 layers) which
  // uses n_embd / n_head (gemma_pytorch config; llama.cpp does the same).
  const float scalar = hp.n_layer == 62 ? static_cast<float>(hp.n_embd / hp.n_head) : static_cast<float>(hp.head_dim_k);
  hp.attn_scale = 1.0f / std::sqrt(scalar);
  return {};
}

// x += post_norm(attn(norm(x))); x += post_norm(ffn(norm(x))).
void gemma3_layer(Forward& f, int64_t il) {
  const LayerWeights& L = f.layer(il);
  const int64_t d = f.hp.n_embd;
  blocks::norm(f, f.x, L.attn_norm, f.xn, d);
  blocks::self_attention(f, il, f.xn, f.tmp);
  blocks::norm(f, f.tmp, L.attn_post_norm, f.tmp, d);
  blocks::add(f, f.x, f.tmp);
  blocks::norm(f, f.x, L.ffn_norm, f.xn, d);
  blocks::gated_ffn(f, il, f.xn, f.tmp);
  blocks::norm(f, f.tmp, L.ffn_post_norm, f.tmp, d);
  blocks::add(f, f.x, f.tmp);
}

}  // namespace

extern const ArchSpec kArchGemma3{
    .name = "gemma3",
    .load_hparams = load_gemma3,
    .layer_tensors = kTensors,
    .layer = gemma3_layer,
};

}  // namespace codey
