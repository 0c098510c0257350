// Tests of the per-model scheduler (src/runtime/scheduler.cc): continuous
// batching, chunked prompts, the bounded queue, cancellation, deadlines,
// stop strings, limits, prompt forms (text, tokens, chat, FIM), prefix reuse,
// and growing the context (ctx: auto).
#include <gtest/gtest.h>

#include <thread>

#include "runtime/runtime_testing.h"
#include "testing/gguf_template.h"

namespace codey {
namespace {

using testing::ControlledBackend;
using testing::drain;
using testing::eventually;
using testing::find_status;
using testing::text_request;
using testing::tiny_config;

struct Rig {
  std::shared_ptr<ControlledBackend> backend = std::make_shared<ControlledBackend>();
  std::unique_ptr<Runtime> rt;

  explicit Rig(std::vector<ModelConfig> models, uint64_t budget = 1ull << 30) {
    RuntimeConfig c;
    c.memory_budget = budget;
    c.threads = 1;
    c.models = std::move(models);
    RuntimeOptions o;
    o.backend = backend;
    auto r = Runtime::create(std::move(c), o);
    EXPECT_TRUE(r.has_value()) << r.error().message;
    if (r) rt = std::move(*r);
  }
  ModelStatus status(std::string_view name) const { return *find_status(rt->status(), name); }
};

GenerateRequest endless(std::string model, std::string prompt, int max_tokens = 100000) {
  GenerateRequest q = text_request(std::move(model), std::move(prompt), max_tokens);
  q.ignore_eog = true;
  return q;
}

int count_tokens(const std::vector<Event>& evs) {
  int n = 0;
  for (const auto& e : evs) n += e.type == EventType::kToken && e.token != kNoToken ? 1 : 0;
  return n;
}

TEST(Scheduler, GreedyIsDeterministicAndTimingsAreFilled) {
  Rig rig({tiny_config("a")});
  auto r1 = rig.rt->generate(endless("a", "def add(a, b):", 12));
  ASSERT_TRUE(r1.has_value()) << r1.error().message;
  EXPECT_EQ(r1->finish, FinishReason::kLength);
  EXPECT_EQ(r1->tokens.size(), 12u);
  EXPECT_EQ(r1->timings.generated_tokens, 12);
  EXPECT_EQ(r1->timings.prompt_tokens, 14);  // byte-level vocabulary: one token per byte
  EXPECT_GT(r1->timings.prompt_s, 0.0);
  EXPECT_GT(r1->timings.ttft_s, 0.0);
  EXPECT_GT(r1->timings.generation_s, 0.0);
  EXPECT_GT(r1->timings.generation_tps(), 0.0);
  EXPECT_GT(r1->timings.load_s, 0.0);  // the first request waited for the load
  EXPECT_GE(r1->timings.total_s, r1->timings.ttft_s);
  // Same prompt again: same tokens; the prompt (all but its last token) comes
  // from the slot's cache.
  auto r2 = rig.rt->generate(endless("a", "def add(a, b):", 12));
  ASSERT_TRUE(r2.has_value());
  EXPECT_EQ(r2->tokens, r1->tokens);
  EXPECT_EQ(r2->text, r1->text);
  EXPECT_EQ(r2->timings.prompt_cached_tokens, 13);
  EXPECT_EQ(r2->timings.load_s, 0.0);
  // A longer prompt sharing a prefix reuses the prefix only.
  auto r3 = rig.rt->generate(endless("a", "def add(a, b): return", 4));
  ASSERT_TRUE(r3.has_value());
  EXPECT_GE(r3->timings.prompt_cached_tokens, 14);
  // Another runtime without any cache: same output as the cached run.
  Rig fresh({tiny_config("a")});
  auto r4 = fresh.rt->generate(endless("a", "def add(a, b): return", 4));
  ASSERT_TRUE(r4.has_value());
  EXPECT_EQ(r4->tokens, r3->tokens);
}

TEST(Scheduler, EventsArriveInOrder) {
  Rig rig({tiny_config("a")});
  auto s = rig.rt->submit(endless("a", "hello", 5));
  auto evs = drain(*s);
  ASSERT_GE(evs.size(), 4u);
  EXPECT_EQ(evs[0].type, EventType::kQueued);
  EXPECT_EQ(evs[0].queue_position, 0);
  size_t i = 1;
  while (i < evs.size() && evs[i].type == EventType::kLoading) ++i;
  EXPECT_GT(i, 1u);  // loading progress was reported
  EXPECT_EQ(evs[i - 1].progress, 1.0);
  ASSERT_LT(i, evs.size());
  EXPECT_EQ(evs[i].type, EventType::kStarted);
  EXPECT_EQ(evs[i].timings.prompt_tokens, 5);
  EXPECT_EQ(evs[i].n_ctx, 256);
  EXPECT_EQ(count_tokens(evs), 5);
  EXPECT_EQ(evs.back().type, EventType::kDone);
  EXPECT_EQ(evs.back().finish, FinishReason::kLength);
  EXPECT_FALSE(s->next(Millis(10)).has_value());  // nothing after the terminal event
  EXPECT_TRUE(s->finished());
}

TEST(Scheduler, ContinuousBatchingAdvancesAllActiveSequencesInOnePass) {
  ModelConfig a = tiny_config("a");
  a.parallel = 3;
  Rig rig({a});
  ASSERT_TRUE(rig.rt->load("a").has_value());
  rig.backend->set_step_delay(Millis(2));
  auto s1 = rig.rt->submit(endless("a", "first", 60));
  // The second joins while the first is generating, between two steps.
  ASSERT_TRUE(eventually([&] { return rig.backend->batches().size() >= 10; }));
  auto s2 = rig.rt->submit(endless("a", "second", 20));
  auto e2 = drain(*s2);
  ASSERT_EQ(e2.back().type, EventType::kDone);
  EXPECT_FALSE(s1->finished());  // the second finished while the first still runs
  auto e1 = drain(*s1);
  ASSERT_EQ(e1.back().type, EventType::kDone);
  EXPECT_EQ(count_tokens(e1), 60);
  EXPECT_EQ(count_tokens(e2), 20);
  // Some forward passes produced a token for both sequences at once.
  int both = 0;
  size_t steps_after_first = 0;
  for (const auto& b : rig.backend->batches()) {
    if (b.logits_seqs.size() == 2) ++both;
    ++steps_after_first;
  }
  EXPECT_GE(both, 15);
  // Batched: fewer forward passes than tokens generated (80) + prompt chunks.
  EXPECT_LT(steps_after_first, 80u);
}

TEST(Scheduler, ALongPromptIsChunkedSoOthersKeepGenerating) {
  ModelConfig a = tiny_config("a");
  a.parallel = 2;
  a.batch = 64;
  a.prompt_chunk = 16;
  Rig rig({a});
  ASSERT_TRUE(rig.rt->load("a").has_value());
  rig.backend->set_step_delay(Millis(1));
  auto gen = rig.rt->submit(endless("a", "x", 400));
  ASSERT_TRUE(eventually([&] { return rig.backend->batches().size() >= 3; }));
  rig.backend->clear_batches();
  const std::string long_prompt(200, 'y');  // 200 tokens
  auto pp = rig.rt->generate(endless("a", long_prompt, 2));
  ASSERT_TRUE(pp.has_value()) << pp.error().message;
  EXPECT_EQ(pp->timings.prompt_tokens, 200);
  gen->cancel();
  drain(*gen);
  // While the first sequence was generating, no step carried more than one
  // token of it plus one prompt chunk, and it got a token in every step.
  int steps_with_prompt = 0;
  for (const auto& b : rig.backend->batches()) {
    if (b.seqs.size() < 2) continue;
    ++steps_with_prompt;
    EXPECT_LE(b.tokens, 1u + 16u);
    EXPECT_NE(std::find(b.logits_seqs.begin(), b.logits_seqs.end(), b.seqs[0]), b.logits_seqs.end());
  }
  EXPECT_GE(steps_with_prompt, 200 / 16);
}

TEST(Scheduler, WithNothingElseRunningAPromptUsesWholeBatches) {
  ModelConfig a = tiny_config("a");
  a.batch = 64;
  a.prompt_chunk = 16;
  Rig rig({a});
  auto r = rig.rt->generate(endless("a", std::string(150, 'z'), 1));
  ASSERT_TRUE(r.has_value());
  auto b = rig.backend->batches();
  ASSERT_EQ(b.size(), 3u);  // 64 + 64 + 22
  EXPECT_EQ(b[0].tokens, 64u);
  EXPECT_EQ(b[2].tokens, 22u);
}

TEST(Scheduler, AFullQueueRejectsAtOnceAsBusyWithARetryHint) {
  ModelConfig a = tiny_config("a");
  a.parallel = 1;
  a.queue = 2;
  Rig rig({a});
  ASSERT_TRUE(rig.rt->load("a").has_value());
  rig.backend->hold_decode(true);
  auto running = rig.rt->submit(endless("a", "run", 3));
  ASSERT_TRUE(eventually([&] { return !rig.backend->batches().empty(); }));
  auto q1 = rig.rt->submit(endless("a", "q1", 3));
  auto q2 = rig.rt->submit(endless("a", "q2", 3));
  EXPECT_EQ(rig.status("a").queued, 2);
  // Rejected at once: decoding is held, so the answer cannot have waited
  // for the queue to move (the deadline only bounds a broken scheduler).
  auto rejected = rig.rt->submit(endless("a", "too many", 3));
  auto ev = rejected->next(Millis(30000));
  ASSERT_TRUE(ev.has_value());
  ASSERT_EQ(ev->type, EventType::kError);
  EXPECT_EQ(ev->error.code, RequestErrorCode::kBusy);
  ASSERT_TRUE(ev->error.retry_after.has_value());
  EXPECT_GT(ev->error.retry_after->count(), 0);
  EXPECT_NE(ev->error.message.find("busy"), std::string::npos);
  EXPECT_EQ(suggested_http_status(ev->error.code), 429);
  EXPECT_EQ(rig.status("a").requests_rejected, 1u);
  // Queue positions: q1 is next, q2 after it.
  auto p1 = q1->next(Millis(1000));
  auto p2 = q2->next(Millis(1000));
  ASSERT_TRUE(p1 && p2);
  EXPECT_EQ(p1->type, EventType::kQueued);
  EXPECT_EQ(p1->queue_position, 0);
  EXPECT_EQ(p2->queue_position, 1);
  // Cancelling q1 moves q2 up.
  q1->cancel();
  auto c1 = drain(*q1);
  EXPECT_EQ(c1.back().type, EventType::kDone);
  EXPECT_EQ(c1.back().finish, FinishReason::kCancelled);
  auto p2b = q2->next(Millis(1000));
  ASSERT_TRUE(p2b.has_value());
  EXPECT_EQ(p2b->type, EventType::kQueued);
  EXPECT_EQ(p2b->queue_position, 0);
  rig.backend->hold_decode(false);
  EXPECT_EQ(drain(*running).back().type, EventType::kDone);
  EXPECT_EQ(drain(*q2).back().type, EventType::kDone);
}

TEST(Scheduler, CancellationFreesTheSlotAtTheNextStep) {
  ModelConfig a = tiny_config("a");
  a.parallel = 1;
  Rig rig({a});
  ASSERT_TRUE(rig.rt->load("a").has_value());
  rig.backend->set_step_delay(Millis(2));
  auto s = rig.rt->submit(endless("a", "go"));
  std::vector<Event> evs;
  while (count_tokens(evs) < 5) {
    auto e = s->next(Millis(5000));
    ASSERT_TRUE(e.has_value());
    evs.push_back(*e);
  }
  const size_t steps_at_cancel = rig.backend->batches().size();
  s->cancel();
  auto rest = drain(*s);
  ASSERT_EQ(rest.back().type, EventType::kDone);
  EXPECT_EQ(rest.back().finish, FinishReason::kCancelled);
  EXPECT_LE(rig.backend->batches().size(), steps_at_cancel + 2);
  // The slot is free: the next request runs at once.
  auto next = rig.rt->generate(endless("a", "next", 3));
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->finish, FinishReason::kLength);
  // Through the request's stop_token too.
  std::stop_source src;
  GenerateRequest q = endless("a", "stoppable");
  q.cancel = src.get_token();
  auto s2 = rig.rt->submit(q);
  ASSERT_TRUE(eventually([&] { return rig.status("a").active == 1; }));
  src.request_stop();
  auto e2 = drain(*s2);
  EXPECT_EQ(e2.back().finish, FinishReason::kCancelled);
  // A stop_token already stopped: cancelled before it runs.
  GenerateRequest q3 = endless("a", "never");
  q3.cancel = src.get_token();
  auto e3 = drain(*rig.rt->submit(q3));
  EXPECT_EQ(e3.back().finish, FinishReason::kCancelled);
  EXPECT_EQ(count_tokens(e3), 0);
}

// A model file's chat template is untrusted code (issue #16): a hostile one
// fails its request with the sandbox's error, the model keeps serving, and a
// cancelled request stops its render (it would run into the time limit).
TEST(Scheduler, HostileTemplatesFailTheirRequestAndCancelStopsTheRender) {
  const std::string dir = testing::temp_dir();
  const std::string endless = dir + "/endless.gguf", deep_path = dir + "/deep.gguf";
  testing::copy_with_template(testing::tiny_model(), endless,
                              "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}");
  testing::copy_with_template(testing::tiny_model(), deep_path,
                              "{% set ns = namespace(l=[]) %}{% for m in messages * 1000 %}{% set ns.l = [ns.l, m] %}"
                              "{% endfor %}{{ ns.l }}");
  ModelConfig e = tiny_config("endless");
  e.path = endless;
  ModelConfig c = tiny_config("deep");
  c.path = deep_path;
  Rig rig({e, c, tiny_config("fine")});
  ASSERT_TRUE(rig.rt->load("endless").has_value());
  auto chat = [](std::string model) {
    GenerateRequest q;
    q.model = std::move(model);
    q.messages = nlohmann::ordered_json::array({{{"role", "user"}, {"content", "hi"}}});
    q.max_tokens = 2;
    return q;
  };
  auto deep = rig.rt->generate(chat("deep"));
  ASSERT_FALSE(deep.has_value());
  EXPECT_EQ(deep.error().code, RequestErrorCode::kInvalidRequest);
  EXPECT_NE(deep.error().message.find("nest deeper than the template limit"), std::string::npos)
      << deep.error().message;
  // Taken off the queue (rendering), then cancelled.
  auto s = rig.rt->submit(chat("endless"));
  ASSERT_TRUE(eventually([&] { return rig.status("endless").queued == 0; }));
  s->cancel();
  auto evs = drain(*s);
  ASSERT_FALSE(evs.empty());
  const Event& last = evs.back();
  if (last.type == EventType::kError) {
    EXPECT_NE(last.error.message.find("the render was cancelled"), std::string::npos) << last.error.message;
  } else {
    EXPECT_EQ(last.finish, FinishReason::kCancelled);
  }
  // Other models are unaffected, and so is the next request of this one's neighbours.
  auto ok = rig.rt->generate(chat("fine"));
  EXPECT_TRUE(ok.has_value()) << ok.error().message;
}

TEST(Scheduler, DeadlineCountsFromWhenTheRequestStartsRunning) {
  ModelConfig a = tiny_config("a");
  a.deadline = Millis(150);
  Rig rig({a});
  rig.backend->hold_loads(true);
  rig.backend->set_step_delay(Millis(5));
  auto s = rig.rt->submit(endless("a", "slow"));
  std::this_thread::sleep_for(Millis(300));  // waiting for the load does not count
  rig.backend->hold_loads(false);
  auto evs = drain(*s);
  ASSERT_EQ(evs.back().type, EventType::kDone);
  EXPECT_EQ(evs.back().finish, FinishReason::kDeadline);
  // Had the 300 ms of loading counted, the 150 ms deadline would have passed
  // before the first token. Each step sleeps >= 5 ms, so the deadline cuts
  // the endless output short (bounds on tokens, not on seconds).
  const int n = count_tokens(evs);
  EXPECT_GT(n, 0);
  EXPECT_LT(n, 100);
  EXPECT_GE(evs.back().timings.total_s, 0.3);
  // Per request, and 0 = none.
  GenerateRequest q = endless("a", "short", 40);
  q.deadline = Millis(0);
  auto r = rig.rt->generate(q);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->finish, FinishReason::kLength);
  q.deadline = Millis(20);
  q.max_tokens = 100000;
  r = rig.rt->generate(q);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->finish, FinishReason::kDeadline);
}

