// The engine against the oracle: fixture models vs the reference logits and
// greedy tokens (through `codey eval` and the library), synthesized llama /
// qwen2 / gemma3 models vs a plain double-precision forward pass, batching of
// several sequences, and the errors of load and decode.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "codey/model.h"
#include "model/synthetic.h"
#include "testing/gguf_split.h"
#include "testing/testing.h"

namespace codey {
namespace {

namespace fs = std::filesystem;
using testing::argmax;
using testing::kl_divergence;

constexpr int kFirstCompared = 48;  // the reference holds positions 48..63
constexpr int kCompared = 16;

// Fixtures by name: "tiny-llama-f16" (models/, reference/) or
// "next/tiny-qwen3-f16" (next/models/, next/reference/: the architectures
// added later, qwen3 and qwen3moe).
std::vector<std::string> fixture_models() {
  std::vector<std::string> names;
  for (const std::string root : {"", "next/"}) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(testing::testdata(root + "models"), ec))
      if (e.path().extension() == ".gguf") names.push_back(root + e.path().stem().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string fixture_root(const std::string& name) { return name.substr(0, name.rfind('/') + 1); }
std::string fixture_base(const std::string& name) { return name.substr(name.rfind('/') + 1); }

std::string family(const std::string& model) {  // "tiny-llama-Q4_K_M" -> "tiny-llama"
  const auto dash = model.rfind('-');
  return model.substr(0, dash);
}

std::string fixture_model(const std::string& name) {
  return testing::testdata(fixture_root(name) + "models/" + fixture_base(name) + ".gguf");
}
// reference/<model><ext> (".logits.f32", ".greedy").
std::string fixture_reference(const std::string& name, const std::string& ext) {
  return testing::testdata(fixture_root(name) + "reference/" + fixture_base(name) + ext);
}
std::string fixture_tokens(const std::string& name) {
  return testing::testdata(fixture_root(name) + "reference/" + family(fixture_base(name)) + ".tokens");
}

std::vector<int32_t> read_ids(const std::string& path) {
  std::ifstream in(path);
  std::vector<int32_t> ids;
  int32_t v;
  while (in >> v) ids.push_back(v);
  return ids;
}

std::vector<float> read_f32(const std::string& path) {
  auto bytes = testing::read_file_bytes(path);
  std::vector<float> out(bytes.size() / 4);
  std::memcpy(out.data(), bytes.data(), out.size() * 4);
  return out;
}

struct Agreement {
  double mean_kl = 0, max_kl = 0;
  int same_argmax = 0;
};

// `ours` holds rows for positions 0..63 (row stride n_vocab), `ref` rows 48..63.
Agreement compare_to_reference(const float* ours, const std::vector<float>& ref, int64_t n_vocab) {
  Agreement a;
  for (int i = 0; i < kCompared; ++i) {
    const float* o = ours + (kFirstCompared + i) * n_vocab;
    const float* r = ref.data() + i * n_vocab;
    const double kl = kl_divergence(r, o, n_vocab);
    a.mean_kl += kl / kCompared;
    a.max_kl = std::max(a.max_kl, kl);
    a.same_argmax += argmax(r, n_vocab) == argmax(o, n_vocab);
  }
  return a;
}

// --- fixtures through `codey eval` -------------------------------------------

struct EvalCase {
  std::string model;
  int threads;
  int batch;
  bool repack = true;  // false: the file's plain layout (CODEY_REPACK=0)
};

class FixtureEvalTest : public ::testing::TestWithParam<EvalCase> {};

TEST_P(FixtureEvalTest, LogitsMatchReference) {
  const EvalCase& c = GetParam();
  const std::string model = fixture_model(c.model);
  const std::string tokens = fixture_tokens(c.model);
  const std::string out = testing::temp_dir() + "/logits.f32";
  if (!c.repack) setenv("CODEY_REPACK", "0", 1);
  auto r = testing::run_codey({"eval", "--model", model, "--tokens", tokens, "--logits", out, "--threads",
                               std::to_string(c.threads), "--batch", std::to_string(c.batch)});
  unsetenv("CODEY_REPACK");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto ref = read_f32(fixture_reference(c.model, ".logits.f32"));
  const int64_t n_vocab = static_cast<int64_t>(ref.size()) / kCompared;
  const auto ours = read_f32(out);
  ASSERT_EQ(ours.size(), static_cast<size_t>(64 * n_vocab)) << "expected [64][n_vocab] f32";
  const Agreement a = compare_to_reference(ours.data(), ref, n_vocab);
  std::printf("%-26s t%d b%-2d %s mean KL %.6f max KL %.6f argmax %d/16\n", c.model.c_str(), c.threads, c.batch,
              c.repack ? "repacked" : "plain   ", a.mean_kl, a.max_kl, a.same_argmax);
  EXPECT_LT(a.mean_kl, 0.01);
  EXPECT_GE(a.same_argmax, 14);
}

std::vector<EvalCase> eval_cases() {
  std::vector<EvalCase> cases;
  // The later architectures' files also in the plain layout (the older ones:
  // RepackedAndPlainLayoutsAgree).
  for (const auto& m : fixture_models())
    for (bool repack : {true, false})
      if (repack || !fixture_root(m).empty())
        for (int t : {1, 2})
          for (int b : {1, 64}) cases.push_back({m, t, b, repack});
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, FixtureEvalTest, ::testing::ValuesIn(eval_cases()),
                         [](const ::testing::TestParamInfo<EvalCase>& info) {
                           std::string n = info.param.model + "_t" + std::to_string(info.param.threads) + "_b" +
                                           std::to_string(info.param.batch) + (info.param.repack ? "" : "_plain");
                           for (char& ch : n)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });

// --- fixtures through the library: greedy continuation ------------------------

class FixtureModelTest : public ::testing::TestWithParam<std::string> {};

// The 64-token prompt in one batch, 2 threads.
ContextParams fixture_context() {
  ContextParams cp;
  cp.n_ctx = 128;
  cp.n_batch = 64;
  cp.n_threads = 2;
  return cp;
}

std::string fixture_test_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string n = info.param;
  for (char& ch : n)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return n;
}

TEST_P(FixtureModelTest, GreedyContinuationMatchesReference) {
  const std::string& name = GetParam();
  auto model = Model::load(fixture_model(name));
  ASSERT_TRUE(model.has_value()) << model.error().message;
  const auto prompt = read_ids(fixture_tokens(name));
  const auto expected = read_ids(fixture_reference(name, ".greedy"));
  ASSERT_EQ(prompt.size(), 64u);
  ASSERT_EQ(expected.size(), 32u);
  auto ctx = Context::create(**model, fixture_context());
  ASSERT_TRUE(ctx.has_value()) << ctx.error().message;
  Batch batch;
  for (size_t i = 0; i < prompt.size(); ++i) batch.add(prompt[i], 0, i + 1 == prompt.size());
  auto logits = (*ctx)->decode(batch);
  ASSERT_TRUE(logits.has_value()) << logits.error().message;
  const int64_t n_vocab = (*model)->hparams().n_vocab;
  ASSERT_EQ(logits->size(), static_cast<size_t>(n_vocab));
  std::vector<int32_t> got;
  for (int i = 0; i < 32; ++i) {
    const auto tok = static_cast<int32_t>(argmax(logits->data(), n_vocab));
    got.push_back(tok);
    batch.clear();
    batch.add(tok, 0, true);
    logits = (*ctx)->decode(batch);
    ASSERT_TRUE(logits.has_value()) << logits.error().message;
  }
  int same_prefix = 0;
  while (same_prefix < 32 && got[same_prefix] == expected[same_prefix]) ++same_prefix;
  std::printf("%-20s greedy: first %d of 32 tokens match\n", name.c_str(), same_prefix);
  EXPECT_GE(same_prefix, 8);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, FixtureModelTest, ::testing::ValuesIn(fixture_models()),
                         fixture_test_name);

// The goldens on the scalar reference kernels too, in this process: the kernel
// table is the model's (ModelLoadOptions::kernels), not only the process's,
// so ref itself is held to the reference implementation's logits while the
// SIMD tables are held to ref (tests/kernels) and to the goldens (above).
class FixtureRefKernelsTest : public ::testing::TestWithParam<std::string> {};

TEST_P(FixtureRefKernelsTest, LogitsMatchReference) {
  const std::string& name = GetParam();
  ModelLoadOptions o;
  o.kernels = kernels::kernel_table("ref");
  ASSERT_NE(o.kernels, nullptr);
  auto model = Model::load(fixture_model(name), o);
  ASSERT_TRUE(model.has_value()) << model.error().message;
  EXPECT_EQ(std::string_view((*model)->kernel_table().name), "ref");
  const auto prompt = read_ids(fixture_tokens(name));
  ASSERT_EQ(prompt.size(), 64u);
  auto ctx = Context::create(**model, fixture_context());
  ASSERT_TRUE(ctx.has_value()) << ctx.error().message;
  Batch batch;  // logits of the compared positions only (ref's output matmul is slow)
  for (size_t i = 0; i < prompt.size(); ++i) batch.add(prompt[i], 0, static_cast<int>(i) >= kFirstCompared);
  auto logits = (*ctx)->decode(batch);
  ASSERT_TRUE(logits.has_value()) << logits.error().message;
  const int64_t n_vocab = (*model)->hparams().n_vocab;
  ASSERT_EQ(logits->size(), static_cast<size_t>(kCompared * n_vocab));
  std::vector<float> ours(static_cast<size_t>(64 * n_vocab));
  std::copy(logits->begin(), logits->end(), ours.begin() + kFirstCompared * n_vocab);
  const Agreement a = compare_to_reference(ours.data(), read_f32(fixture_reference(name, ".logits.f32")), n_vocab);
  std::printf("%-26s ref kernels: mean KL %.6f max KL %.6f argmax %d/16\n", name.c_str(), a.mean_kl, a.max_kl,
              a.same_argmax);
  EXPECT_LT(a.mean_kl, 0.01);
  EXPECT_GE(a.same_argmax, 14);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, FixtureRefKernelsTest, ::testing::ValuesIn(fixture_models()),
                         fixture_test_name);

TEST(ModelTest, FixturesArePresent) {
  const auto names = fixture_models();
  EXPECT_GE(std::count_if(names.begin(), names.end(), [](const std::string& n) { return fixture_root(n).empty(); }), 9);
  EXPECT_GE(std::count_if(names.begin(), names.end(), [](const std::string& n) { return !fixture_root(n).empty(); }), 4);
}

// Hyper-parameters come from the metadata.
TEST(ModelTest, FixtureHyperParameters) {
  auto llama = Model::load(testing::testdata("models/tiny-llama-f16.gguf"));
  ASSERT_TRUE(llama.has_value()) << llama.error().message;
  const HParams& hp = (*llama)->hparams();
  EXPECT_EQ(hp.arch, "llama");
  EXPECT_EQ(hp.n_layer, 4);
  EXPECT_EQ(hp.n_embd, 256);
  EXPECT_EQ(hp.n_head, 8);
  EXPECT_EQ(hp.n_head_kv, 4);
  EXPECT_EQ(hp.head_dim_k, 32);
  EXPECT_EQ(hp.n_ff, 768);
  EXPECT_EQ(hp.n_vocab, 32256);
  EXPECT_FALSE(hp.rope_neox);
  EXPECT_TRUE((*llama)->weights().tied_output);
  // One list of matrices: 7 per layer, then the (tied) output.
  const auto mats = (*llama)->weights().matrices();
  ASSERT_EQ(mats.size(), 4u * 7 + 1);
  EXPECT_EQ(mats.back().layer, -1);
  EXPECT_EQ(mats.back().matrix->rows, 32256);
  EXPECT_EQ(mats[0].matrix, &(*llama)->weights().layers[0].wq);
  // Dense: every parameter is active; a token reads every matrix.
  EXPECT_EQ((*llama)->n_active_params(), (*llama)->n_params());
  uint64_t bytes = 256 * 2;  // one f16 embedding row
  for (const auto& m : mats) bytes += m.matrix->row_bytes * static_cast<uint64_t>(m.matrix->rows);
  EXPECT_EQ((*llama)->active_weight_bytes(), bytes);
  auto qwen = Model::load(testing::testdata("models/micro-qwen2-Q8_0.gguf"));
  ASSERT_TRUE(qwen.has_value()) << qwen.error().message;
  EXPECT_TRUE((*qwen)->hparams().rope_neox);
  EXPECT_FLOAT_EQ((*qwen)->hparams().rope_freq_base, 1000000.0f);
  EXPECT_NE((*qwen)->weights().layers[0].bq, nullptr);
}

// --- several sequences in one batch -------------------------------------------

std::vector<float> last_logits_alone(const Model& model, const std::vector<int32_t>& toks) {
  ContextParams cp;
  cp.n_ctx = 64;
  cp.n_batch = 64;
  cp.n_threads = 2;
  auto ctx = Context::create(model, cp);
  EXPECT_TRUE(ctx.has_value());
  Batch b;
  for (size_t i = 0; i < toks.size(); ++i) b.add(toks[i], 0, i + 1 == toks.size());
  auto l = (*ctx)->decode(b);
  EXPECT_TRUE(l.has_value());
  return {l->begin(), l->end()};
}

TEST(ModelTest, SequencesInOneBatchAreIndependent) {
  auto model = Model::load(testing::testdata("models/tiny-llama-f16.gguf"));
  ASSERT_TRUE(model.has_value());
  const auto ids = read_ids(testing::testdata("reference/tiny-llama.tokens"));
  const std::vector<int32_t> a(ids.begin(), ids.begin() + 20), b(ids.begin() + 20, ids.begin() + 50);
  const int64_t n_vocab = (*model)->hparams().n_vocab;

  ContextParams cp;
  cp.n_ctx = 40;
  cp.n_seq = 3;
  cp.n_batch = 16;
  cp.n_threads = 2;
  auto ctx = Context::create(**model, cp);
  ASSERT_TRUE(ctx.has_value());
  // Interleave the two sequences, in uneven chunks, in slots 2 and 0.
  size_t ia = 0, ib = 0;
  std::vector<float> last_a, last_b;
  Batch batch;
  while (ia < a.size() || ib < b.size()) {
    batch.clear();
    for (int k = 0; k < 5 && ia < a.size(); ++k, ++ia) batch.add(a[ia], 2, ia + 1 == a.size());
    for (int k = 0; k < 9 && ib < b.size(); ++k, ++ib) batch.add(b[ib], 0, ib + 1 == b.size());
    auto l = (*ctx)->decode(batch);
    ASSERT_TRUE(l.has_value()) << l.error().message;
    size_t out = 0;
    for (size_t i = 0; i < batch.size(); ++i) {
      if (!batch.want_logits[i]) continue;
      std::vector<float> row(l->begin() + static_cast<ptrdiff_t>(out * n_vocab),
                             l->begin() + static_cast<ptrdiff_t>((out + 1) * n_vocab));
      (batch.seq[i] == 2 ? last_a : last_b) = row;
      ++out;
    }
  }
  EXPECT_EQ((*ctx)->kv().seq_length(2), 20);
  EXPECT_EQ((*ctx)->kv().seq_length(0), 30);
  EXPECT_EQ((*ctx)->kv().seq_length(1), 0);
  const auto alone_a = last_logits_alone(**model, a), alone_b = last_logits_alone(**model, b);
  ASSERT_EQ(last_a.size(), alone_a.size());
  ASSERT_EQ(last_b.size(), alone_b.size());
  EXPECT_LT(kl_divergence(alone_a.data(), last_a.data(), n_vocab), 1e-5);
  EXPECT_LT(kl_divergence(alone_b.data(), last_b.data(), n_vocab), 1e-5);
  EXPECT_EQ(argmax(alone_a.data(), n_vocab), argmax(last_a.data(), n_vocab));
  EXPECT_EQ(argmax(alone_b.data(), n_vocab), argmax(last_b.data(), n_vocab));

  // Clearing a slot and replaying gives the same result again.
  (*ctx)->kv().clear(2);
  batch.clear();
  for (size_t i = 0; i < a.size(); ++i) batch.add(a[i], 2, i + 1 == a.size());
  // 20 tokens exceed the batch size of 16: refused, nothing changed.
  auto too_big = (*ctx)->decode(batch);
  ASSERT_FALSE(too_big.has_value());
  EXPECT_EQ((*ctx)->kv().seq_length(2), 0);
}

// The runtime charges a model estimate_memory()'s KV cache and scratch before
// it loads the model: they must cover what Context::create allocates (the KV
// cache exactly) for dense models and mixtures, one or several sequences,
// one token or a large batch - and stay an estimate, not a blanket.
TEST(ModelTest, MemoryEstimateCoversTheContext) {
  // A mixture with qwen3-coder-30b-a3b's proportions per token (head dim 128,
  // q wider than n_embd, 8 routed experts): its scratch is dominated by the
  // grouped expert rows, which a dense model does not have.
  testing::SynthSpec moe;
  moe.arch = "qwen3moe";
  moe.n_embd = 256;
  moe.n_layer = 1;
  moe.n_head = 8;
  moe.n_head_kv = 2;
  moe.head_dim = 128;
  moe.n_ff = 512;
  moe.n_expert = 16;
  moe.n_expert_used = 8;
  moe.n_ff_exp = 256;
  moe.n_vocab = 300;
  moe.wtype = TensorType::kQ8_0;
  const std::string moe_path = testing::temp_dir() + "/moe_memory.gguf";
  testing::write_synthetic_model(moe_path, moe);
  for (const std::string& path : {moe_path, fixture_model("tiny-llama-Q4_K_M"), fixture_model("micro-qwen2-Q8_0"),
                                  fixture_model("next/tiny-qwen3-Q4_K_M"), fixture_model("next/tiny-qwen3moe-Q4_K_M")}) {
    SCOPED_TRACE(path);
    auto file = GgufFile::open(path);
    ASSERT_TRUE(file.has_value()) << file.error().message;
    auto s = summarize(*file);
    ASSERT_TRUE(s.has_value()) << s.error().message;
    auto model = Model::load(path);
    ASSERT_TRUE(model.has_value()) << model.error().message;
    for (int n_seq : {1, 3})
      for (int64_t n_batch : {1, 64, 1024}) {
        ContextParams cp;
        cp.n_ctx = 1024;
        cp.n_seq = n_seq;
        cp.n_batch = n_batch;
        cp.n_threads = 2;
        auto ctx = Context::create(**model, cp);
        ASSERT_TRUE(ctx.has_value()) << ctx.error().message;
        const MemoryEstimate est = estimate_memory(*s, 1024, TensorType::kF16, n_seq, n_batch);
        const uint64_t kv = (*ctx)->kv().bytes();
        const uint64_t scratch = (*ctx)->memory_bytes() - kv;
        std::printf("%-28s seq %d batch %4lld: scratch %9llu estimated %9llu\n", fs::path(path).filename().c_str(), n_seq,
                    static_cast<long long>(n_batch), static_cast<unsigned long long>(scratch),
                    static_cast<unsigned long long>(est.scratch));
        EXPECT_EQ(kv, est.kv_cache) << "seq " << n_seq << " batch " << n_batch;
        EXPECT_LE(scratch, est.scratch) << "seq " << n_seq << " batch " << n_batch;
        // Beyond its fixed 16 MiB, the estimate stays within 1.5x of the buffers.
        EXPECT_LE(est.scratch - (16u << 20), scratch + scratch / 2) << "seq " << n_seq << " batch " << n_batch;
      }
  }
}

// The repacked layout (load-time row interleaving) and the plain one (rows
// packed on the fly) compute the same thing; without repacking nothing is
// allocated for the weights.
TEST(ModelTest, RepackedAndPlainLayoutsAgree) {
  for (const std::string name :
       {"tiny-llama-Q4_K_M", "micro-qwen2-Q8_0", "tiny-llama-Q5_K_M", "next/tiny-qwen3-Q4_K_M", "next/tiny-qwen3moe-Q4_K_M"}) {
    SCOPED_TRACE(name);
    const std::string path = fixture_model(name);
    ModelLoadOptions plain_opts;
    plain_opts.repack = false;
    auto packed = Model::load(path), plain = Model::load(path, plain_opts);
    ASSERT_TRUE(packed.has_value()) << packed.error().message;
    ASSERT_TRUE(plain.has_value()) << plain.error().message;
    EXPECT_FALSE((*plain)->repacked());
    EXPECT_EQ((*plain)->repacked_bytes(), 0u);
    if (!(*packed)->repacked()) GTEST_SKIP() << "this CPU's kernels have no repacked layout";
    const auto ids = read_ids(fixture_tokens(name));
    const std::vector<int32_t> toks(ids.begin(), ids.begin() + 24);
    const auto a = last_logits_alone(**packed, toks), b = last_logits_alone(**plain, toks);
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 1e-4f * (1.0f + std::fabs(a[i]))) << "logit " << i;
  }
}

// A model cut by gguf-split loads from its parts (each mapped, tensors read
// in place from their own file) and computes exactly what the one-file model
// does, repacked or not; a missing part is named.
TEST(ModelTest, SplitModelMatchesTheWholeFile) {
  const std::string name = "tiny-llama-Q4_K_M";
  const std::string path = testing::testdata("models/" + name + ".gguf");
  const std::string dir = testing::temp_dir();
  const auto parts = testing::split_gguf(path, dir + "/" + name, {.max_tensors = 10});
  ASSERT_GE(parts.size(), 3u);
  const auto ids = read_ids(testing::testdata("reference/" + family(name) + ".tokens"));
  const std::vector<int32_t> toks(ids.begin(), ids.begin() + 24);
  for (bool repack : {true, false}) {
    SCOPED_TRACE(repack ? "repacked" : "plain");
    ModelLoadOptions o;
    o.repack = repack;
    auto whole = Model::load(path, o);
    auto split = Model::load(parts[1], o);  // any part names the model
    ASSERT_TRUE(whole.has_value()) << whole.error().message;
    ASSERT_TRUE(split.has_value()) << split.error().message;
    EXPECT_EQ((*split)->gguf().n_parts(), parts.size());
    EXPECT_EQ((*split)->weight_bytes(), (*whole)->weight_bytes());
    EXPECT_EQ((*split)->n_params(), (*whole)->n_params());
    const auto a = last_logits_alone(**whole, toks), b = last_logits_alone(**split, toks);
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], b[i]) << "logit " << i;
    // Resident pages are counted over every part's mapping.
    EXPECT_GT((*split)->mapped_resident_bytes(), 0u);
  }
  std::filesystem::remove(parts.back());
  auto missing = Model::load(parts[0]);
  ASSERT_FALSE(missing.has_value());
  EXPECT_NE(missing.error().message.find("is missing"), std::string::npos) << missing.error().message;
  // One part parsed from bytes alone is refused, not run with missing tensors.
  const auto bytes = testing::read_file_bytes(parts[0]);
  auto one = GgufFile::parse(bytes, parts[0]);
  ASSERT_TRUE(one.has_value());
  auto refused = Model::from_gguf(std::move(*one));
  ASSERT_FALSE(refused.has_value());
  EXPECT_NE(refused.error().message.find("one part of a model split in"), std::string::npos)
      << refused.error().message;
}

