// What the server itself reads from configured models' GGUF files, without
// loading them: listing details (architecture, size, quantization), the chat
// template (tool support and syntax), fill-in-the-middle support, and token
// pieces for JSON mode. Cached per model.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "codey/runtime.h"
#include "server/api.h"
#include "server/json_constraint.h"
#include "codey/tool_calls.h"

namespace codey::server {

struct ModelInfo {
  std::string name, path;
  std::string architecture;
  uint64_t n_params = 0;
  uint64_t file_bytes = 0;
  uint64_t file_type = 0;
  std::string quantization;       // "Q4_K_M", "F16", ... ("unknown" if the id is not known)
  std::string parameter_size;     // "1.3B", "494M"
  int64_t n_ctx_train = 0;
  int64_t n_vocab = 0;            // tokens in the vocabulary
  std::optional<std::string> chat_template;
  ToolCallFormat tool_format = ToolCallFormat::kNone;
  std::chrono::system_clock::time_point modified;
  std::string digest;             // identity of (path, size, mtime); not a content hash
  Json metadata = Json::object(); // scalar GGUF metadata (Ollama's model_info)
};

// The tokenizer-derived facts, built on first need (a vocabulary of 150k
// tokens takes a moment).
struct TokenizerFacts {
  bool has_fim = false;
  int32_t n_tokens = 0;
  std::shared_ptr<const TokenPieces> pieces;
};

// Thread-safe. Errors are 500s naming the file (the operator's problem).
class ModelCatalog {
 public:
  ApiResult<std::shared_ptr<const ModelInfo>> info(const ModelConfig& model);
  ApiResult<std::shared_ptr<const TokenizerFacts>> tokenizer(const ModelConfig& model);
  // Drops what was read of a model's file (pulled again, or deleted).
  void forget(std::string_view name);

 private:
  struct Entry {
    std::mutex mu;
    std::shared_ptr<const ModelInfo> info;
    std::shared_ptr<const TokenizerFacts> tokenizer;
  };
  std::shared_ptr<Entry> entry(const std::string& name);
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Entry>, std::less<>> entries_;
};


}  // namespace codey::server
