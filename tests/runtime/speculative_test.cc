// Speculative decoding in the runtime: a configured draft model (loaded,
// counted in the budget and unloaded with its target) and n-gram lookup,
// per slot under continuous batching; greedy output is the plain output.
#include <gtest/gtest.h>

#include "runtime/runtime_testing.h"

namespace codey {
namespace {

using testing::ControlledBackend;
using testing::drain;
using testing::find_status;
using testing::text_request;
using testing::tiny_config;
using testing::tiny_model;

struct Rig {
  std::shared_ptr<ControlledBackend> backend = std::make_shared<ControlledBackend>();
  std::unique_ptr<Runtime> rt;
  std::string error;

  explicit Rig(std::vector<ModelConfig> models, uint64_t budget = 1ull << 30, bool load_pinned = true) {
    RuntimeConfig c;
    c.memory_budget = budget;
    c.threads = 1;
    c.models = std::move(models);
    RuntimeOptions o;
    o.backend = backend;
    o.load_pinned = load_pinned;
    auto r = Runtime::create(std::move(c), o);
    if (r) rt = std::move(*r);
    else error = r.error().message;
  }
  ModelStatus status(std::string_view name) const { return *find_status(rt->status(), name); }
};

// The target "a" (tiny, f16) and drafts: the same weights at 8 bits (close),
// other weights with the same built-in vocabulary (far).
ModelConfig target(int parallel = 1) {
  ModelConfig a = tiny_config("a");
  a.parallel = parallel;
  return a;
}
ModelConfig close_draft() {
  ModelConfig d = tiny_config("close");
  d.path = tiny_model(1, 512, 4, "Q8_0");
  return d;
}
ModelConfig far_draft() { return tiny_config("far", 2); }

GenerateRequest endless(std::string model, std::string prompt, int max_tokens) {
  GenerateRequest q = text_request(std::move(model), std::move(prompt), max_tokens);
  q.ignore_eog = true;
  return q;
}

const std::vector<std::string> kPrompts = {"def add(a, b):", "class Stack:\n    def push(self, x):", "for i in range(10):"};

// Every prompt's greedy continuation from a runtime, submitted together.
std::vector<Completion> run_all(Rig& rig, int n) {
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (const auto& p : kPrompts) streams.push_back(rig.rt->submit(endless("a", p, n)));
  std::vector<Completion> out;
  for (auto& s : streams) {
    Completion c;
    for (const Event& e : drain(*s)) {
      if (e.type == EventType::kToken && e.token != kNoToken) c.tokens.push_back(e.token);
      if (e.type == EventType::kToken) c.text += e.text;
      if (e.type == EventType::kDone) c.timings = e.timings;
      EXPECT_NE(e.type, EventType::kError) << e.error.message;
    }
    out.push_back(std::move(c));
  }
  return out;
}

TEST(SpeculativeRuntime, GreedyOutputIsThePlainOutputUnderContinuousBatching) {
  const int n = 48;
  std::vector<Completion> plain;
  {
    Rig rig({target()});
    ASSERT_TRUE(rig.rt) << rig.error;
    for (const auto& p : kPrompts) {
      auto c = rig.rt->generate(endless("a", p, n));
      ASSERT_TRUE(c.has_value()) << c.error().message;
      EXPECT_EQ(c->timings.draft_tokens, 0);
      plain.push_back(std::move(*c));
    }
  }
  struct Variant {
    const char* name;
    std::function<std::vector<ModelConfig>()> models;
    bool expect_accepts;
  };
  const Variant variants[] = {
      {"lookup 6", [] {
         ModelConfig a = target(3);
         a.lookup = 6;
         return std::vector<ModelConfig>{a};
       }, true},
      {"close draft", [] {
         ModelConfig a = target(3);
         a.draft = "close";
         a.draft_max = 5;
         a.draft_p_min = 0.0f;
         return std::vector<ModelConfig>{a, close_draft()};
       }, true},
      {"far draft", [] {
         ModelConfig a = target(3);
         a.draft = "far";
         a.draft_max = 4;
         a.draft_p_min = 0.0f;
         return std::vector<ModelConfig>{a, far_draft()};
       }, false},
  };
  for (const Variant& v : variants) {
    SCOPED_TRACE(v.name);
    Rig rig(v.models());
    ASSERT_TRUE(rig.rt) << rig.error;
    const auto got = run_all(rig, n);
    ASSERT_EQ(got.size(), plain.size());
    int64_t drafted = 0, accepted = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].tokens, plain[i].tokens) << kPrompts[i];
      EXPECT_EQ(got[i].text, plain[i].text) << kPrompts[i];
      EXPECT_EQ(got[i].timings.generated_tokens, n);
      EXPECT_LE(got[i].timings.draft_accepted, got[i].timings.draft_tokens);
      drafted += got[i].timings.draft_tokens;
      accepted += got[i].timings.draft_accepted;
    }
    EXPECT_GT(drafted, 0);
    if (v.expect_accepts) EXPECT_GT(accepted, drafted / 4);
    // Drafts were verified in the same passes as other slots' tokens.
    bool batched = false;
    for (const auto& b : rig.backend->batches()) batched = batched || (b.seqs.size() >= 2 && b.logits_seqs.size() > b.seqs.size());
    EXPECT_TRUE(batched);
    const ModelStatus st = rig.status("a");
    EXPECT_EQ(st.draft_tokens, static_cast<uint64_t>(drafted));
    EXPECT_EQ(st.draft_accepted, static_cast<uint64_t>(accepted));
    EXPECT_FALSE(st.draft.empty());
    // The same prompt again reuses its cached prefix: the slot's cache matched the KV cache.
    auto again = rig.rt->generate(endless("a", kPrompts[0], n));
    ASSERT_TRUE(again.has_value());
    EXPECT_EQ(again->tokens, plain[0].tokens);
    EXPECT_GT(again->timings.prompt_cached_tokens, 0);
  }
}

