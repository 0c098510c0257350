// Transformer models loaded from GGUF (llama, qwen2, gemma3) and the Context
// that runs forward passes over batches of tokens of one or more sequences.
#pragma once

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
  // f32 vectors (null when the file has none)
  const float* bq = nullptr;  // [n_head*dk]
  const float* bk = nullptr;  // [n_head_kv*dk]
  const float* bv = nullptr;  // [n_head_kv*dv]
  const float* bo = nullptr;  // [n_embd]
  const float* attn_norm = nullptr;       // [n_embd]
  const float* ffn_norm = nullptr;        // [n_embd]
  const float* attn_post_norm = nullptr;  // [n_embd] (gemma)
  const float* ffn_post_norm = nullptr;   // [n_embd] (gemma)
  const float* q_norm = nullptr;          // [head_dim_k] (gemma)
  const float* k_norm = nullptr;          // [head_dim_k] (gemma)
  const float* rope_freqs = nullptr;      // [n_rot/2] (llama 3 rope_freqs.weight, shared)
};

struct ModelWeights {
  TensorView token_embd;      // [n_vocab][n_embd], any supported type
  const float* output_norm = nullptr;
  kernels::Matrix output;     // [n_vocab][n_embd]; token_embd when tied
  bool tied_output = false;
  std::vector<LayerWeights> layers;
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
};

class Model;
struct Forward;

// What an architecture contributes: its hyper-parameter rules and its layer,
// composed of the shared blocks (src/model/blocks.h). One per file in
// src/model/arch/.
struct ArchSpec {
  std::string_view name;
  // Fills arch-specific hparams after the common keys were read.
  Status (*load_hparams)(const GgufFile& file, HParams& hp);
  // Tensors a layer must have beyond the common attention/FFN set.
  bool needs_qk_norm = false;
  bool needs_post_norms = false;
  // One transformer layer over the batch in f.x (the residual stream).
  void (*layer)(Forward& f, int64_t il);
};
const ArchSpec* find_arch(std::string_view name);
std::vector<std::string_view> supported_archs();

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
  // "llama 4L 256d 8h/4kv ff768 vocab32256"
  std::string describe() const;

 private:
  explicit Model(GgufFile file) : file_(std::move(file)) {}
  Status load_tensors();
  void repack_weights(bool release_source);

  GgufFile file_;
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
  uint64_t n_params_ = 0;
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
  std::vector<float> gate_;     // [n_batch][n_ff]
  std::vector<float> up_;       // [n_batch][n_ff]
  std::vector<float> logits_;   // [n_batch][n_vocab]
  std::vector<int32_t> pos_;    // [n_batch]
  std::vector<int32_t> out_rows_;  // [n_batch] batch index of each output
  std::vector<int64_t> seq_added_; // [n_seq] tokens of each sequence in the batch
  std::vector<uint8_t> workspace_;  // kernel scratch (matmul_workspace max)
};

}  // namespace codey
