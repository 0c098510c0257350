// llama-bench's measurement (run_bench): every model x threads x depth x
// (prompt | generation) test with a warm-up and timed repetitions, the work
// each did, and the machine's limits to set the rates against.
#include <algorithm>
#include <map>

#include "codey/gguf.h"
#include "codey/kernels.h"
#include "codey/measure.h"
#include "codey/tokenizer.h"

namespace codey::measure {

std::string BenchRecord::test_name() const {
  std::string t = n_prompt > 0 ? fmt::format("pp{}", n_prompt) : fmt::format("tg{}", n_gen);
  if (n_depth > 0) t += fmt::format(" @ d{}", n_depth);
  if (!spec.empty()) t += fmt::format(" +{}", spec);
  return t;
}

double BenchRecord::tokens_per_pass() const {
  if (spec.empty()) return 1.0;
  return target_passes > 0 ? double(n_gen) * double(samples_s.size()) / double(target_passes) : 0.0;
}

Stats BenchRecord::seconds() const { return stats_of(samples_s); }

Stats BenchRecord::tokens_per_second() const {
  std::vector<double> ts;
  for (double s : samples_s) ts.push_back(static_cast<double>(tokens()) / s);
  return stats_of(ts);
}

double BenchRecord::achieved() const {
  const double s = seconds().mean;
  if (s <= 0 || !spec.empty()) return 0;  // speculative: not one weight read per token
  return n_prompt > 0 ? ops_per_rep / s / 1e9 : bytes_per_rep / s / 1e9;
}

double BenchRecord::limit() const { return n_prompt > 0 ? limits.int8_gops : limits.read_gbps; }

double BenchRecord::limit_share() const { return limit() > 0 ? achieved() / limit() : 0.0; }

std::string model_type(const Model& m) {
  std::string_view ft = "?";
  if (auto v = m.gguf().get_u64_or("general.file_type", ~uint64_t{0}); v && *v != ~uint64_t{0}) ft = file_type_name(*v);
  const double p = static_cast<double>(m.n_params());
  const std::string size = p >= 1e9 ? fmt::format("{:.1f}B", p / 1e9) : fmt::format("{:.0f}M", p / 1e6);
  return fmt::format("{} {} {}", m.hparams().arch, size, ft);
}

int64_t BenchSpec::positions_needed() const {
  int64_t need = 1;
  for (int64_t d : depths) {
    for (int64_t p : prompts) need = std::max(need, d + p);
    for (int64_t g : gens) need = std::max(need, d + g + 1);
  }
  return need;
}

Result<std::vector<BenchRecord>> run_bench(const BenchSpec& spec) {
  if (spec.reps < 1) return make_error(ErrorCode::kInvalidArgument, "repetitions must be at least 1, got {}", spec.reps);
  if (spec.batch < 1) return make_error(ErrorCode::kInvalidArgument, "the batch must be at least 1 token, got {}", spec.batch);
  std::vector<int> threads = spec.threads;
  if (threads.empty()) threads.push_back(usable_cores());
  for (int t : threads)
    if (t < 1) return make_error(ErrorCode::kInvalidArgument, "thread counts must be at least 1, got {}", t);
  auto say = [&](const std::string& what) {
    if (spec.progress) spec.progress(what);
  };

  const int64_t need = spec.positions_needed();
  const int64_t n_ctx = spec.ctx > 0 ? spec.ctx : need;
  if (n_ctx < need)
    return make_error(ErrorCode::kInvalidArgument, "a context of {} is too small for the tests (they need {} positions)",
                      n_ctx, need);

  if (!spec.draft.empty() && spec.lookup > 0)
    return make_error(ErrorCode::kInvalidArgument, "give one of a draft model and lookup, not both");
  if (spec.lookup < 0 || spec.draft_max < 1)
    return make_error(ErrorCode::kInvalidArgument, "lookup and draft_max must be positive");
  std::unique_ptr<Model> draft_model;
  std::optional<Tokenizer> draft_tok;
  if (!spec.draft.empty()) {
    say(fmt::format("loading the draft model {}", spec.draft));
    auto dm = Model::load(spec.draft);
    if (!dm) return make_error(dm.error().code, "draft {}: {}", spec.draft, dm.error().message);
    auto dt = Tokenizer::from_gguf((*dm)->gguf());
    if (!dt) return make_error(dt.error().code, "draft {}: {}", spec.draft, dt.error().message);
    draft_model = std::move(*dm);
    draft_tok = std::move(*dt);
  }

  std::vector<BenchRecord> recs;
  for (const std::string& path : spec.models) {
    const auto t_load = Clock::now();
    CODEY_TRY_ASSIGN(auto model, Model::load(path));
    const double load_s = seconds_since(t_load);
    const Model& m = *model;
    if (draft_model) {
      CODEY_TRY_ASSIGN(const Tokenizer tok, Tokenizer::from_gguf(m.gguf()));
      if (auto st = check_draft_vocabulary(tok, *draft_tok); !st)
        return make_error(ErrorCode::kInvalidArgument, "the draft {} cannot draft for {}: they do not share a vocabulary: {}",
                          spec.draft, path, st.error().message);
    }
    const size_t first_rec = recs.size();
    for (int nt : threads) {
      ContextParams cp;
      cp.n_ctx = n_ctx;
      cp.n_batch = spec.batch;
      cp.n_threads = nt;
      cp.kv_type = spec.kv_type;
      CODEY_TRY_ASSIGN(auto ctx, Context::create(m, cp));
      Context& c = *ctx;
      std::unique_ptr<Drafter> drafter;
      int max_draft = 0;
      std::string how;
      if (draft_model) {
        ContextParams dcp = cp;
        dcp.pool = &c.pool();
        DraftModelParams dp;
        dp.p_min = spec.draft_p_min;
        dp.target_vocab = c.n_vocab();
        CODEY_TRY_ASSIGN(drafter, make_model_drafter(*draft_model, dcp, dp));
        max_draft = spec.draft_max;
        how = fmt::format("draft {}", model_type(*draft_model));
      } else if (spec.lookup > 0) {
        drafter = make_lookup_drafter(1);
        max_draft = spec.lookup;
        how = fmt::format("lookup {}", spec.lookup);
      }
      for (int64_t d : spec.depths) {
        // The depth's tokens are evaluated once; each repetition starts from them.
        c.kv().clear(0);
        const auto depth_tokens = random_tokens(d, m.hparams().n_vocab, 7);
        if (d > 0) {
          say(fmt::format("filling {} positions of context", d));
          CODEY_TRY(prefill(c, depth_tokens, spec.batch));
        }
        auto record = [&](int64_t p, int64_t g) {
          BenchRecord r;
          r.model_path = path;
          r.model_type = model_type(m);
          r.model_size = m.weight_bytes();
          r.n_params = m.n_params();
          r.n_threads = nt;
          r.n_prompt = p;
          r.n_gen = g;
          r.n_depth = d;
          r.n_batch = spec.batch;
          r.kv_type = spec.kv_type;
          r.isa = kernels::kernels().name;
          r.load_s = load_s;
          return r;
        };
        for (int64_t p : spec.prompts) {
          if (p == 0) continue;
          BenchRecord r = record(p, 0);
          r.ops_per_rep = prompt_ops(m, d, p);
          const auto toks = random_tokens(p, m.hparams().n_vocab, 11);
          for (int rep = -1; rep < spec.reps; ++rep) {  // rep -1: warm-up
            const double c0 = process_cpu_seconds();
            CODEY_TRY_ASSIGN(const double s, time_prompt(c, d, toks, spec.batch));
            if (rep >= 0) {
              r.samples_s.push_back(s);
              r.samples_cpu_s.push_back(process_cpu_seconds() - c0);
            }
          }
          recs.push_back(std::move(r));
        }
        for (int64_t g : spec.gens) {
          if (g == 0) continue;
          BenchRecord r = record(0, g);
          r.bytes_per_rep = generation_bytes(m, spec.kv_type, d, g);
          for (int rep = -1; rep < spec.reps; ++rep) {
            const int64_t n = rep < 0 ? std::min<int64_t>(g, 8) : g;
            const double c0 = process_cpu_seconds();
            CODEY_TRY_ASSIGN(const double s, time_generation(c, d, static_cast<int32_t>(rep + 2), n));
            if (rep >= 0) {
              r.samples_s.push_back(s);
              r.samples_cpu_s.push_back(process_cpu_seconds() - c0);
            }
          }
          recs.push_back(std::move(r));
          if (!drafter) continue;
          // The same generations again, drafted and verified.
          BenchRecord sr = record(0, g);
          sr.spec = how;
          for (int rep = -1; rep < spec.reps; ++rep) {
            const int64_t n = rep < 0 ? std::min<int64_t>(g, 8) : g;
            CODEY_TRY_ASSIGN(const SpecRun run, time_spec_generation(c, *drafter, max_draft, depth_tokens,
                                                                     static_cast<int32_t>(rep + 2), n));
            if (rep < 0) continue;
            sr.samples_s.push_back(run.seconds);
            sr.draft_tokens += run.stats.drafted;
            sr.draft_accepted += run.stats.accepted;
            sr.target_passes += run.stats.passes;
          }
          recs.push_back(std::move(sr));
        }
      }
    }
    const uint64_t peak = peak_rss_bytes();
    for (size_t i = first_rec; i < recs.size(); ++i) recs[i].peak_rss = peak;
  }
  // Machine limits last, so the models' peak memory does not include the
  // bandwidth test's buffer.
  if (spec.limits) {
    std::map<int, Limits> limits;
    for (BenchRecord& r : recs) {
      auto it = limits.find(r.n_threads);
      if (it == limits.end()) it = limits.emplace(r.n_threads, measure_limits(r.n_threads)).first;
      r.limits = it->second;
    }
  }
  return recs;
}

}  // namespace codey::measure
