// Tests of the base layer: half/bfloat conversion, byte sizes, cgroup-aware
// core and memory detection (on a fake cgroup tree), mapped files.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "codey/base.h"
#include "testing/testing.h"

namespace codey {
namespace {

TEST(Half, EveryHalfRoundTripsExactly) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = fp16_to_fp32(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(fp16_to_fp32(fp32_to_fp16(f))));
      continue;
    }
    ASSERT_EQ(fp32_to_fp16(f), h) << h;
  }
}

TEST(Half, KnownValuesAndRounding) {
  EXPECT_EQ(fp16_to_fp32(0x3c00), 1.0f);
  EXPECT_EQ(fp16_to_fp32(0xc000), -2.0f);
  EXPECT_EQ(fp16_to_fp32(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(fp16_to_fp32(0x7bff), 65504.0f);
  EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7c00);  // rounds to inf
  EXPECT_EQ(fp32_to_fp16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);  // tie to even (down)
  EXPECT_EQ(fp32_to_fp16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);  // tie to even (up)
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -25)), 0x0000);  // tie to even: 0
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(fp32_to_fp16(-0.0f), 0x8000);
}

TEST(BFloat16, RoundTripAndRounding) {
  EXPECT_EQ(bf16_to_fp32(fp32_to_bf16(1.0f)), 1.0f);
  EXPECT_EQ(bf16_to_fp32(fp32_to_bf16(-3.5f)), -3.5f);
  // 1 + 2^-8 is halfway between bf16 neighbours 1 and 1+2^-7: ties to even -> 1.
  EXPECT_EQ(bf16_to_fp32(fp32_to_bf16(1.0f + std::ldexp(1.0f, -8))), 1.0f);
  EXPECT_TRUE(std::isnan(bf16_to_fp32(fp32_to_bf16(std::nanf("")))));
}

TEST(Bytes, ParseAndFormat) {
  EXPECT_EQ(*parse_bytes("8GiB"), 8ull << 30);
  EXPECT_EQ(*parse_bytes("512MB"), 512000000ull);
  EXPECT_EQ(*parse_bytes("1.5G"), 3ull << 29);
  EXPECT_EQ(*parse_bytes("1024"), 1024ull);
  EXPECT_FALSE(parse_bytes("eight gigs").has_value());
  EXPECT_FALSE(parse_bytes("8XB").has_value());
  EXPECT_FALSE(parse_bytes("").has_value());
  EXPECT_EQ(format_bytes(1536), "1.5 KiB");
  EXPECT_EQ(format_bytes(3ull << 30), "3.00 GiB");
}

TEST(System, CgroupQuotaLimitsCores) {
  const int affinity = affinity_cpus();
  ASSERT_GE(affinity, 1);
  const std::string root = testing::temp_dir();
  std::ofstream(root + "/cpu.max") << "150000 100000\n";  // 1.5 CPUs -> 2 threads at most
  EXPECT_DOUBLE_EQ(cgroup_cpu_quota(root), 1.5);
  EXPECT_EQ(usable_cores(root), std::min(affinity, 2));
  std::ofstream(root + "/cpu.max") << "50000 100000\n";  // half a CPU -> 1 thread
  EXPECT_DOUBLE_EQ(cgroup_cpu_quota(root), 0.5);
  EXPECT_EQ(usable_cores(root), 1);
  std::ofstream(root + "/cpu.max") << "max 100000\n";
  EXPECT_EQ(cgroup_cpu_quota(root), 0.0);
  EXPECT_EQ(usable_cores(root), affinity);
  const std::string v1 = testing::temp_dir();
  std::filesystem::create_directories(v1 + "/cpu");
  std::ofstream(v1 + "/cpu/cpu.cfs_quota_us") << "100000\n";
  std::ofstream(v1 + "/cpu/cpu.cfs_period_us") << "100000\n";
  EXPECT_DOUBLE_EQ(cgroup_cpu_quota(v1), 1.0);
  EXPECT_EQ(usable_cores(v1), 1);
  std::ofstream(v1 + "/cpu/cpu.cfs_quota_us") << "-1\n";  // v1 "no quota"
  EXPECT_EQ(cgroup_cpu_quota(v1), 0.0);
  EXPECT_EQ(cgroup_cpu_quota(testing::temp_dir()), 0.0);  // no cgroup files at all
}

TEST(System, CgroupMemoryLimit) {
  const std::string root = testing::temp_dir();
  std::ofstream(root + "/memory.max") << (256ull << 20) << "\n";
  EXPECT_EQ(cgroup_memory_limit(root), 256ull << 20);
  EXPECT_EQ(usable_memory_bytes(root), 256ull << 20);
  std::ofstream(root + "/memory.max") << "max\n";
  EXPECT_EQ(cgroup_memory_limit(root), 0u);
  EXPECT_GT(usable_memory_bytes(root), 256ull << 20);
  const std::string v1 = testing::temp_dir();
  std::filesystem::create_directories(v1 + "/memory");
  std::ofstream(v1 + "/memory/memory.limit_in_bytes") << "9223372036854771712\n";  // v1 "no limit"
  EXPECT_EQ(cgroup_memory_limit(v1), 0u);
  std::ofstream(v1 + "/memory/memory.limit_in_bytes") << (512ull << 20) << "\n";
  EXPECT_EQ(cgroup_memory_limit(v1), 512ull << 20);
  EXPECT_EQ(usable_memory_bytes(v1), 512ull << 20);
}

TEST(MappedFileTest, MapsAndReportsErrors) {
  const std::string path = testing::temp_dir() + "/x.bin";
  testing::write_file_bytes(path, {1, 2, 3, 4, 5});
  auto m = MappedFile::open(path);
  ASSERT_TRUE(m.has_value());
  ASSERT_EQ(m->size(), 5u);
  EXPECT_EQ(m->bytes()[4], 5);
  EXPECT_GT(m->resident_bytes(), 0u);
  auto missing = MappedFile::open(path + ".nope");
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  auto dir = MappedFile::open(testing::temp_dir());
  ASSERT_FALSE(dir.has_value());
  EXPECT_NE(dir.error().message.find("not a regular file"), std::string::npos);
}

TEST(Cpu, FeaturesAreConsistent) {
  const auto& f = cpu_features();
  if (f.avx512f) EXPECT_TRUE(f.avx2);
  if (f.avx512vnni) EXPECT_TRUE(f.avx512f);
}

}  // namespace
}  // namespace codey
