// Base layer: errors, assertions, memory-mapped files, logging, time, CPU and
// thread facts. Everything above includes this; it includes nothing of codey.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/core.h>

namespace codey {

// What kind of failure, so front ends can map it (HTTP status, exit code).
enum class ErrorCode {
  kInvalidArgument,  // the caller's input is wrong (a request field, a flag)
  kNotFound,         // a file, model or key that does not exist
  kCorrupt,          // a file whose bytes are not what its format allows
  kUnsupported,      // valid input that codey does not handle (yet)
  kResourceExhausted,// memory budget, context length, queue full
  kIo,               // the OS refused (open, read, mmap, write)
  kCancelled,
  kDeadlineExceeded,
  kInternal,
};

std::string_view error_code_name(ErrorCode code);

// An error says what was expected and what was found; it is a value, never an
// exception, on every path that reads files, user input or the network.
struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;

  // Prefix context ("reading model.gguf: ") while propagating up.
  Error&& with_context(std::string_view context) && {
    message = std::string(context) + ": " + message;
    return std::move(*this);
  }
};

template <class T>
using Result = std::expected<T, Error>;
using Status = std::expected<void, Error>;

template <class... Args>
[[nodiscard]] std::unexpected<Error> make_error(ErrorCode code, fmt::format_string<Args...> fmt_str,
                                                Args&&... args) {
  return std::unexpected(Error{code, fmt::format(fmt_str, std::forward<Args>(args)...)});
}

// Error propagation, the one family for every std::expected (Result, Status,
// or an expected with another error type the caller's result accepts):
//   CODEY_TRY(expr);                   return expr's error, else go on
//   CODEY_TRY_ASSIGN(auto x, expr);    declare x = *expr, or return its error
//   CODEY_TRY_ASSIGN(hp.n_layer, expr) assign an existing lvalue likewise
#define CODEY_TRY(expr)                                                                   \
  do {                                                                                    \
    auto codey_try_result_ = (expr);                                                      \
    if (!codey_try_result_) [[unlikely]]                                                  \
      return std::unexpected(std::move(codey_try_result_.error()));                       \
  } while (0)
#define CODEY_TRY_ASSIGN(lhs, expr) CODEY_TRY_ASSIGN_IMPL_(CODEY_CONCAT_(codey_try_, __COUNTER__), lhs, expr)
#define CODEY_TRY_ASSIGN_IMPL_(tmp, lhs, expr)                                          \
  auto tmp = (expr);                                                                      \
  if (!tmp) [[unlikely]]                                                                  \
    return std::unexpected(std::move(tmp.error()));                                       \
  lhs = std::move(*tmp)
#define CODEY_CONCAT_(a, b) CODEY_CONCAT_IMPL_(a, b)
#define CODEY_CONCAT_IMPL_(a, b) a##b

[[noreturn]] void assert_fail(const char* file, int line, const char* expr, const std::string& detail);

