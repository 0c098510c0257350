// Runtime layer: configured models under one memory budget (the model
// manager), a scheduler per loaded model with continuous batching, and the
// request API the server, the assistant and the CLI use.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "codey/base.h"
#include "codey/model.h"
#include "codey/spec.h"
#include "codey/tensor.h"
#include "codey/tokenizer.h"

namespace codey {

// "5m", "30s", "1h30m", "250ms", "-1" (seconds), "0", 300 (seconds). Negative
// means "forever" where the caller allows it (keep_alive). Errors name the text.
Result<Millis> parse_duration(std::string_view text);
// "5m", "1h30m", "250ms", "forever" (negative).
std::string format_duration(Millis d);

// ---------------------------------------------------------------- config --

// Sampling settings that may be left unset; a request's set fields override a
// route's, which override the model's, which override the built-in defaults.
struct SamplingOptions {
  std::optional<float> temperature;        // 0 = greedy
  std::optional<int> top_k;                // 0 = off
  std::optional<float> top_p;              // 1 = off
  std::optional<float> min_p;              // 0 = off
  std::optional<float> repeat_penalty;     // 1 = off
  std::optional<int> repeat_last_n;        // tokens the penalties look back on
  std::optional<float> presence_penalty;   // 0 = off
  std::optional<float> frequency_penalty;  // 0 = off
  std::optional<uint64_t> seed;            // unset: a fresh seed per request

  // Fields set in `over` replace ours.
  void merge_from(const SamplingOptions& over);
};

// One configured model. Field names follow the config keys.
struct ModelConfig {
  std::string name;
  std::string path;                 // absolute (relative paths resolve against the config file's directory);
                                    // with `ref`: the file it resolved to when the config was read, else the ref
  std::string ref;                  // a model reference (hf.co/OWNER/REPO:QUANT, ollama:NAME:TAG) when path: named one
  int64_t ctx = 0;                  // positions per slot; 0 with ctx_auto
  bool ctx_auto = true;             // start small, grow as sequences need it (up to ctx_max / training context / budget)
  int64_t ctx_max = 0;              // ctx auto: upper bound (0 = the model's training context)
  TensorType kv_type = TensorType::kF16;  // f16, bf16, q8_0, f32
  int64_t batch = 512;              // most tokens one forward pass takes
  int64_t prompt_chunk = 128;       // prompt tokens per step while other slots generate
  int threads = 0;                  // 0 = the runtime's threads
  int parallel = 1;                 // slots: sequences decoded together
  bool mmap = true;                 // false: weights read into allocated memory
  bool mlock = false;               // lock mapped weights in RAM (best effort)
  bool repack = true;               // weights in the kernels' repacked layout (false: the file's)
  SamplingOptions sampling;
  std::vector<std::string> stop;    // stop strings (the model's end-of-generation tokens always stop)
  Millis keep_alive = std::chrono::minutes(5);  // idle time before unloading; 0 = after each request; < 0 = forever
  bool pinned = false;              // loaded at start, never evicted or unloaded for idleness
  int max_tokens = 0;               // generated tokens per request; 0 = until the context is full
  Millis deadline = std::chrono::minutes(10);  // per request, from when it starts running; 0 = none
  int queue = 16;                   // requests that may wait for a slot; more are rejected as busy
  // Speculative decoding (one of the two): `draft` names a configured model
  // that shares this one's vocabulary - it is loaded, counted in the budget
  // and unloaded with this model, and drafts up to draft_max tokens per step
  // (stopping at a token it gives less than draft_p_min); `lookup` drafts up
  // to that many tokens by n-gram lookup in the prompt and the text so far.
  std::string draft;
  int draft_max = 8;
  float draft_p_min = 0.75f;
  int lookup = 0;
  // The draft's configuration (path, kv_type, mmap, repack), resolved from
  // `draft` by parse_config / Runtime::create; null without a draft.
  std::shared_ptr<const ModelConfig> draft_model;
  int line = 0;                     // where it was defined (1-based; 0 = not from a file)
};

// Where the assistant (`codey task`/`codey chat`) sends a kind of task.
struct RouteConfig {
  std::string name;
  std::string model;                // a configured model's name
  std::string description;          // what the route is for (the router model sees it)
  std::string system;               // system prompt
  SamplingOptions sampling;
  int max_tokens = 0;               // 0 = the model's
  std::vector<std::string> stop;
  int line = 0;
};

// `codey serve` settings.
struct ServerConfig {
  std::string host = "127.0.0.1";
  int port = 11435;
  std::string api_key;              // empty = no key; "env:NAME" reads it from the environment
  uint64_t max_body = 8ull << 20;   // request bodies larger than this (also once decompressed) are refused
  Millis shutdown_grace = std::chrono::seconds(10);
  // Limits on clients, enforced while reading (docs/security.md).
  Millis header_timeout = std::chrono::seconds(10);  // a request head must arrive within this
  Millis body_timeout = std::chrono::seconds(60);    // its body within this after the head
  Millis idle_timeout = std::chrono::seconds(5);     // an idle keep-alive connection closes after this
  int max_connections = 256;                         // open connections; at the cap the idle or slowest close
  uint64_t request_memory = 256ull << 20;            // requests in flight together (bodies and parsing); then 503
  // Browsers: Origins allowed besides loopback ones ("*" = any; wildcards like
  // "https://*.example.com"), and Host names allowed besides the bound address
  // and loopback names (DNS rebinding). CODEY_ORIGINS (comma-separated) adds origins.
  std::vector<std::string> allowed_origins;
  std::vector<std::string> allowed_hosts;
  // server.allow_pull / --allow-pull: references in the config or --model
  // that are not pulled yet are pulled before serving instead of failing
  // with "not pulled". A request naming a missing model still gets a 404
  // that says how to pull it (nothing is downloaded on a request's word);
  // POST /api/pull works either way (the key guards it when one is set).
  bool allow_pull = false;
};

struct RuntimeConfig {
  std::string path;                 // the file it was read from ("" if built in code)
  uint64_t memory_budget = 0;       // bytes (resolved when "auto")
  bool memory_budget_auto = false;
  int threads = 0;                  // resolved: usable_cores() when "auto"
  std::vector<ModelConfig> models;  // in file order
  std::string router;               // a model name, or empty (deterministic fallback routing)
  std::vector<RouteConfig> routes;  // in file order
  ServerConfig server;

