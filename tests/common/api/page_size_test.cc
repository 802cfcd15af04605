#include "common/api/page_size.h"

#include <gtest/gtest.h>

namespace ferry::api {
namespace {

TEST(PageSizeTest, ZeroMeansTheDefault) { EXPECT_EQ(*PageSize(0), 50); }

TEST(PageSizeTest, OneToTheMaximumAsAsked) {
  EXPECT_EQ(*PageSize(1), 1);
  EXPECT_EQ(*PageSize(1000), 1000);
}

TEST(PageSizeTest, OutsideTheRangeIsRefusedNamingTheField) {
  for (int64_t bad : {int64_t{-1}, int64_t{1001}, int64_t{5000}, int64_t{1} << 40}) {
    absl::StatusOr<int> size = PageSize(bad);
    EXPECT_EQ(size.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(size.status().message(), "page_size: must be between 0 and 1000") << bad;
  }
}

TEST(SequencePageTokenTest, EmptyIsTheFirstPage) { EXPECT_EQ(*SequencePageToken("", "x"), 0); }

TEST(SequencePageTokenTest, PositiveNumberIsTheSequence) { EXPECT_EQ(*SequencePageToken("42", "x"), 42); }

TEST(SequencePageTokenTest, ZeroNegativeAndTextAreRefused) {
  for (const char* bad : {"0", "-3", "abc", "1.5", "12x"}) {
    absl::StatusOr<int64_t> seq = SequencePageToken(bad, "not a token from ListPlans");
    EXPECT_EQ(seq.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(seq.status().message(), "page_token: not a token from ListPlans") << bad;
  }
}

}  // namespace
}  // namespace ferry::api
