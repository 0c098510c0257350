// `codey synth --arch A --shape NAME --type T -o FILE`: a model with random
// weights in a real model's shape, for measuring speed without downloads.
#include <fmt/ranges.h>

#include "cli/command.h"
#include "cli/progress.h"
#include "codey/convert.h"
#include "codey/model.h"

namespace codey::cli {
namespace {

struct SynthCli {
  SynthOptions o;
  std::string arch, shape;
  bool list = false;
  int64_t n_embd = 0, n_layer = 0, n_head = 0, n_head_kv = 0, n_ff = 0, n_vocab = 0, ctx = 0, head_dim = 0;
  int64_t n_expert = 0, n_expert_used = 0, n_ff_exp = 0;
  float rope_base = 0;
};

int run(SynthCli& c) {
  if (c.list) {
    std::printf("%-22s %-8s %6s %6s %5s %5s %8s %6s %7s %6s %s\n", "shape", "arch", "n_embd", "layers", "heads", "kv",
                "head_dim", "n_ff", "vocab", "ctx", "experts");
    for (const auto& s : model_shapes()) {
      const std::string experts =
          s.n_expert ? fmt::format("{} ({} used, n_ff {})", s.n_expert, s.n_expert_used, s.n_ff_exp) : "";
      std::printf("%-22s %-8s %6ld %6ld %5ld %5ld %8ld %6ld %7ld %6ld %s\n", s.name.c_str(), s.arch.c_str(),
                  long(s.n_embd), long(s.n_layer), long(s.n_head), long(s.n_head_kv),
                  long(s.head_dim ? s.head_dim : s.n_embd / s.n_head), long(s.n_ff), long(s.n_vocab), long(s.n_ctx),
                  experts.c_str());
    }
    return 0;
  }
  if (c.o.output.empty()) return fail("-o FILE is required");
  ModelShape s;
  if (!c.shape.empty()) {
    const ModelShape* named = find_model_shape(c.shape);
    if (!named) {
      std::vector<std::string> names;
      for (const auto& x : model_shapes()) names.push_back(x.name);
      return fail(fmt::format("unknown shape '{}' (known: {}; or give --n-embd --n-layer ...)", c.shape,
                              fmt::join(names, ", ")));
    }
    s = *named;
    if (!c.arch.empty() && c.arch != s.arch)
      return fail(fmt::format("shape {} is a {} model, not {}", c.shape, s.arch, c.arch));
  } else {
    if (c.arch.empty()) return fail("give --shape NAME, or --arch with --n-embd --n-layer --n-head --n-ff --n-vocab");
    s.name = "custom";
    s.arch = c.arch;
    s.n_ctx = 4096;
    s.n_vocab = 32000;
    if (c.arch == "gemma3") s.sliding_window = 512, s.rope_freq_base_swa = 10000.0f;
    if (c.arch == "qwen2" || c.arch == "qwen3" || c.arch == "qwen3moe") s.rope_freq_base = 1000000.0f;
  }
  if (c.n_embd) s.n_embd = c.n_embd;
  if (c.n_layer) s.n_layer = c.n_layer;
  if (c.n_head) s.n_head = c.n_head;
  if (c.n_head_kv) s.n_head_kv = c.n_head_kv;
  else if (c.n_head && s.n_head_kv == 0) s.n_head_kv = c.n_head;
  if (c.n_ff) s.n_ff = c.n_ff;
  if (c.n_vocab) s.n_vocab = c.n_vocab;
  if (c.ctx) s.n_ctx = c.ctx;
  if (c.head_dim) s.head_dim = c.head_dim;
  if (c.rope_base > 0) s.rope_freq_base = c.rope_base;
  if (c.n_expert) s.n_expert = c.n_expert;
  if (c.n_expert_used) s.n_expert_used = c.n_expert_used;
  if (c.n_ff_exp) s.n_ff_exp = c.n_ff_exp;
  c.o.shape = s;
  ProgressLine line;
  auto report = synth_model(c.o, [&](size_t i, size_t n, std::string_view name, std::string_view what) {
    line.update(fmt::format("[{}/{}] {} {}  ({:.1f} s)", i, n, name, what, line.elapsed()));
  });
  line.done();
  if (!report) return fail(report.error().message);
  for (const auto& note : report->notes) std::fprintf(stderr, "note: %s\n", note.c_str());
  std::fprintf(stderr, "wrote %s: %s %s as %s, %s in %.1f s (peak RSS %s)\n", c.o.output.c_str(), s.arch.c_str(),
               s.name.c_str(), c.o.target.c_str(), format_bytes(report->output_bytes).c_str(), report->seconds,
               format_bytes(peak_rss_bytes()).c_str());
  return 0;
}

CommandRunner setup(CLI::App& root) {
  auto c = std::make_shared<SynthCli>();
  auto* cmd = root.add_subcommand("synth", "Write a model with random weights in a real architecture's shape");
  cmd->add_option("--arch", c->arch, fmt::format("{}", fmt::join(supported_archs(), " | ")));
  cmd->add_option("--shape", c->shape, "A named shape (see --list)");
  cmd->add_flag("--list", c->list, "List the named shapes");
  cmd->add_option("--type", c->o.target, fmt::format("Tensor type or recipe: {}", fmt::join(quant_target_names(), ", ")));
  cmd->add_option("-o,--output", c->o.output, "Output GGUF");
  cmd->add_option("--vocab", c->o.vocab_path, "Copy the tokenizer from this GGUF (default: built-in byte-level)");
  cmd->add_option("--seed", c->o.seed, "Random seed (default 42)");
  cmd->add_option("-t,--threads", c->o.threads, "Threads (default: usable cores)");
  cmd->add_option("--n-embd", c->n_embd);
  cmd->add_option("--n-layer", c->n_layer);
  cmd->add_option("--n-head", c->n_head);
  cmd->add_option("--n-head-kv", c->n_head_kv);
  cmd->add_option("--n-ff", c->n_ff);
  cmd->add_option("--n-vocab", c->n_vocab);
  cmd->add_option("--ctx", c->ctx, "Training context written to the metadata");
  cmd->add_option("--head-dim", c->head_dim);
  cmd->add_option("--rope-base", c->rope_base);
  cmd->add_option("--n-expert", c->n_expert, "Experts per layer (mixtures, e.g. qwen3moe)");
  cmd->add_option("--n-expert-used", c->n_expert_used, "Experts each token is routed to");
  cmd->add_option("--n-ff-exp", c->n_ff_exp, "Rows of one expert's gate/up matrices");
  return [c] { return run(*c); };
}

CODEY_REGISTER_COMMAND(synth, setup);

}  // namespace
}  // namespace codey::cli
