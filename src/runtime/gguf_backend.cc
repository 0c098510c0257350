// The runtime's default model backend: GGUF files run by codey's engine
// (Model + Context + Tokenizer, and a draft model's Drafter when the model
// has one), with memory facts computed from the files.
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <filesystem>

#include <fmt/ranges.h>

#include "codey/gguf.h"
#include "codey/kv.h"
#include "codey/runtime.h"

namespace codey {
namespace {

// Weights read into memory (mmap: false): the GgufFile views point into it.
struct HeapFile {
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  std::unique_ptr<uint8_t, Free> data;
  size_t size = 0;
};

// Progress goes from `done` to `done + 0.9 * size / total` (bytes of all
// the model's files).
Result<HeapFile> read_whole_file(const std::string& path, const std::function<void(double)>& progress,
                                 const std::stop_token& stop, double done = 0, uint64_t total = 0) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return make_error(ErrorCode::kNotFound, "cannot open model file '{}': {}", path, std::strerror(errno));
  std::fseek(f, 0, SEEK_END);
  const long size = std::ftell(f);
  std::fseek(f, 0, SEEK_SET);
  if (size <= 0) {
    std::fclose(f);
    return make_error(ErrorCode::kCorrupt, "model file '{}' is empty", path);
  }
  HeapFile h;
  h.size = static_cast<size_t>(size);
  h.data.reset(static_cast<uint8_t*>(std::aligned_alloc(64, (h.size + 63) / 64 * 64)));
  if (!h.data) {
    std::fclose(f);
    return make_error(ErrorCode::kResourceExhausted, "cannot allocate {} to read '{}'", format_bytes(h.size), path);
  }
  constexpr size_t kChunk = 16u << 20;
  for (size_t off = 0; off < h.size; off += kChunk) {
    if (stop.stop_requested()) {
      std::fclose(f);
      return make_error(ErrorCode::kCancelled, "loading '{}' was cancelled", path);
    }
    const size_t n = std::min(kChunk, h.size - off);
    if (std::fread(h.data.get() + off, 1, n, f) != n) {
      std::fclose(f);
      return make_error(ErrorCode::kIo, "reading '{}' failed at byte {}", path, off);
    }
    if (progress) progress(done + 0.9 * double(off + n) / double(total ? total : h.size));
  }
  std::fclose(f);
  return h;
}

// Reads the files of a split model (mmap: false) into memory and joins them.
struct HeapModel {
  std::vector<HeapFile> files;
  uint64_t size() const {
    uint64_t n = 0;
    for (const auto& f : files) n += f.size;
    return n;
  }
};

Result<std::pair<HeapModel, GgufFile>> read_model(const std::string& path, const std::function<void(double)>& progress,
                                                  const std::stop_token& stop) {
  std::vector<std::string> paths{path};
  uint64_t total = 0;
  {  // the parts of a split model, found as GgufFile::open finds them (mapped only to read the headers)
    auto mapped = GgufFile::open(path);
    if (!mapped) return std::unexpected(std::move(mapped.error()));
    paths.clear();
    for (size_t i = 0; i < mapped->n_parts(); ++i) paths.push_back(mapped->part(i).name);
    total = mapped->file_size();
  }
  HeapModel heap;
  std::vector<GgufFile> parts;
  double done = 0;
  for (const auto& p : paths) {
    auto h = read_whole_file(p, progress, stop, done, total);
    if (!h) return std::unexpected(std::move(h.error()));
    done += 0.9 * double(h->size) / double(total);
    auto file = GgufFile::parse(std::span<const uint8_t>(h->data.get(), h->size), p);
    if (!file) return std::unexpected(std::move(file.error()));
    heap.files.push_back(std::move(*h));
    parts.push_back(std::move(*file));
  }
  auto joined = GgufFile::join(std::move(parts));
  if (!joined) return std::unexpected(std::move(joined.error()));
  return std::pair<HeapModel, GgufFile>(std::move(heap), std::move(*joined));
}

// Reads one byte of every page of the mapping so the weights are resident
// before the first request; reports progress by bytes touched, from `done`
// to `done + 0.9 * size / total`.
Status prefault(const MappedFile& m, const std::function<void(double)>& progress, const std::stop_token& stop,
                double done, uint64_t total) {
  const auto bytes = m.bytes();
  if (bytes.empty()) return {};
  m.advise_willneed();
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  constexpr size_t kChunk = 16u << 20;
  volatile uint8_t sink = 0;
  uint8_t acc = 0;
  for (size_t off = 0; off < bytes.size(); off += kChunk) {
    if (stop.stop_requested()) return make_error(ErrorCode::kCancelled, "loading '{}' was cancelled", m.path());
    const size_t end = std::min(bytes.size(), off + kChunk);
    for (size_t p = off; p < end; p += page) acc ^= bytes[p];
    if (progress) progress(done + 0.9 * double(end) / double(total));
  }
  sink = acc;
  (void)sink;
  return {};
}

// A model's weights: the heap copy of its file(s) when not mapped, and the
// Model whose views point into it (or into the mapping).
struct Weights {
  HeapModel heap;  // declared first: destroyed last
  std::unique_ptr<Model> model;

