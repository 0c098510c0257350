// Tests of the model manager (src/runtime/runtime.cc): loading on demand,
// eviction under a budget, pinned models, one load for concurrent first
// requests, keep-alive, fail-fast when a model cannot fit, load/unload,
// memory accounting against the budget, drain and shutdown.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "runtime/runtime_testing.h"
#include "testing/gguf_split.h"

namespace codey {
namespace {

using testing::ControlledBackend;
using testing::drain;
using testing::eventually;
using testing::find_status;
using testing::split_gguf;
using testing::temp_dir;
using testing::tiny_model;
using testing::text_request;
using testing::tiny_config;

// What a tiny model at its configured context asks of the budget.
uint64_t needed_of(const ModelConfig& m) {
  auto f = make_gguf_backend()->inspect(m);
  EXPECT_TRUE(f.has_value()) << f.error().message;
  return f ? f->bytes_at(m.ctx, m.parallel) : 0;
}

RuntimeConfig config_of(std::vector<ModelConfig> models, uint64_t budget) {
  RuntimeConfig c;
  c.memory_budget = budget;
  c.threads = 1;
  c.models = std::move(models);
  return c;
}

struct Rig {
  std::shared_ptr<ControlledBackend> backend = std::make_shared<ControlledBackend>();
  std::unique_ptr<Runtime> rt;

