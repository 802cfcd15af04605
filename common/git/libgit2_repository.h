#pragma once

#include <string>

#include "common/git/git_repository.h"
#include "common/git/libgit2_handles.h"

namespace ferry::git {

// A bare repository opened with libgit2. Not thread-safe (one per thread).
class Libgit2Repository final : public Repository {
 public:
  explicit Libgit2Repository(RepositoryHandle repo, FetchLimits limits = {})
      : repo_(std::move(repo)), limits_(limits) {}

  absl::Status Fetch(const std::string& url, const std::vector<std::string>& refspecs,
                     const Credentials& credentials) override;
  bool HasCommit(const std::string& sha) override;
  absl::StatusOr<Commit> ReadCommit(const std::string& sha) override;
  absl::StatusOr<bool> IsDescendantOf(const std::string& descendant, const std::string& ancestor) override;
  absl::StatusOr<std::vector<std::string>> ChangedPaths(const std::string& from, const std::string& to) override;
  absl::StatusOr<std::vector<std::string>> CommitsBetween(const std::string& hide, const std::string& tip,
                                                          int limit) override;
  absl::StatusOr<std::vector<TreeEntry>> ListTree(const std::string& commit, const std::string& path) override;
  absl::StatusOr<std::string> ReadBlob(const std::string& oid) override;
  absl::Status DeleteRef(const std::string& name) override;

 private:
  absl::StatusOr<CommitHandle> LookupCommit(const std::string& sha);
  RepositoryHandle repo_;
  const FetchLimits limits_;
};

// Credential callback payload shared by ls-remote and fetch.
struct CredentialPayload {
  const Credentials* credentials = nullptr;
  int attempts = 0;
  std::string url;  // for the SSH port in host-key checks
  // Fetch only: its bounds, and why the transfer was stopped (empty: it was not).
  const FetchLimits* limits = nullptr;
  std::string exceeded;
};
// git_credential_acquire_cb for `CredentialPayload`.
int AcquireCredential(git_credential** out, const char* url, const char* username_from_url,
                      unsigned int allowed_types, void* payload);
// git_transport_certificate_check_cb for `CredentialPayload`: SSH host keys
// must be in the known_hosts file; TLS certificates keep libgit2's verdict.
int CheckCertificate(git_cert* cert, int valid, const char* host, void* payload);
// git_indexer_progress_cb for `CredentialPayload`: stops a fetch past its
// FetchLimits.
int CheckTransfer(const git_indexer_progress* stats, void* payload);

}  // namespace ferry::git
