// libFuzzer target: the HTTP/1.1 request framing of `codey serve`
// (src/server/http_parse.cc). Any bytes: parse_head must say incomplete,
// done or error without crashing, never consume more than it was given,
// never hand over a request line or head over the limits; the chunked
// decoder and inflate_body must stop at max_body; the path decoder must
// never yield a control character. The input is also fed split at a
// fuzzer-chosen point, as it arrives from a socket.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "server/http_parse.h"

using namespace codey::server;

namespace {

void check_head(std::string_view bytes, const HttpLimits& limits) {
  const HeadParse p = parse_head(bytes, limits);
  if (p.kind != HeadParse::kDone) return;
  if (p.consumed == 0 || p.consumed > bytes.size() || p.consumed > limits.max_head + 4) __builtin_trap();
  if (p.head.headers.size() > limits.max_header_count) __builtin_trap();
  const RequestHead& h = p.head;
  if (h.chunked && h.content_length) __builtin_trap();  // smuggling: must be refused
  if (h.path.empty() || h.path.front() != '/') __builtin_trap();
  for (char c : h.path)
    if (static_cast<unsigned char>(c) < 0x20) __builtin_trap();
  (void)h.header("Host");
  std::string_view rest = bytes.substr(p.consumed);
  if (h.chunked) {
    ChunkedDecoder d;
    std::string body;
    const auto st = d.feed(rest, body, limits.max_body, limits.max_head);
    if (body.size() > limits.max_body) __builtin_trap();
    if (st == ChunkedDecoder::Status::kError && d.error().status < 400) __builtin_trap();
  }
  if (!h.content_encoding.empty() && known_content_encoding(h.content_encoding)) {
    auto out = inflate_body(rest, h.content_encoding, limits.max_body);
    if (out && out->size() > limits.max_body) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  HttpLimits limits;
  limits.max_body = 4096;
  limits.max_head = 2048;
  limits.max_request_line = 512;
  limits.max_header_count = 16;
  const std::string_view all(reinterpret_cast<const char*>(data) + 1, size - 1);
  check_head(all, limits);
  // As it arrives: a prefix first (must not be 'done' with more than it has).
  const size_t cut = all.empty() ? 0 : data[0] % (all.size() + 1);
  const HeadParse part = parse_head(all.substr(0, cut), limits);
  if (part.kind == HeadParse::kDone && part.consumed > cut) __builtin_trap();
  if (auto d = percent_decode_path(all.substr(0, std::min<size_t>(all.size(), 256))))
    for (char c : *d)
      if (static_cast<unsigned char>(c) < 0x20) __builtin_trap();
  return 0;
}
