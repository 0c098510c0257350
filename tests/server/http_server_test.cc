// Tests of codey's HTTP/1.1 server (src/server/http_server.cc) in process,
// with tiny limits: routing, keep-alive and pipelining, chunked and
// compressed bodies, the gate before any body byte, deadlines, the
// connection cap and the request memory budget. Deadlines are set short so
// the tests wait for states (a response, a closed socket), never for time.
#include "server/http_server.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "server/serve_testing.h"

namespace codey::server {
namespace {

using serve_testing::RawClient;
using serve_testing::raw_status;

class TestServer {
 public:
  explicit TestServer(HttpServerOptions o = {}, HttpHooks hooks = {}) {
    if (!hooks.gate)
      hooks.gate = [](const HttpRequest& r) -> std::optional<HttpResponse> {
        if (r.path() == "/health" || r.header("Authorization") == "Bearer k") return std::nullopt;
        HttpResponse res;
        res.status = 401;
        res.set_content("no key\n", "text/plain");
        return res;
      };
    http_ = std::make_unique<HttpServer>(std::move(o), std::move(hooks));
    http_->route("GET", "/health", [](HttpRequest&, HttpResponse& res) { res.set_content("ok", "text/plain"); }, true);
    http_->route("POST", "/echo", [this](HttpRequest& req, HttpResponse& res) {
      ++handled;
      res.set_content(req.body, "application/octet-stream");
    });
    http_->route("GET", "/models/{}/x/{*}", [](HttpRequest& req, HttpResponse& res) {
      res.set_content(req.params.at(0) + "|" + req.params.at(1), "text/plain");
    });
    http_->route("GET", "/stream", [](HttpRequest&, HttpResponse& res) {
      res.stream = [](StreamSink& s) { return s.write("a") && s.write("bc") && s.write("") && s.write("d"); };
    });
    http_->route("GET", "/slow", [this](HttpRequest&, HttpResponse& res) {
      ++slow_started;
      while (!release_slow) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      res.set_content("slow", "text/plain");
    });
    EXPECT_TRUE(http_->bind("127.0.0.1", 0).has_value());
    thread_ = std::thread([this] { http_->serve(); });
  }
  ~TestServer() {
    release_slow = true;
    http_->stop();
    thread_.join();
  }
  int port() const { return http_->port(); }
  HttpStats stats() const { return http_->stats(); }

  std::atomic<int> handled{0};
  std::atomic<bool> release_slow{false};
  std::atomic<int> slow_started{0};

 private:
  std::unique_ptr<HttpServer> http_;
  std::thread thread_;
};

std::string body_of(const std::string& response) {
  const size_t p = response.find("\r\n\r\n");
  return p == std::string::npos ? "" : response.substr(p + 4);
}

TEST(HttpServer, RoutesKeepAliveAndPipelining) {
  TestServer s;
  RawClient c(s.port());
  ASSERT_TRUE(c.ok());
  // Two requests in one write, answered in order on the same connection.
  ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\nContent-Length: 5\r\n\r\nhello"
                     "GET /models/m%20a/x/a/b HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n\r\n"));
  std::string got;
  while (got.find("m a|a/b") == std::string::npos && c.readable(std::chrono::seconds(30))) {
    char buf[4096];
    const ssize_t n = ::recv(c.fd(), buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  EXPECT_EQ(raw_status(got), 200) << got;
  EXPECT_LT(got.find("hello"), got.find("m a|a/b")) << got;
  // HEAD of a GET route: its length, no body; unknown routes and methods.
  RawClient h(s.port());
  ASSERT_TRUE(h.send("HEAD /models/a/x/b HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\nConnection: close\r\n\r\n"));
  const std::string head = h.read_all();
  EXPECT_EQ(raw_status(head), 200) << head;
  EXPECT_NE(head.find("Content-Length: 3"), std::string::npos) << head;
  EXPECT_EQ(body_of(head), "");
  RawClient m(s.port());
  ASSERT_TRUE(m.send("GET /echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\nConnection: close\r\n\r\n"));
  const std::string not_allowed = m.read_all();
  EXPECT_EQ(raw_status(not_allowed), 405) << not_allowed;
  EXPECT_NE(not_allowed.find("Allow: POST"), std::string::npos);
  RawClient n(s.port());
  ASSERT_TRUE(n.send("GET /nothing HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\nConnection: close\r\n\r\n"));
  EXPECT_EQ(raw_status(n.read_all()), 404);
}

TEST(HttpServer, ChunkedAndCompressedBodiesAndStreams) {
  TestServer s;
  RawClient c(s.port());
  ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\nTransfer-Encoding: chunked\r\n"
                     "Expect: 100-continue\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"));
  std::string r = c.read_response();
  // "100 Continue" first, then the answer.
  EXPECT_TRUE(r.starts_with("HTTP/1.1 100 Continue\r\n\r\n")) << r;
  EXPECT_TRUE(r.ends_with("\r\n\r\nabcde") || r.find("abcde") != std::string::npos) << r;
  const std::string gz = serve_testing::gzip_zero_bomb(3);
  RawClient g(s.port());
  ASSERT_TRUE(g.send(fmt::format("POST /echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\nContent-Encoding: gzip\r\n"
                                 "Content-Length: {}\r\nConnection: close\r\n\r\n",
                                 gz.size()) +
                     gz));
  const std::string inflated = g.read_all();
  EXPECT_EQ(raw_status(inflated), 200);
  EXPECT_EQ(body_of(inflated), std::string(1 + 258 * 3, '\0'));
  RawClient st(s.port());
  ASSERT_TRUE(st.send("GET /stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\nConnection: close\r\n\r\n"));
  const std::string chunks = st.read_all();
  EXPECT_NE(chunks.find("Transfer-Encoding: chunked"), std::string::npos);
  EXPECT_TRUE(chunks.ends_with("1\r\na\r\n2\r\nbc\r\n1\r\nd\r\n0\r\n\r\n")) << chunks;
}

