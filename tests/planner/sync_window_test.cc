// Cost and limits of sync windows (issue 15: "sync windows with no limit on
// count or cost"). The behaviour of windows is tested in logic_test.cc.
#include "services/planner/sync_window.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <atomic>
#include <thread>
#include <chrono>

#include <gtest/gtest.h>

#include "services/planner/validation.h"

namespace ferry::planner {
namespace {

void Add(google::protobuf::RepeatedPtrField<v1::SyncWindow>& windows, v1::SyncWindowKind kind,
         const std::string& schedule, int64_t seconds) {
  v1::SyncWindow* w = windows.Add();
  w->set_kind(kind);
  w->set_schedule(schedule);
  w->mutable_duration()->set_seconds(seconds);
}

TEST(SyncWindowCostTest, TheWorstValidWindowsAreEvaluatedQuickly) {
  // 49 allow windows of 31 days that start on January 1st only, and a deny
  // window that is always active: valid and within the default count. The
  // next opening is searched among 4,320 deny ends; before, each try tested
  // every minute of every allow window's 31 days again (49 x 44,640 cron
  // tests per try, 9.4e9 in all: many minutes of a planner thread, every
  // hold re-check). Now each window's starts are listed once.
  google::protobuf::RepeatedPtrField<v1::SyncWindow> windows;
  for (int i = 0; i < 49; ++i) Add(windows, v1::SYNC_WINDOW_KIND_ALLOW, "0 0 1 1 *", 31 * 24 * 3600);
  Add(windows, v1::SYNC_WINDOW_KIND_DENY, "* * * * *", 31 * 24 * 3600);
  ASSERT_TRUE(ValidateSyncWindows(windows, "environment.sync_windows").ok());
  const absl::Time now = absl::FromCivil(absl::CivilMinute(2026, 11, 26, 12, 0), absl::UTCTimeZone());
  const auto start = std::chrono::steady_clock::now();
  WindowDecision d = EvaluateSyncWindows(windows, now);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_FALSE(d.open);
  EXPECT_EQ(d.message, "sync window closed: deny window \"* * * * *\" is active; does not open within 3 days");
  EXPECT_LT(seconds, 5.0);
}

TEST(SyncWindowCostTest, AScheduleThatNeverMatchesSearchesThreeDaysOnly) {
  google::protobuf::RepeatedPtrField<v1::SyncWindow> windows;
  Add(windows, v1::SYNC_WINDOW_KIND_ALLOW, "0 0 31 2 *", 3600);  // February 31st
  ASSERT_TRUE(ValidateSyncWindows(windows, "environment.sync_windows").ok());
  WindowDecision d = EvaluateSyncWindows(windows, absl::FromCivil(absl::CivilMinute(2026, 11, 26, 12, 0), absl::UTCTimeZone()));
  EXPECT_FALSE(d.open);
  EXPECT_EQ(d.message, "sync window closed: no allow window is active; does not open within 3 days");
}

TEST(SyncWindowCostTest, OpeningsAreFoundAsBefore) {
  // Allow 09:00-10:00 in Berlin, deny 09:00-09:30 UTC on weekdays.
  google::protobuf::RepeatedPtrField<v1::SyncWindow> windows;
  Add(windows, v1::SYNC_WINDOW_KIND_ALLOW, "0 9 * * *", 3600);
  windows[0].set_time_zone("Europe/Berlin");
  Add(windows, v1::SYNC_WINDOW_KIND_DENY, "0 8 * * 1-5", 1800);
  const absl::TimeZone utc = absl::UTCTimeZone();
  // Thursday 2026-11-26 07:00 UTC (08:00 Berlin): closed, opens at 08:30 UTC
  // when the deny window ends inside the allow window.
  WindowDecision d = EvaluateSyncWindows(windows, absl::FromCivil(absl::CivilMinute(2026, 11, 26, 7, 0), utc));
  EXPECT_FALSE(d.open);
  EXPECT_EQ(d.message, "sync window closed: no allow window is active; opens at 2026-11-26T08:30:00Z");
  EXPECT_FALSE(EvaluateSyncWindows(windows, absl::FromCivil(absl::CivilMinute(2026, 11, 26, 8, 10), utc)).open);
  EXPECT_TRUE(EvaluateSyncWindows(windows, absl::FromCivil(absl::CivilMinute(2026, 11, 26, 8, 45), utc)).open);
  EXPECT_FALSE(EvaluateSyncWindows(windows, absl::FromCivil(absl::CivilMinute(2026, 11, 26, 9, 0), utc)).open);
  // Saturday: no deny; opens at 08:00 UTC.
  WindowDecision sat = EvaluateSyncWindows(windows, absl::FromCivil(absl::CivilMinute(2026, 11, 28, 7, 0), utc));
  EXPECT_EQ(sat.message, "sync window closed: no allow window is active; opens at 2026-11-28T08:00:00Z");
}

TEST(SyncWindowCostTest, StoredWindowsWithAnUnboundedDurationCountAsInvalid) {
  // Validation bounds durations to 31 days; a stored window beyond that
  // (written before, or by hand) would ask for unbounded work.
  google::protobuf::RepeatedPtrField<v1::SyncWindow> windows;
  Add(windows, v1::SYNC_WINDOW_KIND_ALLOW, "* * * * *", int64_t{1} << 40);
  WindowDecision d = EvaluateSyncWindows(windows, absl::Now());
  EXPECT_FALSE(d.open);
  EXPECT_EQ(d.message, "sync window \"* * * * *\" is invalid");
}

TEST(SyncWindowLimitsTest, CountAndScheduleLengthAreRefusedNamingFieldLimitAndFlag) {
  google::protobuf::RepeatedPtrField<v1::SyncWindow> windows;
  for (int i = 0; i < 3; ++i) Add(windows, v1::SYNC_WINDOW_KIND_ALLOW, "0 9 * * *", 3600);
  SyncWindowLimits limits;
  limits.max_windows = 2;
  EXPECT_EQ(ValidateSyncWindows(windows, "environment.sync_windows", limits).message(),
            "environment.sync_windows: 3 sync windows, more than 2 (limit --max-sync-windows)");
  google::protobuf::RepeatedPtrField<v1::SyncWindow> long_one;
  std::string schedule = "0";
  for (int i = 1; i < 60; ++i) schedule += "," + std::to_string(i);
  schedule += " 9 * * *";  // 177 bytes: fine with the default of 256
  Add(long_one, v1::SYNC_WINDOW_KIND_ALLOW, schedule, 3600);
  EXPECT_TRUE(ValidateSyncWindows(long_one, "environment.sync_windows").ok());
  Add(long_one, v1::SYNC_WINDOW_KIND_ALLOW, schedule + std::string(100, ' '), 3600);
  EXPECT_EQ(ValidateSyncWindows(long_one, "environment.sync_windows").message(),
            "environment.sync_windows[1].schedule: 277 bytes, more than 256 (limit --max-cron-length)");
}

}  // namespace
}  // namespace ferry::planner

