// `codey synth`: models with random weights (fixed seed) in the shape of real
// ones, quantized with any type or recipe and written streaming - speed does
// not depend on the values, so these stand in for weights we cannot download.
#include <algorithm>
#include <cmath>
#include <filesystem>

#include <fmt/ranges.h>

#include "codey/convert.h"
#include "codey/model.h"
#include "codey/quant.h"
#include "convert/parallel.h"

namespace codey {
namespace {

// Hyper-parameters of the published models (their config.json / GGUF metadata).
const ModelShape kShapes[] = {
    // name, arch, n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab, n_ctx, head_dim, rope base, swa base, eps, linear rope, tied, swa
    {"deepseek-coder-1.3b", "llama", 2048, 24, 16, 16, 5504, 32256, 16384, 0, 100000.0f, 0, 1e-6f, 4.0f, false, 0},
    {"deepseek-coder-6.7b", "llama", 4096, 32, 32, 32, 11008, 32256, 16384, 0, 100000.0f, 0, 1e-6f, 4.0f, false, 0},
    {"qwen2.5-coder-0.5b", "qwen2", 896, 24, 14, 2, 4864, 151936, 32768, 0, 1000000.0f, 0, 1e-6f, 0, true, 0},
    {"qwen2.5-coder-1.5b", "qwen2", 1536, 28, 12, 2, 8960, 151936, 32768, 0, 1000000.0f, 0, 1e-6f, 0, true, 0},
    {"qwen2.5-coder-3b", "qwen2", 2048, 36, 16, 2, 11008, 151936, 32768, 0, 1000000.0f, 0, 1e-6f, 0, true, 0},
    {"qwen2.5-coder-7b", "qwen2", 3584, 28, 28, 4, 18944, 152064, 32768, 0, 1000000.0f, 0, 1e-6f, 0, false, 0},
    {"functiongemma-270m", "gemma3", 640, 18, 4, 1, 2048, 262144, 32768, 256, 1000000.0f, 10000.0f, 1e-6f, 0, true, 512},
    {"llama-3.2-1b", "llama", 2048, 16, 32, 8, 8192, 128256, 131072, 64, 500000.0f, 0, 1e-5f, 0, true, 0},
    {"qwen3-0.6b", "qwen3", 1024, 28, 16, 8, 3072, 151936, 40960, 128, 1000000.0f, 0, 1e-6f, 0, true, 0},
    {"qwen3-1.7b", "qwen3", 2048, 28, 16, 8, 6144, 151936, 40960, 128, 1000000.0f, 0, 1e-6f, 0, true, 0},
    {"qwen3-8b", "qwen3", 4096, 36, 32, 8, 12288, 151936, 40960, 128, 1000000.0f, 0, 1e-6f, 0, false, 0},
    // + experts, used per token, expert n_ff
    {"qwen3-coder-30b-a3b", "qwen3moe", 2048, 48, 32, 4, 6144, 151936, 262144, 128, 10000000.0f, 0, 1e-6f, 0, false, 0,
     128, 8, 768},
};

uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Approximately Gaussian (Irwin-Hall of 4 uniforms, rescaled to unit
// variance): cheap, deterministic per (seed, tensor, row).
void gaussian_row(uint64_t seed, float std, float* dst, int64_t n) {
  uint64_t s = seed;
  const float scale = std * std::sqrt(3.0f) / 65536.0f;  // the sum has std 65536 / sqrt(3)
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t r = splitmix(s);
    const int32_t sum = int32_t(r & 0xffff) + int32_t((r >> 16) & 0xffff) + int32_t((r >> 32) & 0xffff) +
                        int32_t(r >> 48) - 2 * 65536;
    dst[i] = static_cast<float>(sum) * scale;
  }
}

struct SynthTensor {
  std::string name;
  std::vector<int64_t> ne;
  float std = 0;    // Gaussian std; 0 with `constant` for norms
  float constant = 0;
};

// The shape's hyper-parameters as the model loader reads them back.
HParams shape_hparams(const ModelShape& s) {
  HParams hp;
  hp.arch = s.arch;
  hp.n_vocab = s.n_vocab;
  hp.n_ctx_train = s.n_ctx;
  hp.n_embd = s.n_embd;
  hp.n_layer = s.n_layer;
  hp.n_head = s.n_head;
  hp.n_head_kv = s.n_head_kv;
  hp.head_dim_k = hp.head_dim_v = s.head_dim ? s.head_dim : s.n_embd / s.n_head;
  hp.n_rot = static_cast<int32_t>(hp.head_dim_k);
  hp.n_ff = s.n_ff;
  hp.n_expert = s.n_expert;
  hp.n_expert_used = s.n_expert_used;
  hp.n_ff_exp = s.n_ff_exp;
  return hp;
}

// The architecture's own tensor table (the one the loader reads), with
// random values: weights std 1/sqrt(fan_in), output and embeddings
// 3/sqrt(n_embd) (logits std ~3: peaked, not degenerate), norms 1.
std::vector<SynthTensor> tensor_list(const ArchSpec& arch, const ModelShape& s) {
  std::vector<SynthTensor> ts;
  for (TensorDesc& d : model_tensors(arch, shape_hparams(s), s.tied_embeddings)) {
    const float fan_in = static_cast<float>(d.ne[0]);
    switch (d.init) {
      case TensorInit::kWeight: ts.push_back({std::move(d.name), std::move(d.ne), 1.0f / std::sqrt(fan_in), 0}); break;
      case TensorInit::kOutput: ts.push_back({std::move(d.name), std::move(d.ne), 3.0f / std::sqrt(fan_in), 0}); break;
      case TensorInit::kBias: ts.push_back({std::move(d.name), std::move(d.ne), 0.1f, 0}); break;
      case TensorInit::kNorm: ts.push_back({std::move(d.name), std::move(d.ne), 0, 1}); break;
    }
  }
  return ts;
}

// GPT-2's byte -> printable code point map (byte-level BPE token text).
std::string byte_token(int b) {
  int cp = b;
  if (!((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255))) {
    int n = 0;
    for (int x = 0; x < b; ++x)
      if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255))) ++n;
    cp = 256 + n;
  }
  std::string out;
  if (cp < 0x80) out += static_cast<char>(cp);
  else {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
  return out;
}

