#include "services/repo-watcher/pull_request_tracker.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/concurrency/retry_aborted.h"
#include "common/logging/logger.h"
#include "services/repo-watcher/secrets.h"

namespace ferry::repo_watcher {

std::string PullHeadRef(int64_t number) { return absl::StrCat("refs/ferry/pull/", number, "/head"); }
std::string PullBaseRef(int64_t number) { return absl::StrCat("refs/ferry/pull/", number, "/base"); }

absl::Status PullRequestTracker::Locked(const std::string& repository_id, const std::function<absl::Status()>& fn) {
  const absl::Time deadline = absl::Now() + lock_wait_;
  while (true) {
    absl::Status inner;
    absl::StatusOr<bool> ran = store_->WithRepositoryLock(repository_id, [&] { inner = fn(); });
    if (!ran.ok()) return ran.status();
    if (*ran) return inner;
    if (absl::Now() >= deadline) {
      return absl::UnavailableError(absl::StrCat("repository \"", repository_id, "\" stayed locked by a poll"));
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
}

absl::StatusOr<PullRequestTracker::Fetched> PullRequestTracker::FetchHead(const v1::Repository& repo,
                                                                         const PullRequestChange& change) {
  Fetched out;
  absl::Status s = Locked(repo.id(), [&]() -> absl::Status {
    absl::StatusOr<git::Credentials> creds = ResolveCredentials(repo, *secrets_);
    if (!creds.ok()) return creds.status();
    absl::Time t0 = absl::Now();
    absl::StatusOr<std::vector<git::RemoteRef>> remote = git_->ListRemoteRefs(repo.url(), *creds);
    metrics_->GitRequest("ls-remote", remote.ok(), absl::Now() - t0);
    if (!remote.ok()) return remote.status();
    for (const git::RemoteRef& r : *remote) {
      if (r.name == change.head_ref) out.head_sha = r.commit;
      if (r.name == change.base_ref) out.base_sha = r.commit;
    }
    if (out.head_sha.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(change.head_ref, " is not on the remote"));
    }
    std::vector<std::string> refspecs = {absl::StrCat("+", change.head_ref, ":", PullHeadRef(change.number))};
    if (!out.base_sha.empty()) refspecs.push_back(absl::StrCat("+", change.base_ref, ":", PullBaseRef(change.number)));
    absl::StatusOr<MirrorSet::Lease> mirror = mirrors_->Open(repo.id(), repo.url());
    if (!mirror.ok()) return mirror.status();
    absl::Time f0 = absl::Now();
    absl::Status fetched = mirror->repo->Fetch(repo.url(), refspecs, *creds);
    metrics_->GitRequest("fetch", fetched.ok(), absl::Now() - f0);
    if (!fetched.ok()) return fetched;
    if (!mirror->repo->HasCommit(out.head_sha)) {
      return absl::UnavailableError(absl::StrCat("fetched ", change.head_ref, " but ", out.head_sha, " is missing"));
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<bool> PullRequestTracker::FetchForCommit(const v1::Repository& repo, const std::string& sha) {
  v1::ListPullRequestsRequest req;
  req.set_repository_id(repo.id());
  absl::StatusOr<v1::ListPullRequestsResponse> open = reviews_->ListPullRequests(req);
  if (!open.ok()) return open.status();
  for (const v1::PullRequest& pr : open->pull_requests()) {
    if (pr.state() != v1::PULL_REQUEST_STATE_OPEN || (pr.head_sha() != sha && pr.base_sha() != sha)) continue;
    PullRequestChange change;
    change.kind = PullRequestChange::Kind::kUpdated;
    change.number = pr.number();
    change.head_ref = pr.head_ref();
    change.base_ref = pr.base_ref();
    absl::StatusOr<Fetched> fetched = FetchHead(repo, change);
    if (!fetched.ok()) return fetched.status();
    logging::Info("pull request fetched on demand",
                  {{"repository", repo.id()}, {"number", pr.number()}, {"sha", sha}, {"head_sha", fetched->head_sha}});
    return true;
  }
  return false;
}

void PullRequestTracker::DropRefs(const v1::Repository& repo, int64_t number) {
  absl::Status s = Locked(repo.id(), [&]() -> absl::Status {
    absl::StatusOr<MirrorSet::Lease> mirror = mirrors_->OpenForRead(repo.id(), repo.url());
    if (!mirror.ok()) return absl::OkStatus();  // no mirror, no refs
    absl::Status head = mirror->repo->DeleteRef(PullHeadRef(number));
    absl::Status base = mirror->repo->DeleteRef(PullBaseRef(number));
    return head.ok() ? base : head;
  });
  if (!s.ok()) {
    logging::Warn("cannot drop a closed pull request's refs",
                  {{"repository", repo.id()}, {"number", number}, {"error", s.ToString()}});
  }
}

absl::Status PullRequestTracker::Apply(const v1::Repository& repo, const PullRequestChange& change,
                                       const v1::Actor& actor) {
  const bool closing = change.kind == PullRequestChange::Kind::kClosed;
  Fetched fetched;
  if (!closing) {
    absl::StatusOr<Fetched> f = FetchHead(repo, change);
    if (!f.ok()) return f.status();
    fetched = *f;
    if (!change.head_sha.empty() && change.head_sha != fetched.head_sha) {
      logging::Info("pull request head moved past the webhook's",
                    {{"repository", repo.id()}, {"number", change.number}, {"announced", change.head_sha},
                     {"fetched", fetched.head_sha}});
    }
  }
  bool changed = false;
  absl::Status recorded = concurrency::RetryWhileAborted([&]() -> absl::Status {
    absl::StatusOr<std::optional<v1::PullRequest>> current = reviews_->GetPullRequest(repo.id(), change.number);
    if (!current.ok()) return current.status();
    v1::PullRequest pr;
    if (current->has_value()) pr = **current;
    pr.clear_update_time();
    pr.set_repository_id(repo.id());
    pr.set_number(change.number);
    if (!change.title.empty()) pr.set_title(change.title);
    if (!change.url.empty()) pr.set_url(change.url);
    if (!change.author.empty()) pr.set_author(change.author);
    pr.set_head_ref(change.head_ref);
    pr.set_base_ref(change.base_ref);
    const bool was_open = current->has_value() && (*current)->state() == v1::PULL_REQUEST_STATE_OPEN;
    v1::AuditAction action;
    std::string verb;
    if (closing) {
      pr.set_state(change.merged ? v1::PULL_REQUEST_STATE_MERGED : v1::PULL_REQUEST_STATE_CLOSED);
      if (pr.head_sha().empty()) pr.set_head_sha(change.head_sha);
      if (current->has_value() && (*current)->state() == pr.state()) return absl::OkStatus();  // already so
      action = v1::AUDIT_ACTION_PULL_REQUEST_CLOSED;
      verb = change.merged ? "merged" : "closed";
    } else {
      const bool same = was_open && pr.head_sha() == fetched.head_sha && pr.base_sha() == fetched.base_sha;
      pr.set_state(v1::PULL_REQUEST_STATE_OPEN);
      pr.set_head_sha(fetched.head_sha);
      pr.set_base_sha(fetched.base_sha);
      if (same) return absl::OkStatus();  // a redelivery, or an edit that moved nothing
      action = was_open ? v1::AUDIT_ACTION_PULL_REQUEST_UPDATED : v1::AUDIT_ACTION_PULL_REQUEST_OPENED;
      verb = was_open ? "updated" : (current->has_value() ? "reopened" : "opened");
    }
    std::optional<v1::PullRequest> expected;
    if (current->has_value()) expected = **current;
    absl::StatusOr<v1::PullRequest> stored = reviews_->RecordPullRequest(
        pr, expected, action, actor,
        absl::StrCat("pull request ", change.number, " of ", repo.id(), " ", verb, " (head ", pr.head_sha(), ")"));
    if (!stored.ok()) return stored.status();
    changed = true;
    logging::Info("pull request recorded", {{"repository", repo.id()}, {"number", change.number}, {"event", verb},
                                            {"head_sha", pr.head_sha()}});
    return absl::OkStatus();
  });
  if (!recorded.ok()) return recorded;
  if (closing && changed) DropRefs(repo, change.number);
  return absl::OkStatus();
}

}  // namespace ferry::repo_watcher
