// ChangedPathsBetween (common/git/tree_diff.h) over an in-memory object
// store that counts the trees it is asked for: the paths a commit changed,
// and that finding them reads the trees on the changed paths only, however
// many folders the repository has (issue #23: a commit touching one
// application of a monorepo with 10,000 folders read all of them).

#include "common/git/tree_diff.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace ferry::git {
namespace {

using Id = std::array<unsigned char, 20>;

class FakeObjects : public TreeReader {
 public:
  // A tree of {path: content} (a content starting with "link:" is a
  // symlink, "exec:" an executable file); returns its id.
  Id Tree(const std::map<std::string, std::string>& files) {
    std::map<std::string, std::map<std::string, std::string>> sub;
    std::vector<TreeItem> items;
    for (const auto& [path, content] : files) {
      std::vector<std::string> parts = absl::StrSplit(path, absl::MaxSplits('/', 1));
      if (parts.size() == 2) {
        sub[parts[0]][parts[1]] = content;
        continue;
      }
      TreeItem blob;
      blob.name = path;
      blob.mode = content.rfind("link:", 0) == 0 ? 0120000 : content.rfind("exec:", 0) == 0 ? 0100755 : 0100644;
      blob.id = Blob(content.substr(content.find(':') + 1));
      items.push_back(blob);
    }
    for (const auto& [name, under] : sub) {
      TreeItem t;
      t.name = name;
      t.mode = 0040000;
      t.id = Tree(under);
      items.push_back(t);
    }
    // Git's order: by name, a folder's as if it ended in '/'.
    std::sort(items.begin(), items.end(), [](const TreeItem& a, const TreeItem& b) {
      return (a.is_tree() ? a.name + "/" : a.name) < (b.is_tree() ? b.name + "/" : b.name);
    });
    std::string key;
    for (const TreeItem& i : items) absl::StrAppend(&key, i.name, "\t", i.mode, "\t", Hex(i.id), "\n");
    Id id = Intern(key);
    trees_[id] = items;
    return id;
  }
  absl::StatusOr<std::vector<TreeItem>> ReadTree(const Id& id) override {
    ++reads;
    auto it = trees_.find(id);
    if (it == trees_.end()) return absl::NotFoundError("no such tree");
    return it->second;
  }
  int reads = 0;

 private:
  Id Blob(const std::string& content) { return Intern("blob\n" + content); }
  Id Intern(const std::string& key) {
    auto [it, added] = ids_.emplace(key, Id{});
    if (added) {
      size_t n = ids_.size();
      for (size_t i = 0; i < sizeof(n); ++i) it->second[i] = static_cast<unsigned char>(n >> (8 * i));
    }
    return it->second;
  }
  static std::string Hex(const Id& id) {
    std::string out;
    for (unsigned char c : id) absl::StrAppend(&out, absl::Hex(c, absl::kZeroPad2));
    return out;
  }
  std::map<std::string, Id> ids_;
  std::map<Id, std::vector<TreeItem>> trees_;
};

std::vector<std::string> Changed(FakeObjects& objects, const Id& a, const Id& b) {
  absl::StatusOr<std::vector<std::string>> got = ChangedPathsBetween(objects, a, b);
  EXPECT_TRUE(got.ok()) << got.status();
  return got.ok() ? *got : std::vector<std::string>{};
}

TEST(TreeDiffTest, ListsEveryKindOfChangeOnce) {
  FakeObjects o;
  Id a = o.Tree({{"ferry.yaml", "v1"},
                 {"apps/web/deploy.yaml", "web 1"},
                 {"apps/api/deploy.yaml", "api 1"},
                 {"apps/api/run.sh", "echo"},
                 {"apps/db/a.yaml", "db a"},
                 {"apps/db/sub/b.yaml", "db b"},
                 {"conf", "a file, then a folder"},
                 {"lib/x.yaml", "a folder, then a file"},
                 {"lib/y/z.yaml", "deep"},
                 {"link", "link:apps/web"},
                 {"same/one.yaml", "unchanged"}});
  Id b = o.Tree({{"ferry.yaml", "v1"},
                 {"apps/web/deploy.yaml", "web 2"},                     // modified
                 {"apps/api/deploy.yaml", "api 1"},
                 {"apps/api/run.sh", "exec:echo"},                      // mode only
                 {"apps/new/deploy.yaml", "new"},                       // added folder
                 {"conf/c.yaml", "now a folder"},                       // file -> folder
                 {"lib", "now a file"},                                 // folder -> file
                 {"link", "link:apps/api"},                             // symlink target
                 {"same/one.yaml", "unchanged"}});                      // apps/db deleted
  EXPECT_EQ(Changed(o, a, b), (std::vector<std::string>{"apps/api/run.sh", "apps/db/a.yaml", "apps/db/sub/b.yaml",
                                                         "apps/new/deploy.yaml", "apps/web/deploy.yaml", "conf",
                                                         "conf/c.yaml", "lib", "lib/x.yaml", "lib/y/z.yaml", "link"}));
  // And the other way round: the same paths.
  EXPECT_EQ(Changed(o, b, a).size(), 11u);
  EXPECT_TRUE(Changed(o, a, a).empty());
}

TEST(TreeDiffTest, OrdersFoldersAsGitDoes) {
  // "a-b" sorts between a file "a" and a folder "a" ("a/" > "a-"): a merge
  // in plain name order would pair the wrong entries and report them all.
  FakeObjects o;
  Id a = o.Tree({{"a-b", "1"}, {"a/x", "1"}, {"a.txt", "1"}});
  Id b = o.Tree({{"a-b", "1"}, {"a/x", "2"}, {"a.txt", "1"}});
  EXPECT_EQ(Changed(o, a, b), (std::vector<std::string>{"a/x"}));
}

TEST(TreeDiffTest, ACommitTouchingOneFolderOfManyReadsTheTreesOnItsPathOnly) {
  for (int n : {100, 2000}) {
    std::map<std::string, std::string> files{{"ferry.yaml", "apps"}};
    for (int i = 0; i < n; ++i) {
      files[absl::StrCat("apps/a", i, "/config.yaml")] = absl::StrCat("app ", i, " rev 1");
      files[absl::StrCat("apps/a", i, "/more/settings.yaml")] = absl::StrCat("settings ", i);
    }
    FakeObjects o;
    Id before = o.Tree(files);
    files[absl::StrCat("apps/a", n / 2, "/config.yaml")] = "rev 2";
    Id after = o.Tree(files);
    o.reads = 0;
    EXPECT_EQ(Changed(o, before, after), (std::vector<std::string>{absl::StrCat("apps/a", n / 2, "/config.yaml")}));
    // The root, apps/ and apps/a<i>/ of each side; not the n other folders.
    EXPECT_EQ(o.reads, 6) << n << " folders";
  }
}

TEST(TreeDiffTest, AnUnreadableTreeIsAnError) {
  FakeObjects o;
  Id a = o.Tree({{"x/y", "1"}});
  Id missing{};
  missing[19] = 0xff;
  EXPECT_EQ(ChangedPathsBetween(o, a, missing).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace ferry::git