constexpr std::string_view kChatMlTemplate =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + "
    "'\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

// Tokenizer metadata: copied from a vocab GGUF, or a built-in byte-level BPE
// (256 byte tokens, ChatML and FIM specials), padded to n_vocab.
// Copied values view the vocab file's mapping: `source` keeps it open until
// the writer has written them.
Result<int64_t> add_tokenizer(GgufWriter& w, const std::string& vocab_path, int64_t n_vocab,
                              std::vector<std::string>& notes, std::optional<GgufFile>& source) {
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  std::vector<float> scores;
  bool have_scores = false;
  if (!vocab_path.empty()) {
    auto opened = GgufFile::open(vocab_path);
    if (!opened) return std::unexpected(opened.error());
    source.emplace(std::move(*opened));
    GgufFile* v = &*source;
    auto toks = v->get_string_array("tokenizer.ggml.tokens");
    if (!toks) return std::unexpected(toks.error());
    for (auto t : *toks) tokens.emplace_back(t);
    if (auto tt = v->get_int_array("tokenizer.ggml.token_type"))
      for (auto x : *tt) types.push_back(static_cast<int32_t>(x));
    if (auto sc = v->get_f32_array("tokenizer.ggml.scores")) {
      scores = *sc;
      have_scores = true;
    }
    for (const auto& [k, val] : v->metadata())
      if (k.starts_with("tokenizer.") && k != "tokenizer.ggml.tokens" && k != "tokenizer.ggml.token_type" &&
          k != "tokenizer.ggml.scores")
        w.set(std::string(k), val);
  } else {
    for (int b = 0; b < 256; ++b) {
      tokens.push_back(byte_token(b));
      types.push_back(1);
    }
    const int64_t first_special = static_cast<int64_t>(tokens.size());
    for (const char* sp : {"<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|fim_prefix|>", "<|fim_suffix|>",
                           "<|fim_middle|>"}) {
      tokens.emplace_back(sp);
      types.push_back(3);  // control
    }
    w.set("tokenizer.ggml.model", GgufValue::make_string("gpt2"));
    w.set("tokenizer.ggml.pre", GgufValue::make_string("qwen2"));
    w.set("tokenizer.ggml.merges", GgufValue::make_string_array({}));
    w.set("tokenizer.ggml.bos_token_id", GgufValue::make_u32(static_cast<uint32_t>(first_special)));
    w.set("tokenizer.ggml.eos_token_id", GgufValue::make_u32(static_cast<uint32_t>(first_special + 2)));
    w.set("tokenizer.ggml.eot_token_id", GgufValue::make_u32(static_cast<uint32_t>(first_special + 2)));
    w.set("tokenizer.ggml.padding_token_id", GgufValue::make_u32(static_cast<uint32_t>(first_special)));
    w.set("tokenizer.ggml.fim_pre_token_id", GgufValue::make_u32(static_cast<uint32_t>(first_special + 3)));
    w.set("tokenizer.ggml.fim_suf_token_id", GgufValue::make_u32(static_cast<uint32_t>(first_special + 4)));
    w.set("tokenizer.ggml.fim_mid_token_id", GgufValue::make_u32(static_cast<uint32_t>(first_special + 5)));
    w.set("tokenizer.ggml.add_bos_token", GgufValue::make_bool(false));
    w.set("tokenizer.chat_template", GgufValue::make_string(std::string(kChatMlTemplate)));
  }
  if (types.size() != tokens.size()) types.assign(tokens.size(), 1);
  if (static_cast<int64_t>(tokens.size()) > n_vocab) {
    notes.push_back(fmt::format("the vocabulary has {} tokens, more than the shape's {}; using {}", tokens.size(),
                                n_vocab, tokens.size()));
    n_vocab = static_cast<int64_t>(tokens.size());
  }
  for (int64_t i = static_cast<int64_t>(tokens.size()); i < n_vocab; ++i) {
    tokens.push_back(fmt::format("[PAD{}]", i));
    types.push_back(5);  // unused
    if (have_scores) scores.push_back(-1e9f);
  }
  w.set("tokenizer.ggml.tokens", GgufValue::make_string_array(std::move(tokens)));
  w.set("tokenizer.ggml.token_type", GgufValue::make_array<int32_t>(GgufType::kInt32, types));
  if (have_scores) w.set("tokenizer.ggml.scores", GgufValue::make_array<float>(GgufType::kFloat32, scores));
  return n_vocab;
}

}  // namespace

