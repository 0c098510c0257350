// The HTTP/1.1 server (see http_server.h). Threads: one I/O thread owns every
// socket's lifetime (accept, read, deadlines, close) and writes the small
// responses it makes itself; handler threads own a connection only while
// they run its request and write its response, then hand it back through
// `returned_` and the wake-up pipe.
#include "server/http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include <fmt/format.h>

namespace codey::server {
namespace {

constexpr size_t kReadChunk = 64 << 10;
constexpr Millis kLinger{2000};              // draining a refused request's body before the close
constexpr uint64_t kLingerMaxBytes = 16 << 20;
constexpr size_t kMaxAcceptsPerWake = 64;
constexpr uint64_t kHeadCost = 16 << 10;     // a request's head, buffers and bookkeeping
constexpr uint64_t kParseCostCap = 24 << 20; // the JSON document at most kMaxJsonValues values make
constexpr uint64_t kParseCostFactor = 40;    // bytes of document per body byte, worst case ("[]," -> 72 B)

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

struct Pattern {
  struct Segment {
    std::string literal;
    bool capture = false;  // "{}"
  };
  std::vector<Segment> segments;
  bool rest = false;  // ends in "{*}"
};

Pattern compile(std::string_view p) {
  Pattern out;
  CODEY_ASSERT(p.starts_with('/'));
  p.remove_prefix(1);
  while (true) {
    const size_t slash = p.find('/');
    std::string_view seg = p.substr(0, slash);
    if (seg == "{*}") {
      CODEY_ASSERT(slash == std::string_view::npos);
      out.rest = true;
      break;
    }
    out.segments.push_back(seg == "{}" ? Pattern::Segment{"", true} : Pattern::Segment{std::string(seg), false});
    if (slash == std::string_view::npos) break;
    p.remove_prefix(slash + 1);
  }
  return out;
}

// Matches a decoded path; fills the captures.
bool match(const Pattern& pat, std::string_view path, std::vector<std::string>& params) {
  params.clear();
  if (!path.starts_with('/')) return false;
  path.remove_prefix(1);
  for (size_t i = 0; i < pat.segments.size(); ++i) {
    const bool last = i + 1 == pat.segments.size();
    const size_t slash = path.find('/');
    if (slash == std::string_view::npos && !last) return false;
    if (slash == std::string_view::npos && last && pat.rest) return false;
    const std::string_view seg = path.substr(0, slash);
    if (pat.segments[i].capture) {
      if (seg.empty()) return false;
      params.emplace_back(seg);
    } else if (seg != pat.segments[i].literal) {
      return false;
    }
    if (last) {
      if (pat.rest) {
        const std::string_view rest = path.substr(slash + 1);
        if (rest.empty()) return false;
        params.emplace_back(rest);
        return true;
      }
      return slash == std::string_view::npos;
    }
    path.remove_prefix(slash + 1);
  }
  if (pat.rest) {  // "/{*}"
    if (path.empty()) return false;
    params.emplace_back(path);
    return true;
  }
  return false;
}

void set_nonblocking(int fd) {
  const int flags = fcntl(fd, F_GETFL, 0);
  if (flags >= 0) fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

// Sends all of `data` on a non-blocking socket, waiting at most `timeout`
// for each bit of progress. false when the client is gone or too slow.
bool send_all(int fd, std::string_view data, Millis timeout) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd, POLLOUT, 0};
      const int r = ::poll(&p, 1, static_cast<int>(timeout.count()));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0 || (p.revents & (POLLERR | POLLHUP | POLLNVAL))) return false;
      continue;
    }
    return false;
  }
  return true;
}

bool no_body_status(int status) { return status == 204 || status == 304 || (status >= 100 && status < 200); }

