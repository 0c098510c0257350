// Which GGUF files make a model and which model a reference picks; codey's
// store layout, its manifest and file locks.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>

#include <fmt/ranges.h>

#include "codey/chat.h"
#include "codey/gguf.h"
#include "store/internal.h"

namespace codey::store {
namespace {

namespace fs = std::filesystem;

std::string base_name(std::string_view path) {
  const auto slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

bool is_model_gguf(std::string_view path) {
  const std::string name = lower(base_name(path));
  if (!name.ends_with(".gguf")) return false;
  // Vision projectors and importance matrices are GGUF files but not models.
  return name.find("mmproj") == std::string::npos && name.find("imatrix") == std::string::npos;
}

// Labels codey cannot run (refused at load): never chosen as a default.
bool runnable_label(std::string_view label) {
  std::string u = lower(label);
  if (u.starts_with("ud-")) u = u.substr(3);
  return !(u.starts_with("iq1") || u.starts_with("iq2") || u.starts_with("iq3") || u.starts_with("tq") ||
           u.starts_with("mxfp4"));
}

// The bit class a label names: 4 for Q4_K_M, IQ4_XS, UD-Q4_K_XL; 16 for F16.
int bit_class(std::string_view label) {
  std::string u = lower(label);
  if (u.starts_with("ud-")) u = u.substr(3);
  if (u.starts_with("i")) u = u.substr(1);
  if (u.size() >= 2 && u[0] == 'q' && u[1] >= '1' && u[1] <= '8') return u[1] - '0';
  if (u.find("16") != std::string::npos) return 16;
  if (u.find("32") != std::string::npos) return 32;
  if (u.starts_with("mxfp4")) return 4;
  return 0;
}

}  // namespace

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool iequals(std::string_view a, std::string_view b) { return a.size() == b.size() && lower(a) == lower(b); }

std::vector<FileGroup> group_gguf_files(const std::vector<std::string>& paths) {
  std::vector<FileGroup> out;
  // Split sets by (prefix, count), the parts present.
  std::map<std::pair<std::string, uint32_t>, std::map<uint32_t, std::string>> splits;
  for (const auto& p : paths) {
    if (!is_model_gguf(p)) continue;
    if (auto sn = parse_split_name(p)) {
      splits[{sn->prefix, sn->count}][sn->no] = p;
      continue;
    }
    FileGroup g;
    g.files = {p};
    g.label = quant_label(p);
    out.push_back(std::move(g));
  }
  for (const auto& [key, parts] : splits) {
    FileGroup g;
    for (uint32_t no = 1; no <= key.second; ++no) {
      auto it = parts.find(no);
      g.files.push_back(it != parts.end() ? it->second : split_name(key.first, no, key.second));
      if (it == parts.end()) g.missing.push_back(g.files.back());
    }
    g.label = quant_label(g.files.front());
    out.push_back(std::move(g));
  }
  std::sort(out.begin(), out.end(), [](const FileGroup& a, const FileGroup& b) {
    const double ba = quant_bits(a.label), bb = quant_bits(b.label);
    if (ba != bb) return ba < bb;
    return a.files.front() < b.files.front();
  });
  return out;
}

std::string describe_groups(const std::vector<FileGroup>& groups) {
  std::vector<std::string> names;
  for (const auto& g : groups) {
    std::string n = g.label.empty() ? base_name(g.files.front()) : g.label;
    if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(std::move(n));
  }
  if (names.empty()) return "none";
  return fmt::format("{}", fmt::join(names, ", "));
}

Result<Choice> choose_group(const std::vector<FileGroup>& groups, const ModelRef& ref, std::string_view where) {
  if (groups.empty())
    return make_error(ErrorCode::kNotFound, "{} has no GGUF model files (codey runs GGUF; look for a repo whose name ends in -GGUF)",
                      where);
  if (ref.kind == RefKind::kHubFile) {
    for (int pass = 0; pass < 2; ++pass)  // exact path first, then ignoring case
      for (const auto& g : groups)
        for (const auto& f : g.files)
          if (pass == 0 ? f == ref.file : iequals(f, ref.file)) return Choice{&g, "the file named"};
    std::vector<std::string> files;
    for (const auto& g : groups) files.push_back(g.files.front());
    return make_error(ErrorCode::kNotFound, "{} has no file '{}'; its GGUF files: {}", where, ref.file,
                      fmt::join(files, ", "));
  }
  if (!ref.quant.empty()) {
    std::vector<const FileGroup*> hits;
    for (const auto& g : groups)
      if (iequals(g.label, ref.quant)) hits.push_back(&g);
    if (hits.empty()) {
      // "Q4_K_M" also matches "UD-Q4_K_M" when that is the only way the repo has it.
      for (const auto& g : groups)
        if (iequals(g.label, "ud-" + ref.quant)) hits.push_back(&g);
    }
    if (hits.empty())
      return make_error(ErrorCode::kNotFound, "{} has no {} quantization; it has: {}", where, ref.quant,
                        describe_groups(groups));
    if (hits.size() > 1) {
      std::vector<std::string> files;
      for (const auto* g : hits) files.push_back(g->files.front());
      return make_error(ErrorCode::kInvalidArgument, "{} has several {} files: {}; name one: hf.co/{}/FILE.gguf",
                        where, ref.quant, fmt::join(files, ", "), ref.repo);
    }
    return Choice{hits.front(), fmt::format("{}", hits.front()->label)};
  }
  // The default: Q4_K_M, else the smallest runnable quant of 4 bits or more,
  // else the largest runnable one; one unlabeled file is itself.
  for (const auto& g : groups)
    if (iequals(g.label, "q4_k_m")) return Choice{&g, fmt::format("{}, the repo's default", g.label)};
  const FileGroup* best = nullptr;
  for (const auto& g : groups)  // sorted by bits: the first of class >= 4 is the smallest
    if (!g.label.empty() && runnable_label(g.label) && bit_class(g.label) >= 4) {
      best = &g;
      break;
    }
  if (best) return Choice{best, fmt::format("{}: no Q4_K_M, the smallest quantization of 4 bits or more", best->label)};
  for (auto it = groups.rbegin(); it != groups.rend(); ++it)
    if (!it->label.empty() && runnable_label(it->label))
      return Choice{&*it, fmt::format("{}: no quantization of 4 bits or more, the largest there is", it->label)};
  if (groups.size() == 1) return Choice{&groups.front(), "the repo's only GGUF model"};
  return make_error(ErrorCode::kInvalidArgument, "{} has several GGUF files and no default: name one, e.g. {}:QUANT or "
                    "hf.co/{}/FILE.gguf; it has: {}", where, where, ref.repo, describe_groups(groups));
}

std::optional<std::string> find_entry_icase(const std::string& dir, std::string_view name) {
  std::error_code ec;
  const fs::path exact = fs::path(dir) / std::string(name);
  if (fs::exists(exact, ec)) return exact.string();
  fs::directory_iterator it(dir, ec);
  for (; !ec && it != fs::directory_iterator(); it.increment(ec))
    if (iequals(it->path().filename().string(), name)) return it->path().string();
  return std::nullopt;
}

std::vector<std::string> subdirs(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  fs::directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec);
  for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
    std::error_code sec;
    if (!it->path().filename().string().starts_with(".") && fs::is_directory(it->path(), sec))
      out.push_back(it->path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> files_ending_in(const std::string& dir, std::string_view suffix) {
  std::vector<std::string> out;
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec);
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code sec;
    if (it->path().string().ends_with(suffix) && it->is_regular_file(sec)) out.push_back(it->path().string());
  }
  return out;
}

std::string repo_dir(const StoreOptions& o, std::string_view repo) {
  const auto slash = repo.find('/');
  const std::string owner(repo.substr(0, slash)), name(repo.substr(slash + 1));
  const std::string hub = o.models_dir + "/hf.co";
  const auto owner_dir = find_entry_icase(hub, owner);
  if (!owner_dir) return hub + "/" + owner + "/" + name;
  const auto dir = find_entry_icase(*owner_dir, name);
  return dir ? *dir : *owner_dir + "/" + name;
}

namespace {

// Manual recursion: one unreadable entry or broken symlink (an unfinished
// HF cache download) skips that entry, not the rest of the folder.
void walk_gguf(const fs::path& dir, const fs::path& root, int depth, int max_depth, std::vector<std::string>& out,
               std::vector<std::string>* warnings) {
  std::error_code ec;
  fs::directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec);
  for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
    const fs::path p = it->path();
    const std::string name = p.filename().string();
    if (name.starts_with(".")) continue;
    std::error_code sec;
    const auto st = fs::status(p, sec);  // follows symlinks
    if (sec) continue;
    if (fs::is_directory(st)) {
      if (depth < max_depth) walk_gguf(p, root, depth + 1, max_depth, out, warnings);
      continue;
    }
    if (fs::is_regular_file(st) && iequals(p.extension().string(), ".gguf"))
      out.push_back(p.lexically_relative(root).string());
  }
  if (ec && warnings) warnings->push_back(fmt::format("cannot read {}: {}", dir.string(), ec.message()));
}

}  // namespace

