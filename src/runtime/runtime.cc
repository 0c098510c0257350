// The model manager: one lock-protected table of configured models, each an
// explicit state machine (unloaded -> loading -> loaded <-> busy ->
// unloading), memory admission against the budget with eviction, keep-alive,
// and the request API (submit / generate / load / unload / status).
#include <algorithm>
#include <numeric>

#include "runtime/internal.h"

namespace codey {

using rt::ModelEntry;
using rt::Request;

namespace {

// ctx auto starts here (or lower when the model's limit is lower).
constexpr int64_t kAutoCtxStart = 1024;

class StreamImpl final : public RequestStream {
 public:
  explicit StreamImpl(std::shared_ptr<Request> r) : r_(std::move(r)) {}
  ~StreamImpl() override = default;

  std::optional<Event> next(Millis timeout) override {
    std::unique_lock lock(r_->mu);
    if (r_->terminal_returned) return std::nullopt;
    auto ready = [&] { return !r_->events.empty(); };
    if (timeout == Millis::max()) {
      r_->cv.wait(lock, ready);
    } else if (!r_->cv.wait_for(lock, timeout, ready)) {
      return std::nullopt;
    }
    Event e = std::move(r_->events.front());
    r_->events.pop_front();
    if (e.terminal()) r_->terminal_returned = true;
    return e;
  }

  void cancel() override { cancel_request(r_); }
  bool finished() const override {
    std::lock_guard lock(r_->mu);
    return r_->terminal_returned;
  }
  uint64_t id() const override { return r_->id; }

  static void cancel_request(const std::shared_ptr<Request>& r) {
    {
      std::lock_guard lock(r->mu);
      if (r->terminal_pushed) return;
    }
    if (r->cancelled.exchange(true)) return;
    if (auto rt = r->runtime.lock()) rt->on_cancel(r);
  }

