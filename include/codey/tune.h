// `codey tune`: settings measured on this machine instead of guessed. The
// machine facts, the measurement sweep under a time budget, the answers users
// asked by hand (context vs speed, which quantization fits, time to first
// token) and the surgical edit of a model's entry in codey.yaml.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "codey/base.h"
#include "codey/measure.h"
#include "codey/runtime.h"
#include "codey/tensor.h"

namespace codey::tune {

// The machine facts and the statistics are measure's (codey/measure.h).
using measure::MachineInfo;
using measure::Stats;

// ------------------------------------------------------------- the sweep --

// What the runtime uses when the config says nothing: the reference the
// tuned settings are measured against.
struct Settings {
  int threads = 0;
  int64_t batch = 512;
  int64_t prompt_chunk = 128;
  TensorType kv_type = TensorType::kF16;
  bool repack = true;  // weights in the kernels' repacked layout
  bool operator==(const Settings&) const = default;
};

enum class TrialKind {
  kTg,       // generation: one token per decode after a short prompt, at `depth` positions
  kPp,       // prompt processing: n_prompt tokens in decodes of `batch` tokens, from `depth` positions
};

// One measured configuration: tokens/s over repetitions.
struct Trial {
  std::string phase;      // "threads", "batch", "kv", "layout", "ctx", "ttft", "defaults", "tuned"
  TrialKind kind = TrialKind::kTg;
  bool repacked = true;   // the model's weights in the repacked layout (false: the file's plain one)
  int threads = 0;
  int64_t batch = 0;      // pp: tokens per decode
  TensorType kv_type = TensorType::kF16;
  int64_t depth = 0;      // positions already in the KV cache
  int64_t tokens = 0;     // per repetition (tg: generated; pp: prompt)
  Stats tps;              // tokens/s
  int planned_reps = 0;
  bool partial = false;   // stopped early (budget or Ctrl-C) with fewer repetitions than planned
  std::string label() const;  // "tg16 @0", "pp256/b64 @0", "tg16 @0 plain"
};

struct Progress {
  double elapsed_s = 0, budget_s = 0;
  std::string what;            // the measurement running now
  const Trial* done = nullptr; // a trial that just finished (else null)
};

struct TuneOptions {
  std::string model_path;
  Millis budget = std::chrono::minutes(2);  // wall time of run_tune, model load included
  double ctx_tolerance = 0.10;              // the largest context whose tg is within this of short-context tg
  int64_t ttft_tokens = 2048;               // the prompt length time-to-first-token is estimated for
  int64_t gen_tokens = 256;                 // a typical answer: weighs tg against pp when choosing threads
  int repetitions = 3;                      // per measurement (fewer when the budget is short; at least 2)
  int64_t max_ctx = 0;                      // largest context to try (0 = training context, memory permitting)
  std::string cgroup_root = "/sys/fs/cgroup";
  std::string sysfs_cpu_root = "/sys/devices/system/cpu";
  Settings defaults;                        // threads 0 = the machine's usable cores
  const std::atomic<bool>* stop = nullptr;  // set (e.g. by SIGINT): finish with what was measured
  // Seconds on a monotonic clock, for the budget and every measurement;
  // empty = the steady clock. Tests inject a virtual clock, so what fits the
  // budget does not depend on how busy the machine is.
  std::function<double()> clock;
  std::function<void(const Progress&)> progress;  // called on the tuning thread
};

struct CtxPoint {
  int64_t depth = 0;
  Stats tps;
};

struct TuneResult {
  MachineInfo machine;
  std::string model_description;  // Model::describe()
  uint64_t n_params = 0, weight_bytes = 0;
  // What one generated token computes with and reads (a mixture: only the
  // routed experts; dense models: every matrix and one embedding row).
  uint64_t n_active_params = 0, active_weight_bytes = 0;
  int64_t n_ctx_train = 0;
  uint64_t kv_bytes_per_pos_f16 = 0, kv_bytes_per_pos_q8_0 = 0;  // one position, all layers, K and V
  double load_s = 0;

  std::vector<Trial> trials;           // in the order they ran
  std::vector<std::string> skipped;    // what the budget (or Ctrl-C) left out, and why
  std::vector<std::string> notes;      // what the report should say besides the trials
  std::string plan;                    // the sizing the budget allowed ("3 reps, pp 512, ...")

  Settings defaults;                   // resolved (threads = usable cores)
  Settings chosen;                     // defaults where nothing better was measured
  // Which fields of `chosen` were decided by measurement against the default
  // (only those are written to the config).
  bool threads_measured = false, batch_measured = false, prompt_chunk_measured = false, kv_measured = false,
       repack_measured = false;
  int best_tg_threads = 0, best_pp_threads = 0;  // 0 = not measured
  std::optional<Stats> best_tg, best_pp;         // the best measured of each kind (short context)

