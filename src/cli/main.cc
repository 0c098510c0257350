// The codey binary: dispatches to the registered subcommands.
#include <algorithm>
#include <cstdio>

#include "cli/command.h"
#include "codey/base.h"

namespace codey::cli {

std::vector<CommandDef>& command_registry() {
  static std::vector<CommandDef> registry;
  return registry;
}

int fail(const std::string& message) {
  std::fprintf(stderr, "codey: %s\n", message.c_str());
  return 1;
}

}  // namespace codey::cli

int main(int argc, char** argv) {
  using namespace codey::cli;
  CLI::App app{"codey: a local LLM runtime for code"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("codey ") + CODEY_VERSION);
  auto& registry = command_registry();
  std::sort(registry.begin(), registry.end(),
            [](const CommandDef& a, const CommandDef& b) { return std::string_view(a.name) < b.name; });
  std::vector<std::pair<CLI::App*, CommandRunner>> runners;
  for (const auto& def : registry) {
    size_t before = app.get_subcommands({}).size();
    CommandRunner run = def.setup(app);
    auto subs = app.get_subcommands({});
    if (subs.size() > before) runners.emplace_back(subs.back(), std::move(run));
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  for (auto& [sub, run] : runners)
    if (sub->parsed()) return run();
  return 1;
}
