// Downloading one file of a pull: to FILE.partial under an exclusive lock
// (another process pulling the same file is waited for; threads of this
// process share one transfer), resumed with Range after a cut, retried with
// backoff, size and sha256 checked before the atomic rename.
#include "store/download.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include "store/internal.h"

namespace codey::store {
namespace {

namespace fs = std::filesystem;

// Sleeps up to `d`, waking early when stop is requested; false if it was.
bool sleep_for(Millis d, std::stop_token stop) {
  std::mutex mu;
  std::condition_variable_any cv;
  std::unique_lock lock(mu);
  return !cv.wait_for(lock, stop, d, [] { return false; }) && !stop.stop_requested();
}

Status write_all(int fd, std::span<const uint8_t> bytes, const std::string& path) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      if (e == ENOSPC)
        return make_error(ErrorCode::kResourceExhausted, "the disk is full writing {} (free some space, or set "
                          "CODEY_MODELS to a folder on a bigger disk, and run the same command again)", path);
      return make_error(ErrorCode::kIo, "writing {} failed: {}", path, std::strerror(e));
    }
    bytes = bytes.subspan(static_cast<size_t>(n));
  }
  return {};
}

void fsync_dir(const std::string& path) {
  const int fd = ::open(fs::path(path).parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

// "bytes START-END/TOTAL" -> START and TOTAL (TOTAL 0 when '*').
bool parse_content_range(std::string_view v, uint64_t& start, uint64_t& total) {
  if (!v.starts_with("bytes ")) return false;
  v.remove_prefix(6);
  start = 0;
  size_t i = 0;
  for (; i < v.size() && std::isdigit(static_cast<unsigned char>(v[i])); ++i) start = start * 10 + uint64_t(v[i] - '0');
  if (i == 0) return false;
  const auto slash = v.find('/');
  if (slash == std::string_view::npos) return false;
  total = 0;
  for (size_t k = slash + 1; k < v.size() && std::isdigit(static_cast<unsigned char>(v[k])); ++k)
    total = total * 10 + uint64_t(v[k] - '0');
  return true;
}

std::string strip_etag(std::string_view v) {
  if (v.starts_with("W/")) v.remove_prefix(2);
  while (!v.empty() && v.front() == '"') v.remove_prefix(1);
  while (!v.empty() && v.back() == '"') v.remove_suffix(1);
  return lower(v);
}

// The partial file, locked. Owns the descriptor; the lock goes with it.
class LockedPartial {
 public:
  ~LockedPartial() {
    if (fd_ >= 0) ::close(fd_);
  }
  int fd() const { return fd_; }
  bool waited() const { return waited_; }  // another process held the lock first
  // Opens and locks `path` (created if absent). When another process holds
  // it, waits, reporting the file's growth; the lock is taken only on the
  // inode the path still names (the holder renames it when done).
  Status acquire(const std::string& path, const DownloadHooks& hooks, uint64_t total, std::stop_token stop) {
    bool told = false;
    while (true) {
      fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
      if (fd_ < 0) return make_error(ErrorCode::kIo, "cannot create {}: {}", path, std::strerror(errno));
      while (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EINTR) continue;
        if (errno != EWOULDBLOCK) return make_error(ErrorCode::kIo, "cannot lock {}: {}", path, std::strerror(errno));
        if (!told && hooks.status) hooks.status("another codey is downloading this file; waiting for it");
        told = true;
        waited_ = true;
        struct stat st{};
        if (::fstat(fd_, &st) == 0 && hooks.progress) hooks.progress(static_cast<uint64_t>(st.st_size), total);
        if (!sleep_for(Millis(250), stop)) return make_error(ErrorCode::kCancelled, "cancelled while waiting for {}", path);
      }
      struct stat held{}, now{};
      if (::fstat(fd_, &held) == 0 && ::stat(path.c_str(), &now) == 0 && held.st_ino == now.st_ino &&
          held.st_dev == now.st_dev)
        return {};
      ::close(fd_);  // renamed away by the process that held it: take the new file
      fd_ = -1;
    }
  }

 private:
  int fd_ = -1;
  bool waited_ = false;
};

// One transfer per destination in this process; later callers wait for it.
struct SharedTransfer {
  std::mutex mu;
  std::condition_variable cv;
  uint64_t done = 0, total = 0;
  std::string last_status;
  uint64_t status_seq = 0;
  bool finished = false;
  Status result;
  int interested = 0;          // callers not cancelled; at 0 the transfer stops
  std::stop_source stop;
};

std::mutex g_transfers_mu;
std::map<std::string, std::shared_ptr<SharedTransfer>> g_transfers;

Status transfer(const DownloadSpec& spec, const PullOptions& po, const DownloadHooks& hooks, std::stop_token stop) {
  const std::string partial = spec.dest + std::string(kPartialSuffix);
  std::error_code ec;
  fs::create_directories(fs::path(spec.dest).parent_path(), ec);
  LockedPartial file;
  CODEY_TRY(file.acquire(partial, hooks, spec.size, stop));
  // The process this one waited for finished it (dest only ever appears by
  // the rename after verification). A file there from before is not taken:
  // the caller asked for this download because it is not the listed one.
  if (file.waited() && fs::exists(spec.dest, ec) && fs::file_size(spec.dest, ec) == spec.size) {
    struct stat st{};
    if (::fstat(file.fd(), &st) == 0 && st.st_size == 0) ::unlink(partial.c_str());
    if (hooks.progress) hooks.progress(spec.size, spec.size);
    return {};
  }
  struct stat st{};
  if (::fstat(file.fd(), &st) != 0) return make_error(ErrorCode::kIo, "cannot stat {}: {}", partial, std::strerror(errno));
  uint64_t have = static_cast<uint64_t>(st.st_size);
  if (have > spec.size) {  // not this file: start over
    if (::ftruncate(file.fd(), 0) != 0) return make_error(ErrorCode::kIo, "cannot truncate {}: {}", partial, std::strerror(errno));
    have = 0;
  }
  Sha256 hash;
  if (have > 0) {
    if (hooks.status)
      hooks.status(fmt::format("resuming at {} of {}", format_bytes(have), format_bytes(spec.size)));
    CODEY_TRY(hash_file_prefix(partial, have, hash, {}, stop));
  }
  if (::lseek(file.fd(), static_cast<off_t>(have), SEEK_SET) < 0)
    return make_error(ErrorCode::kIo, "cannot seek in {}: {}", partial, std::strerror(errno));
  if (hooks.progress) hooks.progress(have, spec.size);

  int failures = 0;  // tries in a row that moved no byte
  Millis delay = po.backoff;
  while (have < spec.size) {
    HttpRequest req;
    req.url = spec.url;
    req.headers = spec.headers;
    req.range_from = have;
    req.stall_timeout = po.stall_timeout;
    const uint64_t at_start = have;
    bool restart = false;  // the server sent the whole file from byte 0
    auto on_headers = [&](const HttpResult& so_far) -> Status {
      const HttpResponse& r = so_far.responses.back();
      // The Hub describes the file on its redirect: a different size or
      // hash than the listing means it changed since.
      if (auto linked = so_far.first_header("x-linked-size")) {
        if (std::to_string(spec.size) != *linked)
          return make_error(ErrorCode::kCorrupt, "{} changed on the Hub while pulling (X-Linked-Size {} , listed {}): "
                            "run the same command again", spec.label, *linked, spec.size);
      }
      if (auto etag = so_far.first_header("x-linked-etag"); etag && !spec.sha256.empty()) {
        const std::string e = strip_etag(*etag);
        if (e.size() == 64 && e != spec.sha256)
          return make_error(ErrorCode::kCorrupt, "{} changed on the Hub while pulling (X-Linked-Etag {}, listed {}): "
                            "run the same command again", spec.label, e, spec.sha256);
      }
      if (r.status == 206) {
        uint64_t start = 0, total = 0;
        if (!parse_content_range(r.headers.find("content-range").value_or(""), start, total) || start != have ||
            (total && total != spec.size))
          return make_error(ErrorCode::kCorrupt, "{}: the server answered a request for bytes {}- with Content-Range "
                            "'{}'", spec.label, have, r.headers.find("content-range").value_or(""));
      } else if (r.status == 200) {
        if (have > 0) restart = true;
      }
      if (r.status == 200 || r.status == 206) {
        if (auto len = r.headers.find("content-length")) {
          const uint64_t expect = spec.size - (r.status == 206 ? have : 0);
          if (std::to_string(expect) != *len)
            return make_error(ErrorCode::kCorrupt, "{}: the server sends {} bytes where {} were expected", spec.label,
                              *len, expect);
        }
        if (restart) {
          if (::ftruncate(file.fd(), 0) != 0 || ::lseek(file.fd(), 0, SEEK_SET) != 0)
            return make_error(ErrorCode::kIo, "cannot truncate {}: {}", partial, std::strerror(errno));
          have = 0;
          hash = Sha256();
        }
      }
      return {};
    };
    auto sink = [&](std::span<const uint8_t> bytes) -> Status {
      if (have + bytes.size() > spec.size)
        return make_error(ErrorCode::kCorrupt, "{}: the server sends more than the {} bytes listed", spec.label, spec.size);
      CODEY_TRY(write_all(file.fd(), bytes, partial));
      hash.update(bytes);
      have += bytes.size();
      if (hooks.progress) hooks.progress(have, spec.size);
      return {};
    };
    auto r = http_fetch(req, sink, stop, on_headers);
    std::optional<Error> retry_error;
    if (r) {
      const int status = r->status();
      if (status == 200 || status == 206) {
        if (have == spec.size) break;
        retry_error = Error{ErrorCode::kIo, fmt::format("the transfer ended at {} of {}", have, spec.size)};
      } else if (status == 416) {  // nothing past `have`: start over
        if (::ftruncate(file.fd(), 0) != 0 || ::lseek(file.fd(), 0, SEEK_SET) != 0)
          return make_error(ErrorCode::kIo, "cannot truncate {}: {}", partial, std::strerror(errno));
        have = 0;
        hash = Sha256();
        retry_error = Error{ErrorCode::kIo, "the server refused the range (416)"};
      } else if (Hub::retryable(status)) {
        retry_error = spec.hub->status_error(*r, spec.repo, spec.file);
      } else {
        return std::unexpected(spec.hub->status_error(*r, spec.repo, spec.file));
      }
    } else if (r.error().code == ErrorCode::kIo) {
      retry_error = std::move(r.error());
    } else {
      return std::unexpected(std::move(r.error()));  // cancelled, corrupt, disk full, a bad URL
    }
    if (have > at_start) {
      failures = 0;
      delay = po.backoff;
    }
    if (++failures >= po.max_attempts)
      return make_error(ErrorCode::kIo, "{}: the download stopped at {} of {} after {} tries ({}); run the same "
                        "command again to resume", spec.label, format_bytes(have), format_bytes(spec.size),
                        po.max_attempts, retry_error->message);
    if (hooks.status)
      hooks.status(fmt::format("{} at {} of {}; retrying in {:.0f} s", retry_error->message, format_bytes(have),
                               format_bytes(spec.size), std::chrono::duration<double>(delay).count()));
    if (!sleep_for(delay, stop)) return make_error(ErrorCode::kCancelled, "{}: cancelled", spec.label);
    delay = std::min<Millis>(delay * 2, Millis(30000));
  }
  if (::fsync(file.fd()) != 0) return make_error(ErrorCode::kIo, "cannot flush {}: {}", partial, std::strerror(errno));
  if (!spec.sha256.empty()) {
    if (hooks.status) hooks.status("verifying sha256 digest");
    const std::string got = hash.hex_digest();
    if (got != spec.sha256) {
      ::unlink(partial.c_str());
      return make_error(ErrorCode::kCorrupt, "{}: the downloaded bytes have sha256 {} but the Hub lists {}; the "
                        "download was deleted: run the same command again (if it fails again, the network or a proxy "
                        "changes the bytes)", spec.label, got, spec.sha256);
    }
  }
  if (::rename(partial.c_str(), spec.dest.c_str()) != 0)
    return make_error(ErrorCode::kIo, "cannot rename {} to {}: {}", partial, spec.dest, std::strerror(errno));
  fsync_dir(spec.dest);
  return {};
}

}  // namespace

