#include "services/repo-watcher/repo_poller.h"

#include <algorithm>
#include <iterator>
#include <map>
#include <optional>
#include <set>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/concurrency/backoff.h"
#include "common/concurrency/last_resort.h"
#include "common/logging/logger.h"
#include "common/text/utf8.h"
#include "google/protobuf/util/time_util.h"
#include "services/repo-watcher/repository_spec.h"
#include "services/repo-watcher/revision_checker.h"
#include "services/repo-watcher/secrets.h"

namespace ferry::repo_watcher {
namespace {

using google::protobuf::util::TimeUtil;

// A commit can change more paths than fit in a message its readers accept
// (gRPC's 4 MiB default: a generated tree of 100,000 files). Such a revision
// says "every path changed" instead of listing them: the planner then checks
// every application of the repository, which is what the commit needs, and
// the revision stream keeps flowing.
constexpr size_t kMaxChangedPathBytes = size_t{1} << 20;
// A commit message may be any length in Git; a revision carries its first
// 64 KiB (and says how much was cut), so one commit cannot make its revision
// too large to send either.
constexpr size_t kMaxMessageBytes = size_t{64} << 10;

std::string BoundedMessage(const std::string& message) {
  if (message.size() <= kMaxMessageBytes) return text::SanitizeUtf8(message);
  return absl::StrCat(text::SanitizeUtf8(message.substr(0, kMaxMessageBytes)), "\n[Ferry: message cut, ",
                      message.size() - kMaxMessageBytes, " more bytes]\n");
}

absl::BitGen& Rng() {
  thread_local absl::BitGen gen;
  return gen;
}

void SetIdentity(const git::Identity& id, v1::GitIdentity* out) {
  out->set_name(text::SanitizeUtf8(id.name));
  out->set_email(text::SanitizeUtf8(id.email));
  *out->mutable_time() = TimeUtil::SecondsToTimestamp(id.time_seconds);
}

void Detail(v1::Event& e, const std::string& key, const std::string& value) {
  (*e.mutable_details()->mutable_fields())[key].set_string_value(value);
}

void Detail(v1::Event& e, const std::string& key, bool value) {
  (*e.mutable_details()->mutable_fields())[key].set_bool_value(value);
}

}  // namespace

std::string NewEventKey(const std::string& prefix) {
  return absl::StrFormat("%s-%016x%016x", prefix, absl::Uniform<uint64_t>(Rng()), absl::Uniform<uint64_t>(Rng()));
}

v1::Event MakeEvent(v1::AuditAction action, const std::string& repository_id, const std::string& message) {
  v1::Event e;
  e.set_action(action);
  e.set_idempotency_key(NewEventKey("repo-watcher"));
  e.mutable_actor()->set_kind(v1::ACTOR_KIND_SYSTEM);
  e.mutable_actor()->set_id("ferry");
  e.mutable_subject()->set_repository_id(repository_id);
  e.set_message(message);
  return e;
}

RepoPoller::RepoPoller(RepositoryStore* store, git::Client* git, MirrorSet* mirrors, SignatureVerifier* verifier,
                       RevisionNotifier* notifier, RepoWatcherMetrics* metrics, const Clock* clock,
                       const secrets::SecretSources* secrets, PollOptions options, CheckBatcher* batcher)
    : store_(store),
      git_(git),
      mirrors_(mirrors),
      verifier_(verifier),
      notifier_(notifier),
      metrics_(metrics),
      clock_(clock),
      secrets_(secrets),
      options_(options),
      batcher_(batcher) {}

absl::Duration RepoPoller::NextDelay(absl::Duration interval, int failures) const {
  absl::Duration base = interval;
  if (failures > 0) {
    base = concurrency::BackoffDelay({.initial = options_.failure_backoff_initial, .max = options_.failure_backoff_max},
                                     failures);
  }
  double jitter = absl::Uniform<double>(Rng(), 0.0, options_.jitter_fraction);
  return base + base * jitter;
}

PollResult RepoPoller::Poll(const std::string& repository_id, const std::set<std::string>* only_refs,
                            bool scheduled) {
  PollResult result;
  absl::Time started = clock_->Now();
  bool fetched = false;
  bool gone = false;
  absl::Duration interval = kDefaultPollInterval;
  int failures_before = 0;
  std::string error_before;
  absl::Status status;
  // A scheduled check of every ref first compares the remote's refs with
  // the recorded ones, without the poll lock or the mirror: when nothing
  // moved (the common case) that is the whole check.
  bool checked = false;
  if (scheduled && only_refs == nullptr) {
    absl::Status guarded = concurrency::RunGuarded(absl::StrCat("quick check of ", repository_id), [&] {
      checked = QuickCheck(repository_id, &status, &gone, &interval, &failures_before, &error_before);
      return absl::OkStatus();
    });
    if (!guarded.ok()) {
      status = guarded;
      checked = true;
    }
  }
  // Otherwise the repository and its status are read once, under the poll
  // lock (a replica that polled it just before has left them as they now are).
  absl::StatusOr<bool> locked = true;
  if (!checked) locked = store_->WithRepositoryLock(repository_id, [&] {
    // A check that throws (a bug, a library call that escaped its wrapper)
    // is a failed check of this repository alone, recorded and backed off
    // like any other.
    status = concurrency::RunGuarded(absl::StrCat("poll of ", repository_id), [&]() -> absl::Status {
      absl::StatusOr<PollState> read = store_->ReadForPoll(repository_id);
      if (!read.ok()) {
        gone = absl::IsNotFound(read.status());
        return read.status();
      }
      interval = PollInterval(read->repository);
      failures_before = read->status.consecutive_failures();
      error_before = read->status.last_error();
      return PollLocked(read->repository, read->status, only_refs, &fetched);
    });
  });
  if (!locked.ok()) {
    status = locked.status();
  } else if (!*locked) {
    result.locked_elsewhere = true;
    absl::StatusOr<v1::Repository> repo = store_->Get(repository_id);
    if (repo.ok()) interval = PollInterval(*repo);
    result.next_check = clock_->Now() + NextDelay(interval, 0);
    return result;
  }
  int failures = status.ok() ? 0 : failures_before + 1;
  absl::Time now = clock_->Now();
  CheckRecord record{repository_id, started, std::nullopt, status.ok() ? "" : std::string(status.message()), failures,
                     now + NextDelay(interval, failures)};
  if (fetched) record.fetch_time = now;
  std::optional<v1::Event> audit;
  if (!gone && !status.ok() && (failures_before == 0 || error_before != record.error)) {
    audit = MakeEvent(v1::AUDIT_ACTION_FETCH_FAILED, repository_id,
                      absl::StrCat("checking ", repository_id, " failed: ", status.message()));
    Detail(*audit, "error", std::string(status.message()));
    logging::Warn("repository check failed", {{"repository", repository_id}, {"error", status.ToString()},
                                              {"consecutive_failures", failures}});
  }
  absl::Status recorded;
  if (!gone && scheduled && batcher_ != nullptr && status.ok() && failures_before == 0 && error_before.empty()) {
    // Nothing for anyone to act on (no error before or now, no audit
    // event): written with the other uneventful checks of the moment.
    batcher_->Add(record);
  } else if (!gone) {
    recorded = store_->RecordCheck(record, audit);
    gone = absl::IsNotFound(recorded);
  }
  if (gone) {
    // Deleted before or while polling: the poll may have recreated the
    // mirror after the deletion removed it (or another replica deleted it),
    // so remove it again.
    mirrors_->Remove(repository_id);
    result.status = absl::NotFoundError(absl::StrCat("repository \"", repository_id, "\" was deleted"));
    result.repository_gone = true;
    result.next_check = now + NextDelay(kDefaultPollInterval, 0);
    return result;
  }
  if (!recorded.ok() && status.ok()) status = recorded;
  result.status = status;
  result.next_check = record.next_check_time;
  return result;
}

void RepoPoller::Prefetch(const std::vector<std::string>& ids) {
  absl::StatusOr<std::map<std::string, PollState>> read = store_->ReadForPollMany(ids);
  if (!read.ok()) return;  // each check reads its own
  const absl::Time now = clock_->Now();
  MutexLock lock(&prefetch_mu_);
  // What no check took (a trigger ran it instead, or it was forgotten).
  for (auto it = prefetched_.begin(); it != prefetched_.end();) {
    it = now - it->second.second > kPrefetchMaxAge ? prefetched_.erase(it) : std::next(it);
  }
  for (auto& [id, state] : *read) prefetched_.insert_or_assign(id, std::make_pair(std::move(state), now));
}

std::optional<PollState> RepoPoller::TakePrefetched(const std::string& repository_id) {
  MutexLock lock(&prefetch_mu_);
  auto it = prefetched_.find(repository_id);
  if (it == prefetched_.end()) return std::nullopt;
  std::optional<PollState> out;
  if (clock_->Now() - it->second.second <= kPrefetchMaxAge) out = std::move(it->second.first);
  prefetched_.erase(it);
  return out;
}

bool RepoPoller::QuickCheck(const std::string& repository_id, absl::Status* status, bool* gone,
                            absl::Duration* interval, int* failures_before, std::string* error_before) {
  std::optional<PollState> prefetched = TakePrefetched(repository_id);
  absl::StatusOr<PollState> read = prefetched ? absl::StatusOr<PollState>(*std::move(prefetched))
                                              : store_->ReadForPoll(repository_id);
  if (!read.ok()) {
    *gone = absl::IsNotFound(read.status());
    *status = read.status();
    return true;
  }
  const v1::Repository& repo = read->repository;
  *interval = PollInterval(repo);
  *failures_before = read->status.consecutive_failures();
  *error_before = read->status.last_error();
  if (*failures_before > 0 || !error_before->empty()) return false;  // a failing repository gets the full check
  absl::StatusOr<git::Credentials> creds = ResolveCredentials(repo, *secrets_);
  if (!creds.ok()) {
    *status = creds.status();
    return true;
  }
  absl::Time t0 = absl::Now();
  // Only the tracked refs are compared, so only they need reading (a
  // repository on this host is not listed whole).
  git::RefPatterns patterns{{repo.branches().begin(), repo.branches().end()},
                            {repo.tag_patterns().begin(), repo.tag_patterns().end()}};
  absl::StatusOr<std::vector<git::RemoteRef>> remote = git_->ListRemoteRefsFor(repo.url(), *creds, patterns);
  metrics_->GitRequest("ls-remote", remote.ok(), absl::Now() - t0);
  if (!remote.ok()) {
    *status = remote.status();
    return true;
  }
  std::map<std::string, std::string> tracked;
  for (const git::RemoteRef& r : *remote) {
    if (IsTrackedRef(repo, r.name)) tracked[r.name] = r.commit;
  }
  if (static_cast<int>(tracked.size()) != read->status.refs_size()) return false;
  std::set<std::string> tips;
  for (const v1::RefState& known : read->status.refs()) {
    auto it = tracked.find(known.ref());
    if (it == tracked.end() || it->second != known.sha()) return false;
    tips.insert(known.sha());
  }
  if (!mirrors_->Holds(repo.id(), tips)) return false;
  *status = absl::OkStatus();
  return true;
}

absl::Status RepoPoller::PollLocked(const v1::Repository& repo, const v1::RepositoryStatus& state,
                                    const std::set<std::string>* only_refs, bool* fetched) {
  auto in_scope = [only_refs](const std::string& ref) { return only_refs == nullptr || only_refs->count(ref) > 0; };
  absl::StatusOr<git::Credentials> creds = ResolveCredentials(repo, *secrets_);
  if (!creds.ok()) return creds.status();

  absl::Time t0 = absl::Now();
  absl::StatusOr<std::vector<git::RemoteRef>> remote = git_->ListRemoteRefs(repo.url(), *creds);
  metrics_->GitRequest("ls-remote", remote.ok(), absl::Now() - t0);
  if (!remote.ok()) return remote.status();

  std::map<std::string, std::string> tracked;  // ref -> commit
  std::set<std::string> advertised;
  for (const git::RemoteRef& r : *remote) {
    advertised.insert(r.name);
    if (IsTrackedRef(repo, r.name) && in_scope(r.name)) tracked[r.name] = r.commit;
  }
  std::map<std::string, const v1::RefState*> known;
  for (const v1::RefState& r : state.refs()) known[r.ref()] = &r;

  absl::StatusOr<MirrorSet::Lease> mirror = mirrors_->Open(repo.id(), repo.url());
  if (!mirror.ok()) return mirror.status();
  git::Repository& git_repo = *mirror->repo;

  std::vector<std::string> refspecs;
  for (const auto& [ref, sha] : tracked) {
    auto k = known.find(ref);
    bool moved = k == known.end() || k->second->sha() != sha;
    if (moved || !git_repo.HasCommit(sha)) refspecs.push_back(absl::StrCat("+", ref, ":", ref));
  }
  if (!refspecs.empty()) {
    absl::Time f0 = absl::Now();
    absl::Status f = git_repo.Fetch(repo.url(), refspecs, *creds);
    metrics_->GitRequest("fetch", f.ok(), absl::Now() - f0);
    if (!f.ok()) return f;
    *fetched = true;
  }
  if (only_refs == nullptr) {
    std::set<std::string> tips;
    for (const auto& [ref, sha] : tracked) tips.insert(sha);
    mirrors_->NoteHeld(repo.id(), std::move(tips));
  }
  for (const auto& [ref, sha] : tracked) {
    auto k = known.find(ref);
    if (k != known.end() && k->second->sha() == sha) continue;
    absl::Status s = RecordMove(repo, git_repo, ref, k == known.end() ? nullptr : k->second, sha);
    if (!s.ok() && !absl::IsAborted(s)) return s;
  }
  for (const auto& [ref, k] : known) {
    if (tracked.count(ref) > 0 || !in_scope(ref)) continue;
    absl::Status s = advertised.count(ref) > 0 ? store_->DropRefState(repo.id(), ref)
                                               : RecordDeletion(repo, git_repo, *k);
    if (!s.ok() && !absl::IsAborted(s)) return s;
  }
  return absl::OkStatus();
}

absl::Status RepoPoller::RecordMove(const v1::Repository& repo, git::Repository& mirror, const std::string& ref,
                                    const v1::RefState* known, const std::string& sha) {
  absl::StatusOr<git::Commit> commit = mirror.ReadCommit(sha);
  if (!commit.ok()) return commit.status();
  // Under ALL, every commit since the last accepted one must pass too.
  std::string base;
  if (known != nullptr && !known->accepted_sha().empty() && mirror.HasCommit(known->accepted_sha()))
    base = known->accepted_sha();
  absl::StatusOr<SignatureCheck> evaluated =
      EvaluateSignaturePolicy(*verifier_, mirror, *commit, repo.signature_policy(), base, options_.max_commits_verified);
  if (!evaluated.ok()) return evaluated.status();
  const SignatureCheck& check = *evaluated;
  bool rejected = !check.passed();

  v1::Revision rev;
  rev.set_repository_id(repo.id());
  rev.set_ref(ref);
  rev.set_sha(sha);
  for (const std::string& p : commit->parents) rev.add_parents(p);
  SetIdentity(commit->author, rev.mutable_author());
  SetIdentity(commit->committer, rev.mutable_committer());
  // Commit messages and names may be in any encoding (Latin-1 is common in
  // old histories) and paths any bytes; a Revision is a proto3 message whose
  // strings must be UTF-8, or the planner cannot parse the revision stream.
  rev.set_message(BoundedMessage(commit->message));
  *rev.mutable_commit_time() = TimeUtil::SecondsToTimestamp(commit->committer.time_seconds);
  rev.set_signature_result(check.result);
  rev.set_signature_type(check.type);
  rev.set_signer(text::SanitizeUtf8(check.signer));
  rev.set_signature_reason(text::SanitizeUtf8(check.reason));
  rev.set_rejected(rejected);
  // Accepted revisions are relative to what the planner last saw.
  std::string previous = known == nullptr ? "" : (rejected ? known->sha() : known->accepted_sha());
  rev.set_previous_sha(previous);
  if (previous.empty()) {
    rev.set_all_paths_changed(true);
  } else if (!mirror.HasCommit(previous)) {
    // Unreachable from the new tip after the fetch: history was rewritten.
    rev.set_all_paths_changed(true);
    rev.set_forced_update(true);
  } else {
    absl::StatusOr<std::vector<std::string>> paths = mirror.ChangedPaths(previous, sha);
    if (!paths.ok()) return paths.status();
    size_t bytes = 0;
    for (const std::string& p : *paths) bytes += p.size() + 4;  // the string and its framing
    if (bytes > kMaxChangedPathBytes) {
      rev.set_all_paths_changed(true);
    } else {
      for (const std::string& p : *paths) rev.add_changed_paths(text::SanitizeUtf8(p));
    }
    if (previous != sha) {
      absl::StatusOr<bool> ff = mirror.IsDescendantOf(sha, previous);
      if (!ff.ok()) return ff.status();
      rev.set_forced_update(!*ff);
    }
  }

  v1::Event event = MakeEvent(
      rejected ? v1::AUDIT_ACTION_SIGNATURE_REJECTED : v1::AUDIT_ACTION_REVISION_DETECTED, repo.id(),
      rejected ? absl::StrCat("rejected ", ref, " at ", sha, ": ", check.reason)
               : absl::StrCat("new revision ", sha, " on ", ref, rev.forced_update() ? " (forced update)" : ""));
  event.mutable_subject()->set_ref(ref);
  event.mutable_subject()->set_commit_sha(sha);
  Detail(event, "signature_result", SignatureResultName(check.result));
  Detail(event, "signature_reason", check.reason);
  if (!check.signer.empty()) Detail(event, "signer", check.signer);
  Detail(event, "previous_sha", previous);
  Detail(event, "forced_update", rev.forced_update());
  // The committer time, in Unix seconds: DORA's lead time for changes runs
  // from it to the deployment's healthy event (docs/history.md).
  (*event.mutable_details()->mutable_fields())["commit_time_unix"].set_number_value(
      static_cast<double>(rev.commit_time().seconds()));

  absl::StatusOr<v1::Revision> stored = store_->RecordRevision(rev, known == nullptr ? "" : known->sha(), event);
  if (!stored.ok()) return stored.status();
  metrics_->Revision(SignatureResultName(check.result));
  notifier_->Notify();
  logging::Info(rejected ? "revision rejected" : "revision detected",
                {{"repository", repo.id()}, {"ref", ref}, {"sha", sha}, {"cursor", stored->cursor()},
                 {"signature_result", SignatureResultName(check.result)}, {"forced_update", rev.forced_update()}});
  return absl::OkStatus();
}

absl::Status RepoPoller::RecordDeletion(const v1::Repository& repo, git::Repository& mirror,
                                        const v1::RefState& known) {
  v1::Revision rev;
  rev.set_repository_id(repo.id());
  rev.set_ref(known.ref());
  rev.set_previous_sha(known.sha());
  rev.set_ref_deleted(true);
  rev.set_signature_result(v1::SIGNATURE_RESULT_NOT_CHECKED);
  rev.set_signature_reason("ref deleted");
  v1::Event event = MakeEvent(v1::AUDIT_ACTION_REVISION_DETECTED, repo.id(),
                              absl::StrCat("ref ", known.ref(), " was deleted on the remote"));
  event.mutable_subject()->set_ref(known.ref());
  Detail(event, "ref_deleted", true);
  Detail(event, "previous_sha", known.sha());
  absl::StatusOr<v1::Revision> stored = store_->RecordRevision(rev, known.sha(), event);
  if (!stored.ok()) return stored.status();
  metrics_->Revision(SignatureResultName(v1::SIGNATURE_RESULT_NOT_CHECKED));
  notifier_->Notify();
  logging::Info("ref deleted", {{"repository", repo.id()}, {"ref", known.ref()}, {"cursor", stored->cursor()}});
  return mirror.DeleteRef(known.ref());
}

}  // namespace ferry::repo_watcher
