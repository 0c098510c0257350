// HTTP/1.1 request framing as pure functions over bytes: the request head
// (request line and header fields) with its size limits, the chunked transfer
// coding, and Content-Encoding inflation capped by the body limit. No I/O:
// the connection loop (http_server.cc) feeds what it has read so far, the
// fuzzer feeds arbitrary bytes. Every limit applies while reading, so no
// input makes these functions hold more than the limit.
#pragma once

#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace codey::server {

struct HttpLimits {
  size_t max_request_line = 8 << 10;   // "METHOD target HTTP/1.1"
  size_t max_head = 32 << 10;          // request line and every header field, with line ends
  size_t max_header_count = 64;
  uint64_t max_body = 8 << 20;         // the body as the handler sees it (de-chunked, inflated)
};

// A refusal with its HTTP status (400, 413, 414, 415, 431, 501...).
struct HttpError {
  int status = 400;
  std::string message;
};

struct HttpHeader {
  std::string name;   // as sent
  std::string value;  // without surrounding blanks
};

struct RequestHead {
  std::string method;  // "GET", "POST", ... (case-sensitive, as HTTP says)
  std::string target;  // as sent: "/v1/models?x=1"
  std::string path;    // the target's path, percent-decoded ("/v1/models")
  std::string query;   // after '?', as sent
  int minor_version = 1;  // HTTP/1.<minor>
  std::vector<HttpHeader> headers;

  // From the header fields (validated by parse_head):
  std::optional<uint64_t> content_length;
  bool chunked = false;           // Transfer-Encoding: chunked
  bool keep_alive = true;         // HTTP/1.1 unless "Connection: close"; 1.0 only with keep-alive
  bool expect_continue = false;   // Expect: 100-continue
  std::string content_encoding;   // lower-case; "" for none or identity

  // The first field called `name` (case-insensitive), or nullptr.
  const std::string* find(std::string_view name) const;
  std::string_view header(std::string_view name) const;  // "" when absent
  bool has_body() const { return chunked || content_length.value_or(0) > 0; }
};

// parse_head on the bytes received so far: kIncomplete (read more; the
// limits say it may still become a valid head), kDone (`consumed` bytes form
// the head, the blank line included), or kError.
struct HeadParse {
  enum Kind { kIncomplete, kDone, kError } kind = kIncomplete;
  RequestHead head;
  size_t consumed = 0;
  HttpError error;
};
HeadParse parse_head(std::string_view bytes, const HttpLimits& limits);

// Incremental decoder of the chunked transfer coding (RFC 9112 section 7.1):
// size lines (extensions ignored, at most 1 KiB), data, and trailer fields
// (read and dropped, at most HttpLimits::max_head bytes).
class ChunkedDecoder {
 public:
  enum class Status { kNeedMore, kDone, kError };
  // Consumes from the front of `in`, appending chunk data to `out`. After
  // kDone, `in` starts at the next request's first byte. Once the data would
  // pass `max_body`: kError with status 413, without storing the excess.
  Status feed(std::string_view& in, std::string& out, uint64_t max_body, size_t max_trailer);
  const HttpError& error() const { return error_; }

 private:
  enum class State { kSize, kData, kDataEnd, kTrailer, kDone };
  Status fail(int status, std::string message);
  State state_ = State::kSize;
  std::string line_;        // the size or trailer line being read
  uint64_t remaining_ = 0;  // data bytes left in this chunk
  size_t trailer_bytes_ = 0;
  HttpError error_;
};

// True for the codings inflate_body knows: gzip, x-gzip, deflate.
bool known_content_encoding(std::string_view encoding);
// Decodes a body sent with Content-Encoding gzip (concatenated members too)
// or deflate (zlib, or raw deflate as some clients send). Output beyond
// `max_out` bytes is never produced: 413. Corrupt or truncated input: 400.
std::expected<std::string, HttpError> inflate_body(std::string_view in, std::string_view encoding, uint64_t max_out);

// "%41b" -> "Ab"; nullopt for a broken escape or a decoded control character.
std::optional<std::string> percent_decode_path(std::string_view s);

std::string_view http_reason(int status);

// Field-value helpers (RFC 9110 5.6): blanks (SP, HTAB) trimmed from both
// ends; ASCII lower case; a comma-separated list's elements, trimmed, empty
// ones dropped.
std::string_view trim(std::string_view s);
std::string to_lower(std::string_view s);
std::vector<std::string_view> split_list(std::string_view s);

}  // namespace codey::server
