// Quantization targets and the per-tensor type recipe (Q4_K_M and friends):
// the same choices as the reference quantizer, so "Q4_K_M" means the mix
// users know (attn_v / ffn_down layers and the output at Q6_K, fallbacks for
// rows that are not a multiple of 256).
#include <algorithm>
#include <cctype>

#include <fmt/ranges.h>

#include "codey/convert.h"

namespace codey {
namespace {

using T = TensorType;

struct TargetDef {
  std::string_view name;
  T base;
  uint32_t file_type;  // llama_ftype
  bool mix;            // a recipe (vs. one type for every weight)
};

// llama_ftype ids: F32 0, F16 1, Q4_0 2, Q4_1 3, Q8_0 7, Q5_0 8, Q5_1 9, Q2_K 10,
// Q3_K_S 11, Q3_K_M 12, Q3_K_L 13, Q4_K_S 14, Q4_K_M 15, Q5_K_S 16, Q5_K_M 17,
// Q6_K 18, IQ4_NL 25, IQ4_XS 30, BF16 32.
constexpr TargetDef kTargets[] = {
    {"F32", T::kF32, 0, false},       {"F16", T::kF16, 1, false},       {"BF16", T::kBF16, 32, false},
    {"Q4_0", T::kQ4_0, 2, true},      {"Q4_1", T::kQ4_1, 3, true},      {"Q5_0", T::kQ5_0, 8, true},
    {"Q5_1", T::kQ5_1, 9, true},      {"Q8_0", T::kQ8_0, 7, true},      {"Q2_K", T::kQ2_K, 10, true},
    {"Q3_K_S", T::kQ3_K, 11, true},   {"Q3_K_M", T::kQ3_K, 12, true},   {"Q3_K_L", T::kQ3_K, 13, true},
    {"Q4_K_S", T::kQ4_K, 14, true},   {"Q4_K_M", T::kQ4_K, 15, true},   {"Q5_K_S", T::kQ5_K, 16, true},
    {"Q5_K_M", T::kQ5_K, 17, true},   {"Q6_K", T::kQ6_K, 18, true},     {"IQ4_NL", T::kIQ4_NL, 25, true},
    {"IQ4_XS", T::kIQ4_XS, 30, true},
    // Single K-quant types without a recipe ("pure"): every weight in this type.
    {"Q3_K", T::kQ3_K, 12, false},    {"Q4_K", T::kQ4_K, 15, false},    {"Q5_K", T::kQ5_K, 17, false},
};

std::string upper(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

bool contains(std::string_view s, std::string_view part) { return s.find(part) != std::string_view::npos; }

// The reference's use_more_bits: the first and last eighth of the layers and
// every third one in between get more bits.
bool use_more_bits(int64_t i, int64_t n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

// Rows that are not a multiple of a K-quant's 256 fall back to a 32-block type
// of similar size (the reference's choice), then to F16.
T fallback_type(T t) {
  switch (t) {
    case T::kQ2_K: case T::kQ3_K: case T::kIQ4_XS: return T::kIQ4_NL;
    case T::kQ4_K: return T::kQ5_0;
    case T::kQ5_K: return T::kQ5_1;
    case T::kQ6_K: return T::kQ8_0;
    default: return T::kF16;
  }
}

}  // namespace

Result<QuantTarget> parse_quant_target(std::string_view name) {
  const std::string u = upper(name);
  for (const auto& t : kTargets)
    if (t.name == u) return QuantTarget{std::string(t.name), t.base, t.file_type};
  return make_error(ErrorCode::kInvalidArgument, "unknown quantization type '{}' (expected one of: {})", name,
                    fmt::format("{}", fmt::join(quant_target_names(), ", ")));
}

std::vector<std::string> quant_target_names() {
  std::vector<std::string> names;
  for (const auto& t : kTargets) names.emplace_back(t.name);
  return names;
}

RecipeContext recipe_context(const GgufFile& file) {
  RecipeContext ctx;
  if (auto a = file.architecture()) ctx.arch = std::string(*a);
  if (auto n = file.get_u64(file.arch_key("block_count"))) ctx.n_layer = static_cast<int64_t>(*n);
  auto heads = file.get_u64(file.arch_key("attention.head_count"));
  auto kv = file.get_u64(file.arch_key("attention.head_count_kv"));
  if (heads && kv && *kv > 0) ctx.n_gqa = static_cast<int64_t>(*heads / *kv);
  if (auto n = file.get_u64(file.arch_key("expert_count"))) ctx.n_expert = static_cast<int64_t>(*n);
  for (const auto& t : file.tensors()) {
    if (t.name == "output.weight") ctx.has_output = true;
    if (contains(t.name, "attn_v.weight")) ++ctx.n_attention_wv;
    if (contains(t.name, "ffn_down")) ++ctx.n_ffn_down;
  }
  return ctx;
}

std::optional<QuantRecipe::Choice> QuantRecipe::choose(std::string_view name, std::span<const int64_t> ne,
                                                       TensorType source_type) {
  (void)source_type;
  // Only 2-D+ weights are quantized; norms, biases and 1-D tensors stay as they are.
  if (ne.size() < 2 || !name.ends_with("weight") || contains(name, "_norm.weight")) return std::nullopt;
  // A mixture's router stays as it is: its logits pick the experts.
  if (contains(name, "ffn_gate_inp.weight")) return std::nullopt;
  const std::string& ft = target_.name;
  const bool mix = [&] {
    for (const auto& t : kTargets)
      if (t.name == ft) return t.mix;
    return false;
  }();
  T type = target_.base_type;
  const bool quantized_base = type_traits(type).block_size > 1;
  if (mix && quantized_base) {
    const bool falcon = ctx_.arch == "falcon";
    if (name == "output.weight" || (!ctx_.has_output && name == "token_embd.weight")) {
      if (falcon || ne[0] % 256 != 0) type = T::kQ8_0;
      else if (type != T::kQ8_0) type = T::kQ6_K;
    } else if (contains(name, "attn_v.weight")) {
      const int64_t i = i_attention_wv_++, n = ctx_.n_attention_wv;
      if (ft == "Q2_K") type = ctx_.n_gqa >= 4 ? T::kQ4_K : T::kQ3_K;
      else if (ft == "Q3_K_M") type = i < 2 ? T::kQ5_K : T::kQ4_K;
      else if (ft == "Q3_K_L") type = T::kQ5_K;
      else if ((ft == "IQ4_NL" || ft == "IQ4_XS") && ctx_.n_gqa >= 4) type = T::kQ5_K;
      else if ((ft == "Q4_K_M" || ft == "Q5_K_M") && use_more_bits(i, n)) type = T::kQ6_K;
      else if (ft == "Q4_K_S" && i < 4) type = T::kQ5_K;
      if (ctx_.n_expert == 8) type = T::kQ8_0;  // the reference: "trades just ~128MB" for 8-expert models
    } else if (contains(name, "attn_k.weight") && ctx_.n_expert == 8) {
      type = T::kQ8_0;
    } else if (contains(name, "ffn_down")) {
      const int64_t i = i_ffn_down_++, n = ctx_.n_ffn_down;
      if (ft == "Q2_K") type = T::kQ3_K;
      else if (ft == "Q3_K_M") type = i < n / 16 ? T::kQ5_K : (!falcon || use_more_bits(i, n)) ? T::kQ4_K : T::kQ3_K;
      else if (ft == "Q3_K_L") type = falcon ? T::kQ4_K : T::kQ5_K;
      else if (ft == "Q4_K_M") {
        if (falcon) type = i < n / 16 ? T::kQ6_K : use_more_bits(i, n) ? T::kQ5_K : T::kQ4_K;
        else if (use_more_bits(i, n)) type = T::kQ6_K;
      } else if ((ft == "IQ4_NL" || ft == "IQ4_XS") && i < n / 8) type = T::kQ5_K;  // no importance matrix here
      else if (ft == "Q5_K_M" && use_more_bits(i, n)) type = T::kQ6_K;
      else if (ft == "Q4_K_S" && !falcon && i < n / 8) type = T::kQ5_K;
    } else if (contains(name, "attn_output.weight")) {
      if (!falcon && ctx_.n_expert == 8) {
        if (ft == "Q2_K" || ft == "Q3_K_S" || ft == "Q3_K_M" || ft == "Q4_K_S" || ft == "Q4_K_M") type = T::kQ5_K;
      } else if (!falcon) {
        if (ft == "Q2_K") type = T::kQ3_K;
        else if (ft == "Q3_K_M") type = T::kQ4_K;
        else if (ft == "Q3_K_L") type = T::kQ5_K;
      }
    } else if (contains(name, "attn_qkv.weight")) {
      if (ft == "Q3_K_M" || ft == "Q3_K_L") type = T::kQ4_K;
      else if (ft == "Q4_K_M") type = T::kQ5_K;
      else if (ft == "Q5_K_M") type = T::kQ6_K;
    }
  }
  Choice choice{type, {}};
  while (ne[0] % type_traits(choice.type).block_size != 0) {
    const T fb = fallback_type(choice.type);
    choice.note = fmt::format("{}: row length {} is not a multiple of {}'s block of {}; using {}", name, ne[0],
                              type_name(choice.type), type_traits(choice.type).block_size, type_name(fb));
    choice.type = fb;
  }
  return choice;
}

}  // namespace codey