// Invariants only a bug can break: always on, print file, line and what failed.
#define CODEY_ASSERT(cond)                                             \
  do {                                                                 \
    if (!(cond)) [[unlikely]] ::codey::assert_fail(__FILE__, __LINE__, #cond, {}); \
  } while (0)
#define CODEY_ASSERT_EQ(a, b)                                                              \
  do {                                                                                     \
    const auto& codey_a_ = (a);                                                            \
    const auto& codey_b_ = (b);                                                            \
    if (!(codey_a_ == codey_b_)) [[unlikely]]                                              \
      ::codey::assert_fail(__FILE__, __LINE__, #a " == " #b,                               \
                           fmt::format("expected {}, got {}", codey_b_, codey_a_));        \
  } while (0)
#ifdef NDEBUG
#define CODEY_DASSERT(cond) ((void)0)
#else
#define CODEY_DASSERT(cond) CODEY_ASSERT(cond)
#endif

// A read-only memory-mapped file. Move-only owner of the mapping.
class MappedFile {
 public:
  static Result<MappedFile> open(const std::string& path);
  MappedFile() = default;
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  const std::string& path() const { return path_; }
  size_t size() const { return size_; }
  // Bytes of this mapping resident in RAM now (mincore); the second form
  // counts the pages of [offset, offset + len) only.
  size_t resident_bytes() const;
  size_t resident_bytes(size_t offset, size_t len) const;
  // Ask the kernel to read ahead / lock pages; best effort.
  void advise_willneed() const;
  bool lock() const;

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Anonymous memory for large, long-lived buffers (repacked weights), in
// blocks of at least 64 MiB aligned to 2 MiB and advised MADV_HUGEPAGE:
// streaming reads through 4 KiB pages stall at every page boundary (the
// hardware prefetchers stop there) and miss the TLB. Thread-safe bump
// allocation; memory is returned when the arena is destroyed.
class HugePageArena {
 public:
  HugePageArena() = default;
  HugePageArena(HugePageArena&& other) noexcept;
  HugePageArena& operator=(HugePageArena&& other) noexcept;
  HugePageArena(const HugePageArena&) = delete;
  HugePageArena& operator=(const HugePageArena&) = delete;
  ~HugePageArena();

  // `bytes` of storage aligned to 64 bytes; nullptr when out of memory.
  uint8_t* allocate(size_t bytes);
  // Bytes mapped by the arena (what it costs in memory).
  size_t mapped_bytes() const;
  // mlock the allocated part of every block; false if any failed.
  bool lock() const;

 private:
  struct Block {
    uint8_t* data = nullptr;
    size_t size = 0;
    size_t used = 0;
  };
  void release();
  std::unique_ptr<std::mutex> mu_ = std::make_unique<std::mutex>();
  std::vector<Block> blocks_;
};

// Logging to stderr. Level from CODEY_LOG=debug|info|warn|error (default info).
enum class LogLevel { kDebug, kInfo, kWarn, kError };
void log_message(LogLevel level, std::string_view message);
bool log_enabled(LogLevel level);
template <class... Args>
void log_info(fmt::format_string<Args...> f, Args&&... args) {
  if (log_enabled(LogLevel::kInfo)) log_message(LogLevel::kInfo, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void log_warn(fmt::format_string<Args...> f, Args&&... args) {
  if (log_enabled(LogLevel::kWarn)) log_message(LogLevel::kWarn, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void log_debug(fmt::format_string<Args...> f, Args&&... args) {
  if (log_enabled(LogLevel::kDebug)) log_message(LogLevel::kDebug, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void log_error(fmt::format_string<Args...> f, Args&&... args) {
  if (log_enabled(LogLevel::kError)) log_message(LogLevel::kError, fmt::format(f, std::forward<Args>(args)...));
}

// Monotonic time.
using Clock = std::chrono::steady_clock;
using Millis = std::chrono::milliseconds;
inline double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// CPU features relevant to kernel dispatch (cpuid + OS support via xgetbv).
struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false, bmi2 = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false;
  bool avx512vnni = false, avx512bf16 = false, avxvnni = false;
  std::string brand;
  // The names of the features present ("avx2", "fma", ...), in a fixed order.
  std::vector<std::string> names() const;
};
const CpuFeatures& cpu_features();

// The cgroup facts every other place reads from here. `cgroup_root` lets tests
// point at a fake tree (default "/sys/fs/cgroup"); v2 files first, then v1.
// CPU quota in cores (cpu.max; cpu.cfs_quota_us / cpu.cfs_period_us); 0 = none.
double cgroup_cpu_quota(const std::string& cgroup_root = "/sys/fs/cgroup");
// Memory limit in bytes (memory.max; memory.limit_in_bytes, whose "no limit"
// is a huge number); 0 = none.
uint64_t cgroup_memory_limit(const std::string& cgroup_root = "/sys/fs/cgroup");
// CPUs in this process's affinity mask (0 if it cannot be read).
int affinity_cpus();
// Cores this process may use: the affinity mask, then the cgroup CPU quota
// (rounded up).
int usable_cores(const std::string& cgroup_root = "/sys/fs/cgroup");
// Memory this process may use: cgroup limit, else MemAvailable. Bytes.
uint64_t usable_memory_bytes(const std::string& cgroup_root = "/sys/fs/cgroup");
// Total physical memory, bytes.
uint64_t physical_memory_bytes();
// Peak resident set size of this process, bytes.
uint64_t peak_rss_bytes();
uint64_t current_rss_bytes();

// "1.50 GiB", "12.0 MiB".
std::string format_bytes(uint64_t bytes);
// "~/x" for a path under $HOME, else the path.
std::string tilde_path(const std::string& path);
// Parameter counts: "1.5B", "494M", "12K", "7".
std::string format_count(uint64_t n);
// Parse "8GiB", "512MB", "1024", "1.5G". Errors name the text.
Result<uint64_t> parse_bytes(std::string_view text);

// IEEE half <-> float, exact, no ISA requirement.
float fp16_to_fp32(uint16_t h);
uint16_t fp32_to_fp16(float f);
inline float bf16_to_fp32(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  __builtin_memcpy(&f, &u, 4);
  return f;
}
uint16_t fp32_to_bf16(float f);  // round to nearest even, NaN kept NaN

}  // namespace codey