// --- errors -------------------------------------------------------------------

TEST(ModelTest, ContextOverflowIsAClearErrorAndChangesNothing) {
  auto model = Model::load(testing::testdata("models/micro-qwen2-f16.gguf"));
  ASSERT_TRUE(model.has_value());
  ContextParams cp;
  cp.n_ctx = 16;
  cp.n_batch = 16;
  cp.n_threads = 1;
  auto ctx = Context::create(**model, cp);
  ASSERT_TRUE(ctx.has_value());
  Batch b;
  for (int i = 0; i < 10; ++i) b.add(100 + i, 0, false);
  ASSERT_TRUE((*ctx)->decode(b).has_value());
  b.clear();
  for (int i = 0; i < 7; ++i) b.add(200 + i, 0, true);
  auto r = (*ctx)->decode(b);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kResourceExhausted);
  EXPECT_NE(r.error().message.find("context full"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("17"), std::string::npos) << r.error().message;
  EXPECT_EQ((*ctx)->kv().seq_length(0), 10);
  b.want_logits.pop_back();
  b.tokens.pop_back();
  b.seq.pop_back();
  b.want_logits.back() = 1;
  auto ok = (*ctx)->decode(b);
  ASSERT_TRUE(ok.has_value()) << ok.error().message;
  EXPECT_EQ((*ctx)->kv().seq_length(0), 16);

  Batch bad;
  bad.add(static_cast<int32_t>((*model)->hparams().n_vocab), 0, true);
  (*ctx)->kv().clear(0);
  auto r2 = (*ctx)->decode(bad);
  ASSERT_FALSE(r2.has_value());
  EXPECT_NE(r2.error().message.find("out of range"), std::string::npos);
  bad.clear();
  bad.add(1, 1, true);
  EXPECT_FALSE((*ctx)->decode(bad).has_value());
  EXPECT_FALSE((*ctx)->decode(Batch{}).has_value());
}

