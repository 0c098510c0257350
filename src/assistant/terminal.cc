// The terminal side of `codey task` / `codey chat`: the progress line under
// streamed output (a status row pinned below a DECSTBM scroll region), Ctrl-C
// as "stop this answer", unbuffered line reads, and yes/no questions.
#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <mutex>
#include <thread>

#include "codey/assistant.h"

namespace codey {

namespace {

void write_all(int fd, const std::string& s) {
  size_t done = 0;
  while (done < s.size()) {
    const ssize_t n = ::write(fd, s.data() + done, s.size() - done);
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

}  // namespace

StatusLine::StatusLine(int fd) : fd_(fd) {
  tty_ = ::isatty(fd) != 0;
  const char* term = std::getenv("TERM");
  if (term && std::string_view(term) == "dumb") tty_ = false;
}

StatusLine::~StatusLine() { end(); }

void StatusLine::show(const std::string& text) {
  if (!tty_) return;
  std::fflush(stdout);  // the streamed text goes first, into the region above
  if (!active_) {
    winsize ws{};
    if (::ioctl(fd_, TIOCGWINSZ, &ws) != 0 || ws.ws_row < 3) {
      tty_ = false;
      return;
    }
    rows_ = ws.ws_row;
    // Make room, keep the cursor, confine scrolling to rows 1..rows-1.
    write_all(fd_, fmt::format("\n\0337\033[1;{}r\0338\033[1A", rows_ - 1));
    active_ = true;
  }
  winsize ws{};
  int cols = 80;
  if (::ioctl(fd_, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) cols = ws.ws_col;
  std::string t = text;
  if (static_cast<int>(t.size()) > cols - 1) t.resize(static_cast<size_t>(cols - 1));
  write_all(fd_, fmt::format("\0337\033[{};1H\033[2K\033[7m{}\033[0m\0338", rows_, t));
}

void StatusLine::end() {
  if (!active_) return;
  std::fflush(stdout);
  // Give the whole screen back to scrolling and clear the status row.
  write_all(fd_, fmt::format("\0337\033[1;{}r\033[{};1H\033[2K\0338", rows_, rows_));
  active_ = false;
}

std::string format_progress(const GenerationProgress& p) {
  std::string s = p.model;
  if (p.phase == "loading") s += fmt::format(" · loading {:.0f}%", 100.0 * p.load_progress);
  else if (p.phase == "queued") s += " · queued";
  else if (p.phase == "prompt") s += fmt::format(" · reading {} prompt tokens", p.prompt_tokens);
  else s += fmt::format(" · {} tok · {:.1f} tok/s", p.tokens, p.tokens_per_s);
  s += fmt::format(" · {:.1f}s", p.elapsed_s);
  return s;
}

}  // namespace codey

// ------------------------------------------------------------- Ctrl-C --

namespace codey {

namespace {

std::atomic<int> g_sigint_count{0};
std::atomic<bool> g_second_exits{false};
std::atomic<int> g_turn_count_at_start{-1};  // -1: no turn running

extern "C" void on_sigint(int) {
  const int n = g_sigint_count.fetch_add(1) + 1;
  const int start = g_turn_count_at_start.load();
  if (g_second_exits.load() && start >= 0 && n - start >= 2) {
    ::signal(SIGINT, SIG_DFL);
    ::raise(SIGINT);
  }
}

}  // namespace

struct InterruptHandler::Impl {
  struct sigaction old {};
  std::mutex mu;
  std::optional<std::stop_source> turn;
  int seen = 0;
  bool interrupted = false;
  std::jthread watcher;
};

InterruptHandler::InterruptHandler(bool second_exits) : impl_(std::make_unique<Impl>()) {
  g_second_exits = second_exits;
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a blocking read returns EINTR
  ::sigaction(SIGINT, &sa, &impl_->old);
  impl_->seen = g_sigint_count.load();
  Impl* im = impl_.get();
  impl_->watcher = std::jthread([im](std::stop_token st) {
    while (!st.stop_requested()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      const int n = g_sigint_count.load();
      std::lock_guard l(im->mu);
      if (n != im->seen) {
        im->seen = n;
        if (im->turn) {
          im->turn->request_stop();
          im->interrupted = true;
        }
      }
    }
  });
}

InterruptHandler::~InterruptHandler() {
  impl_->watcher.request_stop();
  impl_->watcher.join();
  g_turn_count_at_start = -1;
  ::sigaction(SIGINT, &impl_->old, nullptr);
}

std::stop_token InterruptHandler::begin_turn() {
  std::lock_guard l(impl_->mu);
  impl_->turn.emplace();
  impl_->interrupted = false;
  impl_->seen = g_sigint_count.load();
  g_turn_count_at_start = impl_->seen;
  return impl_->turn->get_token();
}

void InterruptHandler::end_turn() {
  std::lock_guard l(impl_->mu);
  impl_->turn.reset();
  g_turn_count_at_start = -1;
  impl_->seen = g_sigint_count.load();
}

bool InterruptHandler::interrupted() const {
  std::lock_guard l(impl_->mu);
  return impl_->interrupted;
}

ReadStatus read_line(int fd, std::string& line) {
  line.clear();
  while (true) {
    char c;
    const ssize_t n = ::read(fd, &c, 1);
    if (n < 0) {
      if (errno == EINTR) return ReadStatus::kInterrupted;
      return line.empty() ? ReadStatus::kEof : ReadStatus::kLine;
    }
    if (n == 0) return line.empty() ? ReadStatus::kEof : ReadStatus::kLine;
    if (c == '\n') {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      return ReadStatus::kLine;
    }
    line.push_back(c);
  }
}

bool ask_yes_no(const std::string& question) {
  if (!::isatty(0)) return false;
  std::fflush(stdout);
  write_all(2, question + " [y/N] ");
  std::string answer;
  if (read_line(0, answer) != ReadStatus::kLine) {
    write_all(2, "\n");
    return false;
  }
  for (auto& ch : answer) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  while (!answer.empty() && answer.back() == ' ') answer.pop_back();
  while (!answer.empty() && answer.front() == ' ') answer.erase(0, 1);
  return answer == "y" || answer == "yes";
}

}  // namespace codey
