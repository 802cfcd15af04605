#pragma once

#include <bitset>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ferry/v1/planner.pb.h"

namespace ferry::planner {

// A parsed five-field cron expression (minute hour day-of-month month
// day-of-week) with `*`, lists, ranges and steps. Day-of-week 0 and 7 are
// Sunday. When both day fields are restricted, either may match (cron rule).
class CronSchedule {
 public:
  // INVALID_ARGUMENT describing the bad field.
  static absl::StatusOr<CronSchedule> Parse(const std::string& expression);
  // True when a window starts at this minute of civil time.
  bool Matches(const absl::CivilMinute& t) const;

 private:
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_;
  std::bitset<13> months_;
  std::bitset<7> weekdays_;
  bool days_restricted_ = false;
  bool weekdays_restricted_ = false;
};

// Whether an environment's windows let a plan run at `now`.
struct WindowDecision {
  bool open = true;
  std::string message;  // why it is closed and, when found, when it opens
};

// Limits on an environment's windows (planner flags named in refusals).
// Evaluating windows costs, per window, one cron test per minute of its
// duration plus the three days searched for the next opening; the count and
// the schedule's length bound that work.
struct SyncWindowLimits {
  int max_windows = 50;            // per environment (--max-sync-windows)
  int max_schedule_bytes = 256;    // of one cron expression (--max-cron-length)
};
inline constexpr char kMaxSyncWindowsFlag[] = "--max-sync-windows";
inline constexpr char kMaxCronLengthFlag[] = "--max-cron-length";

// Validates windows (INVALID_ARGUMENT naming `field`[i].<name>, or `field`
// and the limit and its flag when there are too many).
absl::Status ValidateSyncWindows(const google::protobuf::RepeatedPtrField<v1::SyncWindow>& windows,
                                 const std::string& field, const SyncWindowLimits& limits = SyncWindowLimits());

// Deny wins over allow; with allow windows defined, one must be active.
// No windows: always open. Invalid windows count as closed. The next
// opening is searched up to 3 days ahead. Work: each window's starts from
// (now - its duration) to the horizon are listed once (at most 34 days of
// minutes), then every question is a binary search.
WindowDecision EvaluateSyncWindows(const google::protobuf::RepeatedPtrField<v1::SyncWindow>& windows, absl::Time now);

}  // namespace ferry::planner
