// `codey tune`: a sweep of short repeated measurements under a time budget
// (threads, batch, KV type, context fill) and the choices made from them. The
// runs, the machine facts and the statistics are measure's; the report is
// tune_report.cc.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <map>

#include <fmt/ranges.h>

#include "codey/kv.h"
#include "codey/measure.h"
#include "codey/model.h"
#include "codey/tune.h"

namespace codey::tune {

std::string Trial::label() const {
  const char* layout = repacked ? "" : " plain";
  if (kind == TrialKind::kTg) return fmt::format("tg{} @{}{}", tokens, depth, layout);
  return fmt::format("pp{}/b{} @{}{}", tokens, batch, depth, layout);
}

// ------------------------------------------------------------------ sweep --

namespace {

constexpr int64_t kShortDepth = 16;   // "a prompt" before short-context generation
constexpr int64_t kCtxBase = 128;     // the short-context point of the context curve
constexpr int64_t kKvDepth = 4096;    // where f16 and q8_0 KV are compared (capped by the model)
constexpr double kChunkTolerance = 0.10;  // prompt_chunk: smallest batch within this of the best pp
constexpr double kMinGain = 0.02;     // a non-default setting must beat the default by this much

// Budget sizing, richest first; the first whose estimate fits is used.
struct Level {
  int reps;
  double tg_rep_s;   // target seconds of one tg repetition
  int64_t n_pp;      // prompt tokens of one pp repetition
  int n_depths;      // context fills measured
};
constexpr Level kLevels[] = {
    {3, 1.0, 512, 9}, {3, 0.5, 512, 9}, {3, 0.5, 256, 7}, {2, 0.5, 256, 6}, {2, 0.3, 128, 5},
    {2, 0.2, 64, 4},  {2, 0.1, 32, 3},  {2, 0.05, 32, 2},
};

// A setting differs from the default only when it wins beyond noise: its
// interval (mean ± sd) clears the default's and the gain is at least kMinGain.
bool beats(const Stats& cand, const Stats& dflt) {
  return cand.mean - cand.stddev > dflt.mean + dflt.stddev && cand.mean > dflt.mean * (1 + kMinGain);
}

class Tuner {
 public:
  Tuner(const TuneOptions& o, TuneResult& r)
      : o_(o), r_(r), epoch_(Clock::now()), t0_(now()), budget_s_(double(o.budget.count()) / 1000.0) {}

  Status run() {
    r_.machine = measure::detect_machine(o_.cgroup_root, o_.sysfs_cpu_root);
    r_.defaults = o_.defaults;
    if (r_.defaults.threads <= 0) r_.defaults.threads = r_.machine.usable_cores;
    r_.defaults.threads = std::min(r_.defaults.threads, r_.machine.usable_cores);
    r_.chosen = r_.defaults;
    r_.ttft_tokens = o_.ttft_tokens;
    progress("loading the model");
    // The sweep runs on the repacked layout; phase_layout compares the plain
    // one (so a configured 'repack: false' is measured there, not in the
    // defaults-vs-tuned comparison).
    if (!r_.defaults.repack)
      r_.notes.push_back("defaults: 'repack: false' is compared in the layout phase; the other phases use the repacked layout");
    auto m = Model::load(o_.model_path);
    if (!m) return std::unexpected(std::move(m.error()));
    model_ = std::move(*m);
    const HParams& hp = model_->hparams();
    r_.model_description = model_->describe();
    r_.n_params = model_->n_params();
    r_.weight_bytes = model_->weight_bytes();
    r_.n_active_params = model_->n_active_params();
    r_.active_weight_bytes = model_->active_weight_bytes();
    r_.n_ctx_train = hp.n_ctx_train;
    KvCacheParams kp{hp.n_layer, hp.n_head_kv, hp.head_dim_k, hp.head_dim_v, 1, 1, TensorType::kF16};
    r_.kv_bytes_per_pos_f16 = KvCache::bytes_per_position(kp);
    kp.type = TensorType::kQ8_0;
    r_.kv_bytes_per_pos_q8_0 = KvCache::bytes_per_position(kp);
    if (!prefault()) return finish();
    r_.load_s = elapsed();

    if (!calibrate()) return finish();
    plan();
    phase_threads();
    phase_batch();
    decide_threads_batch();
    phase_kv();
    phase_layout();
    phase_ctx();
    phase_ttft();
    phase_verify();
    if (r_.interrupted) r_.skipped.push_back("the rest of the sweep (interrupted)");
    return finish();
  }

 private:
  // ---- time, stop, progress
  double now() const { return o_.clock ? o_.clock() : seconds_since(epoch_); }
  double elapsed() const { return now() - t0_; }
  double left() const { return budget_s_ - elapsed(); }
  bool stopped() const {
    if (o_.stop && o_.stop->load(std::memory_order_relaxed)) {
      r_.interrupted = true;
      return true;
    }
    return false;
  }
  bool out_of_time() const { return elapsed() >= budget_s_; }
  void progress(std::string what, const Trial* done = nullptr) {
    if (!o_.progress) return;
    Progress p;
    p.elapsed_s = elapsed();
    p.budget_s = budget_s_;
    p.what = std::move(what);
    p.done = done;
    o_.progress(p);
  }
  void skip(std::string what) {
    r_.skipped.push_back(r_.interrupted ? what + " (interrupted)" : what + " (budget)");
  }
  Status finish() {
    r_.elapsed_s = elapsed();
    return {};
  }

