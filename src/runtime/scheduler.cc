// The scheduler of one loaded model: N slots decoded together with
// continuous batching (one forward pass advances every active sequence; new
// requests join between steps, finished ones leave), chunked prompt
// processing, prompt-prefix reuse, speculative decoding per slot (drafts of
// every slot made together, verified in the same pass), stop strings,
// deadlines and cancellation.
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
  // Speculative decoding: this step's drafts (verified by the rows after
  // `next`), the sampler drafts are drawn with for a sampled request.
  Draft draft;
  std::unique_ptr<Sampler> draft_sampler;
  int64_t draft_room = 0;        // most drafts this step
  int64_t n_drafted = 0, n_accepted = 0;
  size_t out_first = 0, n_out = 0;  // this step's rows of logits
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
    // Speculative decoding: the draft model loaded with the model, or lookup.
    if (Drafter* d = inst_.drafter()) {
      drafter_ = d;
      max_draft_ = e.cfg.draft_max;
    } else if (e.cfg.lookup > 0) {
      lookup_ = make_lookup_drafter(inst_.n_slots());
      drafter_ = lookup_.get();
      max_draft_ = e.cfg.lookup;
    }
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
    int64_t drafted = 0, accepted = 0;
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
  void draft_all(std::vector<Slot*>& generating);
  // The tokens a slot takes from its rows of logits: the first after its
  // prompt, or the verdicts on its drafts (and one more).
  void take(Slot& s, std::span<const float> rows);
  // Streams one token; false when the request finished with it.
  bool emit(Slot& s, TokenId t, Clock::time_point now);
  void finish(Slot& s, FinishReason reason, std::string stop_string = {});
  void fail(Slot& s, RequestErrorCode code, std::string message);
  void release(Slot& s, Event terminal);

  Runtime::Impl& rt_;
  ModelEntry& e_;
  ModelInstance& inst_;
  std::vector<Slot> slots_;
  Batch batch_;
  std::vector<float> logits_;    // [n_vocab] the row being sampled (sampling edits it)
  std::vector<Finished> finished_;
  Drafter* drafter_ = nullptr;   // the instance's draft model, or lookup_
  std::unique_ptr<Drafter> lookup_;
  int max_draft_ = 0;
  std::vector<DraftJob> jobs_;
  std::vector<TokenId> taken_;
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
      e_.draft_tokens += static_cast<uint64_t>(f.drafted);
      e_.draft_accepted += static_cast<uint64_t>(f.accepted);
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
  s->draft.clear();
  s->n_drafted = s->n_accepted = 0;
  if (drafter_ && s->sampler->params().temperature > 0.0f) s->draft_sampler = drafter_->make_sampler(s->sampler->params());
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
  const int64_t n_batch = inst_.n_batch();
  size_t n_out = 0;
  std::vector<Slot*> generating;
  for (auto& s : slots_) {
    s.n_out = 0;
    if (s.r && s.generating) generating.push_back(&s);
  }
  // Room for the newest token and the drafts of every generating slot.
  const auto n_gen_slots = static_cast<int64_t>(generating.size());
  const int64_t per_slot = n_gen_slots > 0 ? std::max<int64_t>(0, (n_batch - n_gen_slots) / n_gen_slots) : 0;
  for (Slot* s : generating) {
    int64_t k = drafter_ ? std::min<int64_t>(max_draft_, per_slot) : 0;
    if (s->max_tokens > 0) k = std::min(k, s->max_tokens - s->n_gen - 1);  // n_gen counts `next`
    k = std::max<int64_t>(k, 0);
    if (!ensure_room(*s, 1 + k)) {
      if (k == 0 || !ensure_room(*s, 1)) {
        finish(*s, FinishReason::kLength);
        continue;
      }
      k = std::clamp<int64_t>(inst_.n_ctx() - inst_.seq_length(s->index) - 1, 0, k);
    }
    s->draft_room = k;
  }
  std::erase_if(generating, [](const Slot* s) { return !s->r; });
  draft_all(generating);
  const bool any_generating = !generating.empty();
  for (Slot* s : generating) {
    s->out_first = n_out;
    s->n_out = 1 + s->draft.tokens.size();
    n_out += s->n_out;
    batch_.add(s->next, s->index, true);
    for (TokenId d : s->draft.tokens) batch_.add(d, s->index, true);
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
      if (last) {
        s->out_first = n_out++;
        s->n_out = 1;
      }
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
  jobs_.clear();
  for (auto& s : slots_) {
    if (!s.r) continue;
    if (s.generating) {
      s.cache.push_back(s.next);
      s.cache.insert(s.cache.end(), s.draft.tokens.begin(), s.draft.tokens.end());
    } else if (s.n_pending > 0) {
      s.cache.insert(s.cache.end(), s.prompt.begin() + static_cast<std::ptrdiff_t>(s.n_done),
                     s.prompt.begin() + static_cast<std::ptrdiff_t>(s.n_done + s.n_pending));
      s.n_done += s.n_pending;
      s.n_pending = 0;
      if (drafter_ && s.n_done < s.prompt.size()) jobs_.push_back({s.index, s.cache, 0, nullptr, nullptr});
    }
  }
  // A draft model reads the prompt chunk by chunk too, not all at its first draft.
  if (!jobs_.empty())
    if (auto st = drafter_->prefill(jobs_); !st) log_warn("runtime: '{}': draft prefill: {}", e_.cfg.name, st.error().message);
  const size_t n_vocab = static_cast<size_t>(inst_.n_vocab());
  for (auto& s : slots_) {
    if (!s.r || s.n_out == 0) continue;
    take(s, out->subspan(s.out_first * n_vocab, s.n_out * n_vocab));
  }
}