// The status line and header fields of `res` (framing fields added here).
std::string response_head(const HttpResponse& res, const RequestHead& req, bool close, bool chunked,
                          Millis idle_timeout) {
  std::string out = fmt::format("HTTP/1.1 {} {}\r\n", res.status, http_reason(res.status));
  for (const auto& h : res.headers) {
    if (iequals(h.name, "Content-Length") || iequals(h.name, "Transfer-Encoding") || iequals(h.name, "Connection"))
      continue;  // framing is the server's
    out += h.name;
    out += ": ";
    out += h.value;
    out += "\r\n";
  }
  if (!no_body_status(res.status)) {
    if (chunked) out += "Transfer-Encoding: chunked\r\n";
    else out += fmt::format("Content-Length: {}\r\n", res.body.size());
  }
  if (close) {
    out += "Connection: close\r\n";
  } else {
    if (req.minor_version == 0) out += "Connection: keep-alive\r\n";
    out += fmt::format("Keep-Alive: timeout={}\r\n", std::max<int64_t>(1, idle_timeout.count() / 1000));
  }
  out += "\r\n";
  return out;
}

}  // namespace

uint64_t request_cost(uint64_t body_bytes) {
  return kHeadCost + body_bytes + std::min(kParseCostCap, body_bytes * kParseCostFactor);
}

void HttpResponse::set_header(std::string_view name, std::string value) {
  for (auto& h : headers)
    if (iequals(h.name, name)) {
      h.value = std::move(value);
      return;
    }
  headers.push_back({std::string(name), std::move(value)});
}

void HttpResponse::set_content(std::string content, std::string_view content_type) {
  body = std::move(content);
  set_header("Content-Type", std::string(content_type));
}

const std::string* HttpResponse::find_header(std::string_view name) const {
  for (const auto& h : headers)
    if (iequals(h.name, name)) return &h.value;
  return nullptr;
}

bool peer_closed(int fd) {
  if (fd < 0) return false;
  pollfd p{fd, static_cast<short>(POLLIN | POLLRDHUP), 0};
  if (poll(&p, 1, 0) <= 0) return false;
  if (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) return true;
  if (p.revents & POLLIN) {
    char c;
    const ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
  }
  return false;
}

// ------------------------------------------------------------------ impl --

struct HttpServer::Impl {
  struct Route {
    std::string method;
    Pattern pattern;
    HttpHandler handler;
    bool run_inline = false;
  };

  enum class State {
    kHead,    // reading a request head (or waiting for one: `fresh`)
    kBody,    // reading the body
    kBusy,    // a handler thread owns it
    kWrite,   // the I/O thread writes `out`
    kLinger,  // closing: written and shut for writing, reading what the client still sends
  };

  struct Conn {
    int fd = -1;
    std::string peer;
    int peer_port = 0;
    State state = State::kHead;
    bool fresh = true;          // no byte of the current request yet
    int requests = 0;           // requests started on this connection
    std::string in;             // read, not yet consumed
    std::string out;            // the I/O thread's pending write
    size_t out_pos = 0;
    bool close_after = false;   // after `out`: linger and close
    Clock::time_point deadline;
    Clock::time_point started;  // the current request's first byte (eviction order)
    uint64_t lingered = 0;
    // The request being read or handled.
    std::unique_ptr<HttpRequest> req;
    const Route* route = nullptr;
    ChunkedDecoder chunked;
    uint64_t reserved = 0;      // request memory held
    bool keep_alive = false;    // decided by the handler thread for the next request
  };

  HttpServerOptions opt;
  HttpHooks hooks;
  std::vector<Route> routes;

  int listen_fd = -1;
  int wake_r = -1, wake_w = -1;
  std::atomic<bool> stopping{false};

  // Owned by the I/O thread.
  std::map<int, std::unique_ptr<Conn>> conns;

  // Handler threads.
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Conn*> tasks;      // complete requests waiting for a thread
  std::vector<Conn*> returned;  // handed back to the I/O thread
  bool workers_stop = false;
  std::vector<std::thread> workers;

