// `codey chat [--config codey.yaml] [--model FILE|NAME] [--router FILE]
// [--route R] [--workspace DIR]`: an interactive coding conversation with
// streaming, /commands and Ctrl-C that stops an answer without quitting.
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "cli/command.h"
#include "codey/assistant.h"
#include "codey/store.h"

namespace codey::cli {
namespace {

struct ChatCli {
  std::string config, model, router, route, workspace, draft;
  int lookup = 0;
};

int run(const ChatCli& c) {
  AssistantSetup setup;
  setup.config_path = c.config;
  setup.router_file = c.router;
  setup.draft_file = c.draft;
  setup.lookup = c.lookup;
  std::string model_name;
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
  ChatSession session(assistant, std::cout);
  const bool interactive = ::isatty(0) != 0;
  session.confirm_overwrite = [](const std::string& f) {
    return ask_yes_no(fmt::format("{} exists. Overwrite it (the old version is kept as a backup)?", f));
  };
  // Flags act like the first /commands.
  if (!c.route.empty() && !session.handle("/route " + c.route, {})) return 0;
  if (!model_name.empty() && !session.handle("/model " + model_name, {})) return 0;

  std::string routes;
  for (const auto& r : assistant.routes()) routes += (routes.empty() ? "" : ", ") + r.name;
  const auto& router = assistant.config().router;
  std::fprintf(stderr, "codey chat · routes: %s · router: %s · workspace: %s\n", routes.c_str(),
               router.empty() ? "keywords" : router.c_str(),
               assistant.workspace() ? assistant.workspace()->root().c_str() : "(none)");
  if (interactive) std::fprintf(stderr, "/help for commands · Ctrl-C stops an answer · Ctrl-D quits\n");

  InterruptHandler interrupts;
  StatusLine status(2);
  TaskEvents ev;
  ev.on_route = [&](const RouteDecision& d) {
    std::fflush(stdout);
    std::fprintf(stderr, "\033[2m[%s · %s]\033[0m\n", d.route.c_str(), d.reason.c_str());
  };
  ev.on_text = [&](std::string_view t) {
    std::cout << t;
    if (interactive) std::cout.flush();
  };
  ev.on_progress = [&](const GenerationProgress& p) { status.show(format_progress(p)); };
  ev.on_generation_end = [&](int, const Timings& t) {
    status.end();
    std::cout.flush();
    if (interactive)
      std::fprintf(stderr, "\n\033[2m[%lld tokens · %.1f tok/s · %.1f s]\033[0m", static_cast<long long>(t.generated_tokens),
                   t.generation_tps(), t.total_s);
  };
  std::string line;
  while (true) {
    if (interactive) {
      std::cout << "\n> " << std::flush;
    }
    const ReadStatus rs = read_line(0, line);
    if (rs == ReadStatus::kEof) {
      if (interactive) std::cout << "\n";
      break;
    }
    if (rs == ReadStatus::kInterrupted) {
      std::cout << "\n(Ctrl-D or /quit leaves)" << std::flush;
      continue;
    }
    const std::stop_token stop = interrupts.begin_turn();
    const bool go_on = session.handle(line, stop, ev);
    interrupts.end_turn();
    status.end();
    std::cout.flush();
    if (!go_on) break;
  }
  return 0;
}

CommandRunner setup(CLI::App& root) {
  auto c = std::make_shared<ChatCli>();
  auto* cmd = root.add_subcommand("chat", "Interactive coding chat: routed, streamed, with /commands");
  cmd->add_option("--config", c->config, "codey.yaml with models and routes (default: ./codey.yaml if present)");
  cmd->add_option("--model", c->model, "A GGUF file or model reference (hf.co/OWNER/REPO:QUANT, ollama:NAME:TAG) that serves every route "
                  "(quick mode), or a configured model's name");
  cmd->add_option("--router", c->router, "A GGUF file that routes each message; else keywords");
  cmd->add_option("--route", c->route, "Start with this route fixed (else auto)");
  cmd->add_option("--workspace", c->workspace, "Directory /write saves into (default: the current one)");
  cmd->add_option("--draft", c->draft, "Speculative decoding for the --model file with this draft model (same vocabulary)");
  cmd->add_option("--lookup", c->lookup, "Speculative decoding for the --model file: n-gram lookup drafts of up to N tokens")
      ->check(CLI::Range(1, 64));
  return [c] { return run(*c); };
}

}  // namespace

CODEY_REGISTER_COMMAND(chat, setup);

}  // namespace codey::cli
