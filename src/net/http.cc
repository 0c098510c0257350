// HTTP(S) transfers with libcurl: one easy handle per call (thread-safe
// without shared state), every response's headers recorded (the Hub describes
// a file on the redirect, not on the CDN's answer), bodies of 2xx responses
// streamed to the caller, error bodies kept for messages.
#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <mutex>

#include "codey/net.h"

#ifndef CODEY_VERSION
#define CODEY_VERSION "0"
#endif

namespace codey {
namespace {

constexpr size_t kMaxErrorBody = 64u << 10;

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return std::tolower(x) == std::tolower(y); });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == '\r' || s.back() == '\n' || s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// State shared with libcurl's callbacks for one transfer.
struct Transfer {
  const HttpRequest* req = nullptr;
  const HttpSink* sink = nullptr;
  const HttpHeadersHook* hook = nullptr;
  std::stop_token stop;
  CURL* curl = nullptr;
  HttpResult result;
  bool in_headers = false;  // between a status line and the blank line ending its headers
  bool final_response = false;  // the current response is the one whose body counts
  std::optional<Error> callback_error;  // the sink's or hook's error that stopped the transfer
  // Stall detection: the last time bytes arrived (curl's own low-speed check
  // averages over several seconds, so a burst hides a stall).
  Clock::time_point last_data = Clock::now();
  curl_off_t last_now = -1;
  bool stalled = false;

  bool followed(const HttpResponse& r) const {
    if (!req->follow_redirects) return false;
    const int s = r.status;
    return (s == 301 || s == 302 || s == 303 || s == 307 || s == 308) && r.headers.find("location").has_value();
  }
};

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::string_view line(data, size * n);
  if (line.starts_with("HTTP/")) {
    HttpResponse r;
    const auto sp = line.find(' ');
    if (sp != std::string_view::npos) {
      int status = 0;
      for (size_t i = sp + 1; i < line.size() && std::isdigit(static_cast<unsigned char>(line[i])); ++i)
        status = status * 10 + (line[i] - '0');
      r.status = status;
    }
    char* url = nullptr;
    curl_easy_getinfo(t->curl, CURLINFO_EFFECTIVE_URL, &url);
    r.url = url ? url : t->req->url;
    t->result.responses.push_back(std::move(r));
    t->in_headers = true;
    t->final_response = false;
    return size * n;
  }
  if (t->result.responses.empty()) return size * n;
  HttpResponse& cur = t->result.responses.back();
  const std::string_view body = trim(line);
  if (body.empty()) {  // end of this response's headers
    t->in_headers = false;
    if (cur.status >= 100 && cur.status < 200) {  // 100 Continue and friends: not a response of its own
      t->result.responses.pop_back();
      return size * n;
    }
    t->final_response = !t->followed(cur);
    if (t->final_response && t->hook && *t->hook) {
      auto st = (*t->hook)(t->result);
      if (!st) {
        t->callback_error = std::move(st.error());
        return 0;  // aborts the transfer
      }
    }
    return size * n;
  }
  const auto colon = body.find(':');
  if (colon != std::string_view::npos)
    cur.headers.items.emplace_back(std::string(trim(body.substr(0, colon))), std::string(trim(body.substr(colon + 1))));
  return size * n;
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t len = size * n;
  const int status = t->result.status();
  if (status >= 200 && status < 300) {
    if (t->sink && *t->sink) {
      auto st = (*t->sink)({reinterpret_cast<const uint8_t*>(data), len});
      if (!st) {
        t->callback_error = std::move(st.error());
        return 0;
      }
    }
    t->result.body_bytes += len;
  } else if (t->result.error_body.size() < kMaxErrorBody) {
    t->result.error_body.append(data, std::min(len, kMaxErrorBody - t->result.error_body.size()));
  }
  return len;
}

int on_progress(void* user, curl_off_t, curl_off_t dlnow, curl_off_t, curl_off_t ulnow) {
  auto* t = static_cast<Transfer*>(user);
  if (t->stop.stop_requested()) return 1;
  const curl_off_t moved = dlnow + ulnow;
  const auto now = Clock::now();
  if (moved != t->last_now) {
    t->last_now = moved;
    t->last_data = now;
  } else if (now - t->last_data > t->req->stall_timeout) {
    t->stalled = true;
    return 1;
  }
  return 0;
}