std::vector<std::string> gguf_files_under(const std::string& dir, int max_depth, std::vector<std::string>* warnings) {
  std::vector<std::string> out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  walk_gguf(dir, dir, 0, max_depth, out, warnings);
  std::sort(out.begin(), out.end());
  return out;
}

nlohmann::json parse_untrusted_json(std::string_view text) {
  auto j = parse_json<nlohmann::json>(text);
  return j ? std::move(*j) : nlohmann::json();
}

nlohmann::json read_json_file(const std::string& path, size_t max_bytes) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec || size > max_bytes) return nlohmann::json();
  std::ifstream in(path, std::ios::binary);
  std::string text(size, '\0');
  if (!in.read(text.data(), static_cast<std::streamsize>(size))) return nlohmann::json();
  return parse_untrusted_json(text);
}

nlohmann::json read_manifest(const std::string& dir) {
  auto j = read_json_file(dir + "/" + std::string(kManifestName));
  if (!j.is_object()) return nlohmann::json::object();  // unreadable: rebuilt by the next pull
  if (!j.contains("files") || !j["files"].is_object()) j["files"] = nlohmann::json::object();
  return j;
}

nlohmann::json manifest_file(const nlohmann::json& manifest, const std::string& rel) {
  if (!manifest.is_object()) return nlohmann::json::object();
  auto files = manifest.find("files");
  if (files == manifest.end() || !files->is_object()) return nlohmann::json::object();
  auto e = files->find(rel);
  return e != files->end() && e->is_object() ? *e : nlohmann::json::object();
}

