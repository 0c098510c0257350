// Facts about the machine: CPU features, usable cores and memory (cgroup- and
// affinity-aware: the one place that reads cgroup files), process memory; and
// byte-size formatting/parsing.
#include <cpuid.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "codey/base.h"

namespace codey {
namespace {

uint64_t xgetbv0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (uint64_t(edx) << 32) | eax;
}

CpuFeatures detect() {
  CpuFeatures f;
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = c & (1u << 27);
  const bool fma = c & (1u << 12);
  const bool f16c = c & (1u << 29);
  uint64_t xcr0 = osxsave ? xgetbv0() : 0;
  const bool ymm_ok = (xcr0 & 0x6) == 0x6;
  const bool zmm_ok = (xcr0 & 0xe6) == 0xe6;
  unsigned max_leaf = __get_cpuid_max(0, nullptr);
  if (max_leaf >= 7) {
    __cpuid_count(7, 0, a, b, c, d);
    f.avx2 = ymm_ok && (b & (1u << 5));
    f.fma = ymm_ok && fma;
    f.bmi2 = (b & (1u << 8)) != 0;
    f.f16c = ymm_ok && f16c;
    f.avx512f = zmm_ok && (b & (1u << 16));
    f.avx512dq = zmm_ok && (b & (1u << 17));
    f.avx512bw = zmm_ok && (b & (1u << 30));
    f.avx512vl = zmm_ok && (b & (1u << 31));
    f.avx512vnni = zmm_ok && (c & (1u << 11));
    __cpuid_count(7, 1, a, b, c, d);
    f.avxvnni = ymm_ok && (a & (1u << 4));
    f.avx512bf16 = zmm_ok && (a & (1u << 5));
  }
  char brand[49] = {};
  if (__get_cpuid_max(0x80000000, nullptr) >= 0x80000004) {
    for (unsigned i = 0; i < 3; ++i) {
      __get_cpuid(0x80000002 + i, &a, &b, &c, &d);
      std::memcpy(brand + 16 * i, &a, 4);
      std::memcpy(brand + 16 * i + 4, &b, 4);
      std::memcpy(brand + 16 * i + 8, &c, 4);
      std::memcpy(brand + 16 * i + 12, &d, 4);
    }
  }
  f.brand = brand;
  while (!f.brand.empty() && f.brand.back() == ' ') f.brand.pop_back();
  return f;
}

std::string read_first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (in) std::getline(in, line);
  return line;
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

std::vector<std::string> CpuFeatures::names() const {
  const std::pair<bool, const char*> flags[] = {
      {avx2, "avx2"},         {fma, "fma"},           {f16c, "f16c"},         {bmi2, "bmi2"},
      {avx512f, "avx512f"},   {avx512bw, "avx512bw"}, {avx512vl, "avx512vl"}, {avx512dq, "avx512dq"},
      {avx512vnni, "avx512vnni"}, {avx512bf16, "avx512bf16"}, {avxvnni, "avxvnni"}};
  std::vector<std::string> out;
  for (const auto& [on, name] : flags)
    if (on) out.emplace_back(name);
  return out;
}

double cgroup_cpu_quota(const std::string& root) {
  {  // cgroup v2: "max 100000" or "200000 100000"
    std::istringstream ss(read_first_line(root + "/cpu.max"));
    std::string q;
    double period = 0;
    if (ss >> q >> period && q != "max" && period > 0) return std::atof(q.c_str()) / period;
  }
  const std::string q = read_first_line(root + "/cpu/cpu.cfs_quota_us");
  const std::string p = read_first_line(root + "/cpu/cpu.cfs_period_us");
  if (!q.empty() && !p.empty()) {
    const double qv = std::atof(q.c_str()), pv = std::atof(p.c_str());
    if (qv > 0 && pv > 0) return qv / pv;
  }
  return 0;
}

uint64_t cgroup_memory_limit(const std::string& root) {
  for (const char* file : {"/memory.max", "/memory/memory.limit_in_bytes"}) {
    std::string v = read_first_line(root + file);
    while (!v.empty() && std::isspace(static_cast<unsigned char>(v.back()))) v.pop_back();
    if (v.empty()) continue;
    if (v == "max") return 0;
    const uint64_t limit = std::strtoull(v.c_str(), nullptr, 10);
    return limit > 0 && limit < physical_memory_bytes() ? limit : 0;
  }
  return 0;
}

int affinity_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  return sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 0;
}

