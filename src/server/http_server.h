// codey's own HTTP/1.1 server (why not cpp-httplib or Boost.Beast: see
// docs/security.md). One I/O thread reads every connection with poll() and
// enforces the limits while reading - a deadline for the whole request head,
// one for the body, an idle keep-alive deadline, caps on the request line,
// header block, header count and body, a cap on open connections and on the
// memory of the requests in flight - and asks a gate (auth, Host, Origin)
// before a single byte of a body is read or inflated. Only complete requests
// reach the handler threads, so slow or hostile clients never hold one.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "codey/base.h"
#include "codey/runtime.h"
#include "server/http_parse.h"

namespace codey::server {

struct HttpRequest {
  RequestHead head;
  std::string body;                 // de-chunked and inflated; empty while the gate runs
  std::vector<std::string> params;  // what the route's {} and {*} matched, in order
  std::string peer;                 // the client's address ("127.0.0.1")
  int peer_port = 0;
  // The connection's socket, only to notice a client that went away
  // (peer_closed); never read or write it.
  int fd = -1;

  const std::string& method() const { return head.method; }
  const std::string& path() const { return head.path; }
  std::string_view header(std::string_view name) const { return head.header(name); }
};

class StreamSink {
 public:
  virtual ~StreamSink() = default;
  // Sends `data` as one chunk at once; false when the client has gone or has
  // not read for the write timeout (then stop: the connection is closed).
  virtual bool write(std::string_view data) = 0;
};

struct HttpResponse {
  int status = 200;
  std::vector<HttpHeader> headers;
  std::string body;
  // A streamed (chunked) response: called on the request's thread once the
  // head is sent. true: finished (the last chunk follows); false: aborted
  // (the connection closes, so the client sees a cut stream). Must not throw.
  std::function<bool(StreamSink&)> stream;
  bool close = false;  // close the connection after this response

  void set_header(std::string_view name, std::string value);  // replaces a field of that name
  void set_content(std::string content, std::string_view content_type);
  const std::string* find_header(std::string_view name) const;
};

using HttpHandler = std::function<void(HttpRequest&, HttpResponse&)>;

struct HttpServerOptions {
  HttpLimits limits;
  Millis header_timeout{10'000};  // the whole head, from its first byte (a new connection: from accept)
  Millis body_timeout{60'000};    // the whole body, from the end of the head
  Millis idle_timeout{5'000};     // a keep-alive connection waiting for its next request
  Millis write_timeout{30'000};   // a response write that makes no progress this long fails
  int max_connections = 256;      // at the cap, an idle or the slowest unfinished connection makes room
  int max_requests_per_connection = 1000;
  int threads = 16;               // handler threads
  // What the requests in flight may hold together: their bodies and what
  // parsing them may cost (request_cost). Beyond it: 503 with Retry-After.
  uint64_t request_memory = 256ull << 20;
};

// Upper bound of the memory a request with a body of `body_bytes` holds while
// it is handled: the body, and the JSON document made of it within the
// parse limits (server/api.h: at most kMaxJsonValues values).
uint64_t request_cost(uint64_t body_bytes);

struct HttpHooks {
  // On the head alone (empty body), before routing and before any byte of a
  // body is read: auth, Host and Origin checks, CORS preflight. nullopt: go
  // on. Runs on the I/O thread: must be quick and never block.
  std::function<std::optional<HttpResponse>(const HttpRequest&)> gate;
  // Fills in a response for an error the HTTP layer answers itself (400,
  // 404, 405, 408, 413, 414, 415, 431, 503...) in the API's error shape.
  std::function<void(const HttpRequest&, HttpResponse&, const HttpError&)> error;
  // Every response, just before it is sent (e.g. CORS headers). Quick.
  std::function<void(const HttpRequest&, HttpResponse&)> decorate;
  // After a response was sent, or the client went away (status 499).
  std::function<void(const HttpRequest&, int status)> done;
};

// Counters since start (for /metrics and tests); thread-safe snapshot.
struct HttpStats {
  uint64_t connections_accepted = 0;
  uint64_t connections_open = 0;
  uint64_t connections_evicted = 0;   // closed to make room at max_connections
  uint64_t connections_refused = 0;   // at max_connections with nothing to evict
  uint64_t timeouts = 0;              // heads, bodies or writes past their deadline
  uint64_t body_bytes_read = 0;       // request body bytes read from sockets
  uint64_t request_memory_used = 0;   // reserved by the requests in flight now
  uint64_t request_memory_refusals = 0;
};

class HttpServer {
 public:
  HttpServer(HttpServerOptions options, HttpHooks hooks);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Before serve(). `pattern`: literal segments, "{}" for one segment,
  // a final "{*}" for the rest of the path (at least one character). HEAD
  // is served by the GET route. `run_inline`: on the I/O thread, for
  // handlers that answer at once and never block (/health).
  void route(std::string method, std::string_view pattern, HttpHandler handler, bool run_inline = false);

  // Binds host:port (port 0: any free one).
  Status bind(const std::string& host, int port);
  int port() const;
  // Serves until stop() and every connection is closed; blocks.
  void serve();
  // Thread-safe, idempotent: accepts no more connections, closes idle and
  // unfinished ones; requests being handled finish and then close.
  void stop();
  HttpStats stats() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// True when the client closed its end (or the connection broke). Data the
// client sent meanwhile (a pipelined request) is left unread.
bool peer_closed(int fd);

}  // namespace codey::server
