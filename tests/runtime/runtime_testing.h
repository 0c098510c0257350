// Helpers for the runtime tests: tiny synthesized models, and a backend that
// wraps the real GGUF one with gates, delays, load counts and size overrides
// so timing-dependent behaviour is deterministic.
#pragma once

#include <gtest/gtest.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <tuple>

#include "codey/convert.h"
#include "codey/runtime.h"
#include "testing/testing.h"

namespace codey::testing {

// A tiny llama-shaped model with the built-in byte-level tokenizer (ChatML
// template, FIM tokens). Synthesized once per (seed, n_ctx, n_head) per test
// binary. n_head 2 gives head_dim 32, which a q8_0 KV cache needs; a
// quantized `type` (e.g. Q8_0) has a repacked layout, F16 has none.
inline std::string tiny_model(uint64_t seed = 1, int64_t n_ctx_train = 512, int64_t n_head = 4,
                              const std::string& type = "F16") {
  static std::mutex mu;
  static std::map<std::tuple<uint64_t, int64_t, int64_t, std::string>, std::string> made;
  static const std::string dir = temp_dir();
  std::lock_guard lock(mu);
  auto& path = made[{seed, n_ctx_train, n_head, type}];
  if (!path.empty()) return path;
  SynthOptions o;
  o.shape.name = "tiny";
  o.shape.arch = "llama";
  o.shape.n_embd = 64;
  o.shape.n_layer = 2;
  o.shape.n_head = n_head;
  o.shape.n_head_kv = n_head / 2;
  o.shape.n_ff = 128;
  o.shape.n_vocab = 320;
  o.shape.n_ctx = n_ctx_train;
  o.shape.rope_freq_base = 10000.0f;
  o.shape.tied_embeddings = true;
  o.target = type;
  o.seed = seed;
  o.threads = 1;
  o.output = fmt::format("{}/tiny-{}-{}-{}-{}.gguf", dir, seed, n_ctx_train, n_head, type);
  auto r = synth_model(o);
  if (!r) {
    ADD_FAILURE() << r.error().message;
    return {};
  }
  path = o.output;
  return path;
}

inline ModelConfig tiny_config(std::string name, uint64_t seed = 1) {
  ModelConfig m;
  m.name = std::move(name);
  m.path = tiny_model(seed);
  m.ctx_auto = false;
  m.ctx = 256;
  m.batch = 64;
  m.prompt_chunk = 16;
  m.threads = 1;
  m.sampling.temperature = 0.0f;  // greedy: deterministic output
  m.keep_alive = Millis(-1);
  return m;
}

// Wraps the GGUF backend: counts loads per model, can hold loads and decode
// steps at a gate, slows decode steps, overrides a model's memory facts, and
// records every batch (the slots in it and its size).
class ControlledBackend : public ModelBackend {
 public:
  ControlledBackend() : real_(make_gguf_backend()) {}

  struct Sizes {
    uint64_t weights = 0, kv_per_pos = 0, scratch = 0;
  };

  // Facts overrides by model name (what admission sees).
  void set_sizes(const std::string& model, Sizes s) {
    std::lock_guard l(mu_);
    sizes_[model] = s;
  }
  void hold_loads(bool hold) {
    {
      std::lock_guard l(mu_);
      hold_loads_ = hold;
    }
    cv_.notify_all();
  }
  void hold_decode(bool hold) {
    {
      std::lock_guard l(mu_);
      hold_decode_ = hold;
    }
    cv_.notify_all();
  }
  void set_step_delay(Millis d) { step_delay_ms_ = static_cast<int>(d.count()); }
  int loads(const std::string& model) {
    std::lock_guard l(mu_);
    return loads_[model];
  }
  int loads_waiting() {
    std::lock_guard l(mu_);
    return loads_waiting_;
  }
  struct BatchRecord {
    std::string model;
    size_t tokens = 0;
    std::vector<int> seqs;  // distinct sequence ids
    std::vector<int> logits_seqs;
  };
  std::vector<BatchRecord> batches() {
    std::lock_guard l(mu_);
    return batches_;
  }
  void clear_batches() {
    std::lock_guard l(mu_);
    batches_.clear();
  }

