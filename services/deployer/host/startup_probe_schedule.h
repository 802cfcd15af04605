#pragma once

#include "absl/time/time.h"

namespace ferry::deployer::host {

// When a starting instance is probed again after a failed health probe
// (issue #23: the time to notice a healthy new instance must not hinge on the
// configured period). Until its first passing probe, an instance is re-probed
// after a quarter of the time waited so far since the first probe, at least
// kFirstStartupRetry and at most `period`: a program up in a few milliseconds
// is seen healthy within a few milliseconds whatever healthCheck.periodSeconds
// says, one up in 2 s within ~0.5 s, and a slow starter settles to the period
// (after 4 periods of waiting) instead of being probed ever more often.
// 2 ms: a probe of an instance not yet listening is one refused connect on
// loopback, and the example app is up in ~10 ms, so a 5 ms step lost 2.5 ms
// on average of every push to served.
inline constexpr absl::Duration kFirstStartupRetry = absl::Milliseconds(2);

// The wait before the next probe of a starting instance, `waited` after its
// first probe, given the configured probe period.
absl::Duration StartupProbeDelay(absl::Duration waited, absl::Duration period);

}  // namespace ferry::deployer::host
