#include "common/git/libgit2_tree_reader.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/git/libgit2_handles.h"

namespace ferry::git {

std::array<unsigned char, 20> RawId(const git_oid* oid) {
  std::array<unsigned char, 20> out;
  std::copy_n(oid->id, out.size(), out.begin());
  return out;
}

absl::StatusOr<std::vector<TreeItem>> Libgit2TreeReader::ReadTree(const std::array<unsigned char, 20>& id) {
  git_oid oid;
  git_oid_fromraw(&oid, id.data());
  git_tree* raw = nullptr;
  int rc = git_tree_lookup(&raw, repo_, &oid);
  TreeHandle tree(raw);
  if (rc != 0) {
    char hex[GIT_OID_HEXSZ + 1];
    git_oid_tostr(hex, sizeof(hex), &oid);
    return GitError(rc, absl::StrCat("read tree ", hex));
  }
  std::vector<TreeItem> items(git_tree_entrycount(tree.get()));
  for (size_t i = 0; i < items.size(); ++i) {
    const git_tree_entry* e = git_tree_entry_byindex(tree.get(), i);
    items[i].name = git_tree_entry_name(e);
    items[i].id = RawId(git_tree_entry_id(e));
    // Normalised (a tree 040000, a file 100644 or 100755), as libgit2's own
    // diff compares them: an old tree's odd mode bits neither hide a folder
    // nor make a change.
    items[i].mode = static_cast<uint32_t>(git_tree_entry_filemode(e));
  }
  return items;
}

}  // namespace ferry::git