  // Touches every page of the mapping(s) so measurements do not pay page faults.
  bool prefault() {
    // A repacked model has read its matrices already and released their
    // file pages; touching them would bring a second copy back.
    if (model_->repacked()) return true;
    const GgufFile& gf = model_->gguf();
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    constexpr size_t kChunk = 16u << 20;
    uint8_t acc = 0;
    uint64_t done = 0;
    for (size_t i = 0; i < gf.n_parts(); ++i) {
      const MappedFile* mf = gf.part(i).mapping.get();
      if (!mf) continue;
      const auto bytes = mf->bytes();
      mf->advise_willneed();
      for (size_t off = 0; off < bytes.size(); off += kChunk) {
        if (stopped() || out_of_time()) {
          skip("everything: the model load took the whole budget");
          return false;
        }
        const size_t end = std::min(bytes.size(), off + kChunk);
        for (size_t p = off; p < end; p += page) acc ^= bytes[p];
        progress(fmt::format("loading the model ({:.0f}%)", 100.0 * double(done + end) / double(gf.file_size())));
      }
      done += bytes.size();
    }
    volatile uint8_t sink = acc;
    (void)sink;
    return true;
  }

  // ---- contexts
  struct Ctx {
    int threads = 0;
    TensorType kv = TensorType::kF16;
    int64_t n_ctx = 0, n_batch = 0;
    std::unique_ptr<Context> ctx;
    int64_t filled = 0;  // positions of seq 0 whose KV rows hold data
    uint64_t last_use = 0;
  };

  uint64_t ctx_bytes_estimate(TensorType kv, int64_t n_ctx, int64_t n_batch) const {
    const HParams& hp = model_->hparams();
    const uint64_t per_pos = kv == TensorType::kQ8_0 ? r_.kv_bytes_per_pos_q8_0 : r_.kv_bytes_per_pos_f16;
    const uint64_t act = uint64_t(n_batch) *
                         uint64_t(hp.n_vocab + 4 * hp.n_embd + 2 * hp.n_ff + 2 * hp.n_head * hp.head_dim_k) * 4;
    return per_pos * uint64_t(n_ctx) + act;
  }
  // Seconds to create (zero-fill) a context of that size; measured once.
  double ctx_cost(TensorType kv, int64_t n_ctx, int64_t n_batch) const {
    return double(ctx_bytes_estimate(kv, n_ctx, n_batch)) * ctx_s_per_byte_ + 0.002;
  }

  // A context with at least n_ctx positions and n_batch tokens per decode.
  // Keeps at most two (plus none deep ones) alive: buffers are large.
  Result<Ctx*> context(int threads, TensorType kv, int64_t n_ctx, int64_t n_batch) {
    ++use_clock_;
    for (auto& c : ctxs_)
      if (c->threads == threads && c->kv == kv && c->n_ctx >= n_ctx && c->n_batch >= n_batch) {
        c->last_use = use_clock_;
        return c.get();
      }
    while (ctxs_.size() >= 2) {
      auto oldest = std::min_element(ctxs_.begin(), ctxs_.end(),
                                     [](const auto& a, const auto& b) { return a->last_use < b->last_use; });
      ctxs_.erase(oldest);
    }
    ContextParams p;
    p.n_ctx = n_ctx;
    p.n_batch = n_batch;
    p.kv_type = kv;
    p.n_threads = threads;
    const double t = now();
    auto c = Context::create(*model_, p);
    if (!c) return std::unexpected(std::move(c.error()));
    const double s = now() - t;
    const size_t bytes = (*c)->memory_bytes();
    if (bytes > 0) ctx_s_per_byte_ = std::max(ctx_s_per_byte_ * 0.5, s / double(bytes));
    auto e = std::make_unique<Ctx>();
    e->threads = threads;
    e->kv = kv;
    e->n_ctx = n_ctx;
    e->n_batch = n_batch;
    e->ctx = std::move(*c);
    e->last_use = use_clock_;
    ctxs_.push_back(std::move(e));
    return ctxs_.back().get();
  }
  void drop_contexts() { ctxs_.clear(); }

  // Random KV rows for positions [filled, upto) of seq 0 (measure::fill_kv_random):
  // deep contexts are measured without processing a long prompt.
  bool fill(Ctx& c, int64_t upto) {
    if (upto <= c.filled) return true;
    if (auto st = measure::fill_kv_random(*c.ctx, c.filled, upto, stop_fn()); !st) return failed(st.error());
    c.filled = upto;
    return true;
  }

  // Prompt tokens of one repetition, different each time.
  std::vector<int32_t> next_tokens(int64_t n) {
    return measure::random_tokens(n, model_->hparams().n_vocab, static_cast<uint32_t>(++token_seed_));
  }
  measure::StopFn stop_fn() {
    return [this] { return stopped() || out_of_time(); };
  }
  measure::ClockFn clock_fn() const {
    return [this] { return now(); };
  }
  // A run ended early: stopped or out of time is not an error.
  bool failed(const Error& e) {
    if (e.code != ErrorCode::kCancelled) error_ = e.message;
    return false;
  }

  // ---- one repetition; nullopt when stopped, out of time or failed
  std::optional<double> tg_rep(Ctx& c, int64_t depth, int64_t n_gen) {
    if (!fill(c, depth)) return std::nullopt;
    const int32_t first = next_tokens(1)[0];
    auto s = measure::time_generation(*c.ctx, depth, first, n_gen, clock_fn(), stop_fn());
    if (!s) {
      failed(s.error());
      return std::nullopt;
    }
    c.filled = std::max(c.filled, depth + n_gen);
    return *s;
  }

  std::optional<double> pp_rep(Ctx& c, int64_t depth, int64_t n_tokens, int64_t batch) {
    if (!fill(c, depth)) return std::nullopt;
    const auto tokens = next_tokens(n_tokens);
    auto s = measure::time_prompt(*c.ctx, depth, tokens, batch, clock_fn(), stop_fn());
    if (!s) {
      failed(s.error());
      return std::nullopt;
    }
    c.filled = std::max(c.filled, depth + n_tokens);
    return *s;
  }

