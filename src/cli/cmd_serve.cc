// `codey serve [--config codey.yaml] [--host H] [--port P] [--model FILE|REF ...]
// [--draft FILE | --lookup N] [--allow-pull]`:
// the OpenAI- and Ollama-compatible HTTP server. Without a config, the GGUF
// files given with --model are served under their file names (stem), model
// references under the reference; with neither, the models on disk (codey's
// store, Ollama, LM Studio, the HF cache), which clients may add to with /api/pull.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <thread>

#include "cli/command.h"
#include "codey/runtime.h"
#include "codey/server.h"
#include "codey/store.h"

namespace codey::cli {
namespace {

struct ServeCli {
  std::string config;
  std::string host;
  int port = -1;
  std::vector<std::string> models;
  std::string api_key;
  std::string budget;
  int parallel = 0;
  int64_t ctx = 0;
  std::string draft;  // --model files: speculative decoding with this draft model
  int lookup = 0;     // --model files: n-gram lookup drafts
  double grace_s = -1;
  bool allow_pull = false;
};

// Pulls a model reference before serving (server.allow_pull / --allow-pull),
// with status lines on stderr.
Status pull_before_serving(const std::string& ref) {
  std::fprintf(stderr, "codey serve: pulling %s\n", ref.c_str());
  int last_tenth = -1;
  std::string last_file;
  PullEvents ev;
  ev.on_status = [](std::string_view st) { std::fprintf(stderr, "  %.*s\n", int(st.size()), st.data()); };
  ev.on_progress = [&](const PullProgress& p) {
    const int tenth = p.total ? static_cast<int>(10 * p.completed / p.total) : 10;
    if (p.file == last_file && tenth == last_tenth) return;
    last_file = p.file;
    last_tenth = tenth;
    std::fprintf(stderr, "  %s: %s of %s\n", p.file.c_str(), format_bytes(p.completed).c_str(),
                 format_bytes(p.total).c_str());
  };
  auto r = pull_model(ref, StoreOptions::from_env(), ev);
  if (!r) return std::unexpected(std::move(r.error()));
  return {};
}

Result<RuntimeConfig> build_config(const ServeCli& c) {
  namespace fs = std::filesystem;
  RuntimeConfig cfg;
  if (!c.config.empty()) {
    auto loaded = load_config(c.config);
    if (!loaded) return std::unexpected(loaded.error());
    cfg = std::move(*loaded);
  } else if (c.models.empty()) {
    if (fs::exists("codey.yaml")) {
      auto loaded = load_config("codey.yaml");
      if (!loaded) return std::unexpected(loaded.error());
      cfg = std::move(*loaded);
    } else {  // the models on disk, found when requested; clients may pull more
      cfg.memory_budget_auto = true;
      cfg.memory_budget = auto_memory_budget();
      cfg.threads = usable_cores();
    }
  } else {
    cfg.memory_budget_auto = true;
    cfg.memory_budget = auto_memory_budget();
    cfg.threads = usable_cores();
  }
  // Quick mode: each file under its stem, each model reference under its
  // canonical text (what Ollama clients call it), with the built-in defaults.
  const bool allow_pull = c.allow_pull || cfg.server.allow_pull;
  for (const auto& file : c.models) {
    auto local = resolve_model(file);
    if (!local && allow_pull && local.error().code == ErrorCode::kNotFound) {
      auto ref = parse_model_ref(file);
      if (ref && (ref->kind == RefKind::kHub || ref->kind == RefKind::kHubFile)) {
        CODEY_TRY(pull_before_serving(file));
        local = resolve_model(file);
      }
    }
    if (!local) {
      std::string hint;
      if (local.error().message.find("is not pulled") != std::string::npos) hint = " (or serve with --allow-pull)";
      return make_error(local.error().code, "--model {}: {}{}", file, local.error().message, hint);
    }
    ModelConfig m;
    m.name = local->serve_name();
    m.path = local->path;
    if (local->source != ModelSource::kFile) m.ref = local->ref;
    if (c.parallel > 0) m.parallel = c.parallel;
    if (c.ctx > 0) {
      m.ctx = c.ctx;
      m.ctx_auto = false;
    }
    if (cfg.find_model(m.name))
      return make_error(ErrorCode::kInvalidArgument, "--model {}: a model named '{}' is already configured", file, m.name);
    cfg.models.push_back(std::move(m));
  }
  // Speculative decoding for the --model files.
  if ((!c.draft.empty() || c.lookup > 0) && c.models.empty())
    return make_error(ErrorCode::kInvalidArgument,
                      "--draft and --lookup apply to --model files; for configured models set draft: or lookup: in "
                      "codey.yaml");
  if (!c.draft.empty() && c.lookup > 0)
    return make_error(ErrorCode::kInvalidArgument, "give one of --draft and --lookup, not both");
  const size_t first_cli = cfg.models.size() - c.models.size();
  if (!c.draft.empty()) {
    std::error_code ec;
    const fs::path p = fs::absolute(c.draft, ec);
    if (ec || !fs::is_regular_file(p)) return make_error(ErrorCode::kNotFound, "--draft {}: no such file", c.draft);
    std::string name;
    for (const auto& m : cfg.models)
      if (m.path == p.string()) name = m.name;
    if (name.empty()) {
      ModelConfig d;
      d.name = p.stem().string();
      d.path = p.string();
      if (c.parallel > 0) d.parallel = c.parallel;
      if (cfg.find_model(d.name))
        return make_error(ErrorCode::kInvalidArgument, "--draft {}: a model named '{}' is already configured", c.draft,
                          d.name);
      name = d.name;
      cfg.models.push_back(std::move(d));
    }
    for (size_t i = first_cli; i < first_cli + c.models.size(); ++i)
      if (cfg.models[i].name != name) cfg.models[i].draft = name;
  }
  for (size_t i = first_cli; i < first_cli + c.models.size(); ++i) cfg.models[i].lookup = c.lookup;
  CODEY_TRY(link_drafts(cfg));
  if (!c.budget.empty()) {
    if (c.budget == "auto") {
      cfg.memory_budget_auto = true;
      cfg.memory_budget = auto_memory_budget();
    } else {
      auto b = parse_bytes(c.budget);
      if (!b || *b == 0) return make_error(ErrorCode::kInvalidArgument, "--memory-budget: expected a size like 8GiB, got '{}'", c.budget);
      cfg.memory_budget = *b;
      cfg.memory_budget_auto = false;
    }
  }
  if (!c.host.empty()) cfg.server.host = c.host;
  if (c.port >= 0) cfg.server.port = c.port;
  if (!c.api_key.empty()) cfg.server.api_key = c.api_key;
  if (c.grace_s >= 0) cfg.server.shutdown_grace = Millis(static_cast<int64_t>(c.grace_s * 1000));
  // Configured references not pulled yet: pulled now when allowed.
  if (allow_pull)
    for (auto& m : cfg.models) {
      if (m.ref.empty() || model_file(m)) continue;
      auto ref = parse_model_ref(m.ref);
      if (!ref || (ref->kind != RefKind::kHub && ref->kind != RefKind::kHubFile)) continue;
      CODEY_TRY(pull_before_serving(m.ref));
      if (auto file = model_file(m)) m.path = *file;
    }
  cfg.server.allow_pull = allow_pull;
  return cfg;
}

int run(const ServeCli& c) {
  auto cfg = build_config(c);
  if (!cfg) return fail(cfg.error().message);

  // SIGINT/SIGTERM go to one watcher thread (blocked everywhere else: threads
  // the runtime and the server start inherit this mask). A closed client
  // socket must not kill the process.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  const Millis grace = cfg->server.shutdown_grace;
  ServerOptions so;
  so.config = cfg->server;
  so.version = CODEY_VERSION;
  auto rt = Runtime::create(std::move(*cfg));
  if (!rt) return fail(rt.error().message);
  for (const auto& w : exposure_warnings(so.config, !c.api_key.empty()))
    std::fprintf(stderr, "codey serve: warning: %s\n", w.c_str());
  auto srv = Server::create(**rt, so);
  if (!srv) return fail(srv.error().message);
  if (auto b = (*srv)->bind(); !b) return fail(b.error().message);

  Server* server = srv->get();
  std::thread([server, stop_signals, grace] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    std::fprintf(stderr,
                 "codey serve: %s, draining: no new connections or requests; finishing the running ones for up to "
                 "%s, then shutting down (again to stop now)\n",
                 sig == SIGINT ? "interrupted" : "terminated", format_duration(grace).c_str());
    std::thread([server, grace] { server->shutdown(grace); }).detach();
    sigwait(&stop_signals, &sig);
    std::fprintf(stderr, "codey serve: stopping now\n");
    std::_Exit(130);
  }).detach();

