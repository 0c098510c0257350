// Regression tests of the hardening review (issue #16) against the built
// `codey serve`: each reproduces one finding - a slowloris, a gzip bomb
// before auth, an endless request line, ... - and checks the server answers
// it cleanly and keeps serving. They assert on states (a status, bytes the
// server took, CPU seconds it spent, its peak memory), with generous
// deadlines only so that a broken server fails instead of hanging.
// CODEY_TEST_SERVE_BINARY=/path/to/old/codey runs them against another build
// (the config below uses only keys every build knows).
#include <gtest/gtest.h>

#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "server/serve_testing.h"
#include "testing/testing.h"

namespace codey {
namespace {

using namespace serve_testing;  // NOLINT: the helpers are this file's vocabulary
using nlohmann::json;

class Hardening : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(temp_dir());
    const std::string tiny = synth_tiny(*dir_);
    // Finding 8: templates inside a GGUF are untrusted code.
    copy_with_template(tiny, *dir_ + "/cycle.gguf", "{% set ns = namespace(x=0) %}{% set ns.x = ns %}{{ ns }}");
    copy_with_template(tiny, *dir_ + "/deep.gguf",
                       "{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% for j in range(20) %}"
                       "{% set ns.l = [ns.l] %}{% endfor %}{% endfor %}{{ ns.l|length }}");
    copy_with_template(tiny, *dir_ + "/loops.gguf",
                       "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}");
    copy_with_template(tiny, *dir_ + "/ljust.gguf", "{{ 'a'.ljust(3000000000) }}");
    std::ofstream(*dir_ + "/codey.yaml") << R"(memory_budget: 512MiB
threads: 1
models:
  tiny: {path: tiny.gguf, ctx: 512, parallel: 2, queue: 8}
  cycle: {path: cycle.gguf, ctx: 512}
  deep: {path: deep.gguf, ctx: 512}
  loops: {path: loops.gguf, ctx: 512}
  ljust: {path: ljust.gguf, ctx: 512}
server:
  host: 127.0.0.1
  port: 0
  api_key: env:CODEY_E2E_KEY
  max_body: 16MiB
  allowed_origins: ["https://*.trusted.example"]
  allowed_hosts: [codey.internal]
)";
    setenv("CODEY_E2E_KEY", kKey, 1);
    setenv("CODEY_ORIGINS", "https://env.example, http://other.example:8080", 1);
    server_ = new ServeProcess({"--config", *dir_ + "/codey.yaml"}, *dir_ + "/serve.log");
  }
  static void TearDownTestSuite() {
    delete server_;
    delete dir_;
  }
  void SetUp() override {
    ASSERT_TRUE(server_->ok()) << "codey serve did not start:\n" << server_->log();
    ASSERT_EQ(curl("GET", url() + "/health", "", "--max-time 20", false).status, 200) << "the server is up";
  }
  void TearDown() override {
    if (HasFailure()) std::fprintf(stderr, "--- codey serve log ---\n%s\n", server_->log().c_str());
    // Whatever the test did, the server still answers.
    EXPECT_EQ(curl("GET", url() + "/health", "", "--max-time 20", false).status, 200) << "the server is still up";
  }
  static const std::string& url() { return server_->url(); }
  static int port() { return std::atoi(url().c_str() + url().rfind(':') + 1); }
  static int pid() { return server_->pid(); }

  static std::string* dir_;
  static ServeProcess* server_;
};
std::string* Hardening::dir_ = nullptr;
ServeProcess* Hardening::server_ = nullptr;

