// Safe writes into the workspace directory: relative paths only, no ".."
// and no symlink leading outside, no silent overwrite (force or a yes, then a
// backup), atomic replacement through a temporary file and rename.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "codey/assistant.h"

namespace codey {

namespace fs = std::filesystem;

std::string_view write_action_name(WriteAction a) {
  switch (a) {
    case WriteAction::kCreated: return "created";
    case WriteAction::kOverwritten: return "overwritten";
    case WriteAction::kUnchanged: return "unchanged";
    case WriteAction::kRefused: return "refused";
    case WriteAction::kWouldCreate: return "would create";
    case WriteAction::kWouldOverwrite: return "would overwrite";
  }
  return "?";
}

namespace {

// `p` is `root` or below it (both canonical / lexically normal).
bool inside(const fs::path& root, const fs::path& p) {
  auto r = root.begin();
  auto q = p.begin();
  for (; r != root.end(); ++r, ++q) {
    if (r->empty() && std::next(r) == root.end()) break;  // trailing separator
    if (q == p.end() || *q != *r) return false;
  }
  return true;
}

std::optional<std::string> read_all(const fs::path& p, size_t max_bytes) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return std::nullopt;
  std::string s;
  char buf[1 << 14];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    s.append(buf, static_cast<size_t>(in.gcount()));
    if (s.size() > max_bytes) return std::nullopt;
  }
  return s;
}

Status write_new(const fs::path& p, std::string_view content, int flags, mode_t mode) {
  const int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | flags, mode);
  if (fd < 0) return make_error(ErrorCode::kIo, "cannot create {}: {}", p.string(), std::strerror(errno));
  size_t done = 0;
  while (done < content.size()) {
    const ssize_t w = ::write(fd, content.data() + done, content.size() - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      ::close(fd);
      ::unlink(p.c_str());
      return make_error(ErrorCode::kIo, "cannot write {}: {}", p.string(), std::strerror(e));
    }
    done += static_cast<size_t>(w);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(p.c_str());
    return make_error(ErrorCode::kIo, "cannot write {}: {}", p.string(), std::strerror(errno));
  }
  return {};
}

}  // namespace

Result<Workspace> Workspace::open(const std::string& dir) {
  std::error_code ec;
  const fs::path root = fs::canonical(dir.empty() ? fs::path(".") : fs::path(dir), ec);
  if (ec) return make_error(ErrorCode::kNotFound, "workspace '{}': {}", dir, ec.message());
  if (!fs::is_directory(root, ec)) return make_error(ErrorCode::kInvalidArgument, "workspace '{}' is not a directory", dir);
  return Workspace(root);
}

namespace {
// ".git" in any case (case-insensitive file systems).
bool is_git_dir(std::string_view part) {
  return part.size() == 4 && part[0] == '.' && (part[1] | 0x20) == 'g' && (part[2] | 0x20) == 'i' &&
         (part[3] | 0x20) == 't';
}
}  // namespace

Result<fs::path> Workspace::resolve(std::string_view relative) const {
  auto refuse = [&](std::string_view why) {
    return make_error(ErrorCode::kInvalidArgument, "'{}': {}", relative, why);
  };
  if (relative.empty()) return refuse("empty path");
  if (relative.find('\0') != std::string_view::npos) return refuse("NUL in the path");
  if (relative.front() == '/' || relative.front() == '~' || fs::path(relative).is_absolute())
    return refuse("absolute paths are refused (paths are relative to the workspace)");
  fs::path rel;
  for (const auto& part : fs::path(relative)) {
    if (part == "..") return refuse("'..' is refused (it could leave the workspace)");
    if (part.empty() || part == ".") continue;
    if (is_git_dir(part.string())) return refuse("writes under .git/ are refused (hooks there would run)");
    rel /= part;
  }
  if (rel.empty()) return refuse("names no file");
  // Walk the existing part of the path: a symlink anywhere must resolve
  // inside the workspace, and the file itself must not be one.
  fs::path cur = root_;
  std::error_code ec;
  size_t i = 0;
  const size_t n = static_cast<size_t>(std::distance(rel.begin(), rel.end()));
  for (const auto& part : rel) {
    cur /= part;
    const bool last = ++i == n;
    const auto st = fs::symlink_status(cur, ec);
    if (ec || !fs::exists(st)) break;  // the rest will be created
    if (fs::is_symlink(st)) {
      if (last) return refuse("is a symbolic link; refusing to write through it");
      const fs::path target = fs::canonical(cur, ec);
      if (ec || !inside(root_, target))
        return refuse(fmt::format("symlink '{}' leads outside the workspace{}",
                                  fs::relative(cur, root_, ec).string(), ec ? "" : " to " + target.string()));
      for (const auto& t : fs::relative(target, root_, ec))
        if (is_git_dir(t.string())) return refuse("writes under .git/ are refused (hooks there would run)");
      if (!fs::is_directory(target)) return refuse(fmt::format("'{}' is not a directory", cur.string()));
      continue;
    }
    if (!last && !fs::is_directory(st)) return refuse(fmt::format("'{}' is not a directory", part.string()));
    if (last && fs::is_directory(st)) return refuse("is a directory");
    if (last && !fs::is_regular_file(st)) return refuse("is not a regular file");
  }
  return root_ / rel;
}