TEST(Scheduler, StopStringsEndTheOutputAndAreHeldBackUntilDecided) {
  Rig rig({tiny_config("a")});
  auto free_run = rig.rt->generate(endless("a", "print(", 30));
  ASSERT_TRUE(free_run.has_value());
  const std::string full = free_run->text;
  ASSERT_GE(full.size(), 12u) << full;
  // A stop string from the middle of what the model says.
  const std::string stop = full.substr(6, 3);
  const size_t at = full.find(stop);
  GenerateRequest q = endless("a", "print(", 30);
  q.stop = {"never-said-this", stop};
  std::vector<Event> events;
  auto r = rig.rt->generate(q, [&](const Event& e) { events.push_back(e); });
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->finish, FinishReason::kStop);
  EXPECT_EQ(r->stop, stop);
  EXPECT_EQ(r->text, full.substr(0, at));
  // Stop strings configured for the model work the same.
  ModelConfig b = tiny_config("b");
  b.stop = {stop};
  Rig rig2({b});
  auto r2 = rig2.rt->generate(endless("b", "print(", 30));
  ASSERT_TRUE(r2.has_value());
  EXPECT_EQ(r2->text, full.substr(0, at));
  // Held-back text that turns out not to be a stop string is delivered.
  GenerateRequest q3 = endless("a", "print(", 30);
  q3.stop = {full.substr(full.size() - 2) + "\x01"};  // a prefix of it appears at the very end
  auto r3 = rig.rt->generate(q3);
  ASSERT_TRUE(r3.has_value());
  EXPECT_EQ(r3->finish, FinishReason::kLength);
  EXPECT_EQ(r3->text, full);
}

