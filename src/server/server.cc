// codey serve: the HTTP routes over the runtime (see include/codey/server.h).
// The HTTP layer (http_server.h) reads whole requests on its I/O thread and
// runs each on a handler thread; a generation request waits on its runtime
// stream on that thread, checking the client's socket between events so a
// client that goes away frees its slot.
#include "codey/server.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <condition_variable>
#include <thread>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <mutex>
#include <random>

#include <fmt/format.h>

#include "server/api.h"
#include "server/browser_policy.h"
#include "server/catalog.h"
#include "server/http_server.h"
#include "server/json_constraint.h"
#include "server/metrics.h"
#include "server/readiness.h"
#include "server/requests.h"
#include "server/responses.h"

namespace codey {

using server::ApiError;
using server::ApiKind;
using server::ApiResult;
using server::HttpRequest;
using server::HttpResponse;
using server::Json;
using server::peer_closed;
using server::StreamSink;

namespace {

constexpr Millis kPoll{200};            // how often a waiting request looks at its client's socket
constexpr Millis kCommitAfter{1000};    // a queued streaming request gets its 200 (and progress lines) after this

ApiKind api_of(const std::string& path) {
  if (path.starts_with("/v1/")) return ApiKind::kOpenAi;
  if (path.starts_with("/api/")) return ApiKind::kOllama;
  return ApiKind::kCodey;
}

// Route label for metrics: the pattern, never the raw path (bounded label set).
std::string route_label(const std::string& path) {
  static constexpr std::string_view kFixed[] = {
      "/",          "/health",   "/ready",    "/metrics",  "/v1/chat/completions", "/v1/completions", "/v1/models",
      "/api/generate", "/api/chat", "/api/tags", "/api/ps", "/api/show", "/api/version", "/codey/status",
      "/api/pull", "/api/delete"};
  for (auto r : kFixed)
    if (path == r) return std::string(r);
  if (path.starts_with("/v1/models/")) return "/v1/models/{id}";
  if (path.starts_with("/codey/models/")) {
    if (path.ends_with("/load")) return "/codey/models/{name}/load";
    if (path.ends_with("/unload")) return "/codey/models/{name}/unload";
  }
  return "other";
}

ApiError make_api_error(int status, std::string code, std::string message) {
  ApiError e;
  e.status = status;
  e.code = std::move(code);
  e.message = std::move(message);
  return e;
}

ApiError shutting_down_error() {
  ApiError e = make_api_error(503, "shutting_down", "the server is shutting down");
  e.retry_after = std::chrono::seconds(1);
  return e;
}

// A request that had not started when the drain began: nothing reached the
// client, so a balancer may send it to another server (deploy/nginx retries 503).
ApiError drained_error() {
  ApiError e = make_api_error(503, "shutting_down",
                              "the server is draining and had not started this request; retry (another server)");
  e.retry_after = std::chrono::seconds(1);
  return e;
}

// The value of `name` in a query string ("a=1&model=x"), percent-decoded (as
// sent if it does not decode); "" if absent.
std::string query_param(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    if (pair.size() > name.size() && pair.starts_with(name) && pair[name.size()] == '=') {
      const std::string_view value = pair.substr(name.size() + 1);
      return server::percent_decode_path(value).value_or(std::string(value));
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return {};
}

void send_error(HttpResponse& res, ApiKind api, const ApiError& e) {
  res.status = e.status;
  res.set_content(server::dump(server::error_body(api, e)), "application/json");
  if (e.retry_after) {
    const auto secs = std::max<int64_t>(1, (e.retry_after->count() + 999) / 1000);
    res.set_header("Retry-After", std::to_string(secs));
  }
}

void send_json(HttpResponse& res, const Json& j) {
  res.status = 200;
  res.set_content(server::dump(j), "application/json");
}

ApiError unauthorized() {
  return make_api_error(401, "invalid_api_key", "missing or wrong API key (Authorization: Bearer <key>)");
}

// Constant-time comparison: the key must not leak through response timing.
bool same_secret(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

std::string random_hex(size_t n_bytes) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string out;
  while (out.size() < 2 * n_bytes) out += fmt::format("{:016x}", rng());
  out.resize(2 * n_bytes);
  return out;
}

}  // namespace

Result<std::string> resolve_api_key(std::string_view configured) {
  if (configured.starts_with("env:")) {
    const std::string name(configured.substr(4));
    const char* v = name.empty() ? nullptr : std::getenv(name.c_str());
    if (!v || !*v)
      return make_error(ErrorCode::kInvalidArgument, "server.api_key is 'env:{}' but the environment variable {} is {}",
                        name, name, v ? "empty" : "not set");
    return std::string(v);
  }
  return std::string(configured);
}

std::vector<std::string> exposure_warnings(const ServerConfig& c, bool key_on_command_line) {
  std::vector<std::string> out;
  const auto name = server::host_name(c.host.find(':') != std::string::npos && c.host.front() != '['
                                          ? "[" + c.host + "]"
                                          : c.host);
  const bool loopback = name && server::is_loopback_name(*name);
  if (!loopback && c.api_key.empty())
    out.push_back(fmt::format("listening on {} without an API key: anybody who can reach this port can run the "
                              "models; set server.api_key (e.g. env:CODEY_API_KEY)",
                              c.host));
  if (key_on_command_line && !c.api_key.starts_with("env:"))
    out.push_back("the API key on the command line is visible to every user of this machine (ps); use "
                  "--api-key env:NAME or server.api_key: env:NAME");
  return out;
}

// ------------------------------------------------------------------ impl --

struct Server::Impl {
  Runtime& runtime;
  ServerOptions opt;
  std::string api_key;
  server::BrowserPolicy browser;  // Host, Origin, CORS (made in setup())
  std::unique_ptr<server::HttpServer> http;  // made in setup()
  server::Metrics metrics;
  server::ModelCatalog catalog;
  std::atomic<bool> stopping{false};  // draining: no new requests; those not started yet get 503
  std::once_flag shutdown_once;  // concurrent shutdown() calls wait for the first to finish
  int bound_port = -1;

