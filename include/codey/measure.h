// Measurement, one place for `codey bench`, `codey tune` and the Google
// Benchmark programs: what this machine is and can do (cores, memory, caches,
// read bandwidth, int8 dot-product peak), statistics of repeated
// measurements, and timed prompt-processing (pp) and generation (tg) runs of
// a model at a context depth, with the work each run does (ops, bytes) so a
// rate can be set against the machine's limit.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "codey/base.h"
#include "codey/model.h"
#include "codey/spec.h"
#include "codey/tensor.h"

namespace codey::measure {

// ---------------------------------------------------------------- time --

// Seconds on a monotonic clock. Everything that times or budgets takes one,
// so tests can inject a virtual clock and assert on what a run decided
// instead of on how fast a busy machine was.
using ClockFn = std::function<double()>;
double steady_seconds();  // the default: std::chrono::steady_clock
// A clock that advances by `tick_s` at every reading (thread-safe): a run's
// time is the readings it made, the same on an idle and on a loaded machine.
ClockFn virtual_clock(double tick_s = 1e-3);
// CPU seconds used so far by this process (all threads) / by the calling
// thread. On a shared machine wall time also counts the time other processes
// had the cores; CPU time is what a run was actually given.
double process_cpu_seconds();
double thread_cpu_seconds();
// Checked between two decodes: true ends the run (kCancelled). Empty = never.
using StopFn = std::function<bool()>;

// ---------------------------------------------------------- statistics --

struct Stats {
  double mean = 0, stddev = 0;  // sample standard deviation (0 with one sample)
  int n = 0;
  double median = 0, min = 0, max = 0;
};
Stats stats_of(std::span<const double> samples);
// "12.34 ± 0.56"
std::string format_stats(const Stats& s);

// ------------------------------------------------------------- machine --

struct CacheInfo {
  int level = 0;
  std::string type;       // "Data", "Instruction", "Unified"
  uint64_t bytes = 0;
  int shared_cpus = 0;    // CPUs sharing this cache (from shared_cpu_list)
};

struct MachineInfo {
  std::string hostname;
  std::string cpu_brand;
  int online_cpus = 0;        // sysconf(_SC_NPROCESSORS_ONLN)
  int affinity_cpus = 0;      // CPUs in this process's affinity mask
  double cpu_quota = 0;       // cgroup CPU quota in cores (0 = none)
  int usable_cores = 0;       // usable_cores(): affinity, then the quota rounded up
  uint64_t physical_memory = 0;
  uint64_t memory_limit = 0;  // cgroup memory limit (0 = none)
  uint64_t usable_memory = 0; // usable_memory_bytes(): the limit or MemAvailable
  std::string isa;            // kernel table in use (ref, avx2, avx512)
  std::vector<std::string> cpu_flags;  // the features dispatch looks at, present on this CPU
  std::vector<CacheInfo> caches;       // of cpu0, by level

