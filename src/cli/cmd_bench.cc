// `codey bench [--model FILE[,FILE]] [-p 512] [-n 128] [-d 0] [-t N] [-r 3]
// [--ctx N] [-b N] [--kv-type f16] [--isa NAME] [--json] [--draft FILE |
// --lookup N]`: llama-bench style
// prompt-processing (pp) and generation (tg) throughput, mean +- stddev over
// repetitions, time to first token, load time, peak memory, and how close the
// run is to the machine: GB/s against the read bandwidth measured here (tg is
// bandwidth bound) and GOP/s against the measured int8 peak of the kernel table in use (pp is
// compute bound). List arguments sweep (`-t 1,2 -p 128,512`). Without --model
// it benchmarks a synthesized model (cached under $XDG_CACHE_HOME/codey).
// --draft / --lookup repeat each tg test with speculative decoding.
// The measuring is measure::run_bench; this file parses and prints.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <map>
#include <sstream>

#include "cli/command.h"
#include "codey/convert.h"
#include "codey/measure.h"
#include "codey/store.h"

namespace codey::cli {
namespace {

using measure::BenchRecord;
using measure::Stats;

struct BenchOptions {
  std::string models;
  std::string prompts = "512";
  std::string gens = "128";
  std::string depths = "0";
  std::string threads;
  int reps = 3;
  int64_t ctx = 0;
  int64_t batch = 512;
  std::string kv_type = "f16";
  std::string isa;
  std::string synth = "qwen2.5-coder-0.5b:Q4_K_M";
  bool json = false;
  bool no_limits = false;
  std::string draft;
  int draft_max = 8;
  float draft_p_min = 0.75f;
  int lookup = 0;
};

template <class T>
Result<std::vector<T>> parse_list(const std::string& text, const char* what) {
  std::vector<T> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    char* end = nullptr;
    const long long v = std::strtoll(item.c_str(), &end, 10);
    if (*end != '\0' || v < 0) return make_error(ErrorCode::kInvalidArgument, "{}: '{}' is not a non-negative integer", what, item);
    out.push_back(static_cast<T>(v));
  }
  if (out.empty()) return make_error(ErrorCode::kInvalidArgument, "{}: empty list", what);
  return out;
}

std::string default_model_path(const std::string& spec, bool quiet) {
  const auto colon = spec.find(':');
  const std::string shape = spec.substr(0, colon), type = colon == std::string::npos ? "Q4_K_M" : spec.substr(colon + 1);
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  const char* home = std::getenv("HOME");
  const std::filesystem::path dir = xdg && *xdg ? std::filesystem::path(xdg) / "codey"
                                    : home && *home ? std::filesystem::path(home) / ".cache" / "codey"
                                                    : std::filesystem::temp_directory_path() / "codey";
  const auto path = dir / fmt::format("bench-{}-{}.gguf", shape, type);
  if (std::filesystem::exists(path)) return path.string();
  const ModelShape* s = find_model_shape(shape);
  if (!s) return {};
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (!quiet) std::fprintf(stderr, "codey bench: no --model given; synthesizing %s %s into %s\n", shape.c_str(), type.c_str(), path.string().c_str());
  SynthOptions so;
  so.shape = *s;
  so.target = type;
  so.output = path.string() + ".tmp";
  auto r = synth_model(so);
  if (!r) {
    std::fprintf(stderr, "codey bench: %s\n", r.error().message.c_str());
    return {};
  }
  std::filesystem::rename(so.output, path, ec);
  return ec ? std::string{} : path.string();
}

void print_markdown(const std::vector<BenchRecord>& recs) {
  std::printf("| model | size | params | isa | threads | test | t/s | TTFT ms | achieved | of limit |\n");
  std::printf("|---|---:|---:|---|---:|---|---:|---:|---:|---:|\n");
  for (const BenchRecord& r : recs) {
    const Stats st = r.tokens_per_second();
    const Stats sec = r.seconds();
    std::string ttft = "", achieved, share;
    if (!r.spec.empty()) {
      achieved = fmt::format("{:.2f} tok/pass", r.tokens_per_pass());
      share = fmt::format("{:.0f}% accepted", 100 * r.acceptance());
    } else if (r.n_prompt > 0) {
      ttft = fmt::format("{:.0f}", sec.mean * 1e3);
      achieved = fmt::format("{:.0f} GOP/s", r.achieved());
      share = r.limit() > 0 ? fmt::format("{:.0f}% of {:.0f}", 100 * r.limit_share(), r.limit()) : "-";
    } else {
      achieved = fmt::format("{:.1f} GB/s", r.achieved());
      share = r.limit() > 0 ? fmt::format("{:.0f}% of {:.1f}", 100 * r.limit_share(), r.limit()) : "-";
    }
    std::printf("| %s | %s | %s | %s | %d | %s | %.2f ± %.2f | %s | %s | %s |\n", r.model_type.c_str(),
                format_bytes(r.model_size).c_str(), fmt::format("{:.2f} B", static_cast<double>(r.n_params) / 1e9).c_str(),
                r.isa.c_str(), r.n_threads, r.test_name().c_str(), st.mean, st.stddev, ttft.c_str(), achieved.c_str(),
                share.c_str());
  }
  std::map<std::string, std::pair<double, uint64_t>> per_model;
  for (const BenchRecord& r : recs) per_model[r.model_path] = {r.load_s, r.peak_rss};
  for (const auto& [path, lp] : per_model)
    std::printf("\n%s: load %.2f s, peak memory %s", path.c_str(), lp.first, format_bytes(lp.second).c_str());
  // Speculative runs beside the plain generation they repeat.
  for (size_t i = 0; i < recs.size(); ++i) {
    const BenchRecord& r = recs[i];
    if (r.spec.empty()) continue;
    const BenchRecord* plain = nullptr;
    for (size_t j = i; j-- > 0;)
      if (recs[j].spec.empty() && recs[j].model_path == r.model_path && recs[j].n_threads == r.n_threads &&
          recs[j].n_gen == r.n_gen && recs[j].n_depth == r.n_depth) {
        plain = &recs[j];
        break;
      }
    const double tps = r.tokens_per_second().mean;
    std::printf("\n%s, %d threads, %s: %lld of %lld drafted tokens accepted (%.1f%%), %.2f tokens per target pass, "
                "%.2f t/s",
                r.model_type.c_str(), r.n_threads, r.test_name().c_str(), static_cast<long long>(r.draft_accepted),
                static_cast<long long>(r.draft_tokens), 100 * r.acceptance(), r.tokens_per_pass(), tps);
    if (plain) {
      const double base = plain->tokens_per_second().mean;
      std::printf(" against %.2f t/s plain (%.2fx)", base, base > 0 ? tps / base : 0.0);
    }
  }
  if (!recs.empty())
    std::printf("\nlimits: pp against the measured int8 peak of the kernel table in use (GOP/s), tg against the measured read bandwidth "
                "(GB/s; bytes = weights + KV rows read per token)\n");
}

nlohmann::json to_json(const std::vector<BenchRecord>& recs) {
  nlohmann::json arr = nlohmann::json::array();
  char now[32];
  const std::time_t t = std::time(nullptr);
  std::strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  for (const BenchRecord& r : recs) {
    std::vector<double> ns;
    for (double s : r.samples_s) ns.push_back(s * 1e9);
    const Stats sn = measure::stats_of(ns), st = r.tokens_per_second();
    std::vector<double> ts;
    for (double s : r.samples_s) ts.push_back(static_cast<double>(r.tokens()) / s);
    nlohmann::json j;
    j["build_commit"] = CODEY_VERSION;
    j["build_number"] = 0;
    j["cpu_info"] = cpu_features().brand;
    j["gpu_info"] = "";
    j["backends"] = "CPU";
    j["model_filename"] = r.model_path;
    j["model_type"] = r.model_type;
    j["model_size"] = r.model_size;
    j["model_n_params"] = r.n_params;
    j["n_batch"] = r.n_batch;
    j["n_ubatch"] = r.n_batch;
    j["n_threads"] = r.n_threads;
    j["type_k"] = std::string(type_name(r.kv_type));
    j["type_v"] = std::string(type_name(r.kv_type));
    j["n_gpu_layers"] = 0;
    j["flash_attn"] = true;
    j["use_mmap"] = true;
    j["embeddings"] = false;
    j["n_prompt"] = r.n_prompt;
    j["n_gen"] = r.n_gen;
    j["n_depth"] = r.n_depth;
    j["test_time"] = now;
    j["avg_ns"] = static_cast<uint64_t>(sn.mean);
    j["stddev_ns"] = static_cast<uint64_t>(sn.stddev);
    j["avg_ts"] = st.mean;
    j["stddev_ts"] = st.stddev;
    j["samples_ns"] = ns;
    j["samples_ts"] = ts;
    // CPU seconds of all threads per repetition: on a shared machine,
    // n_threads * tokens / this is the rate the run reached while it ran.
    std::vector<double> cpu_ns;
    for (double c : r.samples_cpu_s) cpu_ns.push_back(c * 1e9);
    j["samples_cpu_ns"] = cpu_ns;
    // codey's additions
    j["isa"] = r.isa;
    j["load_ms"] = r.load_s * 1e3;
    j["peak_rss_bytes"] = r.peak_rss;
    j["mem_read_gbps"] = r.limits.read_gbps;
    j["int8_peak_gops"] = r.limits.int8_gops;
    if (r.n_prompt > 0) {
      j["ttft_ms"] = sn.mean / 1e6;
      j["gops"] = r.achieved();
    } else {
      j["gbps"] = r.achieved();
    }
    j["limit_share"] = r.limit_share();
    if (!r.spec.empty()) {
      j["spec"] = r.spec;
      j["draft_tokens"] = r.draft_tokens;
      j["draft_accepted"] = r.draft_accepted;
      j["target_passes"] = r.target_passes;
      j["acceptance"] = r.acceptance();
      j["tokens_per_pass"] = r.tokens_per_pass();
    }
    arr.push_back(j);
  }
  return arr;
}

int run_bench(const BenchOptions& o) {
  if (!o.isa.empty()) setenv("CODEY_ISA", o.isa.c_str(), 1);  // before the kernel table is first chosen
  auto prompts = parse_list<int64_t>(o.prompts, "-p");
  auto gens = parse_list<int64_t>(o.gens, "-n");
  auto depths = parse_list<int64_t>(o.depths, "-d");
  auto threads = parse_list<int>(o.threads.empty() ? std::to_string(usable_cores()) : o.threads, "-t");
  if (!prompts) return fail(prompts.error().message);
  if (!gens) return fail(gens.error().message);
  if (!depths) return fail(depths.error().message);
  if (!threads) return fail(threads.error().message);
  for (int t : *threads)
    if (t < 1) return fail("-t: thread counts must be at least 1");
  if (o.reps < 1) return fail("-r must be at least 1");
  if (o.batch < 1) return fail("-b must be at least 1");
  auto kv = type_from_name(o.kv_type);
  if (!kv || (*kv != TensorType::kF16 && *kv != TensorType::kQ8_0 && *kv != TensorType::kF32 && *kv != TensorType::kBF16))
    return fail(fmt::format("--kv-type must be f16, q8_0, bf16 or f32, not '{}'", o.kv_type));

  measure::BenchSpec spec;
  spec.prompts = *prompts;
  spec.gens = *gens;
  spec.depths = *depths;
  spec.threads = *threads;
  spec.reps = o.reps;
  spec.ctx = o.ctx;
  spec.batch = o.batch;
  spec.kv_type = *kv;
  spec.limits = !o.no_limits;
  if (!o.draft.empty() && o.lookup > 0) return fail("give one of --draft and --lookup, not both");
  if (o.lookup < 0 || o.draft_max < 1) return fail("--lookup and --draft-max must be positive");
  spec.draft = o.draft;
  spec.draft_max = o.draft_max;
  spec.draft_p_min = o.draft_p_min;
  spec.lookup = o.lookup;
  if (!o.json)
    spec.progress = [](const std::string& what) { std::fprintf(stderr, "codey bench: %s...\n", what.c_str()); };
  if (o.ctx > 0 && o.ctx < spec.positions_needed())
    return fail(fmt::format("--ctx {} is too small for the tests (they need {} positions)", o.ctx,
                            spec.positions_needed()));
  if (o.models.empty()) {
    const std::string p = default_model_path(o.synth, o.json);
    if (p.empty()) return fail(fmt::format("--synth {}: cannot synthesize a model to benchmark", o.synth));
    spec.models.push_back(p);
  } else {
    std::stringstream ss(o.models);
    std::string item;
    while (std::getline(ss, item, ',')) {
      if (item.empty()) continue;
      auto file = resolve_model_path(item);  // a path or a reference (hf.co/..., ollama:...)
      if (!file) return fail(file.error().message);
      spec.models.push_back(*file);
    }
  }
  auto recs = measure::run_bench(spec);
  if (!recs) return fail(recs.error().message);
  if (o.json)
    std::printf("%s\n", to_json(*recs).dump(2).c_str());
  else
    print_markdown(*recs);
  return 0;
}

CommandRunner setup(CLI::App& root) {
  auto o = std::make_shared<BenchOptions>();
  auto* cmd = root.add_subcommand("bench", "Measure prompt processing and generation speed (llama-bench style)");
  cmd->add_option("--model,-m", o->models, "GGUF model file(s), comma-separated (default: a synthesized model)");
  cmd->add_option("--n-prompt,-p", o->prompts, "Prompt lengths to process, comma-separated (default 512; 0 = none)");
  cmd->add_option("--n-gen,-n", o->gens, "Tokens to generate, comma-separated (default 128; 0 = none)");
  cmd->add_option("--n-depth,-d", o->depths, "Context already filled before each test, comma-separated (default 0)");
  cmd->add_option("--threads,-t", o->threads, "Thread counts, comma-separated (default: usable cores)");
  cmd->add_option("--repetitions,-r", o->reps, "Repetitions of each test (default 3)");
  cmd->add_option("--ctx,-c", o->ctx, "Context size (default: what the tests need)");
  cmd->add_option("--batch-size,-b", o->batch, "Tokens per forward pass when processing a prompt (default 512)");
  cmd->add_option("--kv-type", o->kv_type, "KV cache type: f16 (default), q8_0, bf16, f32");
  cmd->add_option("--isa", o->isa, "Kernel table: ref, avx2, avx512 (default: the best this CPU runs)");
  cmd->add_option("--synth", o->synth, "Shape[:type] synthesized when no --model is given (default qwen2.5-coder-0.5b:Q4_K_M)");
  cmd->add_flag("--json", o->json, "JSON array of records (llama-bench field names) instead of a Markdown table");
  cmd->add_flag("--no-limits", o->no_limits, "Skip measuring the machine's bandwidth and int8 peak");
  cmd->add_option("--draft", o->draft,
                  "Each tg test again with speculative decoding by this draft model (sharing the vocabulary): "
                  "acceptance, tokens per target pass and t/s next to plain decoding");
  cmd->add_option("--draft-max", o->draft_max, "Most tokens the draft model proposes per pass (default 8)");
  cmd->add_option("--draft-p-min", o->draft_p_min,
                  "Stop drafting at a token the draft gives less probability than this (default 0.75)");
  cmd->add_option("--lookup", o->lookup, "Each tg test again with n-gram lookup drafts of up to N tokens");
  return [o] { return run_bench(*o); };
}

CODEY_REGISTER_COMMAND(bench, setup);

}  // namespace
}  // namespace codey::cli
