// `codey tune --model FILE [--config codey.yaml] [--name NAME] [--budget 2m]`:
// measures threads, batch and KV type on this machine within a time budget,
// answers context / quantization / first-token questions, and writes the
// chosen values into the model's entry of the config (comments kept).
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/progress.h"
#include "codey/convert.h"
#include "codey/gguf.h"
#include "codey/measure.h"
#include "codey/runtime.h"
#include "codey/tune.h"
#include "codey/store.h"

namespace codey::cli {
namespace {

namespace fs = std::filesystem;

std::atomic<bool> g_stop{false};

void on_sigint(int) {
  g_stop.store(true);
  signal(SIGINT, SIG_DFL);  // a second Ctrl-C ends the process
}

struct TuneCliOptions {
  std::string model, config, name, budget = "2m", ctx_tolerance = "10%";
  int64_t ttft_tokens = 2048, gen_tokens = 256, max_ctx = 0;
  int repetitions = 3;
  bool dry_run = false, json = false, virtual_clock = false;
  std::string cgroup_root = "/sys/fs/cgroup", sysfs_cpu_root = "/sys/devices/system/cpu";
};

// "10%", "10", "0.1" -> 0.10.
Result<double> parse_fraction(const std::string& s) {
  std::string t = s;
  bool pct = !t.empty() && t.back() == '%';
  if (pct) t.pop_back();
  char* end = nullptr;
  double v = std::strtod(t.c_str(), &end);
  if (t.empty() || end != t.c_str() + t.size() || !(v > 0))
    return make_error(ErrorCode::kInvalidArgument, "--ctx-tolerance: expected a percentage like 10% or a fraction like 0.1, got '{}'", s);
  if (pct || v >= 1) v /= 100;
  if (v >= 1) return make_error(ErrorCode::kInvalidArgument, "--ctx-tolerance: expected less than 100%, got '{}'", s);
  return v;
}

std::string today() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d", &tm);
  return buf;
}

std::string sanitize_name(std::string s) {
  for (auto& c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) c = '-';
  return s.empty() ? std::string("model") : s;
}

Result<std::string> read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kNotFound, "cannot open '{}'", path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Replace the file in one rename, keeping its permissions.
Status write_atomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tune-tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return make_error(ErrorCode::kIo, "cannot write '{}'", tmp);
    out << text;
    out.flush();
    if (!out) return make_error(ErrorCode::kIo, "cannot write '{}'", tmp);
  }
  std::error_code ec;
  if (fs::exists(path, ec)) fs::permissions(tmp, fs::status(path, ec).permissions(), ec);
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    return make_error(ErrorCode::kIo, "cannot replace '{}': {}", path, ec.message());
  }
  return {};
}

// Weight bytes of this model under each quantization recipe, tensor by
// tensor (the recipe's fallbacks included), without converting anything.
std::vector<tune::QuantOption> quant_options(const std::string& model_path) {
  std::vector<tune::QuantOption> out;
  auto file = GgufFile::open(model_path);
  if (!file) return out;
  for (const char* name : {"F16", "Q8_0", "Q6_K", "Q5_K_M", "Q5_K_S", "Q4_K_M", "Q4_K_S", "Q4_0", "IQ4_NL", "Q3_K_M",
                           "Q3_K_S", "Q2_K"}) {
    auto target = parse_quant_target(name);
    if (!target) continue;
    QuantRecipe recipe(*target, recipe_context(*file));
    uint64_t bytes = 0;
    for (const auto& t : file->tensors()) {
      std::span<const int64_t> ne(t.ne.data(), static_cast<size_t>(t.n_dims));
      auto choice = recipe.choose(t.name, ne, t.type);
      const TensorType type = choice ? choice->type : t.type;
      const auto& tr = type_traits(type);
      if (t.ne[0] % tr.block_size != 0) {
        bytes += t.n_bytes;
        continue;
      }
      int64_t rows = 1;
      for (int d = 1; d < t.n_dims; ++d) rows *= t.ne[static_cast<size_t>(d)];
      bytes += row_bytes(type, t.ne[0]) * static_cast<uint64_t>(rows);
    }
    out.push_back({name, bytes});
  }
  return out;
}