  const ModelConfig* find_model(std::string_view name) const;
  const RouteConfig* find_route(std::string_view name) const;
};

// Reads codey.yaml (or JSON, a subset of YAML). Unknown keys and bad values
// are errors of the form "<file>:<line>: <key path>: <what was expected>, got <what>".
Result<RuntimeConfig> load_config(const std::string& path);
// `base_dir` resolves relative model paths; `name` appears in error messages.
Result<RuntimeConfig> parse_config(std::string_view text, std::string_view name, const std::string& base_dir);
// Resolves every model's `draft` to the named model's configuration
// (ModelConfig::draft_model). Errors: an unknown name, a model drafting for
// itself, draft and lookup both set.
Status link_drafts(RuntimeConfig& config);
// The config file to use when none is named: $CODEY_CONFIG, else ./codey.yaml,
// else ~/.config/codey/codey.yaml (the first that exists; "codey.yaml" if none).
std::string default_config_path();
// The GGUF file of a configured model: `path`, or what `ref` resolves to
// now (so a model pulled after the config was read is found). Not pulled:
// kNotFound saying what to run. Every opener of a model's file goes through here.
Result<std::string> model_file(const ModelConfig& model);
// "auto": memory this process may use (cgroup limit or MemAvailable) minus a
// margin for the OS and the rest of the process.
uint64_t auto_memory_budget();

// ------------------------------------------------------------- requests --

// Per-request hook on the logits before sampling, e.g. the assistant's
// grammar-constrained routing. Called on the model's scheduler thread only.
class TokenConstraint {
 public:
  virtual ~TokenConstraint() = default;
  // Set the logits of tokens that may not come next to -infinity.
  virtual void apply(std::span<float> logits) = 0;
  // The token that was chosen (after apply).
  virtual void accept(TokenId token) = 0;
  // True when the constrained output is complete: generation stops (reason kStop).
  virtual bool done() const { return false; }
};

struct GenerateRequest {
  std::string model;  // a configured model's name
  // The prompt, one of: token ids; chat messages (rendered with the model's
  // chat template); text.
  std::vector<TokenId> tokens;
  nlohmann::ordered_json messages;          // array of {role, content, ...}, or null
  nlohmann::ordered_json tools;             // OpenAI-style tool schemas for the template, or null
  nlohmann::ordered_json template_context;  // extra template variables, or null
  std::string prompt;
  // Text prompts: fill-in-the-middle when set (prompt = prefix), with the
  // model's FIM tokens; an error for models without them.
  std::optional<std::string> suffix;
  bool add_special = true;    // text prompts: BOS etc. as the vocabulary asks
  bool parse_special = false; // text prompts: control tokens written in the text become tokens