  Impl(Runtime& rt, ServerOptions o, std::string key) : runtime(rt), opt(std::move(o)), api_key(std::move(key)) {}

  void setup();
  bool authorized(const HttpRequest& req) const;
  // The head-only checks of every request (http_server.h HttpHooks::gate).
  std::optional<HttpResponse> gate(const HttpRequest& req) const;
  // CORS headers on every response to an allowed browser origin.
  void decorate(const HttpRequest& req, HttpResponse& res) const;
  // A configured or added model, or one on disk named by a reference
  // (hf.co/..., ollama:..., or Ollama's "name:tag"), which is then added to
  // the runtime under its canonical name. Never a path: a client may not
  // make the server open files by name.
  std::optional<ModelConfig> resolve_model(std::string_view name);
  // A configured or added model only (no disk).
  std::optional<ModelConfig> served_model(std::string_view name) const;
  // on_disk: a reference that is not on disk says how to pull it.
  ApiError model_not_found(std::string_view name, bool on_disk = true) const;
  // Every model a client may name: the runtime's, then those on disk.
  std::vector<ModelConfig> listed_models();

  void generate(const HttpRequest& req, HttpResponse& res,
                ApiKind api, server::Endpoint endpoint);
  void load_special(HttpResponse& res, const server::ParsedRequest& p, const ModelConfig& m);

  void openai_models(HttpResponse& res);
  void openai_model(const HttpRequest& req, HttpResponse& res);
  void ollama_tags(HttpResponse& res);
  void ollama_ps(HttpResponse& res);
  void ollama_show(const HttpRequest& req, HttpResponse& res);
  void codey_load(const HttpRequest& req, HttpResponse& res, bool load);
  void ready(const HttpRequest& req, HttpResponse& res);
  void ollama_pull(const HttpRequest& req, HttpResponse& res);
  void ollama_delete(const HttpRequest& req, HttpResponse& res);
  Json ollama_details(const server::ModelInfo& info) const;
};

namespace {

// One generation request in flight: the runtime stream, the response being
// built and the client's socket. A streaming response keeps it alive in the
// response's stream function, which the HTTP layer runs on the same handler
// thread after the handler returned; destroying it cancels an unfinished request.
struct Job {
  Server::Impl* srv = nullptr;
  std::shared_ptr<RequestStream> stream;
  server::ResponseBuilder builder;
  std::string model;
  int fd = -1;
  Clock::time_point t0 = Clock::now();
  bool first_token = false;
  bool started = false;  // a slot took it (kStarted): it runs to its end even while the server drains
  bool client_gone = false;
  Clock::time_point last_check = Clock::now();
  std::deque<Event> early;  // events read before the response was committed

  Job(Server::Impl* s, server::ResponseContext ctx) : srv(s), builder(std::move(ctx)) { srv->metrics.request_begin(); }
  ~Job() {
    if (stream && !stream->finished()) stream->cancel();
    srv->metrics.request_end();
  }

  // The next event, or nullopt after kPoll (then the client was checked).
  std::optional<Event> next() {
    if (!early.empty()) {
      Event e = std::move(early.front());
      early.pop_front();
      return e;
    }
    auto ev = stream->next(kPoll);
    // The socket is looked at when nothing came within kPoll, and at least
    // every kPoll while events flow: a fast generation must not hide that the
    // client of a non-streaming request has gone.
    const auto now = Clock::now();
    if ((!ev || now - last_check >= kPoll) && !client_gone) {
      last_check = now;
      if (!peer_closed(fd)) return ev;
      client_gone = true;
      stream->cancel();
    }
    return ev;
  }

  void on_token(const Event& e) {
    if (e.token == kNoToken) return;  // the final flush of held-back text, not a token
    srv->metrics.add_generated(model, 1);
    if (!first_token) {
      first_token = true;
      srv->metrics.observe_ttft(model, seconds_since(t0));
    }
  }

  // Streaming: writes events as they come; false when the client is gone.
  // Stream functions run outside the handler's try/catch, so nothing may
  // escape from here.
  bool pump(StreamSink& sink) noexcept {
    try {
      return pump_events(sink);
    } catch (const std::exception& e) {
      log_error("serve: stream of request {} failed: {}", stream->id(), e.what());
    } catch (...) {
      log_error("serve: stream of request {} failed", stream->id());
    }
    client_gone = true;
    stream->cancel();
    return false;
  }

  bool pump_events(StreamSink& sink) {
    auto write = [&](const std::string& s) { return s.empty() || sink.write(s); };
    auto gone = [&] {
      client_gone = true;
      stream->cancel();
      return false;
    };
    if (!write(builder.open())) return gone();
    while (true) {
      auto ev = next();
      if (!ev) {
        if (client_gone) return false;
        continue;
      }
      switch (ev->type) {
        case EventType::kQueued:
        case EventType::kLoading:
          if (!write(builder.progress(*ev))) return gone();
          break;
        case EventType::kStarted:
          started = true;
          break;
        case EventType::kToken:
          on_token(*ev);
          if (!write(builder.text(ev->text))) return gone();
          break;
        case EventType::kDone: {
          // Cancelled with the client still there: the server is shutting down.
          const std::string tail = ev->finish == FinishReason::kCancelled ? builder.error(shutting_down_error())
                                                                          : builder.finish(*ev);
          if (!write(tail)) return gone();
          return true;
        }
        case EventType::kError:
          if (!write(builder.error(server::from_request_error(ev->error)))) return gone();
          return true;
      }
    }
  }

  // Draining and still waiting for a slot (or a load): cancels it and answers
  // 503, so a balancer sends it elsewhere instead of it holding up the drain.
  bool give_back(HttpResponse& res, ApiKind api) {
    if (started || !srv->stopping) return false;
    stream->cancel();
    send_error(res, api, drained_error());
    return true;
  }

