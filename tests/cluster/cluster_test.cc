// The cluster test: nginx (deploy/nginx, written by codey-site.sh, run as an
// nginx of its own under a temp dir) in front of three `codey serve`
// processes, all on loopback ports chosen free at run time, driven by the
// real `openai` and `ollama` npm clients (tests/e2e/cluster_client.mjs).
//   - A server is SIGKILLed while it streams: no request that had not
//     started streaming is lost (nginx retries it elsewhere), the streams on
//     the killed server end with an error in the client (never as if
//     complete), and the survivors keep serving - also the model that only
//     the killed server kept loaded (its backups load it).
//   - A rolling restart (SIGTERM, drain, start again, one server at a time)
//     under load: zero failed requests.
// Bounded in count and time; asserts on counts of requests and outcomes
// (the clients' records and nginx's access log), never on durations.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "server/serve_testing.h"
#include "testing/testing.h"

namespace codey {
namespace {

using namespace serve_testing;  // NOLINT: the helpers are this file's vocabulary
using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr const char* kEdgeKey = "cluster-tester-key-0123456789";  // a person's key, checked by nginx
constexpr const char* kNginxModule = "/usr/lib/nginx/modules/ngx_http_js_module.so";

std::string source(const std::string& rel) { return std::string(CODEY_SOURCE_DIR) + "/" + rel; }

// A loopback port nobody listens on now (the caller binds it right after).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int port = -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

bool accepts(int port) {
  RawClient c(port);
  return c.ok();
}

// Polls `pred` every 50 ms until it holds; false after `limit` (a bound, not a measurement).
bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(milliseconds(50));
  }
  return pred();
}

// A child process: argv run directly, stdout and stderr to `log`.
class Child {
 public:
  Child(const std::vector<std::string>& argv, const std::string& log) : log_(log) {
    pid_ = fork();
    if (pid_ == 0) {
      // A process group of its own, so that whatever it starts (nginx's
      // workers, node's children) is killed with it and never outlives the test.
      setpgid(0, 0);
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
      }
      const int null = ::open("/dev/null", O_RDONLY);
      if (null >= 0) dup2(null, 0);
      std::vector<std::string> a = argv;
      std::vector<char*> p;
      for (auto& s : a) p.push_back(s.data());
      p.push_back(nullptr);
      execvp(p[0], p.data());
      _exit(127);
    }
    if (pid_ > 0) setpgid(pid_, pid_);  // also here: no race with the first signal
  }
  // The whole group: a master killed alone leaves its workers running.
  ~Child() {
    if (pid_ <= 0) return;
    kill(-pid_, SIGKILL);
    if (!exited_) waitpid(pid_, nullptr, 0);
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  bool running() {
    if (pid_ <= 0 || exited_) return false;
    int st = 0;
    if (waitpid(pid_, &st, WNOHANG) == pid_) {
      exited_ = true;
      code_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      return false;
    }
    return true;
  }
  // Waits for the exit; the exit code, or -1 after `limit`.
  int wait(std::chrono::milliseconds limit) {
    eventually([&] { return !running(); }, limit);
    return exited_ ? code_ : -1;
  }
  void signal(int sig) {
    if (running()) kill(pid_, sig);
  }
  std::string log() const { return read_file_text(log_); }

 private:
  pid_t pid_ = -1;
  bool exited_ = false;
  int code_ = -1;
  std::string log_;
};

std::vector<json> json_lines(const std::string& text) {
  std::vector<json> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    json j = json::parse(line, nullptr, false);
    if (!j.is_discarded()) out.push_back(std::move(j));
  }
  return out;
}

// nginx's $upstream_addr: "a, b" after a retry, "a : b" across internal
// redirects -> [a, b].
std::vector<std::string> split_upstreams(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string word;
  while (in >> word) {
    if (word.ends_with(',')) word.pop_back();
    if (!word.empty() && word != ":") out.push_back(word);
  }
  return out;
}

