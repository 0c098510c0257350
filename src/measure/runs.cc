// Timed runs of a model (prompt processing and generation at a context
// depth), what they cost in ops and bytes, and the statistics of repetitions.
#include <time.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <memory>
#include <random>

#include "codey/kernels.h"
#include "codey/measure.h"
#include "codey/sampling.h"
#include "codey/spec.h"

namespace codey::measure {

double steady_seconds() {
  static const Clock::time_point epoch = Clock::now();
  return seconds_since(epoch);
}

namespace {
double cpu_clock_seconds(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}
}  // namespace

double process_cpu_seconds() { return cpu_clock_seconds(CLOCK_PROCESS_CPUTIME_ID); }
double thread_cpu_seconds() { return cpu_clock_seconds(CLOCK_THREAD_CPUTIME_ID); }

ClockFn virtual_clock(double tick_s) {
  auto ticks = std::make_shared<std::atomic<int64_t>>(0);
  return [ticks, tick_s] { return tick_s * static_cast<double>(ticks->fetch_add(1)); };
}

// ---------------------------------------------------------- statistics --

Stats stats_of(std::span<const double> xs) {
  Stats s;
  s.n = static_cast<int>(xs.size());
  if (xs.empty()) return s;
  for (double x : xs) s.mean += x;
  s.mean /= double(xs.size());
  if (xs.size() > 1) {
    double ss = 0;
    for (double x : xs) ss += (x - s.mean) * (x - s.mean);
    s.stddev = std::sqrt(ss / double(xs.size() - 1));
  }
  std::vector<double> sorted(xs.begin(), xs.end());
  std::sort(sorted.begin(), sorted.end());
  const size_t h = sorted.size() / 2;
  s.median = sorted.size() % 2 ? sorted[h] : (sorted[h - 1] + sorted[h]) / 2;
  s.min = sorted.front();
  s.max = sorted.back();
  return s;
}

std::string format_stats(const Stats& s) {
  const int prec = s.mean >= 100 ? 1 : 2;
  return fmt::format("{:.{}f} ± {:.{}f}", s.mean, prec, s.stddev, prec);
}

// --------------------------------------------------------------- costs --

double prompt_ops(const Model& m, int64_t depth, int64_t n_prompt) {
  const HParams& hp = m.hparams();
  const double p = static_cast<double>(n_prompt), d = static_cast<double>(depth);
  const double attended = p * d + p * (p + 1) / 2;  // (query, position) pairs
  const double attn = 2.0 * static_cast<double>(hp.n_layer * hp.n_head * (hp.head_dim_k + hp.head_dim_v)) * attended;
  return m.layer_ops_per_token() * p + attn + m.output_ops_per_token();
}

double generation_bytes(const Model& m, TensorType kv_type, int64_t depth, int64_t n_gen) {
  const HParams& hp = m.hparams();
  const double kv_pos = static_cast<double>(hp.n_layer * hp.n_head_kv) *
                        static_cast<double>(row_bytes(kv_type, hp.head_dim_k) + row_bytes(kv_type, hp.head_dim_v));
  const double g = static_cast<double>(n_gen), d = static_cast<double>(depth);
  // Weights every step, plus the KV rows of positions d+1 .. d+g.
  return static_cast<double>(m.active_weight_bytes()) * g + kv_pos * (g * d + g * (g + 1) / 2);
}

// ---------------------------------------------------------------- runs --

std::vector<int32_t> random_tokens(int64_t n, int64_t n_vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> d(0, static_cast<int32_t>(n_vocab - 1));
  std::vector<int32_t> t(static_cast<size_t>(std::max<int64_t>(n, 0)));
  for (auto& x : t) x = d(rng);
  return t;
}

namespace {

Status cancelled() { return make_error(ErrorCode::kCancelled, "the measurement was stopped"); }

int32_t argmax(std::span<const float> v) {
  return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

// Sequence 0 at `depth` positions with room for n_new more.
Status set_depth(Context& ctx, int64_t depth, int64_t n_new) {
  if (depth < 0 || depth + n_new > ctx.n_ctx())
    return make_error(ErrorCode::kInvalidArgument, "a run of {} tokens at depth {} does not fit a context of {}",
                      n_new, depth, ctx.n_ctx());
  ctx.kv().set_seq_length(0, depth);
  return {};
}

}  // namespace

Status fill_kv_random(Context& ctx, int64_t from, int64_t upto, const StopFn& stop) {
  KvCache& kv = ctx.kv();
  const auto& p = kv.params();
  if (from < 0 || upto > ctx.n_ctx() || from > upto)
    return make_error(ErrorCode::kInvalidArgument, "cannot fill positions [{}, {}) of a context of {}", from, upto,
                      ctx.n_ctx());
  const auto& kt = ctx.model().kernel_table();
  std::mt19937 rng(1234);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  constexpr int kRows = 64;  // distinct rows, cycled
  auto encode = [&](int64_t dim) {
    const size_t rb = row_bytes(p.type, dim);
    std::vector<uint8_t> rows(rb * kRows);
    std::vector<float> x(static_cast<size_t>(dim));
    for (int r = 0; r < kRows; ++r) {
      for (auto& v : x) v = nd(rng);
      kt.store_row(p.type, x.data(), rows.data() + rb * static_cast<size_t>(r), dim);
    }
    return std::pair(std::move(rows), rb);
  };
  auto [krows, kb] = encode(p.head_dim_k);
  auto [vrows, vb] = encode(p.head_dim_v);
  for (int64_t l = 0; l < p.n_layer; ++l) {
    if (stop && stop()) return cancelled();
    for (int64_t h = 0; h < p.n_head_kv; ++h)
      for (int64_t pos = from; pos < upto; ++pos)
        kv.write(l, 0, h, pos, krows.data() + kb * static_cast<size_t>(pos % kRows),
                 vrows.data() + vb * static_cast<size_t>(pos % kRows));
  }
  kv.set_seq_length(0, upto);
  return {};
}

Result<int32_t> prefill(Context& ctx, std::span<const int32_t> tokens, int64_t n_batch, const StopFn& stop) {
  if (n_batch < 1) return make_error(ErrorCode::kInvalidArgument, "a batch of {} tokens", n_batch);
  Batch b;
  int32_t next = 0;
  const size_t step = static_cast<size_t>(n_batch);
  for (size_t i = 0; i < tokens.size(); i += step) {
    if (stop && stop()) return std::unexpected(cancelled().error());
    b.clear();
    const size_t end = std::min(tokens.size(), i + step);
    for (size_t j = i; j < end; ++j) b.add(tokens[j], 0, j + 1 == tokens.size());
    CODEY_TRY_ASSIGN(auto logits, ctx.decode(b));
    if (end == tokens.size()) next = argmax(logits);
  }
  return next;
}

Status generate(Context& ctx, int32_t first, int64_t n, const StopFn& stop) {
  Batch b;
  int32_t tok = first;
  for (int64_t i = 0; i < n; ++i) {
    if (stop && stop()) return cancelled();
    b.clear();
    b.add(tok, 0, true);
    CODEY_TRY_ASSIGN(auto logits, ctx.decode(b));
    tok = argmax(logits);
  }
  return {};
}

Result<double> time_prompt(Context& ctx, int64_t depth, std::span<const int32_t> tokens, int64_t n_batch,
                           const ClockFn& clock, const StopFn& stop) {
  CODEY_TRY(set_depth(ctx, depth, static_cast<int64_t>(tokens.size())));
  const double t0 = clock();
  CODEY_TRY(prefill(ctx, tokens, n_batch, stop));
  return clock() - t0;
}

Result<double> time_generation(Context& ctx, int64_t depth, int32_t first, int64_t n_gen, const ClockFn& clock,
                               const StopFn& stop) {
  CODEY_TRY(set_depth(ctx, depth, n_gen));
  const double t0 = clock();
  CODEY_TRY(generate(ctx, first, n_gen, stop));
  return clock() - t0;
}

Result<SpecRun> time_spec_generation(Context& ctx, Drafter& drafter, int max_draft, std::span<const int32_t> history,
                                     int32_t first, int64_t n_gen, const ClockFn& clock, const StopFn& stop) {
  const auto depth = static_cast<int64_t>(history.size());
  if (n_gen < 1) return make_error(ErrorCode::kInvalidArgument, "a speculative run of {} tokens", n_gen);
  CODEY_TRY(set_depth(ctx, depth, n_gen));
  std::vector<int32_t> prompt(history.begin(), history.end());
  // The draft model reads the depth's tokens untimed: a real request would
  // have had them in its prompt.
  if (depth > 0) {
    Draft none;
    const DraftJob job{0, prompt, 0, nullptr, &none};
    CODEY_TRY(drafter.prefill(std::span<const DraftJob>(&job, 1)));
  }
  prompt.push_back(first);
  SamplerParams sp = SamplerParams::greedy();
  sp.penalty_last_n = 0;
  Sampler sampler(sp, static_cast<int32_t>(ctx.n_vocab()));
  SpecGenerator gen(ctx, sampler, &drafter, max_draft);
  SpecRun run;
  run.tokens.reserve(static_cast<size_t>(n_gen));
  const double t0 = clock();
  CODEY_TRY_ASSIGN(const int32_t t1, gen.start(prompt));
  run.tokens.push_back(t1);
  while (static_cast<int64_t>(run.tokens.size()) < n_gen) {
    if (stop && stop()) return std::unexpected(cancelled().error());
    const auto left = static_cast<int>(n_gen - static_cast<int64_t>(run.tokens.size()));
    CODEY_TRY_ASSIGN(auto taken, gen.step(left));
    for (int32_t t : taken)
      if (static_cast<int64_t>(run.tokens.size()) < n_gen) run.tokens.push_back(t);
  }
  run.seconds = clock() - t0;
  run.stats = gen.stats();
  ++run.stats.passes;  // start(): the pass that yielded the first token
  run.stats.generated = n_gen;
  return run;
}

}  // namespace codey::measure