  // Non-streaming: waits for the end and sets the response.
  void run(HttpResponse& res, ApiKind api) {
    while (true) {
      auto ev = next();
      if (!ev) {
        if (client_gone) {
          res.status = 499;  // nobody is listening; the status is for the log and metrics
          return;
        }
        if (give_back(res, api)) return;
        continue;
      }
      switch (ev->type) {
        case EventType::kQueued:
        case EventType::kLoading:
          break;
        case EventType::kStarted:
          started = true;
          break;
        case EventType::kToken:
          on_token(*ev);
          builder.text(ev->text);
          break;
        case EventType::kDone:
          if (ev->finish == FinishReason::kCancelled) {
            if (client_gone) res.status = 499;
            else send_error(res, api, shutting_down_error());
            return;
          }
          send_json(res, builder.body(*ev));
          return;
        case EventType::kError:
          send_error(res, api, server::from_request_error(ev->error));
          return;
      }
    }
  }
};

}  // namespace

bool Server::Impl::authorized(const HttpRequest& req) const {
  if (api_key.empty()) return true;
  const std::string_view h = req.header("Authorization");
  constexpr std::string_view kBearer = "Bearer ";
  if (h.size() < kBearer.size() || !std::equal(kBearer.begin(), kBearer.end(), h.begin(), [](char a, char b) {
        return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
      }))
    return false;
  return same_secret(h.substr(kBearer.size()), api_key);
}

// In this order, on the head alone, before a byte of the body is read or
// inflated (browser_policy.h): the Host (DNS rebinding) and the Origin
// (cross-site pages) of every request, then CORS preflights (which never
// carry the key), the Content-Type of a POST, and the key, which every
// request but the probes (/health, /ready) needs, whatever its method.
std::optional<HttpResponse> Server::Impl::gate(const HttpRequest& req) const {
  const ApiKind api = api_of(req.path());
  auto refuse = [&](int status, std::string code, std::string message) {
    HttpResponse res;
    send_error(res, api, make_api_error(status, std::move(code), std::move(message)));
    return std::optional<HttpResponse>(std::move(res));
  };
  const std::string_view host = req.header("Host");
  if (!server::host_allowed(browser, host))
    return refuse(403, "host_not_allowed",
                  fmt::format("Host '{}' is not allowed (DNS-rebinding protection); add the name to "
                              "server.allowed_hosts",
                              host.substr(0, 256)));
  const std::string_view origin = req.header("Origin");
  if (!server::origin_allowed(browser, origin))
    return refuse(403, "origin_not_allowed",
                  fmt::format("Origin '{}' is not allowed; add it to server.allowed_origins or CODEY_ORIGINS",
                              origin.substr(0, 256)));
  if (req.method() == "OPTIONS" && !origin.empty() && !req.header("Access-Control-Request-Method").empty()) {
    HttpResponse res;
    res.status = 204;
    res.set_header("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS");
    std::string headers(req.header("Access-Control-Request-Headers"));
    const bool token_list = std::all_of(headers.begin(), headers.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == ',' || c == ' ';
    });
    res.set_header("Access-Control-Allow-Headers",
                   !headers.empty() && token_list && headers.size() <= 1024 ? headers : "Authorization, Content-Type");
    if (!req.header("Access-Control-Request-Private-Network").empty())
      res.set_header("Access-Control-Allow-Private-Network", "true");
    res.set_header("Access-Control-Max-Age", "600");
    return res;
  }
  if (auto why = server::content_type_refusal(req.method(), req.header("Content-Type"), origin))
    return refuse(415, "unsupported_media_type", std::move(*why));
  if (req.path() == "/health" || req.path() == "/ready" || authorized(req)) return std::nullopt;
  HttpResponse res;
  send_error(res, api, unauthorized());
  return res;
}

void Server::Impl::decorate(const HttpRequest& req, HttpResponse& res) const {
  const std::string_view origin = req.header("Origin");
  if (origin.empty() || !server::origin_allowed(browser, origin)) return;
  res.set_header("Access-Control-Allow-Origin", std::string(origin));
  res.set_header("Vary", "Origin");
  res.set_header("Access-Control-Expose-Headers", "Retry-After, X-Request-Id");
}

namespace {

// A model reference a client may use: hf.co/..., OWNER/REPO/FILE.gguf,
// ollama:NAME:TAG, or Ollama's own "name[:tag]" (read as ollama:name:tag).
// Paths are not references here.
std::optional<std::string> client_reference(std::string_view name) {
  auto ref = parse_model_ref(name);
  if (!ref) return std::nullopt;
  if (ref->kind != RefKind::kPath) return ref->str();
  const bool ollama_like = !name.empty() && name.find('/') == std::string_view::npos &&
                           !name.ends_with(".gguf") && name.front() != '.' && name.front() != '~';
  if (!ollama_like) return std::nullopt;
  auto o = parse_model_ref("ollama:" + std::string(name));
  return o ? std::optional<std::string>(o->str()) : std::nullopt;
}

// The settings a model found on disk is served with (those of `codey serve --model`).
ModelConfig model_on_disk(const LocalModel& local) {
  ModelConfig m;
  m.name = local.serve_name();
  m.path = local.path;
  if (local.source != ModelSource::kFile) m.ref = local.ref;
  return m;
}

}  // namespace

std::optional<ModelConfig> Server::Impl::served_model(std::string_view name) const {
  if (auto m = runtime.find_model(name)) return m;
  // Ollama clients name models "name:tag"; the configured name is the model.
  if (name.ends_with(":latest")) return runtime.find_model(name.substr(0, name.size() - 7));
  return std::nullopt;
}

std::optional<ModelConfig> Server::Impl::resolve_model(std::string_view name) {
  if (auto m = served_model(name)) return m;
  const auto ref = client_reference(name);
  if (!ref) return std::nullopt;
  auto local = codey::resolve_model(*ref, opt.store);
  if (!local) return std::nullopt;
  ModelConfig m = model_on_disk(*local);
  if (auto existing = runtime.find_model(m.name)) return existing;
  for (const auto& c : runtime.models())  // a configured model of that file answers to its own name
    if (!c.path.empty() && c.path == m.path) return c;
  if (auto st = runtime.add_model(m); !st) {
    log_warn("serve: cannot add model {}: {}", m.name, st.error().message);
    return std::nullopt;
  }
  log_info("serve: serving {} from {}", m.name, m.path);
  return runtime.find_model(m.name);
}

std::vector<ModelConfig> Server::Impl::listed_models() {
  std::vector<ModelConfig> out = runtime.models();
  for (const auto& local : list_models(opt.store, /*read_headers=*/false).models) {
    if (!local.error.empty()) continue;
    ModelConfig m = model_on_disk(local);
    const bool known = std::any_of(out.begin(), out.end(), [&](const ModelConfig& c) {
      return c.name == m.name || (!c.path.empty() && c.path == m.path);
    });
    if (!known) out.push_back(std::move(m));
  }
  return out;
}

ApiError Server::Impl::model_not_found(std::string_view name, bool on_disk) const {
  std::string names;
  for (const auto& m : runtime.models()) names += (names.empty() ? "" : ", ") + m.name;
  std::string message = fmt::format("model '{}' not found; configured models: {}", name, names.empty() ? "none" : names);
  // A reference that is not on disk says how to get it.
  if (auto ref = on_disk ? client_reference(name) : std::nullopt) {
    auto local = codey::resolve_model(*ref, opt.store);
    if (!local && local.error().code == ErrorCode::kNotFound) {
      message = fmt::format("model '{}' not found: {}", name, local.error().message);
      auto parsed = parse_model_ref(*ref);
      if (parsed && (parsed->kind == RefKind::kHub || parsed->kind == RefKind::kHubFile))
        message += fmt::format(" (or POST /api/pull {{\"model\": \"{}\"}})", name);
    }
  }
  ApiError e = make_api_error(404, "model_not_found", std::move(message));
  e.param = "model";
  return e;
}

void Server::Impl::generate(const HttpRequest& req, HttpResponse& res,
                            ApiKind api, server::Endpoint endpoint) {
  using server::Endpoint;
  auto body = server::parse_body(req.body);
  if (!body) return send_error(res, api, body.error());
  if (stopping) return send_error(res, api, shutting_down_error());
  ApiResult<server::ParsedRequest> parsed =
      api == ApiKind::kOpenAi
          ? (endpoint == Endpoint::kChat ? server::parse_openai_chat(*body) : server::parse_openai_completion(*body))
          : (endpoint == Endpoint::kChat ? server::parse_ollama_chat(*body) : server::parse_ollama_generate(*body));
  if (!parsed) return send_error(res, api, parsed.error());
  server::ParsedRequest& p = *parsed;
  const auto m = resolve_model(p.gen.model);
  if (!m) return send_error(res, api, model_not_found(p.gen.model));
  p.gen.model = m->name;
  if (p.special != server::Special::kNone) return load_special(res, p, *m);

  ToolCallFormat tool_format = ToolCallFormat::kNone;
  if (p.has_tools) {
    auto info = catalog.info(*m);
    if (!info) return send_error(res, api, info.error());
    tool_format = (*info)->tool_format;
    if (tool_format == ToolCallFormat::kNone)
      return send_error(res, api,
                        server::bad_field("tools", fmt::format("the chat template of model '{}' does not support tools",
                                                               m->name))
                            .error());
  }
  if (p.gen.suffix || p.json_mode) {
    auto tok = catalog.tokenizer(*m);
    if (!tok) return send_error(res, api, tok.error());
    if (p.gen.suffix && !(*tok)->has_fim) {
      // An empty suffix is what many editors send by default: plain completion then.
      if (!p.gen.suffix->empty())
        return send_error(res, api,
                          server::bad_field("suffix", fmt::format("model '{}' has no fill-in-the-middle tokens; suffix "
                                                                  "is not supported",
                                                                  m->name))
                              .error());
      p.gen.suffix.reset();
    }
    if (p.json_mode) p.gen.constraint = std::make_shared<server::JsonConstraint>((*tok)->pieces);
  }

  server::ResponseContext ctx;
  ctx.api = api;
  ctx.endpoint = endpoint;
  ctx.stream = p.stream;
  ctx.include_usage = p.include_usage;
  ctx.model = m->name;
  ctx.id = fmt::format("{}-{}", endpoint == Endpoint::kChat ? "chatcmpl" : "cmpl", random_hex(12));
  ctx.tool_format = tool_format;
  if (tool_format != ToolCallFormat::kNone) ctx.tools = p.gen.tools;
  ctx.fingerprint = "codey-" + opt.version;
  auto job = std::make_shared<Job>(this, std::move(ctx));
  job->model = m->name;
  job->fd = req.fd;
  job->stream = runtime.submit(std::move(p.gen));

  if (!p.stream) return job->run(res, api);

  // Streaming: the status is held until the request started or failed, so a
  // full queue, a too-long prompt or a bad field still gets its own status;
  // a request that waits (loading, a long queue) gets its 200 and progress lines.
  const auto commit_by = Clock::now() + kCommitAfter;
  std::optional<Event> queued;
  while (true) {
    auto ev = job->stream->next(kPoll);
    if (!ev) {
      if (peer_closed(job->fd)) {
        job->client_gone = true;
        job->stream->cancel();
        res.status = 499;
        return;
      }
      if (job->give_back(res, api)) return;
      if (Clock::now() >= commit_by) break;
      continue;
    }
    if (ev->type == EventType::kError) return send_error(res, api, server::from_request_error(ev->error));
    if (ev->type == EventType::kQueued) {
      queued = std::move(*ev);  // only the latest place matters, and only if the wait is long
      continue;
    }
    if (ev->type == EventType::kStarted) job->started = true;
    job->early.push_back(std::move(*ev));
    break;
  }
  if (job->early.empty() && queued) job->early.push_back(std::move(*queued));
  res.status = 200;
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  res.set_header("Content-Type", api == ApiKind::kOpenAi ? "text/event-stream" : "application/x-ndjson");
  res.stream = [job](StreamSink& sink) { return job->pump(sink); };
}

void Server::Impl::load_special(HttpResponse& res, const server::ParsedRequest& p, const ModelConfig& m) {
  const bool load = p.special == server::Special::kLoad;
  auto r = load ? runtime.load(m.name) : runtime.unload(m.name);
  if (!r) return send_error(res, ApiKind::kOllama, server::from_request_error(r.error()));
  Json j = Json::object();
  j["model"] = m.name;
  j["created_at"] = server::rfc3339(std::chrono::system_clock::now());
  if (p.endpoint == server::Endpoint::kChat) j["message"] = Json{{"role", "assistant"}, {"content", ""}};
  else j["response"] = "";
  j["done"] = true;
  j["done_reason"] = load ? "load" : "unload";
  res.status = 200;
  if (p.stream) res.set_content(server::dump(j) + "\n", "application/x-ndjson");
  else res.set_content(server::dump(j), "application/json");
}

Json Server::Impl::ollama_details(const server::ModelInfo& info) const {
  return Json{{"parent_model", ""},
              {"format", "gguf"},
              {"family", info.architecture},
              {"families", Json::array({info.architecture})},
              {"parameter_size", info.parameter_size},
              {"quantization_level", info.quantization}};
}

void Server::Impl::openai_models(HttpResponse& res) {
  Json data = Json::array();
  for (const auto& m : listed_models()) {
    auto info = catalog.info(m);
    data.push_back(Json{{"id", m.name},
                        {"object", "model"},
                        {"created", info ? server::unix_seconds((*info)->modified) : 0},
                        {"owned_by", "codey"}});
  }
  send_json(res, Json{{"object", "list"}, {"data", std::move(data)}});
}

void Server::Impl::openai_model(const HttpRequest& req, HttpResponse& res) {
  const std::string& name = req.params.at(0);
  const auto m = resolve_model(name);
  if (!m) return send_error(res, ApiKind::kOpenAi, model_not_found(name));
  auto info = catalog.info(*m);
  send_json(res, Json{{"id", m->name},
                      {"object", "model"},
                      {"created", info ? server::unix_seconds((*info)->modified) : 0},
                      {"owned_by", "codey"}});
}

void Server::Impl::ollama_tags(HttpResponse& res) {
  Json models = Json::array();
  for (const auto& m : listed_models()) {
    auto info = catalog.info(m);
    if (!info) {
      log_warn("serve: /api/tags leaves out {}: {}", m.name, info.error().message);
      continue;
    }
    const auto& i = **info;
    models.push_back(Json{{"name", m.name},
                          {"model", m.name},
                          {"modified_at", server::rfc3339(i.modified)},
                          {"size", i.file_bytes},
                          {"digest", i.digest},
                          {"details", ollama_details(i)}});
  }
  send_json(res, Json{{"models", std::move(models)}});
}

void Server::Impl::ollama_ps(HttpResponse& res) {
  const RuntimeStatus st = runtime.status();
  Json models = Json::array();
  const auto now = std::chrono::system_clock::now();
  for (const auto& ms : st.models) {
    if (ms.state == ModelState::kUnloaded) continue;
    const auto m = runtime.find_model(ms.name);
    if (!m) continue;
    auto info = catalog.info(*m);
    // Forever (pinned, keep_alive < 0): a far date, as Ollama shows it.
    const auto expires = ms.expires_in_s ? now + std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                                     std::chrono::duration<double>(*ms.expires_in_s))
                                         : now + std::chrono::hours(24 * 365 * 100);
    Json j = Json{{"name", ms.name}, {"model", ms.name}, {"size", ms.reserved_bytes}};
    j["digest"] = info ? (*info)->digest : "";
    if (info) j["details"] = ollama_details(**info);
    j["expires_at"] = server::rfc3339(expires);
    j["size_vram"] = 0;
    j["context_length"] = ms.n_ctx;
    j["state"] = model_state_name(ms.state);
    models.push_back(std::move(j));
  }
  send_json(res, Json{{"models", std::move(models)}});
}