class Cluster : public ::testing::Test {
 protected:
  static constexpr int kServers = 3;

  void SetUp() override {
    REQUIRE_NODE();
    REQUIRE_CURL();
    if (sh("command -v nginx >/dev/null").exit_code != 0)
      GTEST_SKIP() << "nginx is not installed: run scripts/setup.sh (Debian's nginx)";
    if (!fs::exists(kNginxModule))
      GTEST_SKIP() << "nginx's njs module is not installed: run scripts/setup.sh (libnginx-mod-http-js)";
    dir_ = temp_dir();
    // nginx's workers (user nobody when the test runs as root) read and
    // write under the prefix.
    ::chmod(dir_.c_str(), 0755);
    // Two models every server has: "coder" kept loaded everywhere; "solo"
    // slower, kept loaded by server 0 only (the others load it on demand).
    synth_tiny(dir_, "coder.gguf", 64, 2);
    synth_tiny(dir_, "solo.gguf", 256, 4);
    setenv("CODEY_CLUSTER_KEY", upstream_key_.c_str(), 1);
    for (int i = 0; i < kServers; ++i) {
      ports_.push_back(free_port());
      write_config(i);
      ASSERT_TRUE(start_server(i)) << servers_[i]->log();
    }
    for (int i = 0; i < kServers; ++i) ASSERT_TRUE(wait_ready(i)) << servers_[i]->log();
    start_nginx();
  }

  void TearDown() override {
    if (HasFailure()) {
      for (int i = 0; i < static_cast<int>(servers_.size()); ++i)
        if (servers_[i]) std::fprintf(stderr, "--- codey serve %d log ---\n%s\n", i, tail(servers_[i]->log()).c_str());
      if (nginx_) std::fprintf(stderr, "--- nginx log ---\n%s\n", tail(nginx_->log()).c_str());
      std::fprintf(stderr, "--- nginx error.log ---\n%s\n", tail(read_file_text(prefix_ + "/logs/error.log")).c_str());
    }
    if (nginx_) {
      nginx_->signal(SIGQUIT);  // graceful; its destructor kills the group if this takes too long
      nginx_->wait(seconds(10));
      nginx_.reset();
    }
    servers_.clear();  // SIGKILL whatever still runs
  }

  static std::string tail(const std::string& s, size_t n = 3000) { return s.size() > n ? s.substr(s.size() - n) : s; }

  std::string addr(int i) const { return fmt::format("127.0.0.1:{}", ports_[i]); }
  std::string server_url(int i) const { return "http://" + addr(i); }
  std::string edge_url() const { return fmt::format("http://127.0.0.1:{}", edge_port_); }