TEST(SpeculativeRuntime, SampledRequestsKeepTheirSeed) {
  ModelConfig a = target(2);
  a.draft = "close";
  a.draft_p_min = 0.0f;
  Rig rig({a, close_draft()});
  ASSERT_TRUE(rig.rt) << rig.error;
  auto req = [] {
    GenerateRequest q = endless("a", "def add(a, b):", 40);
    q.sampling.temperature = 0.8f;
    q.sampling.seed = 5;
    return q;
  };
  auto r1 = rig.rt->generate(req()), r2 = rig.rt->generate(req());
  ASSERT_TRUE(r1.has_value()) << r1.error().message;
  ASSERT_TRUE(r2.has_value());
  EXPECT_EQ(r1->tokens, r2->tokens);
  EXPECT_EQ(r1->tokens.size(), 40u);
  EXPECT_GT(r1->timings.draft_tokens, 0);
  EXPECT_GT(r1->timings.draft_accepted, 0);
}

TEST(SpeculativeRuntime, TheDraftIsLoadedCountedAndUnloadedWithItsTarget) {
  ModelConfig a = target();
  a.draft = "close";
  Rig plain({target(), close_draft()});
  Rig rig({a, close_draft()});
  ASSERT_TRUE(plain.rt && rig.rt);
  auto fa = plain.rt->model_facts("a"), fd = plain.rt->model_facts("close"), f = rig.rt->model_facts("a");
  ASSERT_TRUE(fa && fd && f) << (f ? "" : f.error().message);
  EXPECT_EQ(f->weight_bytes, fa->weight_bytes + fd->weight_bytes);
  EXPECT_EQ(f->kv_bytes_per_pos, fa->kv_bytes_per_pos + fd->kv_bytes_per_pos);
  EXPECT_GT(f->scratch_bytes, fa->scratch_bytes);
  EXPECT_GT(rig.status("a").needed_bytes, plain.status("a").needed_bytes);

  ASSERT_TRUE(plain.rt->load("a").has_value());
  ASSERT_TRUE(rig.rt->load("a").has_value());
  // The draft's KV cache and activations are the target's allocation; the
  // draft is not a model of its own in the table.
  EXPECT_GT(rig.status("a").allocated_bytes, plain.status("a").allocated_bytes);
  EXPECT_EQ(rig.status("close").state, ModelState::kUnloaded);
  EXPECT_EQ(rig.status("close").loads, 0u);
  EXPECT_GE(rig.status("a").reserved_bytes, rig.status("a").needed_bytes);
  ASSERT_TRUE(rig.rt->unload("a").has_value());
  EXPECT_EQ(rig.status("a").reserved_bytes, 0u);
  EXPECT_EQ(rig.backend->loads("close"), 0);

  // A budget the target fits alone but not with its draft: refused, and the
  // message counts the draft in.
  const uint64_t alone = plain.status("a").needed_bytes, both = rig.status("a").needed_bytes;
  Rig tight({a, close_draft()}, (alone + both) / 2);
  ASSERT_TRUE(tight.rt);
  auto r = tight.rt->generate(endless("a", "x", 2));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, RequestErrorCode::kInsufficientMemory);
  EXPECT_NE(r.error().message.find(format_bytes(both)), std::string::npos) << r.error().message;

  // Pinned: loaded at start with its draft, and drafting.
  ModelConfig p = a;
  p.pinned = true;
  p.draft_p_min = 0.0f;
  Rig pinned({p, close_draft()});
  ASSERT_TRUE(pinned.rt);
  ASSERT_TRUE(testing::eventually([&] { return pinned.status("a").state == ModelState::kLoaded; }));
  auto c = pinned.rt->generate(endless("a", "def f():", 16));
  ASSERT_TRUE(c.has_value());
  EXPECT_GT(c->timings.draft_tokens, 0);
}