  // ---- cost model (seconds per token), from what was measured so far
  double tg_cost(int threads, int64_t depth) const {
    double base = 0;
    if (auto it = tg_cost_.find(threads); it != tg_cost_.end()) {
      base = it->second;
    } else {
      base = 1e9;
      for (const auto& [t, c] : tg_cost_) base = std::min(base, c * std::max(1.0, double(t) / double(threads)));
      if (tg_cost_.empty()) base = 0.1;
    }
    return base * (1.0 + attn_per_pos_ * double(depth));
  }
  double pp_cost(int threads, int64_t batch) const {
    double best = 1e9;
    for (const auto& [key, c] : pp_cost_) {
      const auto [t, b] = key;
      double e = c * std::max(1.0, double(t) / double(threads));
      if (b > batch) e *= 1.5;  // smaller batches cost more per token
      best = std::min(best, e * (1.0 + 0.05 * std::abs(std::log2(double(b) / double(batch)))));
    }
    return pp_cost_.empty() ? 0.05 : best;
  }
  void learn_tg(int threads, int64_t depth, double s_per_tok) {
    if (depth <= kCtxBase) {
      auto [it, fresh] = tg_cost_.emplace(threads, s_per_tok);
      if (!fresh) it->second = std::max(it->second * 0.7, s_per_tok);
    } else if (auto it = tg_cost_.find(threads); it != tg_cost_.end()) {
      const double a = (s_per_tok / it->second - 1.0) / double(depth);
      if (a > 0) attn_per_pos_ = std::max(attn_per_pos_ * 0.5, a);
    }
  }
  void learn_pp(int threads, int64_t batch, double s_per_tok) {
    auto [it, fresh] = pp_cost_.emplace(std::pair(threads, batch), s_per_tok);
    if (!fresh) it->second = std::max(it->second * 0.7, s_per_tok);
  }

  double est_tg_trial(int threads, int64_t depth, int reps) const {
    return double(1 + reps * n_gen_) * tg_cost(threads, depth);
  }
  double est_pp_trial(int threads, int64_t batch, int64_t n_pp, int64_t depth, int reps) const {
    return double(std::min(batch, n_pp) + reps * n_pp) * pp_cost(threads, batch) *
           (1.0 + attn_per_pos_ * double(depth + n_pp / 2));
  }

  // ---- a trial: warm-up, then repetitions while time allows (keeping
  // `reserve` seconds for later phases)
  std::optional<Trial> measure(Trial t, Ctx& c, double reserve) {
    const double est_rep = t.kind == TrialKind::kTg
                               ? double(t.tokens) * tg_cost(t.threads, t.depth)
                               : double(t.tokens) * pp_cost(t.threads, t.batch) *
                                     (1.0 + attn_per_pos_ * double(t.depth + t.tokens / 2));
    const double est_warm = t.kind == TrialKind::kTg ? tg_cost(t.threads, t.depth) : est_rep * double(std::min(t.batch, t.tokens)) / double(t.tokens);
    if (est_warm + est_rep > left() - reserve) {
      skip(fmt::format("{}: {} t={} {}", t.phase, t.label(), t.threads, type_name(t.kv_type)));
      return std::nullopt;
    }
    const std::string what = fmt::format("{}: {} threads={} kv={}", t.phase, t.label(), t.threads, type_name(t.kv_type));
    progress(what + " warm-up");
    // Warm-up: caches, the pool's threads, the KV pages of this depth.
    std::optional<double> w = t.kind == TrialKind::kTg ? tg_rep(c, t.depth, 1)
                                                        : pp_rep(c, t.depth, std::min(t.batch, t.tokens), t.batch);
    if (!w) {
      skip(what);
      return std::nullopt;
    }
    std::vector<double> tps;
    for (int rep = 0; rep < t.planned_reps; ++rep) {
      const double est = t.kind == TrialKind::kTg ? double(t.tokens) * tg_cost(t.threads, t.depth) : est_rep;
      if (rep > 0 && est > left() - reserve) break;
      progress(fmt::format("{} rep {}/{}", what, rep + 1, t.planned_reps));
      auto s = t.kind == TrialKind::kTg ? tg_rep(c, t.depth, t.tokens) : pp_rep(c, t.depth, t.tokens, t.batch);
      if (!s) break;
      tps.push_back(double(t.tokens) / std::max(*s, 1e-9));
      if (t.kind == TrialKind::kTg)
        learn_tg(t.threads, t.depth, *s / double(t.tokens));
      else if (t.depth == 0)
        learn_pp(t.threads, t.batch, *s / double(t.tokens));
    }
    if (tps.empty()) {
      skip(what);
      return std::nullopt;
    }
    t.tps = measure::stats_of(tps);
    t.partial = static_cast<int>(tps.size()) < t.planned_reps;
    r_.trials.push_back(t);
    progress(what, &r_.trials.back());
    return t;
  }

  // Tokens of one tg repetition: about tg_rep_s_ at this depth (so deep
  // fills, where each token costs more, do not eat the budget).
  int64_t tg_tokens(int threads, int64_t depth) const {
    if (depth <= kCtxBase) return n_gen_;
    return std::clamp<int64_t>(std::llround(tg_rep_s_ / tg_cost(threads, depth)), 3, n_gen_);
  }

  Trial tg_spec(std::string phase, int threads, TensorType kv, int64_t depth) const {
    Trial t;
    t.phase = std::move(phase);
    t.kind = TrialKind::kTg;
    t.threads = threads;
    t.kv_type = kv;
    t.depth = depth;
    t.tokens = tg_tokens(threads, depth);
    t.planned_reps = reps_;
    return t;
  }
  Trial pp_spec(std::string phase, int threads, TensorType kv, int64_t batch, int64_t depth, int64_t tokens) const {
    Trial t;
    t.phase = std::move(phase);
    t.kind = TrialKind::kPp;
    t.threads = threads;
    t.kv_type = kv;
    t.batch = batch;
    t.depth = depth;
    t.tokens = tokens;
    t.planned_reps = reps_;
    return t;
  }