  // Same run, interleaved: the defaults against the chosen settings.
  std::optional<Stats> tg_defaults, tg_tuned, pp_defaults, pp_tuned;
  int64_t verify_pp_tokens = 0;

  // Generation speed at context fills, and the answer: the largest context
  // whose tg stays within the tolerance of the shortest fill's.
  std::vector<CtxPoint> ctx_points;
  std::optional<int64_t> ctx_within_tolerance;
  std::optional<int64_t> ctx_first_beyond;  // smallest measured fill beyond the tolerance
  int64_t ctx_tried_max = 0;
  std::string ctx_limit_reason;             // why no larger fill was tried

  // Time to first token for a prompt of ttft_tokens with the chosen settings.
  int64_t ttft_tokens = 0;
  std::optional<double> ttft_s;
  std::optional<Stats> ttft_pp_mid;         // pp tokens/s at half the prompt's depth

  double elapsed_s = 0;
  bool interrupted = false;
};

// Loads the model and runs the sweep; never exceeds options.budget by more
// than one decode step (plus the model load if that alone is longer).
Result<TuneResult> run_tune(const TuneOptions& options);

// The result as text: machine, table of trials (mean ± stddev), choices.
std::string format_report(const TuneResult& r, const TuneOptions& options);
nlohmann::json to_json(const TuneResult& r);

// ------------------------------------------------------- quantization fit --

// A quantization of this model and the bytes of its weights (exact when
// computed from the recipe per tensor).
struct QuantOption {
  std::string name;     // "Q4_K_M"
  uint64_t weight_bytes = 0;
};

struct QuantFit {
  std::string name;
  uint64_t weight_bytes = 0, kv_bytes = 0, scratch_bytes = 0;
  uint64_t total() const { return weight_bytes + kv_bytes + scratch_bytes; }
  bool fits = false;
};

struct QuantFitReport {
  uint64_t budget = 0;
  std::vector<std::pair<std::string, uint64_t>> pinned;  // other pinned models and what they need
  std::vector<std::string> pinned_errors;                // pinned models whose files could not be read
  uint64_t available = 0;                                // budget minus pinned
  int64_t n_ctx = 0;
  int parallel = 1;
  TensorType kv_type = TensorType::kF16;
  std::vector<QuantFit> options;                         // largest weights first
  std::optional<std::string> best;                       // the largest that fits
};

// `facts`: of the tuned model's file (KV and scratch per position do not
// depend on the weights' type). `pinned`: facts of the other pinned models
// with their starting context and slots.
QuantFitReport quant_fit(uint64_t budget, const ModelFacts& facts, int64_t n_ctx, int parallel, TensorType kv_type,
                         std::span<const QuantOption> options,
                         std::span<const std::pair<std::string, uint64_t>> pinned);

// ---------------------------------------------------------------- config --

// A value to write into a model's entry: key and its YAML scalar text.
using ConfigValue = std::pair<std::string, std::string>;

struct ConfigEdit {
  std::string text;
  bool changed = false;
  bool created_entry = false;
  std::string summary;  // "threads 2 -> 1, batch 512 (unchanged), ..."
};

// Writes `values` into models.<model_name> of a codey.yaml text, changing
// nothing else: existing keys get their value replaced in place (comments on
// their line kept), missing keys are added at the end of the entry, and one
// comment line "# codey tune: <comment>" precedes them (replacing the one a
// previous run wrote). Block maps, flow maps ({ ... }, one or more lines),
// JSON and the `name: path` shorthand are handled; a missing entry is
// created (with `path: new_entry_path`) at the end of `models`. When every
// value is already there and a tune comment exists, the text is returned
// unchanged (so running tune twice with the same choice gives the same file).
// The result is checked with parse_config: the entry has the new values and
// every other setting of every model is as before.
Result<ConfigEdit> edit_config_text(std::string_view text, std::string_view config_name,
                                    const std::string& base_dir, std::string_view model_name,
                                    std::span<const ConfigValue> values, std::string_view comment,
                                    std::string_view new_entry_path);

// The configured model whose path is `model_path` (same file), or nullopt;
// an error when several are.
Result<std::optional<std::string>> find_model_by_path(const RuntimeConfig& cfg, const std::string& model_path);

// The config keys tune writes for `r.chosen` (only the measured ones).
std::vector<ConfigValue> tuned_values(const TuneResult& r);
// "2025-06-01 on host (AMD EPYC, 2 cores, avx512): tg 12.3 t/s, pp 85.1 t/s; ctx <= 8192 within 10%"
std::string tune_comment(const TuneResult& r, const TuneOptions& options, std::string_view date);

}  // namespace codey::tune
