// Tests of src/server/browser_policy.cc: which Host names, Origins and POST
// Content-Types a request may carry (#16 finding 6: cross-site requests and
// DNS rebinding).
#include "server/browser_policy.h"

#include <gtest/gtest.h>

#include "codey/server.h"

namespace codey::server {
namespace {

TEST(BrowserPolicy, WildcardMatch) {
  EXPECT_TRUE(wildcard_match("*", ""));
  EXPECT_TRUE(wildcard_match("*", "anything"));
  EXPECT_TRUE(wildcard_match("https://*.example.com", "https://a.b.EXAMPLE.com"));
  EXPECT_FALSE(wildcard_match("https://*.example.com", "https://example.com"));
  EXPECT_FALSE(wildcard_match("https://*.example.com", "https://a.example.com.evil.net"));
  EXPECT_FALSE(wildcard_match("https://*.example.com", "http://a.example.com"));
  EXPECT_TRUE(wildcard_match("a*b*c", "axxbyyc"));
  EXPECT_FALSE(wildcard_match("a*b*c", "axxbyy"));
  // Never exponential: a long hostile value against many stars.
  EXPECT_FALSE(wildcard_match("*a*a*a*a*a*a*a*a*a*a*b", std::string(20000, 'a')));
}

TEST(BrowserPolicy, HostNames) {
  EXPECT_EQ(host_name("LocalHost:8080"), "localhost");
  EXPECT_EQ(host_name("[::1]:80"), "::1");
  EXPECT_EQ(host_name("localhost."), "localhost");
  EXPECT_EQ(host_name("a b"), std::nullopt);
  EXPECT_EQ(host_name("[::1"), std::nullopt);
  EXPECT_EQ(host_name("[evil.example]"), std::nullopt);
  EXPECT_EQ(host_name("x:port"), std::nullopt);
  EXPECT_EQ(host_name(":80"), std::nullopt);
}

TEST(BrowserPolicy, Host) {
  BrowserPolicy p;
  p.bound_host = "myhost.lan";
  p.hosts = {"codey.svc", "*.codey.example"};
  for (const char* ok : {"", "127.0.0.1", "127.9.9.9:1", "localhost:11435", "a.localhost", "[::1]:11435",
                         "192.168.1.5", "[fe80::1]", "myhost.lan:11435", "codey.svc", "x.codey.example"})
    EXPECT_TRUE(host_allowed(p, ok)) << ok;
  for (const char* bad : {"evil.example", "localhost.evil.example", "127.0.0.1.evil.example", "codey.svc.evil",
                          "codey.example", "a b", "[::1", "evil.example:11435"})
    EXPECT_FALSE(host_allowed(p, bad)) << bad;
  p.hosts = {"*"};
  EXPECT_TRUE(host_allowed(p, "evil.example"));
}

TEST(BrowserPolicy, Origin) {
  BrowserPolicy p;
  p.origins = {"https://*.trusted.example", "http://exact.example:8080"};
  for (const char* ok : {"", "http://localhost", "http://localhost:3000", "https://127.0.0.1:8443", "http://[::1]:5173",
                         "http://a.localhost", "vscode-webview://abc", "app://x", "file://", "tauri://localhost",
                         "https://app.trusted.example", "http://exact.example:8080", "HTTP://LOCALHOST:1"})
    EXPECT_TRUE(origin_allowed(p, ok)) << ok;
  for (const char* bad : {"null", "https://evil.example", "http://localhost.evil.example", "https://trusted.example",
                          "http://exact.example", "http://exact.example:8081", "data:", "chrome-extension://abc",
                          "http://127.0.0.1.evil.example"})
    EXPECT_FALSE(origin_allowed(p, bad)) << bad;
  p.origins = {"*"};
  EXPECT_TRUE(origin_allowed(p, "https://evil.example"));
  EXPECT_FALSE(origin_allowed(p, "null")) << "null is never an origin to trust";
  EXPECT_EQ(split_origins(" a, ,b ,"), (std::vector<std::string>{"a", "b"}));
}

TEST(BrowserPolicy, ContentType) {
  EXPECT_EQ(content_type_refusal("POST", "", ""), std::nullopt);
  EXPECT_EQ(content_type_refusal("POST", "application/json", "http://localhost"), std::nullopt);
  EXPECT_EQ(content_type_refusal("POST", "Application/JSON; charset=utf-8", ""), std::nullopt);
  EXPECT_EQ(content_type_refusal("POST", "application/vnd.x+json", ""), std::nullopt);
  EXPECT_EQ(content_type_refusal("POST", "application/x-www-form-urlencoded", ""), std::nullopt);  // curl -d
  EXPECT_NE(content_type_refusal("POST", "application/x-www-form-urlencoded", "http://localhost"), std::nullopt);
  EXPECT_NE(content_type_refusal("POST", "text/plain", ""), std::nullopt);
  EXPECT_NE(content_type_refusal("POST", "text/plain;charset=UTF-8", "https://evil.example"), std::nullopt);
  EXPECT_NE(content_type_refusal("POST", "multipart/form-data; boundary=x", ""), std::nullopt);
  EXPECT_EQ(content_type_refusal("GET", "text/plain", ""), std::nullopt);
}

// #16 finding 9: serving beyond loopback without a key, and a key in ps.
TEST(BrowserPolicy, ExposureWarnings) {
  ServerConfig c;
  for (const char* loop : {"127.0.0.1", "localhost", "::1", "127.0.0.2"}) {
    c.host = loop;
    EXPECT_TRUE(exposure_warnings(c, false).empty()) << loop;
  }
  for (const char* open : {"0.0.0.0", "::", "192.168.1.5", "myhost.lan"}) {
    c.host = open;
    auto w = exposure_warnings(c, false);
    ASSERT_EQ(w.size(), 1u) << open;
    EXPECT_NE(w[0].find("without an API key"), std::string::npos) << w[0];
  }
  c.host = "0.0.0.0";
  c.api_key = "env:CODEY_API_KEY";
  EXPECT_TRUE(exposure_warnings(c, true).empty()) << "env:NAME on the command line is fine";
  c.api_key = "s3cret";
  auto w = exposure_warnings(c, true);
  ASSERT_EQ(w.size(), 1u);
  EXPECT_NE(w[0].find("ps"), std::string::npos) << w[0];
  EXPECT_TRUE(exposure_warnings(c, false).empty()) << "a key from codey.yaml is not on the command line";
}

}  // namespace
}  // namespace codey::server