TEST(ModelTest, UnknownArchitectureIsRefused) {
  const std::string path = testing::temp_dir() + "/mamba.gguf";
  GgufWriter w;
  w.set("general.architecture", GgufValue::make_string("mamba"));
  ASSERT_TRUE(w.begin(path).has_value());
  ASSERT_TRUE(w.finish().has_value());
  auto m = Model::load(path);
  ASSERT_FALSE(m.has_value());
  EXPECT_EQ(m.error().code, ErrorCode::kUnsupported);
  EXPECT_NE(m.error().message.find("architecture 'mamba' is not supported"), std::string::npos) << m.error().message;
}

TEST(ModelTest, UnsupportedTensorTypeIsNamed) {
  testing::SynthSpec s;
  s.n_ff = 256;
  s.override_tensor = "blk.1.ffn_down.weight";
  s.override_type = TensorType::kIQ2_XXS;
  const std::string path = testing::temp_dir() + "/iq2.gguf";
  testing::write_synthetic_model(path, s);
  auto m = Model::load(path);
  ASSERT_FALSE(m.has_value());
  EXPECT_EQ(m.error().code, ErrorCode::kUnsupported);
  EXPECT_NE(m.error().message.find("tensor blk.1.ffn_down.weight has type iq2_xxs, which codey does not support yet"),
            std::string::npos)
      << m.error().message;
}

