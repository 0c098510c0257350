// Writing model files: `codey quantize` (type recipes like Q4_K_M, the mixes
// llama.cpp users know) and `codey synth` (random weights in a real
// architecture's shape, for measuring speed without downloads).
#pragma once

#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "codey/base.h"
#include "codey/gguf.h"
#include "codey/tensor.h"

namespace codey {

// A quantization target: a single tensor type, or a named recipe that mixes
// types per tensor role and layer. `file_type` is general.file_type
// (llama_ftype) for the target.
struct QuantTarget {
  std::string name;          // as the user wrote it, upper-case: "Q4_K_M", "Q8_0"
  TensorType base_type;      // type of most 2-D weights
  uint32_t file_type = 0;
};
Result<QuantTarget> parse_quant_target(std::string_view name);
// The names accepted, for help texts.
std::vector<std::string> quant_target_names();

// Model facts the recipe needs (from metadata and tensor names).
struct RecipeContext {
  std::string arch;
  int64_t n_layer = 0;
  bool has_output = false;        // output.weight present (else embeddings are tied)
  int64_t n_attention_wv = 0;     // count of attn_v tensors
  int64_t n_ffn_down = 0;
  int64_t n_gqa = 1;              // n_head / n_head_kv
  int64_t n_expert = 0;           // expert_count (mixtures of experts)
};

// Per-file state of the recipe (layer counters advance as tensors are seen,
// in file order, like the reference quantizer).
class QuantRecipe {
 public:
  QuantRecipe(QuantTarget target, RecipeContext ctx) : target_(std::move(target)), ctx_(std::move(ctx)) {}
  struct Choice {
    TensorType type;
    std::string note;  // non-empty when a fallback was taken
  };
  // The type for a tensor, or nullopt to keep it as it is (1-D, norms).
  // `source_type` is the tensor's type in the input file.
  std::optional<Choice> choose(std::string_view name, std::span<const int64_t> ne, TensorType source_type);

 private:
  QuantTarget target_;
  RecipeContext ctx_;
  int64_t i_attention_wv_ = 0;
  int64_t i_ffn_down_ = 0;
};
RecipeContext recipe_context(const GgufFile& file);

struct QuantizeOptions {
  std::string input, output;
  std::string target;
  int threads = 0;  // 0: usable cores
  bool quiet = false;
};
// Progress: tensor index (1-based), count, name, bytes written so far.
using ProgressFn = std::function<void(size_t i, size_t n, std::string_view name, std::string_view what)>;
struct QuantizeReport {
  uint64_t input_bytes = 0, output_bytes = 0;
  double seconds = 0;
  std::vector<std::string> notes;  // fallbacks taken
};
Result<QuantizeReport> quantize_file(const QuantizeOptions& options, const ProgressFn& progress = {});

// ---- synth ----

// A model shape: GGUF hyper-parameters of a real model.
struct ModelShape {
  std::string name;
  std::string arch;  // llama | qwen2 | gemma3 | qwen3 | qwen3moe
  int64_t n_embd = 0, n_layer = 0, n_head = 0, n_head_kv = 0, n_ff = 0, n_vocab = 0, n_ctx = 0;
  int64_t head_dim = 0;  // 0: n_embd / n_head
  float rope_freq_base = 10000.0f;
  float rope_freq_base_swa = 0;  // gemma3 local layers
  float rms_eps = 1e-6f;
  float rope_scale_linear = 0;   // >0: rope.scaling.type linear with this factor
  bool tied_embeddings = true;
  int64_t sliding_window = 0;
  // Mixture of experts (qwen3moe): experts per layer, routed per token, rows of one expert.
  int64_t n_expert = 0, n_expert_used = 0, n_ff_exp = 0;
};
// The table of named shapes (deepseek-coder-1.3b, qwen2.5-coder-*, qwen3-*, functiongemma-270m, ...).
std::span<const ModelShape> model_shapes();
const ModelShape* find_model_shape(std::string_view name);

struct SynthOptions {
  ModelShape shape;
  std::string target = "F16";  // a tensor type or a recipe (QuantTarget)
  std::string vocab_path;      // copy tokenizer.* from this GGUF; empty: built-in byte-level
  std::string output;
  uint64_t seed = 42;
  int threads = 0;
};
Result<QuantizeReport> synth_model(const SynthOptions& options, const ProgressFn& progress = {});

}  // namespace codey