std::string format_quant_fit(const tune::QuantFitReport& q, const std::string& ctx_source) {
  std::string s = fmt::format("  quantization  budget {}", format_bytes(q.budget));
  for (const auto& [n, b] : q.pinned) s += fmt::format(" - pinned {} {}", n, format_bytes(b));
  s += fmt::format(" = {} for this model at ctx {} ({}) x {} slot(s), KV {}\n", format_bytes(q.available), q.n_ctx,
                   ctx_source, q.parallel, type_name(q.kv_type));
  for (const auto& e : q.pinned_errors) s += fmt::format("                (not counted: {})\n", e);
  for (const auto& f : q.options)
    s += fmt::format("                {:<7} weights {:>10} + KV {:>10} + scratch {:>10} = {:>10}  {}\n", f.name,
                     format_bytes(f.weight_bytes), format_bytes(f.kv_bytes), format_bytes(f.scratch_bytes),
                     format_bytes(f.total()), f.fits ? "fits" : "does not fit");
  s += q.best ? fmt::format("                largest that fits: {}\n", *q.best)
              : std::string("                none fits: lower ctx or slots, or unpin a model\n");
  return s;
}

int run_tune_cli(const TuneCliOptions& c) {
  tune::TuneOptions o;
  auto path = resolve_model_path(c.model);
  if (!path) return fail(path.error().message);
  o.model_path = *path;
  auto budget = parse_duration(c.budget);
  if (!budget || budget->count() <= 0)
    return fail(fmt::format("--budget: expected a duration like 2m or 90s, got '{}'", c.budget));
  o.budget = *budget;
  auto tol = parse_fraction(c.ctx_tolerance);
  if (!tol) return fail(tol.error().message);
  o.ctx_tolerance = *tol;
  o.ttft_tokens = c.ttft_tokens;
  o.gen_tokens = c.gen_tokens;
  o.max_ctx = c.max_ctx;
  o.repetitions = c.repetitions;
  o.cgroup_root = c.cgroup_root;
  o.sysfs_cpu_root = c.sysfs_cpu_root;
  o.stop = &g_stop;
  if (c.virtual_clock) o.clock = measure::virtual_clock();
  {
    std::error_code ec;
    if (!fs::is_regular_file(c.model, ec)) return fail(fmt::format("model file '{}' not found", c.model));
  }

  // The config and the model's entry in it.
  std::string config_path = c.config;
  bool config_exists = false;
  if (config_path.empty()) {
    config_path = default_config_path();
    std::error_code ec;
    if (!fs::exists(config_path, ec)) config_path.clear();
  }
  std::optional<RuntimeConfig> cfg;
  if (!config_path.empty()) {
    std::error_code ec;
    config_exists = fs::exists(config_path, ec);
    if (config_exists) {
      auto r = load_config(config_path);
      if (!r) return fail(r.error().message);
      cfg = std::move(*r);
    }
  }
  std::string model_name = c.name;
  if (model_name.empty() && cfg) {
    auto found = tune::find_model_by_path(*cfg, fs::absolute(c.model).lexically_normal().string());
    if (!found) return fail(found.error().message);
    if (*found) model_name = **found;
  }
  if (model_name.empty()) model_name = sanitize_name(fs::path(c.model).stem().string());
  const ModelConfig* entry = cfg ? cfg->find_model(model_name) : nullptr;
  // The defaults to beat are what this model runs with today: its entry's
  // settings (threads 0 = auto = the usable cores).
  if (entry) {
    o.defaults.threads = entry->threads > 0 ? entry->threads : (cfg->threads > 0 ? cfg->threads : 0);
    o.defaults.batch = entry->batch;
    o.defaults.prompt_chunk = entry->prompt_chunk;
    o.defaults.kv_type = entry->kv_type;
    o.defaults.repack = entry->repack;
  }

  // Progress: a redrawn line on a terminal; each finished measurement as a row.
  ProgressLine line;
  o.progress = [&](const tune::Progress& p) {
    if (p.done) {
      line.done();
      const auto& t = *p.done;
      if (!c.json || line.tty())
        std::fprintf(stderr, "  %-9s %-18s threads %-3d %-5s %s t/s\n", t.phase.c_str(), t.label().c_str(), t.threads,
                     std::string(type_name(t.kv_type)).c_str(), measure::format_stats(t.tps).c_str());
      return;
    }
    line.update(fmt::format("[{:5.1f} s / {:.0f} s] {}", p.elapsed_s, p.budget_s, p.what));
  };

  g_stop.store(false);
  struct sigaction sa{}, old{};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old);
  if (!c.json) std::fprintf(stderr, "codey tune: %s, budget %s (Ctrl-C stops and keeps what was measured)\n", c.model.c_str(), format_duration(o.budget).c_str());
  auto result = tune::run_tune(o);
  line.done();
  sigaction(SIGINT, &old, nullptr);
  if (!result) return fail(result.error().message);
  const tune::TuneResult& r = *result;

  // Which quantization fits next to the pinned models.
  auto backend = make_gguf_backend();
  ModelConfig mc = entry ? *entry : ModelConfig{};
  mc.name = model_name;
  mc.path = c.model;
  mc.kv_type = r.chosen.kv_type;
  mc.batch = r.chosen.batch;
  std::string fit_text;
  nlohmann::json fit_json;
  if (auto facts = backend->inspect(mc)) {
    uint64_t budget_bytes = 0;
    if (cfg && !cfg->memory_budget_auto) {
      budget_bytes = cfg->memory_budget;
    } else {  // "auto" as the runtime computes it, from this (possibly fake) cgroup
      const uint64_t avail = usable_memory_bytes(c.cgroup_root);
      const uint64_t margin = std::clamp<uint64_t>(avail / 10, 256ull << 20, 2ull << 30);
      budget_bytes = avail > margin ? avail - margin : avail / 2;
    }
    std::vector<std::pair<std::string, uint64_t>> pinned;
    std::vector<std::string> pinned_errors;
    if (cfg)
      for (const auto& m : cfg->models) {
        if (!m.pinned || m.name == model_name) continue;
        auto f = backend->inspect(m);
        if (!f) {
          pinned_errors.push_back(f.error().message);
          continue;
        }
        pinned.emplace_back(m.name, f->bytes_at(plan_ctx(m, *f).start, m.parallel));
      }
    int64_t n_ctx = 0;
    std::string ctx_source;
    if (entry && !entry->ctx_auto) {
      n_ctx = entry->ctx;
      ctx_source = "configured";
    } else if (r.ctx_within_tolerance) {
      n_ctx = *r.ctx_within_tolerance;
      ctx_source = "within the speed tolerance";
    } else {
      n_ctx = std::min<int64_t>(facts->n_ctx_train > 0 ? facts->n_ctx_train : 4096, 4096);
      ctx_source = "default";
    }
    const auto options = quant_options(c.model);
    auto q = tune::quant_fit(budget_bytes, *facts, n_ctx, mc.parallel, mc.kv_type, options, pinned);
    q.pinned_errors = pinned_errors;
    fit_text = format_quant_fit(q, ctx_source);
    fit_json = {{"budget", q.budget}, {"available", q.available}, {"n_ctx", q.n_ctx}, {"parallel", q.parallel},
                {"best", q.best ? nlohmann::json(*q.best) : nlohmann::json(nullptr)}};
    for (const auto& f : q.options)
      fit_json["options"].push_back({{"name", f.name}, {"weight_bytes", f.weight_bytes}, {"kv_bytes", f.kv_bytes},
                                     {"scratch_bytes", f.scratch_bytes}, {"total", f.total()}, {"fits", f.fits}});
  } else {
    fit_text = fmt::format("  quantization  not answered: {}\n", facts.error().message);
  }

  // Write the config.
  std::string config_note;
  nlohmann::json config_json = {{"path", config_path}, {"model", model_name}, {"changed", false}};
  const auto values = tune::tuned_values(r);
  if (config_path.empty()) {
    config_note = "no config written (no --config, and no codey.yaml found); pass --config FILE to write one";
  } else if (values.empty()) {
    config_note = fmt::format("{} not changed: nothing was measured against the defaults", config_path);
  } else {
    std::string text;
    if (config_exists) {
      auto t = read_text(config_path);
      if (!t) return fail(t.error().message);
      text = std::move(*t);
    }
    std::string base_dir = fs::absolute(fs::path(config_path)).parent_path().lexically_normal().string();
    std::string new_path = fs::absolute(c.model).lexically_normal().string();
    if (auto rel = fs::path(new_path).lexically_relative(base_dir); !rel.empty() && !rel.string().starts_with(".."))
      new_path = rel.string();
    auto edit = tune::edit_config_text(text, config_path, base_dir, model_name, values,
                                       tune::tune_comment(r, o, today()), new_path);
    if (!edit) return fail(edit.error().message);
    std::string out_text = edit->text;
    if (!config_exists)
      out_text = "# codey.yaml, started by codey tune (examples/codey.yaml documents every setting)\n" + out_text;
    config_json["summary"] = edit->summary;
    if (!edit->changed && config_exists) {
      config_note = fmt::format("{}: models.{} already has these values ({}); file unchanged", config_path, model_name,
                                edit->summary);
    } else if (c.dry_run) {
      config_note = fmt::format("--dry-run: {} not written; it would get models.{}: {}", config_path, model_name, edit->summary);
    } else {
      if (auto st = write_atomically(config_path, out_text); !st) return fail(st.error().message);
      config_json["changed"] = true;
      config_note = fmt::format("wrote {}: models.{}{}: {}", config_path, model_name,
                                edit->created_entry ? " (new entry)" : "", edit->summary);
    }
  }

  if (c.json) {
    nlohmann::json j = tune::to_json(r);
    j["quant_fit"] = fit_json;
    j["config"] = config_json;
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::string report = tune::format_report(r, o);
    std::printf("%s%s\n%s\n", report.c_str(), fit_text.c_str(), config_note.c_str());
  }
  return r.interrupted ? 130 : 0;
}

