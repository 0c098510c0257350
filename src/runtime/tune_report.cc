// `codey tune`'s output: the human report, the JSON record, the tuned config
// values and their comment, and the quantization-fit table (pure functions of
// a TuneResult; the sweep that fills one is in tune.cc).
#include <algorithm>

#include <fmt/ranges.h>

#include "codey/tune.h"

namespace codey::tune {

std::string format_report(const TuneResult& r, const TuneOptions& o) {
  std::string s;
  s += fmt::format("machine   {}\n", r.machine.describe());
  // Active: what a generated token computes with and reads (a mixture of
  // experts: its routed experts); generation speed is bound by those bytes.
  s += fmt::format("model     {} ({:.2f} B params, {:.2f} B active; {} of weights, {} read per token; training context {})\n",
                   r.model_description, double(r.n_params) / 1e9, double(r.n_active_params) / 1e9,
                   format_bytes(r.weight_bytes), format_bytes(r.active_weight_bytes), r.n_ctx_train);
  s += fmt::format("budget    {} (used {:.1f} s, load {:.1f} s){}\n", format_duration(o.budget), r.elapsed_s, r.load_s,
                   r.interrupted ? " - interrupted, results so far" : "");
  if (!r.plan.empty()) s += fmt::format("plan      {}\n", r.plan);
  s += "\n";
  s += fmt::format("{:<9} {:<18} {:>7} {:>6} {:>5} {:>18} {:>5}\n", "phase", "test", "threads", "batch", "kv",
                   "tokens/s", "reps");
  for (const auto& t : r.trials)
    s += fmt::format("{:<9} {:<18} {:>7} {:>6} {:>5} {:>18} {:>5}\n", t.phase, t.label(), t.threads,
                     t.kind == TrialKind::kPp ? fmt::format("{}", t.batch) : std::string("-"), type_name(t.kv_type),
                     format_stats(t.tps), t.partial ? fmt::format("{}/{}", t.tps.n, t.planned_reps) : fmt::format("{}", t.tps.n));
  s += "\n";
  const Settings& c = r.chosen;
  const Settings& d = r.defaults;
  auto mark = [](bool measured, bool differs) {
    return !measured ? "  (not measured: default kept, not written)" : differs ? "  (changed from the default)" : "";
  };
  s += "chosen\n";
  s += fmt::format("  threads       {:<6} generation best {}, prompt best {}{}\n", c.threads,
                   r.best_tg_threads ? fmt::format("{} ({} t/s, weights read at {:.1f} GB/s)", r.best_tg_threads,
                                                        format_stats(*r.best_tg),
                                                        r.best_tg->mean * double(r.active_weight_bytes) / 1e9)
                                       : "-",
                   r.best_pp_threads ? fmt::format("{} ({} t/s)", r.best_pp_threads, format_stats(*r.best_pp)) : "-",
                   mark(r.threads_measured, c.threads != d.threads));
  s += fmt::format("  batch         {:<6}{}\n", c.batch, mark(r.batch_measured, c.batch != d.batch));
  s += fmt::format("  prompt_chunk  {:<6}{}\n", c.prompt_chunk, mark(r.prompt_chunk_measured, c.prompt_chunk != d.prompt_chunk));
  s += fmt::format("  kv_type       {:<6}{}\n", type_name(c.kv_type), mark(r.kv_measured, c.kv_type != d.kv_type));
  s += fmt::format("  repack        {:<6}{}\n", c.repack ? "true" : "false", mark(r.repack_measured, c.repack != d.repack));
  if (r.tg_defaults && r.tg_tuned) {
    s += fmt::format("\ndefaults vs tuned (same run, interleaved)\n");
    s += fmt::format("  generation    {} -> {} t/s ({:+.1f}%)\n", format_stats(*r.tg_defaults), format_stats(*r.tg_tuned),
                     100.0 * (r.tg_tuned->mean / r.tg_defaults->mean - 1));
    if (r.pp_defaults && r.pp_tuned)
      s += fmt::format("  prompt ({})  {} -> {} t/s ({:+.1f}%)\n", r.verify_pp_tokens, format_stats(*r.pp_defaults),
                       format_stats(*r.pp_tuned), 100.0 * (r.pp_tuned->mean / r.pp_defaults->mean - 1));
  }
  s += "\nanswers\n";
  if (r.ctx_within_tolerance) {
    const double base = r.ctx_points.front().tps.mean;
    std::vector<std::string> pts;
    for (const auto& p : r.ctx_points) pts.push_back(fmt::format("{}: {:.1f} ({:+.0f}%)", p.depth, p.tps.mean, 100.0 * (p.tps.mean / base - 1)));
    s += fmt::format("  context       generation stays within {:.0f}% of its short-context speed up to {} positions", 100 * o.ctx_tolerance,
                     *r.ctx_within_tolerance);
    if (r.ctx_first_beyond)
      s += fmt::format(" ({} is beyond)", *r.ctx_first_beyond);
    else
      s += fmt::format(" (the largest tried; limited by {})", r.ctx_limit_reason);
    s += fmt::format("\n                tg t/s by fill: {}\n", fmt::join(pts, ", "));
  } else {
    s += "  context       not measured\n";
  }
  if (r.ttft_s)
    s += fmt::format("  first token   {:.2f} s for a {}-token prompt (pp {} t/s at depth {})\n", *r.ttft_s, r.ttft_tokens,
                     format_stats(*r.ttft_pp_mid), r.ttft_tokens / 2);
  else
    s += fmt::format("  first token   not measured\n");
  for (const auto& k : r.skipped) s += fmt::format("skipped   {}\n", k);
  for (const auto& n : r.notes) s += fmt::format("note      {}\n", n);
  return s;
}

nlohmann::json to_json(const TuneResult& r) {
  using J = nlohmann::json;
  auto st = [](const Stats& s) { return J{{"mean", s.mean}, {"stddev", s.stddev}, {"n", s.n}}; };
  auto ost = [&](const std::optional<Stats>& s) { return s ? st(*s) : J(nullptr); };
  auto set = [](const Settings& s) {
    return J{{"threads", s.threads},
             {"batch", s.batch},
             {"prompt_chunk", s.prompt_chunk},
             {"kv_type", type_name(s.kv_type)},
             {"repack", s.repack}};
  };
  J trials = J::array();
  for (const auto& t : r.trials)
    trials.push_back({{"phase", t.phase},
                      {"test", t.kind == TrialKind::kTg ? "tg" : "pp"},
                      {"repacked", t.repacked},
                      {"threads", t.threads},
                      {"batch", t.batch},
                      {"kv_type", type_name(t.kv_type)},
                      {"depth", t.depth},
                      {"tokens", t.tokens},
                      {"avg_ts", t.tps.mean},
                      {"stddev_ts", t.tps.stddev},
                      {"reps", t.tps.n},
                      {"partial", t.partial}});
  J ctx = J::array();
  for (const auto& p : r.ctx_points) ctx.push_back({{"depth", p.depth}, {"tps", st(p.tps)}});
  J caches = J::array();
  for (const auto& c : r.machine.caches)
    caches.push_back({{"level", c.level}, {"type", c.type}, {"bytes", c.bytes}, {"shared_cpus", c.shared_cpus}});
  return J{{"machine",
            {{"hostname", r.machine.hostname},
             {"cpu", r.machine.cpu_brand},
             {"online_cpus", r.machine.online_cpus},
             {"affinity_cpus", r.machine.affinity_cpus},
             {"cpu_quota", r.machine.cpu_quota},
             {"usable_cores", r.machine.usable_cores},
             {"physical_memory", r.machine.physical_memory},
             {"memory_limit", r.machine.memory_limit},
             {"usable_memory", r.machine.usable_memory},
             {"isa", r.machine.isa},
             {"cpu_flags", r.machine.cpu_flags},
             {"caches", caches}}},
           {"model", {{"description", r.model_description}, {"n_params", r.n_params}, {"weight_bytes", r.weight_bytes},
                      {"n_active_params", r.n_active_params}, {"active_weight_bytes", r.active_weight_bytes},
                      {"n_ctx_train", r.n_ctx_train}}},
           {"plan", r.plan},
           {"trials", trials},
           {"defaults", set(r.defaults)},
           {"chosen", set(r.chosen)},
           {"measured", {{"threads", r.threads_measured}, {"batch", r.batch_measured},
                         {"prompt_chunk", r.prompt_chunk_measured}, {"kv_type", r.kv_measured},
                         {"repack", r.repack_measured}}},
           {"best_tg_threads", r.best_tg_threads},
           {"best_pp_threads", r.best_pp_threads},
           {"tg_defaults", ost(r.tg_defaults)},
           {"tg_tuned", ost(r.tg_tuned)},
           {"pp_defaults", ost(r.pp_defaults)},
           {"pp_tuned", ost(r.pp_tuned)},
           {"ctx_points", ctx},
           {"ctx_within_tolerance", r.ctx_within_tolerance ? J(*r.ctx_within_tolerance) : J(nullptr)},
           {"ttft_tokens", r.ttft_tokens},
           {"ttft_s", r.ttft_s ? J(*r.ttft_s) : J(nullptr)},
           {"skipped", r.skipped},
           {"notes", r.notes},
           {"elapsed_s", r.elapsed_s},
           {"interrupted", r.interrupted}};
}

// ------------------------------------------------------- quantization fit --

QuantFitReport quant_fit(uint64_t budget, const ModelFacts& facts, int64_t n_ctx, int parallel, TensorType kv_type,
                         std::span<const QuantOption> options,
                         std::span<const std::pair<std::string, uint64_t>> pinned) {
  QuantFitReport q;
  q.budget = budget;
  q.n_ctx = n_ctx;
  q.parallel = parallel;
  q.kv_type = kv_type;
  uint64_t pinned_sum = 0;
  for (const auto& p : pinned) {
    q.pinned.push_back(p);
    pinned_sum += p.second;
  }
  q.available = budget > pinned_sum ? budget - pinned_sum : 0;
  for (const auto& o : options) {
    QuantFit f;
    f.name = o.name;
    f.weight_bytes = o.weight_bytes;
    f.kv_bytes = facts.kv_bytes_per_pos * static_cast<uint64_t>(n_ctx) * static_cast<uint64_t>(parallel);
    f.scratch_bytes = facts.scratch_bytes;
    f.fits = f.total() <= q.available;
    q.options.push_back(f);
  }
  std::stable_sort(q.options.begin(), q.options.end(),
                   [](const QuantFit& a, const QuantFit& b) { return a.weight_bytes > b.weight_bytes; });
  for (const auto& f : q.options)
    if (f.fits) {
      q.best = f.name;
      break;
    }
  return q;
}

// ------------------------------------------------------------------ config --

std::vector<ConfigValue> tuned_values(const TuneResult& r) {
  std::vector<ConfigValue> v;
  if (r.threads_measured) v.emplace_back("threads", fmt::format("{}", r.chosen.threads));
  if (r.batch_measured) v.emplace_back("batch", fmt::format("{}", r.chosen.batch));
  if (r.prompt_chunk_measured) v.emplace_back("prompt_chunk", fmt::format("{}", r.chosen.prompt_chunk));
  if (r.kv_measured) v.emplace_back("kv_type", std::string(type_name(r.chosen.kv_type)));
  if (r.repack_measured) v.emplace_back("repack", r.chosen.repack ? "true" : "false");
  return v;
}

std::string tune_comment(const TuneResult& r, const TuneOptions& o, std::string_view date) {
  std::string s = fmt::format("{} on {}", date, r.machine.short_description());
  std::vector<std::string> figs;
  if (r.best_tg) figs.push_back(fmt::format("tg {:.1f} t/s", r.tg_tuned ? r.tg_tuned->mean : r.best_tg->mean));
  if (r.best_pp) figs.push_back(fmt::format("pp {:.1f} t/s", r.pp_tuned ? r.pp_tuned->mean : r.best_pp->mean));
  if (r.ctx_within_tolerance)
    figs.push_back(fmt::format("ctx <= {} keeps tg within {:.0f}%", *r.ctx_within_tolerance, 100 * o.ctx_tolerance));
  if (!figs.empty()) s += fmt::format(": {}", fmt::join(figs, ", "));
  return s;
}

}  // namespace codey::tune
