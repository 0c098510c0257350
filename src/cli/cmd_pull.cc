// `codey pull REF`: a model from the Hugging Face Hub into codey's store
// (hf.co/OWNER/REPO[:QUANT], hf.co/OWNER/REPO/FILE.gguf). A progress bar on a
// terminal (bytes, speed, ETA); status lines only otherwise. Ctrl-C keeps
// what was downloaded: the same command resumes it.
#include <unistd.h>

#include <cstdio>
#include <deque>

#include "cli/command.h"
#include "cli/progress.h"
#include "codey/assistant.h"
#include "codey/runtime.h"
#include "codey/store.h"

namespace codey::cli {
namespace {

struct PullCli {
  std::string ref;
  bool quiet = false;
};

// Speed over the last few seconds (a moving window of samples).
class Speed {
 public:
  void add(uint64_t bytes) {
    const auto now = Clock::now();
    samples_.push_back({now, bytes});
    while (samples_.size() > 2 && seconds(samples_.front().t, now) > 5.0) samples_.pop_front();
  }
  double bytes_per_s() const {
    if (samples_.size() < 2) return 0;
    const double dt = seconds(samples_.front().t, samples_.back().t);
    return dt > 0.2 ? double(samples_.back().bytes - samples_.front().bytes) / dt : 0;
  }
  void reset() { samples_.clear(); }

 private:
  struct Sample {
    Clock::time_point t;
    uint64_t bytes;
  };
  static double seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }
  std::deque<Sample> samples_;
};

std::string bar(double frac, int width) {
  const int full = static_cast<int>(frac * width + 0.5);
  std::string s;
  for (int i = 0; i < width; ++i) s += i < full ? "#" : ".";
  return s;
}

int run(const PullCli& c) {
  ProgressLine line;
  Speed speed;
  InterruptHandler interrupts(/*second_exits=*/true);
  std::string current_file;
  uint64_t last_completed = 0, last_total = 0;
  auto last_draw = Clock::now() - std::chrono::seconds(1);
  PullEvents ev;
  ev.on_status = [&](std::string_view s) {
    if (c.quiet) return;
    line.done();
    std::fprintf(stderr, "%.*s\n", static_cast<int>(s.size()), s.data());
  };
  ev.on_progress = [&](const PullProgress& p) {
    if (p.file != current_file) {
      current_file = p.file;
      speed.reset();
      if (!c.quiet) {
        line.done();
        std::fprintf(stderr, "pulling %s (%s%s)\n", p.file.c_str(), format_bytes(p.total).c_str(),
                     p.count > 1 ? fmt::format(", part {} of {}", p.index + 1, p.count).c_str() : "");
      }
    }
    last_completed = p.completed;
    last_total = p.total;
    speed.add(p.completed);
    const auto now = Clock::now();
    if (c.quiet || !line.tty() || (now - last_draw < Millis(100) && p.completed < p.total)) return;
    last_draw = now;
    const double frac = p.total ? double(p.completed) / double(p.total) : 1.0;
    const double bps = speed.bytes_per_s();
    std::string eta = "";
    if (bps > 0 && p.completed < p.total) {
      const auto secs = static_cast<int64_t>(double(p.total - p.completed) / bps + 0.5);
      eta = " ETA " + format_duration(Millis(secs * 1000));
    }
    line.update(fmt::format("[{}] {:3.0f}% {} / {}  {}/s{}", bar(frac, 30), frac * 100.0, format_bytes(p.completed),
                            format_bytes(p.total), format_bytes(static_cast<uint64_t>(bps)), eta));
  };
  auto stop = interrupts.begin_turn();
  auto r = pull_model(c.ref, StoreOptions::from_env(), ev, {}, stop);
  interrupts.end_turn();
  line.done();
  if (!r) {
    if (r.error().code == ErrorCode::kCancelled)
      return fail(fmt::format("stopped at {} of {}; run `codey pull {}` again to resume", format_bytes(last_completed),
                              format_bytes(last_total), c.ref));
    return fail(r.error().message);
  }
  const LocalModel& m = r->model;
  if (!r->downloaded && !c.quiet) std::fprintf(stderr, "%s is up to date (%s)\n", m.ref.c_str(), r->chosen.c_str());
  std::printf("%s\n", m.path.c_str());
  if (!c.quiet)
    std::fprintf(stderr, "pulled %s (%s%s) -> %s\nrun it: codey run --model %s --chat --prompt \"...\"\n", m.ref.c_str(),
                 format_bytes(m.size).c_str(), m.files.size() > 1 ? fmt::format(", {} files", m.files.size()).c_str() : "",
                 m.path.c_str(), m.ref.c_str());
  return 0;
}

CommandRunner setup(CLI::App& root) {
  auto c = std::make_shared<PullCli>();
  auto* cmd = root.add_subcommand(
      "pull", "Download a model from Hugging Face: hf.co/OWNER/REPO[:QUANT] or hf.co/OWNER/REPO/FILE.gguf");
  cmd->add_option("ref", c->ref,
                  "hf.co/OWNER/REPO:QUANT (e.g. hf.co/Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF:Q4_K_M); without :QUANT "
                  "Q4_K_M, else the smallest quantization of 4 bits or more")
      ->required();
  cmd->add_flag("-q,--quiet", c->quiet, "Print only the model's path");
  return [c] { return run(*c); };
}

CODEY_REGISTER_COMMAND(pull, setup);

}  // namespace
}  // namespace codey::cli
