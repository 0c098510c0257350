// Store layer: where models come from. Model references (hf.co/OWNER/REPO:QUANT,
// OWNER/REPO/FILE.gguf, ollama:NAME:TAG, paths), codey's own model store
// (CODEY_MODELS), pulls from the Hugging Face Hub, and the GGUF files other
// tools keep (Ollama, LM Studio, the Hugging Face cache), read in place and
// never copied. Every front end and the runtime's config resolve a reference
// through resolve_model().
#pragma once

#include <chrono>
#include <cstdint>
#include <ctime>
#include <functional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "codey/base.h"

namespace codey {

// Where models are. from_env() reads the environment; tests set the fields.
struct StoreOptions {
  std::string models_dir;                  // CODEY_MODELS, else ~/.cache/codey/models
  std::string hf_endpoint;                 // HF_ENDPOINT, else https://huggingface.co
  std::string hf_token;                    // HF_TOKEN, else $HF_HOME/token (huggingface-cli login); never logged
  std::string hf_cache;                    // HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub
  std::vector<std::string> ollama_dirs;    // OLLAMA_MODELS, else ~/.ollama/models and /usr/share/ollama/.ollama/models
  std::vector<std::string> lmstudio_dirs;  // ~/.lmstudio/models, ~/.cache/lm-studio/models
  static StoreOptions from_env();
};

// ------------------------------------------------------------ references --

enum class RefKind {
  kPath,     // a file
  kHub,      // hf.co/OWNER/REPO[:QUANT] (or huggingface.co/..., a Hub URL)
  kHubFile,  // hf.co/OWNER/REPO/FILE.gguf or OWNER/REPO/FILE.gguf (FILE may be in folders)
  kOllama,   // ollama:NAME[:TAG]: a model in Ollama's store
};

struct ModelRef {
  RefKind kind = RefKind::kPath;
  std::string path;         // kPath: as given
  std::string repo;         // kHub, kHubFile: "OWNER/REPO"
  std::string quant;        // kHub: as given ("" = the repo's default; "latest" means the default too)
  std::string file;         // kHubFile: the path in the repo
  std::string ollama_name;  // kOllama: "qwen2.5-coder", "user/model", "hf.co/owner/repo"
  std::string ollama_tag;   // kOllama: "latest" when not given
  // The canonical text: "hf.co/OWNER/REPO:QUANT", "hf.co/OWNER/REPO",
  // "hf.co/OWNER/REPO/FILE.gguf", "ollama:NAME:TAG", or the path.
  std::string str() const;
};

// Parses a reference without touching the disk. Text that is no reference
// form is a path. A reference-shaped text with a bad part (an invalid repo
// name, "..", a non-GGUF file) is kInvalidArgument naming the part.
Result<ModelRef> parse_model_ref(std::string_view text);

// The quantization a GGUF file name states ("qwen2.5-coder-7b-q4_k_m.gguf" ->
// "q4_k_m", "Model-UD-Q4_K_XL-00001-of-00002.gguf" -> "UD-Q4_K_XL"), as
// written; "" when the name states none.
std::string quant_label(std::string_view file_name);
// Nominal bits per weight of a quantization label (case-insensitive; "Q4_K_M"
// 4.85, "IQ4_XS" 4.25, "F16" 16); 0 when unknown.
double quant_bits(std::string_view label);

// ---------------------------------------------------------------- models --

enum class ModelSource { kFile, kCodey, kHuggingFaceCache, kLmStudio, kOllama };
std::string_view model_source_name(ModelSource s);  // "file", "codey", "hf-cache", "lmstudio", "ollama"

// A model on disk.
struct LocalModel {
  ModelSource source = ModelSource::kFile;
  std::string ref;                 // what names it: "hf.co/...", "ollama:...", or the path
  std::string path;                // the GGUF to open (the first part of a split model)
  std::vector<std::string> files;  // every part, in order
  uint64_t size = 0;               // bytes of all parts
  std::string repo;                // "OWNER/REPO" of Hub models
  std::string quant;               // label from the file name, else from general.file_type
  std::string sha256;              // hex, when known (codey's manifest, Ollama's blob, the HF cache's blob)
  std::time_t modified = 0;
  // From the GGUF header when read (list_models(read_headers) and resolve).
  std::string architecture;
  uint64_t n_params = 0;
  std::string error;               // why the header could not be read
  // The name to serve it under: the file stem for paths, Ollama's name
  // ("qwen2.5-coder:7b") for Ollama's models, else the reference.
  std::string serve_name() const;
};

// The GGUF a reference names, found without any download: a path (an
// existing file); a pulled model, looked up in codey's store, then the
// Hugging Face cache, LM Studio and Ollama's hf.co models; ollama:NAME:TAG in
// Ollama's store. Not found: kNotFound that says what to run ("... is not
// pulled: run codey pull ..."). Reads no GGUF header (cheap).
Result<LocalModel> resolve_model(std::string_view ref, const StoreOptions& options = StoreOptions::from_env());
// resolve_model(ref).path: for the front ends that take a file.
Result<std::string> resolve_model_path(std::string_view ref, const StoreOptions& options = StoreOptions::from_env());

// A download that stopped before the end (`codey pull` again resumes it).
struct PartialDownload {
  std::string ref;   // the Hub file it is part of: "hf.co/OWNER/REPO/FILE.gguf"
  std::string path;  // FILE.partial
  uint64_t size = 0;
};

struct ModelList {
  std::vector<LocalModel> models;  // codey's store first, then the other tools', each sorted by reference
  std::vector<PartialDownload> partials;
  std::vector<std::string> warnings;  // unreadable folders or manifests (the listing goes on)
};
// Every model on disk: pulled ones and those other tools keep. With
// read_headers, each GGUF's header gives architecture and parameters.
ModelList list_models(const StoreOptions& options = StoreOptions::from_env(), bool read_headers = true);

// Removes a pulled model: every part, partial downloads, its manifest entry,
// the repo's folder when empty. Models other tools keep are not removed (the
// error names the tool's own command). Returns the removed files.
Result<std::vector<std::string>> remove_model(std::string_view ref,
                                              const StoreOptions& options = StoreOptions::from_env());

// ------------------------------------------------------------------ pull --

struct PullProgress {
  std::string file;        // path in the repo
  std::string digest;      // "sha256:HEX" when the Hub gave one
  uint64_t total = 0;      // bytes of this file
  uint64_t completed = 0;  // bytes on disk so far (a resumed download starts above 0)
  int index = 0, count = 1;  // which file of the model (split models have several)
};

struct PullEvents {
  // Steps worth a line: "listing hf.co/...", "Q4_K_M: the repo's default",
  // "retrying in 2 s", "verifying sha256". Any thread the pull runs on.
  std::function<void(std::string_view)> on_status;
  // A file starts (completed may be > 0 when resuming), advances, and ends
  // (completed == total).
  std::function<void(const PullProgress&)> on_progress;
};

struct PullOptions {
  int max_attempts = 6;               // per file; a failed try resumes where it stopped
  Millis backoff{1000};               // first wait between tries, doubling up to 30 s
  std::chrono::seconds stall_timeout{60};  // a transfer that moves nothing this long is cut
  // Free bytes where the model goes (tests replace it); default: statvfs.
  std::function<Result<uint64_t>(const std::string& dir)> free_bytes;
};

struct PullResult {
  LocalModel model;
  bool downloaded = false;  // false: it was there and up to date
  std::string chosen;       // why this file: "Q4_K_M (the repo's default)", "IQ4_XS (no Q4_K_M; ...)"
};

// Pulls a Hub model into codey's store: lists the repo's files
// (GET {endpoint}/api/models/{repo}/tree/main), picks the quant (given, or the
// default: Q4_K_M, else the smallest above 4 bits), and downloads every part
// (GET {endpoint}/{repo}/resolve/main/{file}) to FILE.partial, resuming with
// Range after a cut, checking size and sha256 before the atomic rename.
// Free disk space is checked first; network failures are retried with
// backoff; two pulls of one file (threads or processes) share one transfer.
// ollama: references and paths are errors (nothing to pull).
Result<PullResult> pull_model(std::string_view ref, const StoreOptions& options = StoreOptions::from_env(),
                              const PullEvents& events = {}, const PullOptions& pull_options = {},
                              std::stop_token stop = {});

}  // namespace codey
