// A one-line progress display for long CLI jobs: redrawn in place on a
// terminal, silent otherwise (logs stay clean in CI and pipes).
#pragma once

#include <unistd.h>

#include <cstdio>
#include <string>

#include "codey/base.h"

namespace codey::cli {

class ProgressLine {
 public:
  ProgressLine() : tty_(isatty(2) != 0), t0_(Clock::now()) {}
  ~ProgressLine() { done(); }
  bool tty() const { return tty_; }
  double elapsed() const { return seconds_since(t0_); }
  void update(const std::string& text) {
    if (!tty_) return;
    std::fprintf(stderr, "\r\033[K%s", text.c_str());
    std::fflush(stderr);
    shown_ = true;
  }
  void done() {
    if (shown_) std::fprintf(stderr, "\r\033[K");
    shown_ = false;
  }

 private:
  bool tty_;
  bool shown_ = false;
  Clock::time_point t0_;
};

}  // namespace codey::cli
