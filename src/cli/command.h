// Subcommand registry of the codey binary: each cmd_*.cc registers itself
// with CODEY_REGISTER_COMMAND; main() wires them into CLI11.
#pragma once

#include <functional>
#include <vector>

#include <CLI/CLI.hpp>

namespace codey::cli {

// `setup` adds a subcommand to the root app and returns the function that runs
// it (called only when that subcommand was chosen). The runner returns the
// process exit code.
using CommandRunner = std::function<int()>;
using CommandSetup = CommandRunner (*)(CLI::App& root);

struct CommandDef {
  const char* name;
  CommandSetup setup;
};

std::vector<CommandDef>& command_registry();

struct CommandRegistrar {
  CommandRegistrar(const char* name, CommandSetup setup) { command_registry().push_back({name, setup}); }
};

#define CODEY_REGISTER_COMMAND(name, setup_fn) \
  static ::codey::cli::CommandRegistrar codey_cmd_registrar_##name(#name, setup_fn)

// Print "codey: <message>" to stderr and return exit code 1 (for runners).
int fail(const std::string& message);

}  // namespace codey::cli