TEST(Scheduler, LimitsAndBadRequests) {
  Rig rig({tiny_config("a")});
  // The prompt must leave room for one generated token in 256 positions.
  auto too_long = rig.rt->generate(endless("a", std::string(256, 'p'), 1));
  ASSERT_FALSE(too_long.has_value());
  EXPECT_EQ(too_long.error().code, RequestErrorCode::kPromptTooLong);
  EXPECT_NE(too_long.error().message.find("256"), std::string::npos);
  EXPECT_EQ(suggested_http_status(too_long.error().code), 413);
  auto fits = rig.rt->generate(endless("a", std::string(255, 'p'), 5));
  ASSERT_TRUE(fits.has_value());
  EXPECT_EQ(fits->timings.generated_tokens, 2);  // one from the prompt, one more fed: then the context is full
  EXPECT_EQ(fits->finish, FinishReason::kLength);

  GenerateRequest none;
  none.model = "a";
  auto r = rig.rt->generate(none);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, RequestErrorCode::kInvalidRequest);

  GenerateRequest bad_tok;
  bad_tok.model = "a";
  bad_tok.tokens = {1, 2, 99999};
  r = rig.rt->generate(bad_tok);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, RequestErrorCode::kInvalidRequest);
  EXPECT_NE(r.error().message.find("99999"), std::string::npos);

  GenerateRequest bad_sampling = text_request("a", "x");
  bad_sampling.sampling.top_p = 2.0f;
  r = rig.rt->generate(bad_sampling);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, RequestErrorCode::kInvalidRequest);
  EXPECT_NE(r.error().message.find("top_p"), std::string::npos);

  GenerateRequest both = text_request("a", "x");
  both.tokens = {1};
  r = rig.rt->generate(both);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, RequestErrorCode::kInvalidRequest);

  // The runtime keeps serving after all of that.
  EXPECT_TRUE(rig.rt->generate(endless("a", "ok", 2)).has_value());
  EXPECT_GE(rig.status("a").requests_failed, 3u);
}