  // Stats and request memory.
  std::atomic<uint64_t> accepted{0}, evicted{0}, refused{0}, timeouts{0}, body_bytes{0}, mem_refusals{0};
  std::atomic<uint64_t> mem_used{0};
  std::atomic<uint64_t> open{0};

  Impl(HttpServerOptions o, HttpHooks h) : opt(std::move(o)), hooks(std::move(h)) {
    int p[2];
    CODEY_ASSERT(pipe2(p, O_NONBLOCK | O_CLOEXEC) == 0);
    wake_r = p[0];
    wake_w = p[1];
  }
  ~Impl() {
    for (auto& [fd, c] : conns) ::close(fd);
    if (listen_fd >= 0) ::close(listen_fd);
    ::close(wake_r);
    ::close(wake_w);
  }

  void wake() {
    const char c = 1;
    [[maybe_unused]] const ssize_t n = ::write(wake_w, &c, 1);
  }

  bool reserve(Conn& c, uint64_t bytes) {
    if (bytes <= c.reserved) return true;
    const uint64_t more = bytes - c.reserved;
    uint64_t cur = mem_used.load();
    do {
      if (cur + more > opt.request_memory) {
        ++mem_refusals;
        return false;
      }
    } while (!mem_used.compare_exchange_weak(cur, cur + more));
    c.reserved = bytes;
    return true;
  }
  void release(Conn& c) {
    mem_used -= c.reserved;
    c.reserved = 0;
  }

  // ---------------------------------------------------------- responses --

  HttpResponse error_response(const HttpRequest& req, const HttpError& e) {
    HttpResponse res;
    res.status = e.status;
    if (hooks.error) hooks.error(req, res, e);
    else res.set_content(e.message + "\n", "text/plain");
    return res;
  }

  // Queues a response the I/O thread writes itself (errors, inline routes).
  void respond_inline(Conn& c, HttpResponse res, bool close) {
    HttpRequest empty;
    const HttpRequest& req = c.req ? *c.req : empty;
    if (hooks.decorate) hooks.decorate(req, res);
    close = close || res.close || !req.head.keep_alive || stopping ||
            c.requests >= opt.max_requests_per_connection;
    c.out = response_head(res, req.head, close, false, opt.idle_timeout);
    if (req.head.method != "HEAD" && !no_body_status(res.status)) c.out += res.body;
    c.out_pos = 0;
    c.close_after = close;
    c.state = State::kWrite;
    c.deadline = Clock::now() + opt.write_timeout;
    if (hooks.done && c.req) hooks.done(req, res.status);
    release(c);
    c.req.reset();
    flush(c);
  }

  void respond_error(Conn& c, const HttpError& e, bool close) {
    HttpRequest empty;
    respond_inline(c, error_response(c.req ? *c.req : empty, e), close);
  }