namespace ferry::planner {
namespace {

// A time zone from Git went straight to absl::LoadTimeZone, which opens the
// file a name points to, absolute and "../" paths included: a FIFO made the
// planner block for good. Only IANA-shaped names are looked up now.
TEST(SyncWindowTimeZoneTest, PathsAreRefusedWithoutOpeningThem) {
  std::string fifo = ::testing::TempDir() + "/ferry-tz-fifo-" + std::to_string(getpid());
  ::unlink(fifo.c_str());
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  for (const std::string& zone : {fifo, std::string("../../../../..") + fifo, std::string("Europe/../../etc/passwd"),
                                  std::string("/etc/passwd"), std::string(10000, 'A'), std::string("Europe//Berlin")}) {
    google::protobuf::RepeatedPtrField<v1::SyncWindow> windows;
    v1::SyncWindow* w = windows.Add();
    w->set_kind(v1::SYNC_WINDOW_KIND_ALLOW);
    w->set_schedule("0 9 * * *");
    w->mutable_duration()->set_seconds(3600);
    w->set_time_zone(zone);
    std::atomic<bool> done{false};
    absl::Status s;
    std::thread t([&] {
      s = ValidateSyncWindows(windows, "environment.sync_windows");
      done = true;
    });
    for (int i = 0; i < 200 && !done; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (!done) {
      ADD_FAILURE() << "validating time zone \"" << zone.substr(0, 80) << "\" blocked on the FIFO";
      int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);  // unblocks the reader
      if (fd >= 0) ::close(fd);
    }
    t.join();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << zone.substr(0, 80);
    EXPECT_NE(s.message().find("environment.sync_windows[0].time_zone"), std::string::npos) << s.message();
    EXPECT_LT(s.message().size(), 300u);
  }
  ::unlink(fifo.c_str());
  google::protobuf::RepeatedPtrField<v1::SyncWindow> good;
  v1::SyncWindow* w = good.Add();
  w->set_kind(v1::SYNC_WINDOW_KIND_ALLOW);
  w->set_schedule("0 9 * * *");
  w->mutable_duration()->set_seconds(3600);
  for (const char* zone : {"Europe/Berlin", "UTC", "America/Argentina/Buenos_Aires", "Etc/GMT+1"}) {
    w->set_time_zone(zone);
    EXPECT_TRUE(ValidateSyncWindows(good, "environment.sync_windows").ok()) << zone;
  }
}

}  // namespace
}  // namespace ferry::planner