TEST(Scheduler, PromptFormsTokensChatAndFillInTheMiddle) {
  Rig rig({tiny_config("a")});
  GenerateRequest tq;
  tq.model = "a";
  tq.tokens = {104, 105};  // raw ids
  tq.max_tokens = 3;
  tq.ignore_eog = true;
  auto t = rig.rt->generate(tq);
  ASSERT_TRUE(t.has_value()) << t.error().message;
  EXPECT_EQ(t->timings.prompt_tokens, 2);

  GenerateRequest cq;
  cq.model = "a";
  cq.messages = nlohmann::ordered_json::array({{{"role", "user"}, {"content", "hi"}}});
  cq.max_tokens = 3;
  cq.ignore_eog = true;
  auto c = rig.rt->generate(cq);
  ASSERT_TRUE(c.has_value()) << c.error().message;
  // ChatML: <|im_start|> user \n h i <|im_end|> \n <|im_start|> assistant \n
  EXPECT_EQ(c->timings.prompt_tokens, 1 + 4 + 1 + 2 + 1 + 1 + 1 + 9 + 1);

  GenerateRequest fq = text_request("a", "def f(", 3);
  fq.suffix = "):\n    pass";
  fq.ignore_eog = true;
  auto f = rig.rt->generate(fq);
  ASSERT_TRUE(f.has_value()) << f.error().message;
  EXPECT_EQ(f->timings.prompt_tokens, 3 + 6 + 11);  // 3 FIM tokens around prefix and suffix
}

