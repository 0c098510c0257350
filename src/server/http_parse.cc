// HTTP/1.1 request framing (see http_parse.h). Strict where leniency has
// bitten servers (request smuggling: Content-Length with Transfer-Encoding,
// differing Content-Lengths, obs-fold, whitespace before the colon), lenient
// where clients differ harmlessly (bare LF line ends, empty lines before the
// request line).
#include "server/http_parse.h"

#include <zlib.h>

#include <algorithm>
#include <charconv>

#include <fmt/format.h>

namespace codey::server {
namespace {

constexpr size_t kMaxChunkSizeLine = 1024;  // "1a2b;ext=value\r\n"
constexpr size_t kMaxMethod = 32;
constexpr size_t kMaxLeadingBlankLines = 8;  // RFC 9112 2.2: ignore at least one

bool is_tchar(unsigned char c) {
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return is_tchar(static_cast<unsigned char>(c)); });
}

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower(x) == lower(y); });
}

HeadParse error(int status, std::string message) {
  HeadParse p;
  p.kind = HeadParse::kError;
  p.error = HttpError{status, std::move(message)};
  return p;
}

// A header field value: visible ASCII, obs-text, spaces and tabs.
bool valid_value(std::string_view v) {
  return std::all_of(v.begin(), v.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return c == '\t' || (c >= 0x20 && c != 0x7f);
  });
}

// Request-target characters (RFC 3986 plus what clients send unescaped):
// visible ASCII only, no spaces or controls.
bool valid_target(std::string_view t) {
  return !t.empty() && std::all_of(t.begin(), t.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return c > 0x20 && c < 0x7f;
  });
}

// Fills the framing fields from the headers; an error for what HTTP forbids.
std::optional<HttpError> interpret_headers(RequestHead& h) {
  int hosts = 0;
  bool saw_te = false;
  for (const auto& f : h.headers) {
    const std::string& n = f.name;
    if (iequals(n, "Host")) {
      ++hosts;
    } else if (iequals(n, "Content-Length")) {
      // Digits only (no sign, no blanks inside); repeated values must agree.
      for (std::string_view item : split_list(f.value)) {
        uint64_t v = 0;
        const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
        if (ec != std::errc() || end != item.data() + item.size() || item.size() > 18)
          return HttpError{400, fmt::format("Content-Length must be a decimal number, got '{}'", f.value)};
        if (h.content_length && *h.content_length != v)
          return HttpError{400, "the request has Content-Length fields that disagree"};
        h.content_length = v;
      }
      if (!h.content_length) return HttpError{400, "Content-Length is empty"};
    } else if (iequals(n, "Transfer-Encoding")) {
      saw_te = true;
      const auto codings = split_list(f.value);
      if (codings.size() != 1 || !iequals(codings[0], "chunked"))
        return HttpError{501, fmt::format("Transfer-Encoding '{}' is not supported (only chunked)", f.value)};
      if (h.chunked) return HttpError{400, "Transfer-Encoding: chunked appears twice"};
      h.chunked = true;
    } else if (iequals(n, "Connection")) {
      for (std::string_view opt : split_list(f.value)) {
        if (iequals(opt, "close")) h.keep_alive = false;
        else if (iequals(opt, "keep-alive") && h.minor_version == 0) h.keep_alive = true;
      }
    } else if (iequals(n, "Expect")) {
      if (!iequals(trim(f.value), "100-continue"))
        return HttpError{417, fmt::format("Expect '{}' is not supported (only 100-continue)", f.value)};
      h.expect_continue = h.minor_version >= 1;
    } else if (iequals(n, "Content-Encoding")) {
      if (!h.content_encoding.empty()) return HttpError{415, "Content-Encoding appears twice"};
      const auto codings = split_list(f.value);
      if (codings.size() > 1)
        return HttpError{415, fmt::format("Content-Encoding '{}': at most one coding (gzip or deflate)", f.value)};
      if (!codings.empty() && !iequals(codings[0], "identity")) h.content_encoding = to_lower(codings[0]);
    }
  }
  if (saw_te && h.minor_version == 0) return HttpError{400, "Transfer-Encoding in an HTTP/1.0 request"};
  // Both framings at once is how requests are smuggled past proxies.
  if (saw_te && h.content_length) return HttpError{400, "the request has both Content-Length and Transfer-Encoding"};
  if (h.minor_version >= 1 && hosts != 1)
    return HttpError{400, hosts == 0 ? "the request has no Host header (HTTP/1.1 requires one)"
                                     : "the request has more than one Host header"};
  if (hosts > 1) return HttpError{400, "the request has more than one Host header"};
  return std::nullopt;
}

}  // namespace

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string to_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = lower(c);
  return out;
}

