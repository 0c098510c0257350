// `codey pull`: a Hub reference to files in codey's store. Lists the repo,
// picks the model (quant, file or default), checks free space, downloads
// every part (download.cc), records them in the repo's manifest.
#include <sys/statvfs.h>

#include <filesystem>
#include <limits>

#include "store/download.h"
#include "store/hub.h"
#include "store/internal.h"

namespace codey {
namespace {

namespace fs = std::filesystem;

Result<uint64_t> statvfs_free(const std::string& dir) {
  struct statvfs st{};
  if (::statvfs(dir.c_str(), &st) != 0)
    return make_error(ErrorCode::kIo, "cannot read the free space of {}: {}", dir, std::strerror(errno));
  return static_cast<uint64_t>(st.f_bavail) * static_cast<uint64_t>(st.f_frsize);
}

uint64_t size_or_zero(const std::string& p) {
  std::error_code ec;
  const auto n = fs::file_size(p, ec);
  return ec ? 0 : n;
}

}  // namespace

Result<PullResult> pull_model(std::string_view text, const StoreOptions& o, const PullEvents& ev,
                              const PullOptions& po, std::stop_token stop) {
  auto ref = parse_model_ref(text);
  if (!ref) return std::unexpected(std::move(ref.error()));
  if (ref->kind == RefKind::kOllama)
    return make_error(ErrorCode::kInvalidArgument, "{} is read from Ollama's store; fetch it with `ollama pull {}` "
                      "(codey pulls from Hugging Face: hf.co/OWNER/REPO:QUANT)", ref->str(), ref->str().substr(7));
  if (ref->kind == RefKind::kPath)
    return make_error(ErrorCode::kInvalidArgument, "'{}' is not a Hugging Face model: codey pull takes "
                      "hf.co/OWNER/REPO[:QUANT] or hf.co/OWNER/REPO/FILE.gguf, e.g. "
                      "hf.co/Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF:Q4_K_M", text);
  auto status = [&](std::string s) {
    if (ev.on_status) ev.on_status(s);
  };
  const std::string where = "hf.co/" + ref->repo;
  store::Hub hub(o);
  status(fmt::format("listing the files of {}", where));
  auto listed = hub.list(ref->repo, stop);
  if (!listed) {
    // Offline with the model on disk: usable, but say the Hub was not asked.
    if (listed.error().code == ErrorCode::kIo) {
      auto local = resolve_model(ref->str(), o);
      if (local && local->source == ModelSource::kCodey) {
        PullResult r;
        r.model = std::move(*local);
        r.chosen = fmt::format("already pulled; the Hub could not be reached to check for a newer version ({})",
                               listed.error().message);
        return r;
      }
    }
    return std::unexpected(std::move(listed.error()));
  }
  std::vector<std::string> paths;
  for (const auto& f : *listed) paths.push_back(f.path);
  const auto groups = store::group_gguf_files(paths);
  auto choice = store::choose_group(groups, *ref, where);
  if (!choice) return std::unexpected(std::move(choice.error()));
  const store::FileGroup& g = *choice->group;
  if (!g.complete())
    return make_error(ErrorCode::kCorrupt, "{} lists {} but not its part {}: the split model is incomplete on the Hub",
                      where, g.files.front(), g.missing.front());
  status(fmt::format("{}: {}", where, choice->why));

  const std::string dir = store::repo_dir(o, ref->repo);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return make_error(ErrorCode::kIo, "cannot create {}: {} (set CODEY_MODELS to a folder you can write)", dir, ec.message());

  // What is already here and up to date (same size and sha256 as pulled).
  const nlohmann::json manifest = store::read_manifest(dir);
  struct Todo {
    const store::HubFile* file;
    std::string dest;
    bool done;
  };
  std::vector<Todo> todo;
  uint64_t need = 0;
  for (const auto& rel : g.files) {
    const store::HubFile* hf = nullptr;
    for (const auto& f : *listed)
      if (f.path == rel) hf = &f;
    CODEY_ASSERT(hf != nullptr);
    // Nothing is downloaded that cannot be checked: the size bounds the
    // transfer and is compared before the rename.
    if (hf->size == 0)
      return make_error(ErrorCode::kCorrupt, "{} lists {} without a size: codey downloads only files it can check",
                        where, rel);
    const std::string dest = dir + "/" + rel;
    const auto entry = store::manifest_file(manifest, rel);
    const bool there = fs::exists(dest, ec) && size_or_zero(dest) == hf->size;
    bool done = there && store::json_u64(entry, "size") == hf->size && store::json_str(entry, "sha256") == hf->sha256;
    if (there && !done && !hf->sha256.empty()) {
      // A file of the listed size the manifest does not vouch for (edited,
      // or the manifest is gone): hashing it is cheaper than downloading it.
      status(fmt::format("checking {}", rel));
      auto sha = sha256_file(dest, std::numeric_limits<uint64_t>::max(), {}, stop);
      done = sha && *sha == hf->sha256;
    }
    if (!done) need += hf->size - std::min(hf->size, size_or_zero(dest + std::string(store::kPartialSuffix)));
    todo.push_back({hf, dest, done});
  }
  if (need > 0) {
    constexpr uint64_t kMargin = 64ull << 20;
    auto free = po.free_bytes ? po.free_bytes(dir) : statvfs_free(dir);
    if (!free) return std::unexpected(std::move(free.error()));
    if (need + kMargin > *free)
      return make_error(ErrorCode::kResourceExhausted,
                        "not enough disk space for {} in {}: it needs {} more, {} are free (free some space, or set "
                        "CODEY_MODELS to a folder on a bigger disk)", where, tilde_path(dir), format_bytes(need),
                        format_bytes(*free));
  }

  PullResult result;
  result.chosen = choice->why;
  const int count = static_cast<int>(todo.size());
  for (int i = 0; i < count; ++i) {
    const Todo& t = todo[static_cast<size_t>(i)];
    PullProgress p;
    p.file = t.file->path;
    p.digest = t.file->sha256.empty() ? "" : "sha256:" + t.file->sha256;
    p.total = t.file->size;
    p.index = i;
    p.count = count;
    if (t.done) {
      p.completed = p.total;
      if (ev.on_progress) ev.on_progress(p);
      continue;
    }
    store::DownloadSpec spec;
    spec.hub = &hub;
    spec.repo = ref->repo;
    spec.file = t.file->path;
    spec.label = fmt::format("{}/{}", where, t.file->path);
    spec.url = hub.file_url(ref->repo, t.file->path);
    spec.headers = hub.headers();
    spec.dest = t.dest;
    spec.size = t.file->size;
    spec.sha256 = t.file->sha256;
    store::DownloadHooks hooks;
    hooks.progress = [&](uint64_t done, uint64_t total) {
      if (!ev.on_progress) return;
      PullProgress q = p;
      q.completed = done;
      q.total = total;
      ev.on_progress(q);
    };
    hooks.status = [&](std::string_view s) { status(std::string(s)); };
    auto st = store::download_file(spec, po, hooks, stop);
    if (!st) return std::unexpected(std::move(st.error()));
    result.downloaded = true;
    p.completed = p.total;
    if (ev.on_progress) ev.on_progress(p);
  }

  {  // Record what was pulled.
    auto lock = store::FileLock::acquire(dir + "/" + std::string(store::kLockName));
    if (!lock) return std::unexpected(std::move(lock.error()));
    nlohmann::json m = store::read_manifest(dir);
    m["repo"] = ref->repo;
    for (const auto& t : todo) {
      auto& e = m["files"][t.file->path];
      if (!e.is_object()) e = nlohmann::json::object();
      if (!t.done || !e.contains("pulled")) e["pulled"] = store::now_utc_iso8601();
      e["size"] = t.file->size;
      e["sha256"] = t.file->sha256;
    }
    if (ref->kind == RefKind::kHub && ref->quant.empty()) m["default"] = g.files.front();
    // The name it was pulled under: what `codey models` and the server call it.
    m["files"][g.files.front()]["ref"] = ref->str();
    CODEY_TRY(store::write_manifest(dir, m));
  }
  auto local = resolve_model(ref->str(), o);
  if (!local) return std::unexpected(std::move(local.error()));
  result.model = std::move(*local);
  return result;
}

}  // namespace codey
