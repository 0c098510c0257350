// Transformer models loaded from GGUF (llama, qwen2, gemma3, ...) and the
// Context that runs forward passes over batches of tokens of one or more
// sequences. Each architecture is one file in src/model/arch/: its
// hyper-parameter rules, the table of its tensors, its layer.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "codey/base.h"
#include "codey/gguf.h"
#include "codey/kernels.h"
#include "codey/kv.h"
#include "codey/thread_pool.h"

namespace codey {

enum class RopeScaling { kNone, kLinear, kYarn };
enum class FfnActivation { kSilu, kGeluTanh };

// Hyper-parameters, all from the GGUF metadata (names follow its keys).
struct HParams {
  std::string arch;
  int64_t n_vocab = 0;      // rows of token_embd.weight
  int64_t n_ctx_train = 0;
  int64_t n_embd = 0;
  int64_t n_layer = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim_k = 0;   // attention.key_length (default n_embd / n_head)
  int64_t head_dim_v = 0;   // attention.value_length
  int64_t n_ff = 0;
  float rms_eps = 1e-5f;

  // Mixture of experts (0 = a dense FFN).
  int64_t n_expert = 0;       // expert_count
  int64_t n_expert_used = 0;  // expert_used_count: experts each token is routed to
  int64_t n_ff_exp = 0;       // expert_feed_forward_length: rows of one expert's gate/up
  // Attention projections and the router with activations carried to ~16
  // bits (blocks::linear_precise) instead of the kernels' 8: a mixture's
  // top-k routing is discontinuous, and 8-bit rounding noise upstream flips
  // near-tied expert choices.
  bool precise_routing_inputs = false;

  // Rotary embedding of global (full-attention) layers.
  int32_t n_rot = 0;        // rope.dimension_count (default head_dim_k)
  bool rope_neox = false;   // split-halves pairs (qwen2, gemma3) vs adjacent (llama)
  float rope_freq_base = 10000.0f;
  float rope_freq_scale = 1.0f;  // 1 / rope.scaling.factor for linear and yarn
  RopeScaling rope_scaling = RopeScaling::kNone;
  int32_t rope_n_ctx_orig = 0;   // yarn: rope.scaling.original_context_length
  float yarn_ext_factor = 0.0f;  // 1 when yarn
  float yarn_attn_factor = 1.0f;
  float yarn_beta_fast = 32.0f;
  float yarn_beta_slow = 1.0f;

  // Sliding-window ("local") layers: their own window and rope.
  int32_t sliding_window = 0;     // 0 = none
  std::vector<bool> swa_layers;   // [n_layer]: true = local layer
  float rope_freq_base_swa = 10000.0f;
  float rope_freq_scale_swa = 1.0f;

  float attn_scale = 0.0f;        // applied to q·k (1/sqrt(head_dim_k) unless the arch says otherwise)
  float attn_softcap = 0.0f;      // 0 = off
  float final_softcap = 0.0f;     // 0 = off
  float embed_scale = 1.0f;       // gemma: sqrt(n_embd)
  FfnActivation ffn_act = FfnActivation::kSilu;

  bool is_swa(int64_t il) const { return sliding_window > 0 && swa_layers[static_cast<size_t>(il)]; }
};

struct LayerWeights {
  kernels::Matrix wq, wk, wv, wo;               // [n_head*dk][n_embd], ..., wo [n_embd][n_head*dv]
  kernels::Matrix ffn_gate, ffn_up, ffn_down;   // [n_ff][n_embd] x2, [n_embd][n_ff]
  // Mixture of experts: the router and one matrix per expert (views of the
  // file's 3-D tensors [n_expert][rows][cols], one slice each).
  kernels::Matrix ffn_gate_inp;                             // [n_expert][n_embd]
  std::vector<kernels::Matrix> ffn_gate_exps, ffn_up_exps;  // [n_expert] x [n_ff_exp][n_embd]
  std::vector<kernels::Matrix> ffn_down_exps;               // [n_expert] x [n_embd][n_ff_exp]
  // f32 vectors (null when the file has none)
  const float* bq = nullptr;  // [n_head*dk]
  const float* bk = nullptr;  // [n_head_kv*dk]
  const float* bv = nullptr;  // [n_head_kv*dv]
  const float* bo = nullptr;  // [n_embd]
  const float* attn_norm = nullptr;       // [n_embd]
  const float* ffn_norm = nullptr;        // [n_embd]
  const float* attn_post_norm = nullptr;  // [n_embd] (gemma)
  const float* ffn_post_norm = nullptr;   // [n_embd] (gemma)
  const float* q_norm = nullptr;          // [head_dim_k] (gemma, qwen3)
  const float* k_norm = nullptr;          // [head_dim_k] (gemma, qwen3)
  const float* rope_freqs = nullptr;      // [n_rot/2] (llama 3 rope_freqs.weight, shared)
};

// One weight matrix the forward pass multiplies by (ModelWeights::matrices).
struct WeightMatrix {
  const kernels::Matrix* matrix = nullptr;
  int64_t layer = -1;   // -1: the output matrix
  bool expert = false;  // one expert of a mixture: a token reads n_expert_used of the layer's n_expert
};

struct ModelWeights {
  TensorView token_embd;      // [n_vocab][n_embd], any supported type
  const float* output_norm = nullptr;
  kernels::Matrix output;     // [n_vocab][n_embd]; token_embd when tied
  bool tied_output = false;
  std::vector<LayerWeights> layers;

