#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ferry::git {

// One ref advertised by a remote, with the commit it points to (annotated
// tags are peeled to their commit).
struct RemoteRef {
  std::string name;    // full ref name, e.g. "refs/heads/main"
  std::string target;  // the object the ref names (a tag object for annotated tags)
  std::string commit;  // peeled commit sha (equals target for branches)
};

// Which refs of a remote a caller tracks: branches and tags by fnmatch
// pattern (FNM_PATHNAME) on their short names, as a repository's spec names
// them ("main", "release/*", "v*").
struct RefPatterns {
  std::vector<std::string> branches;
  std::vector<std::string> tags;
};

// How to authenticate to a remote. Holds secrets in memory only; never log it.
struct Credentials {
  enum class Kind { kNone, kUserPassword, kSshKey };
  Kind kind = Kind::kNone;
  std::string username;          // user for HTTPS, or SSH user when the URL has none
  std::string password;          // HTTPS token
  std::string private_key_file;  // SSH
  std::string passphrase;        // SSH, optional
  // SSH host keys are checked against this OpenSSH known_hosts file (empty:
  // ~/.ssh/known_hosts); an unknown or different host key fails the
  // connection with UNAVAILABLE.
  std::string known_hosts_file;
};

// Bounds of one fetch, against a remote that sends without end (a history
// of garbage, millions of objects): past either the fetch stops, fails with
// RESOURCE_EXHAUSTED, and keeps nothing of what it received. 0: unbounded.
struct FetchLimits {
  int64_t max_bytes = 0;    // bytes received (the pack as sent)
  int64_t max_objects = 0;  // objects the pack holds (its header says so first)
};

struct Identity {
  std::string name;
  std::string email;
  int64_t time_seconds = 0;  // Unix time
  int offset_minutes = 0;    // timezone offset
};

// A commit read from a mirror.
struct Commit {
  std::string sha;
  std::vector<std::string> parents;
  Identity author;
  Identity committer;
  std::string message;
  // The raw "gpgsig" header (armored PGP or SSH signature) and the bytes it
  // signs; both empty for an unsigned commit.
  std::string signature;
  std::string signed_data;
};

// One entry of a tree listing. Symlinks are reported, never followed.
struct TreeEntry {
  enum class Type { kFile, kSymlink, kSubmodule };
  std::string path;  // repository-relative
  Type type = Type::kFile;
  uint32_t mode = 0;     // git file mode, e.g. 0100644
  std::string oid;       // blob id (commit id for submodules)
  int64_t size = 0;      // blob size; 0 for submodules
};

// A local bare repository (a mirror). A handle is NOT thread-safe; open one
// handle per thread. Separate handles on the same directory may be used
// concurrently. Errors: NOT_FOUND for unknown objects, UNAVAILABLE for
// network/transport failures (retry), INTERNAL otherwise.
class Repository {
 public:
  virtual ~Repository() = default;

  // Fetches `refspecs` (e.g. "+refs/heads/main:refs/heads/main") from `url`.
  virtual absl::Status Fetch(const std::string& url, const std::vector<std::string>& refspecs,
                             const Credentials& credentials) = 0;
  // Whether the object database holds commit `sha`.
  virtual bool HasCommit(const std::string& sha) = 0;
  virtual absl::StatusOr<Commit> ReadCommit(const std::string& sha) = 0;
  // Whether `descendant` has `ancestor` in its history (false when equal).
  virtual absl::StatusOr<bool> IsDescendantOf(const std::string& descendant, const std::string& ancestor) = 0;
  // Paths that differ between the trees of two commits (both sides of
  // renames), sorted and unique.
  virtual absl::StatusOr<std::vector<std::string>> ChangedPaths(const std::string& from,
                                                                const std::string& to) = 0;
  // Commits reachable from `tip` but not from `hide` (empty: all), newest
  // first, at most `limit`; RESOURCE_EXHAUSTED beyond it.
  virtual absl::StatusOr<std::vector<std::string>> CommitsBetween(const std::string& hide, const std::string& tip,
                                                                  int limit) = 0;
  // Entries under `path` (a file or directory; empty = root) at `commit`,
  // in path order, recursively. NOT_FOUND when the path does not exist.
  virtual absl::StatusOr<std::vector<TreeEntry>> ListTree(const std::string& commit, const std::string& path) = 0;
  virtual absl::StatusOr<std::string> ReadBlob(const std::string& oid) = 0;
  // Removes a local ref; OK when it does not exist.
  virtual absl::Status DeleteRef(const std::string& name) = 0;
};

// Entry point to Git: lists remote refs and opens mirrors. Thread-safe.
class Client {
 public:
  virtual ~Client() = default;

  // The refs advertised by `url` (ls-remote), without fetching anything.
  // UNAVAILABLE on transport errors, UNAUTHENTICATED when credentials fail.
  virtual absl::StatusOr<std::vector<RemoteRef>> ListRemoteRefs(const std::string& url,
                                                                const Credentials& credentials) = 0;

  // The refs of `url` that `patterns` may select, named, peeled and failing
  // as ListRemoteRefs would have them. It may return others too (the
  // caller matches the names): a client with no cheaper way lists them all.
  virtual absl::StatusOr<std::vector<RemoteRef>> ListRemoteRefsFor(const std::string& url,
                                                                   const Credentials& credentials,
                                                                   const RefPatterns& patterns) {
    (void)patterns;
    return ListRemoteRefs(url, credentials);
  }

  // Opens the bare mirror of `url` at `dir`, creating it when missing and
  // recreating it when it is corrupt or belongs to another URL (`*rebuilt`
  // tells which). The returned handle is for the calling thread only.
  virtual absl::StatusOr<std::unique_ptr<Repository>> OpenMirror(const std::string& dir, const std::string& url,
                                                                 bool* rebuilt) = 0;

  // Opens an existing, valid mirror of `url` at `dir` without creating or
  // repairing anything. NOT_FOUND when absent, FAILED_PRECONDITION when
  // corrupt or made for another URL.
  virtual absl::StatusOr<std::unique_ptr<Repository>> OpenExistingMirror(const std::string& dir,
                                                                         const std::string& url) = 0;
};

}  // namespace ferry::git
