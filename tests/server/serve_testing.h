// Helpers of the `codey serve` end-to-end tests: the server as a child
// process on a free loopback port, curl requests, background streaming
// clients, synthesized tiny models. CODEY_TEST_SERVE_BINARY runs another
// build's server (e.g. an old one, to see a regression test fail on it).
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <sstream>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <zlib.h>
#include <poll.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <nlohmann/json.hpp>

#include "codey/gguf.h"
#include "testing/gguf_template.h"
#include "testing/testing.h"

namespace codey::serve_testing {

using testing::copy_with_template;

namespace fs = std::filesystem;
using nlohmann::json;
using testing::read_file_text;
using testing::temp_dir;

inline constexpr const char* kKey = "test-key-123";

using Shell = testing::CommandResult;
using testing::shell_quote;
inline Shell sh(const std::string& cmd) { return testing::run_shell(cmd); }

inline bool have_node_clients() {
  return sh("command -v node >/dev/null").exit_code == 0 &&
         fs::exists(fs::path(CODEY_SOURCE_DIR) / "tests/e2e/node_modules/openai/package.json") &&
         fs::exists(fs::path(CODEY_SOURCE_DIR) / "tests/e2e/node_modules/ollama/package.json");
}
inline bool have_curl() { return sh("command -v curl >/dev/null").exit_code == 0; }

#define REQUIRE_NODE()                                                                                     \
  if (!have_node_clients())                                                                                \
  GTEST_SKIP() << "node or tests/e2e/node_modules missing: run scripts/setup.sh (npm install in tests/e2e)"
#define REQUIRE_CURL() \
  if (!have_curl()) GTEST_SKIP() << "curl is not installed"

// A small random-weight llama with the built-in byte-level vocabulary
// (ChatML and FIM specials) and no padding tokens (they decode to nothing):
// fast enough for thousands of tokens per second.
inline std::string synth_tiny(const std::string& dir, const std::string& name = "tiny.gguf", int n_embd = 64, int n_layer = 2) {
  const std::string path = dir + "/" + name;
  auto r = testing::run_codey({"synth", "--arch", "llama", "--n-embd", std::to_string(n_embd), "--n-layer",
                               std::to_string(n_layer), "--n-head", "4", "--n-head-kv", "2", "--n-ff",
                               std::to_string(2 * n_embd), "--n-vocab", "262", "--ctx", "4096", "-o", path});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return path;
}

inline std::string serve_binary() {
  const char* b = std::getenv("CODEY_TEST_SERVE_BINARY");
  return b && *b ? b : CODEY_BINARY;
}

// `codey serve` as a child process; the port comes from its first stdout line.
class ServeProcess {
 public:
  ServeProcess(const std::vector<std::string>& args, const std::string& log_path) {
    int out[2];
    if (pipe(out) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], 1);
      const int err = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (err >= 0) dup2(err, 2);
      close(out[0]);
      std::vector<std::string> argv_s{serve_binary(), "serve"};
      argv_s.insert(argv_s.end(), args.begin(), args.end());
      std::vector<char*> argv;
      for (auto& a : argv_s) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv_s[0].c_str(), argv.data());
      _exit(127);
    }
    close(out[1]);
    out_ = fdopen(out[0], "r");
    char line[1024];
    // "codey serve: listening on http://127.0.0.1:PORT (models: ...)"
    while (out_ && fgets(line, sizeof line, out_)) {
      const std::string s(line);
      const auto p = s.find("listening on http://");
      if (p == std::string::npos) continue;
      const std::string rest = s.substr(p + 20);
      const auto colon = rest.find(':');
      url_ = "http://" + rest.substr(0, rest.find(' '));
      port_ = std::atoi(rest.c_str() + colon + 1);
      break;
    }
    log_ = log_path;
  }
  ~ServeProcess() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (out_) fclose(out_);
  }
  bool ok() const { return port_ > 0; }
  const std::string& url() const { return url_; }
  int pid() const { return pid_; }
  std::string log() const { return read_file_text(log_); }
  // Sends `sig` and waits up to `timeout` for the exit; the exit code, or -1.
  int stop(int sig, std::chrono::seconds timeout) {
    kill(pid_, sig);
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
      int st = 0;
      if (waitpid(pid_, &st, WNOHANG) == pid_) {
        exited_ = true;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return -1;
  }

 private:
  pid_t pid_ = -1;
  FILE* out_ = nullptr;
  std::string url_, log_;
  int port_ = -1;
  bool exited_ = false;
};

