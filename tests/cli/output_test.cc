#include "cli/output.h"

#include <gtest/gtest.h>

#include <cstdio>

#include "cli/display_names.h"
#include "cli/exit_codes.h"

namespace ferry::cli {
namespace {

TEST(OutputTest, TablesAlignColumnsIgnoringColourAndCountingCodePoints) {
  Table t({{"NAME"}, {"STATE"}, {"EXTRA", true}});
  t.Add({"a", "\x1b[32mSynced\x1b[0m", "x"});
  t.Add({"lönger", "OutOfSync", "y"});
  EXPECT_EQ(t.Render(false),
            "NAME    STATE\n"
            "a       \x1b[32mSynced\x1b[0m\n"
            "lönger  OutOfSync\n");
  EXPECT_EQ(t.Render(true),
            "NAME    STATE      EXTRA\n"
            "a       \x1b[32mSynced\x1b[0m     x\n"
            "lönger  OutOfSync  y\n");
}

TEST(OutputTest, NoColourOffATerminalOrWithNoColor) {
  std::FILE* f = std::tmpfile();
  Output auto_mode(Format::kTable, "auto", f);
  EXPECT_FALSE(auto_mode.color());
  EXPECT_EQ(auto_mode.Paint("x", Color::kRed), "x");
  Output always(Format::kTable, "always", f);
  EXPECT_EQ(always.Paint("x", Color::kRed), "\x1b[31mx\x1b[0m");
  std::fclose(f);
}

TEST(OutputTest, AgesAndDurations) {
  absl::Time now = absl::FromUnixSeconds(1'000'000);
  EXPECT_EQ(Age(now - absl::Seconds(5), now), "5s");
  EXPECT_EQ(Age(now - absl::Minutes(3), now), "3m");
  EXPECT_EQ(Age(now - absl::Hours(49), now), "2d");
  google::protobuf::Timestamp unset;
  EXPECT_EQ(Age(unset, now), "-");
  google::protobuf::Timestamp a, b;
  a.set_seconds(100);
  b.set_seconds(225);
  EXPECT_EQ(Elapsed(a, b), "2m05s");
  EXPECT_EQ(Truncate("abcdefgh", 5), "abcd…");
}

TEST(OutputTest, YamlAndFormats) {
  EXPECT_EQ(ToYaml(nlohmann::json{{"a", "x"}, {"b", {1, 2}}}), "a: \"x\"\nb:\n  - 1\n  - 2");
  EXPECT_FALSE(ParseFormat("xml").ok());
  EXPECT_EQ(*ParseFormat("wide"), Format::kWide);
}

TEST(DisplayNamesTest, AcceptsTheWordsPeopleType) {
  EXPECT_EQ(ParsePlanState("pending"), v1::PLAN_STATE_PENDING);
  EXPECT_EQ(ParsePlanState("rolled-back"), v1::PLAN_STATE_ROLLED_BACK);
  EXPECT_EQ(ParsePlanState("RolledBack"), v1::PLAN_STATE_ROLLED_BACK);
  EXPECT_EQ(ParseAuditAction("plan-approved"), v1::AUDIT_ACTION_PLAN_APPROVED);
  EXPECT_EQ(ParseAuditAction("AUDIT_ACTION_PINNED"), v1::AUDIT_ACTION_PINNED);
  EXPECT_FALSE(ParseAuditAction("nope").has_value());
  EXPECT_EQ(SyncName(v1::SYNC_STATUS_OUT_OF_SYNC), "OutOfSync");
}

TEST(ExitCodesTest, EachOutcomeHasItsCode) {
  EXPECT_EQ(ExitCodeOf(absl::OkStatus()), 0);
  EXPECT_EQ(ExitCodeOf(absl::NotFoundError("x")), 1);
  EXPECT_EQ(ExitCodeOf(UsageError("x")), 2);
  EXPECT_EQ(ExitCodeOf(WaitFailed("x")), 3);
  EXPECT_EQ(ExitCodeOf(WaitTimedOut("x")), 4);
  EXPECT_EQ(ExitCodeOf(Interrupted("x")), 130);
}

}  // namespace
}  // namespace ferry::cli
