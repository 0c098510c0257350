// Tests of src/runtime/tune.cc and tune_config.cc (`codey tune`): machine
// facts from fake cgroup/sysfs trees, the surgical config edit (comments and
// other keys kept, idempotent), the sweep on a synthesized model (threads
// within a cgroup quota, the time budget, Ctrl-C), and the CLI end to end.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "codey/tune.h"
#include "runtime/runtime_testing.h"
#include "testing/testing.h"

namespace codey::tune {
namespace {

namespace fs = std::filesystem;

void write(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

// A fake cgroup v2 tree limiting CPU to `cores` and memory to `mem` bytes.
std::string fake_cgroup_v2(const std::string& cpu_max, const std::string& mem_max) {
  const std::string root = testing::temp_dir() + "/cgroup";
  write(root + "/cpu.max", cpu_max + "\n");
  write(root + "/memory.max", mem_max + "\n");
  return root;
}

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string l;
  while (std::getline(ss, l)) out.push_back(l);
  return out;
}

// Every line of `before` appears in `after`, in order (nothing lost or moved),
// except those containing one of `changed`.
void expect_lines_kept(const std::string& before, const std::string& after, std::vector<std::string> changed = {}) {
  auto a = lines_of(after);
  size_t j = 0;
  for (const auto& l : lines_of(before)) {
    bool skip = false;
    for (const auto& c : changed) skip |= l.find(c) != std::string::npos;
    if (skip) continue;
    while (j < a.size() && a[j] != l) ++j;
    ASSERT_LT(j, a.size()) << "line lost or reordered: '" << l << "'\nin:\n" << after;
    ++j;
  }
}

int count(const std::string& s, const std::string& part) {
  int n = 0;
  for (size_t p = s.find(part); p != std::string::npos; p = s.find(part, p + 1)) ++n;
  return n;
}

const std::vector<ConfigValue> kValues = {{"threads", "1"}, {"batch", "256"}, {"prompt_chunk", "64"}, {"kv_type", "q8_0"}};

Result<ConfigEdit> edit(std::string_view text, std::string_view model, std::span<const ConfigValue> values = kValues,
                        std::string_view comment = "2025-01-01 on host") {
  return edit_config_text(text, "codey.yaml", "/models", model, values, comment, "new.gguf");
}

// ------------------------------------------------------------------- config --

constexpr std::string_view kBlock = R"(# my models
memory_budget: 4GiB   # shared by all
threads: auto

models:
  # the coder
  coder:
    path: coder.gguf      # the main one
    threads: 2            # set by hand
    ctx: 4096
    temperature: 0.2

