// Speculative decoding (src/spec/): what n-gram lookup proposes, which draft
// models share a target's vocabulary, and that generation with drafts -
// lookup, a draft model close to the target, a mismatched one - gives the
// plain greedy output token for token (also deep in the cache, where
// attention splits its work, and with a repetition penalty) with the cache
// holding exactly what was taken.
#include <gtest/gtest.h>

#include <map>
#include <mutex>

#include "codey/convert.h"
#include "codey/spec.h"
#include "testing/testing.h"

namespace codey {
namespace {

std::vector<TokenId> propose_one(Drafter& d, int seq, const std::vector<TokenId>& history, int max) {
  Draft out;
  const DraftJob job{seq, history, max, nullptr, &out};
  auto st = d.propose(std::span<const DraftJob>(&job, 1));
  EXPECT_TRUE(st.has_value());
  EXPECT_TRUE(out.q.empty());
  return out.tokens;
}

using Toks = std::vector<TokenId>;

TEST(Lookup, ProposesWhatFollowedTheLatestOccurrenceOfTheLongestSuffix) {
  auto d = make_lookup_drafter(2);
  // "1 2 3 9 | 5 2 3 7 | 1 2 3": the suffix "1 2 3" last ended at 2 (then 9);
  // "2 3" alone would say 7 (its latest occurrence).
  EXPECT_EQ(propose_one(*d, 0, {1, 2, 3, 9, 5, 2, 3, 7, 1, 2, 3}, 3), (Toks{9, 5, 2}));
  // Only the 2-gram "2 3" matches: its latest occurrence is followed by 7.
  EXPECT_EQ(propose_one(*d, 1, {1, 2, 3, 9, 5, 2, 3, 7, 4, 2, 3}, 2), (Toks{7, 4}));
  // Nothing repeats: no draft; a 1-gram is below the default minimum.
  EXPECT_TRUE(propose_one(*d, 1, {1, 2, 3, 4, 5, 6, 7, 8, 2}, 4).empty());
  // The sequence grows token by token (incremental index).
  Toks h = {1, 2, 3, 9, 5, 2, 3, 7, 1, 2, 3};
  h.push_back(9);
  EXPECT_EQ(propose_one(*d, 0, h, 2), (Toks{5, 2}));
  // max_tokens 0 proposes nothing.
  EXPECT_TRUE(propose_one(*d, 0, h, 0).empty());
}

TEST(Lookup, ALoopDraftsAnyLengthAndAStartOverResets) {
  auto d = make_lookup_drafter(1);
  // Period 3: the proposal runs into itself.
  EXPECT_EQ(propose_one(*d, 0, {8, 4, 5, 6, 4, 5, 6, 4, 5}, 7), (Toks{6, 4, 5, 6, 4, 5, 6}));
  // A different history in the same slot (a new request): nothing stale.
  EXPECT_TRUE(propose_one(*d, 0, {1, 2, 3, 4}, 4).empty());
  EXPECT_EQ(propose_one(*d, 0, {1, 2, 3, 4, 1, 2}, 4), (Toks{3, 4, 1, 2}));
  // Longer n-grams win over shorter ones; ngram_min 1 allows single tokens.
  auto d1 = make_lookup_drafter(1, LookupParams{1, 3});
  EXPECT_EQ(propose_one(*d1, 0, {5, 6, 7, 6}, 2), (Toks{7, 6}));
  // Bad sequence ids are errors, not crashes.
  Draft out;
  const Toks hist = {1, 2};
  const DraftJob bad{3, hist, 2, nullptr, &out};
  EXPECT_FALSE(d->propose(std::span<const DraftJob>(&bad, 1)).has_value());
}

// ---- vocabularies ------------------------------------------------------------

VocabData byte_vocab(int n_pad) {
  VocabData v;
  v.model = "gpt2";
  v.pre = "qwen2";
  for (int b = 0; b < 256; ++b) {
    v.tokens.push_back(std::string(1, static_cast<char>('A' + b % 26)) + std::to_string(b));
    v.token_types.push_back(1);
  }
  for (const char* s : {"<|endoftext|>", "<|im_start|>", "<|im_end|>"}) {
    v.tokens.emplace_back(s);
    v.token_types.push_back(3);
  }
  for (int i = 0; i < n_pad; ++i) {
    v.tokens.push_back("[PAD" + std::to_string(v.tokens.size()) + "]");
    v.token_types.push_back(5);
  }
  v.bos = 256;
  v.eos = 258;
  v.eot = 258;
  return v;
}

Tokenizer make_tok(VocabData v) {
  auto t = Tokenizer::from_vocab(std::move(v));
  EXPECT_TRUE(t.has_value()) << t.error().message;
  return std::move(*t);
}

TEST(DraftVocabulary, SharedMeansSameTokensUpToPaddingAndSameSpecials) {
  const Tokenizer target = make_tok(byte_vocab(8));
  EXPECT_TRUE(check_draft_vocabulary(target, make_tok(byte_vocab(8))).has_value());
  // Only unused padding differs (Qwen2.5-Coder 0.5B vs 7B): shared, both ways.
  EXPECT_TRUE(check_draft_vocabulary(target, make_tok(byte_vocab(0))).has_value());
  EXPECT_TRUE(check_draft_vocabulary(make_tok(byte_vocab(0)), target).has_value());

  auto expect_refused = [&](VocabData draft, const std::string& what) {
    auto st = check_draft_vocabulary(target, make_tok(std::move(draft)));
    ASSERT_FALSE(st.has_value()) << what;
    EXPECT_NE(st.error().message.find(what), std::string::npos) << st.error().message;
  };
  VocabData v = byte_vocab(8);
  v.tokens[100] = "renamed";
  expect_refused(v, "token 100 is \"W100\" in the target but \"renamed\" in the draft");
  v = byte_vocab(8);
  v.token_types[257] = 4;  // control -> user-defined
  expect_refused(v, "token 257 (\"<|im_start|>\") is control in the target but user-defined in the draft");
  v = byte_vocab(8);
  v.token_types[262] = 1;  // a real token where the target pads
  v.tokens.resize(263);
  v.token_types.resize(263);
  expect_refused(v, "token 262 (\"[PAD262]\") is unused in the target but normal in the draft");
  v = byte_vocab(0);
  v.tokens.push_back("extra");
  v.token_types.push_back(1);
  v.tokens.push_back("more");
  v.token_types.push_back(1);
  auto st = check_draft_vocabulary(make_tok(byte_vocab(0)), make_tok(v));
  ASSERT_FALSE(st.has_value());
  EXPECT_NE(st.error().message.find("token 259 (\"extra\", normal) of the draft is missing from the target"),
            std::string::npos)
      << st.error().message;
  v = byte_vocab(8);
  v.eos = 257;
  expect_refused(v, "EOS is 258 in the target but 257 in the draft");
  v = byte_vocab(8);
  v.model = "llama";
  v.tokens[0] = "<unk>";
  v.scores.assign(v.tokens.size(), 0.0f);
  expect_refused(v, "the draft's tokenizer is 'llama', the target's 'gpt2'");
}

TEST(DraftVocabulary, FixtureFamilies) {
  auto load = [](const std::string& name) {
    auto f = GgufFile::open(testing::testdata("models/" + name + ".gguf"));
    EXPECT_TRUE(f.has_value());
    auto t = Tokenizer::from_gguf(*f);
    EXPECT_TRUE(t.has_value());
    return std::move(*t);
  };
  const Tokenizer llama8 = load("tiny-llama-Q8_0"), llama4 = load("tiny-llama-Q4_0"), qwen = load("micro-qwen2-Q8_0");
  EXPECT_TRUE(check_draft_vocabulary(llama8, llama4).has_value());
  auto st = check_draft_vocabulary(llama8, qwen);
  ASSERT_FALSE(st.has_value());
  EXPECT_NE(st.error().message.find("in the target but"), std::string::npos) << st.error().message;
}

// ---- generation --------------------------------------------------------------

std::unique_ptr<Model> load_model(const std::string& path) {
  auto m = Model::load(path);
  EXPECT_TRUE(m.has_value()) << (m ? "" : m.error().message);
  return m ? std::move(*m) : nullptr;
}

// tiny-llama's vocabulary with other random weights and its own output
// matrix: a draft that shares the vocabulary but not the model. (With tied
// embeddings two random models agree more often: both lean towards
// repeating the last token.)
std::string mismatched_draft() {
  static std::once_flag once;
  static std::string path;
  std::call_once(once, [] {
    SynthOptions o;
    o.shape.name = "tiny-other";
    o.shape.arch = "llama";
    o.shape.n_embd = 128;
    o.shape.n_layer = 2;
    o.shape.n_head = 4;
    o.shape.n_head_kv = 2;
    o.shape.n_ff = 256;
    o.shape.n_vocab = 32256;
    o.shape.n_ctx = 4096;
    o.shape.tied_embeddings = false;
    o.target = "Q8_0";
    o.vocab_path = testing::testdata("vocab/ggml-vocab-deepseek-coder.gguf");
    o.seed = 777;
    o.threads = 1;
    o.output = testing::temp_dir() + "/tiny-other.gguf";
    auto r = synth_model(o);
    if (r) path = o.output;
    else ADD_FAILURE() << r.error().message;
  });
  return path;
}

struct GenResult {
  std::vector<TokenId> tokens;
  SpecStats stats;
};

// Generates n tokens after `prompt` from tiny-llama-Q8_0 with the drafter
// `make` builds (none: plain); checks the cache after every pass.
GenResult generate(const std::vector<TokenId>& prompt, int n, const SamplerParams& sp, int max_draft,
                   const std::function<std::unique_ptr<Drafter>(Context&)>& make) {
  GenResult g;
  static auto target = load_model(testing::testdata("models/tiny-llama-Q8_0.gguf"));
  ContextParams cp;
  cp.n_ctx = static_cast<int64_t>(prompt.size()) + n + 16;
  cp.n_threads = 1;
  auto ctx = Context::create(*target, cp);
  EXPECT_TRUE(ctx.has_value());
  std::unique_ptr<Drafter> drafter = make ? make(**ctx) : nullptr;
  Sampler sampler(sp, static_cast<int32_t>((*ctx)->n_vocab()));
  SpecGenerator gen(**ctx, sampler, drafter.get(), max_draft);
  auto first = gen.start(prompt);
  EXPECT_TRUE(first.has_value());
  g.tokens.push_back(*first);
  while (static_cast<int>(g.tokens.size()) < n) {
    auto r = gen.step(n - static_cast<int>(g.tokens.size()));
    EXPECT_TRUE(r.has_value()) << r.error().message;
    if (!r) break;
    EXPECT_GE(r->size(), 1u);
    g.tokens.insert(g.tokens.end(), r->begin(), r->end());
    // The cache holds the prompt and every token taken but the newest.
    EXPECT_EQ((*ctx)->kv().seq_length(0), static_cast<int64_t>(gen.history().size()) - 1);
  }
  EXPECT_EQ(static_cast<int>(g.tokens.size()), n);
  g.stats = gen.stats();
  return g;
}

std::vector<TokenId> fixture_prompt() {
  std::vector<TokenId> ids;
  std::istringstream in(testing::read_file_text(testing::testdata("reference/tiny-llama.tokens")));
  TokenId t;
  while (in >> t) ids.push_back(t);
  return ids;
}

TEST(SpecGenerator, GreedyOutputIsThePlainOutputWithEveryDrafter) {
  const auto prompt = fixture_prompt();
  ASSERT_EQ(prompt.size(), 64u);
  const SamplerParams greedy = SamplerParams::greedy();
  const int n = 120;
  const GenResult plain = generate(prompt, n, greedy, 0, nullptr);
  EXPECT_EQ(plain.stats.drafted, 0);
  EXPECT_EQ(plain.stats.passes, n - 1);
  EXPECT_EQ(plain.stats.generated, n - 1);

  const GenResult lookup = generate(prompt, n, greedy, 8, [](Context&) { return make_lookup_drafter(1); });
  EXPECT_EQ(lookup.tokens, plain.tokens);
  // Random weights loop: the repeating continuation is lookup's ceiling.
  EXPECT_GT(lookup.stats.acceptance(), 0.8);
  EXPECT_GT(lookup.stats.tokens_per_pass(), 3.0);

  // The same weights at 4 bits: a draft close to the target.
  static auto q4 = load_model(testing::testdata("models/tiny-llama-Q4_0.gguf"));
  auto model_drafter = [](const Model& m, float p_min) {
    return [&m, p_min](Context& c) {
      ContextParams dcp = c.params();
      dcp.n_ctx = c.n_ctx();
      dcp.pool = &c.pool();
      auto d = make_model_drafter(m, dcp, DraftModelParams{p_min, c.n_vocab()});
      EXPECT_TRUE(d.has_value());
      return std::move(*d);
    };
  };
  const GenResult close = generate(prompt, n, greedy, 6, model_drafter(*q4, 0.0f));
  EXPECT_EQ(close.tokens, plain.tokens);
  EXPECT_GT(close.stats.acceptance(), 0.5);
  // Another model with the same vocabulary: the floor, nearly nothing accepted.
  static auto other = load_model(mismatched_draft());
  const GenResult far = generate(prompt, 48, greedy, 6, model_drafter(*other, 0.0f));
  EXPECT_EQ(far.tokens, std::vector<TokenId>(plain.tokens.begin(), plain.tokens.begin() + 48));
  EXPECT_GT(far.stats.drafted, 100) << far.stats.passes << " passes " << far.stats.accepted << " accepted";
  EXPECT_LT(far.stats.acceptance(), 0.2);
  // p_min: the random-weight draft is never that sure of anything.
  const GenResult picky = generate(prompt, n, greedy, 6, model_drafter(*other, 0.99f));
  EXPECT_EQ(picky.tokens, plain.tokens);
  EXPECT_EQ(picky.stats.drafted, 0);

  // A repetition penalty depends on every token taken before.
  SamplerParams pen = greedy;
  pen.repeat_penalty = 1.3f;
  pen.penalty_last_n = 32;
  const GenResult plain_pen = generate(prompt, 100, pen, 0, nullptr);
  EXPECT_NE(plain_pen.tokens, std::vector<TokenId>(plain.tokens.begin(), plain.tokens.begin() + 100));
  EXPECT_EQ(generate(prompt, 100, pen, 8, [](Context&) { return make_lookup_drafter(1); }).tokens, plain_pen.tokens);
  EXPECT_EQ(generate(prompt, 100, pen, 6, model_drafter(*q4, 0.0f)).tokens, plain_pen.tokens);
}

// Past 1024 positions a lone token's attention is split into spans; drafted
// tokens verified together must still match it bit for bit.
TEST(SpecGenerator, GreedyIdentityDeepInTheCache) {
  std::vector<TokenId> prompt;
  const auto base = fixture_prompt();
  while (prompt.size() < 1010) prompt.insert(prompt.end(), base.begin() + 1, base.end());
  prompt.resize(1010);
  const SamplerParams greedy = SamplerParams::greedy();
  const GenResult plain = generate(prompt, 60, greedy, 0, nullptr);
  const GenResult lookup = generate(prompt, 60, greedy, 8, [](Context&) { return make_lookup_drafter(1); });
  EXPECT_EQ(lookup.tokens, plain.tokens);
  EXPECT_GT(lookup.stats.accepted, 20);
}

// Sampling with drafts (lookup: point masses; a draft model: its q) runs,
// takes valid tokens, and the same seed gives the same tokens.
TEST(SpecGenerator, SampledGenerationWithDrafts) {
  const auto prompt = fixture_prompt();
  SamplerParams sp;
  sp.temperature = 0.7f;
  sp.seed = 11;
  static auto q4 = load_model(testing::testdata("models/tiny-llama-Q4_0.gguf"));
  auto with_q4 = [](Context& c) {
    ContextParams dcp = c.params();
    dcp.n_ctx = c.n_ctx();
    dcp.pool = &c.pool();
    auto d = make_model_drafter(*q4, dcp, DraftModelParams{0.0f, c.n_vocab()});
    EXPECT_TRUE(d.has_value());
    return std::move(*d);
  };
  const GenResult a = generate(prompt, 80, sp, 4, with_q4), b = generate(prompt, 80, sp, 4, with_q4);
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_GT(a.stats.drafted, 20);
  EXPECT_GT(a.stats.accepted, 5);
  for (TokenId t : a.tokens) EXPECT_TRUE(t >= 0 && t < 32256);
  const GenResult l = generate(prompt, 80, sp, 8, [](Context&) { return make_lookup_drafter(1); });
  EXPECT_GT(l.stats.accepted, 10);
}

}  // namespace
}  // namespace codey
