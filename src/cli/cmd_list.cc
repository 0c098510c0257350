// `codey list [--config F] [--json]`: the configured models and what each
// needs (weights, KV cache at its context and slots, scratch) before anything
// is loaded, against the memory budget.
#include <nlohmann/json.hpp>

#include <cstdio>

#include "cli/command.h"
#include "codey/runtime.h"

namespace codey::cli {
namespace {

struct ListOptions {
  std::string config;
  bool json = false;
};

int run_list(const ListOptions& o) {
  const std::string path = o.config.empty() ? default_config_path() : o.config;
  auto cfg = load_config(path);
  if (!cfg) return fail(cfg.error().message);
  auto backend = make_gguf_backend();

  nlohmann::json models = nlohmann::json::array();
  struct Row {
    std::string name, arch, params, file, ctx, slots, kv, needs, at_max, notes;
  };
  std::vector<Row> rows;
  for (const ModelConfig& m : cfg->models) {
    nlohmann::json j;
    j["name"] = m.name;
    j["path"] = m.path;
    j["pinned"] = m.pinned;
    j["slots"] = m.parallel;
    j["kv_type"] = std::string(type_name(m.kv_type));
    j["batch"] = m.batch;
    j["keep_alive_ms"] = m.keep_alive.count();
    j["deadline_ms"] = m.deadline.count();
    j["max_tokens"] = m.max_tokens;
    Row row;
    row.name = m.name;
    row.slots = fmt::format("{}", m.parallel);
    row.kv = std::string(type_name(m.kv_type));
    std::vector<std::string> notes;
    if (m.pinned) notes.push_back("pinned");
    notes.push_back("keep " + format_duration(m.keep_alive));
    auto f = backend->inspect(m);
    if (!f) {
      j["error"] = f.error().message;
      row.arch = "-";
      row.notes = "unusable: " + f.error().message;
      rows.push_back(std::move(row));
      models.push_back(std::move(j));
      continue;
    }
    const CtxPlan plan = plan_ctx(m, *f);
    const uint64_t needed = f->bytes_at(plan.start, m.parallel);
    const uint64_t at_max = f->bytes_at(plan.limit, m.parallel);
    j["architecture"] = f->architecture;
    j["n_params"] = f->n_params;
    j["file_bytes"] = f->file_bytes;
    j["n_ctx_train"] = f->n_ctx_train;
    j["ctx"] = {{"auto", m.ctx_auto}, {"start", plan.start}, {"max", plan.limit}};
    j["memory"] = {{"weights", f->weight_bytes},
                   {"kv_cache", f->kv_bytes_per_pos * uint64_t(plan.start) * uint64_t(m.parallel)},
                   {"scratch", f->scratch_bytes},
                   {"needed", needed},
                   {"at_max_ctx", at_max}};
    j["fits"] = needed <= cfg->memory_budget;
    row.arch = f->architecture;
    row.params = format_count(f->n_params);
    row.file = format_bytes(f->file_bytes);
    row.ctx = m.ctx_auto ? fmt::format("auto {}..{}", plan.start, plan.limit) : fmt::format("{}", plan.start);
    row.needs = format_bytes(needed);
    row.at_max = m.ctx_auto ? format_bytes(at_max) : "-";
    if (needed > cfg->memory_budget) notes.insert(notes.begin(), "DOES NOT FIT the budget");
    if (m.ctx_auto && at_max > cfg->memory_budget) notes.push_back("max ctx over budget");
    if (f->n_ctx_train > 0 && plan.limit > f->n_ctx_train)
      notes.push_back(fmt::format("ctx over training {}", f->n_ctx_train));
    for (size_t i = 0; i < notes.size(); ++i) row.notes += (i ? ", " : "") + notes[i];
    rows.push_back(std::move(row));
    models.push_back(std::move(j));
  }

  if (o.json) {
    nlohmann::json out;
    out["config"] = cfg->path;
    out["memory_budget"] = cfg->memory_budget;
    out["memory_budget_auto"] = cfg->memory_budget_auto;
    out["threads"] = cfg->threads;
    out["models"] = models;
    out["router"] = cfg->router.empty() ? nlohmann::json(nullptr) : nlohmann::json(cfg->router);
    nlohmann::json routes = nlohmann::json::array();
    for (const auto& r : cfg->routes) routes.push_back({{"name", r.name}, {"model", r.model}, {"description", r.description}});
    out["routes"] = routes;
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  std::printf("config %s: memory budget %s%s, %d threads\n", cfg->path.c_str(),
              format_bytes(cfg->memory_budget).c_str(), cfg->memory_budget_auto ? " (auto)" : "", cfg->threads);
  std::vector<Row> table;
  table.push_back({"NAME", "ARCH", "PARAMS", "FILE", "CTX", "SLOTS", "KV", "NEEDS", "AT MAX CTX", "NOTES"});
  table.insert(table.end(), rows.begin(), rows.end());
  size_t w[9] = {};
  for (const auto& r : table) {
    const std::string* cols[9] = {&r.name, &r.arch, &r.params, &r.file, &r.ctx, &r.slots, &r.kv, &r.needs, &r.at_max};
    for (int i = 0; i < 9; ++i) w[i] = std::max(w[i], cols[i]->size());
  }
  for (const auto& r : table) {
    const std::string* cols[9] = {&r.name, &r.arch, &r.params, &r.file, &r.ctx, &r.slots, &r.kv, &r.needs, &r.at_max};
    std::string line;
    for (int i = 0; i < 9; ++i) line += fmt::format("{:<{}}  ", *cols[i], w[i]);
    line += r.notes;
    std::printf("%s\n", line.c_str());
  }
  if (!cfg->routes.empty()) {
    std::printf("\nroutes%s:\n", cfg->router.empty() ? " (keyword routing: no router model)"
                                                       : fmt::format(" (router: {})", cfg->router).c_str());
    for (const auto& r : cfg->routes)
      std::printf("  %-12s -> %-12s %s\n", r.name.c_str(), r.model.c_str(), r.description.c_str());
  }
  return 0;
}

CommandRunner setup_list(CLI::App& root) {
  auto o = std::make_shared<ListOptions>();
  auto* cmd = root.add_subcommand("list", "The configured models and the memory each needs");
  cmd->add_option("-c,--config", o->config, "Config file (default: $CODEY_CONFIG, ./codey.yaml, ~/.config/codey/codey.yaml)");
  cmd->add_flag("--json", o->json, "Print JSON");
  return [o] { return run_list(*o); };
}

}  // namespace

CODEY_REGISTER_COMMAND(list, setup_list);

}  // namespace codey::cli