  Result<ModelFacts> inspect(const ModelConfig& cfg) override {
    auto f = real_->inspect(cfg);
    if (!f) return f;
    std::lock_guard l(mu_);
    if (auto it = sizes_.find(cfg.name); it != sizes_.end()) {
      f->weight_bytes = it->second.weights;
      f->kv_bytes_per_pos = it->second.kv_per_pos;
      f->scratch_bytes = it->second.scratch;
    }
    return f;
  }

  Result<std::unique_ptr<ModelInstance>> load(const ModelConfig& cfg, const LoadSpec& spec,
                                              const std::function<void(double)>& progress,
                                              std::stop_token stop) override {
    {
      std::unique_lock l(mu_);
      ++loads_[cfg.name];
      ++loads_waiting_;
      cv_.wait(l, [&] { return !hold_loads_ || stop.stop_requested(); });
      --loads_waiting_;
    }
    auto inst = real_->load(cfg, spec, progress, stop);
    if (!inst) return inst;
    return std::unique_ptr<ModelInstance>(new Instance(*this, cfg.name, std::move(*inst)));
  }

 private:
  class Instance : public ModelInstance {
   public:
    Instance(ControlledBackend& b, std::string name, std::unique_ptr<ModelInstance> real)
        : b_(b), name_(std::move(name)), real_(std::move(real)) {}
    const Tokenizer& tokenizer() const override { return real_->tokenizer(); }
    std::optional<std::string> chat_template() const override { return real_->chat_template(); }
    int64_t n_ctx() const override { return real_->n_ctx(); }
    int n_slots() const override { return real_->n_slots(); }
    int64_t n_batch() const override { return real_->n_batch(); }
    int64_t n_vocab() const override { return real_->n_vocab(); }
    int64_t seq_length(int slot) const override { return real_->seq_length(slot); }
    Status truncate_slot(int slot, int64_t n) override { return real_->truncate_slot(slot, n); }
    Status resize_ctx(int64_t n) override { return real_->resize_ctx(n); }
    Result<std::span<const float>> decode(const Batch& batch) override {
      {
        std::unique_lock l(b_.mu_);
        BatchRecord rec;
        rec.model = name_;
        rec.tokens = batch.size();
        for (size_t i = 0; i < batch.size(); ++i) {
          if (std::find(rec.seqs.begin(), rec.seqs.end(), batch.seq[i]) == rec.seqs.end())
            rec.seqs.push_back(batch.seq[i]);
          if (batch.want_logits[i]) rec.logits_seqs.push_back(batch.seq[i]);
        }
        b_.batches_.push_back(std::move(rec));
        b_.cv_.wait(l, [&] { return !b_.hold_decode_; });
      }
      if (int ms = b_.step_delay_ms_.load(); ms > 0) std::this_thread::sleep_for(Millis(ms));
      return real_->decode(batch);
    }
    Memory memory() const override { return real_->memory(); }
    Drafter* drafter() override { return real_->drafter(); }

   private:
    ControlledBackend& b_;
    std::string name_;
    std::unique_ptr<ModelInstance> real_;
  };

  std::shared_ptr<ModelBackend> real_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Sizes> sizes_;
  std::map<std::string, int> loads_;
  int loads_waiting_ = 0;
  bool hold_loads_ = false;
  bool hold_decode_ = false;
  std::atomic<int> step_delay_ms_{0};
  std::vector<BatchRecord> batches_;
};

// Polls `pred` until true or the timeout (the runtime's work is asynchronous).
template <class Pred>
bool eventually(Pred pred, Millis timeout = Millis(10000)) {
  const auto end = Clock::now() + timeout;
  while (Clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(Millis(2));
  }
  return pred();
}

// All events of a stream up to the terminal one.
inline std::vector<Event> drain(RequestStream& s, Millis timeout = Millis(30000)) {
  std::vector<Event> out;
  const auto end = Clock::now() + timeout;
  while (!s.finished() && Clock::now() < end) {
    auto e = s.next(Millis(100));
    if (e) out.push_back(std::move(*e));
  }
  return out;
}

inline const ModelStatus* find_status(const RuntimeStatus& st, std::string_view name) {
  for (const auto& m : st.models)
    if (m.name == name) return &m;
  return nullptr;
}

inline GenerateRequest text_request(std::string model, std::string prompt, int max_tokens = 8) {
  GenerateRequest q;
  q.model = std::move(model);
  q.prompt = std::move(prompt);
  q.max_tokens = max_tokens;
  return q;
}

}  // namespace codey::testing
