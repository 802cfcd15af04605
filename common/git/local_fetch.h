#pragma once

#include <git2.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/git/libgit2_repository.h"

namespace ferry::git {

// At most this many new commits are fetched by FetchLocalIncrement; more
// (a first fetch, a long-lived branch) go through libgit2's transport.
inline constexpr int kMaxLocalIncrementCommits = 64;

// A tree object of at least this many bytes is stored in the pack a local
// increment writes, not deflated: a folder of thousands of entries (a
// monorepo's applications) is mostly object ids, which compress little, and
// deflating it cost more than everything else the fetch did (issue #23).
inline constexpr size_t kStoredTreeBytes = 64 * 1024;

// Fetches forced refspecs ("+src:dst") from a repository on this machine (a
// path or file:// URL) into `mirror`, when the wanted commits add at most
// kMaxLocalIncrementCommits to what the mirror has. It packs exactly the
// objects the mirror lacks, found by comparing each new commit's trees with
// its first parent's and descending only where they differ, and updates the
// refs. libgit2's local transport instead walks every tree of the commits
// the mirror has (git_packbuilder_insert_walk marks them all uninteresting)
// and looks up every subtree of the new ones: for a commit touching one
// folder of a monorepo of 10,000, most of the repo-watcher's CPU, growing
// with the repository's size (issue #23).
//
// Within `payload`'s FetchLimits as a fetch is (RESOURCE_EXHAUSTED, nothing
// kept). Returns false, having changed nothing, when the fetch is not of
// that kind (another URL, a refspec that is not forced or names a pattern,
// a ref the source lacks or that is not a commit, more new commits, a
// source it cannot open or read through): the caller then fetches the
// ordinary way.
absl::StatusOr<bool> FetchLocalIncrement(git_repository* mirror, const std::string& url,
                                         const std::vector<std::string>& refspecs, CredentialPayload* payload);

}  // namespace ferry::git
