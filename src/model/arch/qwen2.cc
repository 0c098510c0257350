// qwen2 (Qwen2 / Qwen2.5 / Qwen2.5-Coder): the llama layer with q/k/v biases
// (picked up from the file) and rope on split halves (NEOX style).
#include "model/blocks.h"

namespace codey {
namespace {

Status load_qwen2(const GgufFile&, HParams& hp) {
  hp.rope_neox = true;
  hp.ffn_act = FfnActivation::kSilu;
  return {};
}

}  // namespace

extern const ArchSpec kArchQwen2{
    .name = "qwen2",
    .load_hparams = load_qwen2,
    .needs_qk_norm = false,
    .needs_post_norms = false,
    .layer = blocks::pre_norm_layer,
};

}  // namespace codey