  // Every matrix of every layer that the file has, then the output matrix:
  // the one list that repacking, the kernels' workspace and the bytes a
  // token reads are computed from.
  std::vector<WeightMatrix> matrices() const;
};

// ---- The tensor table of an architecture ------------------------------------

// Sizes a tensor dimension takes, named after the hyper-parameter they are.
enum class Dim : uint8_t {
  kOne,        // 1
  kEmbd,       // n_embd
  kVocab,      // n_vocab
  kFf,         // n_ff
  kHeadK,      // head_dim_k
  kQ,          // n_head * head_dim_k
  kK,          // n_head_kv * head_dim_k
  kV,          // n_head_kv * head_dim_v
  kAttnOut,    // n_head * head_dim_v
  kRopeFreqs,  // n_rot / 2
  kExpert,     // n_expert
  kFfExp,      // n_ff_exp
};
int64_t dim_size(Dim d, const HParams& hp);

// How `codey synth` and the test models fill a tensor with random values.
enum class TensorInit : uint8_t {
  kWeight,  // Gaussian, std 1 / sqrt(ne0) (the fan-in)
  kNorm,    // ones
  kBias,    // Gaussian, std 0.1
  kOutput,  // Gaussian, std 3 / sqrt(ne0): embeddings and output, so logits are peaked
};

// One tensor of every layer: its GGUF name after "blk.N.", its shape in ggml
// order (ne[0] is the row length: a matrix's input features), and the slot of
// LayerWeights it is loaded into - exactly one of matrix (2-D), vector (1-D,
// f32) and experts (3-D, one matrix per expert).
struct LayerTensor {
  std::string_view name;
  std::array<Dim, 3> ne{Dim::kOne, Dim::kOne, Dim::kOne};
  bool required = true;
  kernels::Matrix LayerWeights::*matrix = nullptr;
  const float* LayerWeights::*vector = nullptr;
  std::vector<kernels::Matrix> LayerWeights::*experts = nullptr;
  TensorInit init = TensorInit::kWeight;
};

// A tensor of a whole model with its name and shape resolved.
struct TensorDesc {
  std::string name;          // "blk.3.attn_q.weight"
  std::vector<int64_t> ne;   // ggml order, trailing ones dropped (a vector has one dim)
  bool required = true;
  TensorInit init = TensorInit::kWeight;
  bool matrix() const { return ne.size() >= 2; }
};

struct ModelLoadOptions {
  bool lock_memory = false;   // mlock the mapping (best effort)
  // Matrices in the kernel table's repacked layout (rows interleaved); false
  // keeps the file's plain layout (the kernels pack on the fly). The
  // environment variable CODEY_REPACK=0 also turns it off.
  bool repack = true;
  // The bytes given to from_gguf are the model's own copy of the file (not a
  // mapping, not the caller's buffer): release the pages of repacked
  // matrices there too, so memory holds one copy of the weights.
  bool release_source = false;
  // The kernel table the model's matrices are laid out for and its contexts
  // compute with (e.g. kernels::kernel_table("ref") to check the SIMD tables
  // against the scalar ones on the same model in one process); null = the
  // process's choice (kernels::kernels(): CODEY_ISA, else the best the CPU runs).
  const kernels::KernelTable* kernels = nullptr;
};

class Model;
struct Forward;
class TensorLoader;

// What an architecture contributes: its hyper-parameter rules, the table of
// its tensors and its layer, composed of the shared blocks
// (src/model/blocks.h). One per file in src/model/arch/, registered in
// src/model/arch/registry.cc.
struct ArchSpec {
  std::string_view name;
  // Fills arch-specific hparams after the common keys were read.
  Status (*load_hparams)(const GgufFile& file, HParams& hp);
  // The tensors of one layer: what the model loads, what `codey synth` and
  // the test models write.
  std::span<const LayerTensor> layer_tensors;
  // Loads layer il into L. nullptr: every entry of layer_tensors
  // (TensorLoader::load_table, the shared default).
  Status (*load_layer)(TensorLoader& loader, int64_t il, LayerWeights& L) = nullptr;
  // One transformer layer over the batch in f.x (the residual stream).
  void (*layer)(Forward& f, int64_t il);
};
const ArchSpec* find_arch(std::string_view name);
std::vector<std::string_view> supported_archs();

// Every tensor a file of this architecture holds at these hyper-parameters
// (n_vocab included), in file order: token_embd, output_norm, output (unless
// tied), then the layers. Optional tensors only with include_optional.
std::vector<TensorDesc> model_tensors(const ArchSpec& arch, const HParams& hp, bool tied_output,
                                      bool include_optional = false);

// Weights used in place from the mapping; immutable after load, so one Model
// can serve several Contexts on different threads.
class Model {
 public:
  static Result<std::unique_ptr<Model>> load(const std::string& path, const ModelLoadOptions& options = {});
  // From an already parsed file (the model takes ownership).
  static Result<std::unique_ptr<Model>> from_gguf(GgufFile file, const ModelLoadOptions& options = {});