  # the small one
  small:
    path: small.gguf
    pinned: true
# after models
server:
  port: 8080
)";

TEST(TuneConfig, BlockMapReplacesInPlaceAndAppendsTheRest) {
  auto e = edit(kBlock, "coder");
  ASSERT_TRUE(e.has_value()) << e.error().message;
  EXPECT_TRUE(e->changed);
  const std::string& t = e->text;
  // The value changed, its comment stayed at its column.
  EXPECT_NE(t.find("    threads: 1            # set by hand\n"), std::string::npos) << t;
  // Missing keys at the end of the entry, after a tune comment, before the blank line.
  EXPECT_NE(t.find("    temperature: 0.2\n    batch: 256\n    prompt_chunk: 64\n    kv_type: q8_0\n\n  # the small one"),
            std::string::npos)
      << t;
  EXPECT_NE(t.find("    # codey tune: 2025-01-01 on host\n    threads: 1"), std::string::npos) << t;
  expect_lines_kept(std::string(kBlock), t, {"threads: 2"});
  auto c = parse_config(t, "codey.yaml", "/models");
  ASSERT_TRUE(c.has_value()) << c.error().message;
  const ModelConfig* m = c->find_model("coder");
  EXPECT_EQ(m->threads, 1);
  EXPECT_EQ(m->batch, 256);
  EXPECT_EQ(m->prompt_chunk, 64);
  EXPECT_EQ(m->kv_type, TensorType::kQ8_0);
  EXPECT_EQ(m->ctx, 4096);
  EXPECT_EQ(c->find_model("small")->threads, 0);  // untouched
  EXPECT_EQ(c->server.port, 8080);
  EXPECT_NE(e->summary.find("threads 2 -> 1"), std::string::npos) << e->summary;
  EXPECT_NE(e->summary.find("batch 256 (new)"), std::string::npos) << e->summary;
}

TEST(TuneConfig, IdempotentWhenTheChoiceIsTheSame) {
  auto once = edit(kBlock, "coder", kValues, "2025-01-01 on host");
  ASSERT_TRUE(once.has_value());
  // Another day, same values: the file stays byte for byte.
  auto twice = edit(once->text, "coder", kValues, "2025-02-02 on other");
  ASSERT_TRUE(twice.has_value()) << twice.error().message;
  EXPECT_FALSE(twice->changed);
  EXPECT_EQ(twice->text, once->text);
  // A different choice: values and the one tune comment are replaced.
  const std::vector<ConfigValue> other = {{"threads", "2"}, {"batch", "512"}, {"prompt_chunk", "64"}, {"kv_type", "f16"}};
  auto third = edit(once->text, "coder", other, "2025-03-03 on host");
  ASSERT_TRUE(third.has_value()) << third.error().message;
  EXPECT_TRUE(third->changed);
  EXPECT_EQ(count(third->text, "# codey tune"), 1) << third->text;
  EXPECT_NE(third->text.find("# codey tune: 2025-03-03 on host"), std::string::npos);
  EXPECT_NE(third->text.find("    threads: 2            # set by hand\n"), std::string::npos) << third->text;
  EXPECT_NE(third->text.find("    batch: 512\n"), std::string::npos);
  EXPECT_NE(third->text.find("    kv_type: f16\n"), std::string::npos);
  // Back to the first choice: the same text as the first run but for the date.
  auto fourth = edit(third->text, "coder", kValues, "2025-01-01 on host");
  ASSERT_TRUE(fourth.has_value());
  EXPECT_EQ(fourth->text, once->text);
}

TEST(TuneConfig, FlowMapsOnOneAndSeveralLines) {
  const std::string text = R"(memory_budget: 8GiB
models:
  router:    { path: models/functiongemma-270m.gguf, pinned: true, ctx: 8192 }
  coder:     { path: models/qwen.gguf, ctx: auto, threads: 4,
               max_tokens: 1024, temperature: 0.3, top_p: 0.8, keep_alive: 5m }   # note
  algorithm: { path: /abs/ds.gguf, ctx: 16384 }
)";
  auto r = edit(text, "router");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_NE(r->text.find("  # codey tune: 2025-01-01 on host\n  router:    { path: models/functiongemma-270m.gguf, "
                         "pinned: true, ctx: 8192, threads: 1, batch: 256, prompt_chunk: 64, kv_type: q8_0 }\n"),
            std::string::npos)
      << r->text;
  auto c = edit(r->text, "coder");
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_NE(c->text.find("ctx: auto, threads: 1,\n"), std::string::npos) << c->text;
  EXPECT_NE(c->text.find("keep_alive: 5m, batch: 256, prompt_chunk: 64, kv_type: q8_0 }   # note\n"), std::string::npos)
      << c->text;
  expect_lines_kept(text, c->text, {"router:", "coder:", "keep_alive"});
  auto cfg = parse_config(c->text, "codey.yaml", "/models");
  ASSERT_TRUE(cfg.has_value()) << cfg.error().message;
  EXPECT_EQ(cfg->find_model("coder")->threads, 1);
  EXPECT_EQ(cfg->find_model("coder")->max_tokens, 1024);
  EXPECT_EQ(cfg->find_model("router")->batch, 256);
  EXPECT_EQ(cfg->find_model("algorithm")->batch, 512);
  auto again = edit(c->text, "coder", kValues, "later");
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->text, c->text);
}

TEST(TuneConfig, ShorthandNewEntryAndNewSection) {
  const std::string text = "models:\n  a: models/a.gguf   # plain path\n# the end\n";
  auto e = edit(text, "a");
  ASSERT_TRUE(e.has_value()) << e.error().message;
  EXPECT_EQ(e->text,
            "models:\n  a:  # plain path\n    path: models/a.gguf\n    # codey tune: 2025-01-01 on host\n"
            "    threads: 1\n    batch: 256\n    prompt_chunk: 64\n    kv_type: q8_0\n# the end\n");
  auto n = edit(text, "b");
  ASSERT_TRUE(n.has_value()) << n.error().message;
  EXPECT_TRUE(n->created_entry);
  EXPECT_EQ(n->text,
            "models:\n  a: models/a.gguf   # plain path\n  b:\n    path: new.gguf\n    # codey tune: 2025-01-01 on "
            "host\n    threads: 1\n    batch: 256\n    prompt_chunk: 64\n    kv_type: q8_0\n# the end\n");
  auto s = edit("memory_budget: 2GiB\n", "b");
  ASSERT_TRUE(s.has_value()) << s.error().message;
  EXPECT_EQ(s->text.substr(0, 30), "memory_budget: 2GiB\n\nmodels:\n ");
  auto fresh = edit("", "b");
  ASSERT_TRUE(fresh.has_value()) << fresh.error().message;
  EXPECT_TRUE(parse_config(fresh->text, "x", "/m").has_value());
  EXPECT_EQ(edit(fresh->text, "b")->text, fresh->text);
}

