#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ferry/v1/audit.pb.h"
#include "ferry/v1/repo_watcher.pb.h"

namespace ferry::repo_watcher {

// Outcome of one poll, written to the repository's status.
struct CheckRecord {
  std::string repository_id;
  absl::Time check_time;
  std::optional<absl::Time> fetch_time;  // set when a fetch succeeded
  std::string error;                      // empty on success
  int consecutive_failures = 0;
  absl::Time next_check_time;
};

// A repository and its status as one poll reads them.
struct PollState {
  v1::Repository repository;
  v1::RepositoryStatus status;
};

struct RevisionQuery {
  std::string repository_id;  // empty: all
  std::string ref;            // empty: all
  bool include_rejected = false;
  bool ascending = false;
  int64_t after_cursor = 0;   // page position (exclusive); 0 = start
  int limit = 50;
};

// Persistent state of the repo-watcher: registry, polling status, ref
// states, revisions. Every state change takes the audit event to enqueue in
// the same transaction. Thread-safe. Errors: NOT_FOUND (unknown id),
// ALREADY_EXISTS, ABORTED (a concurrent change won; retry from the top),
// UNAVAILABLE (database down), INTERNAL.
class RepositoryStore {
 public:
  virtual ~RepositoryStore() = default;

  // Inserts `repo` with create/update times set to now.
  virtual absl::StatusOr<v1::Repository> Create(const v1::Repository& repo, const v1::Event& audit) = 0;
  virtual absl::StatusOr<v1::Repository> Get(const std::string& id) = 0;
  // Repositories with id > after_id, ordered by id.
  virtual absl::StatusOr<std::vector<v1::Repository>> List(const std::string& after_id, int limit) = 0;
  // The ids List would answer, without the records (the poll scheduler's
  // rescan reads every id each 10 s: issue #23's 10,000 repositories).
  virtual absl::StatusOr<std::vector<std::string>> ListIds(const std::string& after_id, int limit) {
    absl::StatusOr<std::vector<v1::Repository>> page = List(after_id, limit);
    if (!page.ok()) return page.status();
    std::vector<std::string> ids;
    ids.reserve(page->size());
    for (const v1::Repository& r : *page) ids.push_back(r.id());
    return ids;
  }
  // Replaces the stored spec of repo.id() (create_time kept), if it is still
  // `expected` (as Get returned it): ABORTED when it changed meanwhile.
  virtual absl::StatusOr<v1::Repository> Update(const v1::Repository& repo, const v1::Repository& expected,
                                                const v1::Event& audit) = 0;
  // Deletes the repository, its status and ref states; revisions are kept.
  virtual absl::Status Delete(const std::string& id, const v1::Event& audit) = 0;

  // Status with the tracked refs (NOT_FOUND for an unknown repository).
  virtual absl::StatusOr<v1::RepositoryStatus> GetStatus(const std::string& id) = 0;
  // The repository and its status (with the tracked refs) read together, as
  // of one moment; NOT_FOUND for an unknown repository. The default reads
  // them one after the other.
  virtual absl::StatusOr<PollState> ReadForPoll(const std::string& id) {
    absl::StatusOr<v1::Repository> repo = Get(id);
    if (!repo.ok()) return repo.status();
    absl::StatusOr<v1::RepositoryStatus> status = GetStatus(id);
    if (!status.ok()) return status.status();
    return PollState{std::move(*repo), std::move(*status)};
  }
  // ReadForPoll of several repositories in one read (issue #23: the
  // scheduled checks falling due together); a repository not found, or not
  // readable, is left out (its poll reads it alone). The default reads them
  // one by one.
  virtual absl::StatusOr<std::map<std::string, PollState>> ReadForPollMany(const std::vector<std::string>& ids) {
    std::map<std::string, PollState> out;
    for (const std::string& id : ids) {
      absl::StatusOr<PollState> one = ReadForPoll(id);
      if (absl::IsUnavailable(one.status())) return one.status();
      if (one.ok()) out.emplace(id, *std::move(one));
    }
    return out;
  }
  // Writes the outcome of a poll, and `audit` when given. NOT_FOUND (and
  // nothing written) when the repository no longer exists.
  virtual absl::Status RecordCheck(const CheckRecord& record, const std::optional<v1::Event>& audit) = 0;
  // Writes the outcomes of many uneventful polls (no audit event) in one
  // transaction. A record is skipped when its repository is gone or has a
  // later check recorded already.
  virtual absl::Status RecordChecks(const std::vector<CheckRecord>& records) = 0;

  // Appends `revision` (id, cursor and detect_time are assigned) and moves
  // the ref state from `expected_tip` (empty: ref not yet known) to the
  // revision's sha (deleting it for ref_deleted); accepted_sha follows when
  // the revision is not rejected. ABORTED when the ref state is no longer
  // `expected_tip`. Notifies revision watchers on commit.
  virtual absl::StatusOr<v1::Revision> RecordRevision(const v1::Revision& revision, const std::string& expected_tip,
                                                      const v1::Event& audit) = 0;
  // Forgets a ref that is no longer tracked (no revision).
  virtual absl::Status DropRefState(const std::string& repository_id, const std::string& ref) = 0;

  // Revisions with cursor > `after`, ascending, filtered.
  virtual absl::StatusOr<std::vector<v1::Revision>> RevisionsAfter(int64_t after,
                                                                   const std::vector<std::string>& repository_ids,
                                                                   bool include_rejected, int limit) = 0;
  virtual absl::StatusOr<std::vector<v1::Revision>> ListRevisions(const RevisionQuery& query) = 0;

  // Enqueues an audit event on its own (no state change: rejected webhooks).
  virtual absl::Status RecordEvent(const v1::Event& audit) = 0;

  // Runs `fn` while holding the cluster-wide poll lock of the repository
  // (a PostgreSQL session advisory lock). Returns false without running `fn`
  // when another replica holds it.
  virtual absl::StatusOr<bool> WithRepositoryLock(const std::string& id, const std::function<void()>& fn) = 0;
};

}  // namespace ferry::repo_watcher
