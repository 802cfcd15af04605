#include "common/text/utf8.h"

#include <gtest/gtest.h>

namespace ferry::text {
namespace {

TEST(Utf8Test, AcceptsWellFormedText) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x9A\xA2"));  // é € 🚢
  EXPECT_TRUE(IsValidUtf8(std::string("nul\0inside", 10)));
}

TEST(Utf8Test, RefusesMalformedSequences) {
  EXPECT_FALSE(IsValidUtf8("\xFF"));
  EXPECT_FALSE(IsValidUtf8("caf\xC3("));            // bad continuation
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));            // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xE0\x80\xAF"));        // overlong
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));        // surrogate U+D800
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));    // above U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xE2\x82"));            // truncated at the end
}

TEST(Utf8Test, SanitizeEscapesOnlyTheBadBytes) {
  EXPECT_EQ(SanitizeUtf8("caf\xC3\xA9"), "caf\xC3\xA9");
  EXPECT_EQ(SanitizeUtf8("a\xFF" "b\xC3(c"), "a\\xFFb\\xC3(c");
  EXPECT_EQ(SanitizeUtf8("\xE2\x82"), "\\xE2\\x82");
  EXPECT_TRUE(IsValidUtf8(SanitizeUtf8("\x80\x81\xFE\xFF\xC0\xAF")));
}

}  // namespace
}  // namespace ferry::text
