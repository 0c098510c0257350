// The limits of one template render (codey::TemplateLimits): a template in a
// GGUF file is untrusted code. The render installs its Sandbox for its thread;
// values, operators and builtins ask it before they grow (a string, a list,
// nesting, the output) and count their work as steps, so a hostile template
// meets a JinjaError (kResourceExhausted / kCancelled) instead of exhausting
// the stack, the memory or the time of the process. Outside a render (values
// made from request JSON, tests of single functions) there is no sandbox and
// the checks do nothing.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "codey/base.h"
#include "codey/chat.h"

namespace codey::jinja {

class Sandbox {
 public:
  Sandbox(const TemplateLimits& limits, const std::atomic<bool>* cancel);
  Sandbox(const Sandbox&) = delete;
  Sandbox& operator=(const Sandbox&) = delete;

  // The sandbox of the render running on this thread, or nullptr.
  static Sandbox* current() { return current_; }

  // Installs `s` for this thread while it lives (renders do not nest, but a
  // nested install restores the outer one).
  class Scope {
   public:
    explicit Scope(Sandbox* s) : saved_(current_) { current_ = s; }
    ~Scope() { current_ = saved_; }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    Sandbox* saved_;
  };

  // One unit of work (an expression, a statement, a value walked, ~8 values
  // copied); every 1024 also checks the time and the cancel flag.
  void step() {
    if (++steps_ > limits_.max_steps || (steps_ & 1023) == 0) [[unlikely]]
      slow_step();
  }
  void add_steps(uint64_t n) {
    const uint64_t before = steps_;
    steps_ += n;
    if (steps_ > limits_.max_steps || (before >> 10) != (steps_ >> 10)) [[unlikely]]
      slow_step();
  }
  // MemoryError before making a string of `bytes`, a list or dict of `n`
  // items, or a value nested `depth` levels, beyond the limits.
  void check_string(size_t bytes) const;
  void check_items(size_t n) const;
  void check_depth(int depth) const;
  // Live bytes of strings, lists and dicts made in the render (values count
  // themselves when made and made free).
  void add_live(size_t bytes);
  void sub_live(size_t bytes) { live_ -= bytes; }

  const TemplateLimits& limits() const { return limits_; }
  uint64_t steps() const { return steps_; }
  size_t live_bytes() const { return live_; }
  size_t peak_live_bytes() const { return peak_; }

 private:
  void slow_step();

  static thread_local Sandbox* current_;
  TemplateLimits limits_;
  const std::atomic<bool>* cancel_;
  Clock::time_point deadline_;
  uint64_t steps_ = 0;
  size_t live_ = 0;
  size_t peak_ = 0;
};

// The checks against the current sandbox, if any (free functions for the
// many call sites in values and builtins).
inline void sandbox_step() {
  if (Sandbox* s = Sandbox::current()) s->step();
}
inline void sandbox_check_string(size_t bytes) {
  if (Sandbox* s = Sandbox::current()) s->check_string(bytes);
}
inline void sandbox_check_items(size_t n) {
  if (Sandbox* s = Sandbox::current()) s->check_items(n);
}

}  // namespace codey::jinja
