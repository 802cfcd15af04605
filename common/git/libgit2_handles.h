#pragma once

#include <memory>

#include <git2.h>

#include "absl/status/status.h"

namespace ferry::git {

// RAII owners of libgit2 objects.
template <typename T, void (*Free)(T*)>
struct Libgit2Deleter {
  void operator()(T* p) const {
    if (p != nullptr) Free(p);
  }
};

using RepositoryHandle = std::unique_ptr<git_repository, Libgit2Deleter<git_repository, git_repository_free>>;
using RemoteHandle = std::unique_ptr<git_remote, Libgit2Deleter<git_remote, git_remote_free>>;
using CommitHandle = std::unique_ptr<git_commit, Libgit2Deleter<git_commit, git_commit_free>>;
using TreeHandle = std::unique_ptr<git_tree, Libgit2Deleter<git_tree, git_tree_free>>;
using TreeEntryHandle = std::unique_ptr<git_tree_entry, Libgit2Deleter<git_tree_entry, git_tree_entry_free>>;
using BlobHandle = std::unique_ptr<git_blob, Libgit2Deleter<git_blob, git_blob_free>>;
using DiffHandle = std::unique_ptr<git_diff, Libgit2Deleter<git_diff, git_diff_free>>;
using RevwalkHandle = std::unique_ptr<git_revwalk, Libgit2Deleter<git_revwalk, git_revwalk_free>>;
using OdbHandle = std::unique_ptr<git_odb, Libgit2Deleter<git_odb, git_odb_free>>;
using ConfigHandle = std::unique_ptr<git_config, Libgit2Deleter<git_config, git_config_free>>;
using ReferenceHandle = std::unique_ptr<git_reference, Libgit2Deleter<git_reference, git_reference_free>>;
using ReferenceIteratorHandle =
    std::unique_ptr<git_reference_iterator, Libgit2Deleter<git_reference_iterator, git_reference_iterator_free>>;
using ObjectHandle = std::unique_ptr<git_object, Libgit2Deleter<git_object, git_object_free>>;

// A git_buf released on scope exit.
struct Buf {
  git_buf buf = GIT_BUF_INIT;
  Buf() = default;
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
  ~Buf() { git_buf_dispose(&buf); }
};

// The largest tree libgit2 keeps parsed in its object cache (its default is
// 4 KiB): a folder of 100,000 entries.
inline constexpr size_t kCachedTreeLimit = 4 << 20;

// Initialises libgit2 once per process (and its object cache limits); safe
// to call from any thread.
void EnsureLibgit2();

// The last libgit2 error as a Status: NOT_FOUND for GIT_ENOTFOUND,
// UNAUTHENTICATED for GIT_EAUTH, `network_code` for transport errors
// (UNAVAILABLE), INTERNAL otherwise. `what` prefixes the message.
absl::Status GitError(int code, const std::string& what,
                      absl::StatusCode network_code = absl::StatusCode::kInternal);

}  // namespace ferry::git