  // The heap copy less what repacking released, plus the repacked matrices.
  uint64_t owned_bytes() const {
    const uint64_t h = heap.size();
    const uint64_t released = h > 0 ? model->released_bytes() : 0;
    return h - std::min<uint64_t>(released, h) + model->repacked_bytes();
  }
};

// The draft model loaded with a target: its weights and the Drafter that
// runs it in its own context (which refers to the weights: destroyed first).
struct DraftPart {
  Weights weights;
  std::unique_ptr<Drafter> drafter;
  ~DraftPart() { drafter.reset(); }
};

class GgufInstance final : public ModelInstance {
 public:
  GgufInstance(Weights w, Tokenizer tok, std::optional<std::string> tmpl, std::unique_ptr<Context> ctx,
               std::unique_ptr<DraftPart> draft)
      : heap_(std::move(w.heap)),
        model_(std::move(w.model)),
        tok_(std::move(tok)),
        template_(std::move(tmpl)),
        ctx_(std::move(ctx)),
        draft_(std::move(draft)) {
    allocated_ = allocated_now();
  }
  ~GgufInstance() override {
    draft_.reset();  // its context may run on this context's pool
    ctx_.reset();    // the context refers to the model
    model_.reset();
  }

  const Tokenizer& tokenizer() const override { return tok_; }
  std::optional<std::string> chat_template() const override { return template_; }
  int64_t n_ctx() const override { return ctx_->n_ctx(); }
  int n_slots() const override { return ctx_->kv().n_seq(); }
  int64_t n_batch() const override { return ctx_->params().n_batch; }
  int64_t n_vocab() const override { return ctx_->n_vocab(); }
  int64_t seq_length(int slot) const override { return ctx_->kv().seq_length(slot); }
  Status truncate_slot(int slot, int64_t n) override { return ctx_->kv().truncate(slot, n); }
  Status resize_ctx(int64_t n_ctx) override {
    const int64_t before = ctx_->n_ctx();
    CODEY_TRY(ctx_->kv().resize(n_ctx));
    if (draft_) {
      if (auto st = draft_->drafter->resize_ctx(n_ctx); !st) {
        (void)ctx_->kv().resize(before);  // both or neither
        allocated_ = allocated_now();
        return std::unexpected(std::move(st.error()).with_context("the draft model's context"));
      }
    }
    allocated_ = allocated_now();
    return {};
  }
  Result<std::span<const float>> decode(const Batch& batch) override { return ctx_->decode(batch); }
  Memory memory() const override {
    Memory m;
    m.allocated = allocated_.load(std::memory_order_relaxed);
    m.mapped_resident = model_->mapped_resident_bytes();
    if (draft_) m.mapped_resident += draft_->weights.model->mapped_resident_bytes();
    return m;
  }
  Drafter* drafter() override { return draft_ ? draft_->drafter.get() : nullptr; }

 private:
  // The heap copy of the file (mmap: false) less what repacking released,
  // plus the repacked matrices.
  uint64_t owned_weight_bytes() const {
    const uint64_t heap = heap_.size();
    const uint64_t released = heap > 0 ? model_->released_bytes() : 0;
    return heap - std::min<uint64_t>(released, heap) + model_->repacked_bytes();
  }
  uint64_t allocated_now() const {
    uint64_t a = ctx_->memory_bytes() + owned_weight_bytes();
    if (draft_) a += draft_->drafter->memory_bytes() + draft_->weights.owned_bytes();
    return a;
  }

