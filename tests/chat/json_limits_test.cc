// parse_json (include/codey/chat.h): JSON from outside within depth and value
// limits, checked while parsing.
#include <gtest/gtest.h>

#include "codey/chat.h"

namespace codey {
namespace {

TEST(ParseJson, WithinTheLimits) {
  auto j = parse_json(R"({"b":[1,2,{"c":null}],"a":"x"})");
  ASSERT_TRUE(j.has_value()) << j.error().message;
  EXPECT_EQ(j->begin().key(), "b");  // ordered by default
  auto u = parse_json<nlohmann::json>("[1,2,3]", {2, 4});
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->size(), 3u);
}

TEST(ParseJson, DepthAndValueLimits) {
  EXPECT_TRUE(parse_json("[[[1]]]", {3, 100}).has_value());
  auto deep = parse_json("[[[[1]]]]", {3, 100});
  ASSERT_FALSE(deep.has_value());
  EXPECT_EQ(deep.error().code, ErrorCode::kResourceExhausted);
  EXPECT_EQ(deep.error().message, "nests deeper than 3 levels");
  // Four values: the array and its three elements.
  EXPECT_TRUE(parse_json("[1,2,3]", {8, 4}).has_value());
  auto many = parse_json("[1,2,3,4]", {8, 4});
  ASSERT_FALSE(many.has_value());
  EXPECT_EQ(many.error().message, "has more than 4 values");
  EXPECT_FALSE(parse_json(R"({"a":{},"b":{}})", {8, 2}).has_value());
  // A million-deep document stops at the limit without recursing.
  EXPECT_FALSE(parse_json(std::string(1000000, '[')).has_value());
}

TEST(ParseJson, SyntaxErrorsSayWhere) {
  auto bad = parse_json("{\"a\":");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(bad.error().message.find("is not valid JSON: parse error at line 1, column 6"), std::string::npos)
      << bad.error().message;
  EXPECT_FALSE(parse_json("\"\xff\"").has_value());
}

}  // namespace
}  // namespace codey
