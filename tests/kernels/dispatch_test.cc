// The kernel dispatcher (src/kernels/dispatch.cc): a table is offered only to
// CPUs with every instruction set its units are compiled with.
#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>
#include <string>

#include "codey/base.h"
#include "codey/kernels.h"

namespace codey::kernels {
namespace {

// The -m flags of each ISA unit (CMakeLists.txt, passed in by tests/CMakeLists.txt)
// against the features dispatch checks: a flag it does not check lets the
// compiler emit instructions a CPU it accepts may lack (SIGILL).
TEST(IsaFlags, EveryCompileFlagIsCheckedAtRunTime) {
  CpuFeatures all;
  all.avx2 = all.fma = all.f16c = all.bmi2 = true;
  all.avx512f = all.avx512bw = all.avx512vl = all.avx512dq = true;
  all.avx512vnni = all.avx512bf16 = all.avxvnni = true;
  const auto known = all.names();
  const std::pair<const char*, const char*> units[] = {{"avx2", CODEY_AVX2_FLAGS}, {"avx512", CODEY_AVX512_FLAGS}};
  for (const auto& [isa, flags] : units) {
    SCOPED_TRACE(isa);
    const auto req = isa_requirements(isa);
    ASSERT_FALSE(req.empty());
    for (auto r : req) EXPECT_NE(std::find(known.begin(), known.end(), r), known.end()) << r << " is no CPU feature";
    std::istringstream ss(flags);
    std::string f;
    int n = 0;
    while (ss >> f) {
      ++n;
      ASSERT_TRUE(f.starts_with("-m")) << f;
      EXPECT_NE(std::find(req.begin(), req.end(), f.substr(2)), req.end())
          << isa << " units are compiled with " << f << ", which dispatch does not check";
    }
    EXPECT_GE(n, 4);
  }
  EXPECT_TRUE(isa_requirements("ref").empty());
}

// A table is available exactly when the CPU has what it requires.
TEST(IsaFlags, AvailableIsasFollowTheRequirements) {
  const auto have = cpu_features().names();
  const auto avail = available_isas();
  ASSERT_FALSE(avail.empty());
  EXPECT_EQ(avail.front(), "ref");
  for (const char* isa : {"avx2", "avx512"}) {
    const auto req = isa_requirements(isa);
    const bool all = std::all_of(req.begin(), req.end(),
                                 [&](std::string_view r) { return std::find(have.begin(), have.end(), r) != have.end(); });
    EXPECT_EQ(std::find(avail.begin(), avail.end(), isa) != avail.end(), all) << isa;
    EXPECT_EQ(kernel_table(isa) != nullptr, all) << isa;
  }
}

}  // namespace
}  // namespace codey::kernels
