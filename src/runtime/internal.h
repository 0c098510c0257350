// Runtime internals shared by the manager (runtime.cc), the per-model
// scheduler (scheduler.cc) and the sampling bridge (sampler.cc).
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <thread>
#include <vector>

#include "codey/chat.h"
#include "codey/runtime.h"
#include "codey/sampling.h"

namespace codey::rt {

struct ModelEntry;

// One submitted request: its settings, its event queue (the stream reads it)
// and the bookkeeping the manager does under the runtime lock.
struct Request {
  uint64_t id = 0;
  GenerateRequest req;
  Clock::time_point submitted;
  std::weak_ptr<Runtime::Impl> runtime;
  ModelEntry* entry = nullptr;

  // Under the runtime lock.
  bool waited_for_load = false;
  Clock::time_point load_wait_start;
  double load_waited_s = 0;
  int last_position = -1;

  std::atomic<bool> cancelled{false};

  // Event queue: `mu` guards these; producers are the runtime's threads.
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Event> events;
  bool terminal_pushed = false;
  bool terminal_returned = false;
  std::unique_ptr<std::stop_callback<std::function<void()>>> stop_cb;

  // Appends an event; events after the terminal one are dropped.
  void push(Event e);
  void push_error(RequestErrorCode code, std::string message, std::optional<Millis> retry = std::nullopt);
};

// Turns logits into the next token for one request (sampling options, logit
// bias, penalties over the request's tokens). Scheduler thread only.
class SlotSampler {
 public:
  virtual ~SlotSampler() = default;
  // `logits` may be modified in place.
  virtual TokenId sample(std::span<float> logits) = 0;
  // Speculative sampling's verdict on a drafted token (Sampler::verify).
  virtual DraftVerdict verify(std::span<float> logits, TokenId draft, const TokenProbs* q) = 0;
  virtual void accept(TokenId token) = 0;
  virtual const SamplerParams& params() const = 0;
};
// Errors name the option that is out of range.
Result<std::unique_ptr<SlotSampler>> make_slot_sampler(const SamplingOptions& options,
                                                       const std::map<TokenId, float>& logit_bias,
                                                       std::span<const TokenId> prompt, int64_t n_vocab);
// Defaults for fields nobody set.
SamplingOptions default_sampling();

// One configured model: its state machine and everything charged to the
// budget. Fields are guarded by Runtime::Impl::mu unless noted.
struct ModelEntry {
  ModelConfig cfg;
  // add_model: added while running; remove_model: forgotten (find() skips it;
  // the entry stays so pointers taken before remain valid). Under the lock.
  bool added = false;
  bool removed = false;
  std::optional<ModelFacts> facts;   // from the file; retried when missing
  std::string facts_error;

  ModelState state = ModelState::kUnloaded;
  // Set/reset under the lock by the runner; the runner uses it without the
  // lock while serving (only memory() is called by others, under the lock).
  std::unique_ptr<ModelInstance> inst;
  std::optional<ChatTemplate> chat_template;  // parsed once per load; runner only

  std::deque<std::shared_ptr<Request>> queue;  // waiting for a slot (also while loading)
  std::vector<std::shared_ptr<Request>> running;  // in slots
  bool stop = false;          // unload as soon as no request runs (eviction, unload(), TTL, shutdown)
  std::stop_source load_stop; // cancels a load in progress (shutdown)

  uint64_t needed = 0;        // estimate at the starting context: what loading asks of the budget
  uint64_t reserved = 0;      // charged to the budget (0 when unloaded)
  int64_t n_ctx = 0;          // positions per slot now
  int64_t n_ctx_limit = 0;    // the most ctx auto may grow to (fixed: ctx)
  Millis ttl{0};              // keep-alive after the last request
  Clock::time_point idle_since;
  double load_progress = 0;
  Clock::time_point load_started;
  double last_load_s = 0;
  uint64_t load_attempts = 0, load_finished = 0;  // load() waits on these
  std::string last_error;

  uint64_t loads = 0, unloads = 0, evictions = 0;
  uint64_t requests_done = 0, requests_failed = 0, requests_rejected = 0;
  uint64_t prompt_tokens = 0, generated_tokens = 0;
  uint64_t draft_tokens = 0, draft_accepted = 0;  // speculative decoding

  std::thread runner;         // loads, serves, unloads; joined before a new one starts
};

}  // namespace codey::rt

namespace codey {

struct Runtime::Impl : std::enable_shared_from_this<Runtime::Impl> {
  RuntimeConfig cfg;
  std::shared_ptr<ModelBackend> backend;
  std::unique_ptr<ThreadPool> pool;  // shared by models that use the runtime's thread count

  mutable std::mutex mu;
  std::condition_variable cv;  // any state change; waiters re-check their predicate
  std::vector<std::unique_ptr<rt::ModelEntry>> models;
  bool shutting_down = false;
  bool draining = false;  // drain(): no new requests; queued and running ones go on
  bool shut_down = false;
  std::atomic<uint64_t> next_id{1};

  // The entry of a model not removed, or null. Takes the lock (entries are
  // appended by add_model; they are never destroyed before the runtime).
  rt::ModelEntry* find(std::string_view name) const;
  std::string names() const;  // "a, b" for messages; takes the lock
  // Runs inspect() when facts are missing. Call without the lock.
  void ensure_facts(rt::ModelEntry& e);

  // Memory admission for loading `e` (needs e.facts). Under the lock. On
  // success `e` is Loading and charged, and victims are Unloading; the caller
  // runs the load (spawn_runner, or the runner itself when reloading).
  std::optional<RequestError> admit_load(rt::ModelEntry& e, std::unique_lock<std::mutex>& lock);
  // Makes `extra` more bytes available to the loaded model `e` (ctx auto
  // growth), evicting idle models if needed and waiting for them to go.
  // Under the lock; may wait (releases it). False if it cannot.
  bool reserve_more(rt::ModelEntry& e, uint64_t extra, std::unique_lock<std::mutex>& lock);
  // Which idle models to evict to free `need` bytes; empty if not enough.
  std::vector<rt::ModelEntry*> choose_victims(const rt::ModelEntry& for_model, uint64_t need) const;
  uint64_t committed_except(const rt::ModelEntry* e) const;  // Loading/Loaded/Busy
  uint64_t held_total() const;                              // everything not Unloaded
  void begin_loading(rt::ModelEntry& e);                    // under the lock
  void spawn_runner(rt::ModelEntry& e);                     // under the lock
  void run_model(rt::ModelEntry* e);                        // the runner thread
  void serve(rt::ModelEntry& e);                            // scheduler loop (scheduler.cc)
  void fail_queue(rt::ModelEntry& e, RequestErrorCode code, const std::string& message);  // under the lock
  void update_positions(rt::ModelEntry& e);                 // under the lock
  void on_cancel(const std::shared_ptr<rt::Request>& r);
  void measure(rt::ModelEntry& e);                          // under the lock: reserved = max(estimate, used)
  uint64_t estimate_at(const rt::ModelEntry& e, int64_t n_ctx) const;
  // (starting positions per slot, the most it may grow to); needs e.facts.
  std::pair<int64_t, int64_t> ctx_plan(const rt::ModelEntry& e) const;
  void submit(const std::shared_ptr<rt::Request>& r);
};

}  // namespace codey
