// Model references and where models live by default: parsing hf.co/...,
// OWNER/REPO/FILE.gguf and ollama:NAME:TAG, quantization labels in file names,
// and StoreOptions from the environment.
#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "codey/store.h"
#include "store/internal.h"

namespace codey {
namespace {

namespace fs = std::filesystem;

std::string env_or(const char* name, std::string dflt) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : std::move(dflt);
}

std::string home_dir() { return env_or("HOME", "/"); }

using store::lower;

bool istarts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && lower(s.substr(0, prefix.size())) == prefix;
}

bool iends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && lower(s.substr(s.size() - suffix.size())) == suffix;
}

// Hub owner and repo names: letters, digits, '-', '_', '.', not starting
// with '-' or '.', no "..", at most 96 characters.
bool valid_repo_part(std::string_view s) {
  if (s.empty() || s.size() > 96 || s.front() == '-' || s.front() == '.') return false;
  if (s.find("..") != std::string_view::npos) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

bool valid_tag(std::string_view s) {
  return !s.empty() && s.size() <= 128 && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

// A quantization token: F16 / BF16 / F32, (I)Q<digit>[_PART...], TQ<d>_0, MXFP4[_MOE].
bool is_quant_token(std::string_view t) {
  const std::string u = lower(t);
  if (u == "f16" || u == "bf16" || u == "f32" || u == "fp16" || u == "fp32") return true;
  if (u == "mxfp4" || u == "mxfp4_moe") return true;
  std::string_view s = u;
  if (s.starts_with("tq")) return s.size() == 5 && std::isdigit(static_cast<unsigned char>(s[2])) && s.substr(3) == "_0";
  if (s.starts_with("iq")) s.remove_prefix(1);
  if (s.size() < 2 || s[0] != 'q' || s[1] < '1' || s[1] > '8') return false;
  s.remove_prefix(2);
  while (!s.empty()) {  // "_k_m", "_0", "_0_4_4", "_k_xl"
    if (s[0] != '_' || s.size() < 2) return false;
    s.remove_prefix(1);
    size_t n = 0;
    while (n < s.size() && s[n] != '_') {
      if (!std::isalnum(static_cast<unsigned char>(s[n]))) return false;
      ++n;
    }
    if (n == 0 || n > 3) return false;
    s.remove_prefix(n);
  }
  return true;
}

}  // namespace

namespace store {
// A file path inside a repo: relative, segments without "." / ".." / empty,
// no backslash or control characters.
bool is_safe_repo_path(std::string_view s) {
  if (s.empty() || s.size() > 1024 || s.front() == '/') return false;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t end = std::min(s.find('/', start), s.size());
    const std::string_view seg = s.substr(start, end - start);
    if (seg.empty() || seg == "." || seg == "..") return false;
    start = end + 1;
  }
  return std::none_of(s.begin(), s.end(),
                      [](char c) { return c == '\\' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

}  // namespace store

StoreOptions StoreOptions::from_env() {
  StoreOptions o;
  const std::string home = home_dir();
  o.models_dir = env_or("CODEY_MODELS", home + "/.cache/codey/models");
  o.hf_endpoint = env_or("HF_ENDPOINT", "https://huggingface.co");
  while (o.hf_endpoint.size() > 1 && o.hf_endpoint.back() == '/') o.hf_endpoint.pop_back();
  const std::string hf_home = env_or("HF_HOME", home + "/.cache/huggingface");
  o.hf_token = env_or("HF_TOKEN", env_or("HUGGING_FACE_HUB_TOKEN", ""));
  if (o.hf_token.empty()) {  // `huggingface-cli login` / `hf auth login` keep it here
    std::ifstream in(env_or("HF_TOKEN_PATH", hf_home + "/token"));
    std::string t;
    if (in && std::getline(in, t)) {
      while (!t.empty() && std::isspace(static_cast<unsigned char>(t.back()))) t.pop_back();
      o.hf_token = t;
    }
  }
  o.hf_cache = env_or("HF_HUB_CACHE", env_or("HUGGINGFACE_HUB_CACHE", hf_home + "/hub"));
  if (const char* d = std::getenv("OLLAMA_MODELS"); d && *d) {
    o.ollama_dirs = {d};
  } else {
    o.ollama_dirs = {home + "/.ollama/models", "/usr/share/ollama/.ollama/models"};  // the user's, the Linux service's
  }
  o.lmstudio_dirs = {home + "/.lmstudio/models", home + "/.cache/lm-studio/models"};
  return o;
}

std::string ModelRef::str() const {
  switch (kind) {
    case RefKind::kPath: return path;
    case RefKind::kHub: return quant.empty() ? "hf.co/" + repo : "hf.co/" + repo + ":" + quant;
    case RefKind::kHubFile: return "hf.co/" + repo + "/" + file;
    case RefKind::kOllama: return "ollama:" + ollama_name + ":" + ollama_tag;
  }
  return path;
}

Result<ModelRef> parse_model_ref(std::string_view text) {
  ModelRef r;
  const std::string given(text);
  auto bad = [&](std::string_view what) {
    return make_error(ErrorCode::kInvalidArgument, "'{}' is not a valid model reference: {}", given, what);
  };
  if (istarts_with(text, "ollama:")) {
    std::string_view rest = text.substr(7);
    std::string_view name = rest, tag = "latest";
    // The tag follows the last ':' (a name has none; "hf.co/o/r:Q4_K_M" keeps its own).
    if (const auto colon = rest.rfind(':'); colon != std::string_view::npos) {
      name = rest.substr(0, colon);
      tag = rest.substr(colon + 1);
    }
    if (name.empty() || !store::is_safe_repo_path(name) || name.find(':') != std::string_view::npos)
      return bad("expected ollama:NAME[:TAG], e.g. ollama:qwen2.5-coder:7b");
    if (!valid_tag(tag)) return bad(fmt::format("the tag '{}' has characters a tag cannot have", tag));
    r.kind = RefKind::kOllama;
    r.ollama_name = lower(name);  // Ollama's names are case-insensitive
    r.ollama_tag = std::string(tag);
    return r;
  }
  std::string_view s = text;
  bool hub = false;
  for (std::string_view prefix : {"https://huggingface.co/", "http://huggingface.co/", "https://hf.co/",
                                  "http://hf.co/", "huggingface.co/", "hf.co/"}) {
    if (istarts_with(s, prefix)) {
      s.remove_prefix(prefix.size());
      hub = true;
      break;
    }
  }
  if (!hub) {
    // OWNER/REPO/FILE.gguf: relative, at least three segments, a .gguf file.
    const bool relative = !s.empty() && s.front() != '/' && s.front() != '.' && s.front() != '~';
    if (!relative || !iends_with(s, ".gguf") || std::count(s.begin(), s.end(), '/') < 2) {
      r.kind = RefKind::kPath;
      r.path = given;
      return r;
    }
  }
  while (!s.empty() && s.back() == '/') s.remove_suffix(1);
  const auto slash1 = s.find('/');
  if (slash1 == std::string_view::npos) return bad("expected hf.co/OWNER/REPO[:QUANT] or hf.co/OWNER/REPO/FILE.gguf");
  const std::string_view owner = s.substr(0, slash1);
  std::string_view rest = s.substr(slash1 + 1);
  const auto slash2 = rest.find('/');
  std::string_view repo = slash2 == std::string_view::npos ? rest : rest.substr(0, slash2);
  std::string_view file = slash2 == std::string_view::npos ? std::string_view() : rest.substr(slash2 + 1);
  std::string_view quant;
  if (file.empty()) {
    if (const auto colon = repo.find(':'); colon != std::string_view::npos) {
      quant = repo.substr(colon + 1);
      repo = repo.substr(0, colon);
      if (!valid_tag(quant)) return bad(fmt::format("the quantization '{}' has characters a tag cannot have", quant));
    }
  } else {
    // Hub web URLs: .../blob/main/FILE, .../resolve/main/FILE.
    for (std::string_view p : {"blob/main/", "resolve/main/"})
      if (file.starts_with(p)) file.remove_prefix(p.size());
    if (!store::is_safe_repo_path(file)) return bad(fmt::format("'{}' is not a file path inside a repository", file));
    if (!iends_with(file, ".gguf")) return bad(fmt::format("'{}' is not a .gguf file (codey reads GGUF models)", file));
  }
  if (!valid_repo_part(owner)) return bad(fmt::format("'{}' is not a valid owner name", owner));
  if (!valid_repo_part(repo)) return bad(fmt::format("'{}' is not a valid repository name", repo));
  r.repo = fmt::format("{}/{}", owner, repo);
  if (!file.empty()) {
    r.kind = RefKind::kHubFile;
    r.file = std::string(file);
  } else {
    r.kind = RefKind::kHub;
    r.quant = lower(quant) == "latest" ? std::string() : std::string(quant);
  }
  return r;
}

std::string quant_label(std::string_view file_name) {
  std::string_view s = file_name;
  if (const auto slash = s.rfind('/'); slash != std::string_view::npos) s.remove_prefix(slash + 1);
  if (!iends_with(s, ".gguf")) return {};
  s.remove_suffix(5);
  // Drop a split suffix "-00001-of-00003".
  if (const auto of = s.rfind("-of-"); of != std::string_view::npos && of >= 6 && s[of - 6] == '-') {
    const std::string_view tail = s.substr(of + 4), head = s.substr(of - 5, 5);
    auto digits = [](std::string_view d) {
      return !d.empty() && std::all_of(d.begin(), d.end(), [](char c) { return c >= '0' && c <= '9'; });
    };
    if (digits(tail) && digits(head)) s = s.substr(0, of - 6);
  }
  // The last or second-to-last '-'/'.'-separated token that is a
  // quantization ("model-Q4_K_M", "model.Q4_K_M", "model-Q4_K_M-imat"), with
  // a preceding "UD" (unsloth's dynamic quants) kept.
  struct Tok {
    size_t start, end;
  };
  std::vector<Tok> toks;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == '-' || s[i] == '.') {
      toks.push_back({start, i});
      start = i + 1;
    }
  }
  const size_t n = toks.size();
  for (size_t k = n; k-- > 0 && k + 2 >= n;) {
    const std::string_view tok = s.substr(toks[k].start, toks[k].end - toks[k].start);
    if (!is_quant_token(tok)) continue;
    if (k > 0 && lower(s.substr(toks[k - 1].start, toks[k - 1].end - toks[k - 1].start)) == "ud")
      return std::string(s.substr(toks[k - 1].start, toks[k].end - toks[k - 1].start));
    return std::string(tok);
  }
  return {};
}

double quant_bits(std::string_view label) {
  std::string u = lower(label);
  if (u.starts_with("ud-")) u = u.substr(3);
  struct Bits {
    std::string_view name;
    double bits;
  };
  // Nominal bits per weight of the whole-model mixes (llama-quantize's
  // figures, rounded); variants with a larger output/embedding ("_L", "_XL")
  // a little above their base.
  static constexpr Bits kBits[] = {
      {"iq1_s", 1.56},   {"iq1_m", 1.75},   {"tq1_0", 1.69},  {"iq2_xxs", 2.06}, {"tq2_0", 2.06},
      {"iq2_xs", 2.31},  {"iq2_s", 2.5},    {"iq2_m", 2.7},   {"q2_k_s", 2.9},   {"q2_k", 3.0},
      {"q2_k_l", 3.2},   {"q2_k_xl", 3.3},  {"iq3_xxs", 3.06}, {"iq3_xs", 3.3},  {"iq3_s", 3.44},
      {"iq3_m", 3.66},   {"q3_k_s", 3.5},   {"q3_k_m", 3.9},  {"q3_k_l", 4.27},  {"q3_k_xl", 4.4},
      {"iq4_xs", 4.25},  {"mxfp4", 4.25},   {"mxfp4_moe", 4.25}, {"iq4_nl", 4.5}, {"q4_0", 4.5},
      {"q4_k_s", 4.58},  {"q4_k_m", 4.85},  {"q4_k_l", 5.0},  {"q4_k_xl", 5.0},  {"q4_1", 5.0},
      {"q5_0", 5.5},     {"q5_k_s", 5.54},  {"q5_k_m", 5.69}, {"q5_k_l", 5.9},   {"q5_k_xl", 5.9},
      {"q5_1", 6.0},     {"q6_k", 6.56},    {"q6_k_l", 6.7},  {"q6_k_xl", 6.8},  {"q8_0", 8.5},
      {"q8_k_xl", 9.0},  {"f16", 16},       {"fp16", 16},     {"bf16", 16},      {"f32", 32},
      {"fp32", 32},
  };
  for (const auto& b : kBits)
    if (b.name == u) return b.bits;
  return 0;
}

std::string_view model_source_name(ModelSource s) {
  switch (s) {
    case ModelSource::kFile: return "file";
    case ModelSource::kCodey: return "codey";
    case ModelSource::kHuggingFaceCache: return "hf-cache";
    case ModelSource::kLmStudio: return "lmstudio";
    case ModelSource::kOllama: return "ollama";
  }
  return "?";
}

std::string LocalModel::serve_name() const {
  if (source == ModelSource::kFile) return fs::path(path).stem().string();
  if (source == ModelSource::kOllama && ref.starts_with("ollama:")) return ref.substr(7);  // as Ollama clients name it
  return ref;
}

}  // namespace codey
