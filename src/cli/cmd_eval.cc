// `codey eval --model FILE --tokens FILE --logits OUT [--threads N] [--batch N]`:
// evaluates token ids in order (causal) and writes every position's logits as
// raw little-endian f32 [n_tokens][n_vocab] - the format of the reference files.
#include <cstdio>
#include <fstream>
#include <sstream>

#include "cli/command.h"
#include "codey/model.h"
#include "codey/store.h"

namespace codey::cli {
namespace {

struct EvalOptions {
  std::string model;
  std::string tokens;
  std::string logits;
  int threads = 0;
  int64_t batch = 512;
  int64_t ctx = 0;
  std::string kv_type = "f16";
};

Result<std::vector<int32_t>> read_tokens(const std::string& path) {
  std::ifstream in(path);
  if (!in) return make_error(ErrorCode::kNotFound, "cannot open token file {}", path);
  std::vector<int32_t> ids;
  std::string word;
  while (in >> word) {
    char* end = nullptr;
    const long v = std::strtol(word.c_str(), &end, 10);
    if (*end != '\0' || v < 0 || v > INT32_MAX)
      return make_error(ErrorCode::kInvalidArgument, "{}: '{}' is not a token id", path, word);
    ids.push_back(static_cast<int32_t>(v));
  }
  if (ids.empty()) return make_error(ErrorCode::kInvalidArgument, "{}: no token ids", path);
  return ids;
}

int run_eval(const EvalOptions& o) {
  auto ids = read_tokens(o.tokens);
  if (!ids) return fail(ids.error().message);
  auto kv_type = type_from_name(o.kv_type);
  if (!kv_type) return fail(fmt::format("--kv-type: unknown type '{}'", o.kv_type));
  if (o.batch <= 0) return fail("--batch must be positive");
  auto path = resolve_model_path(o.model);
  if (!path) return fail(path.error().message);
  auto model = Model::load(*path);
  if (!model) return fail(model.error().message);
  const auto n = static_cast<int64_t>(ids->size());
  ContextParams cp;
  cp.n_ctx = o.ctx > 0 ? o.ctx : n;
  cp.n_batch = std::min(o.batch, n);
  cp.n_threads = o.threads;
  cp.kv_type = *kv_type;
  auto ctx = Context::create(**model, cp);
  if (!ctx) return fail(ctx.error().message);

  std::FILE* out = std::fopen(o.logits.c_str(), "wb");
  if (!out) return fail(fmt::format("cannot write {}", o.logits));
  Batch batch;
  for (int64_t i = 0; i < n; i += cp.n_batch) {
    batch.clear();
    for (int64_t j = i; j < std::min(n, i + cp.n_batch); ++j) batch.add((*ids)[static_cast<size_t>(j)], 0, true);
    auto logits = (*ctx)->decode(batch);
    if (!logits) {
      std::fclose(out);
      return fail(logits.error().message);
    }
    if (std::fwrite(logits->data(), sizeof(float), logits->size(), out) != logits->size()) {
      std::fclose(out);
      return fail(fmt::format("writing {} failed", o.logits));
    }
  }
  if (std::fclose(out) != 0) return fail(fmt::format("writing {} failed", o.logits));
  return 0;
}

CommandRunner setup(CLI::App& root) {
  auto o = std::make_shared<EvalOptions>();
  auto* cmd = root.add_subcommand("eval", "Evaluate token ids and write the logits of every position (raw f32)");
  cmd->add_option("--model,-m", o->model, "GGUF model file or reference (hf.co/OWNER/REPO:QUANT, ollama:NAME:TAG)")
      ->required();
  cmd->add_option("--tokens", o->tokens, "File of whitespace-separated token ids")->required();
  cmd->add_option("--logits", o->logits, "Output: little-endian f32 [n_tokens][n_vocab]")->required();
  cmd->add_option("--threads,-t", o->threads, "Threads (default: usable cores)");
  cmd->add_option("--batch,-b", o->batch, "Tokens per forward pass (default 512)");
  cmd->add_option("--ctx,-c", o->ctx, "Context size (default: the number of tokens)");
  cmd->add_option("--kv-type", o->kv_type, "KV cache type: f16 (default), q8_0, bf16, f32");
  return [o] { return run_eval(*o); };
}

CODEY_REGISTER_COMMAND(eval, setup);

}  // namespace
}  // namespace codey::cli
