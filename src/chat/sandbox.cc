// The render sandbox (see sandbox.h).
#include "chat/sandbox.h"

#include <fmt/format.h>

#include "chat/value.h"

namespace codey::jinja {

thread_local Sandbox* Sandbox::current_ = nullptr;

Sandbox::Sandbox(const TemplateLimits& limits, const std::atomic<bool>* cancel)
    : limits_(limits), cancel_(cancel), deadline_(Clock::now() + limits.max_time) {}

void Sandbox::slow_step() {
  if (steps_ > limits_.max_steps)
    raise("SandboxError", fmt::format("the template ran more than {} steps", limits_.max_steps),
          ErrorCode::kResourceExhausted);
  if (cancel_ && cancel_->load(std::memory_order_relaxed))
    raise("SandboxError", "the render was cancelled", ErrorCode::kCancelled);
  if (Clock::now() > deadline_)
    raise("SandboxError",
          fmt::format("the template ran longer than {} ms", static_cast<int64_t>(limits_.max_time.count())),
          ErrorCode::kResourceExhausted);
}

void Sandbox::check_string(size_t bytes) const {
  if (bytes > limits_.max_string)
    raise("MemoryError", fmt::format("a string of {} bytes is larger than the template limit of {}", bytes,
                                     limits_.max_string),
          ErrorCode::kResourceExhausted);
  if (live_ + bytes > limits_.max_memory)
    raise("MemoryError", fmt::format("the template holds more than {} bytes", limits_.max_memory),
          ErrorCode::kResourceExhausted);
}

void Sandbox::check_items(size_t n) const {
  if (n > limits_.max_items)
    raise("MemoryError", fmt::format("a list or dict of {} items is larger than the template limit of {}", n,
                                     limits_.max_items),
          ErrorCode::kResourceExhausted);
}

void Sandbox::check_depth(int depth) const {
  if (depth > limits_.max_depth)
    raise("MemoryError", fmt::format("values nest deeper than the template limit of {} levels", limits_.max_depth),
          ErrorCode::kResourceExhausted);
}

void Sandbox::add_live(size_t bytes) {
  live_ += bytes;
  if (live_ > peak_) peak_ = live_;
  if (live_ > limits_.max_memory) {
    live_ -= bytes;  // the value is not made
    raise("MemoryError", fmt::format("the template holds more than {} bytes", limits_.max_memory),
          ErrorCode::kResourceExhausted);
  }
}

}  // namespace codey::jinja
