// Chooses the kernel table once per process: the best table the CPU supports,
// or the one CODEY_ISA names. ISA tables register here (one line each).
#include <algorithm>
#include <array>
#include <cstdlib>
#include <string>

#include "codey/base.h"
#include "codey/kernels.h"

namespace codey::kernels {

#if defined(__x86_64__)
// kernels/x86/avx2.cc, avx512.cc (compiled with their ISA flags).
const KernelTable& avx2_kernel_table();
const KernelTable& avx512_kernel_table();
#endif

namespace {

struct Candidate {
  std::string_view name;
  // CpuFeatures::names() a CPU must have. Every -m flag the build compiles
  // the table's units with is one of these (CMakeLists.txt; kernels_test
  // IsaFlags checks it): the compiler may use any of them anywhere in a unit.
  std::array<std::string_view, 12> requires_;  // unused entries empty
  const KernelTable& (*table)();
  bool cpu_has() const {
    const auto have = cpu_features().names();
    for (auto r : requires_)
      if (!r.empty() && std::find(have.begin(), have.end(), r) == have.end()) return false;
    return true;
  }
};

// Best last.
const Candidate kCandidates[] = {
    {"ref", {}, ref_kernel_table},
#if defined(__x86_64__)
    {"avx2", {"avx2", "fma", "f16c", "bmi2"}, avx2_kernel_table},
    {"avx512",
     {"avx2", "fma", "f16c", "bmi2", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512vnni"},
     avx512_kernel_table},
#endif
};

const KernelTable& choose() {
  const Candidate* best = &kCandidates[0];
  for (const auto& c : kCandidates)
    if (c.cpu_has()) best = &c;
  if (const char* env = std::getenv("CODEY_ISA"); env && *env) {
    for (const auto& c : kCandidates) {
      if (c.name != env) continue;
      if (c.cpu_has()) return c.table();
      log_error("CODEY_ISA={}: this CPU lacks that instruction set; using {}", env, best->name);
      return best->table();
    }
    std::string names;
    for (const auto& c : kCandidates) names += fmt::format("{}{}", names.empty() ? "" : "|", c.name);
    log_error("CODEY_ISA={}: unknown (expected {}); using {}", env, names, best->name);
  }
  return best->table();
}

}  // namespace

Matrix Matrix::from_view(const TensorView& view) {
  Matrix m;
  m.type = view.type;
  m.cols = view.ne[0];
  m.rows = view.n_rows();
  m.data = view.data.data();
  m.row_bytes = view.row_size();
  return m;
}

const KernelTable& kernels() {
  static const KernelTable& table = choose();
  return table;
}

const KernelTable* kernel_table(std::string_view name) {
  for (const auto& c : kCandidates)
    if (c.name == name && c.cpu_has()) return &c.table();
  return nullptr;
}

std::vector<std::string_view> isa_requirements(std::string_view name) {
  for (const auto& c : kCandidates)
    if (c.name == name) {
      std::vector<std::string_view> out;
      for (auto r : c.requires_)
        if (!r.empty()) out.push_back(r);
      return out;
    }
  return {};
}

std::vector<std::string_view> available_isas() {
  std::vector<std::string_view> out;
  for (const auto& c : kCandidates)
    if (c.cpu_has()) out.push_back(c.name);
  return out;
}

bool matmul_supports(TensorType type) {
  return type == TensorType::kF32 || type == TensorType::kF16 || type_traits(type).dequantizable;
}

}  // namespace codey::kernels