std::span<const ModelShape> model_shapes() { return kShapes; }

const ModelShape* find_model_shape(std::string_view name) {
  for (const auto& s : kShapes)
    if (s.name == name) return &s;
  return nullptr;
}

Result<QuantizeReport> synth_model(const SynthOptions& o, const ProgressFn& progress) {
  namespace fs = std::filesystem;
  ModelShape s = o.shape;
  const ArchSpec* arch = find_arch(s.arch);
  if (!arch)
    return make_error(ErrorCode::kInvalidArgument, "--arch must be one of {}, not '{}'",
                      fmt::format("{}", fmt::join(supported_archs(), ", ")), s.arch);
  if (s.n_embd <= 0 || s.n_layer <= 0 || s.n_head <= 0 || s.n_head_kv <= 0 || s.n_ff <= 0 || s.n_vocab <= 0 ||
      s.n_ctx <= 0)
    return make_error(ErrorCode::kInvalidArgument,
                      "every dimension must be positive (n_embd {}, n_layer {}, n_head {}, n_head_kv {}, n_ff {}, "
                      "n_vocab {}, ctx {})",
                      s.n_embd, s.n_layer, s.n_head, s.n_head_kv, s.n_ff, s.n_vocab, s.n_ctx);
  if (s.n_head % s.n_head_kv != 0)
    return make_error(ErrorCode::kInvalidArgument, "n_head {} must be a multiple of n_head_kv {}", s.n_head, s.n_head_kv);
  if (s.head_dim == 0 && s.n_embd % s.n_head != 0)
    return make_error(ErrorCode::kInvalidArgument, "n_embd {} must be a multiple of n_head {} (or give a head dim)",
                      s.n_embd, s.n_head);
  const int64_t hd = s.head_dim ? s.head_dim : s.n_embd / s.n_head;
  if (hd % 2 != 0) return make_error(ErrorCode::kInvalidArgument, "head dim {} must be even for rope", hd);
  const bool moe = std::any_of(arch->layer_tensors.begin(), arch->layer_tensors.end(),
                               [](const LayerTensor& t) { return t.experts != nullptr; });
  if (moe && (s.n_expert <= 0 || s.n_expert_used <= 0 || s.n_expert_used > s.n_expert || s.n_ff_exp <= 0))
    return make_error(ErrorCode::kInvalidArgument,
                      "{} is a mixture of experts: give --n-expert, --n-expert-used (at most --n-expert) and "
                      "--n-ff-exp (found {}, {}, {})",
                      s.arch, s.n_expert, s.n_expert_used, s.n_ff_exp);
  if (!moe) s.n_expert = s.n_expert_used = s.n_ff_exp = 0;
  auto target = parse_quant_target(o.target);
  if (!target) return std::unexpected(target.error());
  const auto t0 = Clock::now();
  QuantizeReport report;

  GgufWriter w;
  const std::string& a = s.arch;
  w.set("general.architecture", GgufValue::make_string(a));
  w.set("general.name", GgufValue::make_string(fmt::format("synthetic {} (random weights)", s.name.empty() ? a : s.name)));
  w.set("general.file_type", GgufValue::make_u32(target->file_type));
  w.set(a + ".context_length", GgufValue::make_u32(static_cast<uint32_t>(s.n_ctx)));
  w.set(a + ".embedding_length", GgufValue::make_u32(static_cast<uint32_t>(s.n_embd)));
  w.set(a + ".block_count", GgufValue::make_u32(static_cast<uint32_t>(s.n_layer)));
  w.set(a + ".feed_forward_length", GgufValue::make_u32(static_cast<uint32_t>(s.n_ff)));
  w.set(a + ".attention.head_count", GgufValue::make_u32(static_cast<uint32_t>(s.n_head)));
  w.set(a + ".attention.head_count_kv", GgufValue::make_u32(static_cast<uint32_t>(s.n_head_kv)));
  w.set(a + ".attention.layer_norm_rms_epsilon", GgufValue::make_f32(s.rms_eps));
  w.set(a + ".rope.freq_base", GgufValue::make_f32(s.rope_freq_base));
  w.set(a + ".rope.dimension_count", GgufValue::make_u32(static_cast<uint32_t>(hd)));
  if (s.head_dim) {
    w.set(a + ".attention.key_length", GgufValue::make_u32(static_cast<uint32_t>(hd)));
    w.set(a + ".attention.value_length", GgufValue::make_u32(static_cast<uint32_t>(hd)));
  }
  if (s.n_expert > 0) {
    w.set(a + ".expert_count", GgufValue::make_u32(static_cast<uint32_t>(s.n_expert)));
    w.set(a + ".expert_used_count", GgufValue::make_u32(static_cast<uint32_t>(s.n_expert_used)));
    w.set(a + ".expert_feed_forward_length", GgufValue::make_u32(static_cast<uint32_t>(s.n_ff_exp)));
  }
  if (s.sliding_window) w.set(a + ".attention.sliding_window", GgufValue::make_u32(static_cast<uint32_t>(s.sliding_window)));
  if (s.rope_scale_linear > 0) {
    w.set(a + ".rope.scaling.type", GgufValue::make_string("linear"));
    w.set(a + ".rope.scaling.factor", GgufValue::make_f32(s.rope_scale_linear));
  }
  std::optional<GgufFile> vocab_file;
  auto n_vocab = add_tokenizer(w, o.vocab_path, s.n_vocab, report.notes, vocab_file);
  if (!n_vocab) return std::unexpected(n_vocab.error());
  s.n_vocab = *n_vocab;
  w.set(a + ".vocab_size", GgufValue::make_u32(static_cast<uint32_t>(s.n_vocab)));

  const auto tensors = tensor_list(*arch, s);
  RecipeContext rc;
  rc.arch = a;
  rc.n_layer = s.n_layer;
  rc.has_output = !s.tied_embeddings;
  rc.n_attention_wv = s.n_layer;
  rc.n_ffn_down = s.n_layer;
  rc.n_gqa = s.n_head / s.n_head_kv;
  rc.n_expert = s.n_expert;
  QuantRecipe recipe(*target, rc);
  std::vector<TensorType> types;
  for (const auto& t : tensors) {
    auto choice = recipe.choose(t.name, t.ne, TensorType::kF32);
    TensorType type = choice ? choice->type : TensorType::kF32;
    if (choice && !choice->note.empty()) report.notes.push_back(choice->note);
    types.push_back(type);
    w.add_tensor(t.name, type, t.ne);
  }
  const std::string tmp = o.output + ".partial";
  CODEY_TRY(w.begin(tmp));
  ChunkWriter out = [&](std::span<const uint8_t> bytes) { return w.write_tensor_chunk(bytes); };
  const int threads = o.threads > 0 ? o.threads : usable_cores();
  std::error_code ec;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& t = tensors[i];
    if (progress) progress(i + 1, tensors.size(), t.name, std::string(type_name(types[i])));
    const uint64_t tensor_seed = o.seed * 0x100000001b3ull + i * 0x9e3779b97f4a7c15ull;
    int64_t n_rows = 1;
    for (size_t d = 1; d < t.ne.size(); ++d) n_rows *= t.ne[d];
    auto st = convert_rows(types[i], t.ne[0], n_rows, threads, out, [&](int64_t r, float* dst) {
      if (t.std == 0) std::fill(dst, dst + t.ne[0], t.constant);
      else gaussian_row(tensor_seed ^ (uint64_t(r) * 0xd6e8feb86659fd93ull), t.std, dst, t.ne[0]);
    });
    if (!st) {
      fs::remove(tmp, ec);
      return std::unexpected(st.error());
    }
  }
  auto size = publish_output(w, tmp, o.output);
  if (!size) return std::unexpected(size.error());
  report.output_bytes = *size;
  report.seconds = seconds_since(t0);
  return report;
}

}  // namespace codey