  void start(RuntimeConfig cfg, bool load_pinned = true) {
    RuntimeOptions o;
    o.backend = backend;
    o.load_pinned = load_pinned;
    auto r = Runtime::create(std::move(cfg), o);
    ASSERT_TRUE(r.has_value()) << r.error().message;
    rt = std::move(*r);
  }
  ModelState state(std::string_view name) const { return find_status(rt->status(), name)->state; }
  ModelStatus status(std::string_view name) const { return *find_status(rt->status(), name); }
  // Runs a short request to completion; fails the test on an error.
  void run(const std::string& model) {
    auto r = rt->generate(text_request(model, "hello", 3));
    ASSERT_TRUE(r.has_value()) << model << ": " << r.error().message;
  }
  void expect_within_budget() const {
    const RuntimeStatus st = rt->status();
    EXPECT_LE(st.reserved_bytes, st.memory_budget);
    EXPECT_LE(st.used_bytes, st.memory_budget);
    for (const auto& m : st.models) {
      if (m.state == ModelState::kLoaded || m.state == ModelState::kBusy) {
        EXPECT_GT(m.used_bytes, 0u) << m.name;  // measured, not zero
        EXPECT_GE(m.reserved_bytes, m.used_bytes) << m.name;
      }
    }
  }
};

TEST(Manager, LoadsOnDemandAndReportsMeasuredMemory) {
  Rig rig;
  ModelConfig a = tiny_config("a");
  rig.start(config_of({a}, 1ull << 30));
  EXPECT_EQ(rig.state("a"), ModelState::kUnloaded);
  EXPECT_EQ(rig.status("a").reserved_bytes, 0u);
  EXPECT_EQ(rig.status("a").needed_bytes, needed_of(a));
  rig.run("a");
  const ModelStatus s = rig.status("a");
  EXPECT_EQ(s.state, ModelState::kLoaded);
  EXPECT_EQ(s.loads, 1u);
  EXPECT_GT(s.allocated_bytes, 0u);      // KV cache + activations
  EXPECT_GT(s.mapped_resident_bytes, 0u);  // weights touched at load
  EXPECT_EQ(s.reserved_bytes, std::max(s.needed_bytes, s.used_bytes));
  EXPECT_EQ(s.requests_done, 1u);
  EXPECT_GT(s.generated_tokens, 0u);
  EXPECT_EQ(s.n_ctx, 256);
  rig.expect_within_budget();
  rig.run("a");
  EXPECT_EQ(rig.status("a").loads, 1u);  // stays loaded
  EXPECT_EQ(rig.backend->loads("a"), 1);
}

// A model cut by gguf-split is one model: its facts count every part, and
// mapped or read into memory (mmap: false) it answers as the one file does.
TEST(Manager, SplitModelServesLikeTheWholeFile) {
  const std::string whole = tiny_model(1, 512, 4, "Q8_0");
  const auto parts = split_gguf(whole, temp_dir() + "/tiny-q8", {.max_tensors = 6});
  ASSERT_GE(parts.size(), 3u);
  ModelConfig a = tiny_config("whole"), b = tiny_config("split"), c = tiny_config("split-heap");
  a.path = whole;
  b.path = parts[0];
  c.path = parts.back();
  c.mmap = false;
  Rig rig;
  rig.start(config_of({a, b, c}, 1ull << 30));
  auto fa = rig.rt->model_facts("whole"), fb = rig.rt->model_facts("split");
  ASSERT_TRUE(fa.has_value() && fb.has_value());
  EXPECT_EQ(fa->weight_bytes, fb->weight_bytes);
  uint64_t parts_size = 0;
  for (const auto& p : parts) parts_size += std::filesystem::file_size(p);
  EXPECT_EQ(fb->file_bytes, parts_size);
  std::vector<TokenId> expected;
  for (const char* name : {"whole", "split", "split-heap"}) {
    auto r = rig.rt->generate(text_request(name, "hello there", 8));
    ASSERT_TRUE(r.has_value()) << name << ": " << r.error().message;
    if (expected.empty()) expected = r->tokens;
    EXPECT_EQ(r->tokens, expected) << name;
  }
  EXPECT_GT(rig.status("split-heap").allocated_bytes, rig.status("split").allocated_bytes)
      << "mmap: false holds the weights in allocated memory";
}

// Models pulled while serving join the runtime (add_model) and leave it
// (remove_model); configured ones stay.
TEST(Manager, ModelsAddedAndRemovedWhileRunning) {
  Rig rig;
  rig.start(config_of({tiny_config("a")}, 1ull << 30));
  ModelConfig b = tiny_config("b", 2);
  ASSERT_TRUE(rig.rt->add_model(b).has_value());
  ASSERT_TRUE(rig.rt->add_model(b).has_value()) << "the same file again: two first requests may race";
  ModelConfig other = tiny_config("b", 3);
  auto clash = rig.rt->add_model(other);
  ASSERT_FALSE(clash.has_value());
  EXPECT_NE(clash.error().message.find("exists already"), std::string::npos);
  EXPECT_EQ(rig.rt->models().size(), 2u);
  EXPECT_EQ(rig.rt->config().models.size(), 1u) << "config() stays what was configured";
  rig.run("b");
  EXPECT_EQ(rig.state("b"), ModelState::kLoaded);
  auto configured = rig.rt->remove_model("a");
  ASSERT_FALSE(configured.has_value());
  EXPECT_EQ(configured.error().code, RequestErrorCode::kInvalidRequest);
  ASSERT_TRUE(rig.rt->remove_model("b").has_value());
  EXPECT_FALSE(rig.rt->find_model("b").has_value());
  EXPECT_EQ(rig.rt->status().models.size(), 1u);
  auto gone = rig.rt->generate(text_request("b", "hello", 2));
  ASSERT_FALSE(gone.has_value());
  EXPECT_EQ(gone.error().code, RequestErrorCode::kModelNotFound);
  ASSERT_TRUE(rig.rt->add_model(b).has_value()) << "added again after removal";
  rig.run("b");
  EXPECT_EQ(rig.rt->status().models.size(), 2u);
  ModelConfig bad = tiny_config("c");
  bad.parallel = 0;
  EXPECT_FALSE(rig.rt->add_model(bad).has_value());
}

TEST(Manager, BudgetForTwoOfThreeEvictsTheLeastRecentlyUsed) {
  Rig rig;
  ModelConfig a = tiny_config("a", 1), b = tiny_config("b", 2), c = tiny_config("c", 3);
  const uint64_t need = needed_of(a);
  rig.start(config_of({a, b, c}, need * 2 + need / 2));
  auto loaded = [&](std::string_view n) {
    const ModelState s = rig.state(n);
    return s == ModelState::kLoaded || s == ModelState::kBusy;
  };
  rig.run("a");
  rig.run("b");
  EXPECT_TRUE(loaded("a") && loaded("b"));
  rig.expect_within_budget();
  // Each request for the unloaded model evicts the least recently used one.
  const struct {
    const char* use;
    const char* evicted;
  } steps[] = {{"c", "a"}, {"a", "b"}, {"b", "c"}, {"c", "a"}, {"a", "b"}};
  for (const auto& st : steps) {
    rig.run(st.use);
    EXPECT_TRUE(loaded(st.use)) << st.use;
    EXPECT_EQ(rig.state(st.evicted), ModelState::kUnloaded) << "using " << st.use << " should evict " << st.evicted;
    int n_loaded = 0;
    for (const char* n : {"a", "b", "c"}) n_loaded += loaded(n) ? 1 : 0;
    EXPECT_EQ(n_loaded, 2);
    rig.expect_within_budget();
  }
  EXPECT_EQ(rig.backend->loads("a"), 3);
  EXPECT_EQ(rig.backend->loads("b"), 2);
  EXPECT_EQ(rig.backend->loads("c"), 2);
  EXPECT_EQ(rig.status("a").evictions, 2u);
  EXPECT_EQ(rig.status("b").evictions, 2u);
  EXPECT_EQ(rig.status("c").evictions, 1u);
  // Alternating between the two loaded ones loads nothing.
  const int loads_before = rig.backend->loads("a") + rig.backend->loads("b") + rig.backend->loads("c");
  for (int i = 0; i < 3; ++i) {
    rig.run("a");
    rig.run("c");
  }
  EXPECT_EQ(rig.backend->loads("a") + rig.backend->loads("b") + rig.backend->loads("c"), loads_before);
}

TEST(Manager, PinnedModelIsNeverEvicted) {
  Rig rig;
  ModelConfig a = tiny_config("a", 1), b = tiny_config("b", 2), c = tiny_config("c", 3);
  a.pinned = true;
  a.keep_alive = Millis(0);  // pinned wins over keep_alive
  const uint64_t need = needed_of(a);
  // d fits the budget, but not next to the pinned model.
  ModelConfig d = tiny_config("d", 1);
  rig.backend->set_sizes("d", {need * 2, 0, 0});
  rig.start(config_of({a, b, c, d}, need * 2 + need / 2));
  ASSERT_TRUE(eventually([&] { return rig.state("a") == ModelState::kLoaded; }));  // loaded at start
  for (int i = 0; i < 3; ++i) {
    rig.run("b");
    rig.run("c");
    rig.run("a");
  }
  EXPECT_EQ(rig.state("a"), ModelState::kLoaded);
  EXPECT_EQ(rig.backend->loads("a"), 1);
  EXPECT_EQ(rig.status("a").evictions, 0u);
  EXPECT_GE(rig.backend->loads("b"), 3);
  auto r = rig.rt->generate(text_request("d", "x"));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, RequestErrorCode::kInsufficientMemory);
  EXPECT_NE(r.error().message.find("pinned"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("pinned models (a)"), std::string::npos) << r.error().message;
  EXPECT_EQ(rig.state("a"), ModelState::kLoaded);
}

TEST(Manager, EvictsOneBigModelRatherThanSeveralSmallOnes) {
  Rig rig;
  constexpr uint64_t kMiB = 1ull << 20;
  std::vector<ModelConfig> ms;
  for (const char* n : {"s1", "s2", "s3", "big", "new", "mid", "huge"}) ms.push_back(tiny_config(n));
  for (const char* n : {"s1", "s2", "s3"}) rig.backend->set_sizes(n, {100 * kMiB, 0, 0});
  rig.backend->set_sizes("big", {200 * kMiB, 0, 0});
  rig.backend->set_sizes("new", {200 * kMiB, 0, 0});
  rig.backend->set_sizes("mid", {100 * kMiB, 0, 0});
  rig.backend->set_sizes("huge", {300 * kMiB, 0, 0});
  rig.start(config_of(ms, 500 * kMiB));
  // Use order: s1, s2, s3 (least recent), big (most recent): the budget is full.
  for (const char* n : {"s1", "s2", "s3", "big"}) rig.run(n);
  EXPECT_EQ(rig.rt->status().reserved_bytes, 500 * kMiB);
  // 200 MiB needed: LRU alone would take s1 and s2; the one big model frees
  // enough on its own, so it goes instead.
  rig.run("new");
  EXPECT_EQ(rig.state("big"), ModelState::kUnloaded);
  for (const char* n : {"s1", "s2", "s3"}) EXPECT_EQ(rig.state(n), ModelState::kLoaded) << n;
  // 100 MiB needed: of the models that each free enough, the least recently used.
  rig.run("mid");
  EXPECT_EQ(rig.state("s1"), ModelState::kUnloaded);
  for (const char* n : {"s2", "s3", "new"}) EXPECT_EQ(rig.state(n), ModelState::kLoaded) << n;
  // 300 MiB needed: no single model frees enough. Least recently used first
  // (s2, s3, new: 400 MiB), then the ones not needed are given back, most
  // recently used first: s3 goes back, s2 + new free exactly 300 MiB.
  rig.run("huge");
  EXPECT_EQ(rig.state("s2"), ModelState::kUnloaded);
  EXPECT_EQ(rig.state("new"), ModelState::kUnloaded);
  EXPECT_EQ(rig.state("s3"), ModelState::kLoaded);
  EXPECT_EQ(rig.state("mid"), ModelState::kLoaded);
  EXPECT_EQ(rig.state("huge"), ModelState::kLoaded);
  EXPECT_LE(rig.rt->status().reserved_bytes, 500 * kMiB);
}

TEST(Manager, TwoSimultaneousFirstRequestsCauseOneLoad) {
  Rig rig;
  rig.start(config_of({tiny_config("a")}, 1ull << 30));
  rig.backend->hold_loads(true);
  std::shared_ptr<RequestStream> s1, s2;
  std::thread t1([&] { s1 = rig.rt->submit(text_request("a", "one", 2)); });
  std::thread t2([&] { s2 = rig.rt->submit(text_request("a", "two", 2)); });
  std::thread t3([&] { EXPECT_TRUE(rig.rt->load("a").has_value()); });  // a third waiter, via the API
  t1.join();
  t2.join();
  ASSERT_TRUE(eventually([&] { return rig.backend->loads_waiting() == 1; }));
  EXPECT_EQ(rig.state("a"), ModelState::kLoading);
  rig.backend->hold_loads(false);
  t3.join();
  for (auto* s : {&s1, &s2}) {
    auto evs = drain(**s);
    ASSERT_FALSE(evs.empty());
    EXPECT_EQ(evs.front().type, EventType::kQueued);
    bool saw_loading = false;
    for (const auto& e : evs) saw_loading |= e.type == EventType::kLoading;
    EXPECT_TRUE(saw_loading);
    EXPECT_EQ(evs.back().type, EventType::kDone);
    EXPECT_GT(evs.back().timings.load_s, 0.0);  // they waited for the load
  }
  EXPECT_EQ(rig.backend->loads("a"), 1);
  EXPECT_EQ(rig.status("a").loads, 1u);
}

TEST(Manager, KeepAliveUnloadsIdleModels) {
  Rig rig;
  ModelConfig a = tiny_config("a"), b = tiny_config("b"), c = tiny_config("c");
  a.keep_alive = Millis(150);
  b.keep_alive = Millis(-1);
  c.keep_alive = Millis(-1);
  rig.start(config_of({a, b, c}, 1ull << 30));
  rig.run("a");
  const ModelStatus s = rig.status("a");
  EXPECT_EQ(s.state, ModelState::kLoaded);
  ASSERT_TRUE(s.expires_in_s.has_value());
  EXPECT_LE(*s.expires_in_s, 0.15);
  ASSERT_TRUE(eventually([&] { return rig.state("a") == ModelState::kUnloaded; }, Millis(5000)));
  EXPECT_EQ(rig.status("a").unloads, 1u);
  EXPECT_EQ(rig.status("a").reserved_bytes, 0u);
  // keep_alive 0 on the request: unloaded right after it.
  GenerateRequest q = text_request("b", "hi", 2);
  q.keep_alive = Millis(0);
  ASSERT_TRUE(rig.rt->generate(q).has_value());
  ASSERT_TRUE(eventually([&] { return rig.state("b") == ModelState::kUnloaded; }, Millis(5000)));
  // Negative: forever.
  rig.run("c");
  std::this_thread::sleep_for(Millis(400));
  EXPECT_EQ(rig.state("c"), ModelState::kLoaded);
  EXPECT_FALSE(rig.status("c").expires_in_s.has_value());
  // A request's keep_alive replaces the model's until the next request.
  GenerateRequest q2 = text_request("c", "hi", 2);
  q2.keep_alive = Millis(100);
  ASSERT_TRUE(rig.rt->generate(q2).has_value());
  ASSERT_TRUE(eventually([&] { return rig.state("c") == ModelState::kUnloaded; }, Millis(5000)));
}

TEST(Manager, AModelThatCanNeverFitFailsAtOnceWithTheNumbers) {
  Rig rig;
  ModelConfig a = tiny_config("a");
  const uint64_t need = needed_of(a);
  rig.start(config_of({a}, need / 2));
  auto stream = rig.rt->submit(text_request("a", "hello"));
  auto ev = stream->next(Millis(30000));
  ASSERT_TRUE(ev.has_value());
  EXPECT_EQ(rig.backend->loads("a"), 0);  // at once: no load was even tried
  ASSERT_EQ(ev->type, EventType::kError);
  EXPECT_EQ(ev->error.code, RequestErrorCode::kInsufficientMemory);
  EXPECT_FALSE(ev->error.retry_after.has_value());  // retrying cannot help
  const std::string& m = ev->error.message;
  EXPECT_NE(m.find("needs " + format_bytes(need)), std::string::npos) << m;
  EXPECT_NE(m.find(format_bytes(need / 2)), std::string::npos) << m;
  EXPECT_NE(m.find("KV cache"), std::string::npos) << m;
  EXPECT_EQ(rig.backend->loads("a"), 0);
  EXPECT_EQ(rig.state("a"), ModelState::kUnloaded);
  EXPECT_EQ(suggested_http_status(ev->error.code), 503);
}

TEST(Manager, ModelsWithRequestsInFlightAreNotEvicted) {
  Rig rig;
  ModelConfig a = tiny_config("a"), b = tiny_config("b");
  const uint64_t need = needed_of(a);
  rig.start(config_of({a, b}, need + need / 2));
  rig.run("a");
  rig.backend->hold_decode(true);
  auto running = rig.rt->submit(text_request("a", "busy", 4));
  ASSERT_TRUE(eventually([&] { return rig.state("a") == ModelState::kBusy && !rig.backend->batches().empty(); }));
  auto r = rig.rt->generate(text_request("b", "x"));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, RequestErrorCode::kInsufficientMemory);
  EXPECT_TRUE(r.error().retry_after.has_value());  // it may fit once 'a' is idle
  EXPECT_NE(r.error().message.find("in flight"), std::string::npos) << r.error().message;
  EXPECT_EQ(rig.state("a"), ModelState::kBusy);
  rig.backend->hold_decode(false);
  auto evs = drain(*running);
  EXPECT_EQ(evs.back().type, EventType::kDone);
  rig.run("b");  // now 'a' is idle and goes
  EXPECT_EQ(rig.state("a"), ModelState::kUnloaded);
}

TEST(Manager, ExplicitLoadAndUnload) {
  Rig rig;
  ModelConfig a = tiny_config("a");
  a.pinned = true;
  rig.start(config_of({a, tiny_config("b")}, 1ull << 30), /*load_pinned=*/false);
  EXPECT_EQ(rig.state("a"), ModelState::kUnloaded);
  ASSERT_TRUE(rig.rt->load("a").has_value());
  EXPECT_EQ(rig.state("a"), ModelState::kLoaded);
  ASSERT_TRUE(rig.rt->load("a").has_value());  // already loaded: nothing to do
  EXPECT_EQ(rig.backend->loads("a"), 1);
  ASSERT_TRUE(rig.rt->unload("a").has_value());  // pinned models may be unloaded explicitly
  EXPECT_EQ(rig.state("a"), ModelState::kUnloaded);
  ASSERT_TRUE(rig.rt->unload("b").has_value());  // not loaded: fine
  auto nf = rig.rt->load("zzz");
  ASSERT_FALSE(nf.has_value());
  EXPECT_EQ(nf.error().code, RequestErrorCode::kModelNotFound);
  // Busy models are not unloaded.
  rig.backend->hold_decode(true);
  auto s = rig.rt->submit(text_request("b", "x", 2));
  ASSERT_TRUE(eventually([&] { return !rig.backend->batches().empty(); }));
  auto u = rig.rt->unload("b");
  ASSERT_FALSE(u.has_value());
  EXPECT_EQ(u.error().code, RequestErrorCode::kBusy);
  rig.backend->hold_decode(false);
  drain(*s);
}

TEST(Manager, BadModelFilesFailTheirRequestsNotTheRuntime) {
  const std::string dir = testing::temp_dir();
  {
    std::ofstream out(dir + "/corrupt.gguf", std::ios::binary);
    out << "GGUF\x03\0\0\0garbage";
  }
  ModelConfig missing = tiny_config("missing");
  missing.path = dir + "/does-not-exist.gguf";
  ModelConfig corrupt = tiny_config("corrupt");
  corrupt.path = dir + "/corrupt.gguf";
  Rig rig;
  rig.start(config_of({missing, corrupt, tiny_config("good")}, 1ull << 30));
  for (const char* n : {"missing", "corrupt"}) {
    auto r = rig.rt->generate(text_request(n, "x"));
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, RequestErrorCode::kLoadFailed) << n;
    EXPECT_NE(r.error().message.find(n), std::string::npos) << r.error().message;
    EXPECT_FALSE(rig.status(n).error.empty());
  }
  EXPECT_NE(rig.status("missing").error.find("does-not-exist.gguf"), std::string::npos);
  rig.run("good");
  auto nf = rig.rt->generate(text_request("nope", "x"));
  ASSERT_FALSE(nf.has_value());
  EXPECT_EQ(nf.error().code, RequestErrorCode::kModelNotFound);
  EXPECT_NE(nf.error().message.find("good"), std::string::npos);  // lists what is configured
}

