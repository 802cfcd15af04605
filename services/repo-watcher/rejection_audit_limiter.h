#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "common/clock/clock.h"
#include "common/concurrency/mutex.h"

namespace ferry::repo_watcher {

// One refused webhook, as far as the audit needs it.
struct Rejection {
  std::string repository_id;  // a repository known to exist, or "" (unknown or not looked up)
  std::string result;         // the metrics result: "bad_signature", "too_large", ...
  std::string provider;
  int http_status = 0;
  std::string reason;          // the text the sender got
  std::string remote_address;  // of the latest rejection summarised
  std::string requested_repository_id;  // the id in the URL when well-formed, even if unknown
};

// What to audit: `count` rejections of one (repository, result) since `since`
// (the latest one's details in `last`).
struct RejectionSummary {
  Rejection last;
  int64_t count = 0;
  absl::Time since;
};

// Decides which webhook rejections are audited, so that a flood of bad
// webhooks leaves a few audit events, not one each: the first rejection of a
// (repository, result) is audited at once; later ones are counted and
// audited together, at most once per `interval` per key, as one summary with
// the count since the previous event. Every rejection ends up in exactly
// one summary once TakeDue has run after the interval. Keys are bounded:
// the repository is a known one or "", the result one of a few.
// An interval of zero audits every rejection. Thread-safe.
class RejectionAuditLimiter {
 public:
  RejectionAuditLimiter(const Clock* clock, absl::Duration interval) : clock_(clock), interval_(interval) {}

  // Counts one rejection; returns the summary to audit now, or nothing when
  // it waits for the next summary of its key.
  std::optional<RejectionSummary> Record(const Rejection& rejection);

  // The summaries of keys with rejections still unaudited whose interval
  // has passed (the tail of a flood that stopped), or of every key with
  // rejections unaudited when `all`; forgets idle keys.
  std::vector<RejectionSummary> TakeDue(bool all = false);

 private:
  struct Key {
    int64_t pending = 0;             // counted since the last summary
    absl::Time pending_since;        // first of them
    absl::Time last_audit;           // when the last summary was made
    Rejection last;
  };

  const Clock* clock_;
  const absl::Duration interval_;
  Mutex mu_;
  std::map<std::pair<std::string, std::string>, Key> keys_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ferry::repo_watcher