uint64_t json_u64(const nlohmann::json& j, const char* key) {
  if (!j.is_object()) return 0;
  auto it = j.find(key);
  return it != j.end() && it->is_number_unsigned() ? it->get<uint64_t>() : 0;
}

std::string json_str(const nlohmann::json& j, const char* key) {
  if (!j.is_object()) return {};
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

Status write_manifest(const std::string& dir, const nlohmann::json& manifest) {
  const std::string path = dir + "/" + std::string(kManifestName);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << manifest.dump(2) << "\n";
    out.flush();
    if (!out) return make_error(ErrorCode::kIo, "cannot write {}: {}", tmp, std::strerror(errno));
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return make_error(ErrorCode::kIo, "cannot rename {} to {}: {}", tmp, path, ec.message());
  return {};
}

Result<FileLock> FileLock::acquire(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return make_error(ErrorCode::kIo, "cannot open lock file {}: {}", path, std::strerror(errno));
  while (::flock(fd, LOCK_EX) != 0) {
    if (errno == EINTR) continue;
    const int e = errno;
    ::close(fd);
    return make_error(ErrorCode::kIo, "cannot lock {}: {}", path, std::strerror(e));
  }
  return FileLock(fd);
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the flock
}

std::string now_utc_iso8601() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}


}  // namespace codey::store
