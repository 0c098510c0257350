// Tests of `codey quantize` / `codey synth`: the recipe picks the same types as
// the reference quantizer did for the fixture files; synthesized and
// quantized files load, have the right shapes and decode to sane values.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>

#include "codey/convert.h"
#include "codey/model.h"
#include "codey/quant.h"
#include "testing/testing.h"

namespace codey {
namespace {

using testing::testdata;

// For each fixture made by the reference quantizer from the f16 file, our
// recipe applied to the f16 file must choose the same type for every tensor.
TEST(QuantRecipe, MatchesReferenceQuantizerOnFixtures) {
  const std::pair<const char*, const char*> cases[] = {
      {"tiny-llama", "Q4_0"},   {"tiny-llama", "Q8_0"},   {"tiny-llama", "Q3_K_M"}, {"tiny-llama", "Q4_K_M"},
      {"tiny-llama", "Q5_K_M"}, {"micro-qwen2", "Q4_K_M"}, {"micro-qwen2", "Q8_0"},
      // 8 experts: attn_k / attn_v at Q8_0, attn_output at Q5_K; the router stays as it is.
      {"next/tiny-qwen3", "Q4_K_M"}, {"next/tiny-qwen3moe", "Q4_K_M"},
  };
  for (auto [model_path, target_name] : cases) {
    const std::string_view mp(model_path);
    const std::string root(mp.substr(0, mp.rfind('/') + 1)), model(mp.substr(mp.rfind('/') + 1));
    auto f16 = GgufFile::open(testdata(fmt::format("{}models/{}-f16.gguf", root, model)));
    auto ref = GgufFile::open(testdata(fmt::format("{}models/{}-{}.gguf", root, model, target_name)));
    ASSERT_TRUE(f16 && ref);
    auto target = parse_quant_target(target_name);
    ASSERT_TRUE(target.has_value());
    QuantRecipe recipe(*target, recipe_context(*f16));
    int checked = 0;
    for (const auto& t : f16->tensors()) {
      std::span<const int64_t> ne(t.ne.data(), static_cast<size_t>(t.n_dims));
      auto choice = recipe.choose(t.name, ne, t.type);
      const TensorType ours = choice ? choice->type : (t.n_dims == 1 ? TensorType::kF32 : t.type);
      const auto* theirs = ref->find_tensor(t.name);
      ASSERT_NE(theirs, nullptr) << t.name;
      EXPECT_EQ(type_name(ours), type_name(theirs->type)) << model << " " << target_name << " " << t.name;
      ++checked;
    }
    EXPECT_GT(checked, 10);
    auto ft = ref->get_u32("general.file_type");
    ASSERT_TRUE(ft.has_value());
    EXPECT_EQ(*ft, target->file_type) << target_name;
  }
}

TEST(QuantRecipe, FallbackForRowsNotMultipleOf256) {
  auto target = parse_quant_target("q4_k_m");
  ASSERT_TRUE(target.has_value());
  RecipeContext ctx;
  ctx.arch = "llama";
  ctx.n_layer = 24;
  ctx.n_ffn_down = 24;
  ctx.n_attention_wv = 24;
  QuantRecipe recipe(*target, ctx);
  const int64_t down[] = {5504, 2048};  // deepseek-coder-1.3b ffn_down
  auto c = recipe.choose("blk.0.ffn_down.weight", down, TensorType::kF16);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->type, TensorType::kQ8_0);  // layer 0 gets Q6_K, which falls back to Q8_0
  EXPECT_NE(c->note.find("5504"), std::string::npos);
  auto c1 = recipe.choose("blk.1.ffn_down.weight", down, TensorType::kF16);
  EXPECT_EQ(c1->type, TensorType::kQ8_0);  // layers < n/8 use more bits
  for (int i = 2; i < 4; ++i) recipe.choose(fmt::format("blk.{}.ffn_down.weight", i), down, TensorType::kF16);
  auto c4 = recipe.choose("blk.4.ffn_down.weight", down, TensorType::kF16);
  EXPECT_EQ(c4->type, TensorType::kQ5_0);  // Q4_K falls back to Q5_0
  const int64_t norm[] = {2048};
  EXPECT_FALSE(recipe.choose("blk.0.attn_norm.weight", norm, TensorType::kF32).has_value());
  EXPECT_FALSE(parse_quant_target("Q4_K_X").has_value());
}

// IQ4_NL / IQ4_XS as the reference quantizer mixes them (without an
// importance matrix): attn_v at Q5_K for grouped-query models (n_gqa >= 4),
// the first eighth of ffn_down at Q5_K, the output at Q6_K, rows that are
// not a multiple of 256 at IQ4_NL.
TEST(QuantRecipe, Iq4Mixes) {
  for (const char* name : {"IQ4_XS", "IQ4_NL"}) {
    SCOPED_TRACE(name);
    auto target = parse_quant_target(name);
    ASSERT_TRUE(target.has_value());
    const TensorType base = std::string(name) == "IQ4_XS" ? TensorType::kIQ4_XS : TensorType::kIQ4_NL;
    EXPECT_EQ(target->file_type, std::string(name) == "IQ4_XS" ? 30u : 25u);
    RecipeContext ctx;
    ctx.arch = "qwen2";
    ctx.n_layer = 16;
    ctx.n_ffn_down = 16;
    ctx.n_attention_wv = 16;
    ctx.n_gqa = 6;
    ctx.has_output = true;
    QuantRecipe recipe(*target, ctx);
    const int64_t sq[] = {1536, 1536}, down[] = {8960, 1536}, odd[] = {5504, 2048}, out[] = {1536, 151936};
    EXPECT_EQ(recipe.choose("blk.0.attn_q.weight", sq, TensorType::kF16)->type, base);
    EXPECT_EQ(recipe.choose("blk.0.attn_v.weight", sq, TensorType::kF16)->type, TensorType::kQ5_K);
    EXPECT_EQ(recipe.choose("blk.0.ffn_down.weight", down, TensorType::kF16)->type, TensorType::kQ5_K);
    EXPECT_EQ(recipe.choose("blk.1.ffn_down.weight", down, TensorType::kF16)->type, TensorType::kQ5_K);
    EXPECT_EQ(recipe.choose("blk.2.ffn_down.weight", down, TensorType::kF16)->type, base);
    EXPECT_EQ(recipe.choose("blk.0.ffn_up.weight", odd, TensorType::kF16)->type, TensorType::kIQ4_NL);
    EXPECT_EQ(recipe.choose("output.weight", out, TensorType::kF16)->type, TensorType::kQ6_K);
    ctx.n_gqa = 1;
    QuantRecipe mha(*target, ctx);
    EXPECT_EQ(mha.choose("blk.0.attn_v.weight", sq, TensorType::kF16)->type, base);
  }
}

TEST(Synth, TinyModelLoadsWithShapesAndSaneValues) {
  const std::string dir = testing::temp_dir();
  SynthOptions o;
  o.shape = *find_model_shape("qwen2.5-coder-0.5b");
  o.shape.n_layer = 2;
  o.shape.n_vocab = 1000;
  o.target = "Q8_0";
  o.output = dir + "/synth.gguf";
  o.threads = 2;
  auto r = synth_model(o);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  auto f = GgufFile::open(o.output);
  ASSERT_TRUE(f.has_value()) << f.error().message;
  EXPECT_EQ(*f->get_string("general.architecture"), "qwen2");
  EXPECT_EQ(*f->get_u32("qwen2.embedding_length"), 896u);
  EXPECT_EQ(*f->get_u32("qwen2.attention.head_count_kv"), 2u);
  EXPECT_EQ(f->get_string_array("tokenizer.ggml.tokens")->size(), 1000u);
  const auto* q = f->find_tensor("blk.1.attn_q.weight");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->type, TensorType::kQ8_0);
  EXPECT_EQ(q->ne[0], 896);
  EXPECT_EQ(q->ne[1], 896);
  ASSERT_NE(f->find_tensor("blk.0.attn_k.bias"), nullptr);
  EXPECT_EQ(f->find_tensor("output.weight"), nullptr);  // tied
  // Values: std close to 1/sqrt(fan_in), mean near 0.
  TensorView v = f->view(*q);
  std::vector<float> row(896);
  double sum = 0, sq = 0;
  for (int64_t r = 0; r < 64; ++r) {
    dequantize_row(v.type, v.row(r), row.data(), 896);
    for (float x : row) {
      ASSERT_TRUE(std::isfinite(x));
      sum += x;
      sq += double(x) * x;
    }
  }
  const double n = 64.0 * 896, mean = sum / n, std = std::sqrt(sq / n - mean * mean);
  EXPECT_NEAR(std, 1.0 / std::sqrt(896.0), 0.1 / std::sqrt(896.0));
  EXPECT_NEAR(mean, 0.0, 0.05 / std::sqrt(896.0));
  // Deterministic: the same seed gives the same bytes, another seed does not.
  o.output = dir + "/synth2.gguf";
  ASSERT_TRUE(synth_model(o).has_value());
  EXPECT_EQ(testing::read_file_bytes(dir + "/synth.gguf"), testing::read_file_bytes(dir + "/synth2.gguf"));
}