  HeapModel heap_;  // declared first: the model's views point into it, so it is destroyed last
  std::unique_ptr<Model> model_;
  Tokenizer tok_;
  std::optional<std::string> template_;
  std::unique_ptr<Context> ctx_;
  std::unique_ptr<DraftPart> draft_;
  std::atomic<uint64_t> allocated_{0};  // read by status() on other threads
};

// A draft that does not share the target's vocabulary is refused at start-up
// (facts) and again at load (the files may have changed).
Status check_vocab(const GgufFile& target, const GgufFile& draft) {
  auto t = Tokenizer::from_gguf(target);
  if (!t) return std::unexpected(std::move(t.error()));
  auto d = Tokenizer::from_gguf(draft);
  if (!d) return std::unexpected(std::move(d.error()).with_context("the draft's tokenizer"));
  return check_draft_vocabulary(*t, *d);
}

// The configuration with its files as they are now: a `path:` reference
// (hf.co/..., ollama:...) resolved, the draft's too, so a model pulled after
// the config was read is found and a missing one says what to run.
Result<ModelConfig> with_files(const ModelConfig& given) {
  ModelConfig cfg = given;
  auto path = model_file(given);
  if (!path) return std::unexpected(std::move(path.error()));
  cfg.path = *path;
  if (given.draft_model) {
    auto draft = model_file(*given.draft_model);
    if (!draft) return std::unexpected(std::move(draft.error()).with_context("its draft model"));
    auto dc = std::make_shared<ModelConfig>(*given.draft_model);
    dc->path = *draft;
    cfg.draft_model = std::move(dc);
  }
  return cfg;
}

class GgufBackend final : public ModelBackend {
 public:
  // The model's facts; with a draft, its weights, KV cache and scratch (at
  // the model's slots and batch) are counted in: they load and go together.
  Result<ModelFacts> inspect(const ModelConfig& given) override {
    auto resolved = with_files(given);
    if (!resolved) return std::unexpected(std::move(resolved.error()).with_context(fmt::format("model '{}'", given.name)));
    const ModelConfig& cfg = *resolved;
    auto f = file_facts(cfg);
    if (!f || !cfg.draft_model) return f;
    ModelConfig dc = *cfg.draft_model;
    dc.parallel = cfg.parallel;
    dc.batch = cfg.batch;
    auto df = file_facts(dc);
    if (!df) return std::unexpected(std::move(df.error()).with_context(fmt::format("the draft of model '{}'", cfg.name)));
    auto tf = GgufFile::open(cfg.path);
    auto dff = GgufFile::open(dc.path);
    if (!tf || !dff) return make_error(ErrorCode::kIo, "model '{}': cannot reopen its files", cfg.name);
    if (auto st = check_vocab(*tf, *dff); !st)
      return make_error(ErrorCode::kInvalidArgument,
                        "model '{}': the draft model '{}' ({}) does not share its vocabulary: {}", cfg.name, dc.name,
                        dc.path, st.error().message);
    f->weight_bytes += df->weight_bytes;
    f->kv_bytes_per_pos += df->kv_bytes_per_pos;
    f->scratch_bytes += df->scratch_bytes;
    return f;
  }

  // Maps (or reads) a model's file(s) and builds the Model, progress 0..0.9.
  static Result<Weights> load_weights(const ModelConfig& cfg, const std::function<void(double)>& progress,
                                      std::stop_token stop) {
    HeapModel heap;
    std::unique_ptr<Model> model;
    if (cfg.mmap) {
      ModelLoadOptions lo;
      lo.lock_memory = cfg.mlock;
      lo.repack = cfg.repack;
      auto m = Model::load(cfg.path, lo);
      if (!m) return std::unexpected(std::move(m.error()));
      model = std::move(*m);
      // A repacked model has read its matrices and released their file
      // pages; touching the whole mapping again would bring them back.
      if (!model->repacked()) {
        const GgufFile& gf = model->gguf();
        double done = 0;
        for (size_t i = 0; i < gf.n_parts(); ++i) {
          const MappedFile* mf = gf.part(i).mapping.get();
          if (!mf) continue;
          auto st = prefault(*mf, progress, stop, done, gf.file_size());
          if (!st) return std::unexpected(std::move(st.error()));
          done += 0.9 * double(mf->size()) / double(gf.file_size());
        }
      }
    } else {
      auto read = read_model(cfg.path, progress, stop);
      if (!read) return std::unexpected(std::move(read.error()));
      heap = std::move(read->first);
      ModelLoadOptions lo;
      lo.repack = cfg.repack;
      lo.release_source = true;  // the heap copy is the model's own
      auto m = Model::from_gguf(std::move(read->second), lo);
      if (!m) return std::unexpected(std::move(m.error()));
      model = std::move(*m);
    }
    return Weights{std::move(heap), std::move(model)};
  }

