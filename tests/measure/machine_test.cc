// Tests of the measure layer's machine facts (on fake cgroup and sysfs trees)
// and the statistics of repetitions.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "codey/measure.h"
#include "testing/testing.h"

namespace codey::measure {
namespace {

namespace fs = std::filesystem;

void write(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path) << text;
}

std::string fake_cgroup_v2(const std::string& cpu_max, const std::string& mem_max) {
  const std::string root = testing::temp_dir() + "/cg";
  write(root + "/cpu.max", cpu_max + "\n");
  write(root + "/memory.max", mem_max + "\n");
  return root;
}


TEST(Machine, CgroupV2QuotaAndMemoryLimit) {
  const std::string root = fake_cgroup_v2("100000 100000", "1073741824");
  MachineInfo m = detect_machine(root, testing::temp_dir() + "/no-sysfs");
  EXPECT_EQ(m.usable_cores, 1);
  EXPECT_DOUBLE_EQ(m.cpu_quota, 1.0);
  EXPECT_EQ(m.memory_limit, 1ull << 30);
  EXPECT_LE(m.usable_memory, 1ull << 30);
  EXPECT_GE(m.online_cpus, m.usable_cores);
  EXPECT_FALSE(m.isa.empty());
  EXPECT_NE(m.describe().find("cgroup quota 1.00"), std::string::npos) << m.describe();
}

TEST(Machine, CgroupV1QuotaAndNoLimits) {
  const std::string root = testing::temp_dir() + "/cgv1";
  write(root + "/cpu/cpu.cfs_quota_us", "150000\n");
  write(root + "/cpu/cpu.cfs_period_us", "100000\n");
  write(root + "/memory/memory.limit_in_bytes", "9223372036854771712\n");  // v1 "no limit"
  MachineInfo m = detect_machine(root, "/nonexistent");
  EXPECT_DOUBLE_EQ(m.cpu_quota, 1.5);
  EXPECT_EQ(m.usable_cores, std::min(2, m.affinity_cpus));  // 1.5 cores round up
  EXPECT_EQ(m.memory_limit, 0u);
  const std::string none = fake_cgroup_v2("max 100000", "max");
  MachineInfo n = detect_machine(none, "/nonexistent");
  EXPECT_EQ(n.cpu_quota, 0);
  EXPECT_EQ(n.usable_cores, n.affinity_cpus);
  EXPECT_EQ(n.memory_limit, 0u);
}

TEST(Machine, CachesFromSysfs) {
  const std::string root = testing::temp_dir() + "/sysfs-cpu";
  auto cache = [&](int i, const char* level, const char* type, const char* size, const char* shared) {
    const std::string d = fmt::format("{}/cpu0/cache/index{}", root, i);
    write(d + "/level", level);
    write(d + "/type", type);
    write(d + "/size", size);
    write(d + "/shared_cpu_list", shared);
  };
  cache(0, "1\n", "Data\n", "48K\n", "0\n");
  cache(1, "1\n", "Instruction\n", "32K\n", "0\n");
  cache(2, "2\n", "Unified\n", "1024K\n", "0\n");
  cache(3, "3\n", "Unified\n", "32768K\n", "0-7,16-23\n");
  auto c = read_caches(root);
  ASSERT_EQ(c.size(), 4u);
  EXPECT_EQ(c[0].level, 1);
  EXPECT_EQ(c[0].type, "Data");
  EXPECT_EQ(c[0].bytes, 48u << 10);
  EXPECT_EQ(c[2].bytes, 1u << 20);
  EXPECT_EQ(c[3].bytes, 32u << 20);
  EXPECT_EQ(c[3].shared_cpus, 16);
  MachineInfo m = detect_machine("/nonexistent", root);
  EXPECT_NE(m.describe().find("L1d 48 KiB, L1i 32 KiB, L2 1 MiB, L3 32 MiB (shared by 16)"), std::string::npos)
      << m.describe();
}

TEST(Stats, MeanSampleStddevMedianMinMax) {
  const double xs[] = {1, 2, 3, 6};
  Stats s = stats_of(xs);
  EXPECT_DOUBLE_EQ(s.mean, 3.0);
  EXPECT_NEAR(s.stddev, std::sqrt(14.0 / 3.0), 1e-12);
  EXPECT_EQ(s.n, 4);
  EXPECT_DOUBLE_EQ(s.median, 2.5);
  EXPECT_DOUBLE_EQ(s.min, 1.0);
  EXPECT_DOUBLE_EQ(s.max, 6.0);
  const double odd[] = {9, 1, 5};
  EXPECT_DOUBLE_EQ(stats_of(odd).median, 5.0);
  EXPECT_EQ(stats_of(std::span<const double>{}).n, 0);
  const double one[] = {5};
  EXPECT_EQ(stats_of(one).stddev, 0);
  EXPECT_EQ(format_stats({12.345, 0.5, 3}), "12.35 ± 0.50");
}

TEST(Machine, FlagsAreTheCpusFeatures) {
  MachineInfo m = detect_machine("/nonexistent", "/nonexistent");
  EXPECT_EQ(m.cpu_flags, cpu_features().names());
  EXPECT_NE(m.describe().find(fmt::format("kernels {}", m.isa)), std::string::npos) << m.describe();
}

}  // namespace
}  // namespace codey::measure