  void write_config(int i) {
    std::ofstream(fmt::format("{}/codey-{}.yaml", dir_, i)) << fmt::format(R"(# cluster test server {}
memory_budget: 512MiB
threads: 1
models:
  coder: {{path: coder.gguf, ctx: 1024, parallel: 2, queue: 8, pinned: true}}
  solo: {{path: solo.gguf, ctx: 4096, parallel: 1, queue: 4, pinned: {}}}
server:
  host: 127.0.0.1
  api_key: env:CODEY_CLUSTER_KEY
  shutdown_grace: 60s
)",
                                                                           i, i == 0 ? "true" : "false");
  }

  bool start_server(int i) {
    if (static_cast<int>(servers_.size()) <= i) servers_.resize(i + 1);
    servers_[i].reset();
    ++generation_;
    servers_[i] = std::make_unique<ServeProcess>(
        std::vector<std::string>{"--config", fmt::format("{}/codey-{}.yaml", dir_, i), "--port",
                                 std::to_string(ports_[i])},
        fmt::format("{}/serve-{}-{}.log", dir_, i, generation_));
    return servers_[i]->ok();
  }

  // /ready is 200: pinned models loaded, not draining, no full queue.
  bool wait_ready(int i) {
    return eventually([&] { return curl("GET", server_url(i) + "/ready", "", "", false).status == 200; },
                      seconds(60));
  }

  json status(int i) { return curl("GET", server_url(i) + "/codey/status", "", "-H 'Authorization: Bearer " + upstream_key_ + "'", false).j(); }

  // Generation requests this server process finished (all models).
  int64_t requests_done(int i) {
    json j = status(i);
    int64_t n = 0;
    if (j.is_object())
      for (const auto& m : j["models"]) n += m["counters"]["requests_done"].get<int64_t>();
    return n;
  }
  // A model's "active" or "queued" request count on server i (-1 if unknown).
  int slots(int i, const std::string& model, const char* which) {
    json j = status(i);
    if (j.is_object())
      for (const auto& m : j["models"])
        if (m["name"] == model) return m["slots"][which].get<int>();
    return -1;
  }
  // A series' value in server i's /metrics (the first line that starts with `series `), or -1.
  double metric(int i, const std::string& series) {
    const std::string text =
        curl("GET", server_url(i) + "/metrics", "", "-H 'Authorization: Bearer " + upstream_key_ + "'", false).body;
    const size_t p = ("\n" + text).find("\n" + series + " ");
    return p == std::string::npos ? -1 : std::atof(text.c_str() + p + series.size() + 1);
  }
  int active(int i, const std::string& model) { return slots(i, model, "active"); }
  int queued(int i, const std::string& model) { return slots(i, model, "queued"); }

  void start_nginx() {
    prefix_ = dir_ + "/nginx";
    std::string site;
    for (int attempt = 0; attempt < 5; ++attempt) {
      edge_port_ = free_port();
      std::string cmd = shell_quote(source("deploy/nginx/codey-site.sh")) + " -o " + shell_quote(prefix_) +
                        " --standalone --models coder,solo --key " + shell_quote(std::string("tester:") + kEdgeKey) +
                        " --upstream-key " + shell_quote(upstream_key_) + " --listen " +
                        fmt::format("127.0.0.1:{}", edge_port_);
      for (int i = 0; i < kServers; ++i) cmd += " --server " + addr(i) + (i == 0 ? "=coder,solo" : "=coder");
      Shell gen = sh(cmd);
      ASSERT_EQ(gen.exit_code, 0) << gen.out;
      ::chmod(prefix_.c_str(), 0755);
      Shell t = sh("nginx -t -q -p " + shell_quote(prefix_) + " -c " + shell_quote(prefix_ + "/nginx.conf") + " -e " +
                   shell_quote(prefix_ + "/logs/error.log"));
      ASSERT_EQ(t.exit_code, 0) << t.out;
      nginx_ = std::make_unique<Child>(std::vector<std::string>{"nginx", "-p", prefix_, "-c", prefix_ + "/nginx.conf",
                                                                "-e", prefix_ + "/logs/error.log"},
                                       dir_ + "/nginx.out");
      if (eventually([&] { return !nginx_->running() || accepts(edge_port_); }, seconds(20)) && nginx_->running())
        return;
      nginx_.reset();  // the port was taken meanwhile: another one
    }
    FAIL() << "nginx did not start: " << read_file_text(prefix_ + "/logs/error.log");
  }

  // The node client in the background; its records go to `out`.
  std::unique_ptr<Child> start_clients(const std::string& tag, const std::vector<std::string>& extra) {
    std::vector<std::string> argv{"node",          source("tests/e2e/cluster_client.mjs"),
                                  "--url",         edge_url(),
                                  "--key",         kEdgeKey,
                                  "--model",       "coder",
                                  "--out",         dir_ + "/" + tag + ".jsonl",
                                  "--stop-file",   dir_ + "/" + tag + ".stop",
                                  "--progress",    dir_ + "/" + tag + ".progress",
                                  "--tag",         tag,
                                  "--concurrency", "6",
                                  "--seconds",     "240"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return std::make_unique<Child>(argv, dir_ + "/" + tag + ".log");
  }
  // A request through nginx in the background (curl), with X-Request-Id `id`:
  // its body goes to <id>.out, its status to <id>.log.
  std::unique_ptr<Child> edge_request(const std::string& id, const std::string& body) {
    std::ofstream(dir_ + "/" + id + ".json") << body;
    return std::make_unique<Child>(
        std::vector<std::string>{"curl", "-s", "-N", "--max-time", "180", "-w", "%{http_code}", "-H",
                                 std::string("Authorization: Bearer ") + kEdgeKey, "-H", "X-Request-Id: " + id, "-H",
                                 "Content-Type: application/json", "--data-binary", "@" + dir_ + "/" + id + ".json",
                                 "-o", dir_ + "/" + id + ".out", edge_url() + "/v1/completions"},
        dir_ + "/" + id + ".log");
  }
  std::string edge_output(const std::string& id) { return read_file_text(dir_ + "/" + id + ".out"); }
  int edge_status(const std::string& id) { return std::atoi(read_file_text(dir_ + "/" + id + ".log").c_str()); }
  static std::string solo_body(bool stream, int max_tokens) {
    return fmt::format(R"({{"model":"solo","prompt":"x","stream":{},"max_tokens":{},)"
                       R"("logit_bias":{{"256":-100,"257":-100,"258":-100}}}})",
                       stream ? "true" : "false", max_tokens);
  }

  std::vector<json> records(const std::string& tag) { return json_lines(read_file_text(dir_ + "/" + tag + ".jsonl")); }
  void stop_clients(const std::string& tag, Child& c) {
    std::ofstream(dir_ + "/" + tag + ".stop") << "stop\n";
    EXPECT_EQ(c.wait(seconds(150)), 0) << c.log();
  }
  // nginx's access log (format codey_json) by request id.
  std::map<std::string, json> access_log() {
    std::map<std::string, json> out;
    for (auto& j : json_lines(read_file_text(prefix_ + "/logs/access.log")))
      out[j["request_id"].get<std::string>()] = j;
    return out;
  }

  std::string dir_, prefix_;
  std::string upstream_key_ = "cluster-upstream-key-42";
  std::vector<int> ports_;
  int edge_port_ = -1;
  int generation_ = 0;
  std::vector<std::unique_ptr<ServeProcess>> servers_;
  std::unique_ptr<Child> nginx_;
};

