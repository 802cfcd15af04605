#include "common/json/json.h"

#include <gtest/gtest.h>

namespace ferry {
namespace {

TEST(JsonFieldTest, AbsentOrNullIsTheFallbackAndAWrongTypeIsAnErrorNotAnException) {
  nlohmann::json j = {{"name", "web"}, {"port", 80}, {"gone", nullptr}};
  EXPECT_EQ(JsonField<std::string>(j, "name", "").value(), "web");
  EXPECT_EQ(JsonField<int>(j, "port", 0).value(), 80);
  EXPECT_EQ(JsonField<int>(j, "missing", 7).value(), 7);
  EXPECT_EQ(JsonField<std::string>(j, "gone", "x").value(), "x");
  absl::StatusOr<std::string> wrong = JsonField<std::string>(j, "port", "");
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(wrong.status().message(), "port: has the wrong type (number)");
  EXPECT_FALSE(JsonField<int>(nlohmann::json::array(), "port", 0).ok());
}

TEST(ParseJsonTest, ParsesOneValue) {
  absl::StatusOr<nlohmann::json> j = ParseJson(R"( {"b": [1, 2.5, "x"], "a": null} )");
  ASSERT_TRUE(j.ok()) << j.status();
  EXPECT_EQ((*j)["b"][2], "x");
  EXPECT_TRUE((*j)["a"].is_null());
}

TEST(ParseJsonTest, MalformedTextIsInvalidArgumentNotAnException) {
  for (const char* text : {"", "{", "{\"a\":}", "[1,]", "1 2", "nul"}) {
    absl::StatusOr<nlohmann::json> j = ParseJson(text);
    EXPECT_EQ(j.status().code(), absl::StatusCode::kInvalidArgument) << text;
  }
}

TEST(ParseJsonTest, InvalidUtf8IsInvalidArgument) {
  EXPECT_EQ(ParseJson("\"\xff\"").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ParseJsonTest, ErrorSaysWhere) {
  absl::StatusOr<nlohmann::json> j = ParseJson("{\"a\": tru}");
  ASSERT_FALSE(j.ok());
  EXPECT_NE(j.status().message().find("not JSON"), absl::string_view::npos) << j.status();
  EXPECT_NE(j.status().message().find("column"), absl::string_view::npos) << j.status();
}

TEST(DumpJsonTest, CompactWithSortedKeys) {
  nlohmann::json j = {{"b", 1}, {"a", {1, "x"}}};
  absl::StatusOr<std::string> text = DumpJson(j);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, R"({"a":[1,"x"],"b":1})");
}

TEST(DumpJsonTest, Indented) {
  absl::StatusOr<std::string> text = DumpJson(nlohmann::json{{"a", 1}}, 2);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "{\n  \"a\": 1\n}");
}

TEST(DumpJsonTest, InvalidUtf8IsInvalidArgumentNotAnException) {
  nlohmann::json j = {{"name", std::string("web\xff")}};
  absl::StatusOr<std::string> text = DumpJson(j);
  EXPECT_EQ(text.status().code(), absl::StatusCode::kInvalidArgument);
  nlohmann::json key;
  key[std::string("\xc3")] = 1;  // a truncated sequence, in a key
  EXPECT_EQ(DumpJson(key).status().code(), absl::StatusCode::kInvalidArgument);
}

std::string Nested(char open, char close, int n) { return std::string(n, open) + std::string(n, close); }

TEST(ParseJsonLimitsTest, AHundredThousandNestedArraysAreRefusedNotACrashLater) {
  // nlohmann parses them without recursion; the value's first copy (or
  // dump, or comparison) recursed once per level and overflowed the stack
  // (SIGSEGV), wherever the caller used it.
  absl::StatusOr<nlohmann::json> j = ParseJson(Nested('[', ']', 100000));
  if (j.ok()) {
    nlohmann::json copy = *j;  // before: the crash
    ADD_FAILURE() << "parsed, and copied (" << DumpJsonLossy(copy).size() << " bytes)";
  }
  EXPECT_EQ(j.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(j.status().message(), "JSON nested deeper than 1000 levels");
  std::string objects;
  for (int i = 0; i < 100000; ++i) objects += "{\"a\":";
  objects += "1" + std::string(100000, '}');
  EXPECT_EQ(ParseJson(objects).status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(ParseJsonLimitsTest, DepthAndSizeAreBoundedAtTheirLimits) {
  JsonLimits limits;
  limits.max_depth = 3;
  EXPECT_TRUE(ParseJson("[[[1]]]", limits).ok());
  EXPECT_TRUE(ParseJson(R"({"a": {"b": [1, 2]}})", limits).ok());
  EXPECT_EQ(ParseJson("[[[[1]]]]", limits).status().message(), "JSON nested deeper than 3 levels");
  EXPECT_EQ(ParseJson(R"({"a": {"b": [{"c": 1}]}})", limits).status().code(), absl::StatusCode::kResourceExhausted);
  // The default allows 1,000 levels.
  EXPECT_TRUE(ParseJson(Nested('[', ']', 1000)).ok());
  EXPECT_FALSE(ParseJson(Nested('[', ']', 1001)).ok());
  JsonLimits small;
  small.max_bytes = 10;
  EXPECT_TRUE(ParseJson("[1,2,3,4]", small).ok());
  EXPECT_EQ(ParseJson("[1,2,3,4,5]", small).status().message(), "JSON text of 11 bytes, more than 10");
  // Malformed text is still INVALID_ARGUMENT.
  EXPECT_EQ(ParseJson("[[[", limits).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(DumpJsonLossyTest, ReplacesInvalidUtf8) {
  nlohmann::json j = {{"name", std::string("web\xff")}};
  EXPECT_EQ(DumpJsonLossy(j), "{\"name\":\"web\xef\xbf\xbd\"}");
}

TEST(DumpJsonLossyTest, SameTextAsDumpJsonForValidValues) {
  nlohmann::json j = {{"z", {{"y", "\xc3\xa9\n"}}}, {"a", 1.5}, {"n", nullptr}};
  EXPECT_EQ(DumpJsonLossy(j), *DumpJson(j));
  EXPECT_EQ(DumpJsonLossy(j, 2), *DumpJson(j, 2));
}

}  // namespace
}  // namespace ferry