// The draft goes out with its target when the budget makes room for another
// model, and comes back with it: the runtime's table never holds the draft on
// its own, and the reloaded pair drafts again.
TEST(SpeculativeRuntime, TheDraftIsEvictedAndReloadedWithItsTarget) {
  ModelConfig a = target();
  a.draft = "close";
  a.draft_p_min = 0.0f;
  ModelConfig b = tiny_config("b", 3);
  Rig probe({a, close_draft(), b});
  ASSERT_TRUE(probe.rt) << probe.error;
  const uint64_t need_a = probe.status("a").needed_bytes, need_b = probe.status("b").needed_bytes;
  // Room for a with its draft, or for b, never both.
  Rig rig({a, close_draft(), b}, std::max(need_a, need_b) + std::min(need_a, need_b) / 2);
  ASSERT_TRUE(rig.rt) << rig.error;
  auto c1 = rig.rt->generate(endless("a", "def f():", 12));
  ASSERT_TRUE(c1.has_value()) << c1.error().message;
  EXPECT_GT(c1->timings.draft_tokens, 0);
  ASSERT_TRUE(rig.rt->generate(endless("b", "x", 2)).has_value());
  EXPECT_EQ(rig.status("a").state, ModelState::kUnloaded);
  EXPECT_EQ(rig.status("a").evictions, 1u);
  EXPECT_EQ(rig.status("a").reserved_bytes, 0u);
  auto c2 = rig.rt->generate(endless("a", "def f():", 12));
  ASSERT_TRUE(c2.has_value()) << c2.error().message;
  EXPECT_EQ(c2->tokens, c1->tokens);
  EXPECT_GT(c2->timings.draft_tokens, 0);
  EXPECT_EQ(rig.status("b").state, ModelState::kUnloaded);
  EXPECT_EQ(rig.backend->loads("a"), 2);
  EXPECT_EQ(rig.backend->loads("close"), 0);
}

