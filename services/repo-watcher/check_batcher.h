#pragma once

#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock/clock.h"
#include "common/concurrency/background_loop.h"
#include "common/concurrency/mutex.h"
#include "services/repo-watcher/repository_store.h"

namespace ferry::repo_watcher {

// Writes the records of uneventful checks (a scheduled poll that found no
// error before or after it and raised no audit event) together, one
// transaction per `interval` for all of them: one transaction per check
// made 10,000 repositories at a 60 s poll interval cost PostgreSQL 167
// commits a second for nothing new. A record waits at most `interval` (the
// status shows the check that late); a newer record of the same repository
// replaces a waiting one; the store skips a record older than the
// repository's last recorded check, so a direct record written meanwhile
// (a failure, a refresh someone waits for) is never overwritten. A write
// that fails is retried with the next (its records kept unless replaced).
// Thread-safe.
class CheckBatcher {
 public:
  CheckBatcher(RepositoryStore* store, const WaitableClock* clock, absl::Duration interval = absl::Seconds(1));
  ~CheckBatcher();  // Stop()s.
  CheckBatcher(const CheckBatcher&) = delete;
  CheckBatcher& operator=(const CheckBatcher&) = delete;

  void Start();
  // Stops the loop and writes what is waiting.
  void Stop();

  void Add(const CheckRecord& record);
  // Writes what is waiting now.
  absl::Status Flush();
  size_t pending() const;

 private:
  absl::StatusOr<absl::Duration> Step();

  RepositoryStore* store_;
  const absl::Duration interval_;
  mutable Mutex mu_;
  std::map<std::string, CheckRecord> pending_ ABSL_GUARDED_BY(mu_);
  Mutex flush_mu_;  // one write at a time, so that a retry never lands after a newer batch
  concurrency::BackgroundLoop loop_;
};

}  // namespace ferry::repo_watcher
