// Models on disk: codey's store (CODEY_MODELS), Ollama's store (manifests ->
// blobs), LM Studio's folders and the Hugging Face cache (snapshots -> blobs),
// all read in place. Resolving a reference, listing, removing.
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include <fmt/ranges.h>

#include "codey/gguf.h"
#include "store/internal.h"

namespace codey {
namespace {

namespace fs = std::filesystem;
using store::FileGroup;
using store::iequals;
using store::lower;

constexpr std::string_view kOllamaModelLayer = "application/vnd.ollama.image.model";
constexpr std::string_view kOllamaRegistry = "registry.ollama.ai";

std::time_t mtime_of(const std::string& path) {
  struct stat st{};
  return ::stat(path.c_str(), &st) == 0 ? st.st_mtime : 0;
}

uint64_t size_of(const std::string& path) {
  std::error_code ec;
  const auto n = fs::file_size(path, ec);
  return ec ? 0 : n;
}

std::string expand_home(std::string_view p) {
  if (p == "~" || p.starts_with("~/")) {
    const char* home = std::getenv("HOME");
    if (home && *home) return std::string(home) + std::string(p.substr(1));
  }
  return std::string(p);
}

bool is_hex64(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
}

// The files of one repo in one place (codey's store, the HF cache's snapshot,
// an LM Studio folder), relative to `root`.
struct RepoFiles {
  ModelSource source = ModelSource::kCodey;
  std::string repo;  // OWNER/REPO as the place spells it
  std::string root;
  std::vector<std::string> rel;
};

// The HF cache snapshot folder of a repo: the revision refs/main names, else
// the most recently changed snapshot.
std::optional<std::string> hf_snapshot(const std::string& repo_cache_dir) {
  std::error_code ec;
  std::ifstream ref(repo_cache_dir + "/refs/main");
  std::string rev;
  if (ref && std::getline(ref, rev)) {
    while (!rev.empty() && std::isspace(static_cast<unsigned char>(rev.back()))) rev.pop_back();
    const std::string dir = repo_cache_dir + "/snapshots/" + rev;
    if (!rev.empty() && rev.find('/') == std::string::npos && fs::is_directory(dir, ec)) return dir;
  }
  std::optional<std::string> newest;
  fs::file_time_type newest_t{};
  for (const auto& snap : store::subdirs(repo_cache_dir + "/snapshots")) {
    const auto t = fs::last_write_time(snap, ec);
    if (ec) continue;
    if (!newest || t > newest_t) {
      newest = snap;
      newest_t = t;
    }
  }
  return newest;
}

// Every place that may hold files of `repo`, codey's store first.
std::vector<RepoFiles> repo_files(const StoreOptions& o, std::string_view repo, std::vector<std::string>* warnings) {
  std::vector<RepoFiles> out;
  const auto slash = repo.find('/');
  const std::string owner(repo.substr(0, slash)), name(repo.substr(slash + 1));
  // The repo as each place spells it (folders found ignoring case).
  auto spelled = [](const fs::path& owner_dir, const fs::path& repo_dir) {
    return owner_dir.filename().string() + "/" + repo_dir.filename().string();
  };
  {
    RepoFiles r;
    r.source = ModelSource::kCodey;
    r.root = store::repo_dir(o, repo);
    std::error_code ec;
    r.repo = fs::is_directory(r.root, ec) ? spelled(fs::path(r.root).parent_path(), r.root) : std::string(repo);
    r.rel = store::gguf_files_under(r.root, 8, warnings);
    out.push_back(std::move(r));
  }
  if (!o.hf_cache.empty()) {
    if (auto dir = store::find_entry_icase(o.hf_cache, "models--" + owner + "--" + name))
      if (auto snap = hf_snapshot(*dir)) {
        RepoFiles r;
        r.source = ModelSource::kHuggingFaceCache;
        const std::string d = fs::path(*dir).filename().string();  // models--OWNER--REPO
        r.repo = d.substr(8, owner.size()) + "/" + d.substr(10 + owner.size());
        r.root = *snap;
        r.rel = store::gguf_files_under(r.root, 8, warnings);
        out.push_back(std::move(r));
      }
  }
  for (const auto& base : o.lmstudio_dirs) {
    auto pub = store::find_entry_icase(base, owner);
    if (!pub) continue;
    auto dir = store::find_entry_icase(*pub, name);
    if (!dir) continue;
    RepoFiles r;
    r.source = ModelSource::kLmStudio;
    r.repo = spelled(*pub, *dir);
    r.root = *dir;
    r.rel = store::gguf_files_under(r.root, 2, warnings);
    out.push_back(std::move(r));
  }
  return out;
}

// A model from a group of files in one place.
LocalModel model_of(const RepoFiles& rf, const FileGroup& g, const std::vector<FileGroup>& all) {
  LocalModel m;
  m.source = rf.source;
  m.repo = rf.repo;
  m.quant = g.label;
  for (const auto& f : g.files) m.files.push_back(rf.root + "/" + f);
  m.path = m.files.front();
  for (const auto& f : m.files) m.size += size_of(f);
  m.modified = mtime_of(m.path);
  int same_label = 0;
  for (const auto& o : all) same_label += !g.label.empty() && iequals(o.label, g.label);
  m.ref = same_label == 1 ? fmt::format("hf.co/{}:{}", rf.repo, g.label) : fmt::format("hf.co/{}/{}", rf.repo, g.files.front());
  if (rf.source == ModelSource::kHuggingFaceCache) {  // blobs are named by their sha256
    std::error_code ec;
    const auto target = fs::read_symlink(m.path, ec);
    if (!ec && is_hex64(target.filename().string())) m.sha256 = target.filename().string();
  }
  return m;
}

// ---------------------------------------------------------------- Ollama --

struct OllamaName {
  std::string host, ns, model, tag;
  std::string display() const {  // as `ollama list` shows it
    if (host == kOllamaRegistry) return (ns == "library" ? model : ns + "/" + model) + ":" + tag;
    return host + "/" + ns + "/" + model + ":" + tag;
  }
};

// The model layer of an Ollama manifest: its blob and size.
Result<LocalModel> ollama_model(const std::string& root, const std::string& manifest_path, const OllamaName& n) {
  auto j = store::read_json_file(manifest_path, size_t(1) << 20);
  if (!j.is_object() || !j.contains("layers") || !j["layers"].is_array())
    return make_error(ErrorCode::kCorrupt, "{} is not an Ollama manifest", manifest_path);
  for (const auto& layer : j["layers"]) {
    if (!layer.is_object() || store::json_str(layer, "mediaType") != kOllamaModelLayer) continue;
    const std::string digest = store::json_str(layer, "digest");
    if (!digest.starts_with("sha256:") || !is_hex64(digest.substr(7)))
      return make_error(ErrorCode::kCorrupt, "{}: the model layer's digest '{}' is not sha256:HEX", manifest_path, digest);
    const std::string hex = digest.substr(7);
    std::string blob = root + "/blobs/sha256-" + hex;
    std::error_code ec;
    if (!fs::exists(blob, ec)) blob = root + "/blobs/sha256:" + hex;  // older Ollama
    if (!fs::exists(blob, ec))
      return make_error(ErrorCode::kNotFound, "ollama:{}: its blob {} is missing (ollama pull {} fetches it again)",
                        n.display(), root + "/blobs/sha256-" + hex, n.display());
    LocalModel m;
    m.source = ModelSource::kOllama;
    m.ref = "ollama:" + n.display();
    m.path = blob;
    m.files = {blob};
    m.size = size_of(blob);
    m.sha256 = hex;
    m.modified = mtime_of(manifest_path);
    if (n.host == "hf.co" || n.host == "huggingface.co") {
      m.repo = n.ns + "/" + n.model;
      if (quant_bits(n.tag) > 0) m.quant = n.tag;
    }
    return m;
  }
  return make_error(ErrorCode::kUnsupported, "ollama:{} has no GGUF model layer (it may be an embedding or a "
                    "safetensors import codey cannot read)", n.display());
}

std::vector<LocalModel> ollama_models(const StoreOptions& o, std::vector<std::string>& warnings) {
  std::vector<LocalModel> out;
  for (const auto& root : o.ollama_dirs) {
    const std::string manifests = root + "/manifests";
    std::error_code ec;
    if (!fs::is_directory(manifests, ec)) continue;
    fs::recursive_directory_iterator it(manifests, fs::directory_options::skip_permission_denied, ec);
    for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (it.depth() != 3 || !it->is_regular_file(ec)) continue;
      const fs::path rel = fs::relative(it->path(), manifests, ec);
      std::vector<std::string> parts;
      for (const auto& p : rel) parts.push_back(p.string());
      if (parts.size() != 4) continue;
      OllamaName n{parts[0], parts[1], parts[2], parts[3]};
      auto m = ollama_model(root, it->path().string(), n);
      if (m) out.push_back(std::move(*m));
      else if (m.error().code != ErrorCode::kUnsupported) warnings.push_back(m.error().message);
    }
    if (ec) warnings.push_back(fmt::format("cannot read {}: {}", manifests, ec.message()));
  }
  return out;
}

Result<LocalModel> resolve_ollama(const ModelRef& ref, const StoreOptions& o) {
  std::vector<std::string> parts;
  for (const auto& p : fs::path(ref.ollama_name)) parts.push_back(p.string());
  OllamaName n;
  if (parts.size() == 1) n = {std::string(kOllamaRegistry), "library", parts[0], ref.ollama_tag};
  else if (parts.size() == 2) n = {std::string(kOllamaRegistry), parts[0], parts[1], ref.ollama_tag};
  else if (parts.size() == 3) n = {parts[0], parts[1], parts[2], ref.ollama_tag};
  else return make_error(ErrorCode::kInvalidArgument, "'{}' is not an Ollama model name", ref.str());
  std::vector<std::string> looked;
  for (const auto& root : o.ollama_dirs) {
    std::optional<std::string> dir = root + "/manifests";
    for (const auto& part : {n.host, n.ns, n.model, n.tag}) {
      std::error_code ec;
      if (!fs::is_directory(*dir, ec)) {
        dir.reset();
        break;
      }
      dir = store::find_entry_icase(*dir, part);
      if (!dir) break;
    }
    looked.push_back(tilde_path(root));
    if (dir && fs::is_regular_file(*dir)) {
      // The name as Ollama spells it on disk.
      std::vector<std::string> found;
      for (const auto& p : fs::relative(*dir, root + "/manifests")) found.push_back(p.string());
      if (found.size() == 4) n = {found[0], found[1], found[2], found[3]};
      return ollama_model(root, *dir, n);
    }
  }
  return make_error(ErrorCode::kNotFound,
                    "{} is not in Ollama's store ({}): `ollama pull {}` fetches it; `codey models` lists the models "
                    "codey can see",
                    ref.str(), fmt::join(looked, ", "), n.display());
}

// ------------------------------------------------------------- resolving --

// The model `ref` names in one place, or nullopt; an incomplete split model
// in codey's store is an error.
Result<std::optional<LocalModel>> find_in(const RepoFiles& rf, const ModelRef& ref, const StoreOptions& o) {
  const auto groups = store::group_gguf_files(rf.rel);
  if (groups.empty()) return std::optional<LocalModel>();
  ModelRef r = ref;
  const FileGroup* pick = nullptr;
  if (rf.source == ModelSource::kCodey && r.kind == RefKind::kHub && r.quant.empty()) {
    // hf.co/OWNER/REPO names what `codey pull hf.co/OWNER/REPO` chose.
    const auto manifest = store::read_manifest(rf.root);
    const std::string dflt = store::json_str(manifest, "default");
    for (const auto& g : groups)
      if (!dflt.empty() && g.files.front() == dflt) pick = &g;
    if (!pick) return std::optional<LocalModel>();
  } else {
    auto c = store::choose_group(groups, r, ref.str());
    if (!c) return std::optional<LocalModel>();
    pick = c->group;
  }
  if (!pick->complete()) {
    if (rf.source != ModelSource::kCodey) return std::optional<LocalModel>();
    return make_error(ErrorCode::kNotFound, "{} is incomplete: {} is missing; run `codey pull {}` to fetch it",
                      ref.str(), rf.root + "/" + pick->missing.front(), ref.str());
  }
  LocalModel m = model_of(rf, *pick, groups);
  if (rf.source == ModelSource::kCodey) {
    const auto manifest = store::read_manifest(rf.root);
    if (const std::string repo = store::json_str(manifest, "repo"); !repo.empty()) m.repo = repo;
    if (const std::string named = store::json_str(store::manifest_file(manifest, pick->files.front()), "ref");
        !named.empty())
      m.ref = named;
    for (size_t i = 0; i < pick->files.size(); ++i) {
      const auto entry = store::manifest_file(manifest, pick->files[i]);
      if (i == 0) m.sha256 = store::json_str(entry, "sha256");
      const uint64_t want = store::json_u64(entry, "size");
      const uint64_t have = size_of(m.files[i]);
      if (want && want != have)
        return make_error(ErrorCode::kCorrupt, "{} is damaged: {} has {} bytes, {} were pulled; run `codey pull {}` "
                          "to fetch it again", ref.str(), m.files[i], have, want, ref.str());
    }
  }
  (void)o;
  return std::optional<LocalModel>(std::move(m));
}

Result<LocalModel> resolve_file(const std::string& path) {
  LocalModel m;
  m.source = ModelSource::kFile;
  std::error_code ec;
  m.path = fs::absolute(path, ec).lexically_normal().string();
  m.ref = m.path;
  if (auto sn = parse_split_name(m.path)) {
    for (uint32_t i = 1; i <= sn->count; ++i) m.files.push_back(split_name(sn->prefix, i, sn->count));
  } else {
    m.files = {m.path};
  }
  for (const auto& f : m.files) m.size += size_of(f);
  m.quant = quant_label(m.path);
  m.modified = mtime_of(m.path);
  return m;
}

}  // namespace

