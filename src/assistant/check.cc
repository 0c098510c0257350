// The check step: syntax-check generated code with the language's own tool
// found on PATH (py_compile, cc/c++ -fsyntax-only, node --check, bash -n),
// on a copy in a temporary directory, with a time limit.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "codey/assistant.h"

extern char** environ;

namespace codey {

namespace fs = std::filesystem;

std::string_view check_status_name(CheckStatus s) {
  switch (s) {
    case CheckStatus::kPassed: return "passed";
    case CheckStatus::kFailed: return "failed";
    case CheckStatus::kNoChecker: return "not checked";
  }
  return "?";
}

std::string find_program(std::string_view program) {
  if (program.find('/') != std::string_view::npos)
    return ::access(std::string(program).c_str(), X_OK) == 0 ? std::string(program) : "";
  const char* path = std::getenv("PATH");
  std::string_view p = path ? path : "/usr/local/bin:/usr/bin:/bin";
  while (true) {
    const auto c = p.find(':');
    std::string dir(p.substr(0, c));
    if (dir.empty()) dir = ".";
    const std::string cand = dir + "/" + std::string(program);
    struct stat st {};
    if (::stat(cand.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(cand.c_str(), X_OK) == 0) return cand;
    if (c == std::string_view::npos) break;
    p.remove_prefix(c + 1);
  }
  return "";
}

namespace {

constexpr int kTimeoutMs = 30000;
constexpr size_t kMaxOutput = 8000;

struct RunResult {
  int status = -1;  // exit code; -1 when it did not exit normally
  bool timed_out = false;
  std::string output;  // stdout and stderr, interleaved
  std::string error;   // could not run
};

RunResult run(const std::vector<std::string>& argv, const fs::path& cwd) {
  RunResult r;
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) {
    r.error = std::strerror(errno);
    return r;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
  posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
  posix_spawn_file_actions_addchdir_np(&fa, cwd.c_str());
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);  // own group: a timeout kills its children too
  posix_spawnattr_setpgroup(&attr, 0);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, args[0], &fa, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  ::close(pipefd[1]);
  if (rc != 0) {
    ::close(pipefd[0]);
    r.error = std::strerror(rc);
    return r;
  }
  const auto t0 = Clock::now();
  char buf[4096];
  while (true) {
    const int left = kTimeoutMs - static_cast<int>(seconds_since(t0) * 1000);
    if (left <= 0) {
      r.timed_out = true;
      ::kill(-pid, SIGKILL);
      break;
    }
    pollfd pfd{pipefd[0], POLLIN, 0};
    const int pr = ::poll(&pfd, 1, left);
    if (pr < 0 && errno == EINTR) continue;
    if (pr <= 0) continue;
    const ssize_t n = ::read(pipefd[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (r.output.size() < kMaxOutput * 4) r.output.append(buf, static_cast<size_t>(n));
  }
  ::close(pipefd[0]);
  int ws = 0;
  while (::waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(ws)) r.status = WEXITSTATUS(ws);
  return r;
}

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  if (from.empty()) return s;
  size_t p = 0;
  while ((p = s.find(from, p)) != std::string::npos) {
    s.replace(p, from.size(), to);
    p += to.size();
  }
  return s;
}

struct Checker {
  std::string program;
  std::vector<std::string> args;  // before the file
  std::string display;
};

std::optional<Checker> checker_for(std::string_view filename, std::span<const fs::path> include_dirs) {
  const std::string lang = language_for_file(filename);
  const std::string ext = fs::path(filename).extension().string();
  std::vector<std::string> inc;
  for (const auto& d : include_dirs) {
    inc.push_back("-I");
    inc.push_back(d.string());
  }
  if (lang == "python") return Checker{"python3", {"-m", "py_compile"}, "python3 -m py_compile"};
  if (lang == "c") {
    Checker c{"cc", {"-fsyntax-only", "-x", "c"}, "cc -fsyntax-only"};
    c.args.insert(c.args.end(), inc.begin(), inc.end());
    return c;
  }
  if (lang == "cpp") {
    Checker c{"c++", {"-fsyntax-only", "-x", "c++", "-std=c++20"}, "c++ -fsyntax-only -std=c++20"};
    c.args.insert(c.args.end(), inc.begin(), inc.end());
    return c;
  }
  if (lang == "javascript" && ext != ".jsx") return Checker{"node", {"--check"}, "node --check"};
  if (lang == "bash") return Checker{"bash", {"-n"}, "bash -n"};
  return std::nullopt;
}

std::string trim_output(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  if (s.size() > kMaxOutput) s = s.substr(0, kMaxOutput) + "\n[... output truncated]";
  return s;
}

}  // namespace

CheckOutcome check_code(std::string_view filename, std::string_view code, std::span<const fs::path> include_dirs) {
  CheckOutcome out;
  out.file = std::string(filename);
  if (language_for_file(filename) == "json") {
    out.checker = "json parse";
    try {
      const auto parsed = nlohmann::json::parse(code);
      (void)parsed;
      out.status = CheckStatus::kPassed;
    } catch (const nlohmann::json::parse_error& e) {
      out.status = CheckStatus::kFailed;
      out.output = fmt::format("{}: {}", filename, e.what());
    }
    return out;
  }
  auto c = checker_for(filename, include_dirs);
  if (!c) {
    out.output = fmt::format("no checker for {} files", language_for_file(filename).empty()
                                                             ? fs::path(filename).extension().string()
                                                             : language_for_file(filename));
    return out;
  }
  const std::string prog = find_program(c->program);
  if (prog.empty()) {
    out.output = fmt::format("{} not found on PATH", c->program);
    return out;
  }
  out.checker = c->display;
  char tmpl[] = "/tmp/codey-check-XXXXXX";
  if (!::mkdtemp(tmpl)) {
    out.output = fmt::format("cannot create a temporary directory: {}", std::strerror(errno));
    return out;
  }
  const fs::path dir(tmpl);
  const std::string base = fs::path(filename).filename().string();
  const fs::path file = dir / base;
  {
    std::ofstream f(file, std::ios::binary);
    f.write(code.data(), static_cast<std::streamsize>(code.size()));
  }
  std::vector<std::string> argv{prog};
  argv.insert(argv.end(), c->args.begin(), c->args.end());
  argv.push_back(base);
  RunResult r = run(argv, dir);
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (!r.error.empty()) {
    out.status = CheckStatus::kNoChecker;
    out.checker.clear();
    out.output = fmt::format("cannot run {}: {}", prog, r.error);
    return out;
  }
  // Diagnostics name the user's file, not the temporary copy.
  std::string text = replace_all(std::move(r.output), file.string(), filename);
  if (base != filename) text = replace_all(std::move(text), "\"" + base + "\"", "\"" + std::string(filename) + "\"");
  if (r.timed_out) {
    out.status = CheckStatus::kFailed;
    out.output = fmt::format("{} did not finish in {} s", c->display, kTimeoutMs / 1000);
    return out;
  }
  out.status = r.status == 0 ? CheckStatus::kPassed : CheckStatus::kFailed;
  out.output = trim_output(std::move(text));
  if (out.status == CheckStatus::kFailed && out.output.empty())
    out.output = fmt::format("{} exited with status {}", c->display, r.status);
  return out;
}

}  // namespace codey