// The edges of the context: with a fixed context, drafts are cut to the room
// left and the sequence ends at the same token as plain decoding (rejected
// drafts near the end must not eat the last positions); with ctx auto, the
// context grows under drafts and the text stays the plain one.
TEST(SpeculativeRuntime, DraftsAtTheEdgesOfTheContext) {
  // kind 0: plain, 1: lookup, 2: the target's weights at 8 bits as draft.
  auto drafting = [](ModelConfig a, int64_t n_ctx_train, int kind) {
    if (kind == 1) a.lookup = 8;
    if (kind != 2) return std::vector<ModelConfig>{a};
    a.draft = "close";
    a.draft_max = 8;
    a.draft_p_min = 0.0f;
    ModelConfig d = close_draft();
    d.path = tiny_model(1, n_ctx_train, 4, "Q8_0");
    return std::vector<ModelConfig>{a, d};
  };
  // Fixed context of 40 positions: each prompt runs into it.
  ModelConfig fixed = target(2);
  fixed.ctx = 40;
  // ctx auto from 1024 positions (the start) up to 2048: 1100 generated
  // tokens make it grow once.
  ModelConfig grow = target(1);
  grow.path = tiny_model(1, 2048);
  grow.ctx_auto = true;
  grow.ctx = 0;
  grow.ctx_max = 2048;
  struct Case {
    const char* name;
    ModelConfig cfg;
    int64_t n_ctx_train;
    int max_tokens;
    FinishReason finish;
  };
  const Case cases[] = {{"fixed ctx 40", fixed, 512, 0, FinishReason::kLength},
                        {"ctx auto 1024 -> 2048", grow, 2048, 1100, FinishReason::kLength}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<Completion> plain;
    {
      Rig rig(drafting(c.cfg, c.n_ctx_train, 0));
      ASSERT_TRUE(rig.rt) << rig.error;
      for (const auto& p : kPrompts) {
        auto r = rig.rt->generate(endless("a", p, c.max_tokens));
        ASSERT_TRUE(r.has_value()) << r.error().message;
        EXPECT_EQ(r->finish, c.finish);
        plain.push_back(std::move(*r));
        if (c.cfg.ctx_auto) break;  // one long sequence is enough to grow
      }
    }
    for (int kind : {1, 2}) {
      SCOPED_TRACE(kind == 1 ? "lookup 8" : "draft");
      Rig rig(drafting(c.cfg, c.n_ctx_train, kind));
      ASSERT_TRUE(rig.rt) << rig.error;
      int64_t drafted = 0;
      for (size_t i = 0; i < plain.size(); ++i) {
        auto r = rig.rt->generate(endless("a", kPrompts[i], c.max_tokens));
        ASSERT_TRUE(r.has_value()) << r.error().message;
        EXPECT_EQ(r->tokens, plain[i].tokens) << kPrompts[i];
        EXPECT_EQ(r->text, plain[i].text);
        EXPECT_EQ(r->finish, c.finish);
        drafted += r->timings.draft_tokens;
      }
      EXPECT_GT(drafted, 0);
      if (c.cfg.ctx_auto) EXPECT_EQ(rig.status("a").n_ctx, 2048);
      else EXPECT_EQ(rig.status("a").n_ctx, 40);
    }
  }
}

TEST(SpeculativeRuntime, ADraftWithAnotherVocabularyOrABadNameIsRefused) {
  ModelConfig a = target();
  a.draft = "qwen";
  ModelConfig q = tiny_config("qwen");
  q.path = testing::testdata("models/micro-qwen2-Q8_0.gguf");
  Rig rig({a, q});
  ASSERT_TRUE(rig.rt) << rig.error;
  auto r = rig.rt->generate(endless("a", "x", 2));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, RequestErrorCode::kLoadFailed);
  EXPECT_NE(r.error().message.find("the draft model 'qwen'"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("does not share its vocabulary"), std::string::npos) << r.error().message;
  EXPECT_FALSE(rig.status("a").error.empty());
  // The draft model itself still serves.
  EXPECT_TRUE(rig.rt->generate(endless("qwen", "x", 2)).has_value());

  ModelConfig bad = target();
  bad.draft = "nope";
  EXPECT_NE(Rig({bad}).error.find("no model named 'nope'"), std::string::npos);
  bad.draft = "a";
  EXPECT_NE(Rig({bad}).error.find("cannot draft for itself"), std::string::npos);
  bad.draft = "close";
  bad.lookup = 4;
  EXPECT_NE(Rig({bad, close_draft()}).error.find("one of draft and lookup"), std::string::npos);
}

}  // namespace
}  // namespace codey