// synth writes each architecture's own tensor table (the one the loader
// reads): the smallest named shape of every architecture, cut to one layer
// and a small vocabulary, loads and has exactly the tensors the table lists.
TEST(Synth, EveryArchitectureLoadsWithItsOwnTable) {
  std::map<std::string, ModelShape> smallest;
  for (const ModelShape& shape : model_shapes()) {
    auto [it, fresh] = smallest.emplace(shape.arch, shape);
    if (!fresh && shape.n_embd * shape.n_ff < it->second.n_embd * it->second.n_ff) it->second = shape;
  }
  EXPECT_EQ(smallest.size(), supported_archs().size()) << "every architecture has a named shape";
  for (const auto& [arch, shape] : smallest) {
    SCOPED_TRACE(shape.name);
    SynthOptions o;
    o.shape = shape;
    o.shape.n_layer = 1;
    o.shape.n_vocab = 512;
    if (o.shape.n_expert > 0) {  // a mixture: 4 experts, 2 used, are enough to check the tensors
      o.shape.n_expert = 4;
      o.shape.n_expert_used = 2;
    }
    o.target = "Q8_0";
    o.output = testing::temp_dir() + "/every.gguf";
    o.threads = 2;
    auto r = synth_model(o);
    ASSERT_TRUE(r.has_value()) << r.error().message;
    auto m = Model::load(o.output);
    ASSERT_TRUE(m.has_value()) << m.error().message;
    const auto expected = model_tensors((*m)->arch(), (*m)->hparams(), shape.tied_embeddings);
    ASSERT_EQ((*m)->gguf().tensors().size(), expected.size());
    for (const TensorDesc& d : expected) {
      const GgufTensorInfo* t = (*m)->gguf().find_tensor(d.name);
      ASSERT_NE(t, nullptr) << d.name;
      EXPECT_EQ(t->n_dims, static_cast<int>(d.ne.size())) << d.name;
      for (size_t i = 0; i < d.ne.size(); ++i) EXPECT_EQ(t->ne[i], d.ne[i]) << d.name;
    }
    EXPECT_FALSE((*m)->weights().matrices().empty());
  }
}

