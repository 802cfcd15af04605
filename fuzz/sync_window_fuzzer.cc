// Fuzz target: the cron parser and sync windows (services/planner/sync_window.h).
//
// Input: line 1 the cron expression, line 2 the window's length in minutes
// (evaluated only up to 4 hours here, so that one run stays quick), line 3 a
// time-zone choice; the rest seeds the instant evaluated.

#include <cstdint>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/time/civil_time.h"
#include "fuzz/fuzz_support.h"
#include "services/planner/sync_window.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> f = ferry::fuzz::SplitFields(data, size, 4);
  absl::StatusOr<ferry::planner::CronSchedule> cron = ferry::planner::CronSchedule::Parse(f[0]);
  uint64_t seed = 0;
  for (unsigned char c : f[3]) seed = seed * 131 + c;
  absl::Time now = absl::FromUnixSeconds(1700000000 + static_cast<int64_t>(seed % (4 * 365 * 86400)));
  if (cron.ok()) {
    absl::CivilMinute t = absl::ToCivilMinute(now, absl::UTCTimeZone());
    for (int i = 0; i < 64; ++i) {
      (void)cron->Matches(t);
      t += 97;  // minutes: walks through hours, days and months
    }
  }
  int minutes = 0;
  if (!absl::SimpleAtoi(f[1], &minutes)) minutes = 60;
  // Time zones from a fixed list: a name from the input would be a file
  // path (absl::LoadTimeZone), which is not what this target fuzzes.
  static const char* kZones[] = {"", "UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe",
                                 "Asia/Kathmandu", "Nonexistent/Zone"};
  google::protobuf::RepeatedPtrField<ferry::v1::SyncWindow> windows;
  ferry::v1::SyncWindow* w = windows.Add();
  w->set_kind(minutes % 2 == 0 ? ferry::v1::SYNC_WINDOW_KIND_ALLOW : ferry::v1::SYNC_WINDOW_KIND_DENY);
  w->set_schedule(f[0]);
  w->mutable_duration()->set_seconds(static_cast<int64_t>(minutes) * 60);
  w->set_time_zone(kZones[(f[2].empty() ? 0 : static_cast<unsigned char>(f[2][0])) % (sizeof(kZones) / sizeof(kZones[0]))]);
  absl::Status valid = ferry::planner::ValidateSyncWindows(windows, "environment.sync_windows");
  if (valid.ok() != (cron.ok() && minutes > 0 && minutes <= 31 * 24 * 60 && w->time_zone() != "Nonexistent/Zone")) {
    ferry::fuzz::Violated("ValidateSyncWindows disagrees with CronSchedule::Parse", std::string(valid.message()));
  }
  if (valid.ok() && minutes <= 240) {
    ferry::planner::WindowDecision d = ferry::planner::EvaluateSyncWindows(windows, now);
    if (!d.open && d.message.empty()) ferry::fuzz::Violated("closed without a reason", f[0]);
  }
  return 0;
}
