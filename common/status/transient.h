#pragma once

#include "absl/status/status.h"

namespace ferry::status {

// An error worth retrying as it is: a peer or the database could not answer
// now, or the work was stopped (UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED,
// CANCELLED). Anything else says something about the item itself, and
// counts towards failing or quarantining it.
inline bool IsTransient(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kCancelled:
      return true;
    default:
      return false;
  }
}

}  // namespace ferry::status