void Scheduler::draft_all(std::vector<Slot*>& generating) {
  jobs_.clear();
  for (Slot* s : generating) {
    s->draft.clear();
    if (s->draft_room <= 0) continue;
    s->cache.push_back(s->next);  // the history: what the cache holds and the newest token
    jobs_.push_back({s->index, s->cache, static_cast<int>(s->draft_room), s->draft_sampler.get(), &s->draft});
  }
  if (jobs_.empty()) return;
  if (auto st = drafter_->propose(jobs_); !st)
    log_warn("runtime: '{}': drafting failed, decoding without drafts: {}", e_.cfg.name, st.error().message);
  const int64_t n_vocab = inst_.n_vocab();
  for (Slot* s : generating) {
    if (s->draft_room <= 0) continue;
    s->cache.pop_back();
    // Only tokens the model has, at most draft_room of them.
    auto& t = s->draft.tokens;
    size_t ok = 0;
    while (ok < t.size() && static_cast<int64_t>(ok) < s->draft_room && t[ok] >= 0 && t[ok] < n_vocab) ++ok;
    t.resize(ok);
    if (!s->draft.q.empty()) s->draft.q.resize(ok);
  }
}

void Scheduler::take(Slot& s, std::span<const float> rows) {
  const auto now = Clock::now();
  if (!s.generating) {
    s.generating = true;
    s.prompt_done = now;
  }
  const GenerateRequest& q = s.r->req;
  const Tokenizer& tok = inst_.tokenizer();
  const size_t n_vocab = logits_.size();
  const size_t k = s.n_out - 1;  // drafts verified by rows 0..k-1
  // Decide: row i follows `next` and drafts [0, i). Verification stops at
  // the first rejection, or where the request must end anyway.
  taken_.clear();
  int64_t accepted = 0;
  for (size_t i = 0; i <= k; ++i) {
    const auto row = rows.subspan(i * n_vocab, n_vocab);
    std::copy(row.begin(), row.end(), logits_.begin());
    if (q.constraint) q.constraint->apply(logits_);
    TokenId t;
    bool ok = false;
    if (i < k) {
      const DraftVerdict v =
          s.sampler->verify(logits_, s.draft.tokens[i], s.draft.q.empty() ? nullptr : &s.draft.q[i]);
      t = v.token;
      ok = v.accepted;
      accepted += ok ? 1 : 0;
    } else {
      t = s.sampler->sample(logits_);
    }
    s.sampler->accept(t);
    if (q.constraint) q.constraint->accept(t);
    taken_.push_back(t);
    if (!ok || (!q.ignore_eog && tok.is_eog(t)) || (q.constraint && q.constraint->done()) ||
        (s.max_tokens > 0 && s.n_gen + static_cast<int64_t>(taken_.size()) >= s.max_tokens))
      break;
  }
  s.n_drafted += static_cast<int64_t>(k);
  s.n_accepted += accepted;
  // The cache keeps `next` and the accepted drafts; rejected drafts go.
  if (k > 0) {
    const size_t keep = s.cache.size() - k + (taken_.size() - 1);
    if (keep < s.cache.size()) {
      auto st = inst_.truncate_slot(s.index, static_cast<int64_t>(keep));
      CODEY_ASSERT(st.has_value());
      s.cache.resize(keep);
    }
  }
  s.draft.clear();
  for (TokenId t : taken_)
    if (!emit(s, t, now)) return;
  s.next = taken_.back();
}

bool Scheduler::emit(Slot& s, TokenId t, Clock::time_point now) {
  const GenerateRequest& q = s.r->req;
  ++s.n_gen;
  if (s.n_gen == 1) s.first_token = now;
  s.last_token = now;
  const Tokenizer& tok = inst_.tokenizer();
  if (!q.ignore_eog && tok.is_eog(t)) {
    finish(s, FinishReason::kStop);
    return false;
  }
  std::string text = s.stop.push(s.decoder->push(t));
  Event ev;
  ev.type = EventType::kToken;
  ev.token = t;
  ev.text = std::move(text);
  s.r->push(std::move(ev));
  if (s.stop.stopped()) {
    finish(s, FinishReason::kStop, s.stop.matched());
    return false;
  }
  if (q.constraint && q.constraint->done()) {
    finish(s, FinishReason::kStop);
    return false;
  }
  if (s.max_tokens > 0 && s.n_gen >= s.max_tokens) {
    finish(s, FinishReason::kLength);
    return false;
  }
  return true;
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
  t.draft_tokens = s.n_drafted;
  t.draft_accepted = s.n_accepted;
  release(s, std::move(ev));
}

void Scheduler::fail(Slot& s, RequestErrorCode code, std::string message) {
  Event ev;
  ev.type = EventType::kError;
  ev.error = RequestError{code, std::move(message), std::nullopt};
  release(s, std::move(ev));
}

void Scheduler::release(Slot& s, Event terminal) {
  finished_.push_back(
      {s.r, std::move(terminal), static_cast<int64_t>(s.prompt.size()), s.n_gen, s.n_drafted, s.n_accepted});
  s.r = nullptr;
  s.generating = false;
  s.n_pending = 0;
  s.n_out = 0;
  s.sampler.reset();
  s.draft_sampler.reset();
  s.draft.clear();
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