  // Writes what it can of `out`; moves on when all is written.
  void flush(Conn& c) {
    while (c.out_pos < c.out.size()) {
      const ssize_t n = ::send(c.fd, c.out.data() + c.out_pos, c.out.size() - c.out_pos, MSG_NOSIGNAL);
      if (n > 0) {
        c.out_pos += static_cast<size_t>(n);
        c.deadline = Clock::now() + opt.write_timeout;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;  // poll for POLLOUT
      c.close_after = true;
      c.out.clear();
      c.out_pos = 0;
      begin_close(c, /*linger=*/false);
      return;
    }
    c.out.clear();
    c.out_pos = 0;
    if (c.close_after) begin_close(c, /*linger=*/true);
    else next_request(c);
  }

  // ------------------------------------------------------------ closing --

  // Lingering close: shut our side, read and drop what the client still
  // sends (a refused body) for a moment, so the response is not lost to a
  // reset. The I/O thread closes it at EOF or the deadline.
  void begin_close(Conn& c, bool linger) {
    release(c);
    c.req.reset();
    if (!linger || stopping) {
      c.state = State::kLinger;
      c.deadline = Clock::now();  // closed by the next expiry pass
      return;
    }
    ::shutdown(c.fd, SHUT_WR);
    c.state = State::kLinger;
    c.lingered = 0;
    c.in.clear();
    c.deadline = Clock::now() + kLinger;
  }

  void close_conn(int fd) {
    auto it = conns.find(fd);
    if (it == conns.end()) return;
    release(*it->second);
    ::close(fd);
    conns.erase(it);
    --open;
  }

  // -------------------------------------------------------------- reading --

  void next_request(Conn& c) {
    c.state = State::kHead;
    c.fresh = true;
    c.route = nullptr;
    c.chunked = ChunkedDecoder();
    c.deadline = Clock::now() + opt.idle_timeout;
    if (!c.in.empty()) {  // a pipelined request is already here
      c.fresh = false;
      c.started = Clock::now();
      c.deadline = c.started + opt.header_timeout;
      process(c);
    }
  }

  const Route* find_route(const std::string& method, const std::string& path, std::vector<std::string>& params,
                          std::string& allow) {
    const std::string& m = method == "HEAD" ? std::string("GET") : method;
    const Route* found = nullptr;
    std::vector<std::string> p;
    for (const auto& r : routes) {
      if (!match(r.pattern, path, p)) continue;
      if (r.method == m && !found) {
        found = &r;
        params = p;
      }
      if (allow.find(r.method) == std::string::npos) allow += (allow.empty() ? "" : ", ") + r.method;
    }
    return found;
  }

  // Parses what is buffered; acts on a complete head or body.
  void process(Conn& c) {
    if (c.state == State::kHead) {
      HeadParse p = parse_head(c.in, opt.limits);
      if (p.kind == HeadParse::kIncomplete) return;
      if (p.kind == HeadParse::kError) {
        c.req = std::make_unique<HttpRequest>();
        return respond_error(c, p.error, /*close=*/true);
      }
      c.in.erase(0, p.consumed);
      ++c.requests;
      c.req = std::make_unique<HttpRequest>();
      c.req->head = std::move(p.head);
      c.req->peer = c.peer;
      c.req->peer_port = c.peer_port;
      c.req->fd = c.fd;
      return on_head(c);
    }
    if (c.state == State::kBody) read_body(c);
  }

  void on_head(Conn& c) {
    HttpRequest& req = *c.req;
    const RequestHead& h = req.head;
    const bool body = h.has_body();
    // Before anything else: the gate (auth, Host, Origin, preflight).
    if (hooks.gate) {
      if (auto res = hooks.gate(req)) return respond_inline(c, std::move(*res), /*close=*/body);
    }
    std::string allow;
    c.route = find_route(h.method, h.path, req.params, allow);
    if (!c.route) {
      if (allow.empty())
        return respond_error(c, {404, fmt::format("no route {} {}", h.method, h.path)}, body);
      if (h.method == "OPTIONS") {
        HttpResponse res;
        res.status = 204;
        res.set_header("Allow", allow + ", OPTIONS");
        return respond_inline(c, std::move(res), body);
      }
      HttpResponse res = error_response(req, {405, fmt::format("{} {} is not allowed (allowed: {})", h.method, h.path, allow)});
      res.set_header("Allow", allow);
      return respond_inline(c, std::move(res), body);
    }
    if (h.content_length && *h.content_length > opt.limits.max_body)
      return respond_error(
          c, {413, fmt::format("the request body is larger than the limit of {} bytes", opt.limits.max_body)}, true);
    if (!h.content_encoding.empty() && !known_content_encoding(h.content_encoding))
      return respond_error(c, {415, fmt::format("Content-Encoding '{}' is not supported (gzip or deflate)", h.content_encoding)},
                           body);
    if (!reserve(c, request_cost(h.content_length.value_or(0)))) return refuse_memory(c);
    if (!body) return dispatch(c);
    if (h.expect_continue) {
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      // The socket has nothing queued yet: this fits (else the client waits and sends anyway).
      [[maybe_unused]] const ssize_t n = ::send(c.fd, kContinue.data(), kContinue.size(), MSG_NOSIGNAL);
    }
    c.state = State::kBody;
    c.deadline = Clock::now() + opt.body_timeout;
    read_body(c);
  }

  void refuse_memory(Conn& c) {
    HttpResponse res = error_response(
        *c.req, {503, "the server holds too many large requests at once; retry in a moment"});
    res.set_header("Retry-After", "1");
    respond_inline(c, std::move(res), /*close=*/true);
  }

  void read_body(Conn& c) {
    HttpRequest& req = *c.req;
    const RequestHead& h = req.head;
    if (h.chunked) {
      std::string_view in = c.in;
      const size_t before = req.body.size();
      const auto st = c.chunked.feed(in, req.body, opt.limits.max_body, opt.limits.max_head);
      c.in.erase(0, c.in.size() - in.size());
      if (req.body.size() != before && !reserve(c, request_cost(req.body.size()))) return refuse_memory(c);
      if (st == ChunkedDecoder::Status::kError) return respond_error(c, c.chunked.error(), true);
      if (st == ChunkedDecoder::Status::kDone) return dispatch(c);
      return;
    }
    const uint64_t want = *h.content_length - req.body.size();
    const size_t n = static_cast<size_t>(std::min<uint64_t>(want, c.in.size()));
    if (req.body.capacity() == 0) req.body.reserve(static_cast<size_t>(*h.content_length));
    req.body.append(c.in, 0, n);
    c.in.erase(0, n);
    if (req.body.size() == *h.content_length) dispatch(c);
  }

  // A complete request: run it inline or hand it to a handler thread.
  void dispatch(Conn& c) {
    if (c.route->run_inline) {
      HttpResponse res;
      run_handler(c, res);
      return respond_inline(c, std::move(res), false);
    }
    c.state = State::kBusy;
    {
      std::lock_guard lock(mu);
      tasks.push_back(&c);
    }
    cv.notify_one();
  }

  void run_handler(Conn& c, HttpResponse& res) {
    HttpRequest& req = *c.req;
    try {
      c.route->handler(req, res);
    } catch (const std::exception& e) {
      log_error("serve: {} {}: internal error: {}", req.method(), req.path(), e.what());
      res = error_response(req, {500, fmt::format("internal error: {}", e.what())});
    } catch (...) {
      log_error("serve: {} {}: internal error", req.method(), req.path());
      res = error_response(req, {500, "internal error"});
    }
  }

  // Reads what the socket has and acts on it.
  void on_readable(Conn& c) {
    char buf[kReadChunk];
    // What is read is parsed at once, so `in` never holds more than a head
    // (parse_head refuses one over max_head) plus one read.
    while (true) {
      if (c.state != State::kHead && c.state != State::kBody && c.state != State::kLinger) return;
      const ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      if (n <= 0) {  // EOF or error; a request cut short has nobody to answer
        c.state = State::kLinger;
        c.deadline = Clock::now();
        return;
      }
      if (c.state == State::kLinger) {
        c.lingered += static_cast<uint64_t>(n);
        if (c.lingered > kLingerMaxBytes) {
          c.deadline = Clock::now();
          return;
        }
        continue;
      }
      if (c.state == State::kBody) body_bytes += static_cast<uint64_t>(n);
      if (c.state == State::kHead && c.fresh) {
        c.fresh = false;
        c.started = Clock::now();
        if (c.requests > 0) c.deadline = c.started + opt.header_timeout;  // a new connection keeps its accept deadline
      }
      c.in.append(buf, static_cast<size_t>(n));
      process(c);
      if (static_cast<size_t>(n) < sizeof buf) return;
    }
  }

  // ------------------------------------------------------------ accepting --

  // Makes room for one more connection: a lingering one, else the one idle
  // longest, else the unfinished request that started longest ago (a slow
  // or hostile client). false when every connection is being served.
  bool evict_one() {
    Conn* best = nullptr;
    int best_rank = 3;
    for (auto& [fd, cp] : conns) {
      Conn& c = *cp;
      int rank;
      if (c.state == State::kLinger) rank = 0;
      else if (c.state == State::kHead && c.fresh) rank = 1;
      else if (c.state == State::kHead || c.state == State::kBody) rank = 2;
      else continue;
      const auto key = rank == 2 ? c.started : c.deadline;
      const auto best_key = best ? (best_rank == 2 ? best->started : best->deadline) : key;
      if (!best || rank < best_rank || (rank == best_rank && key < best_key)) {
        best = &c;
        best_rank = rank;
      }
    }
    if (!best) return false;
    ++evicted;
    close_conn(best->fd);
    return true;
  }

  void accept_some() {
    for (size_t i = 0; i < kMaxAcceptsPerWake; ++i) {
      sockaddr_storage addr{};
      socklen_t len = sizeof addr;
      const int fd = ::accept4(listen_fd, reinterpret_cast<sockaddr*>(&addr), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;  // EAGAIN, or a transient error (EMFILE: the next poll tries again)
      ++accepted;
      if (conns.size() >= static_cast<size_t>(std::max(1, opt.max_connections)) && !evict_one()) {
        ++refused;
        static constexpr std::string_view kBusy =
            "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        [[maybe_unused]] const ssize_t n = ::send(fd, kBusy.data(), kBusy.size(), MSG_NOSIGNAL);
        ::close(fd);
        continue;
      }
      const int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // a token per write: no Nagle delay
      auto c = std::make_unique<Conn>();
      c->fd = fd;
      char host[INET6_ADDRSTRLEN] = "";
      if (addr.ss_family == AF_INET) {
        const auto& a = reinterpret_cast<const sockaddr_in&>(addr);
        inet_ntop(AF_INET, &a.sin_addr, host, sizeof host);
        c->peer_port = ntohs(a.sin_port);
      } else if (addr.ss_family == AF_INET6) {
        const auto& a = reinterpret_cast<const sockaddr_in6&>(addr);
        inet_ntop(AF_INET6, &a.sin6_addr, host, sizeof host);
        c->peer_port = ntohs(a.sin6_port);
      }
      c->peer = host;
      c->deadline = Clock::now() + opt.header_timeout;
      conns.emplace(fd, std::move(c));
      ++open;
    }
  }

  // ------------------------------------------------------- handler threads --

  void worker_loop() {
    while (true) {
      Conn* c = nullptr;
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return workers_stop || !tasks.empty(); });
        if (tasks.empty()) return;
        c = tasks.front();
        tasks.pop_front();
      }
      serve_request(*c);
      {
        std::lock_guard lock(mu);
        returned.push_back(c);
      }
      wake();
    }
  }

  class ChunkSink final : public StreamSink {
   public:
    ChunkSink(int fd, Millis timeout) : fd_(fd), timeout_(timeout) {}
    bool write(std::string_view data) override {
      if (failed_) return false;
      if (data.empty()) return true;  // an empty chunk would end the stream
      std::string chunk = fmt::format("{:x}\r\n", data.size());
      chunk.append(data);
      chunk += "\r\n";
      if (!send_all(fd_, chunk, timeout_)) failed_ = true;
      return !failed_;
    }
    bool failed() const { return failed_; }

   private:
    int fd_;
    Millis timeout_;
    bool failed_ = false;
  };

  // On a handler thread: inflate, handle, write the response.
  void serve_request(Conn& c) {
    HttpRequest& req = *c.req;
    HttpResponse res;
    bool ok = true;
    if (!req.head.content_encoding.empty()) {
      auto body = inflate_body(req.body, req.head.content_encoding, opt.limits.max_body);
      if (!body) {
        res = error_response(req, body.error());
        ok = false;
      } else if (!reserve(c, request_cost(body->size()))) {
        res = error_response(req, {503, "the server holds too many large requests at once; retry in a moment"});
        res.set_header("Retry-After", "1");
        ok = false;
      } else {
        req.body = std::move(*body);
      }
    }
    if (ok) run_handler(c, res);
    if (hooks.decorate) hooks.decorate(req, res);
    bool close = res.close || !req.head.keep_alive || stopping || c.requests >= opt.max_requests_per_connection;
    const bool head_only = req.method() == "HEAD";
    const bool chunked = res.stream && !head_only && !no_body_status(res.status);
    std::string out = response_head(res, req.head, close, chunked, opt.idle_timeout);
    if (!chunked && !head_only && !no_body_status(res.status)) out += res.body;
    int status = res.status;
    bool sent = send_all(c.fd, out, opt.write_timeout);
    if (sent && chunked) {
      ChunkSink sink(c.fd, opt.write_timeout);
      const bool finished = res.stream(sink);
      if (finished && !sink.failed()) sent = send_all(c.fd, "0\r\n\r\n", opt.write_timeout);
      else sent = false;
      if (sink.failed()) status = 499;
    }
    if (!sent) {
      close = true;
      if (status < 400) status = 499;
    }
    if (hooks.done) hooks.done(req, status);
    res = HttpResponse();
    c.keep_alive = !close;
    release(c);
    c.req.reset();
  }

  // --------------------------------------------------------------- loop --

  void expire(Clock::time_point now) {
    std::vector<int> to_close;
    for (auto& [fd, cp] : conns) {
      Conn& c = *cp;
      if (c.state == State::kBusy || now < c.deadline) continue;
      switch (c.state) {
        case State::kHead:
          if (c.fresh) {  // idle keep-alive (or a new connection that sent nothing): close quietly
            to_close.push_back(fd);
            break;
          }
          [[fallthrough]];
        case State::kBody:
          ++timeouts;
          if (!c.req) c.req = std::make_unique<HttpRequest>();
          respond_error(c, {408, c.state == State::kBody ? "the request body did not arrive in time"
                                                         : "the request head did not arrive in time"},
                        true);
          if (c.state == State::kLinger && c.deadline <= now) to_close.push_back(fd);
          break;
        case State::kWrite:
          ++timeouts;
          to_close.push_back(fd);
          break;
        case State::kLinger:
          to_close.push_back(fd);
          break;
        case State::kBusy:
          break;
      }
    }
    for (int fd : to_close) close_conn(fd);
  }

  void take_returned() {
    std::vector<Conn*> back;
    {
      std::lock_guard lock(mu);
      back.swap(returned);
    }
    for (Conn* c : back) {
      if (!c->keep_alive || stopping) {
        close_conn(c->fd);
        continue;
      }
      next_request(*c);
    }
  }

  void loop() {
    bool listening = listen_fd >= 0;
    std::vector<pollfd> pfds;
    std::vector<int> fds;
    while (true) {
      if (stopping) {
        if (listening) {
          ::close(listen_fd);
          listen_fd = -1;
          listening = false;
        }
        std::vector<int> idle;
        for (auto& [fd, c] : conns)
          if (c->state != State::kBusy) idle.push_back(fd);
        for (int fd : idle) close_conn(fd);
        if (conns.empty()) return;
      }
      pfds.clear();
      fds.clear();
      pfds.push_back({wake_r, POLLIN, 0});
      if (listening) pfds.push_back({listen_fd, POLLIN, 0});
      auto soonest = Clock::now() + std::chrono::seconds(1);
      for (auto& [fd, c] : conns) {
        if (c->state == State::kBusy) continue;
        soonest = std::min(soonest, c->deadline);
        pfds.push_back({fd, static_cast<short>(c->state == State::kWrite ? POLLOUT : POLLIN), 0});
        fds.push_back(fd);
      }
      const auto wait = std::chrono::duration_cast<Millis>(soonest - Clock::now()).count();
      const int r = ::poll(pfds.data(), pfds.size(), static_cast<int>(std::clamp<int64_t>(wait + 1, 0, 1000)));
      if (r < 0 && errno != EINTR) {
        log_error("serve: poll failed: {}", std::strerror(errno));
        std::this_thread::sleep_for(Millis(10));
      }
      if (pfds[0].revents & POLLIN) {
        char buf[256];
        while (::read(wake_r, buf, sizeof buf) > 0) {
        }
      }
      take_returned();
      size_t i = 1;
      if (listening) {
        if (pfds[1].revents & POLLIN) accept_some();
        i = 2;
      }
      for (size_t k = 0; i < pfds.size(); ++i, ++k) {
        if (!pfds[i].revents) continue;
        auto it = conns.find(fds[k]);
        if (it == conns.end()) continue;  // evicted by an accept above
        Conn& c = *it->second;
        if (c.state == State::kWrite) {
          if (pfds[i].revents & (POLLERR | POLLHUP | POLLNVAL)) begin_close(c, false);
          else flush(c);
        } else if (c.state != State::kBusy) {
          on_readable(c);
        }
      }
      expire(Clock::now());
    }
  }
};

