#pragma once

#include <git2.h>

#include <array>
#include <vector>

#include "common/git/tree_diff.h"

namespace ferry::git {

// Trees of one repository, read through libgit2's object cache.
class Libgit2TreeReader : public TreeReader {
 public:
  explicit Libgit2TreeReader(git_repository* repo) : repo_(repo) {}
  absl::StatusOr<std::vector<TreeItem>> ReadTree(const std::array<unsigned char, 20>& id) override;

 private:
  git_repository* const repo_;
};

std::array<unsigned char, 20> RawId(const git_oid* oid);

}  // namespace ferry::git