TEST(Manager, ShutdownCancelsRunningAndRejectsQueuedAndNew) {
  Rig rig;
  ModelConfig a = tiny_config("a");
  a.queue = 4;
  rig.start(config_of({a}, 1ull << 30));
  rig.backend->set_step_delay(Millis(5));
  GenerateRequest long_req = text_request("a", "long", 100000);
  long_req.ignore_eog = true;
  auto running = rig.rt->submit(long_req);
  ASSERT_TRUE(eventually([&] { return rig.backend->batches().size() > 2; }));
  auto queued = rig.rt->submit(text_request("a", "queued"));
  rig.rt->shutdown(Millis(50));
  auto evs = drain(*running);
  ASSERT_FALSE(evs.empty());
  EXPECT_EQ(evs.back().type, EventType::kDone);
  EXPECT_EQ(evs.back().finish, FinishReason::kCancelled);
  auto qe = drain(*queued);
  EXPECT_EQ(qe.back().type, EventType::kError);
  EXPECT_EQ(qe.back().error.code, RequestErrorCode::kShuttingDown);
  auto late = rig.rt->generate(text_request("a", "late"));
  ASSERT_FALSE(late.has_value());
  EXPECT_EQ(late.error().code, RequestErrorCode::kShuttingDown);
  EXPECT_EQ(rig.state("a"), ModelState::kUnloaded);
}