TEST_F(Cluster, EdgeChecksKeysHostsAndBlocksPerServerEndpoints) {
  Http nokey = curl("GET", edge_url() + "/v1/models", "", "", false);
  EXPECT_EQ(nokey.status, 401) << nokey.body;
  EXPECT_EQ(nokey.j()["error"]["code"], "invalid_api_key");
  // The servers' own key is not a person's key.
  EXPECT_EQ(curl("GET", edge_url() + "/api/tags", "", "-H 'Authorization: Bearer " + upstream_key_ + "'", false).status,
            401);
  const std::string key = std::string("-H 'Authorization: Bearer ") + kEdgeKey + "'";
  Http models = curl("GET", edge_url() + "/v1/models", "", key, false);
  ASSERT_EQ(models.status, 200) << models.body;
  EXPECT_EQ(models.j()["data"].size(), 2u);
  EXPECT_EQ(curl("GET", edge_url() + "/v1/models", "", key + " -H 'Host: attacker.example'", false).status, 421);
  for (const char* p : {"/metrics", "/ready", "/codey/status"})
    EXPECT_EQ(curl("GET", edge_url() + p, "", key, false).status, 403) << p;
  Http pull = curl("POST", edge_url() + "/api/pull", R"({"model":"x"})", key, false);
  EXPECT_EQ(pull.status, 403);
  EXPECT_TRUE(pull.j()["error"].is_string()) << pull.body;
  Http big = curl("POST", edge_url() + "/v1/completions",
                  R"({"model":"coder","prompt":")" + std::string(9 << 20, 'a') + R"("})", key, false);
  EXPECT_EQ(big.status, 413);
  // A body that is not JSON reaches a server, which says what is wrong.
  Http bad = curl("POST", edge_url() + "/v1/chat/completions", "{not json", key, false);
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_NE(bad.body.find("not valid JSON"), std::string::npos) << bad.body;
  // Model affinity: "solo" goes to the one server that keeps it loaded.
  Http solo = curl("POST", edge_url() + "/api/generate",
                   R"({"model":"solo:latest","prompt":"x","stream":false,"options":{"num_predict":2}})",
                   key + " -H 'X-Request-Id: affinity-1'", false);
  ASSERT_EQ(solo.status, 200) << solo.body;
  auto log = access_log();
  ASSERT_TRUE(log.count("affinity-1"));
  EXPECT_EQ(log["affinity-1"]["upstream"], addr(0));
  EXPECT_EQ(log["affinity-1"]["model"], "solo");
  EXPECT_EQ(log["affinity-1"]["user"], "tester");
}

