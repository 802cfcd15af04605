#include "services/repo-watcher/revision_checker.h"

#include <algorithm>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/text/utf8.h"
#include "services/repo-watcher/repository_spec.h"

namespace ferry::repo_watcher {
namespace {

bool IsFullSha(const std::string& sha) {
  return sha.size() == 40 &&
         std::all_of(sha.begin(), sha.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

absl::Status NotInMirror(const std::string& sha, const std::string& id) {
  return absl::NotFoundError(absl::StrCat("commit ", sha, " is not in the mirror of \"", id, "\""));
}

}  // namespace

absl::StatusOr<SignatureCheck> EvaluateSignaturePolicy(SignatureVerifier& verifier, git::Repository& mirror,
                                                       const git::Commit& commit, const v1::SignaturePolicy& policy,
                                                       const std::string& verified_base, int max_commits) {
  SignatureCheck check;
  check.reason = "signature policy is none";
  if (policy.mode() != v1::SIGNATURE_MODE_HEAD && policy.mode() != v1::SIGNATURE_MODE_ALL) return check;
  check = verifier.Verify(commit, policy);
  if (!check.passed() || policy.mode() != v1::SIGNATURE_MODE_ALL || verified_base.empty()) return check;
  absl::StatusOr<std::vector<std::string>> between = mirror.CommitsBetween(verified_base, commit.sha, max_commits);
  if (!between.ok()) {
    check.result = v1::SIGNATURE_RESULT_ERROR;
    check.reason = absl::StrCat("cannot list new commits: ", between.status().message());
    return check;
  }
  for (auto it = between->rbegin(); it != between->rend(); ++it) {
    if (*it == commit.sha) continue;
    absl::StatusOr<git::Commit> c = mirror.ReadCommit(*it);
    if (!c.ok()) return c.status();
    SignatureCheck one = verifier.Verify(*c, policy);
    if (!one.passed()) {
      one.reason = absl::StrCat("policy ALL: ", one.reason);
      return one;
    }
  }
  return check;
}

absl::StatusOr<std::string> RevisionChecker::VerifiedBase(const std::string& repository_id, git::Repository& mirror,
                                                          const std::string& sha) {
  absl::StatusOr<v1::RepositoryStatus> status = store_->GetStatus(repository_id);
  if (!status.ok()) return status.status();
  std::string base;
  std::optional<size_t> fewest;
  for (const v1::RefState& ref : status->refs()) {
    const std::string& accepted = ref.accepted_sha();
    if (accepted.empty() || !mirror.HasCommit(accepted)) continue;
    if (base.empty()) base = accepted;  // when every listing fails, the evaluation reports it
    absl::StatusOr<std::vector<std::string>> between = mirror.CommitsBetween(accepted, sha, max_commits_);
    if (!between.ok()) continue;
    if (!fewest || between->size() < *fewest) {
      fewest = between->size();
      base = accepted;
    }
    if (*fewest == 0) break;  // in the history of an accepted tip
  }
  return base;
}

absl::StatusOr<v1::CheckRevisionResponse> RevisionChecker::Check(const std::string& repository_id,
                                                                 const std::string& revision) {
  if (!IsValidId(repository_id)) return absl::InvalidArgumentError("repository_id: must be a repository id");
  if (!IsFullSha(revision))
    return absl::InvalidArgumentError("revision: must be a full 40-character lowercase hex commit sha");
  absl::StatusOr<v1::Repository> repo = store_->Get(repository_id);
  if (!repo.ok()) return repo.status();
  absl::StatusOr<MirrorSet::Lease> mirror = mirrors_->OpenForRead(repo->id(), repo->url());
  if (absl::IsNotFound(mirror.status())) return NotInMirror(revision, repo->id());
  if (!mirror.ok()) return mirror.status();
  git::Repository& git_repo = *mirror->repo;
  if (!git_repo.HasCommit(revision)) return NotInMirror(revision, repo->id());
  absl::StatusOr<git::Commit> commit = git_repo.ReadCommit(revision);
  if (absl::IsNotFound(commit.status())) return NotInMirror(revision, repo->id());
  if (!commit.ok()) return commit.status();

  const v1::SignaturePolicy& policy = repo->signature_policy();
  std::string base;
  if (policy.mode() == v1::SIGNATURE_MODE_ALL) {
    absl::StatusOr<std::string> found = VerifiedBase(repo->id(), git_repo, revision);
    if (!found.ok()) return found.status();
    base = *found;
  }
  absl::StatusOr<SignatureCheck> check =
      EvaluateSignaturePolicy(*verifier_, git_repo, *commit, policy, base, max_commits_);
  if (!check.ok()) return check.status();
  v1::CheckRevisionResponse out;
  out.set_accepted(check->passed());
  out.set_reason(text::SanitizeUtf8(check->reason));
  out.set_signature_result(check->result);
  out.set_signature_type(check->type);
  out.set_signer(text::SanitizeUtf8(check->signer));
  return out;
}

}  // namespace ferry::repo_watcher
