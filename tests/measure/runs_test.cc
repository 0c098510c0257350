// Tests of the measure layer's runs on a tiny real model (../shared/testdata):
// the work a run does comes from the model's accounting, runs leave the
// sequence where they say, timing uses the clock it is given, stops and bad
// shapes are errors, and run_bench records every test.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <memory>

#include "codey/kernels.h"
#include "codey/measure.h"
#include "testing/testing.h"

namespace codey::measure {
namespace {

std::string tiny_model_path() { return testing::testdata("models/tiny-llama-Q8_0.gguf"); }

std::unique_ptr<Model> load_tiny() {
  auto m = Model::load(tiny_model_path());
  EXPECT_TRUE(m.has_value()) << m.error().message;
  return m ? std::move(*m) : nullptr;
}

std::unique_ptr<Context> context(const Model& m, int64_t n_ctx, int64_t n_batch = 8) {
  ContextParams p;
  p.n_ctx = n_ctx;
  p.n_batch = n_batch;
  p.n_threads = 1;
  auto c = Context::create(m, p);
  EXPECT_TRUE(c.has_value()) << c.error().message;
  return c ? std::move(*c) : nullptr;
}

TEST(Costs, ComeFromTheModelsAccounting) {
  auto m = load_tiny();
  ASSERT_TRUE(m);
  const HParams& hp = m->hparams();
  // What the model says one token costs, recomputed from its matrices.
  double layer = 0, output = 0;
  for (const WeightMatrix& wm : m->weights().matrices())
    (wm.layer < 0 ? output : layer) += 2.0 * double(wm.matrix->rows) * double(wm.matrix->cols);
  EXPECT_DOUBLE_EQ(m->layer_ops_per_token(), layer);
  EXPECT_DOUBLE_EQ(m->output_ops_per_token(), output);
  const double attn_pair = 2.0 * double(hp.n_layer * hp.n_head * (hp.head_dim_k + hp.head_dim_v));
  // One token at depth 0 attends to itself; at depth 10, to 11 positions.
  EXPECT_DOUBLE_EQ(prompt_ops(*m, 0, 1), layer + attn_pair + output);
  EXPECT_DOUBLE_EQ(prompt_ops(*m, 10, 1), layer + 11 * attn_pair + output);
  EXPECT_DOUBLE_EQ(prompt_ops(*m, 0, 4), 4 * layer + (1 + 2 + 3 + 4) * attn_pair + output);
  const double kv_pos =
      double(hp.n_layer * hp.n_head_kv) * double(row_bytes(TensorType::kF16, hp.head_dim_k) + row_bytes(TensorType::kF16, hp.head_dim_v));
  EXPECT_DOUBLE_EQ(generation_bytes(*m, TensorType::kF16, 0, 1), double(m->active_weight_bytes()) + kv_pos);
  EXPECT_DOUBLE_EQ(generation_bytes(*m, TensorType::kF16, 100, 2),
                   2 * double(m->active_weight_bytes()) + kv_pos * (101 + 102));
}

TEST(Runs, PrefillAndGenerateAdvanceSequenceZero) {
  auto m = load_tiny();
  ASSERT_TRUE(m);
  auto c = context(*m, 64, 4);
  ASSERT_TRUE(c);
  const auto toks = random_tokens(10, m->hparams().n_vocab, 3);
  ASSERT_EQ(toks.size(), 10u);
  auto next = prefill(*c, toks, 4);
  ASSERT_TRUE(next.has_value()) << next.error().message;
  EXPECT_EQ(c->kv().seq_length(0), 10);
  EXPECT_GE(*next, 0);
  EXPECT_LT(*next, m->hparams().n_vocab);
  ASSERT_TRUE(generate(*c, *next, 3).has_value());
  EXPECT_EQ(c->kv().seq_length(0), 13);
  // The same prompt in one batch picks the same next token.
  auto c1 = context(*m, 64, 16);
  ASSERT_TRUE(c1);
  auto again = prefill(*c1, toks, 16);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(*again, *next);
}

TEST(Runs, TimedRunsSetTheDepthAndUseTheGivenClock) {
  auto m = load_tiny();
  ASSERT_TRUE(m);
  auto c = context(*m, 64);
  ASSERT_TRUE(c);
  ASSERT_TRUE(fill_kv_random(*c, 0, 40).has_value());
  EXPECT_EQ(c->kv().seq_length(0), 40);
  auto tg = time_generation(*c, 32, 5, 5, measure::virtual_clock());
  ASSERT_TRUE(tg.has_value()) << tg.error().message;
  EXPECT_DOUBLE_EQ(*tg, 1e-3);  // one reading before, one after
  EXPECT_EQ(c->kv().seq_length(0), 37);
  const auto toks = random_tokens(8, m->hparams().n_vocab, 5);
  auto pp = time_prompt(*c, 20, toks, 3, measure::virtual_clock());
  ASSERT_TRUE(pp.has_value()) << pp.error().message;
  EXPECT_DOUBLE_EQ(*pp, 1e-3);
  EXPECT_EQ(c->kv().seq_length(0), 28);
}

TEST(Runs, StopAndShapesThatDoNotFitAreErrors) {
  auto m = load_tiny();
  ASSERT_TRUE(m);
  auto c = context(*m, 32);
  ASSERT_TRUE(c);
  int calls = 0;
  const StopFn stop_after_two = [&] { return ++calls > 2; };
  auto tg = time_generation(*c, 0, 1, 10, steady_seconds, stop_after_two);
  ASSERT_FALSE(tg.has_value());
  EXPECT_EQ(tg.error().code, ErrorCode::kCancelled);
  EXPECT_EQ(c->kv().seq_length(0), 2);  // two tokens were generated before the stop
  auto too_deep = time_generation(*c, 30, 1, 5);
  ASSERT_FALSE(too_deep.has_value());
  EXPECT_EQ(too_deep.error().code, ErrorCode::kInvalidArgument);
  EXPECT_FALSE(fill_kv_random(*c, 0, 33).has_value());
  EXPECT_FALSE(prefill(*c, random_tokens(4, 10, 1), 0).has_value());
  calls = 0;
  auto fill = fill_kv_random(*c, 0, 32, [&] { return ++calls > 1; });  // stops after the first layer
  ASSERT_FALSE(fill.has_value());
  EXPECT_EQ(fill.error().code, ErrorCode::kCancelled);
}

TEST(Bench, RecordsEveryTestWithItsWork) {
  BenchSpec spec;
  spec.models = {tiny_model_path()};
  spec.prompts = {8};
  spec.gens = {4};
  spec.depths = {0, 16};
  spec.threads = {1};
  spec.reps = 2;
  spec.batch = 4;
  spec.limits = false;
  std::vector<std::string> said;
  spec.progress = [&](const std::string& what) { said.push_back(what); };
  EXPECT_EQ(spec.positions_needed(), 24);
  auto recs = run_bench(spec);
  ASSERT_TRUE(recs.has_value()) << recs.error().message;
  ASSERT_EQ(recs->size(), 4u);
  auto m = load_tiny();
  ASSERT_TRUE(m);
  const char* names[] = {"pp8", "tg4", "pp8 @ d16", "tg4 @ d16"};
  for (size_t i = 0; i < recs->size(); ++i) {
    const BenchRecord& r = (*recs)[i];
    EXPECT_EQ(r.test_name(), names[i]);
    EXPECT_EQ(r.samples_s.size(), 2u);
    ASSERT_EQ(r.samples_cpu_s.size(), 2u);  // CPU time beside the wall time of every repetition
    for (double c : r.samples_cpu_s) EXPECT_GT(c, 0.0);
    EXPECT_EQ(r.n_threads, 1);
    EXPECT_EQ(r.isa, kernels::kernels().name);
    EXPECT_EQ(r.model_type, model_type(*m));
    EXPECT_EQ(r.limit_share(), 0.0);  // limits not measured
    if (r.n_prompt > 0)
      EXPECT_DOUBLE_EQ(r.ops_per_rep, prompt_ops(*m, r.n_depth, 8));
    else
      EXPECT_DOUBLE_EQ(r.bytes_per_rep, generation_bytes(*m, TensorType::kF16, r.n_depth, 4));
    EXPECT_EQ(r.tokens_per_second().n, 2);
  }
  EXPECT_EQ(said, std::vector<std::string>{"filling 16 positions of context"});
  EXPECT_NE(model_type(*m).find("llama"), std::string::npos) << model_type(*m);
  EXPECT_NE(model_type(*m).find("Q8_0"), std::string::npos) << model_type(*m);
}

TEST(Bench, BadSpecsAreErrors) {
  BenchSpec spec;
  spec.models = {tiny_model_path()};
  spec.limits = false;
  spec.reps = 0;
  EXPECT_FALSE(run_bench(spec).has_value());
  spec.reps = 1;
  spec.ctx = 16;  // the default tests need 640 positions
  auto small = run_bench(spec);
  ASSERT_FALSE(small.has_value());
  EXPECT_NE(small.error().message.find("too small"), std::string::npos) << small.error().message;
  spec.ctx = 0;
  spec.models = {testing::temp_dir() + "/missing.gguf"};
  EXPECT_FALSE(run_bench(spec).has_value());
}

// Speculative generation yields generate()'s tokens (greedy verification),
// in fewer target passes when drafts are accepted: lookup on the repeating
// continuation of a random-weight model, and a draft model (the same model at
// 4 bits) after a filled depth whose tokens it reads untimed.
TEST(Runs, SpeculativeGenerationIsThePlainGreedyGeneration) {
  auto m = load_tiny();
  ASSERT_TRUE(m);
  auto dm = Model::load(testing::testdata("models/tiny-llama-Q4_0.gguf"));
  ASSERT_TRUE(dm.has_value()) << dm.error().message;
  auto c = context(*m, 256, 16);
  ASSERT_TRUE(c);
  const int64_t n = 96;
  for (const int64_t depth : {int64_t{0}, int64_t{24}}) {
    SCOPED_TRACE(depth);
    const auto history = random_tokens(depth, m->hparams().n_vocab, 7);
    c->kv().clear(0);
    if (depth > 0) ASSERT_TRUE(prefill(*c, history, 16).has_value());
    // generate()'s tokens, one decode each.
    ASSERT_EQ(c->kv().seq_length(0), depth);
    std::vector<int32_t> plain;
    Batch b;
    int32_t tok = 3;
    for (int64_t i = 0; i < n; ++i) {
      b.clear();
      b.add(tok, 0, true);
      auto logits = c->decode(b);
      ASSERT_TRUE(logits.has_value());
      tok = static_cast<int32_t>(std::max_element(logits->begin(), logits->end()) - logits->begin());
      plain.push_back(tok);
    }
    ContextParams dcp = c->params();
    dcp.pool = &c->pool();
    DraftModelParams dp;
    dp.p_min = 0.0f;
    dp.target_vocab = c->n_vocab();
    auto draft = make_model_drafter(**dm, dcp, dp);
    ASSERT_TRUE(draft.has_value()) << draft.error().message;
    auto lookup = make_lookup_drafter(1);
    for (Drafter* d : {lookup.get(), draft->get()}) {
      SCOPED_TRACE(d->describe());
      for (int rep = 0; rep < 2; ++rep) {  // a second run starts over from the depth
        auto run = time_spec_generation(*c, *d, 6, history, 3, n, measure::virtual_clock());
        ASSERT_TRUE(run.has_value()) << run.error().message;
        EXPECT_EQ(run->tokens, plain);
        EXPECT_EQ(c->kv().seq_length(0), depth + n);  // `first` and every token taken but the newest
        EXPECT_EQ(run->stats.generated, n);
        EXPECT_LE(run->stats.accepted, run->stats.drafted);
        EXPECT_EQ(run->stats.passes + run->stats.accepted, n);  // each pass: its accepted drafts and one more
        EXPECT_LT(run->stats.passes, n / 2);                   // both drafters are right most of the time here
        EXPECT_GT(run->seconds, 0.0);
      }
    }
  }
}

TEST(Bench, SpeculativeRecordsBesideThePlainOnes) {
  BenchSpec spec;
  spec.models = {tiny_model_path()};
  spec.prompts = {0};
  spec.gens = {48};
  spec.threads = {1};
  spec.reps = 2;
  spec.limits = false;
  spec.lookup = 8;
  auto recs = run_bench(spec);
  ASSERT_TRUE(recs.has_value()) << recs.error().message;
  ASSERT_EQ(recs->size(), 2u);
  const BenchRecord &plain = (*recs)[0], &sr = (*recs)[1];
  EXPECT_EQ(plain.test_name(), "tg48");
  EXPECT_EQ(plain.tokens_per_pass(), 1.0);
  EXPECT_EQ(sr.test_name(), "tg48 +lookup 8");
  EXPECT_EQ(sr.samples_s.size(), 2u);
  EXPECT_GT(sr.draft_tokens, 0);
  EXPECT_LE(sr.draft_accepted, sr.draft_tokens);
  EXPECT_EQ(sr.target_passes + sr.draft_accepted, 2 * 48);
  EXPECT_GT(sr.tokens_per_pass(), 2.0);
  EXPECT_EQ(sr.achieved(), 0.0);  // no bandwidth figure: a pass is not one token

  spec.lookup = 0;
  spec.draft = testing::testdata("models/tiny-llama-Q4_0.gguf");
  spec.draft_p_min = 0.0f;
  recs = run_bench(spec);
  ASSERT_TRUE(recs.has_value()) << recs.error().message;
  ASSERT_EQ(recs->size(), 2u);
  EXPECT_NE((*recs)[1].spec.find("draft llama"), std::string::npos) << (*recs)[1].spec;
  EXPECT_GT((*recs)[1].draft_accepted, 0);

  // A draft with another vocabulary, both kinds, a missing draft: errors.
  spec.draft = testing::testdata("models/micro-qwen2-Q8_0.gguf");
  auto bad = run_bench(spec);
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message.find("do not share a vocabulary"), std::string::npos) << bad.error().message;
  spec.draft = testing::testdata("models/tiny-llama-Q4_0.gguf");
  spec.lookup = 4;
  EXPECT_FALSE(run_bench(spec).has_value());
  spec.lookup = 0;
  spec.draft = testing::temp_dir() + "/missing.gguf";
  EXPECT_FALSE(run_bench(spec).has_value());
}

// The CPU clocks count work the process and the calling thread did.
TEST(Clocks, CpuSecondsCountTheWorkDone) {
  const double p0 = process_cpu_seconds(), t0 = thread_cpu_seconds();
  volatile uint64_t x = 1;
  double t1 = t0;
  for (int i = 0; t1 <= t0 && i < 1000; ++i) {  // until the clock has ticked
    for (int j = 0; j < 1'000'000; ++j) x = x * 6364136223846793005ull + 1;
    t1 = thread_cpu_seconds();
  }
  EXPECT_GT(t1, t0);
  EXPECT_GE(process_cpu_seconds() - p0, t1 - t0);
}

TEST(Limits, AreMeasuredWhereTheKernelsHaveSimd) {
  const Limits l = measure_limits(1);
  EXPECT_GT(l.read_gbps, 0.0);
  if (!kernels::kernel_table("avx2")) GTEST_SKIP() << "no AVX2 kernel table on this CPU: no int8 peak to measure";
  EXPECT_GT(l.int8_gops, 0.0);
}

}  // namespace
}  // namespace codey::measure