TEST(ModelTest, UnknownRopeScalingIsRefused) {
  testing::SynthSpec s;
  s.rope_scaling_type = "longrope";
  const std::string path = testing::temp_dir() + "/longrope.gguf";
  testing::write_synthetic_model(path, s);
  auto m = Model::load(path);
  ASSERT_FALSE(m.has_value());
  EXPECT_NE(m.error().message.find("rope scaling type 'longrope' is not supported"), std::string::npos)
      << m.error().message;
  s.rope_scaling_type = "yarn";
  testing::write_synthetic_model(path, s);
  auto yarn = Model::load(path);
  ASSERT_TRUE(yarn.has_value()) << yarn.error().message;
  EXPECT_EQ((*yarn)->hparams().rope_scaling, RopeScaling::kYarn);
  EXPECT_FLOAT_EQ((*yarn)->hparams().rope_freq_scale, 0.25f);
}

TEST(ModelTest, MissingTensorAndWrongShapeAreNamed) {
  testing::SynthSpec s;
  s.override_tensor = "blk.0.attn_q.weight";
  s.override_type = TensorType::kF32;
  const std::string path = testing::temp_dir() + "/ok.gguf";
  testing::write_synthetic_model(path, s);
  // Claim more heads than the tensors have: the shapes no longer match.
  auto file = GgufFile::open(path);
  ASSERT_TRUE(file.has_value());
  GgufWriter w;
  for (const auto& [k, v] : file->metadata()) w.set(std::string(k), v);
  w.set("llama.attention.head_count", GgufValue::make_u32(8));
  for (const auto& t : file->tensors()) w.add_tensor(std::string(t.name), t.type, std::span(t.ne.data(), t.n_dims));
  const std::string bad = testing::temp_dir() + "/bad.gguf";
  ASSERT_TRUE(w.begin(bad).has_value());
  for (const auto& t : file->tensors()) ASSERT_TRUE(w.write_tensor_data(file->view(t).data).has_value());
  ASSERT_TRUE(w.finish().has_value());
  auto m = Model::load(bad);
  ASSERT_FALSE(m.has_value());
  EXPECT_NE(m.error().message.find("tensor blk.0.attn_q.weight has shape [64, 64], expected [64, 128]"),
            std::string::npos)
      << m.error().message;
}