  const HParams& hparams() const { return hp_; }
  const ModelWeights& weights() const { return w_; }
  const ArchSpec& arch() const { return *arch_; }
  const GgufFile& gguf() const { return file_; }
  // Bytes of tensor data the forward pass reads (all weights).
  size_t weight_bytes() const { return weight_bytes_; }
  // Bytes of the matrices repacked at load (memory the model allocated).
  size_t repacked_bytes() const { return repacked_bytes_; }
  bool repacked() const { return repacked_bytes_ > 0; }
  // Bytes of the source (mapping or owned copy) released after repacking.
  size_t released_bytes() const { return released_bytes_; }
  // Resident bytes of the file mapping the model still reads: the pages of
  // repacked matrices, released at load, do not count even while the page
  // cache keeps them.
  size_t mapped_resident_bytes() const;
  uint64_t n_params() const { return n_params_; }
  // Parameters one token computes with: all of them less the experts it is
  // not routed to (n_params for a dense model).
  uint64_t n_active_params() const { return n_active_params_; }
  // Bytes of weights one generated token reads from memory: every matrix
  // (of a mixture, the n_expert_used routed experts of each layer), the
  // output matrix and one embedding row. The bandwidth bound of generation.
  uint64_t active_weight_bytes() const { return active_weight_bytes_; }
  // Ops (2 per multiply-add) of one token through every layer's matrices (of
  // a mixture, the routed experts): the compute bound of prompt processing.
  double layer_ops_per_token() const { return layer_ops_; }
  // Ops of the output matrix, for a token whose logits are asked for.
  double output_ops_per_token() const { return output_ops_; }
  // "llama 4L 256d 8h/4kv ff768 vocab32256"
  std::string describe() const;
  // The kernel table this model was loaded for (ModelLoadOptions::kernels).
  const kernels::KernelTable& kernel_table() const { return *kt_; }

 private:
  explicit Model(GgufFile file) : file_(std::move(file)) {}
  Status load_tensors();
  void count_parameters();
  void repack_weights(bool release_source);

  GgufFile file_;
  const kernels::KernelTable* kt_ = nullptr;
  const ArchSpec* arch_ = nullptr;
  HParams hp_;
  ModelWeights w_;
  std::vector<std::vector<float>> owned_f32_;  // 1-D tensors stored in other types, decoded once
  HugePageArena packed_;  // matrices in the kernel table's layout (Matrix::packed)
  size_t repacked_bytes_ = 0, released_bytes_ = 0;
  struct Released {
    size_t part = 0;  // which file of a split model
    size_t offset = 0, length = 0;  // [offset, offset + length) of its mapping, no longer read
  };
  std::vector<Released> released_;
  size_t weight_bytes_ = 0;
  uint64_t n_params_ = 0, n_active_params_ = 0, active_weight_bytes_ = 0;
  double layer_ops_ = 0, output_ops_ = 0;
};

// A batch for one forward pass: tokens of one or more sequences. Each
// sequence's tokens continue it: the i-th token of sequence s in the batch
// goes to position kv.seq_length(s) + i, so positions are implied.
struct Batch {
  std::vector<int32_t> tokens;
  std::vector<int32_t> seq;
  std::vector<uint8_t> want_logits;

