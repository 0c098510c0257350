// The scheduler of one loaded model: N slots decoded together with
// continuous batching (one forward pass advances every active sequence; new
// requests join between steps, finished ones leave), chunked prompt
// processing, prompt-prefix reuse, stop strings, deadlines and cancellation.
#include <algorithm>
#include <cmath>

#include "codey/sampling.h"
#include "runtime/internal.h"

namespace codey {

using rt::ModelEntry;
using rt::Request;

namespace {

struct Slot {
  int index = 0;
  std::shared_ptr<Request> r;    // null when free
  std::vector<TokenId> cache;    // tokens whose K/V this slot holds (kept after a request for reuse)
  Clock::time_point last_used;

  // The current request.
  std::vector<TokenId> prompt;
  size_t n_done = 0;             // prompt tokens in the cache
  size_t n_cached = 0;           // of those, reused from the previous request
  size_t n_pending = 0;          // prompt tokens in the current batch
  bool generating = false;
  TokenId next = kNoToken;       // sampled, not yet in the cache
  std::unique_ptr<rt::SlotSampler> sampler;
  std::optional<StreamDecoder> decoder;
  StopMatcher stop;
  int64_t max_tokens = 0;        // 0 = until the context is full
  int64_t n_gen = 0;
  Millis deadline{0};
  Clock::time_point started, prompt_done, first_token, last_token;
};

size_t common_prefix(std::span<const TokenId> a, std::span<const TokenId> b) {
  size_t n = std::min(a.size(), b.size()), i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

// What one loaded model's runner thread does between load and unload.
class Scheduler {
 public:
  Scheduler(Runtime::Impl& rt, ModelEntry& e) : rt_(rt), e_(e), inst_(*e.inst) {
    slots_.resize(static_cast<size_t>(inst_.n_slots()));
    for (size_t i = 0; i < slots_.size(); ++i) slots_[i].index = static_cast<int>(i);
    logits_.resize(static_cast<size_t>(inst_.n_vocab()));
  }

  void run();

 private:
  // A request that left its slot. Its terminal event is pushed only after the
  // table says the slot is free, so a client that sends its next request on
  // "done" finds the model idle (evictable, with a free slot).
  struct Finished {
    std::shared_ptr<Request> r;
    Event terminal;
    int64_t prompt_tokens = 0, generated = 0;
  };

  int free_slots() const {
    int n = 0;
    for (const auto& s : slots_) n += s.r ? 0 : 1;
    return n;
  }
  void start(std::shared_ptr<Request> r);
  Result<std::vector<TokenId>> build_prompt(const Request& r, RequestErrorCode& code);
  void step();
  bool ensure_room(Slot& s, int64_t n_new);
  void on_logits(Slot& s, std::span<const float> row);
  void finish(Slot& s, FinishReason reason, std::string stop_string = {});
  void fail(Slot& s, RequestErrorCode code, std::string message);
  void release(Slot& s, Event terminal);

  Runtime::Impl& rt_;
  ModelEntry& e_;
  ModelInstance& inst_;
  std::vector<Slot> slots_;
  Batch batch_;
  std::vector<int> out_slot_;    // [outputs of the batch] slot index
  std::vector<float> logits_;    // [n_vocab] the row being sampled (sampling edits it)
  std::vector<Finished> finished_;
};

void Scheduler::run() {
  std::unique_lock lock(rt_.mu);
  for (;;) {
    std::vector<std::shared_ptr<Request>> incoming;
    for (int n = free_slots(); n > 0 && !e_.queue.empty() && !e_.stop && !rt_.shutting_down; --n) {
      incoming.push_back(std::move(e_.queue.front()));
      e_.queue.pop_front();
      e_.running.push_back(incoming.back());
    }
    if (!incoming.empty()) rt_.update_positions(e_);
    if (e_.running.empty()) {
      // Leaving to unload: the state stays as the evictor set it (unloading),
      // so nobody counts this model's memory as committed meanwhile.
      if (e_.stop || rt_.shutting_down) return;
      e_.state = ModelState::kLoaded;
      const Millis ttl = e_.cfg.pinned ? Millis(-1) : e_.ttl;
      if (ttl.count() == 0) return;  // keep_alive 0: unload once nothing runs
      auto wake = [&] { return !e_.queue.empty() || e_.stop || rt_.shutting_down; };
      if (ttl.count() < 0) {
        rt_.cv.wait(lock, wake);
      } else if (!rt_.cv.wait_until(lock, e_.idle_since + ttl, wake)) {
        log_info("runtime: '{}' idle for {}, unloading", e_.cfg.name, format_duration(ttl));
        return;
      }
      continue;
    }
    e_.state = ModelState::kBusy;
    lock.unlock();

    for (auto& r : incoming) start(std::move(r));
    step();

    lock.lock();
    for (auto& f : finished_) {
      auto it = std::find(e_.running.begin(), e_.running.end(), f.r);
      CODEY_ASSERT(it != e_.running.end());
      e_.running.erase(it);
      if (f.terminal.type == EventType::kDone) ++e_.requests_done;
      else ++e_.requests_failed;
      e_.prompt_tokens += static_cast<uint64_t>(f.prompt_tokens);
      e_.generated_tokens += static_cast<uint64_t>(f.generated);
      e_.ttl = f.r->req.keep_alive.value_or(e_.cfg.keep_alive);
    }
    if (!finished_.empty()) {
      if (e_.running.empty()) e_.idle_since = Clock::now();
      rt_.measure(e_);
      rt_.cv.notify_all();
    }
    for (auto& f : finished_) f.r->push(std::move(f.terminal));
    finished_.clear();
  }
}

Result<std::vector<TokenId>> Scheduler::build_prompt(const Request& r, RequestErrorCode& code) {
  const GenerateRequest& q = r.req;
  const Tokenizer& tok = inst_.tokenizer();
  code = RequestErrorCode::kInvalidRequest;
  if (!q.tokens.empty()) {
    for (TokenId t : q.tokens)
      if (!tok.valid(t) || t >= inst_.n_vocab())
        return make_error(ErrorCode::kInvalidArgument, "token id {} is outside the vocabulary (0..{})", t,
                          inst_.n_vocab() - 1);
    return q.tokens;
  }
  if (q.messages.is_array()) {
    if (!e_.chat_template) {
      auto t = ChatTemplate::parse_or_default(inst_.chat_template(), e_.cfg.name);
      if (!t) {
        code = RequestErrorCode::kInternal;
        return std::unexpected(std::move(t.error()).with_context(fmt::format("chat template of '{}'", e_.cfg.name)));
      }
      e_.chat_template.emplace(std::move(*t));
    }
    ChatTemplateInputs in;
    in.messages = q.messages;
    in.tools = q.tools;
    in.add_generation_prompt = true;
    if (tok.bos() != kNoToken) in.bos_token = std::string(tok.token_to_piece(tok.bos(), true));
    if (tok.eos() != kNoToken) in.eos_token = std::string(tok.token_to_piece(tok.eos(), true));
    in.extra_context = q.template_context;
    // The template comes from the model file: it renders in its sandbox
    // (TemplateLimits), and a client that goes away stops it.
    in.cancel = &r.cancelled;
    auto text = e_.chat_template->render(in);
    if (!text) return std::unexpected(std::move(text.error()).with_context("rendering the chat template"));
    std::string_view body = *text;
    // Templates that write the BOS themselves: tokenize() adds it already.
    if (tok.add_bos() && !in.bos_token.empty() && body.starts_with(in.bos_token)) body.remove_prefix(in.bos_token.size());
    return tok.tokenize(body, /*add_special=*/true, /*parse_special=*/true);
  }
  if (q.suffix) {
    if (tok.fim_pre() == kNoToken || tok.fim_suf() == kNoToken || tok.fim_mid() == kNoToken)
      return make_error(ErrorCode::kInvalidArgument, "model '{}' has no fill-in-the-middle tokens; suffix is not supported",
                        e_.cfg.name);
    std::vector<TokenId> out;
    if (tok.add_bos() && tok.bos() != kNoToken) out.push_back(tok.bos());
    out.push_back(tok.fim_pre());
    auto pre = tok.tokenize(q.prompt, false, false);
    out.insert(out.end(), pre.begin(), pre.end());
    out.push_back(tok.fim_suf());
    auto suf = tok.tokenize(*q.suffix, false, false);
    out.insert(out.end(), suf.begin(), suf.end());
    out.push_back(tok.fim_mid());
    return out;
  }
  return tok.tokenize(q.prompt, q.add_special, q.parse_special);
}

void Scheduler::start(std::shared_ptr<Request> r) {
  RequestErrorCode code;
  auto prompt = build_prompt(*r, code);
  // The free slot whose cache shares the longest prefix with the prompt;
  // among equals the least recently used.
  Slot* s = nullptr;
  size_t best = 0;
  for (auto& c : slots_) {
    if (c.r) continue;
    const size_t n = prompt ? common_prefix(c.cache, *prompt) : 0;
    if (!s || n > best || (n == best && c.last_used < s->last_used)) {
      s = &c;
      best = n;
    }
  }
  CODEY_ASSERT(s != nullptr);
  s->r = r;
  s->started = Clock::now();
  s->generating = false;
  s->n_gen = 0;
  s->next = kNoToken;
  s->n_pending = 0;
  s->n_done = s->n_cached = 0;
  s->prompt.clear();
  if (!prompt) return fail(*s, code, prompt.error().message);
  if (prompt->empty()) return fail(*s, RequestErrorCode::kInvalidRequest, "the prompt is empty");
  const int64_t limit = e_.n_ctx_limit;
  if (static_cast<int64_t>(prompt->size()) + 1 > limit)
    return fail(*s, RequestErrorCode::kPromptTooLong,
                fmt::format("the prompt has {} tokens; model '{}' has room for {} per sequence (prompt + at least one "
                            "generated token)",
                            prompt->size(), e_.cfg.name, limit));
  // At least one prompt token is evaluated: its logits give the first token.
  const size_t reuse = std::min(best, prompt->size() - 1);
  auto tr = inst_.truncate_slot(s->index, static_cast<int64_t>(reuse));
  if (!tr) return fail(*s, RequestErrorCode::kInternal, tr.error().message);
  s->cache.resize(reuse);
  s->prompt = std::move(*prompt);
  s->n_done = reuse;
  s->n_cached = reuse;

  const GenerateRequest& q = r->req;
  SamplingOptions so = rt::default_sampling();
  so.merge_from(e_.cfg.sampling);
  so.merge_from(q.sampling);
  auto sampler = rt::make_slot_sampler(so, q.logit_bias, s->prompt, inst_.n_vocab());
  if (!sampler) return fail(*s, RequestErrorCode::kInvalidRequest, sampler.error().message);
  s->sampler = std::move(*sampler);
  s->decoder.emplace(inst_.tokenizer());
  std::vector<std::string> stops = e_.cfg.stop;
  stops.insert(stops.end(), q.stop.begin(), q.stop.end());
  s->stop = StopMatcher(std::move(stops));
  s->max_tokens = q.max_tokens && *q.max_tokens > 0 ? *q.max_tokens : e_.cfg.max_tokens;
  s->deadline = q.deadline.value_or(e_.cfg.deadline);

  Event ev;
  ev.type = EventType::kStarted;
  ev.timings.prompt_tokens = static_cast<int64_t>(s->prompt.size());
  ev.timings.prompt_cached_tokens = static_cast<int64_t>(reuse);
  ev.n_ctx = inst_.n_ctx();
  r->push(std::move(ev));
}

bool Scheduler::ensure_room(Slot& s, int64_t n_new) {
  const int64_t need = inst_.seq_length(s.index) + n_new;
  const int64_t cur = inst_.n_ctx();
  if (need <= cur) return true;
  if (!e_.cfg.ctx_auto || need > e_.n_ctx_limit) return false;
  // Grow in doubling steps up to the limit.
  int64_t next = cur;
  while (next < need) next *= 2;
  next = std::min(next, e_.n_ctx_limit);
  const uint64_t extra = e_.facts->kv_bytes_per_pos * static_cast<uint64_t>(next - cur) *
                         static_cast<uint64_t>(inst_.n_slots());
  {
    std::unique_lock lock(rt_.mu);
    if (!rt_.reserve_more(e_, extra, lock)) {
      log_warn("runtime: '{}' cannot grow its context from {} to {} positions: the memory budget is used up",
               e_.cfg.name, cur, next);
      return false;
    }
  }
  auto st = inst_.resize_ctx(next);
  std::lock_guard lock(rt_.mu);
  if (!st) {
    log_error("runtime: '{}' context resize to {} failed: {}", e_.cfg.name, next, st.error().message);
    e_.reserved -= std::min(e_.reserved, extra);
    rt_.cv.notify_all();
    return false;
  }
  log_info("runtime: '{}' context grew from {} to {} positions per slot", e_.cfg.name, cur, next);
  e_.n_ctx = next;
  rt_.measure(e_);
  return true;
}

void Scheduler::step() {
  const auto now = Clock::now();
  // Cancellation and deadlines free their slots before the next forward pass.
  for (auto& s : slots_) {
    if (!s.r) continue;
    if (s.r->cancelled.load()) finish(s, FinishReason::kCancelled);
    else if (s.deadline.count() > 0 && now - s.started > s.deadline) finish(s, FinishReason::kDeadline);
  }
  batch_.clear();
  out_slot_.clear();
  const int64_t n_batch = inst_.n_batch();
  bool any_generating = false;
  for (auto& s : slots_) {
    if (!s.r || !s.generating) continue;
    if (!ensure_room(s, 1)) {
      finish(s, FinishReason::kLength);
      continue;
    }
    batch_.add(s.next, s.index, true);
    out_slot_.push_back(s.index);
    any_generating = true;
  }
  // Prompt chunks: while others generate, a bounded share per step, so their
  // next token is not held up by a long prompt.
  int64_t budget = n_batch - static_cast<int64_t>(batch_.size());
  if (any_generating) budget = std::min(budget, e_.cfg.prompt_chunk);
  std::vector<Slot*> prompting;
  for (auto& s : slots_)
    if (s.r && !s.generating) prompting.push_back(&s);
  std::sort(prompting.begin(), prompting.end(), [](const Slot* a, const Slot* b) { return a->started < b->started; });
  for (Slot* s : prompting) {
    if (budget <= 0) break;
    const int64_t left = static_cast<int64_t>(s->prompt.size() - s->n_done);
    const int64_t take = std::min(left, budget);
    if (!ensure_room(*s, take)) {
      fail(*s, RequestErrorCode::kInsufficientMemory,
           fmt::format("the context of '{}' cannot grow to hold the prompt of {} tokens within the memory budget",
                       e_.cfg.name, s->prompt.size()));
      continue;
    }
    for (int64_t i = 0; i < take; ++i) {
      const bool last = s->n_done + static_cast<size_t>(i) + 1 == s->prompt.size();
      batch_.add(s->prompt[s->n_done + static_cast<size_t>(i)], s->index, last);
      if (last) out_slot_.push_back(s->index);
    }
    s->n_pending = static_cast<size_t>(take);
    budget -= take;
  }
  if (batch_.size() == 0) return;

  auto out = inst_.decode(batch_);
  if (!out) {
    const std::string msg = fmt::format("decoding failed: {}", out.error().message);
    log_error("runtime: '{}': {}", e_.cfg.name, msg);
    for (auto& s : slots_)
      if (s.r && (s.generating || s.n_pending > 0)) {
        s.n_pending = 0;
        fail(s, RequestErrorCode::kInternal, msg);
      }
    return;
  }
  // The cache now holds what the batch carried.
  for (auto& s : slots_) {
    if (!s.r) continue;
    if (s.generating) {
      s.cache.push_back(s.next);
    } else if (s.n_pending > 0) {
      s.cache.insert(s.cache.end(), s.prompt.begin() + static_cast<std::ptrdiff_t>(s.n_done),
                     s.prompt.begin() + static_cast<std::ptrdiff_t>(s.n_done + s.n_pending));
      s.n_done += s.n_pending;
      s.n_pending = 0;
    }
  }
  const size_t n_vocab = static_cast<size_t>(inst_.n_vocab());
  for (size_t j = 0; j < out_slot_.size(); ++j) {
    Slot& s = slots_[static_cast<size_t>(out_slot_[j])];
    if (!s.r) continue;
    on_logits(s, out->subspan(j * n_vocab, n_vocab));
  }
}

void Scheduler::on_logits(Slot& s, std::span<const float> row) {
  const auto now = Clock::now();
  if (!s.generating) {
    s.generating = true;
    s.prompt_done = now;
  }
  std::copy(row.begin(), row.end(), logits_.begin());
  const GenerateRequest& q = s.r->req;
  if (q.constraint) q.constraint->apply(logits_);
  const TokenId t = s.sampler->sample(logits_);
  s.sampler->accept(t);
  if (q.constraint) q.constraint->accept(t);
  ++s.n_gen;
  if (s.n_gen == 1) s.first_token = now;
  s.last_token = now;
  const Tokenizer& tok = inst_.tokenizer();
  if (!q.ignore_eog && tok.is_eog(t)) return finish(s, FinishReason::kStop);
  std::string text = s.stop.push(s.decoder->push(t));
  Event ev;
  ev.type = EventType::kToken;
  ev.token = t;
  ev.text = std::move(text);
  s.r->push(std::move(ev));
  if (s.stop.stopped()) return finish(s, FinishReason::kStop, s.stop.matched());
  if (q.constraint && q.constraint->done()) return finish(s, FinishReason::kStop);
  if (s.max_tokens > 0 && s.n_gen >= s.max_tokens) return finish(s, FinishReason::kLength);
  s.next = t;
}

void Scheduler::finish(Slot& s, FinishReason reason, std::string stop_string) {
  const auto now = Clock::now();
  if (stop_string.empty() && s.decoder) {
    // Held-back text (a partial stop string or character) belongs to the output.
    std::string rest = s.stop.push(s.decoder->flush());
    rest += s.stop.flush();
    if (!rest.empty()) {
      Event ev;
      ev.type = EventType::kToken;
      ev.text = std::move(rest);
      s.r->push(std::move(ev));
    }
  }
  Event ev;
  ev.type = EventType::kDone;
  ev.finish = reason;
  ev.stop = std::move(stop_string);
  Timings& t = ev.timings;
  t.queued_s = std::chrono::duration<double>(s.started - s.r->submitted).count();
  t.load_s = s.r->load_waited_s;
  t.prompt_tokens = static_cast<int64_t>(s.prompt.size());
  t.prompt_cached_tokens = static_cast<int64_t>(s.n_cached);
  t.prompt_s = std::chrono::duration<double>((s.generating ? s.prompt_done : now) - s.started).count();
  t.generated_tokens = s.n_gen;
  t.ttft_s = s.n_gen > 0 ? std::chrono::duration<double>(s.first_token - s.started).count() : 0;
  t.generation_s = s.n_gen > 1 ? std::chrono::duration<double>(s.last_token - s.first_token).count() : 0;
  t.total_s = std::chrono::duration<double>(now - s.r->submitted).count();
  release(s, std::move(ev));
}

void Scheduler::fail(Slot& s, RequestErrorCode code, std::string message) {
  Event ev;
  ev.type = EventType::kError;
  ev.error = RequestError{code, std::move(message), std::nullopt};
  release(s, std::move(ev));
}

void Scheduler::release(Slot& s, Event terminal) {
  finished_.push_back({s.r, std::move(terminal), static_cast<int64_t>(s.prompt.size()), s.n_gen});
  s.r = nullptr;
  s.generating = false;
  s.n_pending = 0;
  s.sampler.reset();
  s.decoder.reset();
  s.last_used = Clock::now();
  // The cache must match what the KV cache holds for prefix reuse.
  if (static_cast<int64_t>(s.cache.size()) != inst_.seq_length(s.index)) {
    s.cache.clear();
    (void)inst_.truncate_slot(s.index, 0);
  }
}

}  // namespace

void Runtime::Impl::serve(ModelEntry& e) {
  Scheduler sched(*this, e);
  sched.run();
}

bool Runtime::Impl::reserve_more(ModelEntry& e, uint64_t extra, std::unique_lock<std::mutex>& lock) {
  const uint64_t budget = cfg.memory_budget;
  const uint64_t committed = committed_except(&e) + e.reserved;
  const uint64_t free = budget > committed ? budget - committed : 0;
  if (extra > free) {
    auto victims = choose_victims(e, extra - free);
    if (victims.empty()) return false;
    for (ModelEntry* v : victims) {
      log_info("runtime: evicting '{}' ({}) so '{}' can grow its context", v->cfg.name, format_bytes(v->reserved),
               e.cfg.name);
      v->stop = true;
      v->state = ModelState::kUnloading;
      ++v->evictions;
    }
    cv.notify_all();
  }
  e.reserved += extra;
  cv.wait(lock, [&] { return held_total() <= budget || shutting_down; });
  return !shutting_down;
}

}  // namespace codey