std::optional<std::string> Workspace::read(std::string_view relative, size_t max_bytes) const {
  auto p = resolve(relative);
  if (!p) return std::nullopt;
  std::error_code ec;
  if (!fs::is_regular_file(*p, ec)) return std::nullopt;
  return read_all(*p, max_bytes);
}

Result<WriteOutcome> Workspace::write(std::string_view relative, std::string_view content,
                                      const WriteOptions& options) const {
  WriteOutcome out;
  out.bytes = content.size();
  auto path = resolve(relative);
  if (!path) {
    out.path = std::string(relative);
    out.action = WriteAction::kRefused;
    out.message = path.error().message;
    return out;
  }
  std::error_code ec;
  out.path = fs::relative(*path, root_, ec).string();
  if (ec) out.path = std::string(relative);
  const bool exists = fs::exists(fs::symlink_status(*path, ec));
  std::optional<std::string> old;
  if (exists) {
    old = read_all(*path, size_t{1} << 30);
    if (!old) return make_error(ErrorCode::kIo, "cannot read {}", path->string());
    if (*old == content) {
      out.action = WriteAction::kUnchanged;
      return out;
    }
  }
  if (options.dry_run) {
    out.action = exists ? WriteAction::kWouldOverwrite : WriteAction::kWouldCreate;
    if (exists && !options.force) out.message = "exists: replacing it needs --force or a yes";
    return out;
  }
  if (exists && !options.force && !(options.confirm_overwrite && options.confirm_overwrite(out.path))) {
    out.action = WriteAction::kRefused;
    out.message = "exists; not overwritten (use --force; a backup is kept)";
    return out;
  }
  const fs::path dir = path->parent_path();
  fs::create_directories(dir, ec);
  if (ec) return make_error(ErrorCode::kIo, "cannot create directory {}: {}", dir.string(), ec.message());
  // Re-check after creating directories: nothing may have redirected them.
  const fs::path cdir = fs::canonical(dir, ec);
  if (ec || !inside(root_, cdir)) {
    out.action = WriteAction::kRefused;
    out.message = fmt::format("'{}': the directory resolves outside the workspace", relative);
    return out;
  }
  mode_t mode = 0666;  // less the umask, as for any new file
  if (exists) {
    struct stat st {};
    if (::stat(path->c_str(), &st) == 0) mode = st.st_mode & 07777;
    // Backup first: <name>.bak, then .bak.1, .bak.2 ... (never clobbering one).
    const std::string base = path->filename().string();
    for (int k = 0; k < 1000; ++k) {
      const fs::path b = cdir / (k == 0 ? base + ".bak" : fmt::format("{}.bak.{}", base, k));
      auto w = write_new(b, *old, 0, mode);
      if (w) {
        out.backup = fs::relative(b, root_, ec).string();
        break;
      }
      if (fs::exists(fs::symlink_status(b, ec))) continue;
      return std::unexpected(w.error());
    }
    if (out.backup.empty()) return make_error(ErrorCode::kIo, "no free backup name for {}", path->string());
  }
  static std::atomic<uint64_t> counter{0};
  const fs::path tmp = cdir / fmt::format(".{}.codey-tmp-{}-{}", path->filename().string(), ::getpid(), counter++);
  CODEY_TRY(write_new(tmp, content, 0, mode));
  if (exists) ::chmod(tmp.c_str(), mode);  // keep the old file's mode exactly (umask would mask it)
  if (::rename(tmp.c_str(), (cdir / path->filename()).c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    return make_error(ErrorCode::kIo, "cannot replace {}: {}", path->string(), std::strerror(e));
  }
  out.action = exists ? WriteAction::kOverwritten : WriteAction::kCreated;
  return out;
}

}  // namespace codey
