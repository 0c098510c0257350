// qwen3moe (Qwen3-30B-A3B, Qwen3-Coder-30B-A3B): qwen3 attention (per-head
// q/k norms, neox rope, head dim from key_length) and a mixture-of-experts
// FFN: a softmax router over ffn_gate_inp, the expert_used_count most
// probable experts per token with their weights renormalised to sum 1, and
// SwiGLU experts stored as 3-D tensors (blocks::moe_ffn).
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
    matrix("ffn_gate_inp.weight", Dim::kEmbd, Dim::kExpert, &LW::ffn_gate_inp),
    experts("ffn_gate_exps.weight", Dim::kEmbd, Dim::kFfExp, &LW::ffn_gate_exps),
    experts("ffn_up_exps.weight", Dim::kEmbd, Dim::kFfExp, &LW::ffn_up_exps),
    experts("ffn_down_exps.weight", Dim::kFfExp, Dim::kEmbd, &LW::ffn_down_exps),
};

// Most experts a layer may have (the router's scratch lives on the stack).
constexpr int64_t kMaxExperts = 1024;

Status load_qwen3moe(const GgufFile& file, HParams& hp) {
  hp.rope_neox = true;
  hp.ffn_act = FfnActivation::kSilu;
  auto n_expert = file.get_u64(file.arch_key("expert_count"));
  if (!n_expert) return std::unexpected(std::move(n_expert.error()));
  auto n_used = file.get_u64(file.arch_key("expert_used_count"));
  if (!n_used) return std::unexpected(std::move(n_used.error()));
  auto n_ff_exp = file.get_u64(file.arch_key("expert_feed_forward_length"));
  if (!n_ff_exp) return std::unexpected(std::move(n_ff_exp.error()));
  if (*n_expert == 0 || *n_expert > static_cast<uint64_t>(kMaxExperts) || *n_used == 0 || *n_used > *n_expert ||
      *n_ff_exp == 0)
    return make_error(ErrorCode::kUnsupported,
                      "qwen3moe needs 1..{} experts with 1..expert_count of them used and a positive "
                      "expert_feed_forward_length (found {} experts, {} used, {})",
                      kMaxExperts, *n_expert, *n_used, *n_ff_exp);
  hp.n_expert = static_cast<int64_t>(*n_expert);
  hp.n_expert_used = static_cast<int64_t>(*n_used);
  hp.n_ff_exp = static_cast<int64_t>(*n_ff_exp);
  hp.precise_routing_inputs = true;
  return {};
}

// x += attn(norm(x)); x += moe(norm(x)).
void qwen3moe_layer(Forward& f, int64_t il) {
  const LayerWeights& L = f.layer(il);
  const int64_t d = f.hp.n_embd;
  blocks::norm(f, f.x, L.attn_norm, f.xn, d);
  blocks::self_attention(f, il, f.xn, f.tmp);
  blocks::add(f, f.x, f.tmp);
  blocks::norm(f, f.x, L.ffn_norm, f.xn, d);
  blocks::moe_ffn(f, il, f.xn, f.tmp);
  blocks::add(f, f.x, f.tmp);
}

}  // namespace

extern const ArchSpec kArchQwen3Moe{
    .name = "qwen3moe",
    .load_hparams = load_qwen3moe,
    .layer_tensors = kTensors,
    .layer = qwen3moe_layer,
};

}  // namespace codey
