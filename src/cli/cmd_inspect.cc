// `codey inspect MODEL.gguf [--json] [--ctx N] [--kv-type T] [--metadata] [--tensors]`:
// what a model is and what it needs, before loading it.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <optional>

#include "cli/command.h"
#include "codey/gguf.h"
#include "codey/model.h"
#include "codey/store.h"

namespace codey::cli {
namespace {

struct InspectOptions {
  std::string path;
  bool json = false;
  bool metadata = false;
  bool tensors = false;
  int64_t ctx = 0;
  std::string kv_type = "f16";
};

nlohmann::json value_json(const GgufValue& v) {
  switch (v.type) {
    case GgufType::kString: return std::string(v.str);
    case GgufType::kBool: return v.u != 0;
    case GgufType::kFloat32: case GgufType::kFloat64: return v.f;
    case GgufType::kArray: {
      if (v.count > 64) return v.to_string(8);
      nlohmann::json a = nlohmann::json::array();
      for (uint64_t i = 0; i < v.count; ++i) {
        if (v.elem_type == GgufType::kString) a.push_back(std::string(v.strs[i]));
        else if (v.elem_type == GgufType::kArray) a.push_back(value_json(v.items[i]));
        else if (v.elem_type == GgufType::kFloat32 || v.elem_type == GgufType::kFloat64) a.push_back(v.array_f64(i));
        else a.push_back(v.array_i64(i));
      }
      return a;
    }
    default: return v.is_integer() && (v.type == GgufType::kInt8 || v.type == GgufType::kInt16 ||
                                         v.type == GgufType::kInt32 || v.type == GgufType::kInt64)
                        ? nlohmann::json(v.i)
                        : nlohmann::json(v.u);
  }
}

int run_inspect(const InspectOptions& o) {
  auto path = resolve_model_path(o.path);
  if (!path) return fail(path.error().message);
  auto file = GgufFile::open(*path);
  if (!file) return fail(file.error().message);
  auto s = summarize(*file);
  if (!s) return fail(s.error().message);
  auto kv = type_from_name(o.kv_type);
  if (!kv || (*kv != TensorType::kF16 && *kv != TensorType::kQ8_0 && *kv != TensorType::kF32 && *kv != TensorType::kBF16))
    return fail(fmt::format("--kv-type must be f16, bf16, f32 or q8_0, not '{}'", o.kv_type));
  const uint64_t ctx = o.ctx > 0 ? static_cast<uint64_t>(o.ctx) : (s->n_ctx_train ? s->n_ctx_train : 4096);
  const MemoryEstimate mem = estimate_memory(*s, ctx, *kv);
  const uint64_t tied_copy = s->tied_output_copy_bytes;
  const uint64_t total = mem.total() + tied_copy;
  // What a token computes with and reads: from the model's own list of
  // matrices (architectures codey runs; mapped, nothing repacked or read).
  std::optional<std::pair<uint64_t, uint64_t>> active;  // parameters, weight bytes per token
  if (auto arch = file->architecture(); arch && find_arch(*arch)) {
    ModelLoadOptions lo;
    lo.repack = false;
    if (auto m = Model::load(o.path, lo)) active.emplace((*m)->n_active_params(), (*m)->active_weight_bytes());
  }
  std::vector<std::string> unsupported;
  for (const auto& t : file->tensors())
    if (!type_traits(t.type).dequantizable)
      unsupported.push_back(fmt::format("{} ({})", t.name, type_name(t.type)));

  if (o.json) {
    nlohmann::json j;
    j["path"] = s->path;
    j["gguf_version"] = s->version;
    j["architecture"] = s->architecture;
    j["name"] = s->name;
    j["hparams"] = {{"n_layer", s->n_layer}, {"n_embd", s->n_embd}, {"n_head", s->n_head},
                    {"n_head_kv", s->n_head_kv}, {"head_dim", s->head_dim}, {"n_ff", s->n_ff},
                    {"n_vocab", s->n_vocab}, {"n_ctx_train", s->n_ctx_train},
                    {"rope_freq_base", s->rope_freq_base}, {"sliding_window", s->sliding_window}};
    j["tokenizer"] = {{"model", s->tokenizer_model}, {"pre", s->tokenizer_pre}};
    j["chat_template"] = s->has_chat_template;
    nlohmann::json types = nlohmann::json::object();
    for (auto [t, n] : s->tensors_by_type) types[std::string(type_name(t))] = n;
    j["tensor_types"] = types;
    j["n_tensors"] = file->tensors().size();
    j["n_params"] = s->n_params;
    if (active) {
      j["n_active_params"] = active->first;
      j["active_weight_bytes_per_token"] = active->second;
    }
    if (s->n_expert)
      j["experts"] = {{"n_expert", s->n_expert}, {"n_expert_used", s->n_expert_used}, {"n_ff_exp", s->n_ff_exp}};
    j["file_size"] = s->file_size;
    j["files"] = s->n_files;
    j["tensor_bytes"] = s->tensor_bytes;
    j["bits_per_weight"] = s->bits_per_weight();
    j["memory"] = {{"n_ctx", mem.n_ctx}, {"kv_type", std::string(type_name(mem.kv_type))},
                   {"weights", mem.weights}, {"tied_output_copy", tied_copy}, {"kv_cache", mem.kv_cache},
                   {"scratch_estimate", mem.scratch}, {"total", total}};
    j["unsupported_tensors"] = unsupported;
    if (o.metadata) {
      nlohmann::json md = nlohmann::json::object();
      for (const auto& [k, v] : file->metadata()) md[std::string(k)] = value_json(v);
      j["metadata"] = md;
    }
    if (o.tensors) {
      nlohmann::json ts = nlohmann::json::array();
      for (const auto& t : file->tensors()) {
        std::vector<int64_t> ne(t.ne.begin(), t.ne.begin() + t.n_dims);
        ts.push_back({{"name", std::string(t.name)}, {"type", std::string(type_name(t.type))}, {"shape", ne},
                      {"offset", t.offset}, {"bytes", t.n_bytes}});
      }
      j["tensors"] = ts;
    }
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }

  std::string out;
  auto line = [&](std::string_view k, const std::string& v) { out += fmt::format("{:<22} {}\n", k, v); };
  line("file", fmt::format("{} ({}, GGUF v{}{})", s->path, format_bytes(s->file_size), s->version,
                           s->n_files > 1 ? fmt::format(", split in {} files", s->n_files) : ""));
  line("architecture", s->architecture);
  if (!s->name.empty()) line("name", s->name);
  line("layers", fmt::format("{}", s->n_layer));
  line("n_embd", fmt::format("{}", s->n_embd));
  line("heads / kv heads", fmt::format("{} / {} (head dim {})", s->n_head, s->n_head_kv, s->head_dim));
  line("n_ff", fmt::format("{}", s->n_ff));
  if (s->n_expert)
    line("experts", fmt::format("{} per layer, {} used per token (n_ff {})", s->n_expert, s->n_expert_used, s->n_ff_exp));
  line("vocab", fmt::format("{}", s->n_vocab));
  line("training context", fmt::format("{}", s->n_ctx_train));
  line("rope base", fmt::format("{}", s->rope_freq_base));
  if (s->sliding_window) line("sliding window", fmt::format("{}", s->sliding_window));
  line("tokenizer", fmt::format("{}{}", s->tokenizer_model.empty() ? "(none)" : s->tokenizer_model,
                                s->tokenizer_pre.empty() ? "" : " / pre " + s->tokenizer_pre));
  line("chat template", s->has_chat_template ? "yes" : "no (ChatML default will be used)");
  std::string types;
  for (auto [t, n] : s->tensors_by_type) types += fmt::format("{}{} x{}", types.empty() ? "" : ", ", type_name(t), n);
  line("tensors", fmt::format("{} ({})", file->tensors().size(), types.empty() ? "none" : types));
  line("parameters", fmt::format("{} ({:.3f} B)", s->n_params, double(s->n_params) / 1e9));
  if (active) {
    line("active parameters", fmt::format("{} ({:.3f} B) per token", active->first, double(active->first) / 1e9));
    line("bytes per token", fmt::format("{} of weights read per generated token", format_bytes(active->second)));
  }
  line("bits per weight", fmt::format("{:.2f}", s->bits_per_weight()));
  line("memory", fmt::format("{} at ctx {} with {} KV cache", format_bytes(total), mem.n_ctx, type_name(mem.kv_type)));
  line("  weights (mapped)", format_bytes(mem.weights));
  if (tied_copy > 0) line("  tied output copy", format_bytes(tied_copy) + " (the output matrix repacked; token_embd stays mapped)");
  line("  KV cache", format_bytes(mem.kv_cache));
  line("  scratch (estimate)", format_bytes(mem.scratch));
  if (!unsupported.empty())
    line("UNSUPPORTED", fmt::format("{} tensors of types codey cannot decode yet, e.g. {}", unsupported.size(), unsupported[0]));
  if (o.metadata) {
    out += "\nmetadata:\n";
    for (const auto& [k, v] : file->metadata()) out += fmt::format("  {} = {}\n", k, v.to_string());
  }
  if (o.tensors) {
    out += "\ntensors:\n";
    for (const auto& t : file->tensors()) {
      TensorView v = file->view(t);
      out += fmt::format("  {:<32} {:<8} {}\n", t.name, type_name(t.type), v.shape_string());
    }
  }
  std::fputs(out.c_str(), stdout);
  return 0;
}

CommandRunner setup(CLI::App& root) {
  auto o = std::make_shared<InspectOptions>();
  auto* cmd = root.add_subcommand("inspect", "Show a GGUF model's architecture, size and memory needs");
  cmd->add_option("model", o->path, "GGUF file")->required();
  cmd->add_flag("--json", o->json, "Print JSON");
  cmd->add_option("--ctx", o->ctx, "Context for the memory estimate (default: training context)");
  cmd->add_option("--kv-type", o->kv_type, "KV cache type for the estimate: f16 (default), q8_0, bf16, f32");
  cmd->add_flag("--metadata", o->metadata, "Also list all metadata");
  cmd->add_flag("--tensors", o->tensors, "Also list all tensors");
  return [o] { return run_inspect(*o); };
}

CODEY_REGISTER_COMMAND(inspect, setup);

}  // namespace
}  // namespace codey::cli