TEST(HttpServer, TheGateAnswersBeforeABodyIsRead) {
  TestServer s;
  // A body of 1 GiB announced, none sent: the refusal comes at once.
  RawClient c(s.port());
  ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\nContent-Encoding: gzip\r\n\r\n"));
  const std::string r = c.read_response();
  EXPECT_EQ(raw_status(r), 401) << r;
  EXPECT_NE(r.find("Connection: close"), std::string::npos) << r;
  // With the key, the announced size alone is refused (413) before reading.
  RawClient big(s.port());
  ASSERT_TRUE(big.send("POST /echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\nContent-Length: 1073741824\r\n\r\n"));
  EXPECT_EQ(raw_status(big.read_response()), 413);
  RawClient enc(s.port());
  ASSERT_TRUE(enc.send("POST /echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\nContent-Encoding: br\r\n"
                       "Content-Length: 4\r\n\r\nabcd"));
  EXPECT_EQ(raw_status(enc.read_response()), 415);
  EXPECT_EQ(s.stats().body_bytes_read, 0u);
  EXPECT_EQ(s.handled, 0);
}

TEST(HttpServer, ABombInflatesOnlyUpToTheLimit) {
  HttpServerOptions o;
  o.limits.max_body = 1 << 20;
  TestServer s(o);
  const std::string bomb = serve_testing::gzip_zero_bomb(uint64_t(1) << 20);  // 256 MiB in 256 KiB
  RawClient c(s.port());
  ASSERT_TRUE(c.send(fmt::format("POST /echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\nContent-Encoding: gzip\r\n"
                                 "Content-Length: {}\r\n\r\n",
                                 bomb.size()) +
                     bomb));
  const std::string r = c.read_response();
  EXPECT_EQ(raw_status(r), 413) << r.substr(0, 300);
  EXPECT_NE(r.find("decompressed"), std::string::npos);
  EXPECT_EQ(s.handled, 0);
}

