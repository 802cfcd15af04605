// How a starting instance is re-probed (issue #23): quickly at first,
// whatever the configured period, then settling to the period.
#include "services/deployer/host/startup_probe_schedule.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

namespace ferry::deployer::host {
namespace {

// The times (since the first probe) at which probes run, until `until`.
std::vector<absl::Duration> Schedule(absl::Duration period, absl::Duration until) {
  std::vector<absl::Duration> at = {absl::ZeroDuration()};
  while (at.back() < until) at.push_back(at.back() + StartupProbeDelay(at.back(), period));
  return at;
}

// The first probe at or after `ready`.
absl::Duration FirstProbeAfter(const std::vector<absl::Duration>& at, absl::Duration ready) {
  return *std::lower_bound(at.begin(), at.end(), ready);
}

TEST(StartupProbeScheduleTest, AStartingInstanceIsSeenHealthySoonWhateverThePeriod) {
  for (absl::Duration period : {absl::Milliseconds(50), absl::Milliseconds(250), absl::Seconds(1), absl::Seconds(10),
                                absl::Minutes(5)}) {
    std::vector<absl::Duration> at = Schedule(period, absl::Seconds(30));
    for (absl::Duration ready : {absl::Milliseconds(1), absl::Milliseconds(4), absl::Milliseconds(12),
                                 absl::Milliseconds(40), absl::Milliseconds(150), absl::Milliseconds(700),
                                 absl::Seconds(2), absl::Seconds(9)}) {
      // Noticed within a quarter of its start-up time (at least the first
      // 2 ms retry), or one period when that is shorter: never a whole
      // long period after it came up.
      absl::Duration bound = std::min(std::max(kFirstStartupRetry, ready / 4), period);
      EXPECT_LE(FirstProbeAfter(at, ready) - ready, bound + absl::Microseconds(1))
          << "period " << period << ", ready after " << ready;
    }
  }
}

TEST(StartupProbeScheduleTest, TheFirstSecondOfProbesIsTheSameForAShortAndALongPeriod) {
  // The example ships periodSeconds 0.25; the e2e bench used to shorten it
  // to 0.05 to get fast rollouts. Up to 200 ms of start-up (4 x 50 ms),
  // both, and a 60 s period, probe at the same moments.
  std::vector<absl::Duration> fast = Schedule(absl::Milliseconds(50), absl::Milliseconds(200));
  EXPECT_EQ(Schedule(absl::Milliseconds(250), absl::Milliseconds(200)), fast);
  EXPECT_EQ(Schedule(absl::Seconds(60), absl::Milliseconds(200)), fast);
  EXPECT_EQ(fast[1], absl::Milliseconds(2));
  EXPECT_EQ(fast[2], absl::Milliseconds(4));
}

TEST(StartupProbeScheduleTest, ASlowStarterSettlesToThePeriod) {
  const absl::Duration period = absl::Seconds(1);
  std::vector<absl::Duration> at = Schedule(period, absl::Seconds(60));
  // Never more often than every 2 ms, never less often than the period.
  for (size_t i = 1; i < at.size(); ++i) {
    EXPECT_GE(at[i] - at[i - 1], kFirstStartupRetry);
    EXPECT_LE(at[i] - at[i - 1], period);
  }
  // After 4 periods of waiting, one probe per period.
  for (size_t i = 1; i < at.size(); ++i) {
    if (at[i - 1] >= 4 * period) {
      EXPECT_EQ(at[i] - at[i - 1], period) << "at " << at[i - 1];
    }
  }
  // A bounded number of probes: about 4 ln(4 s / 20 ms) ~ 21 in the quick
  // phase, then one a second.
  EXPECT_LT(at.size(), 40u + 56u);
  EXPECT_EQ(StartupProbeDelay(-absl::Seconds(1), period), kFirstStartupRetry);
}

}  // namespace
}  // namespace ferry::deployer::host