  // ---- calibration: one short tg and pp step with the defaults
  bool calibrate() {
    const int T = r_.defaults.threads;
    std_n_ctx_ = std::max<int64_t>(kLevels[0].n_pp, kShortDepth + 128) + 16;
    std_n_batch_ = std::max<int64_t>(kLevels[0].n_pp, r_.defaults.batch);
    progress("calibrating");
    auto c = context(T, TensorType::kF16, std_n_ctx_, std_n_batch_);
    if (!c) {
      error_ = c.error().message;
      return false;
    }
    if (!tg_rep(**c, kShortDepth, 1)) return calibration_failed();  // first touch
    auto tg = tg_rep(**c, kShortDepth, 2);
    if (!tg) return calibration_failed();
    learn_tg(T, kShortDepth, *tg / 2);
    auto pp = pp_rep(**c, 0, 32, 32);
    if (!pp) return calibration_failed();
    learn_pp(T, 32, *pp / 32);
    // What each position of context adds to a generated token: one token at
    // a deeper fill (deep fills are costly to plan blind on small models).
    const int64_t deep = std::min<int64_t>(512, std_n_ctx_ - 4);
    auto tg_deep = tg_rep(**c, deep, 2);
    if (!tg_deep) return calibration_failed();
    attn_per_pos_ = std::max(0.0, (*tg_deep / 2 / tg_cost(T, 0) - 1.0) / double(deep));
    // Never below what reading the KV cache costs next to reading the weights
    // a token reads (a mixture: its routed experts, not all of them).
    attn_per_pos_ = std::max(attn_per_pos_, double(r_.kv_bytes_per_pos_f16) /
                                                double(std::max<uint64_t>(r_.active_weight_bytes, 1)));
    return true;
  }
  bool calibration_failed() {
    skip("everything: calibration did not finish");
    return false;
  }

  // ---- the plan: candidates, and the richest sizing whose estimate fits
  static std::vector<int> thread_candidates(int n) {
    std::vector<int> t;
    if (n <= 8) {
      for (int i = n; i >= 1; --i) t.push_back(i);
      return t;
    }
    for (int i : {n, n - 1, n / 2 + n % 2, n / 2})
      if (i >= 1) t.push_back(i);
    for (int p = 1; p < n; p *= 2) t.push_back(p);
    std::sort(t.rbegin(), t.rend());
    t.erase(std::unique(t.begin(), t.end()), t.end());
    return t;
  }

  void plan() {
    const int T = r_.defaults.threads;
    // 1 .. the usable cores, whatever the defaults say (a config may hold a
    // hand-set count), and the default's own count.
    threads_ = thread_candidates(r_.machine.usable_cores);
    if (std::find(threads_.begin(), threads_.end(), T) == threads_.end()) {
      threads_.push_back(T);
      std::sort(threads_.rbegin(), threads_.rend());
    }
    // Largest fill worth trying: training context, --max-ctx, and memory
    // (both KV types' deep contexts may exist at once).
    int64_t max_depth = r_.n_ctx_train > 0 ? r_.n_ctx_train : 4096;
    ctx_limit_ = "the training context";
    if (o_.max_ctx > 0 && o_.max_ctx < max_depth) {
      max_depth = o_.max_ctx;
      ctx_limit_ = "--max-ctx";
    }
    const uint64_t reserve = r_.weight_bytes + 2 * ctx_bytes_estimate(TensorType::kF16, 0, 512) + (512ull << 20);
    const uint64_t avail = r_.machine.usable_memory > reserve ? r_.machine.usable_memory - reserve : 0;
    const int64_t mem_depth = static_cast<int64_t>(avail / (r_.kv_bytes_per_pos_f16 + r_.kv_bytes_per_pos_q8_0));
    if (mem_depth < max_depth) {
      max_depth = mem_depth;
      ctx_limit_ = "memory";
    }
    max_depth_ = max_depth;

    auto estimate = [&](const Level& L, int64_t n_gen, std::vector<int64_t>& batches, std::vector<int64_t>& depths) {
      batches.clear();
      // Larger and smaller than the default (which is measured already).
      for (int64_t b : {512, 256, 128, 64, 32})
        if (b <= L.n_pp && b != std::min<int64_t>(L.n_pp, r_.defaults.batch)) batches.push_back(b);
      depths.clear();
      if (max_depth >= 2 * kCtxBase) {
        depths.push_back(kCtxBase);
        for (int64_t d = 1024; d <= max_depth && static_cast<int>(depths.size()) < L.n_depths; d *= 2)
          depths.push_back(d);
        if (depths.back() < max_depth && static_cast<int>(depths.size()) < L.n_depths && max_depth > 1024)
          depths.push_back(max_depth);
      }
      const int64_t b0 = std::min(r_.defaults.batch, L.n_pp);
      double s = 0;
      for (int t : threads_) s += double(1 + L.reps * n_gen) * tg_cost(t, kShortDepth);
      for (int t : threads_) s += double(b0 + L.reps * L.n_pp) * pp_cost(t, b0);
      for (int64_t b : batches) s += double(b + L.reps * L.n_pp) * pp_cost(T, b);
      const int64_t kv_depth = std::min<int64_t>(kKvDepth, max_depth);
      const int64_t deep = std::max({depths.empty() ? 0 : depths.back(), kv_depth, o_.ttft_tokens / 2}) + 1024;
      s += 2 * ctx_cost(TensorType::kF16, deep, r_.defaults.batch) +
           double(deep) * double(r_.kv_bytes_per_pos_f16) * 2e-9;  // creating and filling
      auto deep_tg = [&](int64_t d) {  // a deep trial: about tg_rep_s per repetition, 3..n_gen tokens
        const double per = tg_cost(T, d);
        const double n = std::clamp(L.tg_rep_s / per, 3.0, double(n_gen));
        return (1 + L.reps * n) * per;
      };
      s += 2 * deep_tg(kv_depth);
      for (int64_t d : depths) s += deep_tg(d);
      s += double((1 + L.reps) * r_.defaults.batch) * pp_cost(T, r_.defaults.batch) *
           (1 + attn_per_pos_ * double(o_.ttft_tokens / 2));
      s += 2.0 * L.reps * (double(n_gen) * tg_cost(T, kShortDepth) + double(L.n_pp) * pp_cost(T, b0));
      // Contexts come and go (two live at a time): each thread count twice, verify twice.
      s += double(2 * threads_.size() + 2) * ctx_cost(TensorType::kF16, std_n_ctx_, std_n_batch_);
      s += 0.01 * double(threads_.size() + batches.size() + depths.size() + 6);  // bookkeeping
      return s;
    };
    const double avail_s = left() * 0.9;
    size_t chosen = std::size(kLevels) - 1;
    double est = 0;
    for (size_t i = 0; i < std::size(kLevels); ++i) {
      const Level& L = kLevels[i];
      const int64_t n_gen = std::clamp<int64_t>(std::llround(L.tg_rep_s / tg_cost(T, kShortDepth)), 3, 128);
      est = estimate(L, n_gen, batches_, depths_);
      if (est <= avail_s) {
        chosen = i;
        break;
      }
    }
    const Level& L = kLevels[chosen];
    reps_ = std::max(2, std::min(L.reps, o_.repetitions));
    if (o_.repetitions > L.reps && chosen == 0) reps_ = o_.repetitions;
    n_gen_ = std::clamp<int64_t>(std::llround(L.tg_rep_s / tg_cost(T, kShortDepth)), 3, 128);
    n_pp_ = L.n_pp;
    tg_rep_s_ = L.tg_rep_s;
    est = estimate(L, n_gen_, batches_, depths_);
    std::vector<int64_t> all_batches = batches_;
    all_batches.insert(all_batches.begin(), std::min(r_.defaults.batch, n_pp_));
    r_.plan = fmt::format(
        "{} reps; tg {} tokens/rep; pp {} tokens/rep; threads {}; batches {}; context fills {}; estimated {:.0f} s of "
        "{:.0f} s left{}",
        reps_, n_gen_, n_pp_, fmt::join(threads_, ","), fmt::join(all_batches, ","),
        depths_.empty() ? std::string("none") : fmt::format("{}", fmt::join(depths_, ",")), est, left(),
        est > avail_s ? " (over: later phases may be cut)" : "");
  }

