// What this machine is: CPU, cores (affinity, cgroup quota), memory, caches,
// the kernel table in use. The cgroup and affinity facts come from base.
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <tuple>

#include <fmt/ranges.h>

#include "codey/kernels.h"
#include "codey/measure.h"

namespace codey::measure {
namespace {

std::string read_line(const std::string& path) {
  std::ifstream in(path);
  std::string s;
  std::getline(in, s);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  return s;
}

// "48K", "1024K", "32M" -> bytes.
uint64_t parse_cache_size(const std::string& s) {
  if (s.empty()) return 0;
  uint64_t v = std::strtoull(s.c_str(), nullptr, 10);
  switch (s.back()) {
    case 'K': return v << 10;
    case 'M': return v << 20;
    case 'G': return v << 30;
    default: return v;
  }
}

// "0-3,8,10-11" -> 7.
int count_cpu_list(const std::string& s) {
  int n = 0;
  std::stringstream ss(s);
  std::string part;
  while (std::getline(ss, part, ',')) {
    if (part.empty()) continue;
    const size_t dash = part.find('-');
    if (dash == std::string::npos) {
      ++n;
    } else {
      const int a = std::atoi(part.substr(0, dash).c_str()), b = std::atoi(part.substr(dash + 1).c_str());
      if (b >= a) n += b - a + 1;
    }
  }
  return n;
}

std::string cache_name(const CacheInfo& c) {
  std::string t = c.type == "Data" ? "d" : c.type == "Instruction" ? "i" : "";
  return fmt::format("L{}{}", c.level, t);
}

std::string fmt_size(uint64_t b) {
  if (b >= (1ull << 20) && b % (1ull << 20) == 0) return fmt::format("{} MiB", b >> 20);
  if (b >= 1024 && b % 1024 == 0) return fmt::format("{} KiB", b >> 10);
  return format_bytes(b);
}

}  // namespace

std::vector<CacheInfo> read_caches(const std::string& sysfs_cpu_root) {
  std::vector<CacheInfo> out;
  namespace fs = std::filesystem;
  for (int i = 0; i < 16; ++i) {
    const std::string dir = fmt::format("{}/cpu0/cache/index{}", sysfs_cpu_root, i);
    std::error_code ec;
    if (!fs::exists(dir, ec)) continue;
    CacheInfo c;
    c.level = std::atoi(read_line(dir + "/level").c_str());
    c.type = read_line(dir + "/type");
    c.bytes = parse_cache_size(read_line(dir + "/size"));
    c.shared_cpus = count_cpu_list(read_line(dir + "/shared_cpu_list"));
    if (c.level > 0 && c.bytes > 0) out.push_back(std::move(c));
  }
  std::sort(out.begin(), out.end(), [](const CacheInfo& a, const CacheInfo& b) {
    return std::tie(a.level, a.type) < std::tie(b.level, b.type);
  });
  return out;
}

MachineInfo detect_machine(const std::string& cgroup_root, const std::string& sysfs_cpu_root) {
  MachineInfo m;
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) == 0) m.hostname = host;
  const CpuFeatures& f = cpu_features();
  m.cpu_brand = f.brand;
  while (!m.cpu_brand.empty() && m.cpu_brand.back() == ' ') m.cpu_brand.pop_back();
  if (m.cpu_brand.empty()) m.cpu_brand = "unknown CPU";
  m.online_cpus = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  m.affinity_cpus = affinity_cpus();
  if (m.affinity_cpus <= 0) m.affinity_cpus = m.online_cpus;
  m.cpu_quota = cgroup_cpu_quota(cgroup_root);
  m.usable_cores = usable_cores(cgroup_root);
  m.physical_memory = physical_memory_bytes();
  m.memory_limit = cgroup_memory_limit(cgroup_root);
  m.usable_memory = usable_memory_bytes(cgroup_root);
  m.isa = kernels::kernels().name;
  m.cpu_flags = f.names();
  m.caches = read_caches(sysfs_cpu_root);
  return m;
}

std::string MachineInfo::describe() const {
  std::string s = fmt::format("{}; {} of {} cores usable (affinity {}, cgroup quota {})", cpu_brand, usable_cores,
                              online_cpus, affinity_cpus, cpu_quota > 0 ? fmt::format("{:.2f}", cpu_quota) : "none");
  s += fmt::format("; memory {} usable of {} (cgroup limit {})", format_bytes(usable_memory),
                   format_bytes(physical_memory), memory_limit ? format_bytes(memory_limit) : "none");
  s += fmt::format("; kernels {} [{}]", isa, fmt::join(cpu_flags, " "));
  if (!caches.empty()) {
    std::vector<std::string> cs;
    for (const auto& c : caches)
      cs.push_back(fmt::format("{} {}{}", cache_name(c), fmt_size(c.bytes),
                               c.shared_cpus > 1 ? fmt::format(" (shared by {})", c.shared_cpus) : ""));
    s += fmt::format("; caches {}", fmt::join(cs, ", "));
  }
  return s;
}

std::string MachineInfo::short_description() const {
  return fmt::format("{} ({}, {} cores usable, {})", hostname.empty() ? "this machine" : hostname, cpu_brand,
                     usable_cores, isa);
}

}  // namespace codey::measure
