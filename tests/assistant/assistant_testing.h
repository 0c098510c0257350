// Helpers for the assistant tests: tiny synthesized models (optionally with
// a real vocabulary and chat template), and a scripted model backend whose
// "model" answers each prompt with text a test function chooses.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "codey/assistant.h"
#include "codey/chat.h"
#include "codey/convert.h"
#include "codey/gguf.h"
#include "codey/runtime.h"
#include "testing/testing.h"

namespace codey::testing {

// A vocabulary GGUF (no weights): gpt-2's tokenizer with a chat template
// (`template_text`, or else the testdata template file `name`).
inline std::string vocab_with_template(const std::string& name, const std::string& template_text = "") {
  static std::mutex mu;
  static std::map<std::string, std::string> made;
  std::lock_guard lock(mu);
  auto& path = made[name];
  if (!path.empty()) return path;
  auto src = GgufFile::open(testdata("vocab/ggml-vocab-gpt-2.gguf"));
  EXPECT_TRUE(src.has_value());
  GgufWriter w;
  for (const auto& [k, v] : src->metadata())
    if (k.starts_with("tokenizer.")) w.set(std::string(k), v);
  w.set("general.architecture", GgufValue::make_string("llama"));
  w.set("tokenizer.chat_template",
        GgufValue::make_string(template_text.empty() ? read_file_text(testdata("templates/" + name)) : template_text));
  path = temp_dir() + "/vocab-" + name + ".gguf";
  EXPECT_TRUE(w.begin(path).has_value());
  EXPECT_TRUE(w.finish().has_value());
  return path;
}

// A tiny model with random weights. `vocab` empty: the built-in byte-level
// tokenizer (ChatML template); else tokenizer.* copied from that GGUF.
inline std::string synth_tiny(const std::string& arch, uint64_t seed, const std::string& vocab = "") {
  static std::mutex mu;
  static std::map<std::string, std::string> made;
  const std::string key = fmt::format("{}-{}-{}", arch, seed, vocab);
  std::lock_guard lock(mu);
  auto& path = made[key];
  if (!path.empty()) return path;
  SynthOptions o;
  o.shape.name = "tiny-" + arch;
  o.shape.arch = arch;
  o.shape.n_embd = 64;
  o.shape.n_layer = 2;
  o.shape.n_head = 4;
  o.shape.n_head_kv = 2;
  o.shape.n_ff = 128;
  o.shape.n_vocab = 320;  // grows to the copied vocabulary
  o.shape.n_ctx = 2048;
  o.shape.rope_freq_base = 10000.0f;
  o.shape.tied_embeddings = true;
  if (arch == "gemma3") {
    o.shape.head_dim = 16;
    o.shape.sliding_window = 64;
    o.shape.rope_freq_base_swa = 10000.0f;
  }
  o.target = "F16";
  o.seed = seed;
  o.threads = 1;
  o.vocab_path = vocab;
  std::string name = key.size() > 60 ? fmt::format("m{}", made.size()) : key;
  for (auto& c : name)
    if (c == ' ' || c == '/') c = '_';  // a vocab's path is part of the key
  o.output = fmt::format("{}/{}.gguf", temp_dir(), name);
  auto r = synth_model(o);
  if (!r) {
    ADD_FAILURE() << r.error().message;
    return {};
  }
  path = o.output;
  return path;
}

// A backend whose models answer by script: for each new prompt (the
// rendered chat, special tokens as text) the responder returns the answer;
// the instance then emits its tokens one by one (one-hot logits) and an
// end-of-generation token. Tokenizer and chat template come from the
// model's GGUF file, as with the real backend, so prompts render the same.
class ScriptedBackend : public ModelBackend {
 public:
  using Responder = std::function<std::string(const std::string& model, const std::string& prompt)>;
  explicit ScriptedBackend(Responder responder) : responder_(std::move(responder)) {}

  std::vector<std::pair<std::string, std::string>> prompts() {  // (model, prompt) in order
    std::lock_guard l(mu_);
    return prompts_;
  }
  int loads() {
    std::lock_guard l(mu_);
    return loads_;
  }
  // Each emitted token waits this long (to test cancellation mid-answer).
  void set_token_delay(Millis d) { delay_ms_ = static_cast<int>(d.count()); }

  Result<ModelFacts> inspect(const ModelConfig& cfg) override {
    auto f = GgufFile::open(cfg.path);
    if (!f) return std::unexpected(f.error());
    ModelFacts facts;
    facts.architecture = "scripted";
    facts.file_bytes = f->file_size();
    facts.n_ctx_train = 8192;
    facts.weight_bytes = 1 << 20;
    facts.kv_bytes_per_pos = 1024;
    facts.scratch_bytes = 1 << 20;
    return facts;
  }

