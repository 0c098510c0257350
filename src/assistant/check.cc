// The check step: syntax-check generated code with the language's own tool
// found on PATH (Python's compile(), cc/c++ -fsyntax-only, node --check,
// bash -n), on a copy in a temporary directory, with a time limit.
//
// What a model writes is never run. Every checker only parses; each gets the
// copy's absolute path (a name starting with '-' is never an option) and runs
// from an empty directory. Python compiles the file's bytes in isolated mode
// (-I: no script or current directory on sys.path, no PYTHON* variables, no
// user site), so a generated token.py or traceback.py is never imported, as
// it was by `python3 -m py_compile` run beside the file. The C and C++ checker
// first lists the files the code includes (-M) and refuses any outside the
// copy, the include directories given and the compiler's own, so a
// `#include "/etc/passwd"` never shows another file's lines.
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
#include <map>
#include <mutex>

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

// Compiles the file named by argv[1] without running it; a syntax error is
// printed the way py_compile prints it. Runs under -I from an empty directory.
constexpr std::string_view kPythonCheck = R"(import sys
p = sys.argv[1]
with open(p, 'rb') as f:
    src = f.read()
try:
    compile(src, p, 'exec', dont_inherit=True)
except SyntaxError as e:
    import traceback
    sys.stderr.write(''.join(traceback.format_exception_only(type(e), e)))
    sys.exit(1)
except ValueError as e:
    sys.stderr.write(p + ': ' + str(e) + '\n')
    sys.exit(1)
)";

struct Checker {
  std::string program;
  std::vector<std::string> args;  // before the file
  std::string display;
  bool end_of_options = false;    // the program takes "--" before the file
  bool c_family = false;          // cc / c++: includes are listed and checked first
};

std::optional<Checker> checker_for(std::string_view filename, std::span<const fs::path> include_dirs) {
  const std::string lang = language_for_file(filename);
  const std::string ext = fs::path(filename).extension().string();
  std::vector<std::string> inc;
  for (const auto& d : include_dirs) {
    std::error_code ec;
    const fs::path abs = fs::absolute(d, ec);
    inc.push_back("-I");
    inc.push_back((ec ? d : abs).lexically_normal().string());
  }
  if (lang == "python") return Checker{"python3", {"-I", "-c", std::string(kPythonCheck)}, "python3 -I compile"};
  if (lang == "c" || lang == "cpp") {
    Checker c = lang == "c" ? Checker{"cc", {"-fsyntax-only", "-x", "c"}, "cc -fsyntax-only"}
                            : Checker{"c++", {"-fsyntax-only", "-x", "c++", "-std=c++20"}, "c++ -fsyntax-only -std=c++20"};
    c.c_family = true;
    c.args.insert(c.args.end(), inc.begin(), inc.end());
    return c;
  }
  if (lang == "javascript" && ext != ".jsx") return Checker{"node", {"--check"}, "node --check", true};
  if (lang == "bash") return Checker{"bash", {"-n"}, "bash -n", true};
  return std::nullopt;
}

// The directories a C/C++ compiler searches for <headers> by itself
// (`cc -E -v`), asked once per compiler and language.
std::vector<fs::path> system_include_dirs(const std::string& prog, const std::string& lang, const fs::path& cwd) {
  static std::mutex mu;
  static std::map<std::string, std::vector<fs::path>> cache;
  std::lock_guard lock(mu);
  const std::string key = prog + '\n' + lang;
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  std::vector<fs::path> dirs;
  const RunResult r = run({prog, "-x", lang, "-E", "-v", "/dev/null"}, cwd);
  bool in_list = false;
  size_t pos = 0;
  while (pos < r.output.size()) {
    size_t nl = r.output.find('\n', pos);
    if (nl == std::string::npos) nl = r.output.size();
    std::string_view line(r.output.data() + pos, nl - pos);
    pos = nl + 1;
    if (line.starts_with("#include <...> search starts here")) in_list = true;
    else if (line.starts_with("End of search list")) in_list = false;
    else if (in_list && line.starts_with(" /")) dirs.push_back(fs::path(line.substr(1)).lexically_normal());
  }
  if (r.error.empty() && r.status == 0 && !dirs.empty()) cache[key] = dirs;
  return dirs;
}

bool under(const fs::path& p, const fs::path& dir) {
  auto [d, f] = std::mismatch(dir.begin(), dir.end(), p.begin(), p.end());
  if (d == dir.end()) return true;
  // "/usr/include/" has an empty last element.
  return std::next(d) == dir.end() && d->empty();
}