  // Time the last phase (defaults vs tuned) needs; earlier phases leave it.
  double verify_reserve() const {
    const int T = r_.defaults.threads;
    const int64_t b0 = std::min(r_.defaults.batch, n_pp_);
    return 2.0 * reps_ * (double(n_gen_) * tg_cost(T, kShortDepth) + double(n_pp_) * pp_cost(T, b0)) +
           0.02 * budget_s_;
  }

  Ctx* std_context(int threads, TensorType kv) {
    auto c = context(threads, kv, std_n_ctx_, std_n_batch_);
    if (!c) {
      error_ = c.error().message;
      return nullptr;
    }
    return *c;
  }

  // ---- phases
  void phase_threads() {
    for (int t : threads_) {
      if (stopped()) return;
      if (Ctx* c = std_context(t, TensorType::kF16))
        if (auto tr = measure(tg_spec("threads", t, TensorType::kF16, kShortDepth), *c, verify_reserve()))
          tg_by_threads_[t] = tr->tps;
    }
    const int64_t b0 = std::min(r_.defaults.batch, n_pp_);
    for (int t : threads_) {
      if (stopped()) return;
      if (Ctx* c = std_context(t, TensorType::kF16))
        if (auto tr = measure(pp_spec("threads", t, TensorType::kF16, b0, 0, n_pp_), *c, verify_reserve()))
          pp_by_threads_[t] = tr->tps;
    }
  }

  int best_of(const std::map<int, Stats>& m, int dflt) const {
    if (m.empty()) return 0;
    auto best = std::max_element(m.begin(), m.end(),
                                 [](const auto& a, const auto& b) { return a.second.mean < b.second.mean; });
    auto d = m.find(dflt);
    if (d != m.end() && !beats(best->second, d->second)) return dflt;
    return best->first;
  }

  void phase_batch() {
    const int T = r_.defaults.threads;
    pp_threads_ = pp_by_threads_.empty() ? T : best_of(pp_by_threads_, T);
    const int64_t b0 = std::min(r_.defaults.batch, n_pp_);
    if (auto it = pp_by_threads_.find(pp_threads_); it != pp_by_threads_.end()) pp_by_batch_[b0] = it->second;
    for (int64_t b : batches_) {
      if (stopped()) return;
      if (Ctx* c = std_context(pp_threads_, TensorType::kF16))
        if (auto tr = measure(pp_spec("batch", pp_threads_, TensorType::kF16, b, 0, n_pp_), *c, verify_reserve()))
          pp_by_batch_[b] = tr->tps;
    }
  }

