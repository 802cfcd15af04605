#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace ferry::git {

// One entry of a Git tree object, in the tree's own order.
struct TreeItem {
  std::string name;
  std::array<unsigned char, 20> id{};  // the object's raw id
  uint32_t mode = 0;                   // 040000 for a tree; 100644, 100755, 120000, 160000 otherwise
  bool is_tree() const { return mode == 0040000; }
};

// Git's order of a tree's entries: by name, a folder's name compared as if
// it ended in '/'. <0, 0 or >0.
int CompareInTreeOrder(const TreeItem& a, const TreeItem& b);

// Reads tree objects by raw id (a repository's object database).
class TreeReader {
 public:
  virtual ~TreeReader() = default;
  virtual absl::StatusOr<std::vector<TreeItem>> ReadTree(const std::array<unsigned char, 20>& id) = 0;
};

// The paths of the files (blobs, symlinks, submodules) that differ between
// two trees, each once, sorted: what a tree-to-tree diff without rename or
// type-change detection lists (a file replaced by a folder lists the file
// and every file under the folder). Subtrees with the same id on both sides
// are skipped unread, so a commit touching one folder of 10,000 reads the
// trees on the path to that folder only (issue #23: libgit2's
// git_diff_tree_to_tree iterates every file of both trees).
absl::StatusOr<std::vector<std::string>> ChangedPathsBetween(TreeReader& reader, const std::array<unsigned char, 20>& from,
                                                             const std::array<unsigned char, 20>& to);

}  // namespace ferry::git