CommandRunner setup(CLI::App& root) {
  auto o = std::make_shared<TuneCliOptions>();
  auto* cmd = root.add_subcommand("tune", "Measure threads, batch and KV type on this machine and write them to the config");
  cmd->add_option("-m,--model", o->model, "GGUF model file or reference (hf.co/OWNER/REPO:QUANT, ollama:NAME:TAG)")
      ->required();
  cmd->add_option("-c,--config", o->config, "Config to write (default: $CODEY_CONFIG, ./codey.yaml, ~/.config/codey/codey.yaml if present)");
  cmd->add_option("--name", o->name, "The model's name in the config (default: the entry with this path, else the file name)");
  cmd->add_option("--budget", o->budget, "Wall time for the whole run, load included (e.g. 90s, 2m)")->capture_default_str();
  cmd->add_option("--ctx-tolerance", o->ctx_tolerance, "Largest context whose generation stays within this of short-context speed")->capture_default_str();
  cmd->add_option("--ttft-tokens", o->ttft_tokens, "Prompt length to estimate the time to first token for")->capture_default_str();
  cmd->add_option("--gen-tokens", o->gen_tokens, "Typical answer length: weighs generation against prompt speed when choosing threads")->capture_default_str();
  cmd->add_option("--max-ctx", o->max_ctx, "Largest context fill to measure (default: the training context, memory permitting)");
  cmd->add_option("-r,--repetitions", o->repetitions, "Repetitions per measurement (fewer if the budget is short)")->capture_default_str();
  cmd->add_flag("--dry-run", o->dry_run, "Measure and report, but do not write the config");
  cmd->add_flag("--json", o->json, "Print the results as JSON");
  cmd->add_option("--cgroup-root", o->cgroup_root)->group("");  // tests: a fake cgroup tree
  cmd->add_option("--sysfs-cpu-root", o->sysfs_cpu_root)->group("");
  // tests: the sweep's clock advances 1 ms per reading, so what fits the
  // budget and what is chosen do not depend on the machine's load
  cmd->add_flag("--virtual-clock", o->virtual_clock)->group("");
  return [o]() -> int { return run_tune_cli(*o); };
}

CODEY_REGISTER_COMMAND(tune, setup);

}  // namespace
}  // namespace codey::cli