namespace {

// The model an Ollama request names: "model", or "name" from older clients.
// Required; `what` says what it should be.
server::ApiResult<std::string> ollama_model_name(const Json& body, std::string_view what) {
  auto name = server::read_string(body, "model", "model");
  if (name && !*name) name = server::read_string(body, "name", "name");
  if (!name) return std::unexpected(name.error());
  if (!*name || (*name)->empty()) return server::bad_field("model", fmt::format("required: {}", what));
  return std::move(**name);
}

}  // namespace

void Server::Impl::ollama_show(const HttpRequest& req, HttpResponse& res) {
  auto body = server::parse_body(req.body);
  if (!body) return send_error(res, ApiKind::kOllama, body.error());
  auto name = ollama_model_name(*body, "the name of a configured model");
  if (!name) return send_error(res, ApiKind::kOllama, name.error());
  const auto m = resolve_model(*name);
  if (!m) return send_error(res, ApiKind::kOllama, model_not_found(*name));
  auto info = catalog.info(*m);
  if (!info) return send_error(res, ApiKind::kOllama, info.error());
  const auto& i = **info;
  Json caps = Json::array({"completion"});
  if (i.tool_format != ToolCallFormat::kNone) caps.push_back("tools");
  if (auto tok = catalog.tokenizer(*m); tok && (*tok)->has_fim) caps.push_back("insert");
  std::string params;
  for (const auto& s : m->stop) params += fmt::format("stop \"{}\"\n", s);
  const SamplingOptions& so = m->sampling;
  if (so.temperature) params += fmt::format("temperature {}\n", *so.temperature);
  if (so.top_k) params += fmt::format("top_k {}\n", *so.top_k);
  if (so.top_p) params += fmt::format("top_p {}\n", *so.top_p);
  if (so.min_p) params += fmt::format("min_p {}\n", *so.min_p);
  if (so.repeat_penalty) params += fmt::format("repeat_penalty {}\n", *so.repeat_penalty);
  if (m->ctx > 0) params += fmt::format("num_ctx {}\n", m->ctx);
  Json j = Json::object();
  j["license"] = "";
  // The file's name only: the absolute path tells a client about the server's disk.
  j["modelfile"] = fmt::format("# codey serves this model from codey.yaml\nFROM {}\n",
                               std::filesystem::path(m->path).filename().string());
  j["parameters"] = params;
  j["template"] = i.chat_template.value_or("");
  j["details"] = ollama_details(i);
  j["model_info"] = i.metadata;
  j["capabilities"] = std::move(caps);
  j["modified_at"] = server::rfc3339(i.modified);
  send_json(res, j);
}