 private:
  std::shared_ptr<Request> r_;
};

RequestError req_error(RequestErrorCode code, std::string message, std::optional<Millis> retry = std::nullopt) {
  return RequestError{code, std::move(message), retry};
}


}  // namespace

namespace rt {

void Request::push(Event e) {
  {
    std::lock_guard lock(mu);
    if (terminal_pushed) return;
    if (e.terminal()) terminal_pushed = true;
    events.push_back(std::move(e));
  }
  cv.notify_all();
}

void Request::push_error(RequestErrorCode code, std::string message, std::optional<Millis> retry) {
  Event e;
  e.type = EventType::kError;
  e.error = RequestError{code, std::move(message), retry};
  push(std::move(e));
}

}  // namespace rt

ModelEntry* Runtime::Impl::find(std::string_view name) const {
  std::lock_guard lock(mu);
  for (const auto& m : models)
    if (!m->removed && m->cfg.name == name) return m.get();
  return nullptr;
}

std::string Runtime::Impl::names() const {
  std::lock_guard lock(mu);
  std::string s;
  for (const auto& m : models)
    if (!m->removed) s += (s.empty() ? "" : ", ") + m->cfg.name;
  return s.empty() ? "(none)" : s;
}

void Runtime::Impl::ensure_facts(ModelEntry& e) {
  {
    std::lock_guard lock(mu);
    if (e.facts) return;
  }
  auto f = backend->inspect(e.cfg);  // file IO: outside the lock
  std::lock_guard lock(mu);
  if (e.facts) return;
  if (f) {
    e.facts = *f;
    e.facts_error.clear();
  } else {
    e.facts_error = f.error().message;
  }
}

uint64_t Runtime::Impl::estimate_at(const ModelEntry& e, int64_t n_ctx) const {
  return e.facts ? e.facts->bytes_at(n_ctx, e.cfg.parallel) : 0;
}

uint64_t Runtime::Impl::committed_except(const ModelEntry* x) const {
  uint64_t sum = 0;
  for (const auto& m : models)
    if (m.get() != x && (m->state == ModelState::kLoading || m->state == ModelState::kLoaded ||
                         m->state == ModelState::kBusy))
      sum += m->reserved;
  return sum;
}

uint64_t Runtime::Impl::held_total() const {
  uint64_t sum = 0;
  for (const auto& m : models)
    if (m->state != ModelState::kUnloaded) sum += m->reserved;
  return sum;
}

std::vector<ModelEntry*> Runtime::Impl::choose_victims(const ModelEntry& for_model, uint64_t need) const {
  // Idle, unpinned, nothing queued: least recently used first.
  std::vector<ModelEntry*> idle;
  for (const auto& m : models)
    if (m.get() != &for_model && m->state == ModelState::kLoaded && !m->cfg.pinned && m->running.empty() &&
        m->queue.empty() && !m->stop)
      idle.push_back(m.get());
  std::stable_sort(idle.begin(), idle.end(),
                   [](const ModelEntry* a, const ModelEntry* b) { return a->idle_since < b->idle_since; });
  // One model that frees enough on its own beats several: the least recently
  // used of those.
  for (ModelEntry* m : idle)
    if (m->reserved >= need) return {m};
  // Else the least recently used until enough, then give back the ones that
  // turned out unnecessary (most recently used first).
  std::vector<ModelEntry*> chosen;
  uint64_t freed = 0;
  for (ModelEntry* m : idle) {
    if (freed >= need) break;
    chosen.push_back(m);
    freed += m->reserved;
  }
  if (freed < need) return {};
  for (size_t i = chosen.size(); i-- > 0;) {
    if (freed - chosen[i]->reserved >= need) {
      freed -= chosen[i]->reserved;
      chosen.erase(chosen.begin() + static_cast<std::ptrdiff_t>(i));
    }
  }
  return chosen;
}

std::optional<RequestError> Runtime::Impl::admit_load(ModelEntry& e, std::unique_lock<std::mutex>&) {
  CODEY_ASSERT(e.state == ModelState::kUnloaded);
  if (!e.facts)
    return req_error(RequestErrorCode::kLoadFailed, fmt::format("model '{}' cannot be used: {}", e.cfg.name, e.facts_error));
  const ModelFacts& f = *e.facts;
  const auto [start, limit] = ctx_plan(e);
  const uint64_t needed = f.bytes_at(start, e.cfg.parallel);
  const uint64_t budget = cfg.memory_budget;
  const std::string what =
      fmt::format("model '{}' needs {} (weights {} + KV cache {} for {} positions x {} slots + scratch {})", e.cfg.name,
                  format_bytes(needed), format_bytes(f.weight_bytes),
                  format_bytes(f.kv_bytes_per_pos * uint64_t(start) * uint64_t(e.cfg.parallel)), start,
                  e.cfg.parallel, format_bytes(f.scratch_bytes));
  if (needed > budget)
    return req_error(RequestErrorCode::kInsufficientMemory,
                     fmt::format("{}, more than the whole memory budget of {}", what, format_bytes(budget)));
  uint64_t pinned = 0;
  std::string pinned_names;
  for (const auto& m : models)
    if (m.get() != &e && m->cfg.pinned && m->state != ModelState::kUnloaded && m->state != ModelState::kUnloading) {
      pinned += m->reserved;
      pinned_names += (pinned_names.empty() ? "" : ", ") + m->cfg.name;
    }
  if (needed > budget - std::min(budget, pinned))
    return req_error(RequestErrorCode::kInsufficientMemory,
                     fmt::format("{}, but only {} of the {} budget can ever be free: {} is held by pinned models ({})",
                                 what, format_bytes(budget - std::min(budget, pinned)), format_bytes(budget),
                                 format_bytes(pinned), pinned_names));
  const uint64_t committed = committed_except(&e);
  const uint64_t free = budget > committed ? budget - committed : 0;
  std::vector<ModelEntry*> victims;
  if (needed > free) {
    victims = choose_victims(e, needed - free);
    if (victims.empty()) {
      uint64_t busy = 0;
      std::string busy_names;
      for (const auto& m : models)
        if (m.get() != &e && !m->cfg.pinned && (m->state == ModelState::kLoading || m->state == ModelState::kBusy ||
                                                (m->state == ModelState::kLoaded && (!m->queue.empty() || m->stop)))) {
          busy += m->reserved;
          busy_names += (busy_names.empty() ? "" : ", ") + m->cfg.name;
        }
      return req_error(RequestErrorCode::kInsufficientMemory,
                       fmt::format("{}, but only {} of the {} budget is free and no idle model can be unloaded to make "
                                   "room; {} is held by models with requests in flight ({})",
                                   what, format_bytes(free), format_bytes(budget), format_bytes(busy), busy_names),
                       Millis(2000));
    }
  }
  for (ModelEntry* v : victims) {
    log_info("runtime: evicting '{}' ({}, idle {:.1f}s) to load '{}'", v->cfg.name, format_bytes(v->reserved),
             seconds_since(v->idle_since), e.cfg.name);
    v->stop = true;
    v->state = ModelState::kUnloading;
    ++v->evictions;
  }
  e.needed = needed;
  e.reserved = needed;
  e.n_ctx = start;
  e.n_ctx_limit = limit;
  begin_loading(e);
  cv.notify_all();
  return std::nullopt;
}

void Runtime::Impl::spawn_runner(ModelEntry& e) {
  // A finished runner set Unloaded as its last locked act and touches
  // nothing after it, so joining it under the lock is safe.
  if (e.runner.joinable()) e.runner.join();
  e.runner = std::thread(&Runtime::Impl::run_model, this, &e);
}

void Runtime::Impl::begin_loading(ModelEntry& e) {
  e.state = ModelState::kLoading;
  e.stop = false;
  e.load_stop = std::stop_source();
  e.load_progress = 0;
  e.load_started = Clock::now();
  ++e.load_attempts;
  for (auto& r : e.queue) {
    r->waited_for_load = true;
    r->load_wait_start = Clock::now();
  }
}

void Runtime::Impl::fail_queue(ModelEntry& e, RequestErrorCode code, const std::string& message) {
  for (auto& r : e.queue) {
    r->push_error(code, message);
    ++e.requests_failed;
  }
  e.queue.clear();
}

void Runtime::Impl::update_positions(ModelEntry& e) {
  int pos = 0;
  for (auto& r : e.queue) {
    if (r->last_position != pos) {
      r->last_position = pos;
      Event ev;
      ev.type = EventType::kQueued;
      ev.queue_position = pos;
      r->push(std::move(ev));
    }
    ++pos;
  }
}

void Runtime::Impl::measure(ModelEntry& e) {
  if (!e.inst) return;
  const auto m = e.inst->memory();
  const uint64_t used = m.allocated + m.mapped_resident;
  const uint64_t est = estimate_at(e, e.n_ctx);
  if (used > est)
    log_debug("runtime: model '{}' uses {} measured, above its estimate of {}", e.cfg.name, format_bytes(used),
              format_bytes(est));
  e.reserved = std::max(est, used);
}

void Runtime::Impl::run_model(ModelEntry* ep) {
  ModelEntry& e = *ep;
  std::unique_lock lock(mu);
  for (;;) {
    // Loading: wait until evicted models have actually released their memory.
    cv.wait(lock, [&] { return shutting_down || e.load_stop.stop_requested() || held_total() <= cfg.memory_budget; });
    if (shutting_down || e.load_stop.stop_requested()) {
      fail_queue(e, RequestErrorCode::kShuttingDown, "the runtime is shutting down");
      e.state = ModelState::kUnloaded;
      e.reserved = 0;
      ++e.load_finished;
      cv.notify_all();
      return;
    }
    e.load_started = Clock::now();
    LoadSpec spec;
    spec.n_ctx = e.n_ctx;
    spec.n_slots = e.cfg.parallel;
    spec.n_threads = e.cfg.threads > 0 ? e.cfg.threads : cfg.threads;
    spec.pool = (e.cfg.threads <= 0 || e.cfg.threads == cfg.threads) ? pool.get() : nullptr;
    const ModelConfig mcfg = e.cfg;
    std::stop_token stop = e.load_stop.get_token();
    lock.unlock();

    double last_reported = -1;
    auto progress = [&](double p) {
      if (p < last_reported + 0.01 && p < 1.0) return;
      last_reported = p;
      std::lock_guard g(mu);
      e.load_progress = p;
      for (auto& r : e.queue) {
        Event ev;
        ev.type = EventType::kLoading;
        ev.progress = p;
        r->push(std::move(ev));
      }
    };
    log_info("runtime: loading '{}' ({}, {} positions x {} slots)", mcfg.name, mcfg.path, spec.n_ctx, spec.n_slots);
    auto inst = backend->load(mcfg, spec, progress, stop);

    lock.lock();
    ++e.load_finished;
    const double load_s = seconds_since(e.load_started);
    if (!inst) {
      e.last_error = inst.error().message;
      log_error("runtime: {}", e.last_error);
      const bool cancelled = inst.error().code == ErrorCode::kCancelled;
      fail_queue(e, cancelled ? RequestErrorCode::kShuttingDown : RequestErrorCode::kLoadFailed, inst.error().message);
      e.state = ModelState::kUnloaded;
      e.reserved = 0;
      cv.notify_all();
      return;
    }
    e.inst = std::move(*inst);
    e.chat_template.reset();
    e.last_error.clear();
    e.last_load_s = load_s;
    ++e.loads;
    e.n_ctx = e.inst->n_ctx();
    e.state = ModelState::kLoaded;
    e.idle_since = Clock::now();
    e.ttl = e.cfg.keep_alive;
    measure(e);
    for (auto& r : e.queue)
      if (r->waited_for_load) r->load_waited_s = seconds_since(r->load_wait_start);
    log_info("runtime: loaded '{}' in {:.2f}s ({} reserved)", e.cfg.name, load_s, format_bytes(e.reserved));
    cv.notify_all();
    lock.unlock();

    serve(e);

    lock.lock();
    e.state = ModelState::kUnloading;
    std::unique_ptr<ModelInstance> dying = std::move(e.inst);
    e.chat_template.reset();
    cv.notify_all();
    lock.unlock();
    dying.reset();  // frees the KV cache and activations, unmaps the weights
    lock.lock();
    e.state = ModelState::kUnloaded;
    e.reserved = 0;
    e.stop = false;
    ++e.unloads;
    log_info("runtime: unloaded '{}'", e.cfg.name);
    cv.notify_all();
    // Requests that arrived while it was unloading: load it again.
    if (e.queue.empty() || shutting_down) {
      if (shutting_down) fail_queue(e, RequestErrorCode::kShuttingDown, "the runtime is shutting down");
      return;
    }
    if (auto err = admit_load(e, lock); err) {
      fail_queue(e, err->code, err->message);
      return;
    }
    // Loading again, on this same thread.
  }
}

void Runtime::Impl::on_cancel(const std::shared_ptr<Request>& r) {
  std::lock_guard lock(mu);
  ModelEntry* e = r->entry;
  if (!e) return;
  auto it = std::find(e->queue.begin(), e->queue.end(), r);
  if (it != e->queue.end()) {
    e->queue.erase(it);
    Event ev;
    ev.type = EventType::kDone;
    ev.finish = FinishReason::kCancelled;
    ev.timings.queued_s = seconds_since(r->submitted);
    ev.timings.total_s = ev.timings.queued_s;
    ev.timings.load_s = r->waited_for_load ? seconds_since(r->load_wait_start) : 0;
    r->push(std::move(ev));
    ++e->requests_done;
    update_positions(*e);
  }
  // A running request is noticed by its scheduler at the next step.
  cv.notify_all();
}

namespace {

std::optional<RequestError> validate(const GenerateRequest& q) {
  const int kinds = int(!q.tokens.empty()) + int(q.messages.is_array()) + int(!q.prompt.empty());
  if (kinds > 1)
    return req_error(RequestErrorCode::kInvalidRequest, "give the prompt as one of tokens, messages or text, not several");
  if (kinds == 0 && !q.suffix)
    return req_error(RequestErrorCode::kInvalidRequest, "the request has no prompt (tokens, messages or text)");
  if (!q.messages.is_null() && !q.messages.is_array())
    return req_error(RequestErrorCode::kInvalidRequest, "messages must be an array");
  if (q.suffix && (!q.tokens.empty() || q.messages.is_array()))
    return req_error(RequestErrorCode::kInvalidRequest, "suffix (fill-in-the-middle) needs a text prompt");
  if (q.max_tokens && *q.max_tokens < 0)
    return req_error(RequestErrorCode::kInvalidRequest, fmt::format("max_tokens must be >= 0, got {}", *q.max_tokens));
  if (q.deadline && q.deadline->count() < 0)
    return req_error(RequestErrorCode::kInvalidRequest, "deadline must be >= 0");
  for (const auto& s : q.stop)
    if (s.empty()) return req_error(RequestErrorCode::kInvalidRequest, "stop strings must not be empty");
  return std::nullopt;
}

}  // namespace

void Runtime::Impl::submit(const std::shared_ptr<Request>& r) {
  if (auto err = validate(r->req)) {
    r->push_error(err->code, err->message);
    return;
  }
  ModelEntry* e = find(r->req.model);
  if (!e) {
    r->push_error(RequestErrorCode::kModelNotFound,
                  fmt::format("no model named '{}' (configured: {})", r->req.model, names()));
    return;
  }
  ensure_facts(*e);
  std::unique_lock lock(mu);
  if (shutting_down || draining) {
    r->push_error(RequestErrorCode::kShuttingDown,
                  shutting_down ? "the runtime is shutting down" : "the server is draining: it takes no new requests");
    return;
  }
  if (!e->facts) {
    ++e->requests_failed;
    r->push_error(RequestErrorCode::kLoadFailed, fmt::format("model '{}' cannot be used: {}", e->cfg.name, e->facts_error));
    return;
  }
  const int free_slots = e->cfg.parallel - static_cast<int>(e->running.size());
  if (static_cast<int>(e->queue.size()) >= e->cfg.queue + std::max(0, free_slots)) {
    ++e->requests_rejected;
    r->push_error(RequestErrorCode::kBusy,
                  fmt::format("model '{}' is busy: {} requests running in {} slots and {} waiting (queue limit {}); "
                              "retry later",
                              e->cfg.name, e->running.size(), e->cfg.parallel, e->queue.size(), e->cfg.queue),
                  Millis(1000));
    return;
  }
  if (r->cancelled.load()) {  // cancelled (stop_token) before it was queued
    Event ev;
    ev.type = EventType::kDone;
    ev.finish = FinishReason::kCancelled;
    r->push(std::move(ev));
    return;
  }
  r->entry = e;
  e->queue.push_back(r);
  if (e->state == ModelState::kUnloaded) {
    if (auto err = admit_load(*e, lock)) {
      e->queue.pop_back();
      r->entry = nullptr;
      ++e->requests_failed;
      r->push_error(err->code, err->message, err->retry_after);
      return;
    }
    spawn_runner(*e);
  } else if (e->state == ModelState::kLoading || e->state == ModelState::kUnloading) {
    r->waited_for_load = true;
    r->load_wait_start = Clock::now();
  }
  update_positions(*e);
  if (e->state == ModelState::kLoading) {
    Event ev;
    ev.type = EventType::kLoading;
    ev.progress = e->load_progress;
    r->push(std::move(ev));
  }
  cv.notify_all();
}

// ---------------------------------------------------------------- Runtime --

namespace {

Status check_model_settings(const ModelConfig& m) {
  if (m.name.empty()) return make_error(ErrorCode::kInvalidArgument, "a model needs a name");
  if (m.parallel < 1 || m.batch < 1 || m.prompt_chunk < 1 || (!m.ctx_auto && m.ctx < 1))
    return make_error(ErrorCode::kInvalidArgument, "model '{}': parallel, batch, prompt_chunk and ctx must be positive",
                      m.name);
  if (m.draft_max < 1 || m.draft_max > 64 || m.lookup < 0 || m.lookup > 64 || !(m.draft_p_min >= 0.0f && m.draft_p_min <= 1.0f))
    return make_error(ErrorCode::kInvalidArgument,
                      "model '{}': draft_max must be in [1, 64], lookup in [0, 64], draft_p_min in [0, 1]", m.name);
  return {};
}

}  // namespace

Result<std::unique_ptr<Runtime>> Runtime::create(RuntimeConfig config, RuntimeOptions options) {
  auto impl = std::make_shared<Impl>();
  impl->cfg = std::move(config);
  impl->backend = options.backend ? options.backend : make_gguf_backend();
  if (impl->cfg.threads <= 0) impl->cfg.threads = usable_cores();
  if (impl->cfg.memory_budget == 0) impl->cfg.memory_budget = auto_memory_budget();
  CODEY_TRY(link_drafts(impl->cfg));
  for (const auto& m : impl->cfg.models) {
    if (impl->find(m.name))
      return make_error(ErrorCode::kInvalidArgument, "model '{}' is configured twice", m.name);
    CODEY_TRY(check_model_settings(m));
    auto e = std::make_unique<ModelEntry>();
    e->cfg = m;
    e->ttl = m.keep_alive;
    impl->models.push_back(std::move(e));
  }
  impl->pool = std::make_unique<ThreadPool>(impl->cfg.threads);
  for (auto& e : impl->models) {
    impl->ensure_facts(*e);
    if (!e->facts) log_warn("runtime: {}", e->facts_error);
  }
  std::unique_ptr<Runtime> rt(new Runtime(impl));
  if (options.load_pinned) {
    std::unique_lock lock(impl->mu);
    for (auto& e : impl->models) {
      if (!e->cfg.pinned || !e->facts || e->state != ModelState::kUnloaded) continue;
      if (auto err = impl->admit_load(*e, lock)) {
        log_error("runtime: pinned model '{}' not loaded: {}", e->cfg.name, err->message);
        e->last_error = err->message;
        continue;
      }
      impl->spawn_runner(*e);
    }
  }
  return rt;
}

Runtime::~Runtime() { shutdown(Millis(0)); }

const RuntimeConfig& Runtime::config() const { return impl_->cfg; }

std::vector<ModelConfig> Runtime::models() const {
  std::lock_guard lock(impl_->mu);
  std::vector<ModelConfig> out;
  for (const auto& e : impl_->models)
    if (!e->removed) out.push_back(e->cfg);
  return out;
}

std::optional<ModelConfig> Runtime::find_model(std::string_view name) const {
  const ModelEntry* e = impl_->find(name);
  if (!e) return std::nullopt;
  std::lock_guard lock(impl_->mu);
  return e->cfg;
}

Status Runtime::add_model(ModelConfig model) {
  CODEY_TRY(check_model_settings(model));
  Impl& I = *impl_;
  std::lock_guard lock(I.mu);
  if (I.shutting_down) return make_error(ErrorCode::kCancelled, "the runtime is shutting down");
  for (auto& e : I.models) {
    if (e->cfg.name != model.name) continue;
    if (!e->removed) {
      if (e->cfg.path == model.path && e->cfg.ref == model.ref) return {};
      return make_error(ErrorCode::kInvalidArgument, "a model named '{}' exists already ({})", model.name,
                        e->cfg.ref.empty() ? e->cfg.path : e->cfg.ref);
    }
    // Added again after remove_model (e.g. pulled again): the same entry,
    // unloaded, with the new settings; its facts are read again.
    e->cfg = std::move(model);
    e->ttl = e->cfg.keep_alive;
    e->facts.reset();
    e->facts_error.clear();
    e->last_error.clear();
    e->removed = false;
    return {};
  }
  auto e = std::make_unique<ModelEntry>();
  e->cfg = std::move(model);
  e->ttl = e->cfg.keep_alive;
  e->added = true;
  I.models.push_back(std::move(e));
  I.cv.notify_all();
  return {};
}

std::expected<void, RequestError> Runtime::remove_model(std::string_view name) {
  Impl& I = *impl_;
  ModelEntry* e = I.find(name);
  if (!e)
    return std::unexpected(req_error(RequestErrorCode::kModelNotFound,
                                     fmt::format("no model named '{}' (configured: {})", name, I.names())));
  {
    std::lock_guard lock(I.mu);
    if (!e->added)
      return std::unexpected(req_error(RequestErrorCode::kInvalidRequest,
                                       fmt::format("model '{}' is configured, not added at run time", name)));
  }
  auto u = unload(name);
  if (!u) return u;
  std::lock_guard lock(I.mu);
  if (e->state != ModelState::kUnloaded || !e->queue.empty() || !e->running.empty())
    return std::unexpected(req_error(RequestErrorCode::kBusy, fmt::format("model '{}' is in use again", name),
                                     Millis(1000)));
  e->removed = true;
  e->facts.reset();
  return {};
}

std::shared_ptr<RequestStream> Runtime::submit(GenerateRequest request) {
  auto r = std::make_shared<Request>();
  r->id = impl_->next_id.fetch_add(1);
  r->submitted = Clock::now();
  r->runtime = impl_;
  r->req = std::move(request);
  auto stream = std::make_shared<StreamImpl>(r);
  // Registered first: a token stopped already marks the request cancelled
  // before it is queued, so it never runs.
  if (r->req.cancel.stop_possible()) {
    std::weak_ptr<Request> w = r;
    r->stop_cb = std::make_unique<std::stop_callback<std::function<void()>>>(
        r->req.cancel, std::function<void()>([w] {
          if (auto rr = w.lock()) StreamImpl::cancel_request(rr);
        }));
  }
  impl_->submit(r);
  return stream;
}

std::expected<Completion, RequestError> Runtime::generate(GenerateRequest request,
                                                          const std::function<void(const Event&)>& on_event) {
  auto stream = submit(std::move(request));
  Completion c;
  for (;;) {
    auto ev = stream->next();
    if (!ev) return std::unexpected(req_error(RequestErrorCode::kInternal, "the request ended without a result"));
    if (on_event) on_event(*ev);
    switch (ev->type) {
      case EventType::kToken:
        c.text += ev->text;
        if (ev->token != kNoToken) c.tokens.push_back(ev->token);
        break;
      case EventType::kDone:
        c.finish = ev->finish;
        c.stop = ev->stop;
        c.timings = ev->timings;
        return c;
      case EventType::kError: return std::unexpected(ev->error);
      default: break;
    }
  }
}

std::expected<void, RequestError> Runtime::load(std::string_view model) {
  Impl& I = *impl_;
  ModelEntry* e = I.find(model);
  if (!e)
    return std::unexpected(req_error(RequestErrorCode::kModelNotFound,
                                     fmt::format("no model named '{}' (configured: {})", model, I.names())));
  I.ensure_facts(*e);
  std::unique_lock lock(I.mu);
  for (;;) {
    if (I.shutting_down || I.draining)
      return std::unexpected(req_error(RequestErrorCode::kShuttingDown, "the runtime is shutting down"));
    if (e->state == ModelState::kLoaded || e->state == ModelState::kBusy) return {};
    if (e->state == ModelState::kUnloading) {
      I.cv.wait(lock, [&] { return e->state != ModelState::kUnloading || I.shutting_down; });
      continue;
    }
    if (e->state == ModelState::kUnloaded) {
      if (!e->facts)
        return std::unexpected(req_error(RequestErrorCode::kLoadFailed,
                                         fmt::format("model '{}' cannot be used: {}", e->cfg.name, e->facts_error)));
      if (auto err = I.admit_load(*e, lock)) return std::unexpected(*err);
      I.spawn_runner(*e);
    }
    const uint64_t attempt = e->load_attempts;
    I.cv.wait(lock, [&] {
      return I.shutting_down || e->state == ModelState::kLoaded || e->state == ModelState::kBusy ||
             e->load_finished >= attempt;
    });
    if (e->state == ModelState::kLoaded || e->state == ModelState::kBusy) return {};
    if (!e->last_error.empty() && e->state == ModelState::kUnloaded)
      return std::unexpected(req_error(RequestErrorCode::kLoadFailed, e->last_error));
    if (e->load_finished >= attempt && e->state != ModelState::kLoading) return {};  // loaded, and already gone again
  }
}

std::expected<void, RequestError> Runtime::unload(std::string_view model) {
  Impl& I = *impl_;
  ModelEntry* e = I.find(model);
  if (!e)
    return std::unexpected(req_error(RequestErrorCode::kModelNotFound,
                                     fmt::format("no model named '{}' (configured: {})", model, I.names())));
  std::unique_lock lock(I.mu);
  if (e->state == ModelState::kUnloaded) return {};
  if (e->state == ModelState::kLoading || !e->running.empty() || !e->queue.empty())
    return std::unexpected(req_error(RequestErrorCode::kBusy,
                                     fmt::format("model '{}' is {} with {} requests running and {} waiting", e->cfg.name,
                                                 model_state_name(e->state), e->running.size(), e->queue.size()),
                                     Millis(1000)));
  const uint64_t unloads = e->unloads;
  e->stop = true;
  I.cv.notify_all();
  I.cv.wait(lock, [&] { return e->unloads > unloads || e->state == ModelState::kUnloaded; });
  return {};
}

void Runtime::shutdown(Millis grace) {
  Impl& I = *impl_;
  std::vector<std::thread> threads;
  {
    std::unique_lock lock(I.mu);
    if (I.shut_down) return;
    I.shutting_down = true;
    for (auto& e : I.models) {
      I.fail_queue(*e, RequestErrorCode::kShuttingDown, "the runtime is shutting down");
      e->load_stop.request_stop();
    }
    I.cv.notify_all();
    auto idle = [&] {
      for (auto& e : I.models)
        if (!e->running.empty()) return false;
      return true;
    };
    if (grace.count() > 0) I.cv.wait_for(lock, grace, idle);
    for (auto& e : I.models) {
      for (auto& r : e->running) r->cancelled = true;
      e->stop = true;
    }
    I.cv.notify_all();
    for (auto& e : I.models)
      if (e->runner.joinable()) threads.push_back(std::move(e->runner));
    I.shut_down = true;
  }
  for (auto& t : threads) t.join();
}

bool Runtime::drain(Millis grace) {
  Impl& I = *impl_;
  std::unique_lock lock(I.mu);
  I.draining = true;
  auto idle = [&] {
    for (auto& e : I.models)
      if (!e->running.empty() || !e->queue.empty()) return false;
    return true;
  };
  if (grace.count() > 0) I.cv.wait_for(lock, grace, [&] { return I.shutting_down || idle(); });
  return idle();
}

Result<ModelFacts> Runtime::model_facts(std::string_view model) const {
  ModelEntry* e = impl_->find(model);
  if (!e) return make_error(ErrorCode::kNotFound, "no model named '{}'", model);
  impl_->ensure_facts(*e);
  std::lock_guard lock(impl_->mu);
  if (!e->facts) return make_error(ErrorCode::kNotFound, "{}", e->facts_error);
  return *e->facts;
}

RuntimeStatus Runtime::status() const {
  const Impl& I = *impl_;
  std::lock_guard lock(I.mu);
  RuntimeStatus st;
  st.memory_budget = I.cfg.memory_budget;
  st.threads = I.cfg.threads;
  const auto now = Clock::now();
  for (const auto& ep : I.models) {
    if (ep->removed) continue;
    const ModelEntry& e = *ep;
    ModelStatus m;
    m.name = e.cfg.name;
    m.path = e.cfg.path;
    m.state = e.state;
    m.pinned = e.cfg.pinned;
    m.error = e.facts ? e.last_error : e.facts_error;
    if (e.facts) {
      const auto [start, limit] = I.ctx_plan(e);
      m.needed_bytes = e.facts->bytes_at(start, e.cfg.parallel);
      m.n_ctx = e.state == ModelState::kUnloaded ? start : e.n_ctx;
      m.n_ctx_max = limit;
    }
    m.reserved_bytes = e.state == ModelState::kUnloaded ? 0 : e.reserved;
    if (e.inst) {
      const auto mem = e.inst->memory();
      m.allocated_bytes = mem.allocated;
      m.mapped_resident_bytes = mem.mapped_resident;
      m.used_bytes = mem.allocated + mem.mapped_resident;
    }
    m.slots = e.cfg.parallel;
    m.active = static_cast<int>(e.running.size());
    m.queued = static_cast<int>(e.queue.size());
    m.queue_limit = e.cfg.queue;
    m.load_progress = e.state == ModelState::kLoading ? e.load_progress : (e.inst ? 1.0 : 0.0);
    if (e.state == ModelState::kLoaded) {
      m.idle_s = std::chrono::duration<double>(now - e.idle_since).count();
      if (!e.cfg.pinned && e.ttl.count() >= 0)
        m.expires_in_s = std::max(0.0, std::chrono::duration<double>(e.ttl).count() - m.idle_s);
    } else if (e.state == ModelState::kUnloaded) {
      m.expires_in_s.reset();
    }
    m.loads = e.loads;
    m.unloads = e.unloads;
    m.evictions = e.evictions;
    m.last_load_s = e.last_load_s;
    m.requests_done = e.requests_done;
    m.requests_failed = e.requests_failed;
    m.requests_rejected = e.requests_rejected;
    m.prompt_tokens = e.prompt_tokens;
    m.generated_tokens = e.generated_tokens;
    m.draft_tokens = e.draft_tokens;
    m.draft_accepted = e.draft_accepted;
    if (!e.cfg.draft.empty()) m.draft = fmt::format("draft model {}", e.cfg.draft);
    else if (e.cfg.lookup > 0) m.draft = fmt::format("n-gram lookup of up to {} tokens", e.cfg.lookup);
    st.reserved_bytes += m.reserved_bytes;
    st.used_bytes += m.used_bytes;
    st.models.push_back(std::move(m));
  }
  return st;
}

CtxPlan plan_ctx(const ModelConfig& c, const ModelFacts& f) {
  CtxPlan p;
  p.limit = c.ctx_auto ? (c.ctx_max > 0 ? c.ctx_max : (f.n_ctx_train > 0 ? f.n_ctx_train : 4096)) : c.ctx;
  p.start = c.ctx_auto ? std::min(p.limit, kAutoCtxStart) : p.limit;
  return p;
}

std::pair<int64_t, int64_t> Runtime::Impl::ctx_plan(const ModelEntry& e) const {
  const CtxPlan p = plan_ctx(e.cfg, *e.facts);
  return {p.start, p.limit};
}

}  // namespace codey
