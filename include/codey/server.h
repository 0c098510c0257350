// Server layer: `codey serve`, the OpenAI- and Ollama-compatible HTTP API on
// top of the runtime (chat, completions with fill-in-the-middle, model
// listing, streaming by SSE / NDJSON), plus /health, /metrics and model
// load/unload. Binds to loopback by default.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "codey/base.h"
#include "codey/runtime.h"
#include "codey/store.h"

namespace codey {

struct ServerOptions {
  ServerConfig config;        // host, port (0 = any free port), api_key ("env:NAME" allowed), max_body, shutdown_grace
  int http_threads = 0;       // connection threads; 0 = every slot and queue place of every model, plus spare
  std::string version = "0.0.0";  // reported by /api/version and in system_fingerprint
  // Where models are pulled to and found (codey's store, Ollama, LM Studio,
  // the HF cache). A request may name any model there by its reference.
  StoreOptions store = StoreOptions::from_env();
};

// Routes (all but /health and /ready need "Authorization: Bearer <key>" when a key is set):
//   OpenAI   POST /v1/chat/completions, POST /v1/completions, GET /v1/models[/<id>]
//   Ollama   POST /api/generate, POST /api/chat, GET /api/tags, GET /api/ps,
//            POST /api/show, GET /api/version, POST /api/pull, DELETE /api/delete
//   codey    GET /health (liveness), GET /ready[?model=NAME] (readiness: 503 while a
//            pinned model loads, while draining, or while a model's queue is full),
//            GET /metrics, GET /codey/status,
//            POST /codey/models/<name>/load, POST /codey/models/<name>/unload
class Server {
 public:
  // `runtime` must outlive the server. Errors: an api_key "env:NAME" whose
  // variable is unset or empty.
  static Result<std::unique_ptr<Server>> create(Runtime& runtime, ServerOptions options);
  ~Server();  // shutdown(0) if still serving
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds host:port (port 0: a free one; see port()). Errors name the address.
  Status bind();
  int port() const;
  // Accepts and serves connections until shutdown(); blocks. Returns when
  // every connection is closed.
  void serve();
  // Graceful stop (drain): refuses new connections and new requests (503);
  // a request still waiting for a slot whose response has not begun gets 503
  // too (a balancer retries it elsewhere); running requests and streams
  // already answered get `grace` to finish, then are cancelled (a stream
  // ends with an error event); the runtime's models unload. Thread-safe,
  // idempotent; returns once the runtime is shut down (serve() returns when
  // the last connection closes).
  void shutdown(Millis grace);

  struct Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// api_key as configured: "" (no key), "env:NAME" (from the environment), or the key.
Result<std::string> resolve_api_key(std::string_view configured);

// What `codey serve` warns about before it serves: listening beyond loopback
// without a key; a key given on the command line (visible in ps) rather
// than as env:NAME.
std::vector<std::string> exposure_warnings(const ServerConfig& config, bool key_on_command_line);

}  // namespace codey
