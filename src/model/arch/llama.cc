// llama (Llama 2/3, CodeLlama, DeepSeek-Coder, TinyLlama): pre-norm layers,
// rope on adjacent pairs, grouped-query attention, SwiGLU, optional biases.
#include "model/blocks.h"

namespace codey {
namespace {

Status load_llama(const GgufFile&, HParams& hp) {
  hp.rope_neox = false;
  hp.ffn_act = FfnActivation::kSilu;
  return {};
}

}  // namespace

extern const ArchSpec kArchLlama{
    .name = "llama",
    .load_hparams = load_llama,
    .needs_qk_norm = false,
    .needs_post_norms = false,
    .layer = blocks::pre_norm_layer,
};

}  // namespace codey
