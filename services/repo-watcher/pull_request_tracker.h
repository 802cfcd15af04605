#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/git/git_repository.h"
#include "common/secrets/secret_sources.h"
#include "services/repo-watcher/mirror_set.h"
#include "services/repo-watcher/repo_watcher_metrics.h"
#include "services/repo-watcher/repository_store.h"
#include "services/repo-watcher/review_log.h"
#include "services/repo-watcher/webhook_payload.h"

namespace ferry::repo_watcher {

// The local refs a pull request's commits are kept under in the mirror:
// refs/ferry/pull/<number>/head and .../base. Never tracked, so never a
// revision of WatchRevisions; they keep the commits reachable for
// ReadContent and previews.
std::string PullHeadRef(int64_t number);
std::string PullBaseRef(int64_t number);

// Applies pull/merge-request changes announced by webhooks. Opened,
// reopened or updated: lists the remote's refs, fetches the host's head ref
// (refs/pull/N/head, refs/merge-requests/N/head) and the target branch into
// PullHeadRef/PullBaseRef under the repository's poll lock, and records the
// pull request open with the fetched head (and the target's tip as
// base_sha), emitting a review event and an audit event (OPENED when it was
// not open before, UPDATED when its head or target moved; nothing when
// neither did, so a redelivered webhook changes nothing). Closed or merged:
// records the state, emits the events, and drops the mirror's refs.
// Thread-safe.
class PullRequestTracker {
 public:
  PullRequestTracker(ReviewLog* reviews, RepositoryStore* store, git::Client* git, MirrorSet* mirrors,
                     RepoWatcherMetrics* metrics, const secrets::SecretSources* secrets,
                     absl::Duration lock_wait = absl::Seconds(20))
      : reviews_(reviews),
        store_(store),
        git_(git),
        mirrors_(mirrors),
        metrics_(metrics),
        secrets_(secrets),
        lock_wait_(lock_wait) {}

  // FAILED_PRECONDITION when the head ref is not on the remote;
  // UNAVAILABLE when fetching fails or the poll lock stays taken past
  // `lock_wait`; the store's errors otherwise.
  absl::Status Apply(const v1::Repository& repo, const PullRequestChange& change, const v1::Actor& actor);

  // Fetches a pull request's head and target into this replica's mirror on
  // demand: when an open pull request of `repo` recorded in PostgreSQL has
  // `sha` as its head_sha or base_sha (another replica received its
  // webhook), as Apply does, without recording anything. Returns whether
  // one did (false: `sha` is no open pull request's, nothing fetched).
  // Errors as FetchHead's (FAILED_PRECONDITION when the head ref is gone
  // from the remote).
  absl::StatusOr<bool> FetchForCommit(const v1::Repository& repo, const std::string& sha);

 private:
  struct Fetched {
    std::string head_sha;
    std::string base_sha;  // empty when the target branch is not on the remote
  };
  absl::StatusOr<Fetched> FetchHead(const v1::Repository& repo, const PullRequestChange& change);
  void DropRefs(const v1::Repository& repo, int64_t number);
  // Runs `fn` under the repository's poll lock, waiting for it.
  absl::Status Locked(const std::string& repository_id, const std::function<absl::Status()>& fn);

  ReviewLog* reviews_;
  RepositoryStore* store_;
  git::Client* git_;
  MirrorSet* mirrors_;
  RepoWatcherMetrics* metrics_;
  const secrets::SecretSources* secrets_;
  const absl::Duration lock_wait_;
};

}  // namespace ferry::repo_watcher