TEST(Synth, RejectsBadShapes) {
  SynthOptions o;
  o.shape = *find_model_shape("deepseek-coder-1.3b");
  o.shape.n_head_kv = 5;
  o.output = testing::temp_dir() + "/bad.gguf";
  auto r = synth_model(o);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("multiple of n_head_kv"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(o.output));
}

TEST(Quantize, F16FixtureToQ8_0MatchesReferenceQ8_0) {
  const std::string out = testing::temp_dir() + "/q8.gguf";
  QuantizeOptions o{testdata("models/tiny-llama-f16.gguf"), out, "Q8_0", 2, true};
  auto r = quantize_file(o);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  auto ours = GgufFile::open(out);
  auto ref = GgufFile::open(testdata("models/tiny-llama-Q8_0.gguf"));
  ASSERT_TRUE(ours && ref);
  EXPECT_EQ(ours->tensors().size(), ref->tensors().size());
  EXPECT_EQ(*ours->get_u32("general.file_type"), 7u);
  // Metadata copied.
  EXPECT_EQ(ours->get_string_array("tokenizer.ggml.tokens")->size(), ref->get_string_array("tokenizer.ggml.tokens")->size());
  // Per tensor, our quantization error against the f16 original is at most
  // the reference quantizer's (same type, same input).
  auto f16 = GgufFile::open(testdata("models/tiny-llama-f16.gguf"));
  ASSERT_TRUE(f16.has_value());
  for (const auto& t : ref->tensors()) {
    const auto* o2 = ours->find_tensor(t.name);
    const auto* src = f16->find_tensor(t.name);
    ASSERT_TRUE(o2 && src);
    ASSERT_EQ(o2->type, t.type) << t.name;
    const TensorView a = ours->view(*o2), b = ref->view(t), x = f16->view(*src);
    std::vector<float> ra(a.ne[0]), rb(a.ne[0]), rx(a.ne[0]);
    double ea = 0, eb = 0;
    for (int64_t r = 0; r < a.n_rows(); ++r) {
      dequantize_row(a.type, a.row(r), ra.data(), a.ne[0]);
      dequantize_row(b.type, b.row(r), rb.data(), b.ne[0]);
      dequantize_row(x.type, x.row(r), rx.data(), x.ne[0]);
      for (int64_t i = 0; i < a.ne[0]; ++i) {
        ea += double(ra[i] - rx[i]) * (ra[i] - rx[i]);
        eb += double(rb[i] - rx[i]) * (rb[i] - rx[i]);
      }
    }
    EXPECT_LE(ea, eb * 1.0001 + 1e-12) << t.name;
  }
  // Refuses to overwrite its input.
  QuantizeOptions self{out, out, "Q4_0", 1, true};
  auto bad = quantize_file(self);
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message.find("refusing to overwrite"), std::string::npos);
}

}  // namespace
}  // namespace codey