// Finding 3: connections trickling header lines held every HTTP thread and
// /health timed out. Now heads are read on the I/O thread with a deadline,
// the slowest connections make room at the cap, and /health answers.
TEST_F(Hardening, SlowlorisDoesNotStarveHealth) {
  REQUIRE_CURL();
  std::vector<std::unique_ptr<RawClient>> slow;
  for (int i = 0; i < 300; ++i) {
    slow.push_back(std::make_unique<RawClient>(port()));
    slow.back()->send("GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n");
  }
  for (auto& c : slow) c->send("X-Trickle: 1\r\n");
  // While they trickle, health checks answer (each with a 15 s deadline).
  for (int i = 0; i < 3; ++i) {
    for (auto& c : slow) c->send("X-Trickle: 2\r\n");
    EXPECT_EQ(curl("GET", url() + "/health", "", "--max-time 15", false).status, 200) << i;
  }
  // And the server ends every trickling connection (its header deadline, or
  // to make room), though each keeps sending a line a second.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  size_t open = slow.size();
  while (open > 0 && std::chrono::steady_clock::now() < until) {
    open = 0;
    for (auto& c : slow) {
      if (!c->ok()) continue;
      if (c->readable(std::chrono::milliseconds(0))) {
        c->close();  // answered (408) or closed: done with it
        continue;
      }
      ++open;
      c->send("X-Trickle: 3\r\n");
    }
    if (open > 0) std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  EXPECT_EQ(open, 0u) << "connections still open after 90 s of trickling";
}

// Finding 4: a 4 MiB gzip body inflating to 4 GiB cost ~10 s of CPU before
// the 401. Now the key is checked on the head: no byte is read or inflated.
TEST_F(Hardening, GzipBombIsRefusedBeforeAuth) {
  const std::string bomb = gzip_zero_bomb(uint64_t(1) << 24);  // 4 GiB of zeros in 4 MiB
  for (const char* path : {"/v1/chat/completions", "/api/chat", "/api/generate"}) {
    const double cpu0 = cpu_seconds(pid());
    RawClient c(port());
    ASSERT_TRUE(c.ok());
    c.send(fmt::format("POST {} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer wrong\r\n"
                       "Content-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
                       path, bomb.size()));
    c.send(bomb);  // may fail once the server closed: it did not want it
    const std::string r = c.read_response();
    EXPECT_EQ(raw_status(r), 401) << path << ": " << r.substr(0, 300);
    const double cpu = cpu_seconds(pid()) - cpu0;
    EXPECT_LT(cpu, 1.0) << path << ": the server spent " << cpu << " s of CPU on a request it refused";
  }
}

// The same bomb with the key: inflated only up to max_body, then 413.
TEST_F(Hardening, GzipBombWithTheKeyStopsAtMaxBody) {
  const std::string bomb = gzip_zero_bomb(uint64_t(1) << 24);
  const double cpu0 = cpu_seconds(pid());
  const uint64_t hwm0 = proc_status_kib(pid(), "VmHWM:");
  RawClient c(port());
  ASSERT_TRUE(c.ok());
  c.send(fmt::format("POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n"
                     "Content-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
                     kKey, bomb.size()));
  c.send(bomb);
  const std::string r = c.read_response();
  EXPECT_EQ(raw_status(r), 413) << r.substr(0, 300);
  const double cpu = cpu_seconds(pid()) - cpu0;
  EXPECT_LT(cpu, 1.0) << "the server spent " << cpu << " s of CPU inflating past max_body";
  const uint64_t grew_kib = proc_status_kib(pid(), "VmHWM:") - hwm0;
  EXPECT_LT(grew_kib, 256u << 10) << "peak memory grew by " << grew_kib << " KiB";
}

// Finding 5: a 256 MiB request line without a newline grew the server by
// ~520 MB before a limit applied. Now it is refused (414) once it passes the
// request-line limit, while it arrives.
TEST_F(Hardening, EndlessRequestLineIsRefusedWhileItArrives) {
  const uint64_t hwm0 = proc_status_kib(pid(), "VmHWM:");
  RawClient c(port());
  ASSERT_TRUE(c.ok());
  c.send("GET /");
  const std::string chunk(64 << 10, 'a');
  uint64_t sent = 0;
  while (sent < (256u << 20) && !c.readable(std::chrono::milliseconds(0))) {
    if (!c.send(chunk)) break;
    sent += chunk.size();
  }
  const std::string r = c.read_response();
  EXPECT_EQ(raw_status(r), 414) << r.substr(0, 300);
  EXPECT_LT(sent, 32u << 20) << "the server took " << sent << " bytes of a request line";
  const uint64_t grew_kib = proc_status_kib(pid(), "VmHWM:") - hwm0;
  EXPECT_LT(grew_kib, 64u << 10) << "peak memory grew by " << grew_kib << " KiB";
}

// Finding 1: one 40 KB request crashed the server: the tool call's arguments
// string was parsed again without the body's depth limit, then copied and
// converted recursively. Now it is a 400 naming the field, on both APIs.
TEST_F(Hardening, DeepToolCallArgumentsAreA400) {
  REQUIRE_CURL();
  const std::string args = "{\"a\":" + std::string(20000, '[') + std::string(20000, ']') + "}";
  const json call = {{"id", "c1"}, {"type", "function"}, {"function", {{"name", "f"}, {"arguments", args}}}};
  const json messages = json::array({{{"role", "user"}, {"content", "x"}},
                                     {{"role", "assistant"}, {"content", ""}, {"tool_calls", json::array({call})}}});
  for (const char* path : {"/v1/chat/completions", "/api/chat"}) {
    const json body = {{"model", "tiny"}, {"messages", messages}, {"stream", false}, {"max_tokens", 2}};
    Http h = curl("POST", url() + path, body.dump());
    EXPECT_EQ(h.status, 400) << path << ": " << h.body.substr(0, 300);
    EXPECT_NE(h.body.find("tool_calls[0].function.arguments"), std::string::npos) << path << ": " << h.body;
    EXPECT_EQ(curl("GET", url() + "/health", "", "--max-time 20", false).status, 200) << path;
  }
  // The same depth as an object (Ollama's form) is the body's own depth: 400 too.
  const std::string raw = R"({"model":"tiny","stream":false,"messages":[{"role":"assistant","content":"",)"
                          R"("tool_calls":[{"function":{"name":"f","arguments":)" +
                          args + "}}]}]}";
  Http o = curl("POST", url() + "/api/chat", raw);
  EXPECT_EQ(o.status, 400) << o.body.substr(0, 300);
}

// Finding 7: an 8 MiB body of "[],[],..." cost ~195 MiB to parse; four at
// once peaked at 956 MiB. Now the parse stops at 262144 values.
TEST_F(Hardening, ManyTinyValuesStayBounded) {
  REQUIRE_CURL();
  std::string body = R"({"model":"tiny","messages":[)";
  while (body.size() < (8u << 20)) body += "[],";
  body += "[]]}";
  const uint64_t hwm0 = proc_status_kib(pid(), "VmHWM:");
  std::vector<std::unique_ptr<BackgroundCurl>> clients;
  for (int i = 0; i < 4; ++i) clients.push_back(std::make_unique<BackgroundCurl>(url() + "/v1/chat/completions", body));
  for (auto& c : clients) {
    ASSERT_TRUE(c->wait(std::chrono::seconds(120)));
    EXPECT_NE(c->output().find("more than 262144 values"), std::string::npos) << c->output().substr(0, 300);
  }
  const uint64_t grew_mib = (proc_status_kib(pid(), "VmHWM:") - hwm0) / 1024;
  EXPECT_LT(grew_mib, 300u) << "peak memory grew by " << grew_mib << " MiB for four 8 MiB bodies";
  std::printf("four 8 MiB bodies of [],[],...: peak memory +%llu MiB\n", static_cast<unsigned long long>(grew_mib));
}

// Finding 8: a namespace holding itself and a 2M-deep list crashed the
// process (SIGSEGV); nested range(100000) loops never ended and grew memory;
// ljust(3e9) had no cap. Now each request fails (or, for the namespace,
// renders like Python does) and the server keeps serving.
TEST_F(Hardening, HostileTemplatesFailTheRequestNotTheServer) {
  REQUIRE_CURL();
  const std::string chat = R"("messages":[{"role":"user","content":"hi"}],"max_tokens":2,"stream":false})";
  Http cycle = curl("POST", url() + "/v1/chat/completions", R"({"model":"cycle",)" + chat);
  EXPECT_EQ(cycle.status, 200) << cycle.body.substr(0, 300);
  const uint64_t hwm0 = proc_status_kib(pid(), "VmHWM:");
  struct Case {
    const char* model;
    const char* message;
  };
  for (const Case& c : {Case{"deep", "nest deeper than the template limit"},
                        Case{"loops", "SandboxError: the template ran"},
                        Case{"ljust", "larger than the template limit"}}) {
    Http h = curl("POST", url() + "/v1/chat/completions", std::string(R"({"model":")") + c.model + "\"," + chat,
                  "--max-time 120");
    EXPECT_EQ(h.status, 400) << c.model << ": " << h.body.substr(0, 300);
    EXPECT_NE(h.body.find(c.message), std::string::npos) << c.model << ": " << h.body.substr(0, 300);
    EXPECT_EQ(curl("GET", url() + "/health", "", "--max-time 20", false).status, 200) << c.model;
  }
  const uint64_t grew_mib = (proc_status_kib(pid(), "VmHWM:") - hwm0) / 1024;
  EXPECT_LT(grew_mib, 600u) << "peak memory grew by " << grew_mib << " MiB";
  std::printf("hostile templates: peak memory +%llu MiB\n", static_cast<unsigned long long>(grew_mib));
}

// One raw request; the response (head and body).
std::string raw_request(int port, std::string_view method, std::string_view path,
                        const std::vector<std::string>& headers, std::string_view body = "") {
  RawClient c(port);
  if (!c.ok()) return {};
  std::string req = fmt::format("{} {} HTTP/1.1\r\nConnection: close\r\n", method, path);
  for (const auto& h : headers) req += h + "\r\n";
  if (!body.empty() || method == "POST") req += fmt::format("Content-Length: {}\r\n", body.size());
  req += "\r\n";
  req += body;
  c.send(req);
  return c.read_all(std::chrono::seconds(30));
}

bool has_header(const std::string& response, std::string_view line) {
  const std::string head = response.substr(0, response.find("\r\n\r\n"));
  return head.find(std::string("\r\n") + std::string(line) + "\r\n") != std::string::npos ||
         head.ends_with(std::string("\r\n") + std::string(line));
}

// Finding 6: a web page could send a text/plain POST (no CORS preflight) that
// started a generation or unloaded a model, and a DNS-rebinding page reached
// the server under its own name. The Origin and Host are checked before the
// key and the body, a browser's POST must be application/json, and allowed
// origins get proper CORS answers.
TEST_F(Hardening, CrossSiteRequestsAreRefused) {
  const std::string auth = std::string("Authorization: Bearer ") + kKey;
  const std::string gen = R"({"model":"tiny","prompt":"hi","stream":false,"options":{"num_predict":2}})";
  const std::string evil = "Origin: https://evil.example";
  // The attacks of the review, even with the key: refused before any work.
  std::string r = raw_request(port(), "POST", "/api/generate", {"Host: 127.0.0.1", evil, "Content-Type: text/plain", auth}, gen);
  EXPECT_EQ(raw_status(r), 403) << r;
  EXPECT_NE(r.find("Origin 'https://evil.example' is not allowed"), std::string::npos) << r;
  EXPECT_FALSE(has_header(r, "Access-Control-Allow-Origin: https://evil.example")) << r;
  r = raw_request(port(), "POST", "/codey/models/tiny/unload", {"Host: 127.0.0.1", evil, "Content-Type: text/plain", auth});
  EXPECT_EQ(raw_status(r), 403) << r;
  r = raw_request(port(), "GET", "/v1/models", {"Host: 127.0.0.1", "Origin: null", auth});
  EXPECT_EQ(raw_status(r), 403) << r;
  // A text/plain (or form) body is refused even from an allowed or no origin.
  for (const char* ct : {"text/plain", "text/plain;charset=UTF-8", "multipart/form-data; boundary=x"}) {
    r = raw_request(port(), "POST", "/api/generate", {"Host: 127.0.0.1", std::string("Content-Type: ") + ct, auth}, gen);
    EXPECT_EQ(raw_status(r), 415) << ct << ": " << r;
    r = raw_request(port(), "POST", "/v1/completions",
                    {"Host: localhost", "Origin: http://localhost:3000", std::string("Content-Type: ") + ct, auth}, gen);
    EXPECT_EQ(raw_status(r), 415) << ct << ": " << r;
  }
  r = raw_request(port(), "POST", "/api/generate",
                  {"Host: 127.0.0.1", "Origin: https://app.trusted.example", "Content-Type: application/x-www-form-urlencoded", auth},
                  gen);
  EXPECT_EQ(raw_status(r), 415) << r;
  // DNS rebinding: the page's own name in Host.
  for (const char* host : {"Host: evil.example", "Host: evil.example:11435", "Host: localhost.evil.example",
                           "Host: a b", "Host: [::1"}) {
    r = raw_request(port(), "GET", "/v1/models", {host, auth});
    EXPECT_EQ(raw_status(r), 403) << host << ": " << r;
  }
  r = raw_request(port(), "GET", "/health", {"Host: evil.example"});
  EXPECT_EQ(raw_status(r), 403) << r;

  // What must keep working: loopback names and addresses, allowed names, curl's default form type.
  for (const char* host : {"Host: 127.0.0.1", "Host: localhost", "Host: LOCALHOST:11435", "Host: [::1]:80",
                           "Host: 10.1.2.3", "Host: codey.internal:8080", "Host: x.localhost"}) {
    r = raw_request(port(), "GET", "/v1/models", {host, auth});
    EXPECT_EQ(raw_status(r), 200) << host << ": " << r;
  }
  r = raw_request(port(), "POST", "/api/generate",
                  {"Host: 127.0.0.1", "Content-Type: application/x-www-form-urlencoded", auth}, gen);
  EXPECT_EQ(raw_status(r), 200) << r;
  r = raw_request(port(), "POST", "/api/generate", {"Host: 127.0.0.1", auth}, gen);
  EXPECT_EQ(raw_status(r), 200) << r;

  // CORS for allowed origins: loopback pages, server.allowed_origins (a
  // wildcard), CODEY_ORIGINS, editors' webviews.
  for (const char* origin : {"http://localhost:3000", "http://127.0.0.1:5173", "https://app.trusted.example",
                             "https://env.example", "http://other.example:8080", "vscode-webview://abc123"}) {
    r = raw_request(port(), "OPTIONS", "/v1/chat/completions",
                    {"Host: 127.0.0.1", std::string("Origin: ") + origin, "Access-Control-Request-Method: POST",
                     "Access-Control-Request-Headers: authorization, content-type"});
    EXPECT_EQ(raw_status(r), 204) << origin << ": " << r;
    EXPECT_TRUE(has_header(r, std::string("Access-Control-Allow-Origin: ") + origin)) << r;
    EXPECT_TRUE(has_header(r, "Access-Control-Allow-Headers: authorization, content-type")) << r;
    EXPECT_NE(r.find("Access-Control-Allow-Methods: "), std::string::npos) << r;
    r = raw_request(port(), "POST", "/api/generate",
                    {"Host: 127.0.0.1", std::string("Origin: ") + origin, "Content-Type: application/json", auth}, gen);
    EXPECT_EQ(raw_status(r), 200) << origin << ": " << r;
    EXPECT_TRUE(has_header(r, std::string("Access-Control-Allow-Origin: ") + origin)) << r;
    EXPECT_TRUE(has_header(r, "Vary: Origin")) << r;
  }
  // A preflight from a page not allowed gets no CORS headers.
  for (const char* origin : {"https://evil.example", "https://trusted.example.evil.example", "http://env.example",
                             "https://other.example:8080", "http://localhost.evil.example"}) {
    r = raw_request(port(), "OPTIONS", "/v1/chat/completions",
                    {"Host: 127.0.0.1", std::string("Origin: ") + origin, "Access-Control-Request-Method: POST"});
    EXPECT_EQ(raw_status(r), 403) << origin << ": " << r;
    EXPECT_EQ(r.find("Access-Control-Allow-Origin"), std::string::npos) << r;
  }
  // /api/show names the model's file, not where it lies on the server's disk.
  Http show = curl("POST", url() + "/api/show", R"({"model":"tiny"})");
  EXPECT_EQ(show.status, 200) << show.body;
  EXPECT_NE(show.body.find("FROM tiny.gguf"), std::string::npos) << show.body.substr(0, 300);
  EXPECT_EQ(show.body.find(*dir_), std::string::npos) << show.body.substr(0, 300);
  // The model was never unloaded by the refused requests, and the server serves.
  EXPECT_EQ(curl("POST", url() + "/v1/completions", R"({"model":"tiny","prompt":"a","max_tokens":2})").status, 200);
}

}  // namespace
}  // namespace codey
