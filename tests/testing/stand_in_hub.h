// Test-only (header-only; link codey_net): a stand-in for the Hugging Face Hub
// on loopback, with the routes codey uses and the faults it must survive.
//   GET /api/models/OWNER/REPO/tree/main?recursive=true  the listing (paged by
//       `page_size`, next page in a Link header), lfs.oid = sha256
//   GET /OWNER/REPO/resolve/main/PATH  302 to a second server (the "CDN", on
//       another port, so a token must not follow) with X-Linked-Etag and
//       X-Linked-Size; small non-LFS files answered directly
//   CDN GET /blob/SHA  Range (206 + Content-Range), 416 past the end
// Faults: cut transfers, stalls, corrupt bytes, 5xx, a server that ignores
// Range, 401 / 403 / 404 with X-Error-Code like the Hub, gated repos that
// need the token. Every request is recorded.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <functional>
#include <map>
#include <set>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "codey/net.h"

namespace codey::testing {

struct SeenRequest {
  std::string server;  // "api" or "cdn"
  std::string method, target;
  std::map<std::string, std::string> headers;  // lower-case names
};

// A minimal HTTP/1.1 server: one request per connection (Connection: close),
// each connection on its own thread. The handler writes the response itself
// through the Conn, so it can cut, stall or lie.
class LoopbackServer {
 public:
  struct Request {
    std::string method, target, path, query;
    std::map<std::string, std::string> headers;  // lower-case names
  };
  class Conn {
   public:
    explicit Conn(int fd) : fd_(fd) {}
    bool write(std::string_view s) {
      while (!s.empty()) {
        const ssize_t n = ::send(fd_, s.data(), s.size(), MSG_NOSIGNAL);
        if (n <= 0) return false;
        s.remove_prefix(static_cast<size_t>(n));
      }
      return true;
    }
    // Status line, headers (Content-Length and Connection: close added), body.
    void respond(int status, const std::vector<std::pair<std::string, std::string>>& headers, std::string_view body,
                 std::optional<size_t> declared_length = std::nullopt) {
      std::string h = fmt::format("HTTP/1.1 {} {}\r\n", status, status < 300 ? "OK" : status < 400 ? "Redirect" : "Error");
      for (const auto& [k, v] : headers) h += k + ": " + v + "\r\n";
      h += fmt::format("Content-Length: {}\r\nConnection: close\r\n\r\n", declared_length.value_or(body.size()));
      if (write(h)) write(body);
    }

   private:
    int fd_;
  };
  using Handler = std::function<void(const Request&, Conn&)>;

  explicit LoopbackServer(Handler h) : handler_(std::move(h)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 64) != 0) {
      ADD_FAILURE() << "cannot listen on loopback: " << std::strerror(errno);
      return;
    }
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    accept_thread_ = std::thread([this] { accept_loop(); });
  }
  ~LoopbackServer() {
    stop_ = true;
    if (accept_thread_.joinable()) accept_thread_.join();
    std::vector<std::thread> threads;
    {
      std::lock_guard l(mu_);
      threads.swap(threads_);
    }
    for (auto& t : threads) t.join();
    if (fd_ >= 0) ::close(fd_);
  }
  int port() const { return port_; }
  std::string url() const { return fmt::format("http://127.0.0.1:{}", port_); }

 private:
  void accept_loop() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      std::lock_guard l(mu_);
      threads_.emplace_back([this, c] { serve(c); });
    }
  }
  void serve(int c) {
    std::string buf;
    char tmp[4096];
    while (buf.find("\r\n\r\n") == std::string::npos && buf.size() < (64u << 10)) {
      pollfd p{c, POLLIN, 0};
      if (::poll(&p, 1, 5000) <= 0) break;
      const ssize_t n = ::recv(c, tmp, sizeof tmp, 0);
      if (n <= 0) break;
      buf.append(tmp, static_cast<size_t>(n));
    }
    Request r;
    const auto end = buf.find("\r\n");
    if (end != std::string::npos) {
      const std::string line = buf.substr(0, end);
      const auto sp1 = line.find(' '), sp2 = line.rfind(' ');
      if (sp1 != std::string::npos && sp2 > sp1) {
        r.method = line.substr(0, sp1);
        r.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
        const auto q = r.target.find('?');
        r.path = r.target.substr(0, q);
        r.query = q == std::string::npos ? "" : r.target.substr(q + 1);
      }
      size_t pos = end + 2;
      while (pos < buf.size()) {
        const auto e = buf.find("\r\n", pos);
        if (e == std::string::npos || e == pos) break;
        const std::string h = buf.substr(pos, e - pos);
        const auto colon = h.find(':');
        if (colon != std::string::npos) {
          std::string k = h.substr(0, colon);
          for (auto& ch : k) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
          std::string v = h.substr(colon + 1);
          while (!v.empty() && v.front() == ' ') v.erase(0, 1);
          r.headers[k] = v;
        }
        pos = e + 2;
      }
      Conn conn(c);
      handler_(r, conn);
    }
    ::shutdown(c, SHUT_RDWR);
    ::close(c);
  }

  Handler handler_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread accept_thread_;
  std::mutex mu_;
  std::vector<std::thread> threads_;
};

