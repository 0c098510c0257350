// `codey task "TASK" [--config codey.yaml] [--model FILE|NAME] [--router FILE]
// [--route R] [--workspace DIR] [--force] [--dry-run] [--max-repairs N]`: route
// a coding task, stream the answer, write its code into the workspace, check it.
#include <unistd.h>

#include <cstdio>

#include "cli/command.h"
#include "codey/assistant.h"
#include "codey/store.h"

namespace codey::cli {
namespace {

struct TaskCli {
  std::string task;
  std::string config, model, router, route, workspace, draft;
  int lookup = 0;
  bool force = false, dry_run = false, quiet = false;
  int max_repairs = 2;
};

// Exit codes: 0 done; 1 error; 3 done but a check failed or a file was not
// written; 130 cancelled with Ctrl-C.
int run(const TaskCli& c) {
  if (c.task.empty()) return fail("give the task, e.g. codey task \"Create add and divide in calculator.py\"");
  AssistantSetup setup;
  setup.config_path = c.config;
  setup.router_file = c.router;
  setup.draft_file = c.draft;
  setup.lookup = c.lookup;
  std::string model_name;  // --model naming a configured model rather than a file
  if (!c.model.empty()) {
    std::error_code ec;
    // A file or a model reference serves every route; else a configured model's name.
    auto ref = parse_model_ref(c.model);
    if (std::filesystem::exists(c.model, ec) || c.config.empty() || (ref && ref->kind != RefKind::kPath))
      setup.model_file = c.model;
    else model_name = c.model;
  }
  auto cfg = assistant_config(setup);
  if (!cfg) return fail(cfg.error().message);
  auto rt = Runtime::create(std::move(*cfg));
  if (!rt) return fail(rt.error().message);
  Assistant assistant(**rt, c.workspace);
  if (!assistant.workspace()) return fail(assistant.workspace_error());

  InterruptHandler interrupts(/*second_exits=*/true);
  StatusLine status(2);
  const bool tty_out = ::isatty(1) != 0;
  TaskEvents ev;
  ev.on_route = [&](const RouteDecision& d) {
    std::fprintf(stderr, "route: %s (%s, %.2f s)\n", d.route.c_str(), d.reason.c_str(), d.seconds);
  };
  ev.on_generation_start = [&](int attempt, const std::string& model) {
    // Which model answers is status (stderr), shown with --quiet too.
    std::fflush(stdout);
    if (attempt == 0) std::fprintf(stderr, "model: %s\n", model.c_str());
  };
  char last_char = '\n';
  ev.on_text = [&](std::string_view t) {
    if (c.quiet || t.empty()) return;
    last_char = t.back();
    std::fwrite(t.data(), 1, t.size(), stdout);
    if (tty_out) std::fflush(stdout);
  };
  ev.on_progress = [&](const GenerationProgress& p) { status.show(format_progress(p)); };
  ev.on_generation_end = [&](int, const Timings& t) {
    status.end();
    if (!c.quiet && last_char != '\n') std::printf("\n");
    last_char = '\n';
    std::fflush(stdout);
    std::fprintf(stderr, "[%lld tokens, %.1f tok/s, prompt %lld tokens in %.2f s%s]\n",
                 static_cast<long long>(t.generated_tokens), t.generation_tps(),
                 static_cast<long long>(t.prompt_tokens), t.prompt_s,
                 t.load_s > 0 ? fmt::format(", load {:.1f} s", t.load_s).c_str() : "");
  };
  ev.on_note = [&](std::string_view n) { std::fprintf(stderr, "%.*s\n", static_cast<int>(n.size()), n.data()); };

  TaskOptions o;
  o.route = c.route;
  o.model = model_name;
  o.force = c.force;
  o.dry_run = c.dry_run;
  o.max_repairs = c.max_repairs;
  o.confirm_overwrite = [](const std::string& f) {
    return ask_yes_no(fmt::format("{} exists. Overwrite it (the old version is kept as a backup)?", f));
  };
  o.cancel = interrupts.begin_turn();
  auto r = assistant.run_task(c.task, o, ev);
  interrupts.end_turn();
  status.end();
  if (!r) return fail(r.error().message);
  std::fflush(stdout);
  std::fprintf(stderr, "%s", r->summary(/*with_route=*/false).c_str());
  if (r->cancelled) return 130;
  if (c.dry_run) {
    for (const auto& b : r->blocks) {
      if (b.filename.empty()) continue;
      std::fprintf(stderr, "--- %s (dry run) ---\n%s", b.filename.c_str(), b.code.c_str());
    }
  }
  bool refused = false;
  for (const auto& w : r->writes) refused = refused || w.action == WriteAction::kRefused;
  return r->checks_passed() && !refused ? 0 : 3;
}

CommandRunner setup(CLI::App& root) {
  auto c = std::make_shared<TaskCli>();
  auto* cmd = root.add_subcommand("task", "Route a coding task to a model, write the code it answers, check it");
  cmd->add_option("task", c->task, "The task, e.g. \"Create functions for add and divide in calculator.py\"")->required();
  cmd->add_option("--config", c->config, "codey.yaml with models and routes (default: ./codey.yaml if present)");
  cmd->add_option("--model", c->model,
                  "A GGUF file or model reference (hf.co/OWNER/REPO:QUANT, ollama:NAME:TAG) that serves every route "
                  "(quick mode), or a configured model's name");
  cmd->add_option("--router", c->router, "A GGUF file that routes (e.g. functiongemma-270m-it); else keywords");
  cmd->add_option("--route", c->route, "Skip routing: use this route");
  cmd->add_option("--workspace", c->workspace, "Directory files are written into (default: the current one)");
  cmd->add_flag("--force", c->force, "Overwrite existing files (a backup is kept)");
  cmd->add_flag("--dry-run", c->dry_run, "Show what would be written; write nothing");
  cmd->add_option("--max-repairs", c->max_repairs, "Answers asked to fix failed checks (default 2)")
      ->check(CLI::Range(0, 20));
  cmd->add_flag("-q,--quiet", c->quiet, "Do not stream the answer");
  cmd->add_option("--draft", c->draft, "Speculative decoding for the --model file with this draft model (same vocabulary)");
  cmd->add_option("--lookup", c->lookup, "Speculative decoding for the --model file: n-gram lookup drafts of up to N tokens")
      ->check(CLI::Range(1, 64));
  return [c] { return run(*c); };
}

}  // namespace

CODEY_REGISTER_COMMAND(task, setup);

}  // namespace codey::cli
