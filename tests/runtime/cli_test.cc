// Tests of `codey list` (src/cli/cmd_list.cc) and `codey ps`
// (src/cli/cmd_ps.cc), run as the built binary. `ps` reads a status endpoint
// served here by a minimal HTTP responder over a real Runtime's status.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "runtime/runtime_testing.h"

namespace codey {
namespace {

using testing::run_codey;
using testing::tiny_config;

// Serves `body()` as JSON on 127.0.0.1:<port> until destroyed; remembers the
// last request's head.
class StatusServer {
 public:
  explicit StatusServer(std::function<std::string()> body) : body_(std::move(body)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    ::listen(fd_, 8);
    thread_ = std::thread([this] { loop(); });
  }
  ~StatusServer() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  int port() const { return port_; }
  std::string last_request() {
    std::lock_guard l(mu_);
    return last_;
  }

 private:
  void loop() {
    while (!stop_) {
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::string req;
      char buf[4096];
      while (req.find("\r\n\r\n") == std::string::npos) {
        const ssize_t n = ::read(c, buf, sizeof buf);
        if (n <= 0) break;
        req.append(buf, static_cast<size_t>(n));
      }
      {
        std::lock_guard l(mu_);
        last_ = req;
      }
      const std::string body = body_();
      const std::string resp = fmt::format(
          "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
          body.size(), body);
      (void)!::write(c, resp.data(), resp.size());
      ::close(c);
    }
  }

  std::function<std::string()> body_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::string last_;
};

std::string write_config(const std::string& text) {
  const std::string path = testing::temp_dir() + "/codey.yaml";
  std::ofstream(path) << text;
  return path;
}

TEST(CliList, ShowsWhatEachModelNeedsAgainstTheBudget) {
  ModelConfig a = tiny_config("a");
  a.parallel = 2;  // as in the config below: the scratch holds a logits row per slot
  auto facts = make_gguf_backend()->inspect(a);
  ASSERT_TRUE(facts.has_value());
  const uint64_t need = facts->bytes_at(256, 2);
  const std::string cfg = write_config(fmt::format(
      "memory_budget: {}\nthreads: 1\nmodels:\n  a: {{path: {}, ctx: 256, parallel: 2, batch: 64, pinned: true}}\n"
      "  gone: {{path: /nonexistent/x.gguf}}\nroutes:\n  chat: {{model: a, description: questions}}\n",
      need + 1, a.path));
  auto r = run_codey({"list", "--config", cfg, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["memory_budget"], need + 1);
  ASSERT_EQ(j["models"].size(), 2u);
  const auto& m = j["models"][0];
  EXPECT_EQ(m["name"], "a");
  EXPECT_EQ(m["architecture"], "llama");
  EXPECT_EQ(m["slots"], 2);
  EXPECT_EQ(m["memory"]["needed"], need);
  EXPECT_EQ(m["memory"]["kv_cache"], facts->kv_bytes_per_pos * 256 * 2);
  EXPECT_EQ(m["fits"], true);
  EXPECT_EQ(m["pinned"], true);
  EXPECT_NE(j["models"][1]["error"].get<std::string>().find("/nonexistent/x.gguf"), std::string::npos);
  EXPECT_EQ(j["routes"][0]["model"], "a");

  // Text, with a budget the model does not fit.
  const std::string small = write_config(
      fmt::format("memory_budget: {}\nmodels:\n  a: {{path: {}, ctx: 256}}\n", need / 4, a.path));
  r = run_codey({"list", "--config", small});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("NEEDS"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("DOES NOT FIT"), std::string::npos) << r.out;

  // Config errors come out with the key and the line.
  const std::string bad = write_config("models:\n  a:\n    path: x.gguf\n    ctx: lots\n");
  r = run_codey({"list", "--config", bad});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("codey.yaml:4: models.a.ctx"), std::string::npos) << r.err;
}

TEST(CliPs, ReadsTheServersStatus) {
  RuntimeConfig c;
  c.memory_budget = 1ull << 30;
  c.threads = 1;
  c.models = {tiny_config("a"), tiny_config("b")};
  auto rt = Runtime::create(c);
  ASSERT_TRUE(rt.has_value());
  ASSERT_TRUE((*rt)->generate(testing::text_request("a", "hi", 2)).has_value());
  StatusServer server([&] { return to_json((*rt)->status()).dump(); });
  const std::string url = fmt::format("http://127.0.0.1:{}", server.port());

  auto r = run_codey({"ps", "--host", url, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(server.last_request().find("GET /codey/status"), std::string::npos);
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["models"].size(), 1u);  // only what is loaded
  EXPECT_EQ(j["models"][0]["name"], "a");
  EXPECT_EQ(j["models"][0]["state"], "loaded");
  EXPECT_GT(j["models"][0]["memory"]["used"].get<uint64_t>(), 0u);
  EXPECT_EQ(j["memory"]["budget"], 1ull << 30);
  r = run_codey({"ps", "--host", url, "--json", "--all"});
  EXPECT_EQ(nlohmann::json::parse(r.out)["models"].size(), 2u);

  r = run_codey({"ps", "--host", url});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("NAME"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("loaded"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("0/1"), std::string::npos) << r.out;  // slots: none active of one

  // The config's server section gives the address and the API key.
  setenv("CODEY_TEST_PS_KEY", "sekrit", 1);
  const std::string cfg = write_config(fmt::format(
      "models: {{}}\nserver: {{host: 127.0.0.1, port: {}, api_key: \"env:CODEY_TEST_PS_KEY\"}}\n", server.port()));
  r = run_codey({"ps", "--config", cfg});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(server.last_request().find("Authorization: Bearer sekrit"), std::string::npos) << server.last_request();
}

TEST(CliPs, SaysSoWhenNoServerRuns) {
  int port = 0;
  {
    StatusServer s([] { return std::string("{}"); });
    port = s.port();
  }  // closed: nothing listens there now
  auto r = run_codey({"ps", "--host", fmt::format("127.0.0.1:{}", port)});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("no codey server"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace codey