void Server::Impl::codey_load(const HttpRequest& req, HttpResponse& res, bool load) {
  // A body is optional and ignored.
  if (stopping) return send_error(res, ApiKind::kCodey, shutting_down_error());
  const std::string& name = req.params.at(0);
  const auto m = resolve_model(name);
  if (!m) return send_error(res, ApiKind::kCodey, model_not_found(name));
  const auto t0 = Clock::now();
  auto r = load ? runtime.load(m->name) : runtime.unload(m->name);
  if (!r) return send_error(res, ApiKind::kCodey, server::from_request_error(r.error()));
  send_json(res, Json{{"model", m->name}, {"status", load ? "loaded" : "unloaded"}, {"seconds", seconds_since(t0)}});
}

void Server::Impl::ready(const HttpRequest& req, HttpResponse& res) {
  const std::string name = query_param(req.head.query, "model");
  // Only the models being served: a probe needs no key, so it must not make
  // the server look on disk or add a model.
  const auto m = name.empty() ? std::nullopt : served_model(name);
  if (!name.empty() && !m) return send_error(res, ApiKind::kCodey, model_not_found(name, /*on_disk=*/false));
  const server::Readiness r = server::readiness(runtime.status(), stopping, m ? std::string_view(m->name) : "");
  Json j = Json{{"status", r.ready ? "ready" : "not ready"}, {"reasons", r.reasons}};
  send_json(res, j);
  if (!r.ready) {
    res.status = 503;
    res.set_header("Retry-After", "1");
  }
}

