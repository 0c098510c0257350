// Tests of the HTTP/1.1 request framing (src/server/http_parse.cc): heads
// within their limits, what HTTP forbids (smuggling shapes), chunked bodies
// fed in every split, and inflation that never produces more than the limit.
#include "server/http_parse.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include "server/serve_testing.h"

namespace codey::server {
namespace {

HeadParse parse(std::string_view s, HttpLimits l = {}) { return parse_head(s, l); }

TEST(HttpHead, ParsesARequestAndItsFraming) {
  const std::string req =
      "POST /v1/chat%2Fx/completions?a=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Length: 12\r\n"
      "Content-Type: application/json\r\nX-Empty:\r\nExpect: 100-continue\r\nContent-Encoding: GZIP\r\n\r\n{\"a\":1}";
  HeadParse p = parse(req);
  ASSERT_EQ(p.kind, HeadParse::kDone) << p.error.message;
  EXPECT_EQ(p.head.method, "POST");
  EXPECT_EQ(p.head.path, "/v1/chat/x/completions");
  EXPECT_EQ(p.head.query, "a=1");
  EXPECT_EQ(p.head.content_length, 12u);
  EXPECT_TRUE(p.head.keep_alive);
  EXPECT_TRUE(p.head.expect_continue);
  EXPECT_EQ(p.head.content_encoding, "gzip");
  EXPECT_EQ(p.head.header("content-type"), "application/json");
  EXPECT_NE(p.head.find("x-empty"), nullptr);
  EXPECT_EQ(p.consumed, req.find("\r\n\r\n") + 4);
}

TEST(HttpHead, EveryPrefixIsIncomplete) {
  const std::string req = "GET /health HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
  for (size_t n = 0; n < req.size(); ++n) EXPECT_EQ(parse(req.substr(0, n)).kind, HeadParse::kIncomplete) << n;
  HeadParse p = parse(req);
  ASSERT_EQ(p.kind, HeadParse::kDone);
  EXPECT_FALSE(p.head.keep_alive);
}

TEST(HttpHead, BareLineFeedsAndLeadingBlankLinesAreAccepted) {
  HeadParse p = parse("\r\n\nGET / HTTP/1.0\nConnection: keep-alive\n\n");
  ASSERT_EQ(p.kind, HeadParse::kDone) << p.error.message;
  EXPECT_EQ(p.head.minor_version, 0);
  EXPECT_TRUE(p.head.keep_alive);  // HTTP/1.0 without Host is fine
  EXPECT_FALSE(parse("GET / HTTP/1.0\r\n\r\n").head.keep_alive);
}

TEST(HttpHead, LimitsApplyBeforeTheLineEnds) {
  HttpLimits l;
  l.max_request_line = 100;
  l.max_head = 400;
  l.max_header_count = 3;
  // A request line that never ends is refused once it is longer than the limit.
  EXPECT_EQ(parse("GET /" + std::string(95, 'a'), l).kind, HeadParse::kIncomplete);
  HeadParse line = parse("GET /" + std::string(200, 'a'), l);
  EXPECT_EQ(line.kind, HeadParse::kError);
  EXPECT_EQ(line.error.status, 414);
  EXPECT_EQ(parse("GET /" + std::string(200, 'a') + " HTTP/1.1\r\n", l).error.status, 414);
  // A header block that never ends, or has too many fields.
  const std::string start = "GET / HTTP/1.1\r\nHost: a\r\n";
  HeadParse big = parse(start + "X: " + std::string(500, 'b'), l);
  EXPECT_EQ(big.kind, HeadParse::kError);
  EXPECT_EQ(big.error.status, 431);
  EXPECT_EQ(parse(start + "X: " + std::string(500, 'b') + "\r\n\r\n", l).error.status, 431);
  EXPECT_EQ(parse(start + "A: 1\r\nB: 2\r\nC: 3\r\n\r\n", l).error.status, 431);
  EXPECT_EQ(parse(start + "A: 1\r\nB: 2\r\n\r\n", l).kind, HeadParse::kDone);
}

TEST(HttpHead, RefusesWhatHttpForbids) {
  struct Case {
    const char* head;
    int status;
  };
  const Case cases[] = {
      {"GET / HTTP/1.1\r\n\r\n", 400},                                           // no Host
      {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},                     // two Hosts
      {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
      {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n folded\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a\r\nNo colon\r\n\r\n", 400},
      {"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505},
      {"GET / FTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"GET nopath HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"GET /a%00b HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"GET /a%zz HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"GET /a% HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nHost: a\r\nExpect: something\r\n\r\n", 417},
      {"POST / HTTP/1.1\r\nHost: a\r\nContent-Encoding: gzip, br\r\n\r\n", 415},
  };
  for (const auto& c : cases) {
    HeadParse p = parse(c.head);
    EXPECT_EQ(p.kind, HeadParse::kError) << c.head;
    EXPECT_EQ(p.error.status, c.status) << c.head << " -> " << p.error.message;
    EXPECT_FALSE(p.error.message.empty());
  }
  // Allowed shapes of the same fields.
  EXPECT_EQ(parse("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n").head.path, "*");
  EXPECT_EQ(parse("GET http://a:1/v1/models?x HTTP/1.1\r\nHost: a\r\n\r\n").head.path, "/v1/models");
  EXPECT_EQ(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n").head.content_length, 5u);
  EXPECT_EQ(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Encoding: identity\r\n\r\n").head.content_encoding, "");
}

std::string decode_all(const std::string& wire, size_t step, ChunkedDecoder::Status* last, std::string* rest,
                       uint64_t max_body = 1 << 20) {
  ChunkedDecoder d;
  std::string out;
  ChunkedDecoder::Status st = ChunkedDecoder::Status::kNeedMore;
  size_t pos = 0;
  std::string pending;
  while (pos < wire.size() && st == ChunkedDecoder::Status::kNeedMore) {
    pending += wire.substr(pos, step);
    pos += step;
    std::string_view in = pending;
    st = d.feed(in, out, max_body, 1024);
    pending = std::string(in);
  }
  *last = st;
  *rest = pending + (pos < wire.size() ? wire.substr(pos) : "");
  return out;
}

TEST(HttpChunked, DecodesInEverySplit) {
  const std::string wire = "5;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nTrailer: x\r\n\r\nGET /next";
  for (size_t step = 1; step <= wire.size(); ++step) {
    ChunkedDecoder::Status st;
    std::string rest;
    const std::string out = decode_all(wire, step, &st, &rest);
    ASSERT_EQ(st, ChunkedDecoder::Status::kDone) << step;
    EXPECT_EQ(out, "helloabcdefghijklmnopqrstuvwxyz") << step;
    EXPECT_EQ(rest, "GET /next") << step;
  }
}

TEST(HttpChunked, RefusesOversizeAndMalformedBodies) {
  struct Case {
    std::string wire;
    int status;
  };
  const Case cases[] = {
      {"zz\r\n", 400},
      {"5\r\nhelloXX", 400},
      {std::string(2000, '1'), 400},
      {"ffffffffffffffffff\r\n", 400},
      {"100\r\n", 413},  // over the 64-byte limit before a byte of data
      {"20\r\n" + std::string(32, 'a') + "\r\n21\r\n", 413},
      {"0\r\n" + std::string(2000, 'x'), 431},
  };
  for (const auto& c : cases) {
    ChunkedDecoder::Status st;
    std::string rest;
    const std::string out = decode_all(c.wire, 7, &st, &rest, 64);
    EXPECT_EQ(st, ChunkedDecoder::Status::kError) << c.wire.substr(0, 40);
    EXPECT_LE(out.size(), 64u);
  }
  ChunkedDecoder d;
  std::string out;
  std::string_view in = "100\r\n";
  ASSERT_EQ(d.feed(in, out, 64, 1024), ChunkedDecoder::Status::kError);
  EXPECT_EQ(d.error().status, 413);
}

std::string gzip(std::string_view s, int window = 31) {
  z_stream zs{};
  deflateInit2(&zs, 6, Z_DEFLATED, window, 8, Z_DEFAULT_STRATEGY);
  std::string out(compressBound(s.size()) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(s.data()));
  zs.avail_in = static_cast<uInt>(s.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

TEST(HttpInflate, DecodesGzipZlibAndRawDeflate) {
  const std::string text = R"({"model":"tiny","prompt":"hello hello hello hello"})";
  EXPECT_EQ(inflate_body(gzip(text), "gzip", 1 << 20).value(), text);
  EXPECT_EQ(inflate_body(gzip(text), "x-gzip", 1 << 20).value(), text);
  EXPECT_EQ(inflate_body(gzip(text, 15), "deflate", 1 << 20).value(), text);
  EXPECT_EQ(inflate_body(gzip(text, -15), "deflate", 1 << 20).value(), text);
  // Concatenated gzip members are one body (RFC 1952).
  EXPECT_EQ(inflate_body(gzip("ab") + gzip("cd"), "gzip", 1 << 20).value(), "abcd");
}

TEST(HttpInflate, RefusesCorruptTruncatedAndUnknown) {
  const std::string z = gzip("some text to compress, some text to compress");
  EXPECT_EQ(inflate_body(z.substr(0, z.size() / 2), "gzip", 1 << 20).error().status, 400);
  std::string bad = z;
  bad[12] ^= 0x55;
  EXPECT_EQ(inflate_body(bad, "gzip", 1 << 20).error().status, 400);
  EXPECT_EQ(inflate_body(gzip("x", 15) + "junk", "deflate", 1 << 20).error().status, 400);
  EXPECT_EQ(inflate_body(z, "br", 1 << 20).error().status, 415);
  EXPECT_EQ(inflate_body("", "gzip", 1 << 20).error().status, 400);
}

TEST(HttpInflate, ABombStopsAtTheLimit) {
  // 1 GiB of zeros in about 1 MiB; the output never exceeds the limit.
  const std::string bomb = serve_testing::gzip_zero_bomb(uint64_t(1) << 22);
  ASSERT_LT(bomb.size(), 1100u << 10);
  auto r = inflate_body(bomb, "gzip", 1 << 20);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().status, 413);
  // The builder is right: a small bomb inflates to exactly its zeros (CRC and size checked by zlib).
  auto small = inflate_body(serve_testing::gzip_zero_bomb(1000), "gzip", 1 << 20);
  ASSERT_TRUE(small.has_value()) << small.error().message;
  EXPECT_EQ(*small, std::string(1 + 258 * 1000, '\0'));
}

TEST(HttpPath, PercentDecoding) {
  EXPECT_EQ(percent_decode_path("/a%20b%2Fc").value(), "/a b/c");
  EXPECT_FALSE(percent_decode_path("/%0a").has_value());
  EXPECT_FALSE(percent_decode_path("/%7f").has_value());
  EXPECT_FALSE(percent_decode_path("/%4").has_value());
  EXPECT_EQ(percent_decode_path("/%e2%82%ac").value(), "/\xe2\x82\xac");
}

}  // namespace
}  // namespace codey::server
