// Net layer: HTTP(S) transfers (libcurl: TLS with the system's CA store,
// redirects, Range, proxies from the environment) and SHA-256 (OpenSSL) to
// check what was transferred. Knows nothing of models or of the Hub.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "codey/base.h"

namespace codey {

// Incremental SHA-256. Move-only.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(std::span<const uint8_t> bytes);
  void update(std::string_view text) { update({reinterpret_cast<const uint8_t*>(text.data()), text.size()}); }
  // 64 lowercase hex digits; the object starts over afterwards.
  std::string hex_digest();

 private:
  struct State;
  std::unique_ptr<State> s_;
};

// SHA-256 of a file's first `limit` bytes (all by default), read in chunks.
// `progress(bytes_done)` is called as it goes; a stop request cancels.
Result<std::string> sha256_file(const std::string& path, uint64_t limit = std::numeric_limits<uint64_t>::max(),
                                const std::function<void(uint64_t)>& progress = {}, std::stop_token stop = {});
// Feeds a file's first `limit` bytes into `hash`.
Status hash_file_prefix(const std::string& path, uint64_t limit, Sha256& hash,
                        const std::function<void(uint64_t)>& progress = {}, std::stop_token stop = {});

// Response headers in arrival order; names compared case-insensitively.
struct HttpHeaders {
  std::vector<std::pair<std::string, std::string>> items;
  // The first value of `name`, or nullopt.
  std::optional<std::string_view> find(std::string_view name) const;
};

// One response of a transfer: the redirects first, the final one last.
struct HttpResponse {
  int status = 0;
  std::string url;  // the URL that answered
  HttpHeaders headers;
};

struct HttpRequest {
  std::string url;
  bool head = false;                 // HEAD instead of GET
  std::vector<std::string> headers;  // "Name: value"; an Authorization header is never sent on to another host
  uint64_t range_from = 0;           // > 0: "Range: bytes=N-"
  bool follow_redirects = true;      // up to 10; an https URL may only redirect to https
  std::chrono::seconds connect_timeout{30};
  // A transfer that moves no byte for this long is cut (a stalled connection).
  std::chrono::seconds stall_timeout{60};
};

struct HttpResult {
  std::vector<HttpResponse> responses;  // at least one when the server answered
  std::string error_body;               // the body of a non-2xx final response (first 64 KiB)
  uint64_t body_bytes = 0;              // bytes given to the sink
  int status() const { return responses.empty() ? 0 : responses.back().status; }
  const HttpHeaders& headers() const { return responses.back().headers; }
  // The header from the first response that has it (e.g. X-Linked-Size on a redirect).
  std::optional<std::string_view> first_header(std::string_view name) const;
};

// Receives the body of a 2xx final response as it arrives; returning an
// error stops the transfer with that error.
using HttpSink = std::function<Status(std::span<const uint8_t>)>;
// Called once the final response's headers are in, before its body, with
// every response so far (result.responses.back() is the final one): an error
// stops the transfer (e.g. a status or size the caller cannot use).
using HttpHeadersHook = std::function<Status(const HttpResult&)>;

// Runs one transfer (thread-safe; each call has its own connection). A
// non-2xx status is not an error here: the caller reads result.status().
// Errors: kIo (DNS, connect, TLS, cut transfer, stall) naming the URL and
// what failed, kCancelled (stop requested), or the sink's / hook's error.
Result<HttpResult> http_fetch(const HttpRequest& request, const HttpSink& sink, std::stop_token stop = {},
                              const HttpHeadersHook& on_headers = {});
// A small body (JSON) in memory; more than max_bytes is an error.
Result<std::pair<HttpResult, std::string>> http_get_text(const HttpRequest& request, size_t max_bytes,
                                                         std::stop_token stop = {});

// "codey/0.1.0 (libcurl 7.88.1)", sent as User-Agent.
std::string http_user_agent();

}  // namespace codey