  void decide_threads_batch() {
    const int T = r_.defaults.threads;
    Settings& s = r_.chosen;
    r_.best_tg_threads = best_of(tg_by_threads_, T);
    r_.best_pp_threads = best_of(pp_by_threads_, T);
    if (r_.best_tg_threads) r_.best_tg = tg_by_threads_.at(r_.best_tg_threads);
    if (r_.best_pp_threads) r_.best_pp = pp_by_threads_.at(r_.best_pp_threads);
    // One thread count serves both: the one with the least time for a typical
    // request (ttft_tokens of prompt, gen_tokens of answer).
    struct Cost {
      double mean, sd;
    };
    std::map<int, Cost> cost;
    for (const auto& [t, tg] : tg_by_threads_) {
      auto pp = pp_by_threads_.find(t);
      if (pp == pp_by_threads_.end() || tg.mean <= 0 || pp->second.mean <= 0) continue;
      const double N = double(o_.ttft_tokens), G = double(o_.gen_tokens);
      const double a = N / pp->second.mean, b = G / tg.mean;
      const double sa = N * pp->second.stddev / (pp->second.mean * pp->second.mean);
      const double sb = G * tg.stddev / (tg.mean * tg.mean);
      cost[t] = {a + b, std::sqrt(sa * sa + sb * sb)};
    }
    if (cost.count(T)) {
      int best = T;
      for (const auto& [t, c] : cost) {
        const Cost& d = cost.at(T);
        if (c.mean + c.sd < d.mean - d.sd && c.mean < d.mean * (1 - kMinGain) && c.mean < cost.at(best).mean) best = t;
      }
      s.threads = best;
      r_.threads_measured = true;
    } else if (tg_by_threads_.count(T)) {
      s.threads = r_.best_tg_threads;
      r_.threads_measured = true;
    }
    // Batch: the default's stand-in is b0 (a batch >= the prompt behaves the same).
    const int64_t b0 = std::min(r_.defaults.batch, n_pp_);
    if (pp_by_batch_.size() >= 2 && pp_by_batch_.count(b0)) {
      auto best = std::max_element(pp_by_batch_.begin(), pp_by_batch_.end(),
                                   [](const auto& a, const auto& b) { return a.second.mean < b.second.mean; });
      s.batch = beats(best->second, pp_by_batch_.at(b0)) ? best->first : r_.defaults.batch;
      r_.batch_measured = true;
      // prompt_chunk: the smallest batch within kChunkTolerance of the best
      // pp rate - short steps for the other slots, little prompt speed lost.
      // A chunk is out only when clearly (beyond noise) and substantially slower.
      const Stats& top = best->second;
      for (const auto& [b, st] : pp_by_batch_)  // ascending
        if (b <= s.batch && !(top.mean - top.stddev > st.mean + st.stddev && st.mean < top.mean * (1 - kChunkTolerance))) {
          s.prompt_chunk = b;
          r_.prompt_chunk_measured = true;
          break;
        }
    }
  }

  void phase_kv() {
    if (stopped()) return;
    const Settings& s = r_.chosen;
    kv_depth_ = std::min<int64_t>(kKvDepth, max_depth_);
    if (kv_depth_ < kCtxBase) {
      skip("kv: the model's context is too short to compare KV types");
      return;
    }
    drop_contexts();
    std::map<TensorType, Stats> by_kv;
    for (TensorType kv : {TensorType::kF16, TensorType::kQ8_0}) {
      if (stopped()) return;
      Ctx* c = deep_context(kv);
      if (!c) continue;
      if (auto tr = measure(tg_spec("kv", s.threads, kv, kv_depth_), *c, verify_reserve())) by_kv[kv] = tr->tps;
    }
    if (by_kv.size() == 2) {
      r_.kv_measured = true;
      r_.chosen.kv_type =
          beats(by_kv.at(TensorType::kQ8_0), by_kv.at(TensorType::kF16)) ? TensorType::kQ8_0 : TensorType::kF16;
    }
    // Keep only the chosen type's deep context for the next phases.
    for (auto& d : deep_)
      if (d && d->kv != r_.chosen.kv_type) d.reset();
  }

  // The kernels' repacked layout against the file's plain one (the kernels
  // then pack rows on the fly): a second copy of the model, loaded without
  // repacking, measured with the chosen threads, batch and KV type.
  void phase_layout() {
    if (stopped()) return;
    if (!model_->repacked()) {
      r_.notes.push_back(
          "layout: not compared - nothing was repacked (this CPU's kernels have no repacked layout for the model's "
          "weight types)");
      return;
    }
    const Settings& s = r_.chosen;
    const uint64_t usable = r_.machine.usable_memory;
    if (usable > 0 && 2 * uint64_t(r_.weight_bytes) + ctx_bytes_estimate(s.kv_type, std_n_ctx_, std_n_batch_) > usable) {
      skip("layout: a second copy of the weights does not fit in memory");
      return;
    }
    const int64_t b = std::min(s.batch, n_pp_);
    const double cost = 2.0 * r_.load_s + ctx_cost(s.kv_type, std_n_ctx_, b) +
                        4.0 * reps_ * (double(n_gen_) * tg_cost(s.threads, kShortDepth) + double(n_pp_) * pp_cost(s.threads, b));
    if (cost > left() - verify_reserve()) {
      skip("layout: repacked vs plain");
      return;
    }
    progress("layout: loading the model in the plain layout");
    ModelLoadOptions lo;
    lo.repack = false;
    auto plain = Model::load(o_.model_path, lo);
    if (!plain) {
      r_.notes.push_back(fmt::format("layout: not compared: {}", plain.error().message));
      return;
    }
    auto packed_ctx = context(s.threads, s.kv_type, std_n_ctx_, b);
    if (!packed_ctx) return skip("layout: " + packed_ctx.error().message);
    ContextParams p;
    p.n_ctx = std_n_ctx_;
    p.n_batch = b;
    p.kv_type = s.kv_type;
    p.n_threads = s.threads;
    auto pc = Context::create(**plain, p);
    if (!pc) return skip("layout: " + pc.error().message);
    Ctx plain_ctx;
    plain_ctx.threads = s.threads;
    plain_ctx.kv = s.kv_type;
    plain_ctx.n_ctx = std_n_ctx_;
    plain_ctx.n_batch = b;
    plain_ctx.ctx = std::move(*pc);
    // Measured alternately, so drift on a shared machine hits both alike.
    std::optional<Stats> tg[2], pp[2];  // [0] repacked, [1] plain
    for (int layout = 0; layout < 2; ++layout) {
      Ctx& c = layout == 0 ? **packed_ctx : plain_ctx;
      Trial t = tg_spec("layout", s.threads, s.kv_type, kShortDepth);
      t.repacked = layout == 0;
      if (auto tr = measure(t, c, verify_reserve())) tg[layout] = tr->tps;
    }
    for (int layout = 0; layout < 2; ++layout) {
      Ctx& c = layout == 0 ? **packed_ctx : plain_ctx;
      Trial t = pp_spec("layout", s.threads, s.kv_type, b, 0, n_pp_);
      t.repacked = layout == 0;
      if (auto tr = measure(t, c, verify_reserve())) pp[layout] = tr->tps;
    }
    if (!tg[0] || !tg[1]) return;
    r_.repack_measured = true;
    // The plain layout only where it is better for generation and no worse
    // for prompts; repacking is the default.
    const bool plain_better = beats(*tg[1], *tg[0]) && (!pp[0] || !pp[1] || pp[1]->mean >= pp[0]->mean);
    r_.chosen.repack = !plain_better;
  }