  Result<std::unique_ptr<ModelInstance>> load(const ModelConfig& cfg, const LoadSpec& spec,
                                              const std::function<void(double)>& progress, std::stop_token) override {
    auto f = GgufFile::open(cfg.path);
    if (!f) return std::unexpected(f.error());
    auto tok = Tokenizer::from_gguf(*f);
    if (!tok) return std::unexpected(tok.error());
    std::optional<std::string> tmpl;
    if (auto t = f->get_string_or("tokenizer.chat_template", ""); t && !t->empty()) tmpl = std::string(*t);
    if (progress) progress(1.0);
    {
      std::lock_guard l(mu_);
      ++loads_;
    }
    return std::unique_ptr<ModelInstance>(new Instance(*this, cfg.name, std::move(*tok), tmpl, spec));
  }

 private:
  class Instance : public ModelInstance {
   public:
    Instance(ScriptedBackend& b, std::string name, Tokenizer tok, std::optional<std::string> tmpl, const LoadSpec& spec)
        : b_(b), name_(std::move(name)), tok_(std::move(tok)), tmpl_(std::move(tmpl)), n_ctx_(spec.n_ctx),
          slots_(static_cast<size_t>(std::max(1, spec.n_slots))) {}
    const Tokenizer& tokenizer() const override { return tok_; }
    std::optional<std::string> chat_template() const override { return tmpl_; }
    int64_t n_ctx() const override { return n_ctx_; }
    int n_slots() const override { return static_cast<int>(slots_.size()); }
    int64_t n_batch() const override { return 512; }
    int64_t n_vocab() const override { return tok_.n_tokens(); }
    int64_t seq_length(int slot) const override { return static_cast<int64_t>(slots_[static_cast<size_t>(slot)].seq.size()); }
    Status truncate_slot(int slot, int64_t n) override {
      auto& s = slots_[static_cast<size_t>(slot)];
      if (static_cast<size_t>(n) < s.seq.size()) s.seq.resize(static_cast<size_t>(n));
      return {};
    }
    Status resize_ctx(int64_t n) override {
      n_ctx_ = n;
      return {};
    }
    Result<std::span<const float>> decode(const Batch& batch) override {
      size_t n_out = 0;
      for (auto w : batch.want_logits) n_out += w;
      logits_.assign(n_out * static_cast<size_t>(tok_.n_tokens()), 0.0f);
      size_t row = 0;
      for (size_t i = 0; i < batch.size(); ++i) {
        auto& s = slots_[static_cast<size_t>(batch.seq[i])];
        s.seq.push_back(batch.tokens[i]);
        if (!batch.want_logits[i]) continue;
        const size_t pos = s.seq.size();  // where the emitted token will go
        const bool continuing = s.active && batch.tokens[i] == s.last && pos - 1 == s.last_pos;
        if (!continuing) {
          const std::string prompt = tok_.detokenize(s.seq, /*render_special=*/true);
          {
            std::lock_guard l(b_.mu_);
            b_.prompts_.emplace_back(name_, prompt);
          }
          s.answer = tok_.tokenize(b_.responder_(name_, prompt), false, false);
          s.idx = 0;
          s.active = true;
        } else {
          ++s.idx;
        }
        TokenId next = s.idx < s.answer.size() ? s.answer[s.idx] : eog();
        s.last = next;
        s.last_pos = pos;
        logits_[row * static_cast<size_t>(tok_.n_tokens()) + static_cast<size_t>(next)] = 30.0f;
        ++row;
      }
      if (int ms = b_.delay_ms_.load(); ms > 0) std::this_thread::sleep_for(Millis(ms));
      return std::span<const float>(logits_);
    }
    Memory memory() const override { return {}; }

   private:
    TokenId eog() const { return tok_.eos() != kNoToken ? tok_.eos() : tok_.eog_ids()[0]; }
    struct Slot {
      std::vector<TokenId> seq;
      std::vector<TokenId> answer;
      size_t idx = 0;
      bool active = false;
      TokenId last = kNoToken;
      size_t last_pos = 0;
    };
    ScriptedBackend& b_;
    std::string name_;
    Tokenizer tok_;
    std::optional<std::string> tmpl_;
    int64_t n_ctx_;
    std::vector<Slot> slots_;
    std::vector<float> logits_;
  };

  Responder responder_;
  std::mutex mu_;
  std::vector<std::pair<std::string, std::string>> prompts_;
  int loads_ = 0;
  std::atomic<int> delay_ms_{0};
};

inline ModelConfig model_config(const std::string& name, const std::string& path) {
  ModelConfig m;
  m.name = name;
  m.path = path;
  m.ctx_auto = false;
  m.ctx = 2048;
  m.threads = 1;
  m.sampling.temperature = 0.0f;
  m.keep_alive = Millis(-1);
  return m;
}

}  // namespace codey::testing
