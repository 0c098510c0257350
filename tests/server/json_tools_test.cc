// JSON mode (src/server/json_constraint.cc). Tool calls: tests/chat (the
// parser, src/chat/tool_calls.cc) and responses_test.cc (the server's side).
#include <random>

#include <gtest/gtest.h>

#include "server/api.h"
#include "server/json_constraint.h"

namespace codey::server {
namespace {

bool accepts(std::string_view text, bool* complete = nullptr) {
  JsonRecognizer r;
  const bool ok = r.feed(text);
  if (complete) *complete = ok && r.complete();
  return ok;
}

TEST(JsonRecognizer, AcceptsObjectsAndTheirPrefixes) {
  const char* docs[] = {
      R"({})",
      R"( { "a" : 1 } )",
      R"({"a":[1,-2.5e+3,0,0.25,true,false,null,"x\"\\\/\b\f\n\r\t\u00e9"],"b":{"c":{}},"d":[]})",
      "{\"k\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"}",
      R"({"n":-0,"m":1E5,"o":[[[]]]})",
  };
  for (const char* d : docs) {
    bool complete = false;
    std::string s(d);
    while (!s.empty() && s.back() == ' ') s.pop_back();
    EXPECT_TRUE(accepts(s, &complete) && complete) << d;
    // every prefix is acceptable and not complete
    for (size_t n = 0; n + 1 < s.size(); ++n) {
      bool c = true;
      EXPECT_TRUE(accepts(s.substr(0, n), &c)) << s.substr(0, n);
      EXPECT_FALSE(c) << s.substr(0, n);
    }
  }
}

TEST(JsonRecognizer, RejectsInvalidJson) {
  const char* bad[] = {
      "[1]",          // top level must be an object
      "\"x\"",        //
      "{a:1}",        // unquoted key
      "{\"a\" 1}",    // missing colon
      "{\"a\":1,}",   // trailing comma
      "{\"a\":01}",   // leading zero
      "{\"a\":1.}",   // no fraction digits
      "{\"a\":-}",    //
      "{\"a\":tru}",  //
      "{\"a\":\"\x01\"}",  // raw control character
      "{\"a\":\"\\x\"}",   // bad escape
      "{\"a\":\"\\u12g4\"}",
      "{\"a\":\"\xc0\xaf\"}",      // overlong UTF-8
      "{\"a\":\"\xed\xa0\x80\"}",  // surrogate
      "{\"a\":\"\xff\"}",
      "{\"a\":1}}",   // text after the end
      "{\"a\":1} ",   // even whitespace: generation stops at the end
      "{\"a\":[1}",   // mismatched closer
  };
  for (const char* b : bad) EXPECT_FALSE(accepts(b)) << b;
}

TEST(JsonRecognizer, BoundsNestingAndPadding) {
  std::string deep = "{\"a\":";
  for (int i = 0; i < JsonRecognizer::kMaxDepth - 1; ++i) deep += "[";
  EXPECT_TRUE(accepts(deep));
  EXPECT_FALSE(accepts(deep + "["));
  EXPECT_TRUE(accepts("{" + std::string(JsonRecognizer::kMaxWhitespaceRun, ' ')));
  EXPECT_FALSE(accepts("{" + std::string(JsonRecognizer::kMaxWhitespaceRun + 1, ' ')));
}

TEST(JsonConstraint, MasksTokensAndStopsWhenComplete) {
  auto pieces = std::make_shared<TokenPieces>();
  pieces->piece = {"{", "}", "\"a\"", ":", "1", "x", "", " ", "\"", "a"};
  JsonConstraint c(pieces);
  std::vector<float> logits(pieces->piece.size() + 2, 1.0f);  // two ids past the vocabulary: never allowed
  auto allowed = [&] {
    std::vector<float> l = logits;
    c.apply(l);
    std::vector<size_t> ids;
    for (size_t i = 0; i < l.size(); ++i)
      if (l[i] > -1e30f) ids.push_back(i);
    return ids;
  };
  EXPECT_EQ(allowed(), (std::vector<size_t>{0, 7}));  // "{" or " "
  c.accept(0);
  EXPECT_EQ(allowed(), (std::vector<size_t>{1, 2, 7, 8}));  // "}", "\"a\"", " ", "\""
  c.accept(2);
  EXPECT_EQ(allowed(), (std::vector<size_t>{3, 7}));
  c.accept(3);
  c.accept(4);
  EXPECT_FALSE(c.done());
  c.accept(1);
  EXPECT_TRUE(c.done());
}

TEST(JsonConstraint, RandomSamplingUnderTheMaskYieldsValidJson) {
  // Byte-level "vocabulary": every output the mask lets through parses.
  auto pieces = std::make_shared<TokenPieces>();
  for (int b = 0; b < 256; ++b) pieces->piece.push_back(std::string(1, static_cast<char>(b)));
  pieces->piece.push_back("\"key\": ");
  pieces->piece.push_back("true, ");
  pieces->piece.push_back("");  // a control token: never allowed
  std::mt19937 rng(1);
  int completed = 0;
  for (int trial = 0; trial < 50; ++trial) {
    JsonConstraint c(pieces);
    std::string out;
    for (int step = 0; step < 400 && !c.done(); ++step) {
      std::vector<float> logits(pieces->piece.size());
      for (auto& l : logits) l = std::uniform_real_distribution<float>(0, 1)(rng);
      // Favour closing so documents finish.
      logits['}'] += 0.6f;
      logits[']'] += 0.6f;
      logits['"'] += 0.3f;
      c.apply(logits);
      size_t best = 0;
      for (size_t i = 1; i < logits.size(); ++i)
        if (logits[i] > logits[best]) best = i;
      ASSERT_GT(logits[best], -1e30f);
      c.accept(static_cast<TokenId>(best));
      out += pieces->piece[best];
    }
    JsonRecognizer check;
    ASSERT_TRUE(check.feed(out)) << out;
    if (c.done()) {
      ++completed;
      Json parsed = Json::parse(out, nullptr, false);
      ASSERT_FALSE(parsed.is_discarded()) << out;
      EXPECT_TRUE(parsed.is_object()) << out;
    }
  }
  EXPECT_GT(completed, 10);
}

}  // namespace
}  // namespace codey::server
