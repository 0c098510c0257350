// qwen2 (Qwen2 / Qwen2.5 / Qwen2.5-Coder): the llama layer with q/k/v biases
// and rope on split halves (NEOX style).
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
    bias("attn_q.bias", Dim::kQ, &LW::bq),
    bias("attn_k.bias", Dim::kK, &LW::bk),
    bias("attn_v.bias", Dim::kV, &LW::bv),
    matrix("attn_output.weight", Dim::kAttnOut, Dim::kEmbd, &LW::wo),
    norm("ffn_norm.weight", Dim::kEmbd, &LW::ffn_norm),
    matrix("ffn_gate.weight", Dim::kEmbd, Dim::kFf, &LW::ffn_gate),
    matrix("ffn_up.weight", Dim::kEmbd, Dim::kFf, &LW::ffn_up),
    matrix("ffn_down.weight", Dim::kFf, Dim::kEmbd, &LW::ffn_down),
};

Status load_qwen2(const GgufFile&, HParams& hp) {
  hp.rope_neox = true;
  hp.ffn_act = FfnActivation::kSilu;
  return {};
}

}  // namespace

extern const ArchSpec kArchQwen2{
    .name = "qwen2",
    .load_hparams = load_qwen2,
    .layer_tensors = kTensors,
    .layer = blocks::pre_norm_layer,
};

}  // namespace codey