// drain(): new requests are refused at once, but the queued one still gets
// its slot and both finish; then shutdown() has nothing left to cancel.
TEST(Manager, DrainRefusesNewRequestsAndLetsQueuedAndRunningFinish) {
  Rig rig;
  ModelConfig a = tiny_config("a");
  a.queue = 4;
  rig.start(config_of({a}, 1ull << 30));
  rig.backend->set_step_delay(Millis(2));
  auto running = rig.rt->submit(text_request("a", "running", 40));
  ASSERT_TRUE(eventually([&] { return !rig.backend->batches().empty(); }));
  auto queued = rig.rt->submit(text_request("a", "queued", 5));
  ASSERT_TRUE(eventually([&] { return rig.status("a").queued == 1; }));
  EXPECT_EQ(rig.status("a").queue_limit, 4);
  bool idle = false;
  std::thread drainer([&] { idle = rig.rt->drain(Millis(60'000)); });
  uint64_t before_drain = 0;  // late requests that ran before the drain began
  ASSERT_TRUE(eventually([&] {
    auto late = rig.rt->generate(text_request("a", "late", 2));
    if (late.has_value()) ++before_drain;
    return !late.has_value() && late.error().code == RequestErrorCode::kShuttingDown;
  }));
  EXPECT_FALSE(rig.rt->load("a").has_value());
  drainer.join();
  EXPECT_TRUE(idle);
  for (auto* s : {&running, &queued}) {
    auto evs = drain(**s);
    ASSERT_FALSE(evs.empty());
    EXPECT_EQ(evs.back().type, EventType::kDone);
    EXPECT_NE(evs.back().finish, FinishReason::kCancelled);
  }
  EXPECT_EQ(rig.status("a").requests_done, 2u + before_drain);
  rig.rt->shutdown(Millis(0));
  EXPECT_EQ(rig.state("a"), ModelState::kUnloaded);
}

// A drain that runs out of time leaves the rest to shutdown(), which cancels it.
TEST(Manager, DrainReturnsFalseWhenTimeRunsOut) {
  Rig rig;
  rig.start(config_of({tiny_config("a")}, 1ull << 30));
  rig.backend->set_step_delay(Millis(5));
  GenerateRequest long_req = text_request("a", "long", 100000);
  long_req.ignore_eog = true;
  auto running = rig.rt->submit(long_req);
  ASSERT_TRUE(eventually([&] { return !rig.backend->batches().empty(); }));
  EXPECT_FALSE(rig.rt->drain(Millis(20)));
  rig.rt->shutdown(Millis(0));
  auto evs = drain(*running);
  ASSERT_FALSE(evs.empty());
  EXPECT_EQ(evs.back().finish, FinishReason::kCancelled);
}

}  // namespace
}  // namespace codey