Result<LocalModel> resolve_model(std::string_view text, const StoreOptions& o) {
  const std::string expanded = expand_home(text);
  std::error_code ec;
  if (!expanded.empty() && fs::is_regular_file(expanded, ec)) return resolve_file(expanded);
  auto ref = parse_model_ref(text);
  if (!ref) return std::unexpected(std::move(ref.error()));
  switch (ref->kind) {
    case RefKind::kPath: {
      if (fs::is_directory(expanded, ec))
        return make_error(ErrorCode::kInvalidArgument, "{} is a folder, not a GGUF model file", expanded);
      std::string hint;
      if (auto as_hub = parse_model_ref("hf.co/" + std::string(text)); as_hub && as_hub->kind == RefKind::kHub &&
                                                                    text.find('/') != std::string_view::npos)
        hint = fmt::format(" (a Hugging Face model is named hf.co/{})", text);
      return make_error(ErrorCode::kNotFound, "cannot open {}: model file not found{}", expanded, hint);
    }
    case RefKind::kOllama: return resolve_ollama(*ref, o);
    case RefKind::kHub:
    case RefKind::kHubFile: break;
  }
  std::vector<std::string> warnings;
  const auto places = repo_files(o, ref->repo, &warnings);
  for (const auto& rf : places) {
    auto found = find_in(rf, *ref, o);
    if (!found) return std::unexpected(std::move(found.error()));
    if (*found) return std::move(**found);
  }
  if (ref->kind == RefKind::kHub) {  // Ollama's own pulls of hf.co models: hf.co/OWNER/REPO/QUANT
    ModelRef oref;
    oref.kind = RefKind::kOllama;
    oref.ollama_name = lower("hf.co/" + ref->repo);
    oref.ollama_tag = ref->quant.empty() ? "latest" : ref->quant;
    if (auto m = resolve_ollama(oref, o)) return m;
  }
  std::string also;
  const auto groups = store::group_gguf_files(places.front().rel);
  if (!groups.empty())
    also = fmt::format(" (pulled from this repo: {}; e.g. --model hf.co/{}:{})", store::describe_groups(groups),
                       ref->repo, groups.front().label.empty() ? groups.front().files.front() : groups.front().label);
  return make_error(ErrorCode::kNotFound, "{} is not pulled: run `codey pull {}`{}", ref->str(), ref->str(), also);
}

