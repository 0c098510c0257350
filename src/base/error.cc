// Error names and the always-on assertion handler.
#include <cstdio>
#include <cstdlib>

#include "codey/base.h"

namespace codey {

std::string_view error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument: return "invalid argument";
    case ErrorCode::kNotFound: return "not found";
    case ErrorCode::kCorrupt: return "corrupt";
    case ErrorCode::kUnsupported: return "unsupported";
    case ErrorCode::kResourceExhausted: return "resource exhausted";
    case ErrorCode::kIo: return "i/o error";
    case ErrorCode::kCancelled: return "cancelled";
    case ErrorCode::kDeadlineExceeded: return "deadline exceeded";
    case ErrorCode::kInternal: return "internal error";
  }
  return "unknown";
}

void assert_fail(const char* file, int line, const char* expr, const std::string& detail) {
  std::fprintf(stderr, "codey: assertion failed at %s:%d: %s%s%s\n", file, line, expr,
               detail.empty() ? "" : ": ", detail.c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace codey