struct Http {
  int status = 0;
  std::string body;
  std::string headers;
  json j() const { return json::parse(body, nullptr, false); }
};

// curl with the test key; `extra` are more curl arguments (shell syntax).
inline Http curl(const std::string& method, const std::string& url, const std::string& body = "", const std::string& extra = "",
          bool key = true) {
  const std::string dir = temp_dir();
  std::string cmd = "curl -s -S --max-time 60 -X " + method + " -o " + shell_quote(dir + "/body") + " -D " +
                    shell_quote(dir + "/headers") + " -w '%{http_code}' ";
  if (key) cmd += "-H " + shell_quote(std::string("Authorization: Bearer ") + kKey) + " ";
  if (!body.empty()) {
    std::ofstream(dir + "/req", std::ios::binary) << body;
    cmd += "-H 'Content-Type: application/json' --data-binary @" + shell_quote(dir + "/req") + " ";
  }
  cmd += extra + " " + shell_quote(url);
  Shell s = sh(cmd);
  Http h;
  h.status = std::atoi(s.out.c_str());
  h.body = read_file_text(dir + "/body");
  h.headers = read_file_text(dir + "/headers");
  return h;
}

// A background curl that streams into a file; kill() is a client disconnect.
class BackgroundCurl {
 public:
  BackgroundCurl(const std::string& url, const std::string& body) {
    dir_ = temp_dir();
    std::ofstream(dir_ + "/req", std::ios::binary) << body;
    pid_ = fork();
    if (pid_ == 0) {
      const std::string out = dir_ + "/out", req = "@" + dir_ + "/req";
      const std::string auth = std::string("Authorization: Bearer ") + kKey;
      execlp("curl", "curl", "-s", "-N", "--max-time", "120", "-H", auth.c_str(), "-H", "Content-Type: application/json",
             "--data-binary", req.c_str(), "-o", out.c_str(), url.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  ~BackgroundCurl() { kill(); }
  std::string output() const { return read_file_text(dir_ + "/out"); }
  void kill() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }
  // Waits for curl to finish by itself; false on timeout.
  bool wait(std::chrono::seconds timeout) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

 private:
  std::string dir_;
  pid_t pid_ = -1;
};

// Polls until pred(model status) holds; false after `timeout`.
inline bool wait_for_model(const std::string& url, const std::string& model, const std::function<bool(const json&)>& pred,
                    std::chrono::milliseconds timeout = std::chrono::seconds(15)) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    Http h = curl("GET", url + "/codey/status");
    json j = h.j();
    if (j.is_object())
      for (const auto& m : j["models"])
        if (m["name"] == model && pred(m)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

// A gzip body of 1 + 258 * n_matches zero bytes in about n_matches / 4
// bytes (deflate's best ratio, 1032:1), built directly: one dynamic-Huffman
// block whose only symbols are literal 0, length 258 (code 285, 1 bit),
// distance 1 (1 bit) and end-of-block, so every match is two zero bits.
inline std::string gzip_zero_bomb(uint64_t n_matches) {
  std::string out = std::string("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", 10);
  uint64_t bitbuf = 0;
  int nbits = 0;
  auto put = [&](uint32_t value, int n) {  // LSB first, as deflate packs fields
    bitbuf |= static_cast<uint64_t>(value) << nbits;
    nbits += n;
    while (nbits >= 8) {
      out.push_back(static_cast<char>(bitbuf & 0xff));
      bitbuf >>= 8;
      nbits -= 8;
    }
  };
  auto put_code = [&](uint32_t code, int n) {  // Huffman codes go MSB first
    for (int i = n - 1; i >= 0; --i) put((code >> i) & 1, 1);
  };
  put(1, 1);          // BFINAL
  put(2, 2);          // dynamic Huffman
  put(286 - 257, 5);  // HLIT: codes 0..285
  put(0, 5);          // HDIST: one distance code
  put(18 - 4, 4);     // HCLEN: 18 code-length code lengths
  // Code-length alphabet in its order 16,17,18,0,8,7,9,6,10,5,11,4,12,3,13,2,14,1: 18 -> 1 bit, 2 and 1 -> 2 bits.
  const int cl_lengths[18] = {0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 2};
  for (int l : cl_lengths) put(static_cast<uint32_t>(l), 3);
  // Canonical codes: 18 -> 0, 1 -> 10, 2 -> 11.
  auto len2 = [&] { put_code(3, 2); };
  auto len1 = [&] { put_code(2, 2); };
  auto zeros = [&](int n) { put_code(0, 1); put(static_cast<uint32_t>(n - 11), 7); };
  len2();                   // literal 0: 2 bits
  zeros(138); zeros(117);   // 1..255 unused
  len2();                   // 256 (end of block): 2 bits
  zeros(28);                // 257..284 unused
  len1();                   // 285 (length 258): 1 bit
  len1();                   // distance code 0 (distance 1): 1 bit
  // Canonical codes: 285 -> 0, literal 0 -> 10, 256 -> 11; distance 0 -> 0.
  put_code(2, 2);  // one literal zero
  for (uint64_t i = 0; i < n_matches; ++i) {
    if (nbits == 0 && i + 4 <= n_matches) {  // four matches are one zero byte
      const uint64_t bytes = (n_matches - i) / 4;
      out.append(bytes, '\0');
      i += bytes * 4 - 1;
      continue;
    }
    put(0, 2);
  }
  put_code(3, 2);  // end of block
  if (nbits > 0) put(0, 8 - nbits);
  // Trailer: CRC-32 and size (mod 2^32) of the 1 + 258 * n zero bytes.
  const uint64_t size = 1 + 258 * n_matches;
  const unsigned char zero = 0;
  const uLong crc1 = crc32(0, &zero, 1);
  uLong crc = 0;
  uLong run = crc1;  // CRC of `run_len` zeros
  uint64_t run_len = 1;
  bool have = false;
  for (uint64_t left = size; left; left >>= 1) {
    if (left & 1) {
      crc = have ? crc32_combine(crc, run, static_cast<z_off_t>(run_len)) : run;
      have = true;
    }
    run = crc32_combine(run, run, static_cast<z_off_t>(run_len));
    run_len *= 2;
  }
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((crc >> (8 * i)) & 0xff));
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((size >> (8 * i)) & 0xff));
  return out;
}

// A raw TCP connection to 127.0.0.1:port, for requests curl will not send.
class RawClient {
 public:
  explicit RawClient(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~RawClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;
  bool ok() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  // false when the server closed or reset the connection.
  bool send(std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  // Something to read (or EOF) within `wait`.
  bool readable(std::chrono::milliseconds wait) const {
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, static_cast<int>(wait.count())) > 0;
  }
  // Reads until EOF, a reset, or `timeout` of silence; what arrived.
  std::string read_all(std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    std::string out;
    char buf[16384];
    while (readable(timeout)) {
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }
  // Reads one response with a Content-Length body (or up to EOF), and the
  // interim 1xx responses before it.
  std::string read_response(std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    std::string out;
    char buf[16384];
    while (readable(timeout)) {
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
      // Interim responses ("HTTP/1.1 100 Continue") come before the final one.
      size_t start = 0;
      while (out.compare(start, 10, "HTTP/1.1 1") == 0 && out.find("\r\n\r\n", start) != std::string::npos)
        start = out.find("\r\n\r\n", start) + 4;
      const size_t end = out.find("\r\n\r\n", start);
      if (end == std::string::npos) continue;
      const size_t cl = out.find("Content-Length: ", start);
      if (cl == std::string::npos || cl > end) continue;
      const size_t len = std::strtoull(out.c_str() + cl + 16, nullptr, 10);
      if (out.size() >= end + 4 + len) break;
    }
    return out;
  }

 private:
  int fd_ = -1;
};

// The status code of a raw response ("HTTP/1.1 401 ..."), 0 if none.
inline int raw_status(const std::string& response) {
  if (!response.starts_with("HTTP/1.")) return 0;
  return std::atoi(response.c_str() + 9);
}

// CPU seconds (user + system) the process has used so far.
inline double cpu_seconds(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t p = stat.rfind(')');
  if (p == std::string::npos) return 0;
  std::istringstream fields(stat.substr(p + 2));
  std::string f;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> f; ++i) {
    if (i == 14) utime = std::stoull(f);
    if (i == 15) stime = std::stoull(f);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// A /proc/<pid>/status field in KiB ("VmHWM:", "VmRSS:").
inline uint64_t proc_status_kib(int pid, const char* field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.starts_with(field)) return std::strtoull(line.c_str() + std::strlen(field), nullptr, 10);
  return 0;
}

}  // namespace codey::serve_testing