TEST(TuneConfig, JsonKeepsJsonAndCrlfKeepsCrlf) {
  const std::string json = "{\n  \"models\": {\n    \"coder\": {\"path\": \"c.gguf\", \"batch\": 128}\n  }\n}\n";
  auto j = edit(json, "coder");
  ASSERT_TRUE(j.has_value()) << j.error().message;
  EXPECT_NE(j->text.find("{\"path\": \"c.gguf\", \"batch\": 256, \"threads\": 1, \"prompt_chunk\": 64, \"kv_type\": \"q8_0\"}"),
            std::string::npos)
      << j->text;
  EXPECT_TRUE(nlohmann::json::accept(j->text)) << j->text;
  const std::string crlf = "models:\r\n  m:\r\n    path: m.gguf\r\n    batch: 64  # x\r\n";
  auto c = edit(crlf, "m");
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->text,
            "models:\r\n  m:\r\n    path: m.gguf\r\n    # codey tune: 2025-01-01 on host\r\n    batch: 256 # x\r\n"
            "    threads: 1\r\n    prompt_chunk: 64\r\n    kv_type: q8_0\r\n");
}

TEST(TuneConfig, TheDocumentedExampleKeepsEveryComment) {
  const std::string text = testing::read_file_text(std::string(CODEY_SOURCE_DIR) + "/examples/codey.yaml");
  auto e = edit_config_text(text, "codey.yaml", "/x", "coder", kValues, "2025-01-01 on host", "new.gguf");
  ASSERT_TRUE(e.has_value()) << e.error().message;
  // coder has all four keys: only their values change, comments at their columns.
  expect_lines_kept(text, e->text, {"    kv_type:", "    batch:", "    prompt_chunk:", "    threads: auto"});
  EXPECT_EQ(lines_of(e->text).size(), lines_of(text).size() + 1);  // + the tune comment
  for (const auto& l : lines_of(text))
    if (l.find("    batch: 512") == 0) {
      const std::string nl = "    batch: 256" + l.substr(std::string("    batch: 512").size());
      EXPECT_NE(e->text.find(nl), std::string::npos) << nl;
    }
}

TEST(TuneConfig, RefusesABrokenConfigAndFindsModelsByPath) {
  auto e = edit("models:\n  a: {path: x.gguf, bogus: 1}\n", "a");
  ASSERT_FALSE(e.has_value());
  EXPECT_NE(e.error().message.find("bogus"), std::string::npos) << e.error().message;
  const std::string dir = testing::temp_dir();
  write(dir + "/m.gguf", "x");
  auto cfg = parse_config("models:\n  one: m.gguf\n  two: {path: ./m.gguf}\n  three: other.gguf\n", "c", dir);
  ASSERT_TRUE(cfg.has_value());
  auto both = find_model_by_path(*cfg, dir + "/m.gguf");
  ASSERT_FALSE(both.has_value());
  EXPECT_NE(both.error().message.find("one, two"), std::string::npos);
  cfg->models.erase(cfg->models.begin());
  auto one = find_model_by_path(*cfg, dir + "/m.gguf");
  ASSERT_TRUE(one.has_value());
  EXPECT_EQ(one->value_or(""), "two");
  auto none = find_model_by_path(*cfg, dir + "/nothing.gguf");
  ASSERT_TRUE(none.has_value());
  EXPECT_FALSE(none->has_value());
}

// ------------------------------------------------------------ quantization --