// Comma-separated list elements, trimmed, empty ones dropped.
std::vector<std::string_view> split_list(std::string_view s) {
  std::vector<std::string_view> out;
  while (!s.empty()) {
    const size_t comma = s.find(',');
    const std::string_view item = trim(s.substr(0, comma));
    if (!item.empty()) out.push_back(item);
    if (comma == std::string_view::npos) break;
    s.remove_prefix(comma + 1);
  }
  return out;
}

const std::string* RequestHead::find(std::string_view name) const {
  for (const auto& h : headers)
    if (iequals(h.name, name)) return &h.value;
  return nullptr;
}

std::string_view RequestHead::header(std::string_view name) const {
  const std::string* v = find(name);
  return v ? std::string_view(*v) : std::string_view();
}

HeadParse parse_head(std::string_view bytes, const HttpLimits& limits) {
  size_t pos = 0;
  // Blank lines before the request line (left over from a previous body).
  for (size_t n = 0; n < kMaxLeadingBlankLines; ++n) {
    if (bytes.substr(pos).starts_with("\r\n")) pos += 2;
    else if (bytes.substr(pos).starts_with("\n")) pos += 1;
    else break;
  }
  // Reads the next line [pos, eol) -> `line`; false when no line end yet.
  std::string_view line;
  auto next_line = [&]() -> bool {
    const size_t nl = bytes.find('\n', pos);
    if (nl == std::string_view::npos) return false;
    line = bytes.substr(pos, nl - pos);
    if (line.ends_with('\r')) line.remove_suffix(1);
    pos = nl + 1;
    return true;
  };

  const size_t line_start = pos;
  if (!next_line()) {
    if (bytes.size() - line_start > limits.max_request_line)
      return error(414, fmt::format("the request line is longer than {} bytes", limits.max_request_line));
    return {};
  }
  if (line.size() > limits.max_request_line)
    return error(414, fmt::format("the request line is longer than {} bytes", limits.max_request_line));
  if (line.find('\r') != std::string_view::npos) return error(400, "a bare CR in the request line");

  RequestHead h;
  {
    const size_t sp1 = line.find(' ');
    const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos)
      return error(400, "the request line is not 'METHOD target HTTP/1.1'");
    const std::string_view method = line.substr(0, sp1);
    const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    const std::string_view version = line.substr(sp2 + 1);
    if (!is_token(method) || method.size() > kMaxMethod) return error(400, "the request method is not a token");
    if (!valid_target(target)) return error(400, "the request target is empty or has spaces or control characters");
    if (version == "HTTP/1.1") h.minor_version = 1;
    else if (version == "HTTP/1.0") h.minor_version = 0;
    else if (version.starts_with("HTTP/")) return error(505, fmt::format("{} is not supported (HTTP/1.1 is)", version));
    else return error(400, "the request line does not end in HTTP/1.1");
    h.keep_alive = h.minor_version >= 1;
    h.method = std::string(method);
    h.target = std::string(target);
  }

  // Header fields up to the blank line.
  while (true) {
    if (!next_line()) {
      if (bytes.size() > limits.max_head)
        return error(431, fmt::format("the request head is larger than {} bytes", limits.max_head));
      return {};
    }
    if (pos > limits.max_head) return error(431, fmt::format("the request head is larger than {} bytes", limits.max_head));
    if (line.empty()) break;
    if (line.front() == ' ' || line.front() == '\t') return error(400, "folded header lines are not allowed");
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) return error(400, "a header line without ':'");
    const std::string_view name = line.substr(0, colon);
    if (!is_token(name)) return error(400, "a header name that is not a token (or has blanks before ':')");
    const std::string_view value = trim(line.substr(colon + 1));
    if (!valid_value(value)) return error(400, fmt::format("the {} header has control characters", name));
    if (h.headers.size() >= limits.max_header_count)
      return error(431, fmt::format("the request has more than {} header fields", limits.max_header_count));
    h.headers.push_back({std::string(name), std::string(value)});
  }
  if (auto e = interpret_headers(h)) return error(e->status, std::move(e->message));

  // The path of the target: origin-form "/p?q", absolute-form
  // "http://host/p?q" (to be accepted by servers), or "*" for OPTIONS.
  std::string_view t = h.target;
  if (t.starts_with("http://") || t.starts_with("https://")) {
    t.remove_prefix(t.find("//") + 2);
    const size_t slash = t.find('/');
    t = slash == std::string_view::npos ? std::string_view("/") : t.substr(slash);
  }
  if (t == "*") {
    if (h.method != "OPTIONS") return error(400, "the request target '*' is only for OPTIONS");
    h.path = "*";
  } else {
    if (!t.starts_with('/')) return error(400, "the request target must start with '/'");
    const size_t q = t.find('?');
    auto path = percent_decode_path(t.substr(0, q));
    if (!path) return error(400, "the request path has a broken %-escape or an escaped control character");
    h.path = std::move(*path);
    if (q != std::string_view::npos) h.query = std::string(t.substr(q + 1));
  }

  HeadParse p;
  p.kind = HeadParse::kDone;
  p.head = std::move(h);
  p.consumed = pos;
  return p;
}

