// `codey models [--json]`: the models on this machine - pulled with `codey
// pull`, and the GGUF files Ollama, LM Studio and the Hugging Face cache keep
// (read in place) - with size, quantization, architecture and the reference
// that names each; downloads that stopped before the end.
#include <nlohmann/json.hpp>

#include <cstdio>

#include "cli/command.h"
#include "codey/store.h"

namespace codey::cli {
namespace {

struct ModelsCli {
  bool json = false;
};

int run(const ModelsCli& c) {
  const StoreOptions o = StoreOptions::from_env();
  const ModelList list = list_models(o, /*read_headers=*/true);
  if (c.json) {
    nlohmann::json j;
    j["models_dir"] = o.models_dir;
    j["models"] = nlohmann::json::array();
    for (const auto& m : list.models) {
      nlohmann::json e{{"ref", m.ref},   {"source", std::string(model_source_name(m.source))},
                       {"path", m.path}, {"files", m.files},
                       {"size", m.size}, {"quant", m.quant},
                       {"architecture", m.architecture}, {"parameters", m.n_params},
                       {"repo", m.repo}, {"modified", static_cast<int64_t>(m.modified)}};
      if (!m.sha256.empty()) e["sha256"] = m.sha256;
      if (!m.error.empty()) e["error"] = m.error;
      j["models"].push_back(e);
    }
    j["partial_downloads"] = nlohmann::json::array();
    for (const auto& p : list.partials) j["partial_downloads"].push_back({{"ref", p.ref}, {"path", p.path}, {"size", p.size}});
    j["warnings"] = list.warnings;
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  if (list.models.empty()) {
    std::printf("no models yet: `codey pull hf.co/OWNER/REPO:QUANT` downloads one into %s, e.g.\n"
                "  codey pull hf.co/Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF:Q4_K_M\n"
                "(GGUF files of Ollama, LM Studio and the Hugging Face cache are listed here too)\n",
                tilde_path(o.models_dir).c_str());
  } else {
    struct Row {
      std::string ref, quant, arch, params, size, source, where;
    };
    std::vector<Row> rows{{"REFERENCE", "QUANT", "ARCH", "PARAMS", "SIZE", "SOURCE", "PATH"}};
    for (const auto& m : list.models) {
      Row r{m.ref, m.quant.empty() ? "-" : m.quant, m.architecture.empty() ? "-" : m.architecture,
            m.n_params ? format_count(m.n_params) : "-", format_bytes(m.size), std::string(model_source_name(m.source)),
            tilde_path(m.path)};
      if (!m.error.empty()) r.arch = "(unreadable)";
      rows.push_back(std::move(r));
    }
    size_t w[6] = {0};
    for (const auto& r : rows) {
      const std::string* f[6] = {&r.ref, &r.quant, &r.arch, &r.params, &r.size, &r.source};
      for (int i = 0; i < 6; ++i) w[i] = std::max(w[i], f[i]->size());
    }
    for (const auto& r : rows)
      std::printf("%-*s  %-*s  %-*s  %*s  %*s  %-*s  %s\n", int(w[0]), r.ref.c_str(), int(w[1]), r.quant.c_str(),
                  int(w[2]), r.arch.c_str(), int(w[3]), r.params.c_str(), int(w[4]), r.size.c_str(), int(w[5]),
                  r.source.c_str(), r.where.c_str());
    for (const auto& m : list.models)
      if (!m.error.empty()) std::printf("%s: %s\n", m.ref.c_str(), m.error.c_str());
  }
  if (!list.partials.empty()) {
    std::printf("\nunfinished downloads (`codey pull` resumes them, `codey rm` deletes them):\n");
    for (const auto& p : list.partials)
      std::printf("  %s  %s  %s\n", p.ref.c_str(), format_bytes(p.size).c_str(), tilde_path(p.path).c_str());
  }
  for (const auto& w : list.warnings) std::fprintf(stderr, "codey models: %s\n", w.c_str());
  return 0;
}

CommandRunner setup(CLI::App& root) {
  auto c = std::make_shared<ModelsCli>();
  auto* cmd = root.add_subcommand(
      "models", "List the models on this machine: pulled ones and the GGUF files of Ollama, LM Studio, the HF cache");
  cmd->add_flag("--json", c->json, "Print JSON");
  return [c] { return run(*c); };
}

CODEY_REGISTER_COMMAND(models, setup);

}  // namespace
}  // namespace codey::cli