HttpServer::HttpServer(HttpServerOptions options, HttpHooks hooks)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(hooks))) {}

HttpServer::~HttpServer() {
  stop();
  std::lock_guard lock(impl_->mu);
  impl_->workers_stop = true;
  impl_->cv.notify_all();
}

void HttpServer::route(std::string method, std::string_view pattern, HttpHandler handler, bool run_inline) {
  impl_->routes.push_back({std::move(method), compile(pattern), std::move(handler), run_inline});
}

Status HttpServer::bind(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string service = std::to_string(port);
  if (const int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &res); rc != 0)
    return make_error(ErrorCode::kIo, "cannot resolve {}: {}", host, gai_strerror(rc));
  std::string why = "no address";
  for (addrinfo* a = res; a; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, a->ai_addr, a->ai_addrlen) == 0 && ::listen(fd, 1024) == 0) {
      freeaddrinfo(res);
      impl_->listen_fd = fd;
      return {};
    }
    why = std::strerror(errno);
    ::close(fd);
  }
  freeaddrinfo(res);
  if (port == 0) return make_error(ErrorCode::kIo, "cannot bind {} on any port: {}", host, why);
  return make_error(ErrorCode::kIo, "cannot bind {}:{} ({}; in use, or not an address of this machine)", host, port, why);
}