class StandInHub {
 public:
  struct File {
    std::string content;
    bool lfs = true;  // LFS files redirect to the CDN and have a sha256 in the listing
    std::string sha;  // filled by add_repo
  };
  struct Repo {
    std::map<std::string, File> files;  // path -> content
    bool gated = false;                 // 401 without the token, 403 with another one
  };
  // Faults, each counted down per CDN request of any blob.
  struct Faults {
    int cut_times = 0;          // send the headers and cut_at bytes, then close
    size_t cut_at = 1000;
    // > 0: with cut_times, cut where the file reaches this offset instead (a
    // request starting there or later gets no byte: a download that is stuck)
    size_t cut_at_offset = 0;
    int stall_times = 0;        // send stall_at bytes, then wait stall_ms before closing
    size_t stall_at = 1000;
    int stall_ms = 3000;
    int corrupt_times = 0;      // flip one byte in the middle
    int error_5xx_times = 0;    // 503
    bool ignore_range = false;  // always 200 with the whole file
    int wrong_linked_size = 0;  // X-Linked-Size off by one on the redirect this many times
    int throttle_ms = 0;        // > 0: the body goes out in 64 KiB chunks, this long apart
  };

  std::string token = "hf_test_token_0123456789";
  int page_size = 0;  // > 0: the listing comes in pages of this many entries
  // A hostile Hub: edits each listing page before it is sent, or (a non-empty
  // listing_body) sends that instead.
  std::function<void(nlohmann::json& page)> edit_listing;
  std::string listing_body;

  StandInHub()
      : cdn_([this](const auto& r, auto& c) { cdn(r, c); }), api_([this](const auto& r, auto& c) { api(r, c); }) {}

  std::string endpoint() const { return api_.url(); }
  void add_repo(const std::string& name, Repo repo) {
    for (auto& [p, f] : repo.files) f.sha = sha256_of(f.content);
    std::lock_guard l(mu_);
    repos_[name] = std::move(repo);
  }
  void set_faults(Faults f) {
    std::lock_guard l(mu_);
    faults_ = f;
  }
  std::vector<SeenRequest> seen() {
    std::lock_guard l(mu_);
    return seen_;
  }
  int count(const std::string& server, const std::string& path_prefix) {
    std::lock_guard l(mu_);
    int n = 0;
    for (const auto& s : seen_) n += s.server == server && s.target.starts_with(path_prefix);
    return n;
  }
  uint64_t cdn_bytes_sent() const { return cdn_bytes_; }
  static std::string sha256_of(std::string_view s) {
    Sha256 h;
    h.update(s);
    return h.hex_digest();
  }

