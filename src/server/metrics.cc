// Prometheus metrics (see metrics.h).
#include "server/metrics.h"

#include <fmt/format.h>

#include "server/readiness.h"

namespace codey::server {
namespace {

int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(Clock::now().time_since_epoch()).count();
}

// Label values: backslash, quote and newline escaped, per the text format.
std::string label(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

void header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

}  // namespace

void Metrics::count_request(std::string_view route, int status) {
  std::lock_guard lock(mu_);
  ++requests_[{std::string(route), status}];
}

void Metrics::request_begin() {
  std::lock_guard lock(mu_);
  ++in_flight_;
}

void Metrics::request_end() {
  std::lock_guard lock(mu_);
  --in_flight_;
}

void Metrics::observe_ttft(std::string_view model, double seconds) {
  std::lock_guard lock(mu_);
  auto it = ttft_.find(model);
  if (it == ttft_.end()) it = ttft_.emplace(std::string(model), Histogram{}).first;
  Histogram& h = it->second;
  size_t i = 0;
  while (i < kTtftBuckets.size() && seconds > kTtftBuckets[i]) ++i;
  if (i < kTtftBuckets.size()) ++h.buckets[i];
  ++h.count;
  h.sum += seconds;
}

void Metrics::add_generated(std::string_view model, int64_t tokens) {
  const int64_t now = now_seconds();
  std::lock_guard lock(mu_);
  auto it = rate_.find(model);
  if (it == rate_.end()) it = rate_.emplace(std::string(model), Rate{}).first;
  Rate& r = it->second;
  const size_t slot = static_cast<size_t>(now % (kRateWindowS + 1));
  if (r.second[slot] != now) {
    r.second[slot] = now;
    r.tokens[slot] = 0;
  }
  r.tokens[slot] += tokens;
}

double Metrics::rate_locked(const Rate& r, int64_t now_s) const {
  // The last kRateWindowS whole seconds (the current, partial one excluded).
  int64_t sum = 0;
  for (size_t i = 0; i < r.second.size(); ++i)
    if (r.second[i] < now_s && r.second[i] >= now_s - kRateWindowS) sum += r.tokens[i];
  return static_cast<double>(sum) / kRateWindowS;
}

std::string Metrics::render(const RuntimeStatus& st, const HttpStats& http, bool draining) const {
  std::string out;
  out.reserve(4096);
  const int64_t now = now_seconds();
  std::lock_guard lock(mu_);

  // Summed over a cluster: how many servers take work, how many drain.
  header(out, "codey_ready", "gauge", "1 when the server takes new work (GET /ready is 200), else 0.");
  out += fmt::format("codey_ready {}\n", readiness(st, draining).ready ? 1 : 0);
  header(out, "codey_draining", "gauge", "1 while the server drains after SIGTERM (finishing its requests, taking no new ones).");
  out += fmt::format("codey_draining {}\n", draining ? 1 : 0);

  header(out, "codey_http_requests_total", "counter", "HTTP requests answered, by route and status code.");
  for (const auto& [key, n] : requests_)
    out += fmt::format("codey_http_requests_total{{route=\"{}\",status=\"{}\"}} {}\n", label(key.first), key.second, n);
  header(out, "codey_http_connections_open", "gauge", "Open client connections.");
  out += fmt::format("codey_http_connections_open {}\n", http.connections_open);
  header(out, "codey_http_connections_total", "counter",
         "Client connections by outcome: accepted; evicted (closed to make room at server.max_connections); refused "
         "(at the cap with none to close).");
  out += fmt::format("codey_http_connections_total{{outcome=\"accepted\"}} {}\n", http.connections_accepted);
  out += fmt::format("codey_http_connections_total{{outcome=\"evicted\"}} {}\n", http.connections_evicted);
  out += fmt::format("codey_http_connections_total{{outcome=\"refused\"}} {}\n", http.connections_refused);
  header(out, "codey_http_timeouts_total", "counter", "Request heads, bodies or response writes past their deadline.");
  out += fmt::format("codey_http_timeouts_total {}\n", http.timeouts);
  header(out, "codey_http_request_body_bytes_total", "counter", "Request body bytes read from clients.");
  out += fmt::format("codey_http_request_body_bytes_total {}\n", http.body_bytes_read);
  header(out, "codey_http_request_memory_bytes", "gauge",
         "Memory reserved by the requests in flight (bodies and their parsing), limit server.request_memory.");
  out += fmt::format("codey_http_request_memory_bytes {}\n", http.request_memory_used);
  header(out, "codey_http_request_memory_refusals_total", "counter", "Requests refused (503) at server.request_memory.");
  out += fmt::format("codey_http_request_memory_refusals_total {}\n", http.request_memory_refusals);
  header(out, "codey_requests_in_flight", "gauge", "Generation requests (chat, completions, generate) being handled now.");
  out += fmt::format("codey_requests_in_flight {}\n", in_flight_);

  header(out, "codey_time_to_first_token_seconds", "histogram",
         "Time from a request's arrival to its first generated token (includes queueing and loading).");
  for (const auto& [model, h] : ttft_) {
    uint64_t cum = 0;
    for (size_t i = 0; i < kTtftBuckets.size(); ++i) {
      cum += h.buckets[i];
      out += fmt::format("codey_time_to_first_token_seconds_bucket{{model=\"{}\",le=\"{}\"}} {}\n", label(model),
                         kTtftBuckets[i], cum);
    }
    out += fmt::format("codey_time_to_first_token_seconds_bucket{{model=\"{}\",le=\"+Inf\"}} {}\n", label(model), h.count);
    out += fmt::format("codey_time_to_first_token_seconds_sum{{model=\"{}\"}} {}\n", label(model), h.sum);
    out += fmt::format("codey_time_to_first_token_seconds_count{{model=\"{}\"}} {}\n", label(model), h.count);
  }

  header(out, "codey_generation_tokens_per_second", "gauge",
         "Tokens generated per second over the last 10 s, summed over a model's requests.");
  for (const auto& m : st.models) {
    auto it = rate_.find(m.name);
    out += fmt::format("codey_generation_tokens_per_second{{model=\"{}\"}} {:.3f}\n", label(m.name),
                       it == rate_.end() ? 0.0 : rate_locked(it->second, now));
  }

  auto per_model = [&](std::string_view name, std::string_view type, std::string_view help, auto value) {
    header(out, name, type, help);
    for (const auto& m : st.models) out += fmt::format("{}{{model=\"{}\"}} {}\n", name, label(m.name), value(m));
  };
  per_model("codey_queue_depth", "gauge", "Requests waiting for a slot.", [](const ModelStatus& m) { return m.queued; });
  per_model("codey_queue_limit", "gauge", "Requests that may wait for a slot before new ones get 429 (the model's queue).",
            [](const ModelStatus& m) { return m.queue_limit; });
  per_model("codey_active_requests", "gauge", "Requests decoding in a slot.", [](const ModelStatus& m) { return m.active; });
  per_model("codey_slots", "gauge", "Sequences a loaded model decodes together.", [](const ModelStatus& m) { return m.slots; });
  per_model("codey_model_loaded", "gauge", "1 when the model is loaded (idle or busy).", [](const ModelStatus& m) {
    return m.state == ModelState::kLoaded || m.state == ModelState::kBusy ? 1 : 0;
  });
  per_model("codey_model_loading", "gauge", "1 while the model loads.",
            [](const ModelStatus& m) { return m.state == ModelState::kLoading ? 1 : 0; });
  per_model("codey_model_context_positions", "gauge", "Positions per slot now.", [](const ModelStatus& m) { return m.n_ctx; });
  per_model("codey_model_memory_used_bytes", "gauge", "Measured: allocated buffers plus resident mapped pages.",
            [](const ModelStatus& m) { return m.used_bytes; });
  per_model("codey_model_memory_reserved_bytes", "gauge", "Charged to the memory budget.",
            [](const ModelStatus& m) { return m.reserved_bytes; });
  per_model("codey_model_loads_total", "counter", "Times the model was loaded.", [](const ModelStatus& m) { return m.loads; });
  per_model("codey_model_evictions_total", "counter", "Times the model was unloaded to make room.",
            [](const ModelStatus& m) { return m.evictions; });
  header(out, "codey_requests_total", "counter", "Generation requests by outcome (done, failed, rejected).");
  for (const auto& m : st.models) {
    out += fmt::format("codey_requests_total{{model=\"{}\",outcome=\"done\"}} {}\n", label(m.name), m.requests_done);
    out += fmt::format("codey_requests_total{{model=\"{}\",outcome=\"failed\"}} {}\n", label(m.name), m.requests_failed);
    out += fmt::format("codey_requests_total{{model=\"{}\",outcome=\"rejected\"}} {}\n", label(m.name), m.requests_rejected);
  }
  per_model("codey_prompt_tokens_total", "counter", "Prompt tokens processed.", [](const ModelStatus& m) { return m.prompt_tokens; });
  per_model("codey_generated_tokens_total", "counter", "Tokens generated.", [](const ModelStatus& m) { return m.generated_tokens; });
  per_model("codey_draft_tokens_total", "counter", "Speculative decoding: tokens drafted and verified.",
            [](const ModelStatus& m) { return m.draft_tokens; });
  per_model("codey_draft_accepted_total", "counter", "Speculative decoding: drafted tokens accepted.",
            [](const ModelStatus& m) { return m.draft_accepted; });

  header(out, "codey_memory_budget_bytes", "gauge", "The memory budget models are loaded under.");
  out += fmt::format("codey_memory_budget_bytes {}\n", st.memory_budget);
  header(out, "codey_memory_reserved_bytes", "gauge", "Memory charged to the budget by loaded models.");
  out += fmt::format("codey_memory_reserved_bytes {}\n", st.reserved_bytes);
  header(out, "codey_memory_used_bytes", "gauge", "Memory measured in use by loaded models.");
  out += fmt::format("codey_memory_used_bytes {}\n", st.used_bytes);
  header(out, "codey_process_resident_bytes", "gauge", "Resident set size of the codey process.");
  out += fmt::format("codey_process_resident_bytes {}\n", current_rss_bytes());
  return out;
}

}  // namespace codey::server
