#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "common/git/git_repository.h"
#include "ferry/v1/repo_watcher.pb.h"
#include "services/repo-watcher/mirror_set.h"
#include "services/repo-watcher/repository_store.h"
#include "services/repo-watcher/signature_verifier.h"

namespace ferry::repo_watcher {

// Most commits one check verifies under policy ALL (RevisionChecker and
// PollOptions::max_commits_verified); more is refused, not truncated.
inline constexpr int kMaxCommitsVerified = 1000;

// A repository's signature policy applied to `commit` of `mirror`, the one
// rule for the poller and for CheckRevision:
// - mode NONE (or unset): passes, NOT_CHECKED, "signature policy is none";
// - HEAD: `commit` itself must carry a valid signature by a trusted key;
// - ALL: that, and so must every commit reachable from `commit` but not
//   from `verified_base` (an accepted commit; empty: `commit` alone, as for
//   the first revision of a ref), newest first; the first that fails is the
//   verdict ("policy ALL: ..."). More than `max_commits` to verify, or a
//   history that cannot be listed, is SIGNATURE_RESULT_ERROR.
// Errors only when the mirror cannot read a commit it lists.
absl::StatusOr<SignatureCheck> EvaluateSignaturePolicy(SignatureVerifier& verifier, git::Repository& mirror,
                                                       const git::Commit& commit, const v1::SignaturePolicy& policy,
                                                       const std::string& verified_base,
                                                       int max_commits = kMaxCommitsVerified);

// One job: answering CheckRevision, whether a commit in a repository's
// mirror is accepted under the repository's signature policy as it stands
// now. Under ALL, the verified base is the accepted tip of a tracked ref
// that leaves the fewest commits to verify (none when the commit is in the
// history of an accepted tip), as the poller would verify a move from it.
// No gRPC, no SQL. Thread-safe.
class RevisionChecker {
 public:
  RevisionChecker(RepositoryStore* store, MirrorSet* mirrors, SignatureVerifier* verifier,
                  int max_commits = kMaxCommitsVerified)
      : store_(store), mirrors_(mirrors), verifier_(verifier), max_commits_(max_commits) {}

  // A refusal is an answer (accepted = false, reason), not an error.
  // INVALID_ARGUMENT for a bad repository id or a revision that is not 40
  // lowercase hex characters; NOT_FOUND for an unknown repository or a
  // commit its mirror does not hold.
  absl::StatusOr<v1::CheckRevisionResponse> Check(const std::string& repository_id, const std::string& revision);

 private:
  // The accepted tip to verify `sha`'s new history from ("" when none).
  absl::StatusOr<std::string> VerifiedBase(const std::string& repository_id, git::Repository& mirror,
                                           const std::string& sha);

  RepositoryStore* store_;
  MirrorSet* mirrors_;
  SignatureVerifier* verifier_;
  const int max_commits_;
};

}  // namespace ferry::repo_watcher
