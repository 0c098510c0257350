// `codey rm REF`: removes a pulled model (every part, unfinished downloads,
// its manifest entry). Models other tools keep are left to those tools.
#include <cstdio>

#include "cli/command.h"
#include "codey/store.h"

namespace codey::cli {
namespace {

struct RmCli {
  std::vector<std::string> refs;
};

int run(const RmCli& c) {
  int rc = 0;
  for (const auto& ref : c.refs) {
    auto removed = remove_model(ref);
    if (!removed) {
      rc = fail(removed.error().message);
      continue;
    }
    uint64_t n = removed->size();
    std::printf("removed %s (%llu file%s)\n", ref.c_str(), static_cast<unsigned long long>(n), n == 1 ? "" : "s");
  }
  return rc;
}

CommandRunner setup(CLI::App& root) {
  auto c = std::make_shared<RmCli>();
  auto* cmd = root.add_subcommand("rm", "Remove pulled models: hf.co/OWNER/REPO:QUANT ...");
  cmd->add_option("ref", c->refs, "The model's reference, as `codey models` shows it")->required();
  return [c] { return run(*c); };
}

CODEY_REGISTER_COMMAND(rm, setup);

}  // namespace
}  // namespace codey::cli
