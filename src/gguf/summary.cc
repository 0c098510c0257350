// A GGUF file's summary (hyper-parameters, tensor statistics) and the memory
// estimate used by `codey inspect` and the runtime's budget.
#include <algorithm>
#include <map>

#include "codey/gguf.h"

namespace codey {

Result<GgufSummary> summarize(const GgufFile& f) {
  GgufSummary s;
  s.path = f.name();
  s.version = f.version();
  s.file_size = f.file_size();
  s.n_files = static_cast<uint32_t>(f.n_parts());
  auto arch = f.get_string("general.architecture");
  if (!arch) return std::unexpected(arch.error());
  s.architecture = std::string(*arch);
  auto name = f.get_string_or("general.name", "");
  if (!name) return std::unexpected(name.error());
  s.name = std::string(*name);

  auto u64 = [&](std::string_view suffix, uint64_t& out) -> Status {
    auto v = f.get_u64_or(f.arch_key(suffix), 0);
    if (!v) return std::unexpected(v.error());
    out = *v;
    return {};
  };
  CODEY_TRY(u64("block_count", s.n_layer));
  CODEY_TRY(u64("embedding_length", s.n_embd));
  CODEY_TRY(u64("attention.head_count", s.n_head));
  CODEY_TRY(u64("attention.head_count_kv", s.n_head_kv));
  CODEY_TRY(u64("feed_forward_length", s.n_ff));
  CODEY_TRY(u64("context_length", s.n_ctx_train));
  CODEY_TRY(u64("attention.key_length", s.head_dim));
  CODEY_TRY(u64("attention.value_length", s.head_dim_v));
  CODEY_TRY(u64("attention.sliding_window", s.sliding_window));
  CODEY_TRY(u64("expert_count", s.n_expert));
  CODEY_TRY(u64("expert_used_count", s.n_expert_used));
  CODEY_TRY(u64("expert_feed_forward_length", s.n_ff_exp));
  if (s.n_head_kv == 0) s.n_head_kv = s.n_head;
  if (s.head_dim == 0 && s.n_head) s.head_dim = s.n_embd / s.n_head;
  if (s.head_dim_v == 0) s.head_dim_v = s.head_dim;
  auto base = f.get_f32_or(f.arch_key("rope.freq_base"), 0.0f);
  if (!base) return std::unexpected(base.error());
  s.rope_freq_base = *base;
  auto tm = f.get_string_or("tokenizer.ggml.model", "");
  if (!tm) return std::unexpected(tm.error());
  s.tokenizer_model = std::string(*tm);
  auto tp = f.get_string_or("tokenizer.ggml.pre", "");
  if (!tp) return std::unexpected(tp.error());
  s.tokenizer_pre = std::string(*tp);
  s.has_chat_template = f.has("tokenizer.chat_template");
  auto ft = f.get_u64_or("general.file_type", 0);
  if (!ft) return std::unexpected(ft.error());
  s.file_type = *ft;
  if (const GgufValue* toks = f.find("tokenizer.ggml.tokens")) s.n_vocab = toks->count;
  if (s.n_vocab == 0) {
    auto v = f.get_u64_or(f.arch_key("vocab_size"), 0);
    if (v) s.n_vocab = *v;
  }
  std::map<uint32_t, uint64_t> by_type;
  for (const auto& t : f.tensors()) {
    uint64_t n = 1;
    for (int d = 0; d < t.n_dims; ++d) n *= static_cast<uint64_t>(t.ne[d]);
    s.n_params += n;
    s.tensor_bytes += t.n_bytes;
    ++by_type[static_cast<uint32_t>(t.type)];
  }
  for (auto [id, count] : by_type) s.tensors_by_type.emplace_back(static_cast<TensorType>(id), count);
  if (!f.find_tensor("output.weight"))
    if (const GgufTensorInfo* e = f.find_tensor("token_embd.weight");
        e && e->type != TensorType::kF32 && e->type != TensorType::kF16 && e->type != TensorType::kBF16)
      s.tied_output_copy_bytes = e->n_bytes;
  return s;
}

MemoryEstimate estimate_memory(const GgufSummary& s, uint64_t n_ctx, TensorType kv_type, uint64_t n_seq,
                               uint64_t n_batch) {
  MemoryEstimate m;
  m.n_ctx = n_ctx;
  m.n_seq = n_seq;
  m.kv_type = kv_type;
  m.weights = s.tensor_bytes;
  const auto& tr = type_traits(kv_type);
  auto bytes_of = [&](uint64_t elems) {
    return (elems + tr.block_size - 1) / tr.block_size * tr.block_bytes;
  };
  // One K row and one V row per layer, position and kv head.
  const uint64_t per_pos = s.n_layer * (bytes_of(s.n_head_kv * s.head_dim) + bytes_of(s.n_head_kv * s.head_dim_v));
  m.kv_cache = per_pos * n_ctx * std::max<uint64_t>(n_seq, 1);  // n_ctx positions for each sequence
  // Scratch: f32 activations for one batch (residual, norm, q/k/v, attention
  // out, two FFN branches), Q8 copies of activations, logits, attention
  // tiles. A stated upper estimate, not a measurement.
  const uint64_t b = std::min<uint64_t>(n_batch, std::max<uint64_t>(n_ctx, 1));
  uint64_t width = 4 * s.n_embd + 2 * s.n_head * s.head_dim + 3 * std::max(s.n_ff, s.n_expert_used * s.n_ff_exp);
  // A mixture: router probabilities, inputs grouped by expert, the attention
  // and router matmuls' two rows per token (HParams::precise_routing_inputs).
  if (s.n_expert > 0) width += s.n_expert + s.n_expert_used * s.n_embd + 4 * std::max(s.n_embd, s.n_head * s.head_dim);
  // Logits: one row per sequence (a decode asking for more grows them).
  const uint64_t logit_rows = std::min<uint64_t>(b, std::max<uint64_t>(n_seq, 1));
  m.scratch = b * width * 4 + b * (s.n_embd + s.n_ff) * 2 + logit_rows * s.n_vocab * 4 + (16u << 20);
  return m;
}

std::string_view file_type_name(uint64_t ft) {
  // llama_ftype (llama.h); 4-6 and 33-35 are retired ids.
  switch (ft) {
    case 0: return "F32";
    case 1: return "F16";
    case 2: return "Q4_0";
    case 3: return "Q4_1";
    case 7: return "Q8_0";
    case 8: return "Q5_0";
    case 9: return "Q5_1";
    case 10: return "Q2_K";
    case 11: return "Q3_K_S";
    case 12: return "Q3_K_M";
    case 13: return "Q3_K_L";
    case 14: return "Q4_K_S";
    case 15: return "Q4_K_M";
    case 16: return "Q5_K_S";
    case 17: return "Q5_K_M";
    case 18: return "Q6_K";
    case 19: return "IQ2_XXS";
    case 20: return "IQ2_XS";
    case 21: return "Q2_K_S";
    case 22: return "IQ3_XS";
    case 23: return "IQ3_XXS";
    case 24: return "IQ1_S";
    case 25: return "IQ4_NL";
    case 26: return "IQ3_S";
    case 27: return "IQ3_M";
    case 28: return "IQ2_S";
    case 29: return "IQ2_M";
    case 30: return "IQ4_XS";
    case 31: return "IQ1_M";
    case 32: return "BF16";
    case 36: return "TQ1_0";
    case 37: return "TQ2_0";
    case 38: return "MXFP4_MOE";
    default: return "unknown";
  }
}

}  // namespace codey
