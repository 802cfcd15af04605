#pragma once

#include "common/git/git_repository.h"

namespace ferry::git {

// Client on libgit2, entirely in-process: ls-remote connects with
// git_remote_connect + git_remote_ls and never spawns git. Thread-safe.
class Libgit2Client final : public Client {
 public:
  explicit Libgit2Client(FetchLimits limits = {});
  absl::StatusOr<std::vector<RemoteRef>> ListRemoteRefs(const std::string& url,
                                                        const Credentials& credentials) override;
  // A repository on this host (a path or file:// URL) is opened and only
  // the selected refs are read: the branches named, or those under
  // refs/heads/ (refs/tags/) when a pattern has a wildcard. Any other URL,
  // or any error, is answered by ListRemoteRefs.
  absl::StatusOr<std::vector<RemoteRef>> ListRemoteRefsFor(const std::string& url, const Credentials& credentials,
                                                           const RefPatterns& patterns) override;
  absl::StatusOr<std::unique_ptr<Repository>> OpenMirror(const std::string& dir, const std::string& url,
                                                         bool* rebuilt) override;
  absl::StatusOr<std::unique_ptr<Repository>> OpenExistingMirror(const std::string& dir,
                                                                 const std::string& url) override;

 private:
  const FetchLimits limits_;
};

}  // namespace ferry::git
