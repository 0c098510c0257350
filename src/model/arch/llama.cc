// llama (Llama 2/3, CodeLlama, DeepSeek-Coder, TinyLlama): pre-norm layers,
// rope on adjacent pairs, grouped-query attention, SwiGLU, optional biases.
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
    bias("attn_q.bias", Dim::kQ, &LW::bq, kOptional),
    bias("attn_k.bias", Dim::kK, &LW::bk, kOptional),
    bias("attn_v.bias", Dim::kV, &LW::bv, kOptional),
    matrix("attn_output.weight", Dim::kAttnOut, Dim::kEmbd, &LW::wo),
    bias("attn_output.bias", Dim::kEmbd, &LW::bo, kOptional),
    norm("ffn_norm.weight", Dim::kEmbd, &LW::ffn_norm),
    matrix("ffn_gate.weight", Dim::kEmbd, Dim::kFf, &LW::ffn_gate),
    matrix("ffn_up.weight", Dim::kEmbd, Dim::kFf, &LW::ffn_up),
    matrix("ffn_down.weight", Dim::kFf, Dim::kEmbd, &LW::ffn_down),
};

Status load_llama(const GgufFile&, HParams& hp) {
  hp.rope_neox = false;
  hp.ffn_act = FfnActivation::kSilu;
  return {};
}

}  // namespace

extern const ArchSpec kArchLlama{
    .name = "llama",
    .load_hparams = load_llama,
    .layer_tensors = kTensors,
    .layer = blocks::pre_norm_layer,
};

}  // namespace codey
