// GGUF facts of configured models for the server (see catalog.h).
#include "server/catalog.h"

#include <sys/stat.h>

#include <fmt/format.h>

#include "codey/gguf.h"
#include "codey/tokenizer.h"

namespace codey::server {

namespace {

ApiError file_error(const ModelConfig& m, const Error& e) {
  ApiError out;
  // A reference not pulled yet is the client's to fix (pull it); a bad file
  // is the operator's.
  const bool not_pulled = !m.ref.empty() && e.code == ErrorCode::kNotFound;
  out.status = not_pulled ? 404 : 500;
  out.code = not_pulled ? "model_not_found" : "load_failed";
  out.message = fmt::format("model '{}' ({}): {}", m.name, m.ref.empty() ? m.path : m.ref, e.message);
  return out;
}

// The model's file now: its path, or what its reference resolves to.
ApiResult<std::string> file_of(const ModelConfig& m) {
  auto p = model_file(m);
  if (!p) return std::unexpected(file_error(m, p.error()));
  return *p;
}

Json metadata_value(const GgufValue& v) {
  switch (v.type) {
    case GgufType::kString: return std::string(v.str);
    case GgufType::kBool: return v.u != 0;
    case GgufType::kFloat32:
    case GgufType::kFloat64: return v.f;
    case GgufType::kArray: return nullptr;  // vocabularies are huge; Ollama too leaves them out
    default: return v.is_integer() ? (v.type == GgufType::kInt8 || v.type == GgufType::kInt16 ||
                                              v.type == GgufType::kInt32 || v.type == GgufType::kInt64
                                          ? Json(v.i)
                                          : Json(v.u))
                                   : Json(nullptr);
  }
}

uint64_t fnv1a(std::string_view s, uint64_t h = 1469598103934665603ull) {
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

}  // namespace

std::shared_ptr<ModelCatalog::Entry> ModelCatalog::entry(const std::string& name) {
  std::lock_guard lock(mu_);
  auto& e = entries_[name];
  if (!e) e = std::make_shared<Entry>();
  return e;
}

void ModelCatalog::forget(std::string_view name) {
  std::lock_guard lock(mu_);
  if (auto it = entries_.find(name); it != entries_.end()) entries_.erase(it);
}

ApiResult<std::shared_ptr<const ModelInfo>> ModelCatalog::info(const ModelConfig& m) {
  auto e = entry(m.name);
  std::lock_guard lock(e->mu);
  if (e->info) return e->info;
  auto path = file_of(m);
  if (!path) return std::unexpected(path.error());
  auto file = GgufFile::open(*path);
  if (!file) return std::unexpected(file_error(m, file.error()));
  auto s = summarize(*file);
  if (!s) return std::unexpected(file_error(m, s.error()));
  auto info = std::make_shared<ModelInfo>();
  info->name = m.name;
  info->path = *path;
  info->architecture = s->architecture;
  info->n_params = s->n_params;
  info->file_bytes = s->file_size;
  info->file_type = s->file_type;
  info->quantization = std::string(file_type_name(s->file_type));
  info->parameter_size = format_count(s->n_params);
  info->n_ctx_train = static_cast<int64_t>(s->n_ctx_train);
  info->n_vocab = static_cast<int64_t>(s->n_vocab);
  if (auto t = file->get_string("tokenizer.chat_template")) {
    info->chat_template = std::string(*t);
    info->tool_format = detect_tool_call_format(*t);
  }
  struct stat st {};
  if (::stat(path->c_str(), &st) == 0) {
    info->modified = std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::seconds(st.st_mtim.tv_sec) +
                                                                        std::chrono::nanoseconds(st.st_mtim.tv_nsec)));
  }
  info->digest = fmt::format("{:016x}{:016x}", fnv1a(*path), fnv1a(fmt::format("{}:{}", s->file_size, st.st_mtim.tv_sec)));
  for (const auto& [key, value] : file->metadata()) {
    if (key == "tokenizer.chat_template") continue;  // shown as "template"
    info->metadata[std::string(key)] = metadata_value(value);
  }
  info->metadata["general.parameter_count"] = s->n_params;
  e->info = info;
  return e->info;
}

ApiResult<std::shared_ptr<const TokenizerFacts>> ModelCatalog::tokenizer(const ModelConfig& m) {
  auto e = entry(m.name);
  std::lock_guard lock(e->mu);
  if (e->tokenizer) return e->tokenizer;
  auto path = file_of(m);
  if (!path) return std::unexpected(path.error());
  auto file = GgufFile::open(*path);
  if (!file) return std::unexpected(file_error(m, file.error()));
  auto tok = Tokenizer::from_gguf(*file);
  if (!tok) return std::unexpected(file_error(m, tok.error()));
  auto facts = std::make_shared<TokenizerFacts>();
  facts->has_fim = tok->fim_pre() != kNoToken && tok->fim_suf() != kNoToken && tok->fim_mid() != kNoToken;
  facts->n_tokens = tok->n_tokens();
  facts->pieces = TokenPieces::from(*tok);
  e->tokenizer = facts;
  return e->tokenizer;
}

}  // namespace codey::server