Status download_file(const DownloadSpec& spec, const PullOptions& po, const DownloadHooks& hooks,
                     std::stop_token stop) {
  std::shared_ptr<SharedTransfer> shared;
  bool owner = false;
  {
    std::lock_guard lock(g_transfers_mu);
    auto& slot = g_transfers[spec.dest];
    if (!slot) {
      slot = std::make_shared<SharedTransfer>();
      owner = true;
    }
    shared = slot;
    std::lock_guard l(shared->mu);
    ++shared->interested;
  }
  // This caller giving up stops the transfer only when nobody else waits for it.
  std::stop_callback on_cancel(stop, [&] {
    std::lock_guard l(shared->mu);
    if (--shared->interested == 0) shared->stop.request_stop();
    shared->cv.notify_all();
  });
  if (owner) {
    DownloadHooks shared_hooks;
    shared_hooks.progress = [&](uint64_t done, uint64_t total) {
      {
        std::lock_guard l(shared->mu);
        shared->done = done;
        shared->total = total;
      }
      shared->cv.notify_all();
      if (hooks.progress && !stop.stop_requested()) hooks.progress(done, total);
    };
    shared_hooks.status = [&](std::string_view s) {
      {
        std::lock_guard l(shared->mu);
        shared->last_status = std::string(s);
        ++shared->status_seq;
      }
      shared->cv.notify_all();
      if (hooks.status && !stop.stop_requested()) hooks.status(s);
    };
    Status st = transfer(spec, po, shared_hooks, shared->stop.get_token());
    {
      std::lock_guard lock(g_transfers_mu);
      g_transfers.erase(spec.dest);
    }
    {
      std::lock_guard l(shared->mu);
      shared->finished = true;
      shared->result = st;
    }
    shared->cv.notify_all();
    if (!st) return st;
    if (stop.stop_requested()) return make_error(ErrorCode::kCancelled, "{}: cancelled", spec.label);
    return st;
  }
  // A joiner: report the owner's progress until it is done.
  if (hooks.status) hooks.status("already being pulled; sharing that download");
  uint64_t seen_status = 0;
  std::unique_lock l(shared->mu);
  while (!shared->finished) {
    if (stop.stop_requested()) return make_error(ErrorCode::kCancelled, "{}: cancelled", spec.label);
    shared->cv.wait_for(l, Millis(200));
    const uint64_t done = shared->done, total = shared->total;
    std::string status;
    if (shared->status_seq != seen_status) {
      seen_status = shared->status_seq;
      status = shared->last_status;
    }
    l.unlock();
    if (!status.empty() && hooks.status) hooks.status(status);
    if (hooks.progress && total) hooks.progress(done, total);
    l.lock();
  }
  return shared->result;
}

}  // namespace codey::store
