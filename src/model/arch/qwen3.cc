// qwen3 (Qwen3 0.6B-32B): the llama layer without biases, with a per-head
// RMSNorm on q and k before rope (NEOX style); the head dim comes from
// attention.key_length (128 in every size, not n_embd / n_head).
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
    matrix("attn_output.weight", Dim::kAttnOut, Dim::kEmbd, &LW::wo),
    norm("attn_q_norm.weight", Dim::kHeadK, &LW::q_norm),
    norm("attn_k_norm.weight", Dim::kHeadK, &LW::k_norm),
    norm("ffn_norm.weight", Dim::kEmbd, &LW::ffn_norm),
    matrix("ffn_gate.weight", Dim::kEmbd, Dim::kFf, &LW::ffn_gate),
    matrix("ffn_up.weight", Dim::kEmbd, Dim::kFf, &LW::ffn_up),
    matrix("ffn_down.weight", Dim::kFf, Dim::kEmbd, &LW::ffn_down),
};

Status load_qwen3(const GgufFile&, HParams& hp) {
  hp.rope_neox = true;
  hp.ffn_act = FfnActivation::kSilu;
  return {};
}

}  // namespace

extern const ArchSpec kArchQwen3{
    .name = "qwen3",
    .load_hparams = load_qwen3,
    .layer_tensors = kTensors,
    .layer = blocks::pre_norm_layer,
};

}  // namespace codey