TEST(TuneQuantFit, BudgetMinusPinnedAgainstWeightsPlusKv) {
  ModelFacts f;
  f.kv_bytes_per_pos = 1000;
  f.scratch_bytes = 10'000;
  const QuantOption options[] = {{"Q4_K_M", 500'000}, {"F16", 2'000'000}, {"Q8_0", 1'000'000}};
  const std::pair<std::string, uint64_t> pinned[] = {{"router", 300'000}};
  auto q = quant_fit(2'000'000, f, 256, 2, TensorType::kF16, options, pinned);
  EXPECT_EQ(q.available, 1'700'000u);
  ASSERT_EQ(q.options.size(), 3u);
  EXPECT_EQ(q.options[0].name, "F16");  // largest first
  EXPECT_FALSE(q.options[0].fits);
  EXPECT_EQ(q.options[1].kv_bytes, 512'000u);
  EXPECT_EQ(q.options[1].total(), 1'522'000u);
  EXPECT_TRUE(q.options[1].fits);
  EXPECT_EQ(q.best.value_or(""), "Q8_0");
  auto none = quant_fit(100'000, f, 256, 2, TensorType::kF16, options, pinned);
  EXPECT_FALSE(none.best.has_value());
}

// --------------------------------------------------------------- the sweep --

TEST(TuneSweep, CgroupQuotaBoundsThreadsAndTheConfigValues) {
  const std::string root = fake_cgroup_v2("100000 100000", "max");
  TuneOptions o;
  // head_dim 32: a q8_0 KV cache is possible; Q8_0 weights: a repacked layout to compare.
  o.model_path = testing::tiny_model(1, 4096, /*n_head=*/2, "Q8_0");
  o.budget = Millis(6000);
  o.clock = measure::virtual_clock();
  o.cgroup_root = root;
  o.ttft_tokens = 512;
  auto r = run_tune(o);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->machine.usable_cores, 1);
  EXPECT_EQ(r->defaults.threads, 1);
  ASSERT_FALSE(r->trials.empty()) << format_report(*r, o);
  for (const auto& t : r->trials) EXPECT_EQ(t.threads, 1) << t.phase << " " << t.label();
  EXPECT_EQ(r->chosen.threads, 1);
  EXPECT_TRUE(r->threads_measured);
  auto values = tuned_values(*r);
  ASSERT_FALSE(values.empty());
  EXPECT_EQ(values[0], (ConfigValue{"threads", "1"}));
  // A tiny model fits everything in 6 s: every phase ran, every trial has mean and deviation.
  EXPECT_TRUE(r->batch_measured) << format_report(*r, o);
  EXPECT_TRUE(r->kv_measured) << format_report(*r, o);
  EXPECT_TRUE(r->repack_measured) << format_report(*r, o);
  EXPECT_NE(format_report(*r, o).find(" plain "), std::string::npos);
  EXPECT_TRUE(r->ctx_within_tolerance.has_value()) << format_report(*r, o);
  EXPECT_TRUE(r->ttft_s.has_value()) << format_report(*r, o);
  for (const auto& t : r->trials) {
    EXPECT_GE(t.tps.n, 1);
    EXPECT_GT(t.tps.mean, 0);
  }
  EXPECT_LE(r->elapsed_s, 6.0 + 0.25);
  const std::string report = format_report(*r, o);
  EXPECT_NE(report.find(" ± "), std::string::npos);
  EXPECT_NE(report.find("first token"), std::string::npos);
  // Generation's bandwidth share comes from the bytes a token reads.
  EXPECT_GT(r->active_weight_bytes, 0u);
  EXPECT_LE(r->active_weight_bytes, r->weight_bytes);
  EXPECT_NE(report.find("read per token"), std::string::npos) << report;
  EXPECT_NE(report.find("GB/s"), std::string::npos) << report;
}

TEST(TuneSweep, TheTimeBudgetHolds) {
  // The full sweep of this model takes far longer than 2 s at the richest
  // sizing: the plan must shrink and the run must stop in time (on the
  // sweep's clock, a virtual one here).
  for (double budget_s : {1.0, 2.5}) {
    TuneOptions o;
    o.model_path = testing::tiny_model(1, 4096);
    o.budget = Millis(static_cast<int64_t>(budget_s * 1000));
    o.clock = measure::virtual_clock();
    auto r = run_tune(o);
    ASSERT_TRUE(r.has_value()) << r.error().message;
    EXPECT_LE(r->elapsed_s, budget_s + 0.25) << format_report(*r, o);
    EXPECT_FALSE(r->trials.empty()) << format_report(*r, o);
    EXPECT_EQ(r->plan.rfind("3 reps", 0), std::string::npos) << "not the richest sizing: " << r->plan;
  }
}

TEST(TuneSweep, CtrlCKeepsWhatWasMeasured) {
  std::atomic<bool> stop{false};
  TuneOptions o;
  o.model_path = testing::tiny_model(1, 4096);
  o.budget = Millis(60'000);
  o.clock = measure::virtual_clock();
  o.stop = &stop;
  std::atomic<size_t> done{0};
  o.progress = [&](const Progress& p) {
    if (p.done && ++done == 3) stop = true;  // as the SIGINT handler would
  };
  auto r = run_tune(o);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_TRUE(r->interrupted);
  EXPECT_EQ(r->trials.size(), 3u);
  EXPECT_FALSE(r->skipped.empty());
}

TEST(TuneSweep, BadOptions) {
  TuneOptions o;
  o.model_path = testing::tiny_model(1, 4096);
  o.budget = Millis(0);
  EXPECT_FALSE(run_tune(o).has_value());
  o.budget = Millis(1000);
  o.ctx_tolerance = 1.5;
  EXPECT_FALSE(run_tune(o).has_value());
  o.ctx_tolerance = 0.1;
  o.model_path = testing::temp_dir() + "/missing.gguf";
  EXPECT_FALSE(run_tune(o).has_value());
}

// -------------------------------------------------------------------- CLI --

TEST(TuneCli, WritesTheConfigKeepsCommentsAndIsIdempotent) {
  const std::string dir = testing::temp_dir() + "/cli";
  fs::create_directories(dir);
  const std::string model = dir + "/tiny.gguf";
  fs::copy_file(testing::tiny_model(1, 4096), model, fs::copy_options::overwrite_existing);
  const std::string cfg_path = dir + "/codey.yaml";
  const std::string original = R"(# config for the test
memory_budget: 1GiB
models:
  other:
    path: other.gguf   # missing on purpose: not pinned, not read
    threads: 7
  tiny:
    path: tiny.gguf    # the model
    ctx: 1024          # fixed
    temperature: 0.1
)";
  write(cfg_path, original);
  const std::string cg = fake_cgroup_v2("100000 100000", "max");
  auto run = [&] {
    return testing::run_codey({"tune", "--model", model, "--config", cfg_path, "--budget", "4s", "--cgroup-root", cg,
                               "--ttft-tokens", "256", "--json", "--virtual-clock"});
  };
  auto r1 = run();
  ASSERT_EQ(r1.exit_code, 0) << r1.err << r1.out;
  auto j1 = nlohmann::json::parse(r1.out);
  EXPECT_EQ(j1["config"]["model"], "tiny");  // found by its path
  EXPECT_EQ(j1["machine"]["usable_cores"], 1);
  EXPECT_EQ(j1["chosen"]["threads"], 1);
  ASSERT_TRUE(j1["quant_fit"].contains("options"));
  const std::string after1 = testing::read_file_text(cfg_path);
  expect_lines_kept(original, after1);
  EXPECT_EQ(count(after1, "# codey tune: "), 1);
  auto cfg = load_config(cfg_path);
  ASSERT_TRUE(cfg.has_value()) << cfg.error().message;
  const ModelConfig* m = cfg->find_model("tiny");
  EXPECT_EQ(m->threads, 1);
  EXPECT_EQ(m->batch, j1["chosen"]["batch"].get<int64_t>());
  EXPECT_EQ(std::string(type_name(m->kv_type)), j1["chosen"]["kv_type"].get<std::string>());
  EXPECT_EQ(m->ctx, 1024);
  EXPECT_EQ(cfg->find_model("other")->threads, 7);

  auto r2 = run();
  ASSERT_EQ(r2.exit_code, 0) << r2.err;
  auto j2 = nlohmann::json::parse(r2.out);
  const std::string after2 = testing::read_file_text(cfg_path);
  // On the virtual clock the second run measures and chooses the same.
  EXPECT_EQ(j2["chosen"], j1["chosen"]);
  EXPECT_EQ(j2["measured"], j1["measured"]);
  EXPECT_EQ(after2, after1);  // same choice, same file (the date and figures of the first run stay)
  EXPECT_FALSE(j2["config"]["changed"].get<bool>());
}

TEST(TuneCli, DryRunTextReportAndErrors) {
  const std::string dir = testing::temp_dir() + "/cli2";
  fs::create_directories(dir);
  const std::string cfg_path = dir + "/codey.yaml";
  write(cfg_path, "models: {}\n");
  auto r = testing::run_codey({"tune", "--model", testing::tiny_model(1, 4096), "--config", cfg_path, "--budget", "2s",
                               "--dry-run", "--name", "tiny", "--virtual-clock"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(testing::read_file_text(cfg_path), "models: {}\n");
  EXPECT_NE(r.out.find("--dry-run"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tokens/s"), std::string::npos);
  EXPECT_NE(r.out.find("quantization"), std::string::npos);
  EXPECT_NE(r.out.find("machine"), std::string::npos);
  auto bad = testing::run_codey({"tune", "--model", testing::tiny_model(1, 4096), "--budget", "soon"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("--budget"), std::string::npos) << bad.err;
  auto missing = testing::run_codey({"tune", "--model", dir + "/nope.gguf"});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.err.find("not found"), std::string::npos) << missing.err;
}

}  // namespace
}  // namespace codey::tune