Result<std::string> resolve_model_path(std::string_view ref, const StoreOptions& o) {
  auto m = resolve_model(ref, o);
  if (!m) return std::unexpected(std::move(m.error()));
  return m->path;
}

ModelList list_models(const StoreOptions& o, bool read_headers) {
  ModelList list;
  auto add_repo = [&](RepoFiles rf) {
    const auto groups = store::group_gguf_files(rf.rel);
    nlohmann::json manifest;
    if (rf.source == ModelSource::kCodey) {
      manifest = store::read_manifest(rf.root);
      if (const std::string repo = store::json_str(manifest, "repo"); !repo.empty()) rf.repo = repo;
    }
    for (const auto& g : groups) {
      LocalModel m = model_of(rf, g, groups);
      if (!g.complete()) m.error = fmt::format("incomplete: {} is missing", g.missing.front());
      if (rf.source == ModelSource::kCodey) {
        const auto entry = store::manifest_file(manifest, g.files.front());
        m.sha256 = store::json_str(entry, "sha256");
        if (const std::string named = store::json_str(entry, "ref"); !named.empty()) m.ref = named;
      }
      list.models.push_back(std::move(m));
    }
  };
  // codey's store: hf.co/OWNER/REPO.
  for (const auto& owner : store::subdirs(o.models_dir + "/hf.co"))
    for (const auto& repo : store::subdirs(owner)) {
      RepoFiles rf;
      rf.source = ModelSource::kCodey;
      rf.repo = fs::path(owner).filename().string() + "/" + fs::path(repo).filename().string();
      rf.root = repo;
      rf.rel = store::gguf_files_under(rf.root, 8, &list.warnings);
      add_repo(rf);
      for (const auto& p : store::files_ending_in(rf.root, store::kPartialSuffix)) {
        PartialDownload d;
        d.path = p;
        d.size = size_of(p);
        const std::string rel = fs::path(p).lexically_relative(rf.root).string();
        d.ref = fmt::format("hf.co/{}/{}", rf.repo, rel.substr(0, rel.size() - store::kPartialSuffix.size()));
        list.partials.push_back(std::move(d));
      }
    }
  // The Hugging Face cache: models--OWNER--REPO.
  if (!o.hf_cache.empty())
    for (const auto& dir : store::subdirs(o.hf_cache)) {
      const std::string name = fs::path(dir).filename().string();
      if (!name.starts_with("models--")) continue;
      const auto sep = name.find("--", 8);
      if (sep == std::string::npos) continue;
      auto snap = hf_snapshot(dir);
      if (!snap) continue;
      RepoFiles rf;
      rf.source = ModelSource::kHuggingFaceCache;
      rf.repo = name.substr(8, sep - 8) + "/" + name.substr(sep + 2);
      rf.root = *snap;
      rf.rel = store::gguf_files_under(rf.root, 8, &list.warnings);
      add_repo(rf);
    }
  // LM Studio: PUBLISHER/REPO/FILE.gguf.
  for (const auto& base : o.lmstudio_dirs)
    for (const auto& pub : store::subdirs(base))
      for (const auto& repo : store::subdirs(pub)) {
        RepoFiles rf;
        rf.source = ModelSource::kLmStudio;
        rf.repo = fs::path(pub).filename().string() + "/" + fs::path(repo).filename().string();
        rf.root = repo;
        rf.rel = store::gguf_files_under(rf.root, 2, &list.warnings);
        add_repo(rf);
      }
  auto ollama = ollama_models(o, list.warnings);
  for (auto& m : ollama) list.models.push_back(std::move(m));

  if (read_headers)
    for (auto& m : list.models) {
      if (!m.error.empty()) continue;
      auto f = GgufFile::open(m.path);
      if (!f) {
        m.error = f.error().message;
        continue;
      }
      auto s = summarize(*f);
      if (!s) {
        m.error = s.error().message;
        continue;
      }
      m.architecture = s->architecture;
      m.n_params = s->n_params;
      if (m.quant.empty() && s->file_type) m.quant = std::string(file_type_name(s->file_type));
    }
  std::stable_sort(list.models.begin(), list.models.end(), [](const LocalModel& a, const LocalModel& b) {
    if (a.source != b.source) return a.source < b.source;
    return lower(a.ref) < lower(b.ref);
  });
  return list;
}