int usable_cores(const std::string& cgroup_root) {
  int n = affinity_cpus();
  if (n <= 0) n = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  if (n <= 0) n = 1;
  const double quota_cores = cgroup_cpu_quota(cgroup_root);
  if (quota_cores > 0) n = std::min(n, std::max(1, static_cast<int>(std::ceil(quota_cores - 1e-9))));
  return n;
}

uint64_t physical_memory_bytes() {
  return uint64_t(sysconf(_SC_PHYS_PAGES)) * uint64_t(sysconf(_SC_PAGESIZE));
}

uint64_t usable_memory_bytes(const std::string& cgroup_root) {
  uint64_t avail = 0;
  {
    std::ifstream in("/proc/meminfo");
    std::string key;
    uint64_t kb;
    std::string unit;
    while (in >> key >> kb) {
      std::getline(in, unit);
      if (key == "MemAvailable:") {
        avail = kb * 1024;
        break;
      }
    }
  }
  if (avail == 0) avail = physical_memory_bytes();
  const uint64_t limit = cgroup_memory_limit(cgroup_root);
  return limit > 0 && limit < avail ? limit : avail;
}

uint64_t peak_rss_bytes() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return uint64_t(ru.ru_maxrss) * 1024;
}

uint64_t current_rss_bytes() {
  std::ifstream in("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  in >> size >> resident;
  return resident * uint64_t(sysconf(_SC_PAGESIZE));
}

std::string format_bytes(uint64_t bytes) {
  const double b = static_cast<double>(bytes);
  if (b >= 1024.0 * 1024 * 1024) return fmt::format("{:.2f} GiB", b / (1024.0 * 1024 * 1024));
  if (b >= 1024.0 * 1024) return fmt::format("{:.1f} MiB", b / (1024.0 * 1024));
  if (b >= 1024.0) return fmt::format("{:.1f} KiB", b / 1024.0);
  return fmt::format("{} B", bytes);
}

std::string tilde_path(const std::string& path) {
  const char* home = std::getenv("HOME");
  if (!home || !*home || std::string_view(home) == "/") return path;
  const std::string_view h(home);
  if (path.size() > h.size() && path.compare(0, h.size(), h) == 0 && path[h.size()] == '/') {
    std::string out("~");
    out.append(path, h.size(), std::string::npos);
    return out;
  }
  return path;
}

std::string format_count(uint64_t n) {
  const double x = static_cast<double>(n);
  if (x >= 1e9) return fmt::format("{:.1f}B", x / 1e9);
  if (x >= 1e6) return fmt::format("{:.0f}M", x / 1e6);
  if (x >= 1e3) return fmt::format("{:.0f}K", x / 1e3);
  return fmt::format("{}", n);
}

Result<uint64_t> parse_bytes(std::string_view text) {
  std::string s(text);
  s.erase(std::remove(s.begin(), s.end(), ' '), s.end());
  if (s.empty()) return make_error(ErrorCode::kInvalidArgument, "empty size");
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (end == s.c_str() || !(v >= 0) || !std::isfinite(v))
    return make_error(ErrorCode::kInvalidArgument, "'{}' is not a size (expected e.g. 8GiB, 512MB, 1024)", text);
  std::string unit(end);
  for (auto& ch : unit) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  double mul = 1;
  if (unit.empty() || unit == "b") mul = 1;
  else if (unit == "k" || unit == "kb" || unit == "kib") mul = unit == "kb" ? 1e3 : 1024.0;
  else if (unit == "m" || unit == "mb" || unit == "mib") mul = unit == "mb" ? 1e6 : 1024.0 * 1024;
  else if (unit == "g" || unit == "gb" || unit == "gib") mul = unit == "gb" ? 1e9 : 1024.0 * 1024 * 1024;
  else if (unit == "t" || unit == "tb" || unit == "tib") mul = unit == "tb" ? 1e12 : 1024.0 * 1024 * 1024 * 1024;
  else return make_error(ErrorCode::kInvalidArgument, "'{}' has an unknown unit '{}' (expected B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)", text, unit);
  return static_cast<uint64_t>(v * mul);
}

}  // namespace codey