// Problems that another try will not fix (a bad URL, a certificate that does
// not verify, a refused redirect) are kInvalidArgument; the rest (DNS,
// connect, cut or stalled transfer) kIo, which callers may retry.
ErrorCode classify(CURLcode c) {
  switch (c) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_TOO_MANY_REDIRECTS:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
      return ErrorCode::kInvalidArgument;
    default:
      return ErrorCode::kIo;
  }
}

}  // namespace

std::optional<std::string_view> HttpHeaders::find(std::string_view name) const {
  for (const auto& [k, v] : items)
    if (iequals(k, name)) return std::string_view(v);
  return std::nullopt;
}

std::optional<std::string_view> HttpResult::first_header(std::string_view name) const {
  for (const auto& r : responses)
    if (auto v = r.headers.find(name)) return v;
  return std::nullopt;
}

std::string http_user_agent() {
  const curl_version_info_data* v = curl_version_info(CURLVERSION_NOW);
  return fmt::format("codey/{} (libcurl {})", CODEY_VERSION, v && v->version ? v->version : "?");
}

Result<HttpResult> http_fetch(const HttpRequest& request, const HttpSink& sink, std::stop_token stop,
                              const HttpHeadersHook& on_headers) {
  global_init();
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) return make_error(ErrorCode::kResourceExhausted, "cannot start an HTTP transfer (libcurl)");
  Transfer t;
  t.req = &request;
  t.sink = &sink;
  t.hook = &on_headers;
  t.stop = stop;
  t.curl = curl.get();
  char errbuf[CURL_ERROR_SIZE] = {0};
  CURL* c = curl.get();
  const std::string agent = http_user_agent();
  curl_easy_setopt(c, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_USERAGENT, agent.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  // An https URL never continues over plain http (that would expose a token
  // or let the bytes be changed on the way).
  const bool https = request.url.starts_with("https://");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, https ? "https" : "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, request.follow_redirects ? 1L : 0L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
  // curl sends a custom Authorization header only to the host (and port and
  // scheme) it was given for, never to the host a redirect points at.
  curl_easy_setopt(c, CURLOPT_UNRESTRICTED_AUTH, 0L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, static_cast<long>(request.connect_timeout.count()));
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  if (request.head) curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  const std::string range = fmt::format("{}-", request.range_from);
  if (request.range_from > 0) curl_easy_setopt(c, CURLOPT_RANGE, range.c_str());
  curl_slist* headers = nullptr;
  for (const auto& h : request.headers) headers = curl_slist_append(headers, h.c_str());
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> headers_owner(headers, curl_slist_free_all);
  if (headers) curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);

  const CURLcode rc = curl_easy_perform(c);
  if (rc == CURLE_OK) return std::move(t.result);
  if (t.callback_error) return std::unexpected(std::move(*t.callback_error));
  // The URL that failed (a redirect's target may be another host), never a token.
  char* where = nullptr;
  curl_easy_getinfo(c, CURLINFO_EFFECTIVE_URL, &where);
  const char* method = request.head ? "HEAD" : "GET";
  const std::string url = where ? where : request.url;
  if (t.stalled)
    return make_error(ErrorCode::kIo, "{} {}: no data for {} s", method, url, request.stall_timeout.count());
  if (rc == CURLE_ABORTED_BY_CALLBACK || stop.stop_requested())
    return make_error(ErrorCode::kCancelled, "{} {}: cancelled", method, url);
  const std::string detail = errbuf[0] ? std::string(trim(errbuf)) : std::string(curl_easy_strerror(rc));
  return make_error(classify(rc), "{} {}: {}", method, url, detail);
}

Result<std::pair<HttpResult, std::string>> http_get_text(const HttpRequest& request, size_t max_bytes,
                                                         std::stop_token stop) {
  std::string body;
  auto r = http_fetch(
      request,
      [&](std::span<const uint8_t> bytes) -> Status {
        if (body.size() + bytes.size() > max_bytes)
          return make_error(ErrorCode::kResourceExhausted, "GET {}: the answer is larger than {}", request.url,
                            format_bytes(max_bytes));
        body.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
        return {};
      },
      stop);
  if (!r) return std::unexpected(std::move(r.error()));
  return std::pair<HttpResult, std::string>(std::move(*r), std::move(body));
}

}  // namespace codey