TEST(HttpServer, SlowHeadsAndBodiesTimeOut) {
  HttpServerOptions o;
  o.header_timeout = Millis(300);
  o.body_timeout = Millis(300);
  o.idle_timeout = Millis(300);
  TestServer s(o);
  RawClient head(s.port());
  ASSERT_TRUE(head.send("GET /health HTTP/1.1\r\nHost: x\r\n"));  // never finished
  const std::string r = head.read_all();
  EXPECT_EQ(raw_status(r), 408) << r;
  RawClient body(s.port());
  ASSERT_TRUE(body.send("POST /echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\nContent-Length: 10\r\n\r\nabc"));
  EXPECT_EQ(raw_status(body.read_all()), 408);
  // An idle keep-alive connection is closed quietly.
  RawClient idle(s.port());
  ASSERT_TRUE(idle.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"));
  const std::string answered = idle.read_all();  // returns at the close
  EXPECT_EQ(raw_status(answered), 200);
  EXPECT_EQ(answered.find("408"), std::string::npos);
  EXPECT_GE(s.stats().timeouts, 2u);
}

// Slowloris: more trickling connections than the cap, and /health still
// answers (the I/O thread serves it; the slowest connections make room).
TEST(HttpServer, TricklingConnectionsDoNotStarveOthers) {
  HttpServerOptions o;
  o.max_connections = 20;
  o.threads = 2;
  TestServer s(o);
  std::vector<std::unique_ptr<RawClient>> slow;
  for (int i = 0; i < 40; ++i) {
    slow.push_back(std::make_unique<RawClient>(s.port()));
    ASSERT_TRUE(slow.back()->send("GET /health HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n"));
  }
  for (int round = 0; round < 3; ++round)
    for (auto& c : slow) c->send("X-B: 2\r\n");
  for (int i = 0; i < 5; ++i) {
    RawClient h(s.port());
    ASSERT_TRUE(h.send("GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    EXPECT_EQ(raw_status(h.read_all()), 200) << i;
  }
  const HttpStats st = s.stats();
  EXPECT_GE(st.connections_evicted, 20u);
  EXPECT_LE(st.connections_open, 20u);
}

TEST(HttpServer, BusyHandlersAreNeverEvicted) {
  HttpServerOptions o;
  o.max_connections = 2;
  o.threads = 4;
  TestServer s(o);
  RawClient a(s.port()), b(s.port());
  ASSERT_TRUE(a.send("GET /slow HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n\r\n"));
  ASSERT_TRUE(b.send("GET /slow HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n\r\n"));
  // Both are being handled; a third connection is refused, not one of them.
  for (int i = 0; i < 6000 && s.slow_started < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_EQ(s.slow_started, 2);
  RawClient c(s.port());
  EXPECT_EQ(raw_status(c.read_response()), 503);
  s.release_slow = true;
  EXPECT_EQ(raw_status(a.read_response()), 200);
  EXPECT_EQ(raw_status(b.read_response()), 200);
  EXPECT_GE(s.stats().connections_refused, 1u);
}

TEST(HttpServer, RequestMemoryIsBudgeted) {
  HttpServerOptions o;
  o.request_memory = request_cost(1000) + request_cost(0);  // one 1000-byte request at a time, plus a small one
  o.threads = 4;
  TestServer s(o);
  RawClient slow(s.port());
  ASSERT_TRUE(slow.send("POST /echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\nContent-Length: 1000\r\n\r\nab"));
  for (int i = 0; i < 2000 && s.stats().request_memory_used < request_cost(1000); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  RawClient other(s.port());
  ASSERT_TRUE(other.send("POST /echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\nContent-Length: 1000\r\n\r\n"));
  const std::string r = other.read_response();
  EXPECT_EQ(raw_status(r), 503) << r;
  EXPECT_NE(r.find("Retry-After: 1"), std::string::npos);
  ASSERT_TRUE(slow.send(std::string(998, 'c')));
  EXPECT_EQ(raw_status(slow.read_response()), 200);
  for (int i = 0; i < 2000 && s.stats().request_memory_used > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(s.stats().request_memory_used, 0u);
  EXPECT_EQ(s.stats().request_memory_refusals, 1u);
}

TEST(HttpServer, ALongRequestLineIsRefusedWhileItArrives) {
  TestServer s;
  RawClient c(s.port());
  ASSERT_TRUE(c.send("GET /"));
  uint64_t sent = 0;
  const std::string chunk(64 << 10, 'a');
  while (sent < (64u << 20) && !c.readable(std::chrono::milliseconds(0))) {
    if (!c.send(chunk)) break;
    sent += chunk.size();
  }
  const std::string r = c.read_response();
  EXPECT_EQ(raw_status(r), 414) << r.substr(0, 200);
  // The refusal came after about the limit, not after the whole line (TCP
  // buffers hold a few MiB more).
  EXPECT_LT(sent, 16u << 20);
}

}  // namespace
}  // namespace codey::server