TEST(Scheduler, AutoContextGrowsAsTheSequenceNeedsIt) {
  ModelConfig a = tiny_config("a");
  a.path = testing::tiny_model(1, 4096);
  a.ctx_auto = true;
  a.ctx = 0;
  a.ctx_max = 2048;
  Rig rig({a});
  ASSERT_TRUE(rig.rt->load("a").has_value());
  const ModelStatus before = rig.status("a");
  EXPECT_EQ(before.n_ctx, 1024);  // starts small
  EXPECT_EQ(before.n_ctx_max, 2048);
  auto r = rig.rt->generate(endless("a", std::string(1500, 'q'), 4));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->timings.generated_tokens, 4);
  const ModelStatus after = rig.status("a");
  EXPECT_EQ(after.n_ctx, 2048);
  EXPECT_GT(after.reserved_bytes, before.reserved_bytes);
  EXPECT_GT(after.allocated_bytes, before.allocated_bytes);
  // Over the most it may grow to: refused as too long.
  auto r2 = rig.rt->generate(endless("a", std::string(2100, 'q'), 4));
  ASSERT_FALSE(r2.has_value());
  EXPECT_EQ(r2.error().code, RequestErrorCode::kPromptTooLong);
}

TEST(Scheduler, AutoContextStopsGrowingAtTheBudget) {
  ModelConfig a = tiny_config("a");
  a.path = testing::tiny_model(1, 4096);
  a.ctx_auto = true;
  a.ctx = 0;
  auto facts = make_gguf_backend()->inspect(a);
  ASSERT_TRUE(facts.has_value());
  // Room for 1024 positions and a bit, not for 2048.
  const uint64_t budget = facts->bytes_at(1024, 1) + facts->kv_bytes_per_pos * 512;
  Rig rig({a}, budget);
  auto r = rig.rt->generate(endless("a", std::string(1000, 'q'), 100));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->finish, FinishReason::kLength);
  EXPECT_EQ(r->timings.generated_tokens, 25);  // one from the prompt + 24 fed: the context filled at 1024
  EXPECT_EQ(rig.status("a").n_ctx, 1024);
  EXPECT_LE(rig.rt->status().reserved_bytes, budget);
}

TEST(Scheduler, ManyThreadsSubmittingAtOnce) {
  ModelConfig a = tiny_config("a");
  a.parallel = 2;
  a.queue = 4;
  Rig rig({a});
  std::atomic<int> done{0}, busy{0}, other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 3; ++i) {
        auto r = rig.rt->generate(endless("a", fmt::format("thread {} request {}", t, i), 4));
        if (r) ++done;
        else if (r.error().code == RequestErrorCode::kBusy) ++busy;
        else ++other;
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(done + busy, 24);
  EXPECT_EQ(other, 0);
  EXPECT_GT(done, 0);
  const ModelStatus s = rig.status("a");
  EXPECT_EQ(s.requests_done, static_cast<uint64_t>(done.load()));
  EXPECT_EQ(s.requests_rejected, static_cast<uint64_t>(busy.load()));
  EXPECT_EQ(s.active, 0);
  EXPECT_EQ(s.queued, 0);
}

}  // namespace
}  // namespace codey