  int64_t deep_n_ctx() const {
    const int64_t ttft_end = o_.ttft_tokens > 0 ? o_.ttft_tokens / 2 + r_.chosen.batch : 0;
    const int64_t ctx_end = depths_.empty() ? 0 : depths_.back();
    return std::min<int64_t>(std::max({ttft_end, ctx_end, kv_depth_}) + n_gen_ + 8,
                             std::max<int64_t>(max_depth_ + n_gen_ + 8, 256));
  }
  Ctx* deep_context(TensorType kv) {
    auto& slot = deep_[kv == TensorType::kQ8_0 ? 1 : 0];
    if (slot) return slot.get();
    const int64_t n_ctx = deep_n_ctx();
    const double est = ctx_cost(kv, n_ctx, r_.chosen.batch);
    if (est > left() - verify_reserve()) {
      skip(fmt::format("a {}-position context ({})", n_ctx, type_name(kv)));
      return nullptr;
    }
    progress(fmt::format("creating a {}-position context ({})", n_ctx, type_name(kv)));
    ContextParams p;
    p.n_ctx = n_ctx;
    p.n_batch = r_.chosen.batch;
    p.kv_type = kv;
    p.n_threads = r_.chosen.threads;
    auto c = Context::create(*model_, p);
    if (!c) {
      r_.notes.push_back(fmt::format("could not create a {}-position context: {}", n_ctx, c.error().message));
      return nullptr;
    }
    slot = std::make_unique<Ctx>();
    slot->threads = p.n_threads;
    slot->kv = kv;
    slot->n_ctx = n_ctx;
    slot->n_batch = p.n_batch;
    slot->ctx = std::move(*c);
    return slot.get();
  }

  void phase_ctx() {
    if (stopped()) return;
    if (depths_.size() < 2) {
      skip("context curve: the model's context (or memory) is too small");
      return;
    }
    Ctx* c = deep_context(r_.chosen.kv_type);
    if (!c) return;
    const double tol = o_.ctx_tolerance;
    std::optional<Stats> base;
    auto point = [&](int64_t d) -> std::optional<bool> {
      auto tr = measure(tg_spec("ctx", r_.chosen.threads, r_.chosen.kv_type, d), *c, verify_reserve());
      if (!tr) return std::nullopt;
      r_.ctx_points.push_back({d, tr->tps});
      r_.ctx_tried_max = std::max(r_.ctx_tried_max, d);
      if (!base) {
        base = tr->tps;
        return true;
      }
      return tr->tps.mean >= base->mean * (1 - tol);
    };
    int64_t pass = 0, fail = 0;
    for (int64_t d : depths_) {
      if (stopped()) break;
      auto ok = point(d);
      if (!ok) break;
      if (*ok) {
        pass = d;
      } else {
        fail = d;
        break;
      }
    }
    // Two bisection steps between the last fill within tolerance and the first beyond.
    for (int step = 0; step < 2 && pass > 0 && fail > 0 && fail - pass > 512 && !stopped(); ++step) {
      const int64_t mid = (pass + fail) / 2 / 256 * 256;
      if (mid <= pass) break;
      auto ok = point(mid);
      if (!ok) break;
      (*ok ? pass : fail) = mid;
    }
    std::sort(r_.ctx_points.begin(), r_.ctx_points.end(),
              [](const CtxPoint& a, const CtxPoint& b) { return a.depth < b.depth; });
    if (r_.ctx_points.size() >= 2 && pass > 0) {
      r_.ctx_within_tolerance = pass;
      if (fail > 0) r_.ctx_first_beyond = fail;
    }
    if (fail == 0)
      r_.ctx_limit_reason = r_.ctx_tried_max >= max_depth_ ? ctx_limit_ : std::string("the time budget");
  }

  void phase_ttft() {
    if (stopped() || o_.ttft_tokens <= 0) return;
    const Settings& s = r_.chosen;
    const int64_t b = std::min(s.batch, o_.ttft_tokens);
    const int64_t mid = std::max<int64_t>(0, o_.ttft_tokens / 2 - b / 2);
    Ctx* c = deep_context(s.kv_type);
    if (!c) return;
    if (mid + b > c->n_ctx) {
      skip(fmt::format("time to first token: a {}-token prompt does not fit the context tried (limited by {})", o_.ttft_tokens, ctx_limit_));
      return;
    }
    if (auto tr = measure(pp_spec("ttft", s.threads, s.kv_type, b, mid, b), *c, verify_reserve())) {
      r_.ttft_pp_mid = tr->tps;
      r_.ttft_s = double(o_.ttft_tokens) / tr->tps.mean;
    }
  }