// The prerequisites of the make rule -M writes ("x.o: a.c b.h", lines continued by a backslash), with
// "\ " for spaces in names.
std::vector<std::string> make_rule_files(std::string_view text) {
  std::vector<std::string> out;
  std::string cur;
  bool target_done = false;
  auto flush = [&] {
    if (!cur.empty()) {
      if (target_done) out.push_back(cur);
      else if (cur.back() == ':') target_done = true;
    }
    cur.clear();
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char ch = text[i];
    if (ch == '\\' && i + 1 < text.size() && (text[i + 1] == ' ' || text[i + 1] == '#')) {
      cur += text[++i];
    } else if (ch == '\\' && i + 1 < text.size() && text[i + 1] == '\n') {
      ++i;
      flush();
    } else if (ch == '$' && i + 1 < text.size() && text[i + 1] == '$') {
      cur += text[++i];
    } else if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r') {
      flush();
    } else {
      cur += ch;
    }
  }
  flush();
  return out;
}

// An error when the code includes a file outside `allowed` (the copy's
// folder, the include directories, the compiler's own), found by the
// compiler itself (-M -MG, so computed includes and headers' includes count
// too). The listing pass's diagnostics are never shown: they could quote the
// outside file.
std::optional<std::string> outside_include(const std::string& prog, const Checker& c, const fs::path& file,
                                           const fs::path& cwd, std::span<const fs::path> include_dirs) {
  const fs::path dep = cwd.parent_path() / "deps.d";
  std::vector<std::string> argv{prog};
  argv.insert(argv.end(), c.args.begin(), c.args.end());
  for (std::string& a : argv)
    if (a == "-fsyntax-only") a = "-M";
  argv.insert(argv.end(), {"-MG", "-MF", dep.string(), file.string()});
  const RunResult r = run(argv, cwd);
  if (r.timed_out) return fmt::format("listing the files it includes did not finish in {} s", kTimeoutMs / 1000);
  std::ifstream f(dep, std::ios::binary);
  const std::string rule((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (rule.empty()) return std::string("the compiler could not list the files it includes");
  std::vector<fs::path> allowed{file.parent_path()};
  for (const auto& d : include_dirs) {
    std::error_code ec;
    const fs::path abs = fs::absolute(d, ec);
    allowed.push_back((ec ? d : abs).lexically_normal());
  }
  const std::string lang = c.program == "cc" ? "c" : "c++";
  for (auto& d : system_include_dirs(prog, lang, cwd)) allowed.push_back(std::move(d));
  for (const std::string& name : make_rule_files(rule)) {
    fs::path p(name);
    if (p.is_relative()) p = cwd / p;
    p = p.lexically_normal();
    const bool ok = std::any_of(allowed.begin(), allowed.end(), [&](const fs::path& d) { return under(p, d); });
    if (!ok)
      return fmt::format("it includes {}, outside the project and the compiler's headers; not checked", name);
  }
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
  // dir/src/<name>: the copy, alone in its folder; dir/run: the checker's
  // working directory, empty.
  const fs::path dir(tmpl);
  const std::string base = fs::path(filename).filename().string();
  const fs::path file = dir / "src" / base;
  const fs::path cwd = dir / "run";
  std::error_code mk;
  fs::create_directory(dir / "src", mk);
  fs::create_directory(cwd, mk);
  {
    std::ofstream f(file, std::ios::binary);
    f.write(code.data(), static_cast<std::streamsize>(code.size()));
  }
  std::optional<std::string> refused;
  if (c->c_family) refused = outside_include(prog, *c, file, cwd, include_dirs);
  RunResult r;
  if (!refused) {
    std::vector<std::string> argv{prog};
    argv.insert(argv.end(), c->args.begin(), c->args.end());
    if (c->end_of_options) argv.push_back("--");
    argv.push_back(file.string());
    r = run(argv, cwd);
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (refused) {
    out.status = CheckStatus::kFailed;
    out.output = fmt::format("{}: {}", filename, *refused);
    return out;
  }
  if (!r.error.empty()) {
    out.status = CheckStatus::kNoChecker;
    out.checker.clear();
    out.output = fmt::format("cannot run {}: {}", prog, r.error);
    return out;
  }
  // Diagnostics name the user's file, not the temporary copy.
  std::string text = replace_all(std::move(r.output), file.string(), filename);
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