namespace {

// A pull on its own thread: its events wait in a queue for the request's
// thread, which writes them as Ollama's NDJSON progress lines.
struct PullJob {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Json> lines;                    // not written yet
  std::optional<Result<PullResult>> result;  // set when the pull is over
  bool downloading = false;                  // bytes flow: the 200 may be committed
  std::stop_source stop;                     // the client went away, or the server stops
  std::thread worker;
  // Progress lines are thinned to one per 100 ms per file (and each file's last).
  Clock::time_point last_line{};
  std::string last_file;

  ~PullJob() {
    stop.request_stop();
    if (worker.joinable()) worker.join();
  }
  void push(Json j, bool bytes = false) {
    {
      std::lock_guard l(mu);
      lines.push_back(std::move(j));
      downloading = downloading || bytes;
    }
    cv.notify_all();
  }
  void start(std::string ref, StoreOptions store) {
    push(Json{{"status", "pulling manifest"}});
    worker = std::thread([this, ref = std::move(ref), store = std::move(store)] {
      PullEvents ev;
      ev.on_status = [this](std::string_view st) {
        if (!st.starts_with("listing")) push(Json{{"status", std::string(st)}});
      };
      ev.on_progress = [this](const PullProgress& p) {
        const auto now = Clock::now();
        if (p.file == last_file && p.completed < p.total && now - last_line < Millis(100)) return;
        last_file = p.file;
        last_line = now;
        // Ollama names a layer by its digest's first 12 hex digits.
        const std::string id = p.digest.size() > 19 ? p.digest.substr(7, 12) : p.file;
        Json j{{"status", "pulling " + id}, {"total", p.total}, {"completed", p.completed}};
        j["digest"] = p.digest.empty() ? p.file : p.digest;
        push(std::move(j), true);
      };
      auto r = pull_model(ref, store, ev, {}, stop.get_token());
      {
        std::lock_guard l(mu);
        result = std::move(r);
      }
      cv.notify_all();
    });
  }
};

int pull_status(const Error& e) {
  switch (e.code) {
    case ErrorCode::kNotFound: return 404;
    case ErrorCode::kInvalidArgument: return 400;
    case ErrorCode::kCancelled: return 499;
    default: return 500;
  }
}

}  // namespace