  SamplingOptions sampling;
  std::map<TokenId, float> logit_bias;
  std::optional<int> max_tokens;
  std::vector<std::string> stop;  // in addition to the model's
  bool ignore_eog = false;        // keep generating past end-of-generation tokens (benchmarks)
  std::optional<Millis> keep_alive;  // the model's TTL after this request (0 = unload, < 0 = forever)
  std::optional<Millis> deadline;    // from when it starts running; 0 = none
  std::stop_token cancel;            // cancels like RequestStream::cancel()
  std::shared_ptr<TokenConstraint> constraint;
};

enum class FinishReason { kStop, kLength, kCancelled, kDeadline };
std::string_view finish_reason_name(FinishReason r);  // "stop", "length", "cancelled", "deadline"

// Errors a request can end with; each maps to one HTTP status.
enum class RequestErrorCode {
  kInvalidRequest,      // 400: a field is wrong (which and why in the message)
  kModelNotFound,       // 404
  kPromptTooLong,       // 413: prompt does not fit the model's context
  kBusy,                // 429 with Retry-After: the model's queue is full
  kInsufficientMemory,  // 503: the model does not fit the budget (numbers in the message); retry_after when it may later
  kLoadFailed,          // 500: the model file could not be loaded (operator's problem, not the client's)
  kShuttingDown,        // 503
  kInternal,            // 500
};
std::string_view request_error_name(RequestErrorCode code);
int suggested_http_status(RequestErrorCode code);

struct RequestError {
  RequestErrorCode code = RequestErrorCode::kInternal;
  std::string message;
  std::optional<Millis> retry_after;  // when retrying later may succeed
};

struct Timings {
  double queued_s = 0;       // submit until a slot took it (includes loading)
  double load_s = 0;         // model load this request waited for (0 if it was loaded)
  int64_t prompt_tokens = 0;
  int64_t prompt_cached_tokens = 0;  // of prompt_tokens: reused from the slot's cache, not processed
  double prompt_s = 0;       // prompt processing (the tokens not cached)
  int64_t generated_tokens = 0;
  double generation_s = 0;   // first token to last
  double ttft_s = 0;         // time to first token, from when it started running
  int64_t draft_tokens = 0;  // speculative decoding: tokens drafted (and verified by the model)
  int64_t draft_accepted = 0;  // of those, accepted (the model would have generated them)
  double total_s = 0;        // submit to done
  double prompt_tps() const { return prompt_s > 0 ? double(prompt_tokens - prompt_cached_tokens) / prompt_s : 0; }
  // Tokens after the first over the time they took (the first token's time is prompt processing).
  double generation_tps() const {
    return generation_s > 0 && generated_tokens > 1 ? double(generated_tokens - 1) / generation_s : 0;
  }
};

enum class EventType {
  kQueued,   // queue_position: requests ahead of this one (0 = next)
  kLoading,  // progress in [0, 1]
  kStarted,  // in a slot: timings.prompt_tokens, n_ctx
  kToken,    // text: the new complete UTF-8 text (may be empty while a stop string is possible); token
             // (kNoToken for the last flush of held-back text before kDone)
  kDone,     // finish, timings; terminal
  kError,    // error; terminal
};
std::string_view event_type_name(EventType t);

struct Event {
  EventType type = EventType::kQueued;
  int queue_position = 0;
  double progress = 0;
  int64_t n_ctx = 0;
  std::string text;
  TokenId token = kNoToken;
  FinishReason finish = FinishReason::kStop;
  std::string stop;  // the stop string that ended it (kDone, kStop), if any
  Timings timings;
  RequestError error;
  bool terminal() const { return type == EventType::kDone || type == EventType::kError; }
};

// The events of one request. Thread-safe.
class RequestStream {
 public:
  virtual ~RequestStream() = default;
  // Blocks until the next event or the timeout; nullopt on timeout and after
  // the terminal event was returned.
  virtual std::optional<Event> next(Millis timeout = Millis::max()) = 0;
  // Stops the request: a queued one leaves the queue, a running one frees its
  // slot at the next step; it ends with kDone / kCancelled. Idempotent.
  virtual void cancel() = 0;
  virtual bool finished() const = 0;  // the terminal event was returned by next()
  virtual uint64_t id() const = 0;
};

// What a finished request produced (Runtime::generate).
struct Completion {
  std::string text;
  std::vector<TokenId> tokens;
  FinishReason finish = FinishReason::kStop;
  std::string stop;
  Timings timings;
};

// --------------------------------------------------------------- status --

enum class ModelState { kUnloaded, kLoading, kLoaded, kBusy, kUnloading };
std::string_view model_state_name(ModelState s);

struct ModelStatus {
  std::string name, path;
  ModelState state = ModelState::kUnloaded;
  bool pinned = false;
  std::string error;               // why the file cannot be used (missing, corrupt), else empty
  uint64_t needed_bytes = 0;       // estimate at the starting context and slots (what loading it asks of the budget)
  uint64_t reserved_bytes = 0;     // charged to the budget now: max(estimate, measured); 0 when unloaded
  uint64_t used_bytes = 0;         // measured: allocated buffers + resident mapped pages
  uint64_t allocated_bytes = 0;
  uint64_t mapped_resident_bytes = 0;
  int slots = 0, active = 0, queued = 0;
  int queue_limit = 0;             // queued may reach this (plus free slots); then requests are rejected as busy
  int64_t n_ctx = 0;               // positions per slot now
  int64_t n_ctx_max = 0;           // how far ctx auto may grow
  double load_progress = 0;
  double idle_s = 0;               // since the last request finished (loaded, no request)
  std::optional<double> expires_in_s;  // keep_alive left; nullopt = never
  uint64_t loads = 0, unloads = 0, evictions = 0;
  double last_load_s = 0;
  uint64_t requests_done = 0, requests_failed = 0, requests_rejected = 0;
  uint64_t prompt_tokens = 0, generated_tokens = 0;
  std::string draft;               // speculative decoding: "model NAME" / "lookup N" / empty
  uint64_t draft_tokens = 0, draft_accepted = 0;
};

struct RuntimeStatus {
  uint64_t memory_budget = 0;
  uint64_t reserved_bytes = 0;  // sum over models
  uint64_t used_bytes = 0;      // sum over models (measured)
  int threads = 0;
  std::vector<ModelStatus> models;
};
nlohmann::json to_json(const ModelStatus& s);
nlohmann::json to_json(const RuntimeStatus& s);

// ------------------------------------------------------ model backends --
//
// How the runtime loads and runs models. The default backend uses GGUF files
// with codey's engine (Model + Context + Tokenizer); tests and the assistant's
// scripted-model tests may supply their own.

// What the runtime needs to know of a model before loading it, from its file.
struct ModelFacts {
  std::string architecture;
  uint64_t n_params = 0;
  uint64_t file_bytes = 0;
  int64_t n_ctx_train = 0;
  uint64_t weight_bytes = 0;       // tensor data (mapped, or allocated without mmap)
  uint64_t kv_bytes_per_pos = 0;   // one position of one slot, all layers, K and V, at the configured type
  uint64_t scratch_bytes = 0;      // activations, logits and kernel scratch at the configured batch and slots
  uint64_t bytes_at(int64_t n_ctx, int n_slots) const {
    return weight_bytes + kv_bytes_per_pos * static_cast<uint64_t>(n_ctx) * static_cast<uint64_t>(n_slots) +
           scratch_bytes;
  }
};

// The context a model starts with and the most ctx auto lets it grow to
// (fixed ctx: both are ctx; auto: 1024 or less, up to ctx_max or the training
// context).
struct CtxPlan {
  int64_t start = 0;
  int64_t limit = 0;
};
CtxPlan plan_ctx(const ModelConfig& config, const ModelFacts& facts);

struct LoadSpec {
  int64_t n_ctx = 0;   // positions per slot
  int n_slots = 1;
  ThreadPool* pool = nullptr;  // shared pool (outlives the instance), or null: own pool of n_threads
  int n_threads = 0;
};

// A loaded model. Driven by one scheduler thread: nothing here needs to be thread-safe
// except memory(), which status() calls from other threads.
class ModelInstance {
 public:
  virtual ~ModelInstance() = default;
  virtual const Tokenizer& tokenizer() const = 0;
  // The GGUF tokenizer.chat_template, if any.
  virtual std::optional<std::string> chat_template() const = 0;
  virtual int64_t n_ctx() const = 0;
  virtual int n_slots() const = 0;
  virtual int64_t n_batch() const = 0;
  virtual int64_t n_vocab() const = 0;
  virtual int64_t seq_length(int slot) const = 0;
  // Keeps the first n positions of a slot (0 clears it): prompt prefixes are reused.
  virtual Status truncate_slot(int slot, int64_t n) = 0;
  // Changes positions per slot, keeping every slot's contents.
  virtual Status resize_ctx(int64_t n_ctx) = 0;
  // Context::decode semantics: logits [n_outputs][n_vocab] of the tokens that asked.
  virtual Result<std::span<const float>> decode(const Batch& batch) = 0;
  struct Memory {
    uint64_t allocated = 0;       // heap buffers (KV cache, activations, weights without mmap)
    uint64_t mapped_resident = 0; // resident pages of the mapped file
  };
  virtual Memory memory() const = 0;  // thread-safe
  // The draft model loaded with this one (ModelConfig::draft), or null.
  // Its state follows the slots (same sequences, resized with resize_ctx).
  virtual Drafter* drafter() { return nullptr; }
};

class ModelBackend {
 public:
  virtual ~ModelBackend() = default;
  // From the file, without loading. Thread-safe.
  virtual Result<ModelFacts> inspect(const ModelConfig& config) = 0;
  // Thread-safe. progress(fraction in [0, 1]) may be called from this thread;
  // stop_requested: give up early (shutdown), returning kCancelled.
  virtual Result<std::unique_ptr<ModelInstance>> load(const ModelConfig& config, const LoadSpec& spec,
                                                      const std::function<void(double)>& progress,
                                                      std::stop_token stop) = 0;
};
// GGUF files with codey's engine. Loading touches every weight page (with
// progress) so the first request does not pay for page faults.
std::shared_ptr<ModelBackend> make_gguf_backend();

// --------------------------------------------------------------- runtime --

struct RuntimeOptions {
  std::shared_ptr<ModelBackend> backend;  // null: make_gguf_backend()
  bool load_pinned = true;                // start loading pinned models at create()
};

class Runtime {
 public:
  // Inspects every model's file (errors are kept per model and reported when
  // it is requested, so one bad file does not stop the others).
  static Result<std::unique_ptr<Runtime>> create(RuntimeConfig config, RuntimeOptions options = {});
  ~Runtime();  // shutdown(0)
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // Queues a request; never blocks on loading or decoding. Errors (unknown
  // model, full queue, no memory) arrive as the stream's first event.
  // Thread-safe.
  std::shared_ptr<RequestStream> submit(GenerateRequest request);
  // submit() and wait: text, tokens, timings; on_event sees every event.
  // Thread-safe.
  std::expected<Completion, RequestError> generate(GenerateRequest request,
                                                   const std::function<void(const Event&)>& on_event = {});

