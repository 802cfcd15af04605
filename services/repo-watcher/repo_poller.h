#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/clock/clock.h"
#include "common/concurrency/mutex.h"
#include "common/git/git_repository.h"
#include "services/repo-watcher/check_batcher.h"
#include "services/repo-watcher/mirror_set.h"
#include "services/repo-watcher/repo_watcher_metrics.h"
#include "services/repo-watcher/repository_store.h"
#include "services/repo-watcher/revision_checker.h"
#include "services/repo-watcher/revision_notifier.h"
#include "common/secrets/secret_sources.h"
#include "services/repo-watcher/signature_verifier.h"

namespace ferry::repo_watcher {

struct PollOptions {
  absl::Duration failure_backoff_initial = absl::Seconds(1);
  absl::Duration failure_backoff_max = absl::Minutes(5);
  double jitter_fraction = 0.1;  // next check = interval * (1 + U[0, jitter))
  int max_commits_verified = kMaxCommitsVerified;  // policy ALL: most new commits checked at once
};

struct PollResult {
  absl::Status status;        // the check's outcome
  bool repository_gone = false;
  bool locked_elsewhere = false;  // another replica is polling it
  absl::Time next_check;      // when to check again
};

// What the scheduler runs for one repository (the seam that lets its tests
// poll without Git or a database). Implementations are thread-safe.
class RepositoryPoller {
 public:
  virtual ~RepositoryPoller() = default;
  // Checks every tracked ref, or only those in `only_refs`. `scheduled`:
  // the regular check at its interval (no caller waits for its record).
  virtual PollResult Poll(const std::string& repository_id, const std::set<std::string>* only_refs = nullptr,
                          bool scheduled = false) = 0;
  // Delay before the next check after `failures` consecutive failures.
  virtual absl::Duration NextDelay(absl::Duration interval, int failures) const = 0;
  // The scheduled checks of `ids` are about to run: what they read may be
  // read now, together (issue #23). The default reads nothing ahead.
  virtual void Prefetch(const std::vector<std::string>& ids) {}
};

// One poll of one repository: list the remote refs in-process, fetch into
// the mirror only the tracked refs that moved (or whose commit the mirror
// lacks), verify signatures per policy, and record one revision per moved
// or deleted ref together with its audit event. Runs under the
// repository's cluster-wide poll lock. Thread-safe; the scheduler never
// polls one repository from two threads at once.
class RepoPoller final : public RepositoryPoller {
 public:
  // `secrets` resolves credentials references at each check (nothing is
  // sent when they no longer resolve or no longer match the URL's origin).
  // `batcher`, when given, writes the record of a scheduled check that
  // found nothing to report (no error before or after it, no audit event)
  // together with the others of the moment; every other check is recorded
  // at once.
  RepoPoller(RepositoryStore* store, git::Client* git, MirrorSet* mirrors, SignatureVerifier* verifier,
             RevisionNotifier* notifier, RepoWatcherMetrics* metrics, const Clock* clock,
             const secrets::SecretSources* secrets, PollOptions options = {}, CheckBatcher* batcher = nullptr);

  // Checks every tracked ref, or only those in `only_refs` (untracked
  // names in it are skipped; the others are neither moved nor deleted).
  PollResult Poll(const std::string& repository_id, const std::set<std::string>* only_refs = nullptr,
                  bool scheduled = false) override;

  // Delay before the next check after `failures` consecutive failures
  // (0: the regular interval), jitter included.
  absl::Duration NextDelay(absl::Duration interval, int failures) const override;

  // Reads the repositories and statuses of `ids` in one read; a scheduled
  // check of one of them within kPrefetchMaxAge compares the remote's refs
  // with that read instead of reading its own (one statement per batch of
  // due checks, not one per check: 167 a second for 10,000 repositories at a
  // 60 s interval). Read without the poll lock as the check's own read is; a
  // check that finds anything moved reads again under the lock.
  void Prefetch(const std::vector<std::string>& ids) override;
  static constexpr absl::Duration kPrefetchMaxAge = absl::Seconds(5);

 private:
  // The state Prefetch read for `repository_id`, when fresh; taken (a later
  // check reads again).
  std::optional<PollState> TakePrefetched(const std::string& repository_id);
  // The check without the lock: true when it is done (nothing moved and the
  // mirror holds every tip, or the repository could not be read, its
  // credentials resolved or its refs listed: `status` says which); false
  // when the full check must run.
  bool QuickCheck(const std::string& repository_id, absl::Status* status, bool* gone, absl::Duration* interval,
                  int* failures_before, std::string* error_before);
  absl::Status PollLocked(const v1::Repository& repo, const v1::RepositoryStatus& state,
                          const std::set<std::string>* only_refs, bool* fetched);
  absl::Status RecordMove(const v1::Repository& repo, git::Repository& mirror, const std::string& ref,
                          const v1::RefState* known, const std::string& sha);
  absl::Status RecordDeletion(const v1::Repository& repo, git::Repository& mirror, const v1::RefState& known);

  RepositoryStore* store_;
  git::Client* git_;
  MirrorSet* mirrors_;
  SignatureVerifier* verifier_;
  RevisionNotifier* notifier_;
  RepoWatcherMetrics* metrics_;
  const Clock* clock_;
  const secrets::SecretSources* secrets_;
  const PollOptions options_;
  CheckBatcher* batcher_;
  Mutex prefetch_mu_;
  std::map<std::string, std::pair<PollState, absl::Time>> prefetched_ ABSL_GUARDED_BY(prefetch_mu_);  // with read time
};

// A fresh random idempotency key for an audit event.
std::string NewEventKey(const std::string& prefix);

// An audit event about repository `repository_id` by the system actor.
v1::Event MakeEvent(v1::AuditAction action, const std::string& repository_id, const std::string& message);

}  // namespace ferry::repo_watcher
