// Leveled logging to stderr; thread-safe (one write per message).
#include <unistd.h>

#include <cstdlib>
#include <mutex>
#include <string>

#include "codey/base.h"

namespace codey {
namespace {
LogLevel threshold() {
  static const LogLevel level = [] {
    const char* env = std::getenv("CODEY_LOG");
    std::string_view v = env ? env : "info";
    if (v == "debug") return LogLevel::kDebug;
    if (v == "warn") return LogLevel::kWarn;
    if (v == "error") return LogLevel::kError;
    return LogLevel::kInfo;
  }();
  return level;
}
}  // namespace

bool log_enabled(LogLevel level) { return level >= threshold(); }

void log_message(LogLevel level, std::string_view message) {
  static constexpr std::string_view kNames[] = {"debug", "info", "warn", "error"};
  std::string line = fmt::format("codey {}: {}\n", kNames[static_cast<int>(level)], message);
  static std::mutex mu;
  std::lock_guard lock(mu);
  ssize_t unused = ::write(2, line.data(), line.size());
  (void)unused;
}

}  // namespace codey