// POST /api/pull {"model": "hf.co/OWNER/REPO:QUANT", "stream": true}: pulls
// into codey's store with Ollama's NDJSON progress ("pulling manifest",
// "pulling <digest>" with total / completed, "verifying sha256 digest",
// "writing manifest", "success"). An error before any byte moves gets its
// own status; later it is an {"error"} line. A client that goes away stops
// the pull (the partial file stays; the next pull resumes it).
void Server::Impl::ollama_pull(const HttpRequest& req, HttpResponse& res) {
  constexpr ApiKind api = ApiKind::kOllama;
  auto body = server::parse_body(req.body);
  if (!body) return send_error(res, api, body.error());
  auto name = ollama_model_name(*body, "e.g. hf.co/OWNER/REPO:QUANT");
  if (!name) return send_error(res, api, name.error());
  auto stream = server::read_bool(*body, "stream", "stream");
  if (!stream) return send_error(res, api, stream.error());
  const bool streaming = stream->value_or(true);
  if (stopping) return send_error(res, api, shutting_down_error());
  const std::string& model = *name;

  auto respond_success = [&] {
    if (streaming)
      res.set_content(server::dump(Json{{"status", "pulling manifest"}}) + "\n" + server::dump(Json{{"status", "success"}}) +
                          "\n",
                      "application/x-ndjson");
    else
      send_json(res, Json{{"status", "success"}});
  };
  auto parsed = parse_model_ref(model);
  if (!parsed) return send_error(res, api, make_api_error(400, "invalid_model", parsed.error().message));
  if (parsed->kind != RefKind::kHub && parsed->kind != RefKind::kHubFile) {
    // Nothing to download from Hugging Face: an Ollama name is fine when
    // Ollama's store has it (codey reads it there).
    const auto ref = client_reference(model);
    if (ref && codey::resolve_model(*ref, opt.store)) return respond_success();
    return send_error(res, api,
                      make_api_error(404, "model_not_found",
                                     fmt::format("codey pulls from Hugging Face (hf.co/OWNER/REPO:QUANT, e.g. "
                                                 "hf.co/Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF:Q4_K_M); '{}' is not "
                                                 "that{}", model,
                                                 ref ? fmt::format(", nor in Ollama's store (`ollama pull {}` "
                                                                   "fetches it there; codey reads it in place)",
                                                                   ref->substr(7))
                                                     : "")));
  }

  auto job = std::make_shared<PullJob>();
  job->start(parsed->str(), opt.store);
  const std::vector<std::string> names{model, parsed->str()};
  auto on_done = [this, names](const Result<PullResult>& r) {
    for (const auto& n : names) catalog.forget(n);
    if (r) catalog.forget(r->model.serve_name());
  };
  // Until bytes flow or the pull ends: an early error (unknown repo, no such
  // quantization, no disk space) gets its own status.
  {
    std::unique_lock l(job->mu);
    while (!job->result && (!streaming || !job->downloading)) {
      job->cv.wait_for(l, kPoll);
      if (job->result || (streaming && job->downloading)) break;
      l.unlock();
      const bool gone = peer_closed(req.fd) || stopping;
      l.lock();
      if (gone) {
        job->stop.request_stop();
        job->cv.wait(l, [&] { return job->result.has_value(); });
        res.status = 499;
        return;
      }
    }
    if (job->result) {
      const Result<PullResult> r = *job->result;
      l.unlock();
      on_done(r);
      if (!r) return send_error(res, api, make_api_error(pull_status(r.error()), "pull_failed", r.error().message));
      if (!streaming) return send_json(res, Json{{"status", "success"}});
    }
  }
  res.status = 200;
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  res.set_header("Content-Type", "application/x-ndjson");
  const int fd = req.fd;
  res.stream = [this, job, fd, on_done](StreamSink& sink) noexcept {
    try {
      std::unique_lock l(job->mu);
      while (true) {
        while (!job->lines.empty()) {
          Json j = std::move(job->lines.front());
          job->lines.pop_front();
          l.unlock();
          const bool ok = sink.write(server::dump(j) + "\n");
          l.lock();
          if (!ok) {
            job->stop.request_stop();
            return false;
          }
        }
        if (job->result) break;
        job->cv.wait_for(l, kPoll);
        if (job->lines.empty() && !job->result && (stopping || peer_closed(fd))) {
          job->stop.request_stop();
          return false;
        }
      }
      const Result<PullResult> r = *job->result;
      l.unlock();
      on_done(r);
      std::string tail;
      if (r) {
        tail = server::dump(Json{{"status", "writing manifest"}}) + "\n" + server::dump(Json{{"status", "success"}}) + "\n";
      } else {
        tail = server::dump(Json{{"error", r.error().message}}) + "\n";
      }
      return sink.write(tail);
    } catch (const std::exception& e) {
      log_error("serve: /api/pull stream failed: {}", e.what());
    } catch (...) {
      log_error("serve: /api/pull stream failed");
    }
    job->stop.request_stop();
    return false;
  };
}

// DELETE /api/delete {"model": ...}: removes a pulled model from codey's store,
// unloading it first (409 while requests use it). Models of other tools and
// files named in codey.yaml are not codey's to delete.
void Server::Impl::ollama_delete(const HttpRequest& req, HttpResponse& res) {
  constexpr ApiKind api = ApiKind::kOllama;
  auto body = server::parse_body(req.body);
  if (!body) return send_error(res, api, body.error());
  auto name = ollama_model_name(*body, "the model to delete");
  if (!name) return send_error(res, api, name.error());
  if (stopping) return send_error(res, api, shutting_down_error());
  const std::string& model = *name;
  std::optional<std::string> ref;
  if (auto m = runtime.find_model(model)) {
    if (m->ref.empty())
      return send_error(res, api,
                        make_api_error(400, "not_deletable",
                                       fmt::format("model '{}' is a file named in the configuration ({}), not a pulled "
                                                   "model; codey does not delete it", model, m->path)));
    ref = m->ref;
  } else {
    ref = client_reference(model);
  }
  auto local = ref ? codey::resolve_model(*ref, opt.store) : Result<LocalModel>(std::unexpected(Error{}));
  if (!ref || !local) return send_error(res, api, model_not_found(model));
  if (local->source == ModelSource::kCodey) {
    // Whatever serves this file lets go of it first.
    for (const auto& m : runtime.models()) {
      auto file = model_file(m);
      if (!(file && *file == local->path) && m.path != local->path) continue;
      auto r = m.ref.empty() || runtime.config().find_model(m.name) ? runtime.unload(m.name) : runtime.remove_model(m.name);
      if (!r) {
        ApiError e = server::from_request_error(r.error());
        if (r.error().code == RequestErrorCode::kBusy) e.status = 409;
        return send_error(res, api, e);
      }
      catalog.forget(m.name);
    }
  }
  auto removed = remove_model(*ref, opt.store);
  if (!removed) return send_error(res, api, make_api_error(pull_status(removed.error()), "delete_failed", removed.error().message));
  catalog.forget(model);
  log_info("serve: deleted {} ({} files)", local->ref, removed->size());
  res.status = 200;
}