int HttpServer::port() const {
  if (impl_->listen_fd < 0) return -1;
  sockaddr_storage a{};
  socklen_t len = sizeof a;
  if (getsockname(impl_->listen_fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) return -1;
  if (a.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in&>(a).sin_port);
  if (a.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6&>(a).sin6_port);
  return -1;
}

void HttpServer::serve() {
  Impl& im = *impl_;
  if (im.stopping) return;
  for (int i = 0; i < std::max(1, im.opt.threads); ++i) im.workers.emplace_back([&im] { im.worker_loop(); });
  im.loop();
  {
    std::lock_guard lock(im.mu);
    im.workers_stop = true;
  }
  im.cv.notify_all();
  for (auto& t : im.workers) t.join();
  im.workers.clear();
}

void HttpServer::stop() {
  impl_->stopping = true;
  impl_->wake();
}

HttpStats HttpServer::stats() const {
  const Impl& im = *impl_;
  HttpStats s;
  s.connections_accepted = im.accepted;
  s.connections_evicted = im.evicted;
  s.connections_refused = im.refused;
  s.connections_open = im.open;
  s.timeouts = im.timeouts;
  s.body_bytes_read = im.body_bytes;
  s.request_memory_used = im.mem_used;
  s.request_memory_refusals = im.mem_refusals;
  return s;
}

}  // namespace codey::server