  void phase_verify() {
    deep_[0].reset();
    deep_[1].reset();
    if (stopped()) return;
    const Settings& d = r_.defaults;
    const Settings& s = r_.chosen;
    if (s.threads == d.threads && s.batch == d.batch && s.kv_type == d.kv_type) {
      r_.notes.push_back("defaults vs tuned: the chosen threads, batch and KV type are the defaults");
      return;
    }
    drop_contexts();
    Ctx* cd = std_context(d.threads, d.kv_type);
    Ctx* cs = cd ? std_context(s.threads, s.kv_type) : nullptr;
    if (!cd || !cs) return;
    const int64_t bd = std::min(d.batch, n_pp_), bs = std::min(s.batch, n_pp_);
    r_.verify_pp_tokens = n_pp_;
    std::vector<double> tgd, tgs, ppd, pps;
    // Interleaved, so load from other processes hits both alike.
    progress("defaults vs tuned: warm-up");
    if (!tg_rep(*cd, kShortDepth, 1) || !tg_rep(*cs, kShortDepth, 1)) return skip("defaults vs tuned");
    for (int rep = 0; rep < reps_; ++rep) {
      const double est = double(n_gen_) * (tg_cost(d.threads, kShortDepth) + tg_cost(s.threads, kShortDepth)) +
                         double(n_pp_) * (pp_cost(d.threads, bd) + pp_cost(s.threads, bs));
      if (est > left()) break;
      progress(fmt::format("defaults vs tuned: rep {}/{}", rep + 1, reps_));
      auto a = tg_rep(*cd, kShortDepth, n_gen_);
      auto b = a ? tg_rep(*cs, kShortDepth, n_gen_) : std::nullopt;
      if (!a || !b) break;
      tgd.push_back(double(n_gen_) / *a);
      tgs.push_back(double(n_gen_) / *b);
      auto p = pp_rep(*cd, 0, n_pp_, bd);
      auto q = p ? pp_rep(*cs, 0, n_pp_, bs) : std::nullopt;
      if (!p || !q) break;
      ppd.push_back(double(n_pp_) / *p);
      pps.push_back(double(n_pp_) / *q);
    }
    if (tgd.empty()) return skip("defaults vs tuned");
    r_.tg_defaults = measure::stats_of(tgd);
    r_.tg_tuned = measure::stats_of(tgs);
    auto add = [&](std::string phase, TrialKind k, const Settings& st, Stats v, int64_t tokens) {
      Trial t = k == TrialKind::kTg ? tg_spec(phase, st.threads, st.kv_type, kShortDepth)
                                    : pp_spec(phase, st.threads, st.kv_type, std::min(st.batch, n_pp_), 0, n_pp_);
      t.tokens = tokens;
      t.tps = v;
      t.partial = v.n < reps_;
      r_.trials.push_back(t);
      progress(phase, &r_.trials.back());
    };
    add("defaults", TrialKind::kTg, d, *r_.tg_defaults, n_gen_);
    add("tuned", TrialKind::kTg, s, *r_.tg_tuned, n_gen_);
    if (!ppd.empty()) {
      r_.pp_defaults = measure::stats_of(ppd);
      r_.pp_tuned = measure::stats_of(pps);
      add("defaults", TrialKind::kPp, d, *r_.pp_defaults, n_pp_);
      add("tuned", TrialKind::kPp, s, *r_.pp_tuned, n_pp_);
    }
  }

  const TuneOptions& o_;
  TuneResult& r_;
  Clock::time_point epoch_;
  double t0_;
  double budget_s_;
  std::unique_ptr<Model> model_;
  std::vector<std::unique_ptr<Ctx>> ctxs_;
  std::unique_ptr<Ctx> deep_[2];  // f16, q8_0
  uint64_t use_clock_ = 0;
  double ctx_s_per_byte_ = 1e-9;  // 1 s per GB until measured
  uint64_t token_seed_ = 0;
  std::string error_;

  std::map<int, double> tg_cost_;                      // threads -> s/token (short context)
  std::map<std::pair<int, int64_t>, double> pp_cost_;  // (threads, batch) -> s/token
  double attn_per_pos_ = 0;                            // relative tg cost added per position of context

  int reps_ = 2;
  int64_t n_gen_ = 8, n_pp_ = 64;
  double tg_rep_s_ = 0.5;
  int64_t std_n_ctx_ = 0, std_n_batch_ = 0;
  std::vector<int> threads_;
  std::vector<int64_t> batches_, depths_;
  int64_t max_depth_ = 0, kv_depth_ = 0;
  std::string ctx_limit_;
  int pp_threads_ = 0;
  std::map<int, Stats> tg_by_threads_, pp_by_threads_;
  std::map<int64_t, Stats> pp_by_batch_;

 public:
  const std::string& error() const { return error_; }
};

}  // namespace

Result<TuneResult> run_tune(const TuneOptions& options) {
  if (options.budget.count() <= 0)
    return make_error(ErrorCode::kInvalidArgument, "the time budget must be positive, got {}",
                      format_duration(options.budget));
  if (options.ctx_tolerance <= 0 || options.ctx_tolerance >= 1)
    return make_error(ErrorCode::kInvalidArgument, "--ctx-tolerance must be in (0, 1), got {}", options.ctx_tolerance);
  TuneResult r;
  Tuner t(options, r);
  CODEY_TRY(t.run());
  if (!t.error().empty()) r.notes.push_back("error during measurement: " + t.error());
  return r;
}

}  // namespace codey::tune