  // Loads a model now (waits for it); for `codey serve`'s load endpoint and
  // benchmarks. Thread-safe.
  std::expected<void, RequestError> load(std::string_view model);
  // Unloads a model when it has no request in flight or queued (else kBusy).
  // Pinned models may be unloaded explicitly. Thread-safe.
  std::expected<void, RequestError> unload(std::string_view model);

  // Stops accepting requests, lets running ones finish for `grace`, cancels
  // the rest, unloads everything. Thread-safe; idempotent.
  void shutdown(Millis grace);
  // The first half of a graceful stop behind a load balancer: new requests
  // (and load()) fail with kShuttingDown at once, while the queued and
  // running ones go on; waits up to `grace` for them to finish. true when
  // none is left. shutdown() then cancels what remains. Thread-safe.
  bool drain(Millis grace);

  RuntimeStatus status() const;  // thread-safe
  // The configuration the runtime was created with; models added since are
  // in models() / find_model().
  const RuntimeConfig& config() const;
  // Every model: the configured ones, then those added (copies). Thread-safe.
  std::vector<ModelConfig> models() const;
  std::optional<ModelConfig> find_model(std::string_view name) const;
  // Adds a model while running (e.g. one pulled after start); its file is
  // read on first use. A name already taken by the same file is fine (two
  // first requests may race). Errors: the name is another model's, bad
  // settings, shutting down. Thread-safe.
  Status add_model(ModelConfig model);
  // Forgets a model add_model added, unloading it first (kBusy while
  // requests use it). Configured models stay (kInvalidRequest). Thread-safe.
  std::expected<void, RequestError> remove_model(std::string_view name);
  // Facts of a model from its file (no loading).
  Result<ModelFacts> model_facts(std::string_view model) const;

  struct Impl;

 private:
  explicit Runtime(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;
};

}  // namespace codey