  // "Xeon; 2 of 2 cores usable (...); memory ...; kernels avx512 [...]; caches ..."
  std::string describe() const;
  // For a config comment: "host (Xeon, 2 cores usable, avx512)".
  std::string short_description() const;
};

// `cgroup_root` and `sysfs_cpu_root` let tests point at fake trees.
MachineInfo detect_machine(const std::string& cgroup_root = "/sys/fs/cgroup",
                           const std::string& sysfs_cpu_root = "/sys/devices/system/cpu");
// Caches of cpu0 from <sysfs_cpu_root>/cpu0/cache/index*/.
std::vector<CacheInfo> read_caches(const std::string& sysfs_cpu_root);

// What the machine can do at most, measured here (each takes about a second).
struct Limits {
  double read_gbps = 0;  // read bandwidth of n threads streaming 1 GiB, best of 5 passes
  double int8_gops = 0;  // int8 multiply-accumulates of n threads with the kernel table's widest
                         // instruction (KernelTable::int8_peak; ref: the best table's), best of 3,
                         // timed by each thread's CPU time: a pure compute loop, so this is the
                         // cores' rate also while other processes share them
};
double read_bandwidth_gbps(int n_threads);
double int8_peak_gops(int n_threads);
Limits measure_limits(int n_threads);

// ---------------------------------------------------------------- runs --

// Work of a run, from the model's own accounting (Model::active_weight_bytes
// and the matrices a token multiplies by), for rates against the limits.
// Ops of processing n_prompt tokens at positions [depth, depth + n_prompt):
// 2 per multiply-add of every matrix a token uses, attention's q.k and p.v,
// and the output layer for the last token.
double prompt_ops(const Model& m, int64_t depth, int64_t n_prompt);
// Bytes a generation of n_gen tokens after `depth` positions reads: the
// weights every step, plus the K and V rows of the positions attended to.
double generation_bytes(const Model& m, TensorType kv_type, int64_t depth, int64_t n_gen);

// Deterministic pseudo-random token ids of a vocabulary (benchmark prompts).
std::vector<int32_t> random_tokens(int64_t n, int64_t n_vocab, uint32_t seed);

// Writes random K and V rows for positions [from, upto) of sequence 0 in
// every layer and makes upto its length: what attention costs depends on how
// many positions there are, not on their values, so a deep context is ready
// without processing a long prompt. Stops (kCancelled) between layers.
Status fill_kv_random(Context& ctx, int64_t from, int64_t upto, const StopFn& stop = {});

// Processes `tokens` on sequence 0 in decodes of n_batch, the last token
// asking for logits as the first token of an answer would; returns its
// argmax. Stops (kCancelled) between two decodes.
Result<int32_t> prefill(Context& ctx, std::span<const int32_t> tokens, int64_t n_batch, const StopFn& stop = {});
// Generates n tokens on sequence 0, each decode fed the previous argmax.
Status generate(Context& ctx, int32_t first, int64_t n, const StopFn& stop = {});

// Seconds of one timed repetition after sequence 0 is cut back to `depth`
// positions (which must hold rows: a prefill or fill_kv_random).
Result<double> time_prompt(Context& ctx, int64_t depth, std::span<const int32_t> tokens, int64_t n_batch,
                           const ClockFn& clock = steady_seconds, const StopFn& stop = {});
Result<double> time_generation(Context& ctx, int64_t depth, int32_t first, int64_t n_gen,
                               const ClockFn& clock = steady_seconds, const StopFn& stop = {});

// Speculative generation (SpecGenerator, greedy) of n_gen tokens on
// sequence 0 after `depth` positions, from `first`, drafts from `drafter`
// (at most max_draft per pass). `history` is what the depth positions hold
// (depth tokens, for the drafter to continue); a draft model is brought up
// to it before the clock starts. The tokens are generate()'s: greedy
// verification keeps exactly what plain decoding would produce.
struct SpecRun {
  double seconds = 0;
  SpecStats stats;
  std::vector<int32_t> tokens;  // the n_gen tokens generated
};
Result<SpecRun> time_spec_generation(Context& ctx, Drafter& drafter, int max_draft, std::span<const int32_t> history,
                                     int32_t first, int64_t n_gen, const ClockFn& clock = steady_seconds,
                                     const StopFn& stop = {});

// --------------------------------------------------------------- bench --

// llama-bench's run: every model x threads x depth x (prompt | generation)
// test, a warm-up and `reps` timed repetitions each.
struct BenchSpec {
  std::vector<std::string> models;
  std::vector<int64_t> prompts{512}, gens{128}, depths{0};
  std::vector<int> threads;       // empty = usable cores
  int reps = 3;
  int64_t ctx = 0;                // 0 = what the tests need
  int64_t batch = 512;
  TensorType kv_type = TensorType::kF16;
  bool limits = true;             // measure the machine's limits (after the models, so peak memory is theirs)
  // Speculative decoding beside every generation test (the same tokens,
  // greedy): a draft model sharing the models' vocabulary, or n-gram lookup
  // drafts of up to `lookup` tokens. Neither: plain generation only.
  std::string draft;
  int draft_max = 8;
  float draft_p_min = 0.75f;
  int lookup = 0;
  std::function<void(const std::string&)> progress;  // "filling 4096 positions of context"

  // Positions of one sequence the tests need: the deepest prompt, or
  // generation (+1: the token that starts it).
  int64_t positions_needed() const;
};

struct BenchRecord {
  std::string model_path, model_type;  // "qwen2 494M Q4_K_M"
  uint64_t model_size = 0, n_params = 0;
  int n_threads = 0;
  int64_t n_prompt = 0, n_gen = 0, n_depth = 0, n_batch = 0;
  TensorType kv_type = TensorType::kF16;
  std::string isa;
  std::vector<double> samples_s;      // seconds per repetition
  std::vector<double> samples_cpu_s;  // process CPU seconds per repetition (all threads): on a shared
                                      // machine n_threads * tokens / this is the rate the run reached
                                      // while it ran. Empty for speculative records (their timed part
                                      // leaves out the drafter's untimed catch-up)
  double load_s = 0;
  uint64_t peak_rss = 0;
  double ops_per_rep = 0;    // pp: prompt_ops
  double bytes_per_rep = 0;  // tg: generation_bytes
  Limits limits;
  // A speculative generation test: how it drafted ("lookup 8", "draft
  // llama 60M Q8_0"; empty: plain) and its counters over the repetitions.
  std::string spec;
  int64_t draft_tokens = 0, draft_accepted = 0, target_passes = 0;
  double acceptance() const { return draft_tokens > 0 ? double(draft_accepted) / double(draft_tokens) : 0.0; }
  // Tokens generated per target forward pass (plain generation: 1).
  double tokens_per_pass() const;

  int64_t tokens() const { return n_prompt > 0 ? n_prompt : n_gen; }
  std::string test_name() const;  // "pp512", "tg128 @ d4096"
  Stats seconds() const;
  Stats tokens_per_second() const;
  // pp: GOP/s against limits.int8_gops; tg: GB/s against limits.read_gbps.
  double achieved() const;
  double limit() const;
  double limit_share() const;  // achieved / limit; 0 when the limit was not measured
};

// "qwen2 494M Q4_K_M": arch, parameters, the file's quantization.
std::string model_type(const Model& m);

Result<std::vector<BenchRecord>> run_bench(const BenchSpec& spec);

}  // namespace codey::measure
