// Model loading: hyper-parameters from GGUF metadata, tensors checked for
// shape and type and used in place from the mapping.
#include <sys/mman.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "codey/model.h"
#include "model/blocks.h"
#include "model/tensors.h"

namespace codey {
namespace {

Result<int64_t> req_int(const GgufFile& file, std::string_view suffix) {
  auto v = file.get_u64(file.arch_key(suffix));
  if (!v) return std::unexpected(std::move(v.error()));
  return static_cast<int64_t>(*v);
}

Result<int64_t> opt_int(const GgufFile& file, std::string_view suffix, int64_t dflt) {
  auto v = file.get_u64_or(file.arch_key(suffix), static_cast<uint64_t>(dflt));
  if (!v) return std::unexpected(std::move(v.error()));
  return static_cast<int64_t>(*v);
}

Status read_common_hparams(const GgufFile& file, HParams& hp) {
  CODEY_TRY_ASSIGN(hp.n_layer, req_int(file, "block_count"));
  CODEY_TRY_ASSIGN(hp.n_embd, req_int(file, "embedding_length"));
  CODEY_TRY_ASSIGN(hp.n_ff, req_int(file, "feed_forward_length"));
  CODEY_TRY_ASSIGN(hp.n_head, req_int(file, "attention.head_count"));
  CODEY_TRY_ASSIGN(hp.n_head_kv, opt_int(file, "attention.head_count_kv", hp.n_head));
  CODEY_TRY_ASSIGN(hp.n_ctx_train, opt_int(file, "context_length", 2048));
  if (hp.n_layer <= 0 || hp.n_embd <= 0 || hp.n_ff <= 0 || hp.n_head <= 0 || hp.n_head_kv <= 0)
    return make_error(ErrorCode::kCorrupt, "hyper-parameters must be positive (layers {}, n_embd {}, n_ff {}, heads {}/{})",
                      hp.n_layer, hp.n_embd, hp.n_ff, hp.n_head, hp.n_head_kv);
  if (hp.n_head % hp.n_head_kv != 0)
    return make_error(ErrorCode::kUnsupported, "head_count {} is not a multiple of head_count_kv {}", hp.n_head,
                      hp.n_head_kv);
  CODEY_TRY_ASSIGN(hp.head_dim_k, opt_int(file, "attention.key_length", hp.n_embd / hp.n_head));
  CODEY_TRY_ASSIGN(hp.head_dim_v, opt_int(file, "attention.value_length", hp.head_dim_k));
  if (hp.head_dim_k <= 0 || hp.head_dim_v <= 0 || hp.head_dim_k > kernels::kMaxHeadDim ||
      hp.head_dim_v > kernels::kMaxHeadDim)
    return make_error(ErrorCode::kUnsupported, "head dims {}/{} are outside 1..{}", hp.head_dim_k, hp.head_dim_v,
                      kernels::kMaxHeadDim);
  CODEY_TRY_ASSIGN(hp.rms_eps, file.get_f32_or(file.arch_key("attention.layer_norm_rms_epsilon"), 1e-5f));

  int64_t n_rot = 0;
  CODEY_TRY_ASSIGN(n_rot, opt_int(file, "rope.dimension_count", hp.head_dim_k));
  if (n_rot <= 0 || n_rot > hp.head_dim_k || n_rot % 2 != 0)
    return make_error(ErrorCode::kUnsupported, "rope.dimension_count {} must be even and at most the head dim {}", n_rot,
                      hp.head_dim_k);
  hp.n_rot = static_cast<int32_t>(n_rot);
  CODEY_TRY_ASSIGN(hp.rope_freq_base, file.get_f32_or(file.arch_key("rope.freq_base"), 10000.0f));

  // Rope scaling: rope.scaling.type (+ factor), or the older rope.scale_linear.
  std::string_view scaling = "none";
  CODEY_TRY_ASSIGN(scaling, file.get_string_or(file.arch_key("rope.scaling.type"), "none"));
  float factor = 0.0f;
  CODEY_TRY_ASSIGN(factor, file.get_f32_or(file.arch_key("rope.scaling.factor"), 0.0f));
  float legacy_linear = 0.0f;
  CODEY_TRY_ASSIGN(legacy_linear, file.get_f32_or(file.arch_key("rope.scale_linear"), 0.0f));
  if (scaling == "none" && legacy_linear > 0.0f && legacy_linear != 1.0f) {
    scaling = "linear";
    factor = legacy_linear;
  }
  hp.rope_n_ctx_orig = static_cast<int32_t>(hp.n_ctx_train);
  if (scaling == "none" || factor == 0.0f || factor == 1.0f) {
    hp.rope_scaling = RopeScaling::kNone;
  } else if (scaling == "linear") {
    hp.rope_scaling = RopeScaling::kLinear;
    hp.rope_freq_scale = 1.0f / factor;
  } else if (scaling == "yarn") {
    hp.rope_scaling = RopeScaling::kYarn;
    hp.rope_freq_scale = 1.0f / factor;
    hp.yarn_ext_factor = 1.0f;
    int64_t orig = 0;
    CODEY_TRY_ASSIGN(orig, opt_int(file, "rope.scaling.original_context_length", hp.n_ctx_train));
    hp.rope_n_ctx_orig = static_cast<int32_t>(orig);
    CODEY_TRY_ASSIGN(hp.yarn_beta_fast, file.get_f32_or(file.arch_key("rope.scaling.yarn_beta_fast"), 32.0f));
    CODEY_TRY_ASSIGN(hp.yarn_beta_slow, file.get_f32_or(file.arch_key("rope.scaling.yarn_beta_slow"), 1.0f));
    float log_mul = 0.0f;
    CODEY_TRY_ASSIGN(log_mul, file.get_f32_or(file.arch_key("rope.scaling.yarn_log_multiplier"), 0.0f));
    if (log_mul != 0.0f)
      return make_error(ErrorCode::kUnsupported, "rope.scaling.yarn_log_multiplier is not supported yet");
  } else {
    return make_error(ErrorCode::kUnsupported, "rope scaling type '{}' is not supported (codey handles linear and yarn)",
                      scaling);
  }

  hp.attn_scale = 1.0f / std::sqrt(static_cast<float>(hp.head_dim_k));
  CODEY_TRY_ASSIGN(hp.attn_softcap, file.get_f32_or(file.arch_key("attn_logit_softcapping"), 0.0f));
  CODEY_TRY_ASSIGN(hp.final_softcap, file.get_f32_or(file.arch_key("final_logit_softcapping"), 0.0f));
  hp.swa_layers.assign(static_cast<size_t>(hp.n_layer), false);
  return {};
}

}  // namespace

Result<std::unique_ptr<Model>> Model::load(const std::string& path, const ModelLoadOptions& options) {
  auto file = GgufFile::open(path);
  if (!file) return std::unexpected(std::move(file.error()));
  auto model = from_gguf(std::move(*file), options);
  if (!model) return std::unexpected(std::move(model.error()).with_context(path));
  if (options.lock_memory) {
    // Repacked: the matrices live in the arena; locking the whole mapping
    // would read the released pages back in and pin a second copy.
    Model& md = **model;
    bool ok = true;
    if (md.repacked()) {
      ok = md.packed_.lock();
    } else {
      for (size_t i = 0; i < md.file_.n_parts(); ++i)
        if (const MappedFile* mf = md.file_.part(i).mapping.get()) ok = mf->lock() && ok;
    }
    if (!ok) log_warn("{}: could not lock the weights in memory (RLIMIT_MEMLOCK?)", path);
  }
  return model;
}

Result<std::unique_ptr<Model>> Model::from_gguf(GgufFile file, const ModelLoadOptions& options) {
  std::unique_ptr<Model> m(new Model(std::move(file)));
  m->kt_ = options.kernels ? options.kernels : &kernels::kernels();
  auto arch = m->file_.architecture();
  if (!arch) return std::unexpected(std::move(arch.error()));
  m->arch_ = find_arch(*arch);
  if (!m->arch_) {
    std::string names;
    for (auto n : supported_archs()) names += fmt::format("{}{}", names.empty() ? "" : ", ", n);
    return make_error(ErrorCode::kUnsupported, "architecture '{}' is not supported (codey runs {})", *arch, names);
  }
  m->hp_.arch = std::string(*arch);
  if (m->file_.split_count() > m->file_.n_parts())
    return make_error(ErrorCode::kInvalidArgument,
                      "{} is one part of a model split in {} files; open it by its path so that every part is read",
                      m->file_.name(), m->file_.split_count());
  CODEY_TRY(read_common_hparams(m->file_, m->hp_));
  CODEY_TRY(m->arch_->load_hparams(m->file_, m->hp_));
  CODEY_TRY(m->load_tensors());
  if (options.repack) m->repack_weights(options.release_source);
  return m;
}

// Matrices go to the kernel table's own layout once, at load (rows
// interleaved so one SIMD pass yields several outputs). A repacked matrix's
// file pages are never read again, so they are released from this process:
// resident memory holds one copy of the weights. ModelLoadOptions::repack =
// false or CODEY_REPACK=0 keep the plain layout.
void Model::repack_weights(bool release_source) {
  const auto& kt = *kt_;
  const char* env = std::getenv("CODEY_REPACK");
  if (!kt.repack || (env && std::string_view(env) == "0")) return;
  std::vector<kernels::Matrix*> mats;
  for_each_matrix(w_, [&](kernels::Matrix& m, int64_t, bool) { mats.push_back(&m); });
  const long page = sysconf(_SC_PAGESIZE);
  // The part of the file (split models have several) whose bytes hold p.
  auto part_of = [&](const uint8_t* p) -> size_t {
    for (size_t i = 0; i < file_.n_parts(); ++i) {
      const auto b = file_.part(i).bytes;
      if (p >= b.data() && p < b.data() + b.size()) return i;
    }
    return file_.n_parts();
  };
  std::mutex mu;
  ThreadPool pool(0);
  pool.parallel_for(static_cast<int64_t>(mats.size()), 1, [&](int64_t i0, int64_t i1, int) {
    for (int64_t i = i0; i < i1; ++i) {
      kernels::Matrix& m = *mats[static_cast<size_t>(i)];
      const std::vector<uint8_t> packed = kt.repack(m);
      if (packed.empty()) continue;
      // Into huge pages: generation streams every matrix once per token.
      uint8_t* dst = packed_.allocate(packed.size());
      if (!dst) continue;  // out of memory: this matrix keeps the plain layout
      std::memcpy(dst, packed.data(), packed.size());
      m.packed = dst;
      std::lock_guard lock(mu);
      repacked_bytes_ += packed.size();
      if (&m == &w_.output && w_.tied_output) continue;  // token_embd rows are still looked up
      const size_t part = part_of(m.data);
      if (part == file_.n_parts()) continue;
      const MappedFile* mapping = file_.part(part).mapping.get();
      if (!mapping && !release_source) continue;  // the caller's bytes: leave them
      const auto begin = (reinterpret_cast<uintptr_t>(m.data) + page - 1) / page * page;
      const auto end = (reinterpret_cast<uintptr_t>(m.data) + m.row_bytes * static_cast<size_t>(m.rows)) / page * page;
      if (end <= begin) continue;
      // File pages: dropped from this process (the page cache may keep them).
      // An owned anonymous copy: freed (the pages read as zeros if touched).
      madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
      released_bytes_ += end - begin;
      if (mapping)
        released_.push_back({part, begin - reinterpret_cast<uintptr_t>(mapping->bytes().data()), end - begin});
    }
  });
}

size_t Model::mapped_resident_bytes() const {
  size_t n = 0;
  for (size_t i = 0; i < file_.n_parts(); ++i) {
    const MappedFile* mf = file_.part(i).mapping.get();
    if (!mf) continue;
    size_t part_n = mf->resident_bytes();
    for (const Released& r : released_)
      if (r.part == i) part_n -= std::min(part_n, mf->resident_bytes(r.offset, r.length));
    n += part_n;
  }
  return n;
}

Status Model::load_tensors() {
  const HParams& hp = hp_;
  TensorLoader ld(file_, hp_, owned_f32_);
  const GgufTensorInfo* emb = file_.find_tensor("token_embd.weight");
  if (!emb) return make_error(ErrorCode::kCorrupt, "tensor token_embd.weight is missing");
  if (emb->n_dims != 2 || emb->ne[0] != hp.n_embd)
    return make_error(ErrorCode::kCorrupt, "tensor token_embd.weight has shape [{}, {}], expected [{}, n_vocab]",
                      emb->ne[0], emb->ne[1], hp.n_embd);
  if (!kernels::matmul_supports(emb->type))
    return make_error(ErrorCode::kUnsupported, "tensor token_embd.weight has type {}, which codey does not support yet",
                      type_name(emb->type));
  hp_.n_vocab = emb->ne[1];
  w_.token_embd = file_.view(*emb);
  CODEY_TRY(ld.vector("output_norm.weight", hp.n_embd, true, w_.output_norm));
  CODEY_TRY(ld.matrix("output.weight", hp.n_vocab, hp.n_embd, false, w_.output));
  if (!w_.output.data) {
    w_.output = kernels::Matrix::from_view(w_.token_embd);
    w_.tied_output = true;
  }
  const float* rope_freqs = nullptr;
  CODEY_TRY(ld.vector("rope_freqs.weight", hp.n_rot / 2, false, rope_freqs));

  w_.layers.resize(static_cast<size_t>(hp.n_layer));
  for (int64_t il = 0; il < hp.n_layer; ++il) {
    LayerWeights& L = w_.layers[static_cast<size_t>(il)];
    if (arch_->load_layer) CODEY_TRY(arch_->load_layer(ld, il, L));
    else CODEY_TRY(ld.load_table(arch_->layer_tensors, il, L));
    L.rope_freqs = rope_freqs;
  }
  count_parameters();
  return {};
}

// All parameters and bytes of the file; what a token reads: every matrix but
// the experts it is not routed to (n_expert_used of n_expert per layer), the
// output matrix and one embedding row.
void Model::count_parameters() {
  for (const auto& t : file_.tensors()) {
    weight_bytes_ += t.n_bytes;
    n_params_ += static_cast<uint64_t>(t.ne[0] * t.ne[1] * t.ne[2] * t.ne[3]);
  }
  double skipped_params = 0, active_bytes = static_cast<double>(w_.token_embd.row_size());
  const double unused = hp_.n_expert > 0 ? 1.0 - static_cast<double>(hp_.n_expert_used) / static_cast<double>(hp_.n_expert) : 0.0;
  for (const WeightMatrix& wm : w_.matrices()) {
    const kernels::Matrix& m = *wm.matrix;
    const double bytes = static_cast<double>(m.row_bytes) * static_cast<double>(m.rows);
    const double params = static_cast<double>(m.rows) * static_cast<double>(m.cols);
    active_bytes += wm.expert ? bytes * (1.0 - unused) : bytes;
    if (wm.expert) skipped_params += params * unused;
    if (wm.layer < 0) output_ops_ += 2.0 * params;
    else layer_ops_ += 2.0 * (wm.expert ? params * (1.0 - unused) : params);
  }
  n_active_params_ = n_params_ - static_cast<uint64_t>(skipped_params + 0.5);
  active_weight_bytes_ = static_cast<uint64_t>(active_bytes + 0.5);
}

std::string Model::describe() const {
  const HParams& hp = hp_;
  return fmt::format("{} {}L {}d {}h/{}kv hd{} ff{} vocab{}", hp.arch, hp.n_layer, hp.n_embd, hp.n_head, hp.n_head_kv,
                     hp.head_dim_k, hp.n_ff, hp.n_vocab);
}

}  // namespace codey
