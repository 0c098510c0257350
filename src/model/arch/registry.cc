// The architectures codey runs: one line per file in src/model/arch/.
#include <fmt/format.h>

#include "codey/model.h"

namespace codey {

extern const ArchSpec kArchLlama;
extern const ArchSpec kArchQwen2;
extern const ArchSpec kArchGemma3;
extern const ArchSpec kArchQwen3;
extern const ArchSpec kArchQwen3Moe;

namespace {

const ArchSpec* const kArchs[] = {&kArchLlama, &kArchQwen2, &kArchGemma3, &kArchQwen3, &kArchQwen3Moe};

}  // namespace

const ArchSpec* find_arch(std::string_view name) {
  for (const ArchSpec* a : kArchs)
    if (a->name == name) return a;
  return nullptr;
}

std::vector<std::string_view> supported_archs() {
  std::vector<std::string_view> out;
  for (const ArchSpec* a : kArchs) out.push_back(a->name);
  return out;
}

}  // namespace codey
