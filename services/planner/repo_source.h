#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/status/status_macros.h"
#include "ferry/v1/repo_watcher.pb.h"

namespace ferry::planner {

// One file, symlink or submodule of a repository tree at a commit.
struct TreeEntry {
  std::string path;  // repository-relative
  v1::ContentEntryType type = v1::CONTENT_ENTRY_TYPE_FILE;
  uint32_t mode = 0100644;
  std::string blob_sha;        // git blob id: a content hash
  std::string data;            // empty when listed with metadata_only
  std::string symlink_target;  // for symlinks, as stored
};

// A live stream of revisions. Next() blocks; Cancel() may be called from any
// thread to make a blocked Next() return false.
class RevisionStream {
 public:
  virtual ~RevisionStream() = default;
  // The next revision; false when the stream ended (see Finish()).
  virtual bool Next(v1::Revision* revision) = 0;
  virtual void Cancel() = 0;
  // Why the stream ended: UNAVAILABLE and the like mean "reconnect".
  virtual absl::Status Finish() = 0;
};

// The planner's view of Git, served by the repo-watcher. Thread-safe.
class RepoSource {
 public:
  virtual ~RepoSource() = default;

  // Entries under `path` (a file or folder; "" = root) at `commit`, in path
  // order. With metadata_only, data is left empty. NOT_FOUND when the path
  // does not exist at that commit.
  virtual absl::StatusOr<std::vector<TreeEntry>> ReadTree(const std::string& repository_id, const std::string& commit,
                                                          const std::string& path, bool metadata_only) = 0;

  // ReadTree with metadata_only, the data included after all when the files
  // under `path` total at most `max_data_bytes` (`with_data` says whether it
  // was): a caller that needs the listing first and the data after reads a
  // small folder in one call (issue #23: one ReadContent stream per
  // application planned, not two). This default never includes the data.
  struct Listing {
    std::vector<TreeEntry> entries;
    bool with_data = false;
  };
  virtual absl::StatusOr<Listing> ReadListing(const std::string& repository_id, const std::string& commit,
                                              const std::string& path, int64_t max_data_bytes) {
    Listing out;
    ASSIGN_OR_RETURN(out.entries, ReadTree(repository_id, commit, path, true));
    return out;
  }

  // The accepted tip of a full ref name. NOT_FOUND when the ref is unknown.
  virtual absl::StatusOr<std::string> ResolveRef(const std::string& repository_id, const std::string& ref) = 0;

  // The verdict of the repository's signature policy on `commit`
  // (CheckRevision): a refusal is an answer (accepted false, with the
  // reason), not an error. NOT_FOUND when the commit is not in the
  // repository's mirror; UNAVAILABLE when the repo-watcher cannot be reached.
  virtual absl::StatusOr<v1::CheckRevisionResponse> CheckRevision(const std::string& repository_id,
                                                                  const std::string& commit) = 0;

  // Revisions after `cursor` ("" = from the oldest), then live.
  virtual std::unique_ptr<RevisionStream> WatchRevisions(const std::string& cursor) = 0;
};

}  // namespace ferry::planner