// --- synthesized models vs the plain reference forward pass -------------------

struct SynthCase {
  std::string name;
  testing::SynthSpec spec;
  int n_tokens;
  int batch;
  double max_mean_kl;
};

class SynthTest : public ::testing::TestWithParam<SynthCase> {};

std::vector<std::vector<float>> run_codey(const std::string& path, const std::vector<int32_t>& toks, int batch,
                                          int threads, TensorType kv_type = TensorType::kF16) {
  auto model = Model::load(path);
  EXPECT_TRUE(model.has_value()) << model.error().message;
  ContextParams cp;
  cp.n_ctx = static_cast<int64_t>(toks.size());
  cp.n_batch = batch;
  cp.n_threads = threads;
  cp.kv_type = kv_type;
  auto ctx = Context::create(**model, cp);
  EXPECT_TRUE(ctx.has_value()) << ctx.error().message;
  const int64_t n_vocab = (*model)->hparams().n_vocab;
  std::vector<std::vector<float>> out;
  Batch b;
  for (size_t i = 0; i < toks.size(); i += static_cast<size_t>(batch)) {
    b.clear();
    for (size_t j = i; j < std::min(toks.size(), i + static_cast<size_t>(batch)); ++j) b.add(toks[j], 0, true);
    auto l = (*ctx)->decode(b);
    EXPECT_TRUE(l.has_value()) << l.error().message;
    for (size_t r = 0; r < b.size(); ++r)
      out.emplace_back(l->begin() + static_cast<ptrdiff_t>(r * n_vocab), l->begin() + static_cast<ptrdiff_t>((r + 1) * n_vocab));
  }
  return out;
}