ChunkedDecoder::Status ChunkedDecoder::fail(int status, std::string message) {
  error_ = HttpError{status, std::move(message)};
  state_ = State::kDone;
  return Status::kError;
}

ChunkedDecoder::Status ChunkedDecoder::feed(std::string_view& in, std::string& out, uint64_t max_body,
                                            size_t max_trailer) {
  if (state_ == State::kDone) return error_.message.empty() ? Status::kDone : Status::kError;
  // Appends bytes of the current line to line_ until '\n'; true when complete.
  auto take_line = [&](size_t limit) -> std::optional<bool> {
    const size_t nl = in.find('\n');
    const size_t n = nl == std::string_view::npos ? in.size() : nl;
    if (line_.size() + n > limit) return std::nullopt;
    line_.append(in.substr(0, n));
    if (nl == std::string_view::npos) {
      in.remove_prefix(n);
      return false;
    }
    in.remove_prefix(nl + 1);
    if (line_.ends_with('\r')) line_.pop_back();
    return true;
  };
  while (!in.empty()) {
    switch (state_) {
      case State::kSize: {
        auto done = take_line(kMaxChunkSizeLine);
        if (!done) return fail(400, fmt::format("a chunk size line longer than {} bytes", kMaxChunkSizeLine));
        if (!*done) return Status::kNeedMore;
        std::string_view s = line_;
        s = s.substr(0, s.find(';'));  // chunk extensions are ignored
        s = trim(s);
        uint64_t size = 0;
        const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), size, 16);
        if (s.empty() || ec != std::errc() || end != s.data() + s.size() || s.size() > 15)
          return fail(400, "a chunk size that is not a hex number");
        line_.clear();
        if (size == 0) {
          state_ = State::kTrailer;
          break;
        }
        if (size > max_body || out.size() + size > max_body)
          return fail(413, fmt::format("the request body is larger than the limit of {} bytes", max_body));
        remaining_ = size;
        state_ = State::kData;
        break;
      }
      case State::kData: {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, in.size()));
        out.append(in.substr(0, n));
        in.remove_prefix(n);
        remaining_ -= n;
        if (remaining_ == 0) state_ = State::kDataEnd;
        break;
      }
      case State::kDataEnd: {
        auto done = take_line(1);
        if (!done || (*done && !line_.empty())) return fail(400, "chunk data is not followed by CRLF");
        if (!*done) return Status::kNeedMore;
        state_ = State::kSize;
        break;
      }
      case State::kTrailer: {
        const size_t before = in.size();
        auto done = take_line(max_trailer);
        trailer_bytes_ += before - in.size();
        if (!done || trailer_bytes_ > max_trailer)
          return fail(431, fmt::format("the chunked trailer is larger than {} bytes", max_trailer));
        if (!*done) return Status::kNeedMore;
        if (line_.empty()) {
          state_ = State::kDone;
          return Status::kDone;
        }
        line_.clear();  // trailer fields are read and dropped
        break;
      }
      case State::kDone:
        return Status::kDone;
    }
  }
  return state_ == State::kDone ? Status::kDone : Status::kNeedMore;
}