 private:
  void record(const std::string& server, const LoopbackServer::Request& r) {
    std::lock_guard l(mu_);
    seen_.push_back({server, r.method, r.target, r.headers});
  }
  static std::vector<std::pair<std::string, std::string>> error_headers(const std::string& code) {
    return {{"Content-Type", "application/json"}, {"X-Error-Code", code}};
  }
  // 401 / 403 like the Hub: an unknown or gated repo looks the same without a token.
  bool deny(const LoopbackServer::Request& r, const Repo* repo, LoopbackServer::Conn& c) {
    const auto auth = r.headers.find("authorization");
    const bool has_token = auth != r.headers.end();
    const bool good_token = has_token && auth->second == "Bearer " + token;
    if (has_token && !good_token) {
      c.respond(401, error_headers("Unauthorized"), R"({"error":"Invalid credentials in Authorization header"})");
      return true;
    }
    if (!repo) {
      c.respond(has_token ? 404 : 401, error_headers("RepoNotFound"), R"({"error":"Repository not found"})");
      return true;
    }
    if (repo->gated && !good_token) {
      c.respond(401, error_headers("GatedRepo"), R"({"error":"Access to this model is restricted: you must be authenticated"})");
      return true;
    }
    return false;
  }
  void api(const LoopbackServer::Request& r, LoopbackServer::Conn& c) {
    record("api", r);
    std::unique_lock l(mu_);
    const std::string tree_prefix = "/api/models/";
    if (r.path.starts_with(tree_prefix) && r.path.ends_with("/tree/main")) {
      const std::string name = r.path.substr(tree_prefix.size(), r.path.size() - tree_prefix.size() - 10);
      const Repo* repo = repos_.count(name) ? &repos_[name] : nullptr;
      if (deny(r, repo, c)) return;
      nlohmann::json all = nlohmann::json::array();
      std::set<std::string> dirs;
      for (const auto& [path, f] : repo->files) {
        for (size_t s = path.find('/'); s != std::string::npos; s = path.find('/', s + 1)) dirs.insert(path.substr(0, s));
        nlohmann::json e{{"type", "file"}, {"oid", "0000000000000000000000000000000000000000"}, {"path", path},
                         {"size", f.content.size()}};
        if (f.lfs) e["lfs"] = {{"oid", f.sha}, {"size", f.content.size()}, {"pointerSize", 134}};
        all.push_back(e);
      }
      for (const auto& d : dirs) all.push_back({{"type", "directory"}, {"oid", "1"}, {"path", d}, {"size", 0}});
      size_t start = 0;
      if (const auto p = r.query.find("cursor="); p != std::string::npos) start = std::stoul(r.query.substr(p + 7));
      const size_t n = page_size > 0 ? static_cast<size_t>(page_size) : all.size();
      nlohmann::json page = nlohmann::json::array();
      for (size_t i = start; i < all.size() && i < start + n; ++i) page.push_back(all[i]);
      std::vector<std::pair<std::string, std::string>> h{{"Content-Type", "application/json"}};
      if (start + n < all.size())
        h.push_back({"Link", fmt::format("<{}{}?recursive=true&cursor={}>; rel=\"next\"", api_.url(), r.path, start + n)});
      if (edit_listing) edit_listing(page);
      const std::string body = listing_body.empty() ? page.dump() : listing_body;
      l.unlock();
      c.respond(200, h, body);
      return;
    }
    // /OWNER/REPO/resolve/main/PATH
    const auto marker = r.path.find("/resolve/main/");
    if (marker != std::string::npos && r.path.size() > 1) {
      const std::string name = r.path.substr(1, marker - 1);
      const std::string file = r.path.substr(marker + 14);
      const Repo* repo = repos_.count(name) ? &repos_[name] : nullptr;
      if (deny(r, repo, c)) return;
      auto it = repo->files.find(file);
      if (it == repo->files.end()) {
        c.respond(404, error_headers("EntryNotFound"), R"({"error":"Entry not found"})");
        return;
      }
      if (!it->second.lfs) {
        const std::string body = it->second.content;
        l.unlock();
        c.respond(200, {{"ETag", "\"0000\""}}, body);
        return;
      }
      const std::string sha = it->second.sha;
      uint64_t size = it->second.content.size();
      if (faults_.wrong_linked_size > 0) {
        --faults_.wrong_linked_size;
        ++size;
      }
      l.unlock();
      c.respond(302, {{"Location", fmt::format("{}/blob/{}", cdn_.url(), sha)},
                      {"X-Linked-Etag", "\"" + sha + "\""},
                      {"X-Linked-Size", std::to_string(size)},
                      {"X-Repo-Commit", "0123456789abcdef0123456789abcdef01234567"}},
                "");
      return;
    }
    l.unlock();
    c.respond(404, {}, "not found");
  }
  void cdn(const LoopbackServer::Request& r, LoopbackServer::Conn& c) {
    record("cdn", r);
    std::unique_lock l(mu_);
    std::string content;
    bool found = false;
    for (const auto& [n, repo] : repos_)
      for (const auto& [p, f] : repo.files)
        if ("/blob/" + f.sha == r.path) {
          content = f.content;
          found = true;
        }
    if (!found) {
      l.unlock();
      c.respond(404, {}, "no such blob");
      return;
    }
    Faults& f = faults_;
    if (f.error_5xx_times > 0) {
      --f.error_5xx_times;
      l.unlock();
      c.respond(503, {}, "try later");
      return;
    }
    size_t from = 0;
    if (auto it = r.headers.find("range"); it != r.headers.end() && !f.ignore_range) {
      from = std::stoull(it->second.substr(6));  // "bytes=N-"
      if (from >= content.size()) {
        l.unlock();
        c.respond(416, {{"Content-Range", fmt::format("bytes */{}", content.size())}}, "");
        return;
      }
    }
    std::string body = content.substr(from);
    if (f.corrupt_times > 0 && !body.empty()) {
      --f.corrupt_times;
      body[body.size() / 2] ^= 0x5a;
    }
    std::optional<size_t> cut, stall;
    if (f.cut_times > 0 && f.cut_at_offset > 0) {
      --f.cut_times;
      cut = f.cut_at_offset > from ? f.cut_at_offset - from : 0;
    } else if (f.cut_times > 0 && body.size() > f.cut_at) {
      --f.cut_times;
      cut = f.cut_at;
    } else if (f.stall_times > 0 && body.size() > f.stall_at) {
      --f.stall_times;
      stall = f.stall_at;
    }
    const int stall_ms = f.stall_ms;
    const int throttle_ms = f.throttle_ms;
    l.unlock();
    std::vector<std::pair<std::string, std::string>> h{{"Accept-Ranges", "bytes"}};
    const int status = from > 0 ? 206 : 200;
    if (status == 206) h.push_back({"Content-Range", fmt::format("bytes {}-{}/{}", from, content.size() - 1, content.size())});
    if (cut || stall) {
      c.respond(status, h, body.substr(0, cut ? *cut : *stall), body.size());
      cdn_bytes_ += cut ? *cut : *stall;
      if (stall) std::this_thread::sleep_for(std::chrono::milliseconds(stall_ms));
      return;  // the connection closes with bytes missing
    }
    if (throttle_ms > 0) {
      c.respond(status, h, "", body.size());
      for (size_t off = 0; off < body.size(); off += 64u << 10) {
        if (!c.write(std::string_view(body).substr(off, 64u << 10))) return;
        cdn_bytes_ += std::min<size_t>(64u << 10, body.size() - off);
        std::this_thread::sleep_for(std::chrono::milliseconds(throttle_ms));
      }
      return;
    }
    c.respond(status, h, body);
    cdn_bytes_ += body.size();
  }

  std::mutex mu_;
  std::map<std::string, Repo> repos_;
  Faults faults_;
  std::vector<SeenRequest> seen_;
  std::atomic<uint64_t> cdn_bytes_{0};
  LoopbackServer cdn_;  // declared before api_: api_ refers to cdn_'s URL
  LoopbackServer api_;
};

}  // namespace codey::testing