  void add(int32_t token, int32_t seq_id, bool logits) {
    tokens.push_back(token);
    seq.push_back(seq_id);
    want_logits.push_back(logits ? 1 : 0);
  }
  void clear() {
    tokens.clear();
    seq.clear();
    want_logits.clear();
  }
  size_t size() const { return tokens.size(); }
};

struct ContextParams {
  int64_t n_ctx = 0;      // positions per sequence; 0 = min(n_ctx_train, 4096)
  int n_seq = 1;          // sequences (slots)
  int64_t n_batch = 512;  // most tokens one decode() takes
  TensorType kv_type = TensorType::kF16;
  int n_threads = 0;      // own pool of this size (0 = usable cores) unless `pool` is given
  ThreadPool* pool = nullptr;  // shared pool (must outlive the context)
};

// Per-use state: the KV cache and activation buffers, sized once at creation;
// decode() does not allocate. Not thread-safe: one thread drives a Context.
class Context {
 public:
  static Result<std::unique_ptr<Context>> create(const Model& model, const ContextParams& params);
  ~Context();

  // Runs the batch through the model and returns the logits of the tokens
  // that asked for them, in batch order: [n_outputs][n_vocab], valid until the
  // next decode. Errors (nothing changed): empty or too large batch, token id
  // out of range, unknown sequence, a sequence that would overflow n_ctx.
  Result<std::span<const float>> decode(const Batch& batch);

  const Model& model() const { return model_; }
  KvCache& kv() { return kv_; }
  const KvCache& kv() const { return kv_; }
  const ContextParams& params() const { return params_; }
  int64_t n_ctx() const { return kv_.n_ctx(); }
  int64_t n_vocab() const { return model_.hparams().n_vocab; }
  ThreadPool& pool() { return *pool_; }
  // Bytes of buffers owned by this context (KV cache + activations).
  size_t memory_bytes() const;

 private:
  friend struct Forward;
  Context(const Model& model, const ContextParams& params) : model_(model), params_(params) {}

  const Model& model_;
  ContextParams params_;
  std::unique_ptr<ThreadPool> own_pool_;
  ThreadPool* pool_ = nullptr;
  KvCache kv_;
  // Activations, rows of n_batch tokens.
  std::vector<float> x_;        // [n_batch][n_embd] residual stream
  std::vector<float> xn_;       // [n_batch][n_embd] normed input of a block
  std::vector<float> tmp_;      // [n_batch][n_embd] block output before the residual add
  std::vector<float> q_;        // [n_batch][n_head*dk]
  std::vector<float> k_;        // [n_batch][n_head_kv*dk]
  std::vector<float> v_;        // [n_batch][n_head_kv*dv]
  std::vector<float> attn_;     // [n_batch][n_head*dv]
  std::vector<float> gate_;     // [n_batch][n_ff] (mixture: [n_batch*n_expert_used][n_ff_exp] when larger)
  std::vector<float> up_;       // same as gate_
  // Mixture of experts (empty for dense models); k = n_expert_used.
  std::vector<float> router_;          // [n_batch][n_expert] router logits, then probabilities
  std::vector<int32_t> route_expert_;  // [n_batch][k] the experts a token is routed to
  std::vector<float> route_weight_;    // [n_batch][k] their weights (sum 1 per token)
  std::vector<int32_t> route_row_;     // [n_batch][k] row of (token, slot) in the grouped order
  std::vector<int64_t> expert_rows_;   // [n_expert + 1] first grouped row of each expert
  std::vector<float> moe_x_;           // [n_batch*k][n_embd] inputs grouped by expert, then the experts' outputs
  std::vector<float> precise_x_;       // [2*n_batch][widest input] rows and their 8-bit remainders (linear_precise)
  std::vector<float> precise_y_;       // [2*n_batch][widest output]
  std::vector<float> logits_;   // [n_batch][n_vocab]
  std::vector<int32_t> pos_;    // [n_batch]
  std::vector<int32_t> out_rows_;  // [n_batch] batch index of each output
  std::vector<int64_t> seq_added_; // [n_seq] tokens of each sequence in the batch
  std::vector<uint8_t> workspace_;  // kernel scratch (matmul_workspace max)
};

}  // namespace codey