Agreement compare_all(const std::vector<std::vector<float>>& ref, const std::vector<std::vector<float>>& ours) {
  Agreement a;
  for (size_t t = 0; t < ref.size(); ++t) {
    const double kl = kl_divergence(ref[t].data(), ours[t].data(), static_cast<int64_t>(ref[t].size()));
    a.mean_kl += kl / static_cast<double>(ref.size());
    a.max_kl = std::max(a.max_kl, kl);
    a.same_argmax += argmax(ref[t].data(), static_cast<int64_t>(ref[t].size())) ==
                     argmax(ours[t].data(), static_cast<int64_t>(ours[t].size()));
  }
  return a;
}

std::vector<int32_t> random_tokens(int n, int64_t n_vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> d(0, static_cast<int32_t>(n_vocab - 1));
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& x : t) x = d(rng);
  return t;
}

TEST_P(SynthTest, MatchesPlainReferenceForward) {
  const SynthCase& c = GetParam();
  const std::string path = testing::temp_dir() + "/" + c.name + ".gguf";
  testing::write_synthetic_model(path, c.spec);
  const auto toks = random_tokens(c.n_tokens, c.spec.n_vocab, c.spec.seed + 7);
  const auto ref = testing::reference_forward(path, c.spec, toks);
  for (int threads : {1, 2}) {
    const auto ours = run_codey(path, toks, c.batch, threads);
    ASSERT_EQ(ours.size(), ref.size());
    const Agreement a = compare_all(ref, ours);
    std::printf("%-16s t%d: mean KL %.2e max KL %.2e argmax %d/%zu\n", c.name.c_str(), threads, a.mean_kl, a.max_kl,
                a.same_argmax, ref.size());
    EXPECT_LT(a.mean_kl, c.max_mean_kl);
    EXPECT_GE(a.same_argmax, static_cast<int>(ref.size() * 9 / 10));
  }
}