// A client that goes away through nginx frees its slot on the server.
TEST_F(Cluster, ClientDisconnectThroughNginxFreesTheSlot) {
  const std::string body = R"({"model":"solo","prompt":"x","stream":true,"max_tokens":3000,)"
                           R"("logit_bias":{"256":-100,"257":-100,"258":-100}})";
  std::ofstream(dir_ + "/long.json") << body;
  Child c({"curl", "-s", "-N", "--max-time", "120", "-H", std::string("Authorization: Bearer ") + kEdgeKey, "-H",
           "Content-Type: application/json", "--data-binary", "@" + dir_ + "/long.json", "-o", dir_ + "/long.out",
           edge_url() + "/v1/completions"},
          dir_ + "/long.log");
  ASSERT_TRUE(eventually([&] { return read_file_text(dir_ + "/long.out").find("data: {") != std::string::npos; },
                         seconds(60)));
  EXPECT_EQ(active(0, "solo"), 1);
  c.signal(SIGKILL);
  EXPECT_TRUE(eventually([&] { return active(0, "solo") == 0; }, seconds(10))) << "the slot is still taken";
  EXPECT_EQ(read_file_text(dir_ + "/long.out").find("[DONE]"), std::string::npos);
}

TEST_F(Cluster, ServerKilledMidRunLosesNoRequestThatHadNotStartedStreaming) {
  auto clients = start_clients("kill", {"--max-requests", "2000", "--max-tokens", "48", "--solo", "solo",
                                        "--solo-max-tokens", "3000"});
  // Server 0 streams "solo" (only it keeps that model loaded) and serves coder requests too.
  ASSERT_TRUE(eventually([&] { return read_file_text(dir_ + "/kill.progress").find("solo-streaming") != std::string::npos; },
                         seconds(90)))
      << clients->log();
  // Queued behind that stream (solo has one slot): it has not started, so it must not be lost.
  auto waiting = edge_request("kill-solo-queued", solo_body(false, 8));
  ASSERT_TRUE(eventually([&] { return queued(0, "solo") == 1; }, seconds(60)));
  servers_[0]->stop(SIGKILL, seconds(10));
  const std::string victim = addr(0);
  // The survivors keep serving: a dozen more requests finished on them.
  const int64_t before = requests_done(1) + requests_done(2);
  ASSERT_TRUE(eventually([&] { return requests_done(1) + requests_done(2) >= before + 12; }, seconds(120)))
      << clients->log();
  // The model only the killed server kept loaded: its backups load and serve it.
  const std::string key = std::string("-H 'Authorization: Bearer ") + kEdgeKey + "'";
  Http solo = curl("POST", edge_url() + "/v1/chat/completions",
                   R"({"model":"solo","max_tokens":4,"messages":[{"role":"user","content":"hi"}]})",
                   key + " -H 'X-Request-Id: solo-after'", false);
  EXPECT_EQ(solo.status, 200) << solo.body;
  stop_clients("kill", *clients);

  const auto recs = records("kill");
  const auto log = access_log();
  ASSERT_GE(recs.size(), 12u) << clients->log();
  int complete = 0, cut_streams = 0, retried_away = 0;
  for (const auto& r : recs) {
    const std::string id = r["id"];
    if (r["complete"]) {
      ++complete;
      continue;
    }
    // Only a stream that had begun may fail, and only on the killed server.
    EXPECT_TRUE(r["started"].get<bool>()) << "lost before it started streaming: " << r.dump();
    EXPECT_TRUE(r["stream"].get<bool>()) << r.dump();
    ASSERT_TRUE(log.count(id)) << "not in nginx's log: " << r.dump();
    const auto ups = split_upstreams(log.at(id)["upstream"]);
    ASSERT_FALSE(ups.empty()) << log.at(id).dump();
    EXPECT_EQ(ups.back(), victim) << r.dump() << "\n" << log.at(id).dump();
    EXPECT_FALSE(r["error"].is_null()) << r.dump();
    ++cut_streams;
  }
  for (const auto& [id, l] : log) {
    const auto ups = split_upstreams(l["upstream"]);
    if (ups.size() >= 2 && ups.front() == victim && l["status"] == 200) ++retried_away;
  }
  // The long "solo" stream was on the killed server when it died: the client saw an error, not an ending.
  const auto solo_rec = std::find_if(recs.begin(), recs.end(), [](const json& r) { return r["id"] == "kill-solo"; });
  ASSERT_NE(solo_rec, recs.end());
  EXPECT_TRUE((*solo_rec)["started"].get<bool>());
  EXPECT_FALSE((*solo_rec)["complete"].get<bool>()) << solo_rec->dump();
  EXPECT_GE(cut_streams, 1);
  EXPECT_GE(retried_away, 1) << "no request was retried away from the killed server";
  EXPECT_GE(complete, 12);
  // The queued request went to a backup of "solo" and was answered in full.
  ASSERT_EQ(waiting->wait(seconds(120)), 0);
  EXPECT_EQ(edge_status("kill-solo-queued"), 200) << edge_output("kill-solo-queued");
  EXPECT_NE(edge_output("kill-solo-queued").find("\"finish_reason\":\"length\""), std::string::npos);
  ASSERT_TRUE(log.count("kill-solo-queued"));
  const auto queued_ups = split_upstreams(log.at("kill-solo-queued")["upstream"]);
  ASSERT_GE(queued_ups.size(), 2u) << log.at("kill-solo-queued").dump();
  EXPECT_EQ(queued_ups.front(), victim);
  EXPECT_NE(queued_ups.back(), victim);
  ASSERT_TRUE(log.count("solo-after"));
  const auto solo_ups = split_upstreams(log.at("solo-after")["upstream"]);
  ASSERT_FALSE(solo_ups.empty());
  EXPECT_NE(solo_ups.back(), victim);
  for (int i = 1; i < kServers; ++i) {
    EXPECT_EQ(curl("GET", server_url(i) + "/health", "", "", false).status, 200);
    // nginx keeps its connections to the servers open (upstream keepalive):
    // far fewer connections than generation requests.
    const double conns = metric(i, "codey_http_connections_total{outcome=\"accepted\"}");
    const double gens = requests_done(i);
    EXPECT_GT(conns, 0);
    EXPECT_LT(conns, gens) << "server " << i << ": " << conns << " connections for " << gens << " generations";
    std::printf("server %d: %.0f connections accepted (the test's own requests included), %.0f generations\n", i,
                conns, gens);
  }
  std::printf("kill: %zu requests, %d complete, %d streams cut on the killed server, %d retried away from it\n",
              recs.size(), complete, cut_streams, retried_away);
}

