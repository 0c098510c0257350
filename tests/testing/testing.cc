// Test helpers (see testing.h).
#include "testing/testing.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

namespace codey::testing {
namespace fs = std::filesystem;

std::string testdata_dir() { return fs::absolute(CODEY_TESTDATA_DIR).lexically_normal().string(); }
std::string testdata(const std::string& relative) { return testdata_dir() + "/" + relative; }

namespace {
std::vector<std::string>& temp_dirs() {
  static std::vector<std::string> dirs;
  return dirs;
}
void cleanup() {
  for (const auto& d : temp_dirs()) {
    std::error_code ec;
    fs::remove_all(d, ec);
  }
}
}  // namespace

std::string temp_dir() {
  static std::once_flag once;
  std::call_once(once, [] {
    temp_dirs();  // construct before registering, so it is destroyed after cleanup runs
    std::atexit(cleanup);
  });
  std::string templ = (fs::temp_directory_path() / "codey-test-XXXXXX").string();
  char* p = mkdtemp(templ.data());
  if (!p) std::abort();
  temp_dirs().push_back(p);
  return p;
}

std::vector<uint8_t> read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void write_file_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

std::string read_file_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

CommandResult run_shell(const std::string& cmd) {
  CommandResult r;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int st = pclose(p);
  r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

CommandResult run_codey(const std::vector<std::string>& args) {
  std::string dir = temp_dir();
  std::string cmd = shell_quote(CODEY_BINARY);
  for (const auto& a : args) cmd += " " + shell_quote(a);
  cmd += " </dev/null >" + shell_quote(dir + "/out") + " 2>" + shell_quote(dir + "/err");
  int status = std::system(cmd.c_str());
  CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = read_file_text(dir + "/out");
  r.err = read_file_text(dir + "/err");
  return r;
}

}  // namespace codey::testing