bool known_content_encoding(std::string_view e) { return e == "gzip" || e == "x-gzip" || e == "deflate"; }

std::expected<std::string, HttpError> inflate_body(std::string_view in, std::string_view encoding, uint64_t max_out) {
  if (!known_content_encoding(encoding))
    return std::unexpected(HttpError{415, fmt::format("Content-Encoding '{}' is not supported (gzip or deflate)", encoding)});
  const bool gzip = encoding != "deflate";
  // deflate: RFC 9110 means the zlib format; some clients send raw deflate.
  int window = 15 + 16;
  if (!gzip) {
    const bool zlib_header = in.size() >= 2 && (static_cast<unsigned char>(in[0]) & 0x0f) == 8 &&
                             ((static_cast<unsigned char>(in[0]) << 8) | static_cast<unsigned char>(in[1])) % 31 == 0;
    window = zlib_header ? 15 : -15;
  }
  z_stream zs{};
  if (inflateInit2(&zs, window) != Z_OK) return std::unexpected(HttpError{500, "cannot start the decompressor"});
  struct Guard {
    z_stream* z;
    ~Guard() { inflateEnd(z); }
  } guard{&zs};
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(std::min<size_t>(in.size(), UINT32_MAX));
  size_t fed = zs.avail_in;
  std::string out;
  char buf[64 << 10];
  auto corrupt = [&](std::string_view why) {
    return std::unexpected(HttpError{400, fmt::format("the {} request body is corrupt: {}", encoding, why)});
  };
  while (true) {
    if (zs.avail_in == 0 && fed < in.size()) {
      zs.avail_in = static_cast<uInt>(std::min<size_t>(in.size() - fed, UINT32_MAX));
      fed += zs.avail_in;
    }
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof buf;
    const int rc = inflate(&zs, Z_NO_FLUSH);
    const size_t produced = sizeof buf - zs.avail_out;
    if (out.size() + produced > max_out)
      return std::unexpected(
          HttpError{413, fmt::format("the request body is larger than the limit of {} bytes once decompressed", max_out)});
    out.append(buf, produced);
    if (rc == Z_STREAM_END) {
      if (zs.avail_in == 0 && fed == in.size()) return out;
      if (!gzip) return corrupt("data after the end of the compressed stream");
      if (inflateReset(&zs) != Z_OK) return corrupt("cannot read the next gzip member");
      continue;  // concatenated gzip members form one body
    }
    if (rc == Z_OK) continue;
    if (rc == Z_BUF_ERROR && zs.avail_in == 0 && fed == in.size()) return corrupt("it ends early");
    if (rc == Z_BUF_ERROR) continue;
    return corrupt(zs.msg ? zs.msg : "bad data");
  }
}

std::optional<std::string> percent_decode_path(std::string_view s) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    c = lower(c);
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      const int a = hex(s[i + 1]), b = hex(s[i + 2]);
      if (a < 0 || b < 0) return std::nullopt;
      c = static_cast<char>(a * 16 + b);
      i += 2;
    }
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return std::nullopt;
    out.push_back(c);
  }
  return out;
}

std::string_view http_reason(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 499: return "Client Closed Request";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return status < 300 ? "OK" : status < 500 ? "Bad Request" : "Internal Server Error";
  }
}

}  // namespace codey::server