void Server::Impl::setup() {
  // Enough handler threads for every slot and queue place (a request
  // waiting in the runtime holds its thread), plus spare for listing,
  // metrics and load/unload. /health runs on the I/O thread.
  int threads = opt.http_threads;
  if (threads <= 0) {
    int64_t need = 16;
    for (const auto& m : runtime.config().models) need += m.parallel + m.queue;
    threads = static_cast<int>(std::clamp<int64_t>(need, 16, 512));
  }
  const ServerConfig& c = opt.config;
  server::HttpServerOptions ho;
  ho.limits.max_body = c.max_body;
  ho.header_timeout = c.header_timeout;
  ho.body_timeout = c.body_timeout;
  ho.idle_timeout = c.idle_timeout;
  ho.max_connections = c.max_connections;
  ho.request_memory = c.request_memory;
  ho.threads = threads;

  browser.bound_host = c.host;
  browser.hosts = c.allowed_hosts;
  browser.origins = c.allowed_origins;
  if (const char* env = std::getenv("CODEY_ORIGINS"))
    for (auto& o : server::split_origins(env)) browser.origins.push_back(std::move(o));

  server::HttpHooks hooks;
  hooks.gate = [this](const HttpRequest& req) { return gate(req); };
  hooks.decorate = [this](const HttpRequest& req, HttpResponse& res) { decorate(req, res); };
  // Errors the HTTP layer answers itself get the API's error shape.
  hooks.error = [](const HttpRequest& req, HttpResponse& res, const server::HttpError& e) {
    std::string code = "invalid_request";
    switch (e.status) {
      case 404: code = "not_found"; break;
      case 405: code = "method_not_allowed"; break;
      case 408: code = "request_timeout"; break;
      case 413: code = "body_too_large"; break;
      case 414: code = "uri_too_long"; break;
      case 415: code = "unsupported_media_type"; break;
      case 431: code = "headers_too_large"; break;
      case 500: code = "internal_error"; break;
      case 501: code = "not_implemented"; break;
      case 503: code = "server_busy"; break;
      default: break;
    }
    send_error(res, api_of(req.path()), make_api_error(e.status, code, e.message));
  };
  hooks.done = [this](const HttpRequest& req, int status) {
    metrics.count_request(route_label(req.path()), status);
    log_debug("serve: {} {} -> {}", req.method(), req.path(), status);
  };
  http = std::make_unique<server::HttpServer>(std::move(ho), std::move(hooks));
  server::HttpServer& h = *http;
  using Req = HttpRequest;
  using Res = HttpResponse;

  h.route("GET", "/", [](Req&, Res& res) { res.set_content("codey is running", "text/plain"); });
  // Liveness: the process answers. It stays 200 while draining (a probe
  // must not restart a server that is finishing its streams); readiness is /ready.
  h.route(
      "GET", "/health",
      [this](Req&, Res& res) { send_json(res, Json{{"status", stopping ? "draining" : "ok"}}); },
      /*run_inline=*/true);
  h.route("GET", "/ready", [this](Req& req, Res& res) { ready(req, res); });
  h.route("GET", "/metrics", [this](Req&, Res& res) {
    res.set_content(metrics.render(runtime.status(), http->stats(), stopping), "text/plain; version=0.0.4");
  });
  h.route("GET", "/codey/status", [this](Req&, Res& res) {
    res.set_content(to_json(runtime.status()).dump(2, ' ', false, nlohmann::json::error_handler_t::replace),
                    "application/json");
  });
  h.route("POST", "/codey/models/{}/load", [this](Req& req, Res& res) { codey_load(req, res, true); });
  h.route("POST", "/codey/models/{}/unload", [this](Req& req, Res& res) { codey_load(req, res, false); });

  h.route("POST", "/v1/chat/completions",
          [this](Req& req, Res& res) { generate(req, res, ApiKind::kOpenAi, server::Endpoint::kChat); });
  h.route("POST", "/v1/completions",
          [this](Req& req, Res& res) { generate(req, res, ApiKind::kOpenAi, server::Endpoint::kCompletion); });
  h.route("GET", "/v1/models", [this](Req&, Res& res) { openai_models(res); });
  h.route("GET", "/v1/models/{*}", [this](Req& req, Res& res) { openai_model(req, res); });

  h.route("POST", "/api/generate",
          [this](Req& req, Res& res) { generate(req, res, ApiKind::kOllama, server::Endpoint::kCompletion); });
  h.route("POST", "/api/chat",
          [this](Req& req, Res& res) { generate(req, res, ApiKind::kOllama, server::Endpoint::kChat); });
  h.route("GET", "/api/tags", [this](Req&, Res& res) { ollama_tags(res); });
  h.route("GET", "/api/ps", [this](Req&, Res& res) { ollama_ps(res); });
  h.route("POST", "/api/show", [this](Req& req, Res& res) { ollama_show(req, res); });
  h.route("GET", "/api/version", [this](Req&, Res& res) { send_json(res, Json{{"version", opt.version}}); });

  // Endpoints of the two APIs codey does not have: a clear 501, not a 404.
  auto unsupported = [](Req& req, Res& res) {
    send_error(res, api_of(req.path()),
               make_api_error(501, "not_supported",
                              fmt::format("{} is not supported by codey (models come from codey.yaml, codey pull or /api/pull; no embeddings)",
                                          req.path())));
  };
  for (const char* p : {"/api/push", "/api/create", "/api/copy", "/api/embed", "/api/embeddings", "/v1/embeddings",
                        "/v1/responses"})
    h.route("POST", p, unsupported);
  h.route("POST", "/api/pull", [this](Req& req, Res& res) { ollama_pull(req, res); });
  h.route("DELETE", "/api/delete", [this](Req& req, Res& res) { ollama_delete(req, res); });
  h.route("POST", "/v1/images/{*}", unsupported);
  h.route("POST", "/v1/audio/{*}", unsupported);
}

// --------------------------------------------------------------- server --

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() { shutdown(Millis(0)); }

Result<std::unique_ptr<Server>> Server::create(Runtime& runtime, ServerOptions options) {
  auto key = resolve_api_key(options.config.api_key);
  if (!key) return std::unexpected(key.error());
  auto impl = std::make_unique<Impl>(runtime, std::move(options), std::move(*key));
  impl->setup();
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Status Server::bind() {
  const auto& c = impl_->opt.config;
  CODEY_TRY(impl_->http->bind(c.host, c.port));
  impl_->bound_port = impl_->http->port();
  return {};
}

int Server::port() const { return impl_->bound_port; }

void Server::serve() {
  if (impl_->stopping) return;
  impl_->http->serve();
}

void Server::shutdown(Millis grace) {
  std::call_once(impl_->shutdown_once, [&] {
    impl_->stopping = true;  // new requests: 503; those still waiting for a slot give up with 503 (retry elsewhere)
    impl_->http->stop();     // no new connections; idle keep-alive ones close
    // Running requests (and streams already answered) get `grace` to finish,
    // then are cancelled (a stream ends with an error event); models unload.
    impl_->runtime.drain(grace);
    impl_->runtime.shutdown(Millis(0));
  });
}

}  // namespace codey
