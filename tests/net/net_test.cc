// Tests of the net layer: SHA-256 against published vectors, and HTTP
// transfers against servers on loopback (redirects recorded hop by hop, no
// token sent on to another port, Range, error bodies, cancellation, refused
// connections).
#include <gtest/gtest.h>

#include <thread>

#include "codey/net.h"
#include "testing/stand_in_hub.h"
#include "testing/testing.h"

namespace codey {
namespace {

using testing::LoopbackServer;

TEST(Sha256, PublishedVectorsAndChunking) {
  Sha256 h;
  EXPECT_EQ(h.hex_digest(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  h.update(std::string_view("abc"));
  EXPECT_EQ(h.hex_digest(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const std::string m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  for (size_t cut = 0; cut <= m.size(); cut += 7) {
    h.update(std::string_view(m).substr(0, cut));
    h.update(std::string_view(m).substr(cut));
    EXPECT_EQ(h.hex_digest(), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1") << cut;
  }
  const std::string path = testing::temp_dir() + "/f";
  testing::write_file_bytes(path, std::vector<uint8_t>(m.begin(), m.end()));
  EXPECT_EQ(*sha256_file(path), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(*sha256_file(path, 3), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  auto too_far = sha256_file(path, m.size() + 1);
  ASSERT_FALSE(too_far.has_value());
  EXPECT_FALSE(sha256_file(path + ".missing").has_value());
}

TEST(Http, RedirectsAreRecordedAndTheTokenStaysWithItsHost) {
  std::vector<std::string> target_auth;
  std::mutex mu;
  LoopbackServer target([&](const LoopbackServer::Request& r, LoopbackServer::Conn& c) {
    {
      std::lock_guard l(mu);
      target_auth.push_back(r.headers.count("authorization") ? r.headers.at("authorization") : "");
    }
    c.respond(200, {{"X-Where", "target"}}, "payload:" + (r.headers.count("range") ? r.headers.at("range") : ""));
  });
  LoopbackServer origin([&](const LoopbackServer::Request& r, LoopbackServer::Conn& c) {
    EXPECT_EQ(r.headers.count("authorization") ? r.headers.at("authorization") : "", "Bearer secret");
    c.respond(302, {{"Location", target.url() + "/blob"}, {"X-Linked-Size", "42"}}, "");
  });
  HttpRequest req;
  req.url = origin.url() + "/file";
  req.headers = {"Authorization: Bearer secret"};
  req.range_from = 5;
  std::string body;
  int hook_calls = 0;
  auto r = http_fetch(
      req,
      [&](std::span<const uint8_t> b) -> Status {
        body.append(reinterpret_cast<const char*>(b.data()), b.size());
        return {};
      },
      {},
      [&](const HttpResult& so_far) -> Status {
        ++hook_calls;
        EXPECT_EQ(so_far.responses.size(), 2u);
        EXPECT_EQ(so_far.status(), 200);
        return {};
      });
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(hook_calls, 1) << "only the final response's headers";
  ASSERT_EQ(r->responses.size(), 2u);
  EXPECT_EQ(r->responses[0].status, 302);
  EXPECT_EQ(r->responses[1].status, 200);
  EXPECT_EQ(r->first_header("x-linked-size").value_or(""), "42");
  EXPECT_EQ(r->headers().find("X-WHERE").value_or(""), "target");
  EXPECT_EQ(body, "payload:bytes=5-");
  EXPECT_EQ(r->body_bytes, body.size());
  ASSERT_EQ(target_auth.size(), 1u);
  EXPECT_EQ(target_auth[0], "") << "the token must not go to the host a redirect names";
}

TEST(Http, ErrorBodiesAreKeptAndNotStreamed) {
  LoopbackServer s([](const LoopbackServer::Request&, LoopbackServer::Conn& c) {
    c.respond(404, {{"X-Error-Code", "EntryNotFound"}}, R"({"error":"Entry not found"})");
  });
  HttpRequest req;
  req.url = s.url() + "/x";
  bool sunk = false;
  auto r = http_fetch(req, [&](std::span<const uint8_t>) -> Status {
    sunk = true;
    return {};
  });
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->status(), 404);
  EXPECT_FALSE(sunk);
  EXPECT_EQ(r->error_body, R"({"error":"Entry not found"})");
  EXPECT_EQ(r->first_header("x-error-code").value_or(""), "EntryNotFound");
}

TEST(Http, CutTransferIsAnIoErrorAndASinkErrorStopsIt) {
  LoopbackServer s([](const LoopbackServer::Request&, LoopbackServer::Conn& c) {
    c.respond(200, {}, std::string(100, 'x'), 1000);  // declares 1000, sends 100, closes
  });
  HttpRequest req;
  req.url = s.url() + "/x";
  uint64_t got = 0;
  auto r = http_fetch(req, [&](std::span<const uint8_t> b) -> Status {
    got += b.size();
    return {};
  });
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kIo);
  EXPECT_NE(r.error().message.find(s.url()), std::string::npos) << r.error().message;
  EXPECT_EQ(got, 100u);
  auto refused = http_fetch(req, [](std::span<const uint8_t>) -> Status {
    return make_error(ErrorCode::kResourceExhausted, "disk full");
  });
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, ErrorCode::kResourceExhausted);
  EXPECT_EQ(refused.error().message, "disk full");
}

TEST(Http, StopRequestCancelsAStalledTransfer) {
  std::atomic<bool> release{false};
  LoopbackServer s([&](const LoopbackServer::Request&, LoopbackServer::Conn& c) {
    c.respond(200, {}, "abc", 1000);
    while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  });
  HttpRequest req;
  req.url = s.url() + "/x";
  std::stop_source stop;
  auto r = http_fetch(req, [&](std::span<const uint8_t>) -> Status {
    stop.request_stop();  // as Ctrl-C would, once bytes flow
    return {};
  }, stop.get_token());
  release = true;
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kCancelled);
}

TEST(Http, RefusedConnectionNamesTheUrl) {
  int port = 0;
  {
    LoopbackServer s([](const LoopbackServer::Request&, LoopbackServer::Conn&) {});
    port = s.port();
  }  // closed: nothing listens there now
  HttpRequest req;
  req.url = fmt::format("http://127.0.0.1:{}/api", port);
  auto r = http_get_text(req, 1000);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kIo);
  EXPECT_NE(r.error().message.find(req.url), std::string::npos) << r.error().message;
}

TEST(Http, TextBodiesAreCapped) {
  LoopbackServer s([](const LoopbackServer::Request&, LoopbackServer::Conn& c) {
    c.respond(200, {}, std::string(5000, 'j'));
  });
  HttpRequest req;
  req.url = s.url() + "/x";
  auto ok = http_get_text(req, 5000);
  ASSERT_TRUE(ok.has_value()) << ok.error().message;
  EXPECT_EQ(ok->second.size(), 5000u);
  auto big = http_get_text(req, 4999);
  ASSERT_FALSE(big.has_value());
  EXPECT_EQ(big.error().code, ErrorCode::kResourceExhausted);
}

}  // namespace
}  // namespace codey