Result<std::vector<std::string>> remove_model(std::string_view text, const StoreOptions& o) {
  auto ref = parse_model_ref(text);
  if (!ref) return std::unexpected(std::move(ref.error()));
  if (ref->kind == RefKind::kOllama)
    return make_error(ErrorCode::kInvalidArgument, "{} is Ollama's: remove it with `ollama rm {}`", ref->str(),
                      ref->str().substr(7));
  if (ref->kind == RefKind::kPath)
    return make_error(ErrorCode::kInvalidArgument,
                      "codey rm removes pulled models (hf.co/OWNER/REPO:QUANT); '{}' is a file codey did not pull",
                      text);
  const std::string dir = store::repo_dir(o, ref->repo);
  std::error_code ec;
  std::vector<std::string> removed;
  std::vector<std::string> warnings;
  RepoFiles rf;
  rf.source = ModelSource::kCodey;
  rf.repo = ref->repo;
  rf.root = dir;
  rf.rel = store::gguf_files_under(dir, 8, &warnings);
  const auto groups = store::group_gguf_files(rf.rel);
  std::vector<std::string> rels;  // repo paths to remove (and their partial downloads)
  nlohmann::json manifest = store::read_manifest(dir);
  if (ref->kind == RefKind::kHub && ref->quant.empty()) {
    const std::string dflt = store::json_str(manifest, "default");
    for (const auto& g : groups)
      if (!dflt.empty() && g.files.front() == dflt) rels = g.files;
  } else if (auto c = store::choose_group(groups, *ref, ref->str())) {
    rels = c->group->files;
  }
  // Nothing complete but a named file: its partial download may remain.
  if (rels.empty() && ref->kind == RefKind::kHubFile) rels = {ref->file};
  std::optional<store::FileLock> lock;
  if (fs::is_directory(dir, ec)) {
    auto l = store::FileLock::acquire(dir + "/" + std::string(store::kLockName));
    if (!l) return std::unexpected(std::move(l.error()));
    lock.emplace(std::move(*l));
  }
  bool any = false;
  for (const auto& rel : rels) {
    for (const std::string& p : {dir + "/" + rel, dir + "/" + rel + std::string(store::kPartialSuffix)}) {
      if (fs::remove(p, ec)) {
        removed.push_back(p);
        any = true;
      }
    }
    if (manifest["files"].is_object()) manifest["files"].erase(rel);
    if (store::json_str(manifest, "default") == rel) manifest.erase("default");
  }
  if (!any) {
    // Not in codey's store: say where it is instead, if anywhere.
    auto elsewhere = resolve_model(text, o);
    if (elsewhere && elsewhere->source == ModelSource::kHuggingFaceCache)
      return make_error(ErrorCode::kInvalidArgument,
                        "{} is in the Hugging Face cache ({}), which codey reads but does not manage: remove it with "
                        "`huggingface-cli delete-cache`", ref->str(), tilde_path(elsewhere->path));
    if (elsewhere && elsewhere->source == ModelSource::kLmStudio)
      return make_error(ErrorCode::kInvalidArgument,
                        "{} is LM Studio's ({}): remove it in LM Studio", ref->str(), tilde_path(elsewhere->path));
    if (elsewhere && elsewhere->source == ModelSource::kOllama)
      return make_error(ErrorCode::kInvalidArgument, "{} is Ollama's ({}): remove it with `ollama rm {}`", ref->str(),
                        elsewhere->ref, elsewhere->ref.substr(7));
    return make_error(ErrorCode::kNotFound, "{} is not pulled (pulled from hf.co/{}: {})", ref->str(), ref->repo,
                      store::describe_groups(groups));
  }
  if (fs::exists(dir + "/" + std::string(store::kManifestName), ec)) {
    auto st = store::write_manifest(dir, manifest);
    if (!st) return std::unexpected(std::move(st.error()));
  }
  // Empty folders left behind (a split model's subfolder, the repo, the owner).
  if (store::gguf_files_under(dir, 8, nullptr).empty()) {
    if (store::files_ending_in(dir, store::kPartialSuffix).empty()) {
      fs::remove_all(dir, ec);
      fs::remove(fs::path(dir).parent_path(), ec);  // only when empty
    }
  }
  return removed;
}

}  // namespace codey