  std::string names;
  for (const auto& m : (*rt)->config().models) names += (names.empty() ? "" : ", ") + m.name;
  if (names.empty()) names = "those on disk (codey models lists them); POST /api/pull adds more";
  std::printf("codey serve: listening on http://%s:%d (models: %s)\n", so.config.host.c_str(), server->port(),
              names.c_str());
  std::fflush(stdout);
  server->serve();
  server->shutdown(grace);  // serve() also returns when the listener fails; make sure the runtime is down
  std::fprintf(stderr, "codey serve: stopped\n");
  return 0;
}

CommandRunner setup(CLI::App& root) {
  auto c = std::make_shared<ServeCli>();
  auto* cmd = root.add_subcommand("serve", "Serve models over OpenAI- and Ollama-compatible HTTP APIs");
  cmd->add_option("-c,--config", c->config, "codey.yaml with models, memory budget and server settings");
  cmd->add_option("--host", c->host, "Address to bind (default 127.0.0.1, or server.host)");
  cmd->add_option("-p,--port", c->port, "Port (default 11435, or server.port; 0 = any free port)");
  cmd->add_option("-m,--model", c->models,
                  "Serve this GGUF file (named by its stem) or model reference (hf.co/OWNER/REPO:QUANT, "
                  "ollama:NAME:TAG; named by it) too (repeatable)");
  cmd->add_option("--api-key", c->api_key, "Require 'Authorization: Bearer KEY' (or env:NAME)");
  cmd->add_option("--memory-budget", c->budget, "Memory budget for models, e.g. 8GiB or auto");
  cmd->add_option("--parallel", c->parallel, "--model files: sequences decoded together (default 1)");
  cmd->add_option("--ctx", c->ctx, "--model files: positions per sequence (default: grow as needed)");
  cmd->add_option("--draft", c->draft,
                  "--model files: speculative decoding with this draft model (a small model sharing the vocabulary)");
  cmd->add_option("--lookup", c->lookup, "--model files: speculative decoding by n-gram lookup, drafts of up to N tokens")
      ->check(CLI::Range(0, 64));
  cmd->add_flag("--allow-pull", c->allow_pull,
                "Pull --model / config references that are not pulled yet before serving (server.allow_pull)");
  cmd->add_option("--shutdown-grace", c->grace_s, "Seconds running requests may finish while draining on SIGINT/SIGTERM (default 10)");
  return [c] { return run(*c); };
}

CODEY_REGISTER_COMMAND(serve, setup);

}  // namespace
}  // namespace codey::cli