TEST_F(Cluster, RollingRestartFailsNoRequest) {
  // Longer requests: some are always in flight on the server that restarts.
  auto clients = start_clients("roll", {"--max-requests", "4000", "--max-tokens", "256"});
  ASSERT_TRUE(eventually([&] { return records("roll").size() >= 6; }, seconds(90))) << clients->log();
  std::unique_ptr<Child> stream, waiting;
  for (int i = 0; i < kServers; ++i) {
    // Restarted while it has work: the drain must finish it.
    ASSERT_TRUE(eventually([&] { return active(i, "coder") >= 1; }, seconds(60))) << "server " << i << " idle";
    if (i == 0) {
      // Server 0 alone keeps "solo" loaded: a stream there, and a request
      // queued behind it that has not started. The drain finishes the
      // stream and gives the queued one back (503), which nginx sends on.
      stream = edge_request("roll-solo-stream", solo_body(true, 2000));
      ASSERT_TRUE(eventually([&] { return edge_output("roll-solo-stream").find("data: {") != std::string::npos; },
                             seconds(60)));
      waiting = edge_request("roll-solo-queued", solo_body(false, 8));
      ASSERT_TRUE(eventually([&] { return queued(0, "solo") == 1; }, seconds(60)));
    }
    EXPECT_EQ(servers_[i]->stop(SIGTERM, seconds(90)), 0) << servers_[i]->log();
    ASSERT_TRUE(start_server(i)) << servers_[i]->log();
    ASSERT_TRUE(wait_ready(i)) << servers_[i]->log();
    // nginx sends it work again before the next one goes down.
    ASSERT_TRUE(eventually([&] { return requests_done(i) >= 2; }, seconds(60))) << "server " << i << " got no traffic";
  }
  const size_t after_restarts = records("roll").size();
  ASSERT_TRUE(eventually([&] { return records("roll").size() >= after_restarts + 6; }, seconds(60)));
  stop_clients("roll", *clients);

  const auto recs = records("roll");
  int complete = 0;
  for (const auto& r : recs) {
    EXPECT_TRUE(r["complete"].get<bool>()) << r.dump();
    complete += r["complete"].get<bool>();
  }
  EXPECT_EQ(complete, static_cast<int>(recs.size()));
  ASSERT_EQ(stream->wait(seconds(60)), 0);
  ASSERT_EQ(waiting->wait(seconds(60)), 0);
  const std::string streamed = edge_output("roll-solo-stream");
  EXPECT_TRUE(streamed.ends_with("data: [DONE]\n\n")) << tail(streamed, 500);
  EXPECT_NE(streamed.find("\"finish_reason\":\"length\""), std::string::npos);
  EXPECT_EQ(streamed.find("\"error\""), std::string::npos) << tail(streamed, 500);
  EXPECT_EQ(edge_status("roll-solo-queued"), 200) << edge_output("roll-solo-queued");
  const auto log = access_log();
  ASSERT_TRUE(log.count("roll-solo-queued"));
  const auto ups = split_upstreams(log.at("roll-solo-queued")["upstream"]);
  ASSERT_GE(ups.size(), 2u) << log.at("roll-solo-queued").dump();
  EXPECT_EQ(ups.front(), addr(0));
  EXPECT_NE(ups.back(), addr(0));
  EXPECT_NE(log.at("roll-solo-queued")["upstream_status"].get<std::string>().find("503"), std::string::npos)
      << "given back by the draining server: " << log.at("roll-solo-queued").dump();
  int retried = 0;
  for (const auto& [id, l] : log) {
    if (split_upstreams(l["upstream"]).size() >= 2) ++retried;
    if (id.starts_with("roll-")) {
      EXPECT_EQ(l["status"], 200) << l.dump();
    }
  }
  std::printf("rolling restart: %zu requests, %d complete, %d retried on another server\n", recs.size(), complete,
              retried);
}

}  // namespace
}  // namespace codey