std::vector<SynthCase> synth_cases() {
  std::vector<SynthCase> cases;
  {
    // gemma3: 7 layers so layer 5 is global and 6 local again; head dim 64
    // != n_embd / n_head; GQA 2; odd n_ff; sequence 5x the window; linear
    // rope scaling that must apply to global layers only.
    testing::SynthSpec s;
    s.arch = "gemma3";
    s.n_embd = 128;
    s.n_layer = 7;
    s.n_head = 4;
    s.n_head_kv = 2;
    s.head_dim = 64;
    s.n_ff = 200;
    s.n_vocab = 300;
    s.rope_base = 1000000.0f;
    s.rope_linear_factor = 8.0f;
    s.sliding_window = 8;
    s.seed = 3;
    cases.push_back({"gemma3_f32", s, 40, 16, 1e-4});
    s.wtype = TensorType::kQ8_0;
    s.n_ff = 224;
    cases.push_back({"gemma3_q8_0", s, 40, 7, 0.01});
  }
  {
    // llama: GQA 3, head dim 16, odd n_ff, untied output, 300 tokens in
    // batches that do not divide it.
    testing::SynthSpec s;
    s.arch = "llama";
    s.n_embd = 96;
    s.n_layer = 2;
    s.n_head = 6;
    s.n_head_kv = 2;
    s.head_dim = 16;
    s.n_ff = 200;
    s.n_vocab = 500;
    s.tied = false;
    s.seed = 5;
    cases.push_back({"llama_f32", s, 300, 64, 1e-4});
    s.wtype = TensorType::kF16;
    cases.push_back({"llama_f16", s, 120, 1, 1e-3});
  }
  {
    // qwen2: biases, one KV head for three query heads, head dim 32 set by
    // key_length (n_embd / n_head is not an integer), partial rope (16 of 32).
    testing::SynthSpec s;
    s.arch = "qwen2";
    s.n_embd = 64;
    s.n_layer = 3;
    s.n_head = 3;
    s.n_head_kv = 1;
    s.head_dim = 32;
    s.n_rot = 16;
    s.n_ff = 160;
    s.n_vocab = 400;
    s.qkv_bias = true;
    s.rope_base = 1000000.0f;
    s.seed = 9;
    cases.push_back({"qwen2_f32", s, 100, 33, 1e-4});
    s.wtype = TensorType::kQ4_0;
    cases.push_back({"qwen2_q4_0", s, 100, 100, 0.01});
  }
  {
    // qwen3: head dim 128 from key_length with n_embd 64 (the q projection
    // widens 64 -> 512), per-head q/k norms before neox rope, no biases, GQA 2.
    testing::SynthSpec s;
    s.arch = "qwen3";
    s.n_embd = 64;
    s.n_layer = 2;
    s.n_head = 4;
    s.n_head_kv = 2;
    s.head_dim = 128;
    s.n_ff = 160;
    s.n_vocab = 400;
    s.rope_base = 1000000.0f;
    s.seed = 13;
    cases.push_back({"qwen3_f32", s, 80, 32, 1e-4});
    s.wtype = TensorType::kQ8_0;
    cases.push_back({"qwen3_q8_0", s, 80, 80, 0.01});
  }
  {
    // qwen3moe: qwen3 attention, 8 experts of n_ff 96, 3 used per token; a
    // batch of 16 (grouped rows per expert) and one token at a time
    // (generation: one row per routed expert).
    testing::SynthSpec s;
    s.arch = "qwen3moe";
    s.n_embd = 64;
    s.n_layer = 2;
    s.n_head = 4;
    s.n_head_kv = 2;
    s.head_dim = 32;
    s.n_ff = 160;
    s.n_expert = 8;
    s.n_expert_used = 3;
    s.n_ff_exp = 96;
    s.n_vocab = 400;
    s.rope_base = 1000000.0f;
    s.seed = 21;
    cases.push_back({"qwen3moe_f32", s, 80, 16, 1e-4});
    s.wtype = TensorType::kQ8_0;
    cases.push_back({"qwen3moe_q8_0", s, 48, 1, 0.01});
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Synthetic, SynthTest, ::testing::ValuesIn(synth_cases()),
                         [](const ::testing::TestParamInfo<SynthCase>& info) { return info.param.name; });

// The gemma3 comparison can fail: a reference without the sliding window or
// with the other rope style is far from codey's output.
TEST(SynthGemma3, ComparisonIsSensitiveToWindowAndRope) {
  testing::SynthSpec s = synth_cases()[0].spec;
  const std::string path = testing::temp_dir() + "/gemma3_sens.gguf";
  testing::write_synthetic_model(path, s);
  const auto toks = random_tokens(40, s.n_vocab, 11);
  const auto ours = run_codey(path, toks, 40, 2);
  testing::ReferenceOptions no_window;
  no_window.disable_sliding_window = true;
  const Agreement a = compare_all(testing::reference_forward(path, s, toks, no_window), ours);
  testing::ReferenceOptions other_rope;
  other_rope.swap_rope_style = true;
  const Agreement b = compare_all(testing::reference_forward(path, s, toks, other_rope), ours);
  std::printf("without window: mean KL %.3g; other rope style: mean KL %.3g\n", a.mean_kl, b.mean_kl);
  EXPECT_GT(a.mean_kl, 1e-2);
  EXPECT_GT(b.mean_kl, 1e-2);
}

// The qwen3 comparison can fail: a reference without the per-head q/k norm
// is far from codey's output.
TEST(SynthQwen3, ComparisonFailsWithoutQkNorm) {
  const auto cases = synth_cases();
  const auto it = std::find_if(cases.begin(), cases.end(), [](const SynthCase& c) { return c.name == "qwen3_f32"; });
  ASSERT_NE(it, cases.end());
  const testing::SynthSpec& s = it->spec;
  const std::string path = testing::temp_dir() + "/qwen3_sens.gguf";
  testing::write_synthetic_model(path, s);
  const auto toks = random_tokens(40, s.n_vocab, 17);
  const auto ours = run_codey(path, toks, 40, 2);
  const Agreement with = compare_all(testing::reference_forward(path, s, toks), ours);
  testing::ReferenceOptions no_norm;
  no_norm.skip_qk_norm = true;
  const Agreement without = compare_all(testing::reference_forward(path, s, toks, no_norm), ours);
  std::printf("qwen3: mean KL %.3g with the q/k norm, %.3g without\n", with.mean_kl, without.mean_kl);
  EXPECT_LT(with.mean_kl, 1e-4);
  EXPECT_GT(without.mean_kl, 1e-2);
}

// The qwen3moe comparison can fail: a reference that does not renormalise
// the chosen experts' weights to sum 1 is far from codey's output.
TEST(SynthQwen3Moe, ComparisonFailsWithoutTopKRenormalisation) {
  const auto cases = synth_cases();
  const auto it = std::find_if(cases.begin(), cases.end(), [](const SynthCase& c) { return c.name == "qwen3moe_f32"; });
  ASSERT_NE(it, cases.end());
  const testing::SynthSpec& s = it->spec;
  const std::string path = testing::temp_dir() + "/qwen3moe_sens.gguf";
  testing::write_synthetic_model(path, s);
  const auto toks = random_tokens(40, s.n_vocab, 19);
  const auto ours = run_codey(path, toks, 40, 2);
  const Agreement with = compare_all(testing::reference_forward(path, s, toks), ours);
  testing::ReferenceOptions raw;
  raw.skip_topk_renorm = true;
  const Agreement without = compare_all(testing::reference_forward(path, s, toks, raw), ours);
  testing::ReferenceOptions no_norm;
  no_norm.skip_qk_norm = true;
  const Agreement no_qk = compare_all(testing::reference_forward(path, s, toks, no_norm), ours);
  std::printf("qwen3moe: mean KL %.3g as published, %.3g without the top-k renormalisation, %.3g without the q/k norm\n",
              with.mean_kl, without.mean_kl, no_qk.mean_kl);
  EXPECT_LT(with.mean_kl, 1e-4);
  EXPECT_GT(without.mean_kl, 1e-2);
  EXPECT_GT(no_qk.mean_kl, 1e-2);
}

// The q8_0 KV cache stays close to f16.
TEST(SynthGemma3, Q8KvCacheIsClose) {
  testing::SynthSpec s = synth_cases()[0].spec;
  const std::string path = testing::temp_dir() + "/gemma3_kv.gguf";
  testing::write_synthetic_model(path, s);
  const auto toks = random_tokens(40, s.n_vocab, 13);
  const auto ref = testing::reference_forward(path, s, toks);
  const Agreement a = compare_all(ref, run_codey(path, toks, 40, 2, TensorType::kQ8_0));
  std::printf("q8_0 KV: mean KL %.2e argmax %d/40\n", a.mean_kl, a.same_argmax);
  EXPECT_LT(a.mean_kl, 0.01);
}

}  // namespace
}  // namespace codey