  Result<ModelFacts> file_facts(const ModelConfig& cfg) {
    auto file = GgufFile::open(cfg.path);
    if (!file) return std::unexpected(std::move(file.error()).with_context(fmt::format("model '{}'", cfg.name)));
    auto s = summarize(*file);
    if (!s) return std::unexpected(std::move(s.error()).with_context(fmt::format("model '{}'", cfg.name)));
    auto arch = file->architecture();
    if (!arch || !find_arch(*arch))
      return make_error(ErrorCode::kUnsupported, "model '{}': architecture '{}' is not supported (supported: {})",
                        cfg.name, arch ? std::string(*arch) : std::string("(missing)"),
                        fmt::format("{}", fmt::join(supported_archs(), ", ")));
    ModelFacts f;
    f.architecture = s->architecture;
    f.n_params = s->n_params;
    f.file_bytes = s->file_size;
    f.n_ctx_train = static_cast<int64_t>(s->n_ctx_train);
    f.weight_bytes = s->tensor_bytes;
    if (cfg.repack) f.weight_bytes += s->tied_output_copy_bytes;
    KvCacheParams kv;
    kv.n_layer = static_cast<int64_t>(s->n_layer);
    kv.n_head_kv = static_cast<int64_t>(s->n_head_kv);
    kv.head_dim_k = static_cast<int64_t>(s->head_dim);
    kv.head_dim_v = static_cast<int64_t>(s->head_dim_v ? s->head_dim_v : s->head_dim);
    kv.n_ctx = 1;
    kv.n_seq = 1;
    kv.type = cfg.kv_type;
    f.kv_bytes_per_pos = KvCache::bytes_per_position(kv);
    // The scratch term does not depend on the context beyond min(batch, ctx).
    f.scratch_bytes = estimate_memory(*s, static_cast<uint64_t>(cfg.batch), cfg.kv_type,
                                      static_cast<uint64_t>(cfg.parallel), static_cast<uint64_t>(cfg.batch))
                          .scratch;
    return f;
  }

  Result<std::unique_ptr<ModelInstance>> load(const ModelConfig& given, const LoadSpec& spec,
                                              const std::function<void(double)>& progress,
                                              std::stop_token stop) override {
    auto resolved = with_files(given);
    const ModelConfig& cfg = resolved ? *resolved : given;
    auto ctx_err = [&](Error e) { return std::unexpected(std::move(e).with_context(fmt::format("loading model '{}' ({})", cfg.name, cfg.path))); };
    if (!resolved) return ctx_err(std::move(resolved.error()));
    if (progress) progress(0.0);
    // With a draft, progress is shared by file size.
    double share = 1.0;
    if (cfg.draft_model) {
      std::error_code ec;
      const double t = double(std::filesystem::file_size(cfg.path, ec)), d = double(std::filesystem::file_size(cfg.draft_model->path, ec));
      if (t + d > 0) share = t / (t + d);
    }
    auto loaded = load_weights(cfg, [&](double p) { if (progress) progress(p * share); }, stop);
    if (!loaded) return ctx_err(std::move(loaded.error()));
    Weights weights = std::move(*loaded);
    std::unique_ptr<Model>& model = weights.model;
    auto tok = Tokenizer::from_gguf(model->gguf());
    if (!tok) return ctx_err(std::move(tok.error()));
    std::optional<std::string> tmpl;
    if (auto t = model->gguf().get_string("tokenizer.chat_template"); t && !t->empty()) tmpl = std::string(*t);
    ContextParams cp;
    cp.n_ctx = spec.n_ctx;
    cp.n_seq = spec.n_slots;
    cp.n_batch = cfg.batch;
    cp.kv_type = cfg.kv_type;
    cp.n_threads = spec.n_threads;
    cp.pool = spec.pool;
    auto ctx = Context::create(*model, cp);
    if (!ctx) return ctx_err(std::move(ctx.error()));
    std::unique_ptr<DraftPart> draft;
    if (cfg.draft_model) {
      const ModelConfig& dc = *cfg.draft_model;
      auto draft_err = [&](Error e) {
        return ctx_err(std::move(e).with_context(fmt::format("its draft model '{}' ({})", dc.name, dc.path)));
      };
      auto dw = load_weights(dc, [&](double p) { if (progress) progress(share + p * (1.0 - share)); }, stop);
      if (!dw) return draft_err(std::move(dw.error()));
      if (auto st = check_vocab(model->gguf(), dw->model->gguf()); !st)
        return draft_err(Error{ErrorCode::kInvalidArgument,
                               fmt::format("it does not share the model's vocabulary: {}", st.error().message)});
      draft = std::make_unique<DraftPart>();
      draft->weights = std::move(*dw);
      ContextParams dcp = cp;
      dcp.kv_type = dc.kv_type;
      dcp.pool = &(*ctx)->pool();  // drafting and verifying take turns on one pool
      auto d = make_model_drafter(*draft->weights.model, dcp, DraftModelParams{cfg.draft_p_min, model->hparams().n_vocab});
      if (!d) return draft_err(std::move(d.error()));
      draft->drafter = std::move(*d);
    }
    if (progress) progress(1.0);
    return std::make_unique<GgufInstance>(std::move(weights), std::move(*tok), std::move(tmpl), std::move(*ctx),
                                          std::move(draft));
  }
};

}  // namespace

std::shared_ptr<ModelBackend> make_gguf_backend() { return std::make_shared<GgufBackend>(); }

}  // namespace codey
