#include "services/audit/json_text_canonicalizer.h"

#include <gtest/gtest.h>

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <nlohmann/json.hpp>

#include "services/audit/canonical_json.h"

namespace ferry::audit {
namespace {

// Details text as stored, canonicalised: the same bytes as the Struct it
// denotes (parsed the slow way: nlohmann, numbers as doubles) encodes to.
TEST(JsonTextCanonicalizerTest, JsonTextCanonicalisationHandlesTheAwkwardCases) {
  struct Case {
    std::string text;
    std::string canonical;
  };
  const std::vector<Case> cases = {
      {" \t\n\r{ \"b\" : 1 ,\"a\":[ true,false , null ],\"c\":{ } , \"d\": [] } \n",
       "{\"a\":[true,false,null],\"b\":1,\"c\":{},\"d\":[]}"},
      {"{\"k\": \"\\u00e9\\ud83d\\ude00\\/\\u0001\\u001F\\\"\\\\\\b\\f\\n\\r\\t\\u007f\\u2028\"}",
       "{\"k\":\"é😀/\\u0001\\u001f\\\"\\\\\\b\\f\\n\\r\\t\x7f\u2028\"}"},
      {"{\"z\": 1, \"Z\": 2, \"é\": 3, \"😀\": 4, \"\\uffff\": 5, \"\": 6, \"zz\": 7, \"a\\\"b\": 8, \"a#\": 9}",
       "{\"\":6,\"Z\":2,\"a\\\"b\":8,\"a#\":9,\"z\":1,\"zz\":7,\"é\":3,\"\xef\xbf\xbf\":5,\"😀\":4}"},
      {"{\"o\": {\"y\": {\"b\": [1, {\"d\": 2, \"c\": 3}], \"a\": 0}, \"x\": null}}",
       "{\"o\":{\"x\":null,\"y\":{\"a\":0,\"b\":[1,{\"c\":3,\"d\":2}]}}}"},
      {"[1E2, -0, -0.0, 0.5e1, 123456789012345678, 9007199254740993, 10000000000000000, 999999999999999,"
       " 1234567890123456, 0.1, 1e-7, 0.00001, 2.5E-5, 1e21, 5e-324, 1.7976931348623157e308, -3.75, 1.0]",
       "[100,0,0,5,1.2345678901234568e+17,9007199254740992.0,1e+16,999999999999999,1234567890123456,0.1,1e-07,"
       "1e-05,2.5e-05,1e+21,5e-324,1.7976931348623157e+308,-3.75,1]"},
      {"{\"a\": 1, \"a\": 2, \"b\": 0}", "{\"a\":2,\"b\":0}"},
      {"\"plain\"", "\"plain\""},
  };
  for (const Case& c : cases) {
    std::string out;
    absl::Status st = AppendCanonicalJsonText(c.text, &out);
    ASSERT_TRUE(st.ok()) << c.text << ": " << st;
    EXPECT_EQ(out, c.canonical) << c.text;
    // The slow way, where it applies (a JSON object without duplicate keys).
    nlohmann::json parsed = nlohmann::json::parse(c.text);
    if (!parsed.is_object() || c.text.find("\"a\": 1, \"a\"") != std::string::npos) continue;
    google::protobuf::Struct details;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(parsed.dump(), &details).ok()) << c.text;
    std::string reference;
    ASSERT_TRUE(AppendCanonicalStruct(details, &reference).ok());
    EXPECT_EQ(out, reference) << c.text;
  }
  const std::vector<std::string> bad = {
      "{\"a\":1,}", "{\"a\" 1}", "[1 2]", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"raw\x01\"",
      "\"\xff\"", "\"\xc3\x28\"", "01", "1.", ".5", "-", "tru", "{\"a\":1} x", "1e400", "-1e400", "\"\\x\"",
      "\"\\u12\"", "\"open", "{", "[", "", std::string(600, '[') + std::string(600, ']')};
  for (const std::string& text : bad) {
    std::string out = "kept";
    EXPECT_EQ(AppendCanonicalJsonText(text, &out).code(), absl::StatusCode::kInvalidArgument) << text;
  }
  std::string deep_enough = std::string(500, '[') + std::string(500, ']'), out;
  EXPECT_TRUE(AppendCanonicalJsonText(deep_enough, &out).ok());
  EXPECT_EQ(out, deep_enough);
}

}  // namespace
}  // namespace ferry::audit
